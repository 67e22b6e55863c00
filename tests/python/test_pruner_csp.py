"""csp.Pruner with CSP: the same runs as C, identity CSP against GMP, stats
against numpy, sensing views, observations, the step callback and bad
arguments."""

import gc
import math
import subprocess

import numpy as np
import pytest

import csprune as csp
from xtx_ref import assert_xtx
from test_pruner import checkpoint_sections, digest_reference, same_stats, snapshots

G = csp.Granularity
S = csp.SensingKind
M = csp.SolverMethod
C = csp.Correction


# --- against the same run in C ------------------------------------------------------

# pruner: CSP options of csp_pruner_options (None: the C defaults); tensors:
# (dtype, rows, cols, {per-tensor CSP overrides}); observe: input rows per step.
CSP_CASES = {
    "gaussian_omp": dict(
        pruner=dict(sensing=S.GAUSSIAN, solver=M.OMP, correction=C.NONE, sensing_rho=0.5),
        tensors=[(1, 9, 24, {}), (2, 6, 16, dict(correction=C.FULL, sensing_rho=0.25)),
                 (1, 5, 12, dict(sensing=S.IDENTITY, shrink=0.05))],
        observe=0),
    "activations": dict(
        pruner=dict(sensing=S.ACTIVATIONS, correction=C.BLEND, alpha=0.3, observe_window=3,
                    sensing_damping=0.05),
        tensors=[(1, 8, 20, {}), (1, 7, 12, dict(correction=C.FULL)),
                 (2, 4, 10, dict(sensing=S.RADEMACHER, solver=M.FISTA, redraw=True))],
        observe=16),
}

_DEFAULTS = dict(sensing=S.IDENTITY, solver=M.OMP, correction=C.FULL,
                 block_size=csp.DEFAULT_BLOCK_SIZE, redraw=0, observe_window=0,
                 solver_max_iter=300, sensing_rho=0.5, sensing_damping=0.01, alpha=0.1,
                 shrink=0.0,
                 solver_tol=1e-4)


def _csp_line(opts):
    o = dict(_DEFAULTS, **opts)
    return "csp %d %d %d %d %d %d %d %r %r %r %r %r" % (
        o["sensing"], o["solver"], o["correction"], o["block_size"], int(o["redraw"]),
        o["observe_window"], o["solver_max_iter"], o["sensing_rho"], o["sensing_damping"],
        o["alpha"],
        o["shrink"], o["solver_tol"])


def _tcsp_line(opts):
    # the C sentinels for "the pruner's"
    o = dict(dict(sensing=0, solver=0, correction=0, block_size=0, redraw=-1, sensing_rho=0.0,
                  sensing_damping=-1.0, alpha=-1.0, shrink=-1.0), **opts)
    return "tcsp %d %d %d %d %d %r %r %r %r" % (
        o["sensing"], o["solver"], o["correction"], o["block_size"], int(o["redraw"]),
        o["sensing_rho"], o["sensing_damping"], o["alpha"], o["shrink"])


def _parse(stdout, tag):
    return [line.split()[1:] for line in stdout.splitlines() if line.startswith(tag + " ")]


