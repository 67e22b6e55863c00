"""The adaptive schedule through Python: Pruner.target() against a numpy
reference of the rule (docs/guide.md, "Adaptive schedule") fed with the
errors the pruner reports, the final target reached, off = the schedule,
bad values refused, and a bit-identical resume."""

import numpy as np
import pytest

import csprune as csp

G = csp.Granularity


def _run(ctx, seed, steps=70, **adapt):
    rng = np.random.default_rng(seed)
    sched = csp.Schedule.polynomial(ctx, 0.85, end_step=60, frequency=10)
    p = csp.Pruner(ctx, sched, granularity=G.TENSOR, **adapt)
    w = rng.standard_normal((16, 24))
    p.add_tensor(w)
    out = []
    for t in range(steps):
        w += 0.05 * rng.standard_normal(w.shape)
        if p.step(t) == csp.Status.PRUNED:
            out.append((t, sched.target(t), p.target(0), p.stats(0).sensing_error))
    return p, sched, out


def test_off_is_the_schedule(ctx):
    _, _, out = _run(ctx, 3)
    assert out and all(t == s for _, s, t, _ in out)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_rule_reference(ctx, seed):
    b, m0, mmax, grow, shrink = 0.04, 1.0, 3.0, 2.0, 0.1
    _, sched, out = _run(ctx, seed, adapt_bound=b)
    m, before, s_last = m0, 0.0, 0.0
    adapted = False
    for _, s, t, err in out:
        if s >= 0.85:
            want = 0.85
        else:
            base = s - s_last
            want = min(0.85, before + m * base) if base > 0 else before
        assert t == pytest.approx(want, abs=1e-12)
        adapted = adapted or t != s
        m = min(mmax, (m * grow if m > 0 else m0) if err <= b else m * shrink)
        before, s_last = t, s
    assert out[-1][2] == 0.85 and adapted


def test_bad_values_refused(ctx):
    sched = csp.Schedule.polynomial(ctx, 0.5, end_step=10, frequency=5)
    for kw in (dict(adapt_bound=-1.0), dict(adapt_grow=0.5), dict(adapt_shrink=2.0)):
        with pytest.raises(csp.CspError):
            csp.Pruner(ctx, sched, **kw)
    p = csp.Pruner(ctx, sched)
    p.add_tensor(np.ones((2, 3), np.float32))
    with pytest.raises(csp.CspError):
        p.target(1)
    assert p.target() == [0.0]


def test_resume_bit_identical(ctx):
    rng = np.random.default_rng(5)
    sched = csp.Schedule.polynomial(ctx, 0.9, end_step=60, frequency=5)
    deltas = [0.05 * rng.standard_normal((12, 20)) for _ in range(70)]
    w1 = rng.standard_normal((12, 20))
    p1 = csp.Pruner(ctx, sched, granularity=G.ROW, adapt_bound=0.03)
    p1.add_tensor(w1)
    for t in range(23):
        w1 += deltas[t]
        p1.step(t)
    state = p1.state()
    w2 = w1.copy()
    p2 = csp.Pruner(ctx, sched, granularity=G.ROW, adapt_bound=0.03)
    p2.add_tensor(w2)
    p2.load_state(state)
    for t in range(23, 70):
        w1 += deltas[t]
        w2 += deltas[t]
        assert p1.step(t) == p2.step(t)
        assert p1.target(0) == p2.target(0)
    np.testing.assert_array_equal(w1, w2)
    assert p1.digest() == p2.digest() and p1.target(0) == 0.9


@pytest.mark.parametrize("options", [{}, dict(sensing="activations"),
                                     dict(sensing="activations", solver="sweep")],
                         ids=["magnitude", "omp", "sweep"])
def test_every_strategy(ctx, options):
    """The adaptive schedule with each strategy (row granularity, the sweep
    solver included): targets never go back, leave the schedule's, and the
    last event lands on the final sparsity with exact counts per row."""
    rng = np.random.default_rng(20261204)
    sched = csp.Schedule.polynomial(ctx, 0.8, end_step=60, frequency=10)
    p = csp.Pruner(ctx, sched, granularity=G.ROW, adapt_bound=0.05)
    w = rng.standard_normal((12, 48)).astype(np.float32)
    p.add_tensor(w, "fc", **options)
    targets, adapted = [], False
    for t in range(70):
        w += 0.01 * rng.standard_normal(w.shape).astype(np.float32) * (w != 0)
        if options:
            p.observe(0, rng.standard_normal((64, 48)).astype(np.float32))
        if p.step(t) == csp.Status.PRUNED:
            targets.append(p.target(0))
            adapted = adapted or p.target(0) != sched.target(t)
    assert adapted and targets == sorted(targets) and targets[-1] == 0.8
    assert ((w != 0).sum(axis=1) == 48 - round(0.8 * 48)).all()
