#!/usr/bin/env python3
"""Cubic, linear and adaptive schedules at the same final sparsity on a
synthetic regression task (docs/guide.md, "Adaptive schedule").

A student MLP y = W2 tanh(W1 x) (W1 64x32, W2 8x64) learns a teacher of the
same shape whose W1 is 75 % zeros, with minibatch SGD; both student matrices
are pruned row-balanced during training by one pruner (GMP by default, or
CSP with activation sensing: --sensing activations), with the same events
(every --frequency steps from --begin to --end) and the same final sparsity
under cubic (exponent 3) and linear (exponent 1) schedules, and the cubic
schedule with the adaptive increments (one run per bound of --bounds). The held-out MSE after
training (fine-tuning to --steps) is reported per schedule over --seeds
seeds (mean, sd, and the paired difference against cubic). It shows what it
shows on this task and nothing beyond.

    PYTHONPATH=python CSP_LIBRARY=build/lib/libcsp.so.0 \\
        /usr/bin/python3 tools/adaptive-demo.py [--seeds 5] [--sparsity 0.9]
"""

import argparse
import math

import numpy as np

import csprune as csp


def teacher(rng):
    w1 = rng.standard_normal((64, 32)) / math.sqrt(32)
    w1[rng.random(w1.shape) < 0.75] = 0.0
    w2 = rng.standard_normal((8, 64)) / math.sqrt(16)
    return w1, w2


def data(rng, t, n):
    x = rng.standard_normal((n, 32))
    y = np.tanh(x @ t[0].T) @ t[1].T + 0.01 * rng.standard_normal((n, 8))
    return x.astype(np.float32), y.astype(np.float32)


def run(args, seed, kind, bound=0.0):
    """Train one student under schedule @p kind; returns (test MSE, the
    adapted targets of W1 at each event)."""
    rng = np.random.default_rng(seed)
    t = teacher(rng)
    xte, yte = data(rng, t, 2000)
    w1 = (rng.standard_normal((64, 32)) / math.sqrt(32)).astype(np.float32)
    w2 = (rng.standard_normal((8, 64)) / math.sqrt(64)).astype(np.float32)
    batches = np.random.default_rng(seed + 1000)
    targets = []
    with csp.Context(seed=seed) as ctx:
        sched = csp.Schedule.polynomial(ctx, args.sparsity, begin_step=args.begin,
                                        end_step=args.end, frequency=args.frequency,
                                        exponent=1.0 if kind == "linear" else 3.0)
        kw = dict(granularity=csp.Granularity.ROW)
        if args.sensing == "activations":
            kw.update(sensing=csp.SensingKind.ACTIVATIONS, correction=csp.Correction.FULL)
        if bound > 0.0:
            kw["adapt_bound"] = bound
        p = csp.Pruner(ctx, sched, **kw)
        p.add_tensor(w1)
        p.add_tensor(w2)
        for step in range(args.steps):
            x, y = data(batches, t, 64)
            h = np.tanh(x @ w1.T)
            err = h @ w2.T - y
            if args.sensing == "activations" and p.wants_observe(step):
                p.observe(0, x)
                p.observe(1, np.ascontiguousarray(h, np.float32))
            g2 = err.T @ h / len(x)
            g1 = ((err @ w2) * (1 - h * h)).T @ x / len(x)
            w2 -= args.lr * g2.astype(np.float32)
            w1 -= args.lr * g1.astype(np.float32)
            if p.step(step) == csp.Status.PRUNED:
                targets.append(p.target(0))
        mse = float(np.mean((np.tanh(xte @ w1.T) @ w2.T - yte) ** 2))
    return mse, targets


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--begin", type=int, default=200)
    ap.add_argument("--end", type=int, default=1600)
    ap.add_argument("--frequency", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--bounds", type=float, nargs="+", default=[0.02, 0.05, 0.2],
                    help="CSP_X_ADAPT_BOUND of the adaptive runs")
    ap.add_argument("--sensing", choices=["identity", "activations"], default="identity")
    args = ap.parse_args()
    kinds = ["cubic", "linear"] + [f"adaptive {b:g}" for b in args.bounds]
    res = {k: [] for k in kinds}
    traces = {}
    for s in range(args.seeds):
        for k in kinds:
            b = float(k.split()[1]) if k.startswith("adaptive") else 0.0
            mse, targets = run(args, s, k.split()[0], b)
            res[k].append(mse)
            if s == 0:
                traces[k] = targets
    print(f"final sparsity {args.sparsity}, {args.seeds} seeds, sensing {args.sensing}, "
          f"events every {args.frequency} steps in [{args.begin}, {args.end}], "
          f"{args.steps} steps")
    print("| schedule | test MSE mean | sd | mean diff vs cubic | seeds better than cubic |")
    print("|---|---|---|---|---|")
    base = np.array(res["cubic"])
    for k in kinds:
        v = np.array(res[k])
        d = v - base
        print(f"| {k} | {v.mean():.5f} | {v.std(ddof=1) if len(v) > 1 else 0.0:.5f} | "
              f"{d.mean():+.5f} | {int((d < 0).sum())}/{len(v)} |")
    for k in kinds:
        print(f"{k}: targets of W1 at the events (seed 0):",
              " ".join(f"{x:.3f}" for x in traces[k]))


if __name__ == "__main__":
    main()