@pytest.mark.parametrize("case", sorted(CSP_CASES))
def test_csp_masks_weights_and_stats_equal_those_of_c(helper, tmp_path, case):
    spec = CSP_CASES[case]
    # a linear ramp: every event, the last one included, prunes every tensor
    steps, sf, end, freq, rows = 20, 0.75, 16, 5, spec["observe"]
    rng = np.random.default_rng(len(case) + 100)
    lines = ["schedule %d 0.2 %r 1 1 %d %d" % (csp.ScheduleKind.POLYNOMIAL, sf, end, freq),
             "pruner %d 2 4" % G.ROW, _csp_line(spec["pruner"]), "observe %d" % rows,
             "steps %d" % steps]
    snaps = []
    for dtype, r, c, over in spec["tensors"]:
        lines.append("tensor %d %d %d 0 0 0 0 0 -1.0" % (dtype, r, c))
        lines.append(_tcsp_line(over))
        snaps.append(snapshots(rng, steps, (r, c), np.float32 if dtype == 1 else np.float64))
    kinds = [over.get("sensing", spec["pruner"].get("sensing")) for _, _, _, over in
             spec["tensors"]]
    act = [k == S.ACTIVATIONS for k in kinds]
    # identical observations for C and Python: correlated inputs, so that the
    # activation Gram is far from the identity
    inputs = [[(rng.standard_normal((rows, c)) @ rng.standard_normal((c, c)) / math.sqrt(c))
               .astype(np.float32) if a else None for (_, _, c, _), a in
               zip(spec["tensors"], act)] for _ in range(steps)]
    (tmp_path / "spec").write_text("\n".join(lines) + "\n")
    with open(tmp_path / "weights", "wb") as f:
        for s in range(steps):
            for k in range(len(spec["tensors"])):
                f.write(snaps[k][s].tobytes())
            for x in inputs[s]:
                if x is not None and rows:
                    f.write(x.tobytes())
    run = subprocess.run([helper, "prune", str(tmp_path / "spec"), str(tmp_path / "weights"),
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    c_status = [int(v[1]) for v in _parse(run.stdout, "status")]
    c_digest = int(_parse(run.stdout, "digest")[0][0])
    c_tstats = _parse(run.stdout, "tstats")
    c_sstats = [int(v) for v in _parse(run.stdout, "sstats")[0]]

    ctx = csp.Context()  # seed 0, as the helper's
    sched = csp.Schedule.polynomial(ctx, sf, initial_sparsity=0.2, begin_step=1, end_step=end,
                                    frequency=freq, exponent=1)
    pruner = csp.Pruner(ctx, sched, granularity="row", solver_max_iter=300,
                        **spec["pruner"])
    ws, cs = [], []
    for (dtype, r, c, over), s in zip(spec["tensors"], snaps):
        w = np.zeros_like(s[0])
        i = pruner.add_tensor(w, **over)
        comp = np.ones_like(w)
        pruner.add_companion(i, comp)
        ws.append(w)
        cs.append(comp)
    assert [pruner.sensing_kind(i) == S.ACTIVATIONS for i in range(len(ws))] == act
    py_status, observed = [], 0
    for step in range(steps):
        for w, s in zip(ws, snaps):
            w[...] = s[step]
        if pruner.wants_observe(step):
            observed += 1
            for i, x in enumerate(inputs[step]):
                if x is not None:
                    pruner.observe(i, x)
        py_status.append(int(pruner.step(step)))
    assert py_status == c_status
    assert csp.Status.PRUNED in py_status
    window = spec["pruner"].get("observe_window", 0)
    want_obs = sum(1 for t in range(steps) if sched.next_event(t - 1) is not None
                   and sched.next_event(t - 1) - t < window) if any(act) else 0
    assert observed == want_obs and (want_obs > 0) == any(act)
    assert pruner.digest() == c_digest

    out = (tmp_path / "out").read_bytes()
    pos = 0
    for i, (w, comp) in enumerate(zip(ws, cs)):
        nw = (w.size + 63) // 64
        np.testing.assert_array_equal(pruner.mask_words(i), np.frombuffer(out, np.uint64, nw,
                                                                          pos))
        pos += 8 * nw
        np.testing.assert_array_equal(w, np.frombuffer(out, w.dtype, w.size, pos)
                                      .reshape(w.shape))
        pos += w.nbytes
        np.testing.assert_array_equal(comp, np.frombuffer(out, w.dtype, w.size, pos)
                                      .reshape(w.shape))
        pos += w.nbytes
        st = pruner.stats(i)
        want = c_tstats[i]
        assert [int(st.sensing), int(st.solver), int(st.correction), int(st.converged)] == \
            [int(v) for v in want[1:5]]
        assert (st.weight_error, st.sensing_error) == (float(want[5]), float(want[6]))
        assert st.weight_error > 0 and st.last_event == end
        assert [st.solver_iterations, st.solver_iterations_max, st.rows_not_converged,
                st.rows_damped, st.events, st.observed_rows] == [int(v) for v in want[7:]]
    assert pos == len(out)
    ss = pruner.step_stats()
    assert [ss.steps, ss.events, ss.last_event, ss.numel, ss.nnz] == c_sstats
    assert pruner.digest() == digest_reference([pruner.mask(i) for i in range(len(ws))])
    ctx.close()


# --- identity CSP is GMP --------------------------------------------------------------------

def test_identity_csp_equals_gmp_bit_for_bit(ctx):
    rng = np.random.default_rng(31)
    shape, steps = (11, 27), 30
    snaps = snapshots(rng, steps, shape)
    sched = csp.Schedule.polynomial(ctx, 0.85, end_step=24, frequency=4)
    gmp = csp.Pruner(ctx, sched, granularity="row")
    # the identity sensing configured, with solvers and corrections that all
    # reduce to magnitude selection
    conf = csp.Pruner(ctx, sched, granularity="row", sensing="identity", solver="fista",
                      correction="full")
    # an attached identity operator: the solver's own magnitude path
    att = csp.Pruner(ctx, sched, granularity="row", correction="blend", alpha=0.5)
    tensor = csp.Pruner(ctx, sched, granularity="tensor", sensing=S.IDENTITY, solver=M.ISTA)
    gmp_t = csp.Pruner(ctx, sched, granularity="tensor")
    ws = [np.zeros(shape, np.float32) for _ in range(5)]
    for p, w in zip((gmp, conf, att, tensor, gmp_t), ws):
        p.add_tensor(w)
    ident = csp.Sensing.identity(ctx, shape[1])
    att.set_sensing(0, ident)
    assert att.sensing(0) is ident and att.stats(0).sensing == S.IDENTITY
    assert conf.sensing(0) is None  # identity tensors have no operator
    for t in range(steps):
        for w in ws:
            w[...] = snaps[t]
        statuses = [p.step(t) for p in (gmp, conf, att, tensor, gmp_t)]
        assert len(set(statuses)) == 1
        np.testing.assert_array_equal(ws[1], ws[0])
        np.testing.assert_array_equal(ws[2], ws[0])
        np.testing.assert_array_equal(ws[3], ws[4])
        np.testing.assert_array_equal(conf.mask_words(0), gmp.mask_words(0))
        np.testing.assert_array_equal(att.mask_words(0), gmp.mask_words(0))
    assert gmp.digest() == conf.digest() == att.digest()
    assert tensor.digest() == gmp_t.digest()
    g, a = gmp.stats(0), att.stats(0)
    assert a.weight_error == pytest.approx(g.weight_error, rel=1e-12)
    assert a.events == g.events == len(list(sched.events(steps)))


# --- stats against numpy --------------------------------------------------------------------

def _errors(before, after, gram=None):
    """weight_error and sensing_error of docs/guide.md, in float64."""
    b, a = before.astype(np.float64), after.astype(np.float64)
    we = np.linalg.norm(b - a) / np.linalg.norm(b)
    if gram is None:
        return we, we ** 2
    d = b - a
    return we, np.einsum("ij,jk,ik->", d, gram, d) / np.einsum("ij,jk,ik->", b, gram, b)


def test_stats_against_numpy(ctx):
    rng = np.random.default_rng(41)
    w_gmp = rng.standard_normal((10, 32)).astype(np.float32)
    w_cs = rng.standard_normal((12, 40)).astype(np.float32)
    w_ex = np.ones((3, 3), np.float32)
    sched = csp.Schedule.polynomial(ctx, 0.75, begin_step=0, end_step=10, frequency=5)
    p = csp.Pruner(ctx, sched, granularity="row")
    i_gmp = p.add_tensor(w_gmp, "gmp")
    i_cs = p.add_tensor(w_cs, "cs", sensing="gaussian", sensing_rho=0.5)
    i_ex = p.add_tensor(w_ex, "ex", exclude=True)
    view = p.sensing(i_cs)
    gram = view.gram()  # (seed, tensor index, 0, 0): the Phi of every event (no redraw)
    np.testing.assert_array_equal(gram, csp.Sensing.gaussian(ctx, 40, rho=0.5,
                                                              tensor_id=i_cs).gram())
    for t in range(11):
        before_g = w_gmp * p.mask(i_gmp)
        before_c = w_cs * p.mask(i_cs)
        st = p.step(t)
        if st != csp.Status.PRUNED:
            continue
        sg, sc = p.stats(i_gmp), p.stats(i_cs)
        target = sched.target(t)
        k = 40 - round(target * 40)
        we, se = _errors(before_g, w_gmp)
        assert sg.weight_error == pytest.approx(we, rel=1e-12)
        assert sg.sensing_error == pytest.approx(se, rel=1e-9)
        we, se = _errors(before_c, w_cs, gram)
        assert sc.weight_error == pytest.approx(we, rel=1e-12)
        assert sc.sensing_error == pytest.approx(se, rel=1e-5)  # w^T G w: float32 GEMM
        assert (sc.sensing, sc.solver, sc.correction) == (S.GAUSSIAN, M.OMP, C.FULL)
        assert (sg.sensing, sg.solver_iterations, sg.rows_damped) == (S.IDENTITY, 0, 0)
        assert sc.converged and sc.rows_not_converged == 0
        rows_solved = int((before_c != 0).sum(1).__ge__(k + 1).sum())  # rows that lose weights
        assert sc.solver_iterations == rows_solved * k
        assert sc.solver_iterations_max == (k if rows_solved else 0)
        assert (p.mask(i_cs).sum(1) == k).all()
        assert sc.events == sg.events == sc.events and sc.last_event == t
        assert 0 <= sc.event_seconds <= sc.total_seconds
        assert sc.observed_rows == 0
    assert sg.events == 3 and p.stats(i_ex).events == 0 and p.stats(i_ex).excluded
    ss = p.step_stats()
    assert (ss.steps, ss.events, ss.last_event) == (11, 3, 10)
    assert ss.numel == 320 + 480 + 9 and ss.nnz == p.nnz()
    assert 0 <= ss.last_event_seconds <= ss.event_seconds <= ss.total_seconds
    fresh = csp.Pruner(ctx, sched).step_stats()
    assert fresh == csp.StepStats(steps=0, events=0, last_event=None, numel=0, nnz=0,
                                  last_event_seconds=0.0, event_seconds=0.0, total_seconds=0.0,
                                  observe_seconds=0.0)


# --- sensing views and attached operators -----------------------------------------------

def test_sensing_views_are_borrowed(ctx):
    sched = csp.Schedule.constant(ctx, 0.5, frequency=1)
    p = csp.Pruner(ctx, sched, granularity="row", sensing="rademacher", sensing_rho=0.25)
    p.add_tensor(np.ones((4, 16), np.float32))
    p.add_tensor(np.ones(8, np.float32), sensing="identity")
    p.add_tensor(np.ones((2, 8), np.float32), exclude=True)
    p.add_tensor(np.ones(300, np.float32), block_size=100)
    v = p.sensing(0)
    assert isinstance(v, csp.Sensing) and v.borrowed and not csp.Sensing.borrowed
    assert (v.kind, v.n, v.m) == (S.RADEMACHER, 16, 4)
    assert p.sensing(0) is v and repr(v) == "<csp.Sensing rademacher n=16 m=4 borrowed>"
    assert p.sensing(1) is None and p.sensing(2) is None
    assert p.sensing(3).n == 100  # rank 1: blocks of block_size
    with pytest.raises(IndexError):
        p.sensing(4)
    v.close()  # frees nothing: the pruner owns the operator
    assert v.closed and not p.closed
    with pytest.raises(ValueError, match="closed"):
        v.gram()
    v2 = p.sensing(0)
    assert v2 is not v and v2.gram().shape == (16, 16)
    p.step(0)
    # a view keeps its pruner's C object alive; closing the pruner closes it
    del p
    gc.collect()
    assert not v2.closed and v2.gram().shape == (16, 16)
    ctx.close()
    assert v2.closed


def test_gram_tensor_through_its_view(ctx):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 10)).astype(np.float32)
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1), granularity="row",
                   sensing="gram")
    p.add_tensor(w)
    before = w.copy()
    with pytest.raises(csp.CspError) as e:  # the Gram was never set
        p.step(0)
    assert e.value.status == csp.Status.E_STATE
    np.testing.assert_array_equal(w, before)
    p.sensing(0).set_gram(np.eye(10))
    assert p.step(0) == csp.Status.PRUNED
    keep = np.argsort(-np.abs(before), axis=1, kind="stable")[:, :5]
    want = np.zeros_like(before)
    np.put_along_axis(want, keep, np.take_along_axis(before, keep, 1), 1)
    np.testing.assert_array_equal(w, want)


