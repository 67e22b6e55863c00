#!/usr/bin/python3
"""Magnitude selection at N weights, sparsity s: libcsp against numpy and
PyTorch, all measured in the same run.

    /usr/bin/python3 bench/bench_select.py [--bench build/bench/bench_gmp]
                                           [--n 10000000] [--reps 7]

Baselines (skipped when numpy or torch is missing):
  numpy.partition(|w|, k)                        (finds the k-th |w|; no mask)
  torch.kthvalue(|w|, k)                         (same)
  torch.nn.utils.prune.l1_unstructured(amount=s) (computes and applies a mask)
  np.copyto of the same array                    (memory-bandwidth reference)
and, when --bench points at the built bench_gmp, libcsp's figures from a run
of it on the same N. Medians over repetitions, with min..max.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), min(out), max(out)


def show(name, t, n):
    med, lo, hi = t
    print(f"{name:44s} {1e3 * med:9.3f} ms  ({1e3 * lo:.3f}..{1e3 * hi:.3f})"
          f"  {1e9 * med / n:8.3f} ns/weight")
    return 1e9 * med / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=None, help="path of the built bench_gmp")
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--sparsity", type=float, default=0.9)
    a = ap.parse_args()
    n, s, reps = a.n, a.sparsity, a.reps
    k_zero = round(s * n)  # Python's round(): half to even, as libcsp and torch.prune

    res = {}
    try:
        import numpy as np
    except ImportError:
        np = None
        print("numpy not installed: numpy baselines skipped")
    if np is not None:
        rng = np.random.default_rng(0)
        w = rng.standard_normal(n).astype(np.float32)
        dst = np.empty_like(w)
        print(f"numpy {np.__version__}, N = {n}, s = {s}, {reps} repetitions; median (min..max)")
        res["copy"] = show("np.copyto (memcpy reference)", timed(lambda: np.copyto(dst, w), reps), n)
        res["partition"] = show("numpy.partition(|w|, k)",
                                timed(lambda: np.partition(np.abs(w), k_zero), reps), n)
    try:
        import torch
        import torch.nn.utils.prune as prune
    except ImportError:
        torch = None
        print("torch not installed: torch baselines skipped")
    if torch is not None:
        tw = torch.from_numpy(w) if np is not None else torch.randn(n)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
        res["kthvalue"] = show("torch.kthvalue(|w|, k)",
                               timed(lambda: torch.kthvalue(tw.abs(), k_zero), reps), n)
        lin = torch.nn.Linear(n // 1000, 1000, bias=False)
        with torch.no_grad():
            lin.weight.copy_(tw.view(1000, n // 1000))

        def l1():
            prune.l1_unstructured(lin, "weight", amount=s)
            prune.remove(lin, "weight")

        res["l1"] = show("torch prune.l1_unstructured (+ remove)", timed(l1, max(3, reps // 2)), n)

    if a.bench:
        if not os.path.exists(a.bench):
            sys.exit(f"{a.bench} not found (build with meson first)")
        out = subprocess.run([a.bench, str(n), str(reps)], check=True, capture_output=True,
                             text=True).stdout
        print()
        print(out.rstrip())
        kv = {}
        for line in out.splitlines():
            if line.startswith("kv "):
                _, key, val = line.split()
                kv[key] = float(val)
        csp = kv["select_ns"]
        print("\nlibcsp per-tensor selection against the Python baselines (same run):")
        for key, name in (("partition", "numpy.partition"), ("kthvalue", "torch.kthvalue"),
                          ("l1", "torch l1_unstructured")):
            if key in res:
                print(f"  {name:24s} {res[key]:8.3f} ns/weight  -> libcsp {res[key] / csp:6.1f}x faster")
        print(f"  libcsp select            {csp:8.3f} ns/weight  (goal <= 1.5; global "
              f"{kv['global_ns']:.3f})")


if __name__ == "__main__":
    main()
