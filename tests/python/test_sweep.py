"""The second-order sweep (solver='sweep', <csp/experimental.h>) from
Python: the keyword maps to CSP_SOLVER_SWEEP, exact row budgets, the
identity sensing gives magnitude's mask, and on observed correlated
activations its layer-output error is below magnitude pruning's."""

import numpy as np

import csprune as csp


def correlated_inputs(rng, batch, n, rho=0.8):
    x = rng.standard_normal((batch, n))
    for j in range(1, n):
        x[:, j] += rho * x[:, j - 1]
    return x.astype(np.float32)


def one_shot(ctx, w, sparsity, x=None, **options):
    pruner = csp.Pruner(ctx, csp.Schedule.one_shot(ctx, sparsity), granularity="row")
    pruner.add_tensor(w, "fc.weight", **options)
    if x is not None:
        pruner.observe(0, x)
    pruner.step(0)
    return pruner


def output_error(w0, w, x):
    return float(np.sum(((w0 - w).astype(np.float64) @ x.T.astype(np.float64)) ** 2))


def test_sweep_keyword_counts_and_error(ctx):
    rng = np.random.default_rng(20261204)
    rows, n = 12, 48
    x = correlated_inputs(rng, 400, n)
    w0 = rng.standard_normal((rows, n)).astype(np.float32)
    errs = {}
    for name, options in [("magnitude", {}),
                          ("sweep", dict(sensing="activations", solver="sweep")),
                          ("sweep+full", dict(sensing="activations", solver="sweep",
                                              correction="full"))]:
        w = w0.copy()
        pruner = one_shot(ctx, w, 0.75, x if options else None, **options)
        assert ((w != 0).sum(axis=1) == n // 4).all()
        if options:
            assert pruner.stats(0).solver == csp.SolverMethod.SWEEP
        errs[name] = output_error(w0, w, x)
    assert errs["sweep"] < 0.9 * errs["magnitude"]
    assert errs["sweep+full"] <= errs["sweep"] * 1.01


def test_sweep_identity_is_magnitude(ctx):
    rng = np.random.default_rng(7)
    w0 = (rng.integers(-4, 5, size=(9, 30)) * 0.25).astype(np.float32)  # ties
    wm, ws = w0.copy(), w0.copy()
    one_shot(ctx, wm, 0.6)
    one_shot(ctx, ws, 0.6, solver=csp.SolverMethod.SWEEP, sensing="identity")
    assert np.array_equal(wm, ws)