def test_set_sensing_pins_and_replaces(ctx):
    sched = csp.Schedule.constant(ctx, 0.5, frequency=1)
    p = csp.Pruner(ctx, sched, granularity="row", sensing="gaussian")
    p.add_tensor(np.ones((3, 8), np.float32))
    p.add_tensor(np.ones((3, 8), np.float32))
    owned = p.sensing(0)
    mine = csp.Sensing.activations(ctx, 8)
    p.set_sensing(0, mine)
    assert owned.closed  # its pointer is no longer the tensor's
    assert p.sensing(0) is mine and p.sensing_kind(0) == S.ACTIVATIONS
    assert p.stats(0).sensing == S.ACTIVATIONS and p.wants_observe(0)
    p.set_sensing(1, mine)  # one operator, two tensors
    p.set_sensing(0, None)  # back to the pruner's own operator
    assert p.sensing(0).borrowed and p.sensing_kind(0) == S.GAUSSIAN
    assert mine._pins == 1 and p in mine._users  # still attached to tensor 1
    with pytest.raises(ValueError, match="borrowed"):
        p.set_sensing(1, p.sensing(0))
    with pytest.raises(TypeError, match="csp.Sensing"):
        p.set_sensing(1, "gaussian")
    with pytest.raises(csp.CspError) as e:
        p.set_sensing(0, csp.Sensing.identity(ctx, 7))
    assert e.value.status == csp.Status.E_SHAPE
    with csp.Context() as other:
        with pytest.raises(csp.CspError) as e:
            p.set_sensing(0, csp.Sensing.identity(other, 8))
        assert e.value.status == csp.Status.E_INVALID
    q = csp.Pruner(ctx, sched)
    q.add_tensor(np.ones((3, 8), np.float32))
    with pytest.raises(csp.CspError) as e:
        q.set_sensing(0, csp.Sensing.identity(ctx, 8))
    assert e.value.status == csp.Status.E_UNSUPPORTED
    # closing an attached operator closes the pruners that use it (as for tensors)
    mine.close()
    assert p.closed and not q.closed


