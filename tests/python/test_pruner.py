"""csp.Pruner: masks against an independent numpy reference and against the
same run in C, the digest formula, companions, stats, state, errors and
lifetimes."""

import gc
import subprocess

import numpy as np
import pytest

import csprune as csp

G = csp.Granularity


# --- independent references ----------------------------------------------------

def digest_reference(masks):
    """docs/guide.md's formula: FNV-1a 64 over numel (8 bytes LE) and the
    LSB-first packed mask bytes of every non-excluded tensor."""
    h = 0xcbf29ce484222325
    for m in masks:
        m = np.asarray(m, bool).ravel()
        data = len(m).to_bytes(8, "little") + np.packbits(m, bitorder="little").tobytes()
        for b in data:
            h = ((h ^ b) * 0x100000001b3) % 2 ** 64
    return h


def prune_units(w, mask, units, target):
    """GMP on a flat weight vector: in every unit (index array) keep the
    largest |w| among the kept, ties to the lower index, with
    round_half_even(target * len(unit)) zeros (never fewer than already)."""
    for unit in units:
        zeros = round(target * len(unit))
        have = len(unit) - int(mask[unit].sum())
        if zeros <= have:
            continue
        kept = unit[mask[unit]]
        # ascending |w|, and among equal |w| the higher index first (pruned first)
        order = np.lexsort((-kept, np.abs(w[kept])))
        mask[kept[order[:zeros - have]]] = False


def reference_run(snapshots, sched, granularity, shape):
    """The masks and weights a GMP pruner should produce when the host writes
    snapshots[t] into the weights and then steps t."""
    n = int(np.prod(shape))
    if granularity == G.TENSOR:
        units = [np.arange(n)]
    else:  # ROW
        cols = n // shape[0]
        units = [np.arange(r * cols, (r + 1) * cols) for r in range(shape[0])]
    mask = np.ones(n, bool)
    last = -1
    w = None
    for t, snap in enumerate(snapshots):
        w = snap.ravel().copy()
        e = sched.last_event(t)
        if e is not None and e > last:
            prune_units(w, mask, units, sched.target(e))
        w[~mask] = 0
        last = t
    return mask.reshape(shape), w.reshape(shape)


def snapshots(rng, steps, shape, dtype=np.float32, ties=False):
    if ties:  # few distinct magnitudes, both signs, and signed zeros
        vals = rng.integers(-3, 4, size=(steps,) + shape).astype(dtype)
        vals[vals == 0] = -0.0
        return list(vals)
    base = rng.standard_normal(shape).astype(dtype)
    return [(base + 0.05 * t * rng.standard_normal(shape)).astype(dtype)
            for t in range(steps)]


# --- against the numpy reference --------------------------------------------------

@pytest.mark.parametrize("granularity", [G.TENSOR, G.ROW])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masks_match_numpy_reference(ctx, granularity, ties, dtype):
    rng = np.random.default_rng(11)
    shape = (13, 37)
    snaps = snapshots(rng, 40, shape, dtype, ties)
    sched = csp.Schedule.polynomial(ctx, 0.87, end_step=33, frequency=4)
    w = np.zeros(shape, dtype)
    mom = np.ones(shape, dtype)
    pruner = csp.Pruner(ctx, sched, granularity=granularity)
    i = pruner.add_tensor(w, "w")
    pruner.add_companion(i, mom)
    for t, snap in enumerate(snaps):
        w[...] = snap
        st = pruner.step(t)
        assert st == (csp.Status.PRUNED if sched.is_event(t) else csp.Status.MASKED)
    want_mask, want_w = reference_run(snaps, sched, granularity, shape)
    mask = pruner.mask(i)
    assert mask.dtype == np.bool_ and mask.shape == shape
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(w, want_w)
    assert (mom[~mask] == 0).all() and (mom[mask] == 1).all()
    assert pruner.digest() == digest_reference([mask])
    assert pruner.nnz(i) == pruner.nnz() == mask.sum()


