#!/usr/bin/env python3
"""Batch OMP: libcsp against scikit-learn's orthogonal_mp_gram on the same
data, single-threaded, in the same run.
    OPENBLAS_NUM_THREADS=1 python3 bench/omp_vs_sklearn.py build/bench/bench_omp [REPEATS]
For each (m, n, k, B): Phi m x n Gaussian (N(0, 1/m)), G = Phi^T Phi, B
signals w (rows), Xy = G w. sklearn gets Gram and Xy precomputed; libcsp
gets G and w and computes G w itself (inside its time)."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:
    from sklearn.linear_model import orthogonal_mp_gram
except ImportError:
    print("scikit-learn is not installed (apt install python3-sklearn)")
    sys.exit(77)

CONFIGS = [(128, 512, 32, 2048), (64, 256, 16, 4096)]


def main():
    tool = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rng = np.random.default_rng(12345)
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, repeats={repeats} "
          f"(medians)")
    print(f"{'(m, n, k, B)':>22} {'sklearn sig/s':>14} {'libcsp sig/s':>13} {'ratio':>7} "
          f"{'libcsp w/o GEMM':>16} {'same supports':>14}")
    for m, n, k, B in CONFIGS:
        phi = rng.standard_normal((m, n)) / np.sqrt(m)
        G = phi.T @ phi
        W = rng.standard_normal((B, n)).astype(np.float32)
        Xy = G @ W.astype(np.float64).T
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ref = orthogonal_mp_gram(G, Xy, n_nonzero_coefs=k)
            times.append(time.perf_counter() - t0)
        t_sk = float(np.median(times))
        with tempfile.TemporaryDirectory() as tmp:
            fin, fout = os.path.join(tmp, "in"), os.path.join(tmp, "out")
            with open(fin, "wb") as f:
                np.array([n, B, k], dtype=np.int64).tofile(f)
                G.tofile(f)
                W.tofile(f)
            out = subprocess.run([tool, fin, fout, str(repeats * 3)], check=True,
                                 capture_output=True, text=True).stdout
            words = (n + 63) // 64
            sup = np.fromfile(fout, dtype=np.uint64).reshape(B, words)
        fields = dict(kv.split("=") for kv in out.split()[1:])
        t_csp = float(fields["median_s"])
        t_gemm = float(fields["gemm_median_s"])
        bits = np.unpackbits(sup.view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)
        same = int(np.sum(np.all(bits == (ref.T != 0), axis=1)))
        print(f"{str((m, n, k, B)):>22} {B / t_sk:14.0f} {B / t_csp:13.0f} "
              f"{t_sk / t_csp:6.1f}x {B / (t_csp - t_gemm):16.0f} {same:>8}/{B}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