def test_views_and_attached_operators_under_garbage_collection():
    for _ in range(10):
        ctx = csp.Context()
        p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5), granularity="row",
                       sensing="activations")
        p.add_tensor(np.ones((2, 4), np.float32))
        p.add_tensor(np.ones((2, 4), np.float32))
        p.set_sensing(1, csp.Sensing.activations(ctx, 4))
        v = p.sensing(0)
        cycle = [ctx, p, v]
        cycle.append(cycle)
        v.cycle = cycle
        del ctx, p, v, cycle
    gc.collect()


# --- observations -----------------------------------------------------------------------------

def test_observe_accumulates_in_place(ctx):
    rng = np.random.default_rng(8)
    sched = csp.Schedule.polynomial(ctx, 0.5, end_step=20, frequency=10)
    p = csp.Pruner(ctx, sched, granularity="row", sensing="activations", observe_window=3)
    p.add_tensor(np.ones((5, 6), np.float32))
    i_g = p.add_tensor(np.ones((5, 6), np.float32), sensing="identity")
    xs = [rng.standard_normal((r, 6)).astype(np.float32) for r in (4, 0, 7)]
    for x in xs:
        p.observe(0, x)
    X = np.concatenate(xs).astype(np.float64)
    acc = p.sensing(0).read_accumulator()
    assert_xtx(acc[:-1].reshape(6, 6), X)
    assert acc[-1] == 11 and p.stats(0).observed_rows == 11
    before = acc.copy()
    with pytest.raises(ValueError, match="C-contiguous"):
        p.observe(0, np.ones((4, 12), np.float32)[:, :6])
    with pytest.raises(TypeError, match="float32"):
        p.observe(0, np.ones((4, 6)))
    with pytest.raises(ValueError, match="2-D"):
        p.observe(0, np.ones(6, np.float32))
    with pytest.raises(csp.CspError) as e:
        p.observe(0, np.ones((2, 5), np.float32))
    assert e.value.status == csp.Status.E_SHAPE
    bad = np.ones((3, 6), np.float32)
    bad[1, 2] = np.inf
    with pytest.raises(csp.CspError) as e:
        p.observe(0, bad)
    assert e.value.status == csp.Status.E_NONFINITE
    with pytest.raises(csp.CspError) as e:
        p.observe(i_g, xs[0])
    assert e.value.status == csp.Status.E_INVALID
    np.testing.assert_array_equal(p.sensing(0).read_accumulator(), before)
    # the window: events at 0, 10, 20; the passes of e-2..e observe
    assert [t for t in range(25) if p.wants_observe(t)] == [0, 8, 9, 10, 18, 19, 20]
    with pytest.raises(csp.CspError) as e:
        p.wants_observe(-1)
    assert e.value.status == csp.Status.E_RANGE
    gmp = csp.Pruner(ctx, sched, granularity="row")
    gmp.add_tensor(np.ones((2, 2), np.float32))
    assert not any(gmp.wants_observe(t) for t in range(12))