def test_mask_words_bytes_and_bools_agree(ctx):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 29)).astype(np.float32)  # 145 weights: 3 words
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.6, frequency=1))
    pruner.add_tensor(w)
    pruner.step(0)
    words = pruner.mask_words(0)
    assert words.dtype == np.uint64 and words.shape == (3,)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")
    assert not bits[145:].any()  # unused bits of the last word are 0
    np.testing.assert_array_equal(bits[:145].astype(bool), pruner.mask(0).ravel())
    np.testing.assert_array_equal(pruner.mask(0), w != 0)
    assert pruner.nnz() == 145 - round(0.6 * 145)


def test_global_group_and_overrides(ctx):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((8, 8)).astype(np.float32)
    b = 3 * rng.standard_normal((4, 16)).astype(np.float32)
    c = rng.standard_normal((6, 6)).astype(np.float32)
    a0, b0 = a.copy(), b.copy()
    sched = csp.Schedule.constant(ctx, 0.5, frequency=1)
    pruner = csp.Pruner(ctx, sched)
    ia = pruner.add_tensor(a, granularity="global", group=1)
    ib = pruner.add_tensor(b, granularity=G.GLOBAL, group=1)
    ic = pruner.add_tensor(c, final_sparsity=0.25)
    pruner.step(0)
    # one threshold over the group: the 64 largest of the 128 concatenated
    allw = np.abs(np.concatenate([a0.ravel(), b0.ravel()]))
    keep = np.zeros(128, bool)
    keep[np.argsort(-allw, kind="stable")[:64]] = True
    np.testing.assert_array_equal(np.concatenate([pruner.mask(ia).ravel(),
                                                  pruner.mask(ib).ravel()]), keep)
    assert pruner.nnz(ic) == 36 - round(0.25 * 36)
    s = pruner.stats(ic)
    assert s.target_sparsity == 0.25 and s.granularity is G.TENSOR
    assert [st.granularity for st in pruner.stats()] == [G.GLOBAL, G.GLOBAL, G.TENSOR]


def test_nm_sparsity(ctx):
    rng = np.random.default_rng(9)
    w = rng.standard_normal((6, 16)).astype(np.float32)
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1), granularity="nm",
                        nm=(2, 4))
    pruner.add_tensor(w)
    pruner.step(0)
    groups = pruner.mask(0).reshape(6, 4, 4)
    assert (groups.sum(-1) == 2).all()
    with pytest.raises(csp.CspError) as e:
        pruner2 = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5), granularity="nm")
        pruner2.add_tensor(np.ones((2, 6), np.float32))
    assert e.value.status == csp.Status.E_SHAPE


def test_excluded_tensor(ctx):
    w = np.arange(1, 11, dtype=np.float32)
    x = np.arange(1, 11, dtype=np.float32)
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1))
    pruner.add_tensor(w)
    ix = pruner.add_tensor(x, exclude=True)
    pruner.step(0)
    assert (x == np.arange(1, 11)).all() and pruner.mask(ix).all()
    assert pruner.stats(ix).excluded and pruner.nnz() == 15
    assert pruner.digest() == digest_reference([pruner.mask(0)])
    with pytest.raises(csp.CspError) as e:
        pruner.add_companion(ix, np.zeros(10, np.float32))
    assert e.value.status == csp.Status.E_INVALID


def test_empty_pruner_says_so(ctx):
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1))
    assert pruner.step(0) == csp.Status.NO_TENSORS
    assert pruner.step(3) == csp.Status.NO_TENSORS and pruner.step_stats().steps == 0
    w = np.arange(1, 11, dtype=np.float32)
    pruner.add_tensor(w)  # still open: nothing was recorded
    assert pruner.step(3) == csp.Status.PRUNED and (w == 0).sum() == 5


