"""csp.Schedule: targets, events, callbacks and their errors."""

import gc

import numpy as np
import pytest

import csprune as csp


def test_polynomial_targets_follow_the_formula(ctx):
    s = csp.Schedule.polynomial(ctx, 0.9, initial_sparsity=0.1, begin_step=10, end_step=110,
                                exponent=3, frequency=20)
    assert s.kind == csp.ScheduleKind.POLYNOMIAL and s.final_sparsity == 0.9
    for t in range(0, 130, 7):
        frac = min(max((t - 10) / 100, 0.0), 1.0)
        want = 0.9 + (0.1 - 0.9) * (1 - frac) ** 3
        assert s.target(t) == pytest.approx(want, abs=1e-15)
    assert s.target(10) == 0.1 and s.target(110) == 0.9
    assert list(s.events(1000)) == [10, 30, 50, 70, 90, 110]
    assert s.is_event(30) and not s.is_event(31)
    assert s.next_event() == 10 and s.next_event(110) is None
    assert s.last_event(5) is None and s.last_event(49) == 30


def test_end_step_is_always_an_event(ctx):
    s = csp.Schedule.polynomial(ctx, 0.5, end_step=25, frequency=10)
    assert list(s.events(100)) == [0, 10, 20, 25]


def test_constant_schedule(ctx):
    s = csp.Schedule.constant(ctx, 0.3, begin_step=5, frequency=5)
    assert s.kind == csp.ScheduleKind.CONSTANT
    assert s.target(0) == 0.3 and s.target(10 ** 9) == 0.3
    assert list(s.events(20)) == [5, 10, 15, 20]


def test_one_shot_schedule_has_one_event(ctx):
    s = csp.Schedule.one_shot(ctx, 0.8, step=7)
    assert list(s.events(1000)) == [7] and s.target(7) == 0.8
    rng = np.random.default_rng()
    w = rng.standard_normal((6, 20)).astype(np.float32)
    p = csp.Pruner(ctx, s, granularity="row", sensing="activations", correction="full")
    p.add_tensor(w)
    p.observe(0, rng.standard_normal((64, 20)).astype(np.float32))  # calibration
    assert [p.step(t) for t in range(5, 8)] == [csp.Status.MASKED] * 2 + [csp.Status.PRUNED]
    mask = p.mask(0).copy()
    assert ((w == 0).sum(axis=1) == 16).all()
    for t in range(8, 30):  # fine-tuning: the pattern stays
        w += 0.01 * rng.standard_normal(w.shape).astype(np.float32)
        assert p.step(t) == csp.Status.MASKED
    assert (p.mask(0) == mask).all() and ((w == 0) == ~mask).all()


def test_generic_constructor_and_names(ctx):
    s = csp.Schedule(ctx, "constant", final_sparsity=0.25, frequency=1)
    assert s.kind is csp.ScheduleKind.CONSTANT and s.target(3) == 0.25
    assert "constant" in repr(s)


@pytest.mark.parametrize("kwargs", [
    dict(final_sparsity=1.0), dict(final_sparsity=-0.1), dict(final_sparsity=float("nan")),
    dict(initial_sparsity=0.6, final_sparsity=0.5), dict(exponent=0.0), dict(frequency=0),
    dict(begin_step=-1), dict(end_step=0), dict(end_step=-1)])
def test_invalid_polynomial_options_raise_range(ctx, kwargs):
    opts = dict(final_sparsity=0.5, end_step=100)
    opts.update(kwargs)
    with pytest.raises(csp.CspError) as e:
        csp.Schedule(ctx, "polynomial", **opts)
    assert e.value.status == csp.Status.E_RANGE
    assert e.value.message == ctx.last_error


def test_bad_kind_values(ctx):
    for bad in (0, 4, "cubic"):
        with pytest.raises(ValueError, match="schedule kind"):
            csp.Schedule(ctx, bad)
    with pytest.raises(TypeError):
        csp.Schedule(ctx, 2.0)


def test_callback_schedule(ctx):
    calls = []

    def fn(step):
        calls.append(step)
        return min(step / 100, 0.8)
    s = csp.Schedule.callback(ctx, fn, 0.8, frequency=10)
    assert s.kind is csp.ScheduleKind.CALLBACK
    assert s.target(50) == 0.5 and calls == [50]
    assert s.target(500) == 0.8


def test_callback_exception_becomes_callback_error(ctx):
    def fn(step):
        if step == 3:
            raise ZeroDivisionError("boom at 3")
        return 0.5
    s = csp.Schedule.callback(ctx, fn, 0.5, frequency=1)
    assert s.target(2) == 0.5
    with pytest.raises(csp.CspError) as e:
        s.target(3)
    assert e.value.status == csp.Status.E_CALLBACK
    assert isinstance(e.value.__cause__, ZeroDivisionError)
    assert s.target(4) == 0.5  # no stale exception left behind


def test_callback_returning_garbage(ctx):
    s = csp.Schedule.callback(ctx, lambda step: "half", 0.5)
    with pytest.raises(csp.CspError) as e:
        s.target(0)
    assert e.value.status == csp.Status.E_CALLBACK
    assert isinstance(e.value.__cause__, (TypeError, ValueError))
    s = csp.Schedule.callback(ctx, lambda step: 1.5, 0.5)
    with pytest.raises(csp.CspError) as e:
        s.target(0)
    assert e.value.status == csp.Status.E_RANGE
    s = csp.Schedule.callback(ctx, lambda step: np.float64("nan"), 0.5)
    with pytest.raises(csp.CspError) as e:
        s.target(0)
    assert e.value.status == csp.Status.E_RANGE


def test_callback_base_exception_propagates_as_itself(ctx):
    class Stop(BaseException):
        pass

    def fn(step):
        raise Stop()
    s = csp.Schedule.callback(ctx, fn, 0.5)
    with pytest.raises(Stop):
        s.target(0)


def test_callback_must_be_callable(ctx):
    with pytest.raises(TypeError, match="callable"):
        csp.Schedule.callback(ctx, 0.5, 0.5)


def test_callback_stays_alive_with_the_pruner(ctx):
    w = np.arange(1, 101, dtype=np.float32)
    sched = csp.Schedule.callback(ctx, lambda step: 0.25 if step >= 10 else 0.0, 0.5,
                                  frequency=10)
    pruner = csp.Pruner(ctx, sched)
    pruner.add_tensor(w)
    sched.close()
    del sched
    gc.collect()
    assert pruner.step(0) == csp.Status.PRUNED
    assert pruner.step(10) == csp.Status.PRUNED
    assert pruner.nnz() == 75 and (w[:25] == 0).all()


def test_negative_steps_are_refused(ctx):
    s = csp.Schedule.constant(ctx, 0.5)
    with pytest.raises(csp.CspError) as e:
        s.target(-1)
    assert e.value.status == csp.Status.E_RANGE
    with pytest.raises(csp.CspError):
        s.next_event(-2)


def test_closed_schedule(ctx):
    s = csp.Schedule.constant(ctx, 0.5)
    s.close()
    with pytest.raises(ValueError, match="Schedule is closed"):
        s.target(0)
    with pytest.raises(ValueError, match="Schedule is closed"):
        csp.Pruner(ctx, s)
    assert repr(s) == "<csp.Schedule closed>"