def test_event_without_observations_is_refused(ctx):
    w = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=2), granularity="row",
                   sensing="activations")
    p.add_tensor(w)
    before = w.copy()
    with pytest.raises(csp.CspError) as e:
        p.step(0)
    assert e.value.status == csp.Status.E_STATE
    np.testing.assert_array_equal(w, before)
    p.observe(0, np.eye(4, dtype=np.float32))
    assert p.step(0) == csp.Status.PRUNED
    assert p.stats(0).observed_rows == 0  # the pruner resets its own accumulator
    assert (p.mask(0).sum(1) == 2).all()


# --- the step callback ---------------------------------------------------------------------

def test_step_callback(ctx):
    w = np.arange(1, 17, dtype=np.float32).reshape(2, 8)
    sched = csp.Schedule.polynomial(ctx, 0.5, initial_sparsity=0.25, end_step=4, frequency=2)
    p = csp.Pruner(ctx, sched)
    p.add_tensor(w)
    calls = []

    def record(pruner, step, status, event):
        calls.append((step, status, event, pruner.nnz()))
        assert pruner is p
    p.set_callback(record)
    for t in range(3):
        p.step(t)
    kept = [16 - round(16 * sched.target(t)) for t in (0, 2)]
    assert calls == [(0, csp.Status.PRUNED, True, kept[0]),
                     (1, csp.Status.MASKED, False, kept[0]),
                     (2, csp.Status.PRUNED, True, kept[1])]
    assert kept == [12, 8]
    w[0, 7] = np.nan  # a failing step reaches the callback with its error
    with pytest.raises(csp.CspError) as e:
        p.step(4)
    assert e.value.status == csp.Status.E_NONFINITE and e.value.__cause__ is None
    assert calls[-1][:3] == (4, csp.Status.E_NONFINITE, True)
    w[0, 7] = 16
    p.set_callback(None)
    p.step(4)
    assert len(calls) == 4 and p.step_stats().steps == 4
    with pytest.raises(TypeError, match="callable"):
        p.set_callback(42)