def test_stats_fields(ctx):
    w = np.linspace(-1, 1, 40, dtype=np.float32).reshape(4, 10)
    sched = csp.Schedule.polynomial(ctx, 0.5, end_step=10, frequency=5)
    pruner = csp.Pruner(ctx, sched, granularity="row")
    pruner.add_tensor(w, "layer.weight")
    s = pruner.stats(0)
    assert s == csp.TensorStats(index=0, name="layer.weight", numel=40, nnz=40,
                                target_sparsity=0.0, achieved_sparsity=0.0,
                                granularity=G.ROW, excluded=False, last_event=None,
                                sensing=csp.SensingKind.IDENTITY, solver=csp.SolverMethod.OMP,
                                correction=csp.Correction.FULL, converged=True,
                                weight_error=0.0, sensing_error=0.0, solver_iterations=0,
                                solver_iterations_max=0, rows_not_converged=0, rows_damped=0,
                                events=0, event_seconds=0.0, total_seconds=0.0,
                                observed_rows=0, observe_seconds=0.0)
    assert pruner.last_step is None
    for t in range(12):
        pruner.step(t)
    s = pruner.stats(0)
    assert (s.nnz, s.target_sparsity, s.achieved_sparsity, s.last_event) == (20, 0.5, 0.5, 10)
    assert pruner.last_step == 11 and len(pruner) == pruner.num_tensors == 1


# --- against the same run in C --------------------------------------------------------

