#!/usr/bin/python3
"""Sanity probe (not a study) of the N:M selections of CSP tensors: one
event on rows of 128 weights through a random correlated Gram, the
layer-output error sum_r (w - x)^T G (w - x) / sum_r w^T G w for each method.

    PYTHONPATH=python CSP_LIBRARY=build/lib/libcsp.so.0 \\
        /usr/bin/python3 bench/nm_probe.py [--rows 256] [--seeds 3] [--nm 2:4]

G = A^T A / m + 1e-3 I, A = Z D + c 1^T: per-column scales D spread 30x
(activation-like energies) and a common component c (correlated inputs).
"""

import argparse

import numpy as np

import csprune as csp

METHODS = [  # name, support, correction, solver method, solver.normalize
    ("magnitude (GMP N:M)", None, "none", "omp", 0),
    ("Wanda", "wanda", "none", "omp", 0),
    ("Wanda + full refit", "wanda", "full", "omp", 0),
    ("magnitude support + full refit", "magnitude", "full", "omp", 0),
    ("OMP, correction none", "solver", "none", "omp", 0),
    ("OMP + full refit", "solver", "full", "omp", 0),
    ("OMP normalised atoms + full refit", "solver", "full", "omp", 1),
    ("FISTA support + full refit", "solver", "full", "fista", 0),
]


def gram(rng, n, m):
    z = rng.standard_normal((m, n)) * np.exp(rng.uniform(np.log(0.18), np.log(5.5), n))
    a = z + 1.5 * rng.standard_normal((m, 1))
    return a.T @ a / m + 1e-3 * np.eye(n)


def error(w0, w, g):
    e = (w0 - w).astype(np.float64)
    w64 = w0.astype(np.float64)
    return float(np.einsum("ri,ij,rj->", e, g, e) / np.einsum("ri,ij,rj->", w64, g, w64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--nm", default="2:4")
    a = ap.parse_args()
    nm = tuple(int(v) for v in a.nm.split(":"))
    res = {name: [] for name, *_ in METHODS}
    with csp.Context() as ctx:
        for seed in range(a.seeds):
            rng = np.random.default_rng(seed)
            g = gram(rng, a.n, 4 * a.n)
            w0 = rng.standard_normal((a.rows, a.n)).astype(np.float32)
            for name, support, corr, method, normalize in METHODS:
                w = w0.copy()
                sched = csp.Schedule.constant(ctx, 1.0 - nm[0] / nm[1], frequency=1)
                kw = {} if support is None else dict(sensing="gram", correction=corr,
                                                     solver=method, solver_normalize=normalize)
                p = csp.Pruner(ctx, sched, granularity="nm", nm=nm, **kw)
                p.add_tensor(w, **({} if support is None else dict(support=support)))
                if support is not None:
                    p.sensing(0).set_gram(g)
                assert p.step(0) == csp.Status.PRUNED
                grp = (w != 0).reshape(a.rows, -1, nm[1]).sum(2)
                assert (grp <= nm[0]).all()
                res[name].append(error(w0, w, g))
                p.close()
    base = np.mean(res[METHODS[0][0]])
    print("N:M %d:%d, rows %d x %d, %d seeds: relative layer-output error "
          "sum (w-x)^T G (w-x) / sum w^T G w (mean over seeds; ratio to magnitude)"
          % (nm[0], nm[1], a.rows, a.n, a.seeds))
    for name, v in res.items():
        print("  %-36s %.4f  (%.3f)" % (name, np.mean(v), np.mean(v) / base))


if __name__ == "__main__":
    main()