def test_step_callback_errors_keep_the_step_applied(ctx):
    w = np.arange(1, 9, dtype=np.float32)
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=5))
    p.add_tensor(w)

    def fail(pruner, step, status, event):
        if event:
            raise RuntimeError("metrics sink down")
    p.set_callback(fail)
    with pytest.raises(csp.CspError) as e:
        p.step(0)
    assert e.value.status == csp.Status.E_CALLBACK
    assert isinstance(e.value.__cause__, RuntimeError)
    assert "applied" in e.value.message
    assert p.last_step == 0 and p.nnz() == 4 and (w[:4] == 0).all()  # applied
    assert p.step(0) == csp.Status.MASKED  # the same step again: masks re-applied
    assert p.step_stats().steps == 2

    def nested(pruner, step, status, event):
        pruner.step(step + 1)
    p.set_callback(nested)
    with pytest.raises(csp.CspError) as e:
        p.step(1)
    assert e.value.status == csp.Status.E_CALLBACK
    assert isinstance(e.value.__cause__, csp.CspError)
    assert e.value.__cause__.status == csp.Status.E_STATE
    assert p.last_step == 1

    def interrupt(pruner, step, status, event):
        raise KeyboardInterrupt
    p.set_callback(interrupt)
    with pytest.raises(KeyboardInterrupt):
        p.step(2)

    def replace(pruner, step, status, event):
        pruner.set_callback(lambda *a: None)  # replacing itself from inside
    p.set_callback(replace)
    assert p.step(3) == csp.Status.MASKED
    assert p.step(4) == csp.Status.MASKED


def test_schedule_callback_error_comes_first(ctx):
    def target(step):
        raise ValueError("no target")

    def fail(*args):
        raise RuntimeError("second")
    p = csp.Pruner(ctx, csp.Schedule.callback(ctx, target, 0.5, frequency=1))
    p.add_tensor(np.ones(4, np.float32))
    p.set_callback(fail)
    with pytest.raises(csp.CspError) as e:
        p.step(0)
    assert e.value.status == csp.Status.E_CALLBACK and isinstance(e.value.__cause__,
                                                                  ValueError)
    assert p.last_step is None


