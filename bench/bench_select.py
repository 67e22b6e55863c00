#!/usr/bin/python3
"""Magnitude selection at N weights, sparsity s: libcsp against numpy and
PyTorch, all measured in the same run (see bench/README.md).

    /usr/bin/python3 bench/bench_select.py [--bench build/bench/bench_gmp]
                                           [--n 10000000] [--reps 7] [--threads 1]

Baselines (a column is skipped when numpy or torch is missing), single
threaded unless --threads says otherwise:
  per tensor   numpy.partition(|w|, k); torch.kthvalue(|w|, k) (find the k-th
               |w|, no mask); torch prune.l1_unstructured + remove (computes
               and applies a mask)
  rows of L    numpy.partition(|W|, L - keep, axis=1); torch.topk(|W|, keep,
               dim=1) on the (N / L) x L view (per-row threshold or top-k, no
               mask)
  N:M          numpy.partition / torch.topk along groups of M (|W| viewed as
               (N / M) x M)
  memcpy       np.copyto of the same array (memory-bandwidth reference)
and, when --bench points at the built bench_gmp, libcsp's figures from a run
of it on the same N (each libcsp selection writes the bit mask, and is checked
against the kept counts and the threshold property). Medians over
repetitions; CSP_BENCH_CLOCK=cpu times process CPU time instead of the wall
clock (one thread only).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROW_LENGTHS = (64, 128, 512, 1000, 4096)
NM = ((2, 4), (1, 4), (4, 8))


# CSP_BENCH_CLOCK=cpu: process CPU time instead of the wall clock, here and
# in bench_gmp (for one thread on a loaded machine; bench/README.md).
CLOCK = time.process_time if os.environ.get("CSP_BENCH_CLOCK") == "cpu" else time.perf_counter


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t0 = CLOCK()
        fn()
        out.append(CLOCK() - t0)
    return statistics.median(out)


def keep_of(s, n):
    return n - round(s * n)  # Python's round(): half to even, as libcsp and torch.prune


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=None, help="path of the built bench_gmp")
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sparsity", type=float, default=0.9)
    a = ap.parse_args()
    n, s, reps = a.n, a.sparsity, a.reps

    base = {}  # key -> {"numpy": ns/weight, "torch": ns/weight}

    def put(key, lib, seconds, count):
        base.setdefault(key, {})[lib] = 1e9 * seconds / count

    try:
        import numpy as np
    except ImportError:
        np = None
        print("numpy not installed: numpy baselines skipped")
    try:
        import torch
        import torch.nn.utils.prune as prune
        torch.set_num_threads(a.threads)
    except ImportError:
        torch = None
        print("torch not installed: torch baselines skipped")

    if np is not None:
        rng = np.random.default_rng(0)
        w = rng.standard_normal(n).astype(np.float32)
        dst = np.empty_like(w)
        print(f"numpy {np.__version__}, N = {n} float32 N(0,1), s = {s}, {reps} repetitions")
        put("memcpy", "numpy", timed(lambda: np.copyto(dst, w), reps), n)
        k = n - keep_of(s, n)
        put("select_ns", "numpy", timed(lambda: np.partition(np.abs(w), k), reps), n)
        for L in ROW_LENGTHS:
            W = np.abs(w[: (n // L) * L]).reshape(-1, L)
            kr = L - keep_of(s, L)
            put(f"rows_{L}_ns", "numpy", timed(lambda: np.partition(W, kr, axis=1), reps), W.size)
        for keep, m in NM:
            G = np.abs(w[: (n // m) * m]).reshape(-1, m)
            put(f"nm_{keep}_{m}_ns", "numpy",
                timed(lambda: np.partition(G, m - keep, axis=1), max(3, reps // 2)), G.size)
    if torch is not None:
        tw = torch.from_numpy(w) if np is not None else torch.randn(n)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
        k = n - keep_of(s, n)
        put("select_ns", "torch", timed(lambda: torch.kthvalue(tw.abs(), k), reps), n)
        lin = torch.nn.Linear(n // 1000, 1000, bias=False)
        with torch.no_grad():
            lin.weight.copy_(tw[: 1000 * (n // 1000)].view(1000, n // 1000))

        def l1():
            prune.l1_unstructured(lin, "weight", amount=s)
            prune.remove(lin, "weight")

        put("event_tensor_ns", "torch", timed(l1, max(3, reps // 2)), 1000 * (n // 1000))
        for L in ROW_LENGTHS:
            W = tw[: (n // L) * L].abs().view(-1, L)
            kr = keep_of(s, L)
            put(f"rows_{L}_ns", "torch", timed(lambda: torch.topk(W, kr, dim=1), reps), W.numel())
        for keep, m in NM:
            G = tw[: (n // m) * m].abs().view(-1, m)
            put(f"nm_{keep}_{m}_ns", "torch",
                timed(lambda: torch.topk(G, keep, dim=1), max(3, reps // 2)), G.numel())

    kv = {}
    if a.bench:
        if not os.path.exists(a.bench):
            sys.exit(f"{a.bench} not found (build with meson first)")
        out = subprocess.run([a.bench, str(n), str(reps), str(a.threads)], check=True,
                             capture_output=True, text=True).stdout
        print()
        print(out.rstrip())
        for line in out.splitlines():
            if line.startswith("kv "):
                _, key, val = line.split()
                kv[key] = float(val)

    rows = [("memcpy", "memcpy of the same bytes", None),
            ("select_ns", "per tensor", None),
            *[(f"rows_{L}_ns", f"row-balanced, rows of {L}", 1.5) for L in ROW_LENGTHS],
            *[(f"nm_{k}_{m}_ns", f"N:M {k}:{m}", 1.5) for k, m in NM],
            ("event_tensor_ns", "event per tensor (select+apply)", 2.0),
            ("event_rows_ns", "event row-balanced, rows of 1000", 2.0),
            ("event_nm_2_4_ns", "event N:M 2:4, rows of 1000", 2.0)]
    kv["memcpy"] = kv.get("memcpy_ns", 0.0)
    print("\nns/weight, same run (numpy/torch: threshold or top-k only, no mask; torch event = "
          "prune.l1_unstructured + remove):")
    print(f"  {'what':36s} {'numpy':>9s} {'torch':>9s} {'libcsp':>9s}  {'best baseline/libcsp':>20s}"
          f"  goal")
    for key, name, goal in rows:
        b = base.get(key, {})
        nb = b.get("numpy")
        tb = b.get("torch")
        lc = kv.get(key)
        cells = [f"{v:9.3f}" if v is not None else f"{'-':>9s}" for v in (nb, tb, lc)]
        best = min([v for v in (nb, tb) if v is not None], default=None)
        ratio = f"{best / lc:19.1f}x" if best is not None and lc else f"{'':20s}"
        if key == "memcpy":
            ratio = f"{'':20s}"
        g = ""
        if goal is not None and lc is not None:
            g = f"<= {goal:g}: {'met' if lc <= goal else 'NOT met'}"
        print(f"  {name:36s} {' '.join(cells)}  {ratio}  {g}")


if __name__ == "__main__":
    main()