C_CASES = {
    "tensor_f32": dict(pruner=(G.TENSOR, 2, 4), tensors=[(1, 9, 31, 0, 0, 0, 0, 0, -1)]),
    "row_f64": dict(pruner=(G.ROW, 2, 4), tensors=[(2, 7, 20, 0, 0, 0, 0, 0, -1)]),
    "mixed": dict(pruner=(G.TENSOR, 2, 4), tensors=[
        (1, 8, 16, G.GLOBAL, 3, 0, 0, 0, -1), (1, 4, 24, G.GLOBAL, 3, 0, 0, 0, -1),
        (1, 5, 8, G.NM, 0, 1, 4, 0, -1), (2, 3, 7, G.ROW, 0, 0, 0, 0, 0.3),
        (1, 2, 5, 0, 0, 0, 0, 1, -1)]),
}


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("case", sorted(C_CASES))
def test_masks_equal_those_of_c(ctx, helper, tmp_path, case, ties):
    spec = C_CASES[case]
    steps, sf, end, freq = 30, 0.8, 24, 3
    rng = np.random.default_rng(len(case))
    lines = ["schedule %d 0.1 %r 3 2 %d %d" % (csp.ScheduleKind.POLYNOMIAL, sf, end, freq),
             "pruner %d %d %d" % spec["pruner"], "steps %d" % steps]
    snaps = []
    for t in spec["tensors"]:
        lines.append("tensor " + " ".join(str(int(v)) if i < 8 else repr(float(v))
                                           for i, v in enumerate(t)))
        dtype = np.float32 if t[0] == 1 else np.float64
        snaps.append(snapshots(rng, steps, (t[1], t[2]), dtype, ties))
    (tmp_path / "spec").write_text("\n".join(lines) + "\n")
    with open(tmp_path / "weights", "wb") as f:
        for s in range(steps):
            for k in range(len(spec["tensors"])):
                f.write(snaps[k][s].tobytes())
    run = subprocess.run([helper, "prune", str(tmp_path / "spec"), str(tmp_path / "weights"),
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    c_status = [int(line.split()[2]) for line in run.stdout.splitlines()
                if line.startswith("status")]
    c_digest = int(next(line.split()[1] for line in run.stdout.splitlines()
                        if line.startswith("digest")))
    c_nnz = int(next(line.split()[1] for line in run.stdout.splitlines()
                     if line.startswith("nnz")))

    # The same run through the binding.
    sched = csp.Schedule.polynomial(ctx, sf, initial_sparsity=0.1, begin_step=2, end_step=end,
                                    frequency=freq)
    g, n, m = spec["pruner"]
    pruner = csp.Pruner(ctx, sched, granularity=g, nm=(n, m))
    ws, cs = [], []
    for t, s in zip(spec["tensors"], snaps):
        w = np.zeros_like(s[0])
        i = pruner.add_tensor(w, granularity=t[3] or None, group=t[4],
                              nm=(t[5], t[6]) if t[5] else None, exclude=bool(t[7]),
                              final_sparsity=None if t[8] < 0 else t[8])
        c = np.ones_like(w)
        if not t[7]:
            pruner.add_companion(i, c)
        ws.append(w)
        cs.append(c)
    py_status = []
    for step in range(steps):
        for w, s in zip(ws, snaps):
            w[...] = s[step]
        py_status.append(int(pruner.step(step)))
    assert py_status == c_status
    assert pruner.digest() == c_digest and pruner.nnz() == c_nnz

    out = (tmp_path / "out").read_bytes()
    pos = 0
    for i, (w, c) in enumerate(zip(ws, cs)):
        nw = (w.size + 63) // 64
        words = np.frombuffer(out, np.uint64, nw, pos)
        pos += 8 * nw
        c_w = np.frombuffer(out, w.dtype, w.size, pos).reshape(w.shape)
        pos += w.nbytes
        c_c = np.frombuffer(out, w.dtype, w.size, pos).reshape(w.shape)
        pos += w.nbytes
        np.testing.assert_array_equal(pruner.mask_words(i), words)
        np.testing.assert_array_equal(w, c_w)
        np.testing.assert_array_equal(c, c_c)
    assert pos == len(out)
    masks = [pruner.mask(i) for i, t in enumerate(spec["tensors"]) if not t[7]]
    assert c_digest == digest_reference(masks)


# --- state --------------------------------------------------------------------------

def _build(ctx, sched, arrays, **kw):
    p = csp.Pruner(ctx, sched, granularity=kw.pop("granularity", G.TENSOR))
    for a, opts in arrays:
        p.add_tensor(a, **opts)
    return p


def same_stats(p1, p2):
    """Every TensorStats and StepStats field but the wall-clock seconds."""
    def strip(st):
        return {k: v for k, v in vars(st).items() if not k.endswith("seconds")}
    assert [strip(s) for s in p2.stats()] == [strip(s) for s in p1.stats()]
    assert strip(p2.step_stats()) == strip(p1.step_stats())


def checkpoint_sections(data):
    """The section tags of a checkpoint (docs/formats.md: section_count at
    offset 24, header_size at 12, 40-byte entries opening with the tag)."""
    head, count = int.from_bytes(data[12:16], "little"), int.from_bytes(data[24:28], "little")
    return [bytes(data[head + 40 * i:head + 40 * i + 4]).decode() for i in range(count)]


@pytest.mark.parametrize("granularity", [G.TENSOR, G.ROW, G.GLOBAL, G.NM])
def test_state_resumes_bit_for_bit(ctx, granularity):
    """N steps, state(), a fresh pruner over copies of the weights (and a
    companion), load_state(), N more steps == 2N uninterrupted steps."""
    rng = np.random.default_rng(21)
    sched = csp.Schedule.polynomial(ctx, 0.75, end_step=20, frequency=5)
    shapes = [(6, 8), (3, 16), (4, 4)]
    opts = [{}, {"final_sparsity": 0.5 if granularity != G.GLOBAL else None}, {"exclude": True}]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    mom1 = np.full(shapes[0], 2.0, np.float32)
    p1 = _build(ctx, sched, list(zip(arrays, opts)), granularity=granularity)
    p1.add_companion(0, mom1)
    deltas = [[0.01 * rng.standard_normal(s).astype(np.float32) for s in shapes]
              for _ in range(28)]
    for t in range(14):
        for a, d in zip(arrays, deltas[t]):
            a += d
        p1.step(t)
    state = p1.state()
    assert sorted(state) == ["checkpoint", "format", "version"]
    assert state["format"] == "csp.Pruner" and state["version"] == 2
    assert state["checkpoint"] == p1.save() and isinstance(state["checkpoint"], bytes)

    # resume: new buffers holding the checkpointed weights, a fresh pruner
    copies = [a.copy() for a in arrays]
    mom2 = mom1.copy()
    p2 = _build(ctx, sched, list(zip(copies, opts)), granularity=granularity)
    p2.add_companion(0, mom2)
    p2.load_state(state)
    assert p2.last_step == 13 and p2.digest() == p1.digest()
    for i in range(3):
        np.testing.assert_array_equal(p2.mask(i), p1.mask(i))
    same_stats(p1, p2)  # the statistics are in the checkpoint too
    # both continue identically
    for t in range(14, 28):
        for a, b, d in zip(arrays, copies, deltas[t]):
            a += d
            b += d
        assert p1.step(t) == p2.step(t)
    assert p2.digest() == p1.digest()
    for a, b in zip(arrays + [mom1], copies + [mom2]):
        np.testing.assert_array_equal(a, b)
    same_stats(p1, p2)


def test_state_of_a_fresh_pruner_and_rollback(ctx):
    sched = csp.Schedule.constant(ctx, 0.5, frequency=2)
    w = np.arange(1, 9, dtype=np.float32)
    p = csp.Pruner(ctx, sched)
    p.add_tensor(w)
    fresh = p.state()
    q = csp.Pruner(ctx, sched)
    q.add_tensor(np.ones(8, np.float32))
    q.load_state(fresh)
    assert q.last_step is None and q.nnz() == 8
    p.step(0)
    p.step(1)
    at1 = p.state()
    p.step(2)
    p.load_state(at1)  # a pruner that stepped may load: a rollback
    assert p.last_step == 1 and p.step_stats().steps == 2
    p.load_state(fresh)
    assert p.last_step is None and p.nnz() == 8 and p.step_stats().steps == 0


def test_state_restores_what_a_replay_could_not(ctx):
    # targets that go down: more zeros than the last event's budget
    sched = csp.Schedule.callback(ctx, lambda t: 0.75 if t == 0 else 0.25, 0.75, frequency=1)
    p = csp.Pruner(ctx, sched)
    p.add_tensor(np.arange(1, 9, dtype=np.float32))
    p.step(0)
    p.step(1)
    assert p.nnz() == 2
    q = csp.Pruner(ctx, sched)
    w = np.arange(1, 9, dtype=np.float32)
    q.add_tensor(w)
    q.load_state(p.state())
    assert q.nnz() == 2 and q.digest() == p.digest()
    assert (w != 0).all()  # host buffers untouched by the load ...
    q.step(1)
    np.testing.assert_array_equal(w != 0, p.mask(0))  # ... the masks reach them at step()


def test_load_state_errors_change_nothing(ctx):
    sched = csp.Schedule.constant(ctx, 0.5, frequency=1)
    p = csp.Pruner(ctx, sched)
    p.add_tensor(np.arange(1, 9, dtype=np.float32), name="w")
    p.step(0)
    state = p.state()
    q = csp.Pruner(ctx, sched)
    q.add_tensor(np.arange(1, 9, dtype=np.float32), name="w")
    q.step(0)
    q.step(1)
    before = (q.last_step, q.digest(), q.save())

    def refused(bad, status, message):
        with pytest.raises(csp.CspError) as e:
            q.load_state(bad)
        assert e.value.status == status, e.value
        assert e.value.message.startswith("csp_pruner_load") and message in e.value.message
        assert (q.last_step, q.digest(), q.save()) == before

    data = state["checkpoint"]
    refused(dict(state, checkpoint=data[:-1]), csp.Status.E_CORRUPT, "")
    for at in (0, 40, len(data) // 2, len(data) - 6):  # magic, header, a section, trailer
        flipped = bytearray(data)
        flipped[at] ^= 0x10
        refused(dict(state, checkpoint=bytes(flipped)), csp.Status.E_CORRUPT, "")
    refused(dict(state, checkpoint=b""), csp.Status.E_CORRUPT, "")
    # the same checkpoint into pruners configured otherwise: the library says what differs
    for build, status, message in (
            (lambda r: r.add_tensor(np.ones(9, np.float32), name="w"), csp.Status.E_SHAPE,
             "shape differs"),
            (lambda r: r.add_tensor(np.ones(8), name="w"), csp.Status.E_DTYPE, ""),
            (lambda r: r.add_tensor(np.ones(8, np.float32), name="v"), csp.Status.E_STATE,
             "name differs"),
            (lambda r: [r.add_tensor(np.ones(8, np.float32), name="w"),
                        r.add_tensor(np.ones(8, np.float32))], csp.Status.E_SHAPE, "tensors")):
        r = csp.Pruner(ctx, sched)
        build(r)
        with pytest.raises(csp.CspError) as e:
            r.load_state(state)
        assert e.value.status == status and message in e.value.message, e.value
        assert r.last_step is None
    other = csp.Schedule.constant(ctx, 0.6, frequency=1)
    r = csp.Pruner(ctx, other)
    r.add_tensor(np.ones(8, np.float32), name="w")
    with pytest.raises(csp.CspError) as e:
        r.load_state(state)
    assert e.value.status == csp.Status.E_STATE and "final_sparsity" in e.value.message
    # not a state at all: Python errors before the library is asked
    for bad in (dict(state, version=1), dict(state, format="csprune.torch.ModulePruner"),
                {"format": "csp.Pruner", "version": 2}):
        with pytest.raises(ValueError, match="csp.Pruner"):
            q.load_state(bad)
    with pytest.raises(TypeError, match="dict"):
        q.load_state(data)
    assert (q.last_step, q.digest(), q.save()) == before


# --- errors -------------------------------------------------------------------------

def test_step_errors_leave_everything_untouched(ctx):
    w = np.arange(1, 17, dtype=np.float32).reshape(4, 4)
    pruner = csp.Pruner(ctx, csp.Schedule.polynomial(ctx, 0.5, end_step=10, frequency=5))
    pruner.add_tensor(w)
    assert pruner.step(0) == csp.Status.PRUNED
    with pytest.raises(csp.CspError) as e:
        pruner.step(-1)
    assert e.value.status == csp.Status.E_RANGE
    assert pruner.step(3) == csp.Status.MASKED
    with pytest.raises(csp.CspError) as e:
        pruner.step(2)
    assert e.value.status == csp.Status.E_STATE
    w[3, 3] = np.nan
    before, words = w.copy(), pruner.mask_words(0)
    with pytest.raises(csp.CspError) as e:
        pruner.step(5)
    assert e.value.status == csp.Status.E_NONFINITE
    np.testing.assert_array_equal(w, before)
    np.testing.assert_array_equal(pruner.mask_words(0), words)
    with pytest.raises(csp.CspError) as e:
        pruner.add_tensor(np.ones(3, np.float32))
    assert e.value.status == csp.Status.E_STATE


def test_callback_error_in_step(ctx):
    def fn(step):
        if step >= 5:
            raise RuntimeError("schedule service down")
        return 0.5
    w = np.arange(1, 9, dtype=np.float32)
    pruner = csp.Pruner(ctx, csp.Schedule.callback(ctx, fn, 0.5, frequency=5))
    pruner.add_tensor(w)
    pruner.step(0)
    before = w.copy()
    with pytest.raises(csp.CspError) as e:
        pruner.step(5)
    assert e.value.status == csp.Status.E_CALLBACK
    assert isinstance(e.value.__cause__, RuntimeError)
    np.testing.assert_array_equal(w, before)
    assert pruner.last_step == 0


def test_add_errors(ctx):
    sched = csp.Schedule.constant(ctx, 0.5)
    pruner = csp.Pruner(ctx, sched)
    w = np.ones((4, 4), np.float32)
    i = pruner.add_tensor(w)
    with pytest.raises(csp.CspError) as e:
        pruner.add_tensor(w)
    assert e.value.status == csp.Status.E_INVALID
    with pytest.raises(csp.CspError) as e:
        pruner.add_companion(i, np.ones((2, 8), np.float32))
    assert e.value.status == csp.Status.E_SHAPE
    with pytest.raises(csp.CspError) as e:
        pruner.add_companion(7, np.ones((4, 4), np.float32))
    assert e.value.status == csp.Status.E_RANGE
    with pytest.raises(csp.CspError) as e:
        pruner.add_tensor(np.ones(4, np.float32), final_sparsity=1.0)
    assert e.value.status == csp.Status.E_RANGE
    with pytest.raises(csp.CspError) as e:
        pruner.add_tensor(np.ones(8, np.float32), granularity="nm", nm=(4, 4))
    assert e.value.status == csp.Status.E_RANGE
    with pytest.raises(ValueError, match="granularity"):
        pruner.add_tensor(np.ones(4, np.float32), granularity=9)
    with pytest.raises(TypeError, match="pair"):
        pruner.add_tensor(np.ones(4, np.float32), nm=4)
    with pytest.raises(ValueError, match="C-contiguous"):
        pruner.add_tensor(np.ones((4, 4), np.float32).T)
    with pytest.raises(TypeError, match="float32 or float64"):
        pruner.add_companion(i, np.ones((4, 4), np.int64))
    with pytest.raises(IndexError):
        pruner.mask(5)
    assert len(pruner) == 1 and len(pruner._owned) == 1  # failed adds left nothing behind
    with csp.Context() as other:
        t = csp.Tensor(other, np.ones(3, np.float32))
        with pytest.raises(csp.CspError) as e:
            pruner.add_tensor(t)
        assert e.value.status == csp.Status.E_INVALID


def test_bad_pruner_options(ctx):
    sched = csp.Schedule.constant(ctx, 0.5)
    with pytest.raises(TypeError, match="schedule must be a csp.Schedule"):
        csp.Pruner(ctx, None)
    with pytest.raises(TypeError, match="ctx must be a csp.Context"):
        csp.Pruner(None, sched)
    with pytest.raises(TypeError, match="ctx must be a csp.Context"):
        csp.Schedule.constant(object(), 0.5)
    with pytest.raises(ValueError, match="granularity"):
        csp.Pruner(ctx, sched, granularity="rows")
    with pytest.raises(csp.CspError) as e:
        csp.Pruner(ctx, sched, nm=(3, 2))
    assert e.value.status == csp.Status.E_RANGE
    with pytest.raises(csp.CspError) as e:
        csp.Pruner(ctx, sched, nm=(1, csp.NM_MAX_M + 1))
    assert e.value.status == csp.Status.E_RANGE


# --- lifetimes ------------------------------------------------------------------------

def test_closed_pruner_raises(ctx):
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5))
    pruner.add_tensor(np.ones(4, np.float32))
    with pruner:
        pass
    assert pruner.closed and repr(pruner) == "<csp.Pruner closed>"
    for call in (lambda: pruner.step(0), lambda: pruner.mask(0), pruner.digest,
                 pruner.nnz, lambda: pruner.add_tensor(np.ones(2, np.float32)),
                 pruner.state, lambda: len(pruner)):
        with pytest.raises(ValueError, match="Pruner is closed"):
            call()
    pruner.close()


def test_pins_never_go_negative(ctx):
    t = csp.Tensor(ctx, np.ones(2, np.float32))
    t.close()
    t.close()
    assert t.closed and t._pins == 0 and ctx._pins == 0 and not ctx.closed


def test_closing_a_borrowed_tensor_closes_its_pruner(ctx):
    w = np.ones(8, np.float32)
    t = csp.Tensor(ctx, w)
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5))
    pruner.add_tensor(t)
    t.close()
    assert pruner.closed


