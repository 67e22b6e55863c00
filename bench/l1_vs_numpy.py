#!/usr/bin/env python3
"""Time to a 1e-4 relative duality gap: libcsp's FISTA against a batched
numpy FISTA (float32 GEMMs, the same algorithm: one product G x per
iteration, adaptive restart, per-row gap checked every 5 iterations,
converged rows dropped), cold
(x0 = 0) and warm (x0 = the solution before the weights moved), in the
same run.
    OPENBLAS_NUM_THREADS=1 python3 bench/l1_vs_numpy.py build/bench/bench_l1 [REPEATS]
Problem: Phi m x n Gaussian, G = Phi^T Phi, B rows w ~ N(0, 1),
lambda_r = FRAC * max |G w_r|; warm: w' = w + 0.02 N(0, 1)."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

TOL = 1e-4


def fista_numpy(G, W, lam, X0, L, tol=TOL, max_iter=100000, check_every=5):
    """Batched FISTA in float32 with float64 gap sums; returns X.
    A lean baseline: preallocated buffers and in-place ufuncs, one GEMM per
    iteration (G y by linearity), the gap checked every check_every
    iterations on all rows, converged rows dropped."""
    B = W @ G
    X = X0.astype(np.float32, copy=True)
    GX = X @ G if np.any(X) else np.zeros_like(X)
    XP, GXP = X.copy(), GX.copy()
    Y, GY, T = np.empty_like(X), np.empty_like(X), np.empty_like(X)
    t = np.ones(len(W))
    idx = np.arange(len(W))
    out = np.empty_like(X)
    lam = lam.astype(np.float64)
    thr = (lam / L).astype(np.float32)[:, None]
    invL = np.float32(1.0 / L)
    it = 0
    while True:
        if it % check_every == 0 or it >= max_iter:
            g = np.subtract(B, GX, out=T)
            r = np.einsum("ij,ij->i", W - X, g, dtype=np.float64)
            xg = np.einsum("ij,ij->i", X, g, dtype=np.float64)
            l1 = np.abs(X).sum(axis=1, dtype=np.float64)
            gmax = np.abs(g).max(axis=1).astype(np.float64)
            P = 0.5 * r + lam * l1
            s = np.minimum(1.0, lam / np.maximum(gmax, 1e-300))
            D = s * (r + xg) - 0.5 * s * s * r
            done = (P - D <= tol * P) | (it >= max_iter)
            if done.any():
                out[idx[done]] = X[done]
                keep = ~done
                if not keep.any():
                    return out
                X, XP, GX, GXP, B, W = X[keep], XP[keep], GX[keep], GXP[keep], B[keep], W[keep]
                Y, GY, T = Y[keep], GY[keep], T[keep]
                t, idx, lam, thr = t[keep], idx[keep], lam[keep], thr[keep]
        tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        beta = ((t - 1.0) / tn).astype(np.float32)[:, None]
        np.subtract(X, XP, out=Y)
        Y *= beta
        Y += X
        np.subtract(GX, GXP, out=GY)
        GY *= beta
        GY += GX
        GY -= B
        GY *= invL
        Z = np.subtract(Y, GY, out=GY)  # the gradient step, in GY's buffer
        XN = np.abs(Z, out=XP)  # XP is free: x_prev is not needed any more
        XN -= thr
        np.maximum(XN, 0.0, out=XN)
        np.copysign(XN, Z, out=XN)
        # Adaptive restart: (y - x_new).(x_new - x) > 0.
        np.subtract(Y, XN, out=Y)
        np.subtract(XN, X, out=T)
        restart = np.einsum("ij,ij->i", Y, T) > 0
        t = np.where(restart, 1.0, tn)
        XP, X = X, XN
        GXP, GX = GX, np.matmul(XN, G, out=GXP)
        it += 1


def objective(G64, W, X, lam):
    E = (W - X).astype(np.float64)
    return 0.5 * np.einsum("ij,ij->i", E, E @ G64) + lam * np.abs(X).sum(axis=1, dtype=np.float64)


def run_csp(tool, G, W, lam, X0, repeats):
    n, rows = G.shape[0], W.shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        with open(fin, "wb") as f:
            np.array([n, rows, 0 if X0 is None else 1], dtype=np.int64).tofile(f)
            np.array([TOL], dtype=np.float64).tofile(f)
            G.astype(np.float64).tofile(f)
            W.astype(np.float32).tofile(f)
            lam.astype(np.float64).tofile(f)
            if X0 is not None:
                X0.astype(np.float32).tofile(f)
        out = subprocess.run([tool, "gap", fin, fout, str(repeats)], check=True,
                             capture_output=True, text=True).stdout
        X = np.fromfile(fout, dtype=np.float32).reshape(rows, n)
    modes = {}
    for line in out.splitlines():
        f = dict(kv.split("=") for kv in line.split()[1:])
        modes[f["mode"]] = f
    return X, modes


def main():
    tool = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rng = np.random.default_rng(2024)
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, tol={TOL} relative gap, "
          f"medians of {repeats}")
    for m, n, rows, frac in [(64, 256, 4096, 0.1), (64, 256, 4096, 0.3), (128, 512, 2048, 0.1)]:
        phi = rng.standard_normal((m, n)) / np.sqrt(m)
        G64 = phi.T @ phi
        G = G64.astype(np.float32)
        L = 1.02 * float(np.linalg.eigvalsh(G64).max())
        W0 = rng.standard_normal((rows, n)).astype(np.float32)
        W1 = (W0 + 0.02 * rng.standard_normal((rows, n))).astype(np.float32)
        lam0 = frac * np.abs(W0.astype(np.float64) @ G64).max(axis=1)
        lam1 = frac * np.abs(W1.astype(np.float64) @ G64).max(axis=1)
        X0 = fista_numpy(G, W0, lam0, np.zeros_like(W0), L)
        for label, W, lam, Xs in [("cold", W0, lam0, None), ("warm", W1, lam1, X0)]:
            start = np.zeros_like(W) if Xs is None else Xs
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                Xn = fista_numpy(G, W, lam, start, L)
                times.append(time.perf_counter() - t0)
            t_np = float(np.median(times))
            Xc, modes = run_csp(tool, G64, W, lam, Xs, repeats)
            Pn, Pc = objective(G64, W, Xn, lam), objective(G64, W, Xc, lam)
            rel = np.abs(Pc - Pn) / Pn
            density = float(np.mean(Xc != 0))
            us_np = t_np / rows * 1e6
            print(f"(m, n, B, lambda) = ({m}, {n}, {rows}, {frac} lmax) {label}: density "
                  f"{density:.2f}, objectives agree to {rel.max():.1e} (max rel)")
            print(f"    numpy FISTA {us_np:8.2f} us/signal")
            for mode in ("auto", "rows", "gemm"):
                f = modes[mode]
                us = float(f["us_per_signal"])
                print(f"    libcsp {mode:5s} {us:8.2f} us/signal = {us / us_np:5.2f}x numpy's "
                      f"time ({float(f['mean_iters']):.0f} iterations/row, "
                      f"not converged {f['notconv']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
