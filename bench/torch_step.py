#!/usr/bin/python3
"""Per-step cost of csprune.torch.ModulePruner against the optimizer step it
follows, on the same device, measured in the same run.

    CSP_LIBRARY=build/lib/libcsp.so.0 /usr/bin/python3 bench/torch_step.py
        [--width 1024] [--layers 4] [--steps 30] [--device cpu|cuda|all]

A stack of nn.Linear(width, width) layers (every weight pruned, 90 % row
sparsity reached at the first event) trained with Adam. For each pruner kind
it times, per ordinary (non-event) step, with medians over --steps steps:

  adam        optimizer.step()                          (the baseline)
  step        pruner.step() between events               (masks re-applied)
  backward    forward + backward with the gradient hooks (or, "call", followed
              by mask_gradients()), and of the same model without a pruner
              (interleaved)
  event       pruner.step() at an event (GMP), and with activation sensing

Kinds: "in place" (CPU float32, the library writes the parameters through
their pointers), "staged" (the device path: torch masks on the parameters'
device, host buffers only at events; forced on the CPU with staged=True),
and on CUDA "staged" in float32 and bfloat16. Ratios are against adam of
the same device and dtype.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import csprune.torch  # noqa: E402


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn, dev):
    sync(dev)
    t0 = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t0


def one(dev, dtype, staged, width, layers, steps, sensing=None, grads="hook"):
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)]).to(dev, dtype)
    plain = nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)]).to(dev, dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    kw = dict(sensing=sensing, observe_window=1) if sensing else {}
    pr = csprune.torch.ModulePruner(model, opt, final_sparsity=0.9, begin_step=1,
                                    end_step=-1, frequency=10 ** 6, granularity="row",
                                    staged=staged, mask_gradients=grads, **kw)
    x = torch.randn(64, width, device=dev, dtype=dtype)
    res = {"adam": [], "step": [], "backward": [], "backward_plain": [], "event": None}

    def fwd_bwd():
        opt.zero_grad(set_to_none=False)
        model(x).float().square().mean().backward()
        if grads == "call":
            pr.mask_gradients()

    def fwd_bwd_plain():  # the same model without a pruner, interleaved
        plain.zero_grad(set_to_none=False)
        plain(x).float().square().mean().backward()
    for i in range(steps + 2):
        if i == 1:  # the event (the first step() at step 1 prunes to 90 %)
            fwd_bwd()
            opt.step()
            res["event"] = timed(pr.step, dev)
            continue
        res["backward_plain"].append(timed(fwd_bwd_plain, dev))
        res["backward"].append(timed(fwd_bwd, dev))
        res["adam"].append(timed(opt.step, dev))
        res["step"].append(timed(pr.step, dev))
    pr.close()
    med = {k: statistics.median(v[1:]) for k, v in res.items() if isinstance(v, list)}
    med["event"] = res["event"]
    return med


def report(name, m):
    a = m["adam"]
    print(f"{name:28s} adam {1e3 * a:8.3f} ms | step {1e3 * m['step']:8.3f} ms "
          f"({m['step'] / a:5.2f}x adam) | backward {1e3 * m['backward']:8.3f} ms vs "
          f"{1e3 * m['backward_plain']:8.3f} ms plain ({m['backward'] / m['backward_plain']:5.2f}x)"
          f" | event {1e3 * m['event']:8.2f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="all")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-acts", action="store_true",
                    help="skip the activation-sensing runs (their event is an OMP per row)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    n = a.layers * a.width * a.width
    print(f"{a.layers} x Linear({a.width}, {a.width}): {n / 1e6:.1f} M pruned weights, "
          f"torch {torch.__version__}, {a.threads} thread(s), medians of {a.steps} steps")
    if a.device in ("cpu", "all"):
        cpu = torch.device("cpu")
        report("cpu float32 in place", one(cpu, torch.float32, False, a.width, a.layers, a.steps))
        report("cpu float32 in place, call", one(cpu, torch.float32, False, a.width, a.layers,
                                                 a.steps, grads="call"))
        report("cpu float32 staged", one(cpu, torch.float32, True, a.width, a.layers, a.steps))
        if not a.no_acts:
            report("cpu float32 staged, acts", one(cpu, torch.float32, True, a.width, a.layers,
                                                   a.steps, sensing="activations"))
    if a.device in ("cuda", "all") and torch.cuda.is_available():
        gpu = torch.device("cuda")
        report("cuda float32 staged", one(gpu, torch.float32, None, a.width, a.layers, a.steps))
        report("cuda bfloat16 staged", one(gpu, torch.bfloat16, None, a.width, a.layers,
                                           a.steps))
        report("cuda float32 staged, call", one(gpu, torch.float32, None, a.width, a.layers,
                                                a.steps, grads="call"))
        if not a.no_acts:
            report("cuda float32 staged, acts", one(gpu, torch.float32, None, a.width,
                                                    a.layers, a.steps, sensing="activations"))
    elif a.device == "cuda":
        print("no CUDA device")


if __name__ == "__main__":
    main()