def test_pruner_owns_the_tensors_it_wraps(ctx):
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1))
    pruner.add_tensor(np.arange(1, 9, dtype=np.float32))  # only the pruner holds it
    gc.collect()
    t = pruner.tensor(0)
    pruner.step(0)
    np.testing.assert_array_equal(t.buffer, [0, 0, 0, 0, 5, 6, 7, 8])
    pruner.close()
    assert t.closed


def test_context_close_frees_in_a_safe_order():
    ctx = csp.Context()
    comp = np.ones(4, np.float32)
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5))
    pruner.add_tensor(np.ones(4, np.float32))
    c = pruner.add_companion(0, comp)  # created after the pruner
    ctx.close()
    assert pruner.closed and c.closed


def test_garbage_collection_in_any_order():
    # cycles make the collector finalise objects in an arbitrary order
    for _ in range(20):
        ctx = csp.Context()
        sched = csp.Schedule.callback(ctx, lambda t: 0.5, 0.5)
        p = csp.Pruner(ctx, sched)
        w = np.ones(4, np.float32)
        p.add_tensor(csp.Tensor(ctx, w))
        cycle = [ctx, sched, p]
        cycle.append(cycle)
        p.cycle = cycle
        del ctx, sched, p, cycle
    gc.collect()


def test_collected_cycle_frees_everything_dependents_first(monkeypatch):
    freed = []
    for cls in (csp.Context, csp.Tensor, csp.Pruner, csp.Schedule):
        def free(handle, name=cls.__name__, real=cls._free):
            freed.append(name)
            real(handle)
        monkeypatch.setattr(cls, "_free", free)
    ctx = csp.Context()
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5))
    p.add_tensor(np.ones(4, np.float32))
    p.add_companion(0, csp.Tensor(ctx, np.ones(4, np.float32)))
    p.cycle = p
    ctx.cycle = ctx
    del ctx, p
    gc.collect()
    assert sorted(freed) == ["Context", "Pruner", "Schedule", "Tensor", "Tensor"]
    assert freed[-1] == "Context"
    assert freed.index("Pruner") < min(i for i, n in enumerate(freed) if n == "Tensor")


