#!/usr/bin/env python3
"""libcsp's OMP against scikit-learn's orthogonal_mp_gram on the same Gram
and signals: supports must agree on >= 99% of rows and coefficients to
1e-4 relative on those rows. Exits 77 (skipped) without scikit-learn.
    omp_sklearn.py OMP_TOOL"""

import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from sklearn.linear_model import orthogonal_mp_gram
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)


def main():
    tool = sys.argv[1]
    seed = int(os.environ.get("CSP_TEST_SEED", "0")) or int.from_bytes(os.urandom(6), "little")
    print(f"test seed: CSP_TEST_SEED={seed}")
    rng = np.random.default_rng(seed)
    failures = 0
    for m, n, k, rows in [(32, 96, 8, 300), (64, 200, 16, 200), (128, 256, 10, 100)]:
        phi = rng.standard_normal((m, n)) / np.sqrt(m)
        G = phi.T @ phi
        W = rng.standard_normal((rows, n)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            fin, fout = os.path.join(tmp, "in"), os.path.join(tmp, "out")
            with open(fin, "wb") as f:
                np.array([n, rows, k], dtype=np.int64).tofile(f)
                G.astype(np.float64).tofile(f)
                W.tofile(f)
            subprocess.run([tool, fin, fout], check=True)
            words = (n + 63) // 64
            with open(fout, "rb") as f:
                X = np.fromfile(f, dtype=np.float32, count=rows * n).reshape(rows, n)
                sup = np.fromfile(f, dtype=np.uint64, count=rows * words).reshape(rows, words)
        bits = np.unpackbits(sup.view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)
        Xy = G @ W.astype(np.float64).T
        ref = orthogonal_mp_gram(G, Xy, n_nonzero_coefs=k).T  # rows x n
        same = 0
        for r in range(rows):
            ref_sup = ref[r] != 0
            if not np.array_equal(ref_sup, bits[r]) or np.any(X[r][~ref_sup] != 0):
                continue
            scale = np.max(np.abs(ref[r]))
            err = np.abs(X[r] - ref[r]) - 1e-4 * np.maximum(np.abs(ref[r]), 1e-2 * scale)
            if np.any(err > 0):
                print(f"(m, n, k) = ({m}, {n}, {k}) row {r}: coefficients differ by "
                      f"{np.max(np.abs(X[r] - ref[r])):.3g}")
                failures += 1
            same += 1
        print(f"(m, n, k, rows) = ({m}, {n}, {k}, {rows}): supports equal to sklearn's on "
              f"{same}/{rows} rows")
        if same < 0.99 * rows:
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