# --- bad arguments ---------------------------------------------------------------------------

def test_bad_csp_options(ctx):
    sched = csp.Schedule.constant(ctx, 0.5)
    with pytest.raises(ValueError, match="unknown sensing 'bogus'; one of identity"):
        csp.Pruner(ctx, sched, sensing="bogus")
    with pytest.raises(ValueError, match="unknown correction"):
        csp.Pruner(ctx, sched, correction=7)
    with pytest.raises(TypeError, match="solver must be a SolverMethod"):
        csp.Pruner(ctx, sched, solver=1.5)
    with pytest.raises(TypeError, match="sensing_rho must be a number, not str"):
        csp.Pruner(ctx, sched, sensing_rho="0.5")
    with pytest.raises(TypeError, match="block_size must be an int, not float"):
        csp.Pruner(ctx, sched, block_size=64.0)
    with pytest.raises(TypeError, match="it is sensing_rho now"):
        csp.Pruner(ctx, sched, rho=0.5)  # the old name says where it went
    with pytest.raises(TypeError):
        csp.Pruner(ctx, sched, sensng="gaussian")  # a misspelt keyword
    for kw in (dict(sensing_rho=65.0), dict(sensing_rho=0.0), dict(alpha=1.5),
               dict(sensing_damping=-1.0), dict(shrink=2.0), dict(solver_tol=0.0),
               dict(solver_max_iter=0), dict(observe_window=-1), dict(block_size=0),
               dict(sensing_rho=float("nan")), dict(redraw=2)):
        with pytest.raises(csp.CspError) as e:
            csp.Pruner(ctx, sched, **kw)
        assert e.value.status == csp.Status.E_RANGE, kw
        assert csp._options.option(list(kw)[0]).name in e.value.message
    p = csp.Pruner(ctx, sched, granularity="row")
    for kw, what in ((dict(sensing_rho=0.0), "sensing.rho"),
                     (dict(sensing_damping=-0.5), "sensing.damping"), (dict(alpha=-1), "alpha"),
                     (dict(shrink=-0.1), "shrink"), (dict(block_size=0), "block_size")):
        with pytest.raises(csp.CspError, match=what) as e:
            p.add_tensor(np.ones((2, 4), np.float32), **kw)
        assert e.value.status == csp.Status.E_RANGE, kw
    assert p.experimental("alpha") == pytest.approx(0.1)  # restored after the refusal
    with pytest.raises(csp.CspError) as e:
        p.add_tensor(np.ones((2, 4), np.float32), alpha=float("nan"))
    assert e.value.status == csp.Status.E_RANGE
    with pytest.raises(csp.CspError) as e:
        p.add_tensor(np.ones((2, 4), np.float32), sensing="gaussian", granularity="tensor")
    assert e.value.status == csp.Status.E_UNSUPPORTED and "ROW" in e.value.message
    with pytest.raises(TypeError, match="add_tensor"):
        p.add_tensor(np.ones((2, 4), np.float32), observe_window=3)  # pruner-wide only
    assert len(p) == 0 and not p._owned  # nothing left behind


# --- state ------------------------------------------------------------------------------------