def test_many_steps_do_not_leak_handles(ctx):
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1))
    pruner.add_tensor(np.ones(64, np.float32))
    for t in range(200):
        pruner.step(t)
    # the temporary schedule is gone; the pruner and its tensor remain
    assert len(ctx._users) == 2 and ctx._pins == 2


def test_repr():
    with csp.Context() as ctx:
        p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5))
        p.add_tensor(np.ones(4, np.float32), "fc.weight")
        assert repr(p) == "<csp.Pruner 1 tensors, last step None>"
        assert repr(p.tensor(0)) == "<csp.Tensor 'fc.weight' F32 (4,)>"


def test_gradients_masked_only_on_request(ctx):
    rng = np.random.default_rng()
    w = rng.standard_normal((6, 16)).astype(np.float32)
    g = np.zeros_like(w)
    other = np.zeros((6, 16), np.float64)
    sched = csp.Schedule.polynomial(ctx, 0.5, end_step=4, frequency=2)
    p = csp.Pruner(ctx, sched, granularity="row")
    i = p.add_tensor(w, "w")
    p.add_gradient(i, g)
    with pytest.raises(csp.CspError):
        p.add_gradient(i, g)                  # already bound
    with pytest.raises(csp.CspError):
        p.apply_mask(i, np.zeros((16, 6), np.float32))
    for step in range(6):
        g[:] = rng.standard_normal(g.shape) + 5.0
        before = g.copy()
        p.step(step)
        assert np.array_equal(g, before)      # step() leaves gradients alone
        keep = p.mask(i).astype(bool)
        p.mask_gradients()
        assert np.array_equal(g[keep], before[keep]) and not g[~keep].any()
        other[:] = 1.0
        p.apply_mask(i, other)
        assert np.array_equal(other != 0, keep)
    assert (~p.mask(i).astype(bool)).sum() == 6 * 8
    p.close()