def test_csp_state_resumes_bit_for_bit_with_accumulators_and_lambdas(ctx):
    """Activations sensing + FISTA (and Gaussian + ISTA, blocks + OMP): state()
    mid-way through an observation window, after events that left warm-start
    lambdas, resumes exactly; without the accumulator it would not."""
    rng = np.random.default_rng(12)
    sched = csp.Schedule.polynomial(ctx, 0.8, end_step=20, frequency=5, exponent=1)
    shapes = [(6, 10), (5, 8), (300,)]
    inputs = [rng.standard_normal((8, 10)).astype(np.float32) for _ in range(30)]

    def build(arrays):
        p = csp.Pruner(ctx, sched, granularity="row", sensing="gaussian",
                       correction="full", observe_window=4)
        p.add_tensor(arrays[0], sensing="activations", solver="fista", correction="blend")
        p.add_tensor(arrays[1], solver="ista")
        p.add_tensor(arrays[2], block_size=64)
        p.set_callback(lambda *a: calls.append(a[1]))
        return p

    def run(p, arrays, steps, deltas):
        for t in steps:
            for a, d in zip(arrays, deltas[t]):
                a += d
            if p.wants_observe(t):
                p.observe(0, inputs[t])
            p.step(t)

    calls = []
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    deltas = [[0.01 * rng.standard_normal(s).astype(np.float32) for s in shapes]
              for _ in range(30)]
    p1 = build(arrays)
    run(p1, arrays, range(19), deltas)  # mid-window of the event at 20 (17..20)
    state, acc = p1.state(), p1.sensing(0).read_accumulator()
    assert acc[-1] == 16 and p1.stats(0).observed_rows == 16
    # the library's checkpoint, with the accumulator and the solvers' lambdas
    assert {"SENS", "WARM", "STAT"} <= set(checkpoint_sections(state["checkpoint"]))

    copies = [a.copy() for a in arrays]
    p2 = build(copies)
    n_calls = len(calls)
    v = p2.sensing(1)
    p2.load_state(state)
    assert len(calls) == n_calls  # loading runs no step callback
    assert not v.closed and v.kind == S.GAUSSIAN  # borrowed views stay valid
    np.testing.assert_array_equal(p2.sensing(0).read_accumulator(), acc)
    same_stats(p1, p2)
    for i in range(3):
        np.testing.assert_array_equal(p2.mask(i), p1.mask(i))

    # a control: the same resume without the accumulator goes elsewhere
    controls = [a.copy() for a in copies]
    p3 = build(controls)
    p3.load_state(state)
    p3.sensing(0).reset()

    run(p1, arrays, range(19, 30), deltas)
    run(p2, copies, range(19, 30), deltas)
    run(p3, controls, range(19, 30), deltas)
    assert len(calls) == n_calls + 33
    assert p2.digest() == p1.digest()
    for a, b in zip(arrays, copies):
        np.testing.assert_array_equal(a, b)
    same_stats(p1, p2)
    assert p1.stats(0).events == 5 and p1.stats(0).solver == M.FISTA
    assert not np.array_equal(controls[0], arrays[0])


@pytest.mark.parametrize("nm", [None, (2, 4), (4, 8)])
def test_wanda_support_against_numpy(ctx, nm):
    """support="wanda": the largest |w_j| sqrt(G_jj) per row (ROW) or per group
    of M (N:M); with correction none the kept weights stay, with full they are
    the float64 refit on that support."""
    rng = np.random.default_rng()
    n = 24
    a = rng.standard_normal((3 * n, n)) * rng.uniform(0.2, 3.0, n) + 0.5 * rng.standard_normal(
        (3 * n, 1))
    gram = a.T @ a / (3 * n) + 0.1 * np.eye(n)
    w0 = rng.standard_normal((5, n)).astype(np.float32)
    score = np.abs(w0.astype(np.float64)) * np.sqrt(np.diag(gram))
    if nm is None:
        keep = np.zeros(w0.shape, bool)
        np.put_along_axis(keep, np.argsort(-score, axis=1, kind="stable")[:, :n // 2], True, 1)
    else:
        g = score.reshape(5, n // nm[1], nm[1])
        order = np.argsort(-g, axis=2, kind="stable")[:, :, :nm[0]]
        keep = np.zeros(g.shape, bool)
        np.put_along_axis(keep, order, True, 2)
        keep = keep.reshape(w0.shape)
    gran = dict(granularity="row") if nm is None else dict(granularity="nm", nm=nm)
    for corr in ("none", "full"):
        w = w0.copy()
        p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1), sensing="gram",
                       correction=corr, **gran)
        p.add_tensor(w, support="wanda")
        p.sensing(0).set_gram(gram)
        assert p.step(0) == csp.Status.PRUNED
        np.testing.assert_array_equal(w != 0, keep)
        if corr == "none":
            np.testing.assert_array_equal(w, np.where(keep, w0, 0))
            continue
        for r in range(5):
            s, d = keep[r], ~keep[r]
            x = w0[r, s] + np.linalg.solve(gram[np.ix_(s, s)], gram[np.ix_(s, d)] @ w0[r, d])
            np.testing.assert_allclose(w[r, s], x, rtol=2e-4, atol=2e-4)
