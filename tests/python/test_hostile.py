"""Hostile use of the binding: copies of objects that own a C handle,
callbacks that close or re-enter what is running them, strings with NUL
bytes and integers that ctypes would wrap. These are regression tests of an
adversarial review: before the fixes a copy shared (and freed twice) its C
object, close() inside a callback freed the object the running C call was
using, a NUL cut a path or a name short, and step(2**64 + 10) ran as step 10.

Where the old behaviour freed memory under a running C call, the test would
crash the interpreter instead of failing. The ``frees`` fixture prevents
that: it wraps the C free functions, and a free requested while the test
says it is inside a C call (a callback) is recorded and skipped (leaked), so
such a regression fails the test cleanly.
"""

import contextlib
import copy
import importlib
import os
import pathlib
import pickle
import threading
import types
import weakref

import numpy as np
import pytest

import csprune as csp
from csprune._core import _Handle

S = csp.Status
HANDLES = (csp.Context, csp.Tensor, csp.Schedule, csp.Pruner, csp.Sensing, csp.Solver)


class FreeGuard:
    """Stands in for the C free functions of every handle class."""

    def __init__(self):
        self.depth = 0
        self.unsafe = []  # class names freed while inside a C call
        self.freed = []   # class names freed (really)

    @contextlib.contextmanager
    def inside(self):
        """The code under it runs inside a libcsp call (a callback)."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def wrap(self, name, real):
        def free(handle):
            if self.depth:
                self.unsafe.append(name)
                return  # leaked on purpose: the running C call still uses it
            self.freed.append(name)
            real(handle)
        return free


@pytest.fixture
def frees(monkeypatch):
    guard = FreeGuard()
    for cls in HANDLES:
        monkeypatch.setattr(cls, "_free", guard.wrap(cls.__name__, cls.__dict__["_free"]))
    return guard


def weights():
    """4 x 16 float32 weights without ties (GMP's masks are then unique)."""
    return (((np.arange(64) * 37) % 64) + 1).astype(np.float32).reshape(4, 16)


# --- copying ----------------------------------------------------------------------------------

COPIES = {"copy.copy": copy.copy, "copy.deepcopy": copy.deepcopy, "pickle.dumps": pickle.dumps}


def _defuse(dup):
    """A copy the binding should not have made shares the original's C
    object: make it inert, so that the failing test does not free it twice."""
    if isinstance(dup, _Handle):
        dup.__dict__.update(_handle=None, _closing=True, _freed=True, _deps=[])
    elif hasattr(dup, "_pruner"):  # ModulePruner
        dup.__dict__.update(_pruner=None, _hooks=[], _owned_ctx=None, _owned_schedule=None)


def refused_copy(how, obj):
    """The TypeError message of COPIES[how](obj); fails the test if it copied."""
    try:
        dup = COPIES[how](obj)
    except TypeError as e:
        return str(e)
    _defuse(dup)
    pytest.fail("%s made a copy of %r over the same C object" % (how, obj))


@pytest.mark.parametrize("how", sorted(COPIES))
def test_handles_cannot_be_copied_or_pickled(how):
    with csp.Context(seed=3) as ctx:
        w = weights()
        sched = csp.Schedule.constant(ctx, 0.5, frequency=1)
        p = csp.Pruner(ctx, sched, granularity="row", sensing="gaussian")
        p.add_tensor(w, "w")
        objects = [("Context", "csp.Context(seed=", ctx),
                   ("Tensor", "csp.Tensor(ctx, t.buffer", csp.Tensor(ctx, np.ones(3, np.float32))),
                   ("Schedule", "immutable", sched),
                   ("Pruner", "load_state(pruner.state())", p),
                   ("Sensing", "write_accumulator", csp.Sensing.identity(ctx, 4)),
                   ("Solver", "**solver.options", csp.Solver.omp(ctx)),
                   ("Sensing", "pruner.sensing(index)", p.sensing(0))]
        for name, hint, obj in objects:
            msg = refused_copy(how, obj)
            assert msg.startswith("csp.%s cannot be copied or pickled" % name), msg
            assert hint in msg, msg
        # the originals are untouched and close once each
        assert p.step(0) == S.PRUNED and p.nnz() == 32 and ctx.seed == 3
    assert p.closed and ctx.closed


# --- callbacks that close or re-enter ---------------------------------------------------------

class Env:
    """A pruner with a companion, and what the actions below act on."""

    def __init__(self, ctx, sched, tmp_path):
        self.ctx, self.sched = ctx, sched
        self.w, self.m = weights(), np.ones((4, 16), np.float32)
        self.p = csp.Pruner(ctx, sched, granularity="row")
        self.p.add_tensor(self.w, "w")
        self.p.add_companion(0, self.m)
        self.state = self.p.state()
        self.path = tmp_path / "state.ckpt"
        self.p.save_file(self.path)
        self.buf = np.ones((4, 16), np.float32)
        self.sensing = csp.Sensing.identity(ctx, 16)
        self.solver = csp.Solver.omp(ctx)


# Everything that frees or changes libcsp state, done from inside a callback:
# refused with CspError E_STATE naming the public function.
ACTIONS = {
    "Pruner.close()": lambda e: e.p.close(),
    "Pruner.step()": lambda e: e.p.step(1),
    "Pruner.load_state()": lambda e: e.p.load_state(e.state),
    "Pruner.load()": lambda e: e.p.load(e.state["checkpoint"]),
    "Pruner.load_file()": lambda e: e.p.load_file(e.path),
    "Pruner.add_tensor()": lambda e: e.p.add_tensor(np.ones(8, np.float32)),
    "Pruner.add_companion()": lambda e: e.p.add_companion(0, np.ones((4, 16), np.float32)),
    "Pruner.add_gradient()": lambda e: e.p.add_gradient(0, np.ones((4, 16), np.float32)),
    "Pruner.mask_gradients()": lambda e: e.p.mask_gradients(),
    "Pruner.apply_mask()": lambda e: e.p.apply_mask(0, e.buf),
    "Pruner.observe()": lambda e: e.p.observe(0, np.ones((2, 16), np.float32)),
    "Pruner.set_sensing()": lambda e: e.p.set_sensing(0, None),
    "Context.close()": lambda e: e.ctx.close(),
    "Context.set_log()": lambda e: e.ctx.set_log(None),
    "Context.clear_error()": lambda e: e.ctx.clear_error(),
    "setting Context.num_threads": lambda e: setattr(e.ctx, "num_threads", 2),
    "Schedule.close()": lambda e: e.sched.close(),
    "Tensor.close()": lambda e: e.p.tensor(0).close(),
    "Tensor.set_data()": lambda e: e.p.tensor(0).set_data(np.ones((4, 16), np.float32)),
    "Sensing.close()": lambda e: e.sensing.close(),
    "Sensing.reset()": lambda e: e.sensing.reset(),
    "Solver.close()": lambda e: e.solver.close(),
    "Solver.solve()": lambda e: e.solver.solve(e.sensing, e.buf, k=2, out=e.buf),
}
PLACES = ("step callback", "schedule callback", "log hook")


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_callbacks_cannot_close_or_change_the_running_call(place, action, frees, tmp_path):
    errors, fired = [], []

    def act():
        if fired:
            return
        fired.append(True)
        try:
            with frees.inside():
                ACTIONS[action](env)
        except Exception as e:
            errors.append(e)
            raise

    def log(level, message):
        if place == "log hook" and level == csp.LogLevel.INFO and "pruning event" in message:
            act()  # an exception here is ignored: the hook cannot report

    def target(step):
        act()
        return 0.5

    ctx = csp.Context(seed=5, log=log, log_level="info")
    if place == "schedule callback":
        sched = csp.Schedule.callback(ctx, target, 0.5, frequency=2)
    else:
        sched = csp.Schedule.constant(ctx, 0.5, frequency=2)
    env = Env(ctx, sched, tmp_path)
    if place == "step callback":
        env.p.set_callback(lambda *args: act())
    with csp.Context() as other:  # the same run, no callbacks
        ref_w = weights()
        ref = csp.Pruner(other, csp.Schedule.constant(other, 0.5, frequency=2),
                         granularity="row")
        ref.add_tensor(ref_w)
        ref_before = ref.digest()
        assert ref.step(0) == S.PRUNED
        ref_after = ref.digest()

    if place == "log hook":
        assert env.p.step(0) == S.PRUNED
    else:
        with pytest.raises(csp.CspError) as e:
            env.p.step(0)
        assert e.value.status == S.E_CALLBACK
        assert e.value.__cause__ is errors[0]
    assert fired and errors, "the callback ran and %s was refused" % action
    err = errors[0]
    assert isinstance(err, csp.CspError) and err.status == S.E_STATE, repr(err)
    assert err.message.startswith(action + ": refused while a libcsp call"), err.message
    assert frees.unsafe == []  # nothing was freed under the running call

    # nothing was closed or changed; the step itself is applied unless the
    # schedule callback (asked for the event's target) failed
    for obj in (ctx, sched, env.p, env.p.tensor(0), env.sensing, env.solver,
                *env.p.companions(0)):
        assert not obj.closed, obj
    assert len(env.p) == 1 and len(env.p.companions(0)) == 1 and ctx.num_threads == 1
    assert (env.buf == 1).all()
    applied = place != "schedule callback"
    assert env.p.last_step == (0 if applied else None)
    assert env.p.digest() == (ref_after if applied else ref_before)
    np.testing.assert_array_equal(env.w, ref_w if applied else weights())
    # and everything still works afterwards
    env.p.set_callback(None)
    assert env.p.step(2) == S.PRUNED and env.p.nnz() == 32
    ctx.close()
    assert env.p.closed and sched.closed and env.sensing.closed


def test_step_callback_may_still_read_and_replace_itself(ctx):
    """What the C library allows inside the step callback stays allowed:
    reading the pruner, saving its state, replacing the callback."""
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=2), granularity="row")
    w = weights()
    p.add_tensor(w)
    seen = []

    def read(pruner, step, status, event):
        seen.append((pruner.nnz(), pruner.digest(), pruner.mask(0).sum(), pruner.last_step,
                     len(pruner.state()["checkpoint"]) > 0, pruner.export_stats(0).nnz,
                     ctx.seed, pruner.stats(0).nnz))
        pruner.set_callback(lambda *a: seen.append("replaced"))
    p.set_callback(read)
    assert p.step(0) == S.PRUNED and p.step(1) == S.MASKED
    assert seen == [(32, p.digest(), 32, 0, True, 32, 7, 32), "replaced"]


@pytest.mark.parametrize("victim", ["schedule", "context", "pruner"])
def test_schedule_callback_closing_from_its_own_query(victim, frees):
    """Schedule.target() runs the callback inside csp_schedule_target():
    closing the schedule (or its context, or a pruner of it) there is refused."""
    errors = []
    ctx = csp.Context()
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5))

    def fn(step):
        try:
            with frees.inside():
                {"schedule": sched, "context": ctx, "pruner": p}[victim].close()
        except csp.CspError as e:
            errors.append(e)
            raise
        return 0.25
    sched = csp.Schedule.callback(ctx, fn, 0.5)
    with pytest.raises(csp.CspError) as e:
        sched.target(0)
    assert e.value.status == S.E_CALLBACK and e.value.__cause__ is errors[0]
    assert errors[0].status == S.E_STATE and "close()" in errors[0].message
    assert frees.unsafe == [] and not sched.closed and not ctx.closed and not p.closed
    sched.close()  # outside the call: closes
    assert sched.closed and not ctx.closed
    ctx.close()


def test_log_hook_closing_the_context_from_an_error_message(frees):
    """A failing call logs its error through the hook while it runs."""
    errors = []

    def log(level, message):
        try:
            with frees.inside():
                ctx.close()
        except csp.CspError as e:
            errors.append(e)
    ctx = csp.Context(log=log)
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5))
    p.add_tensor(weights())
    with pytest.raises(csp.CspError) as e:
        p.stats(7)
    assert e.value.status == S.E_RANGE and "7" in e.value.message  # the message survived
    assert len(errors) == 1 and errors[0].status == S.E_STATE
    assert errors[0].message.startswith("Context.close(): refused")
    assert frees.unsafe == [] and not ctx.closed and not p.closed
    assert p.step(0) == S.PRUNED
    ctx.close()
    assert p.closed


def test_context_close_while_a_pruner_steps_on_another_thread(frees):
    """The step callback holds the step open on a worker thread while this
    thread tries to close the context, the pruner and a tensor."""
    ctx = csp.Context()
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1))
    w = weights()
    p.add_tensor(w)
    inside, release, result = threading.Event(), threading.Event(), []

    def hold(*args):
        inside.set()
        assert release.wait(30)
    p.set_callback(hold)
    worker = threading.Thread(target=lambda: result.append(p.step(0)))
    worker.start()
    try:
        assert inside.wait(30)
        for what, close in (("Context.close()", ctx.close), ("Pruner.close()", p.close),
                            ("Tensor.close()", p.tensor(0).close)):
            with pytest.raises(csp.CspError) as e:
                with frees.inside():
                    close()
            assert e.value.status == S.E_STATE and e.value.message.startswith(what)
        assert not ctx.closed and not p.closed
    finally:
        release.set()
        worker.join(30)
    assert result == [S.PRUNED] and frees.unsafe == []
    assert (w.reshape(-1) == 0).sum() == 32
    ctx.close()  # once the step returned
    assert p.closed


def test_garbage_made_inside_a_callback_is_still_freed(ctx, frees):
    """An object that becomes garbage inside a callback is in no running
    call: the garbage collector's close frees it (a refusal would leak it)."""
    sched = csp.Schedule.constant(ctx, 0.5, frequency=1)
    p = csp.Pruner(ctx, sched)
    p.add_tensor(weights())
    refs = []

    def make_garbage(*args):
        t = csp.Tensor(ctx, np.ones(4, np.float32))
        refs.append(weakref.ref(t))
        del t
        assert refs[0]() is None and frees.freed == ["Tensor"]
    p.set_callback(make_garbage)
    assert p.step(0) == S.PRUNED and frees.freed == ["Tensor"]


# --- strings ----------------------------------------------------------------------------------

def test_nul_in_paths_is_refused(ctx, tmp_path):
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1))
    p.add_tensor(weights())
    p.step(0)
    base = str(tmp_path / "ckpt")
    for path in (base + "\0.bak", os.fsencode(base) + b"\0x"):
        for call in (p.save_file, p.load_file):
            with pytest.raises(ValueError, match=r"\(\): path .* contains a NUL"):
                call(path)
    assert os.listdir(tmp_path) == []  # C would have written tmp_path/ckpt
    # str, bytes and os.PathLike paths without NUL work
    for path in (base, os.fsencode(base + ".b"), pathlib.Path(base + ".p")):
        p.save_file(path)
        p.load_file(path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "ckpt.b", "ckpt.p"]
    with pytest.raises(TypeError, match="Pruner.save_file\\(\\): path must be"):
        p.save_file(3)


def test_nul_in_names_is_refused(ctx):
    p = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1))
    a = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="name 'fc\\\\x00weight' contains a NUL"):
        csp.Tensor(ctx, a, name="fc\0weight")
    with pytest.raises(ValueError, match="NUL"):
        p.add_tensor(a, "fc\0weight")
    assert len(p) == 0 and len(p._owned) == 0  # nothing half-added
    i = p.add_tensor(a, "fc.weight")
    with pytest.raises(ValueError, match="NUL"):
        p.add_companion(i, np.ones(8, np.float32), "fc.weight:\0exp_avg")
    assert p.companions(i) == []
    with pytest.raises(TypeError, match="name must be a str"):
        csp.Tensor(ctx, a, name=b"fc")
    # names are UTF-8; the limit is in bytes
    assert csp.Tensor(ctx, a, name="couche.poids\u00e9").name == "couche.poids\u00e9"
    with pytest.raises(ValueError, match="at most 255"):
        csp.Tensor(ctx, a, name="\u00e9" * 128)


# --- integers ---------------------------------------------------------------------------------

def _int_env(ctx):
    sched = csp.Schedule.constant(ctx, 0.5, frequency=1)
    e = types.SimpleNamespace(ctx=ctx, sched=sched, w=weights(),
                              p=csp.Pruner(ctx, sched, granularity="row", sensing="gaussian"),
                              sensing=csp.Sensing.gaussian(ctx, 16, rho=0.5),
                              solver=csp.Solver.omp(ctx))
    e.p.add_tensor(e.w)
    return e


def _pruner(e, **kw):
    return csp.Pruner(e.ctx, e.sched, **kw)


# (public function, argument, C type, call(env, value))
INTS = [
    ("Pruner.step", "step", "int64", lambda e, v: e.p.step(v)),
    ("Pruner.wants_observe", "step", "int64", lambda e, v: e.p.wants_observe(v)),
    ("Schedule.target", "step", "int64", lambda e, v: e.sched.target(v)),
    ("Schedule.is_event", "step", "int64", lambda e, v: e.sched.is_event(v)),
    ("Schedule.next_event", "step", "int64", lambda e, v: e.sched.next_event(v)),
    ("Schedule.last_event", "step", "int64", lambda e, v: e.sched.last_event(v)),
    ("Schedule", "begin_step", "int64",
     lambda e, v: csp.Schedule.constant(e.ctx, 0.5, begin_step=v)),
    ("Schedule", "end_step", "int64",
     lambda e, v: csp.Schedule.polynomial(e.ctx, 0.5, end_step=v)),
    ("Schedule", "frequency", "int64",
     lambda e, v: csp.Schedule.constant(e.ctx, 0.5, frequency=v)),
    ("Context", "seed", "uint64", lambda e, v: csp.Context(seed=v)),
    ("Context", "num_threads", "int32", lambda e, v: csp.Context(num_threads=v)),
    ("Context.num_threads", "num_threads", "int32",
     lambda e, v: setattr(e.ctx, "num_threads", v)),
    ("Pruner", "nm[0]", "int32", lambda e, v: _pruner(e, nm=(v, 4))),
    ("Pruner", "nm[1]", "int32", lambda e, v: _pruner(e, nm=(2, v))),
    ("Pruner", "block_size", "int32", lambda e, v: _pruner(e, block_size=v)),
    ("Pruner", "observe_window", "int32", lambda e, v: _pruner(e, observe_window=v)),
    ("Pruner", "solver_max_iter", "int32", lambda e, v: _pruner(e, solver_max_iter=v)),
    ("Pruner.add_tensor", "group", "int32",
     lambda e, v: _pruner(e).add_tensor(weights(), group=v)),
    ("Pruner.add_tensor", "nm[1]", "int32",
     lambda e, v: _pruner(e).add_tensor(weights(), nm=(2, v))),
    ("Pruner.add_tensor", "block_size", "int32",
     lambda e, v: _pruner(e).add_tensor(weights(), block_size=v)),
    ("Pruner.add_companion", "index", "int32",
     lambda e, v: e.p.add_companion(v, np.ones((4, 16), np.float32))),
    ("Pruner.add_gradient", "index", "int32",
     lambda e, v: e.p.add_gradient(v, np.ones((4, 16), np.float32))),
    ("Pruner.apply_mask", "index", "int32",
     lambda e, v: e.p.apply_mask(v, np.ones((4, 16), np.float32))),
    ("Pruner.nnz", "index", "int32", lambda e, v: e.p.nnz(v)),
    ("Pruner.stats", "index", "int32", lambda e, v: e.p.stats(v)),
    ("Pruner.export", "index", "int32", lambda e, v: e.p.export(v)),
    ("Pruner.export", "nm[0]", "int32", lambda e, v: e.p.export(0, "nm", nm=(v, 4))),
    ("Pruner.export_stats", "index", "int32", lambda e, v: e.p.export_stats(v)),
    (None, "index", "int32", lambda e, v: e.p.mask(v)),
    (None, "index", "int32", lambda e, v: e.p.mask_words(v)),
    (None, "index", "int32", lambda e, v: e.p.sensing(v)),
    (None, "index", "int32", lambda e, v: e.p.tensor(v)),
    ("Sensing", "n", "int64", lambda e, v: csp.Sensing.identity(e.ctx, v)),
    ("Sensing", "m", "int64", lambda e, v: csp.Sensing.gaussian(e.ctx, 8, m=v)),
    ("Sensing", "tensor_id", "uint64",
     lambda e, v: csp.Sensing.gaussian(e.ctx, 8, tensor_id=v)),
    ("Sensing.gram", "row_block", "int64", lambda e, v: e.sensing.gram(v)),
    ("Sensing.gram", "event", "int64", lambda e, v: e.sensing.gram(0, v)),
    ("Sensing.phi", "row_block", "int64", lambda e, v: e.sensing.phi(v)),
    ("Sensing.phi", "event", "int64", lambda e, v: e.sensing.phi(0, v)),
    ("Solver", "max_iter", "int32", lambda e, v: csp.Solver.fista(e.ctx, max_iter=v)),
    ("Solver", "max_bisect", "int32", lambda e, v: csp.Solver.fista(e.ctx, max_bisect=v)),
    ("Solver.solve", "k", "int32", lambda e, v: e.solver.solve(e.sensing, e.w, k=v)),
    ("Solver.solve", "row_block", "int64",
     lambda e, v: e.solver.solve(e.sensing, e.w, k=2, row_block=v)),
    ("Solver.solve", "event", "int64",
     lambda e, v: e.solver.solve(e.sensing, e.w, k=2, event=v)),
    ("Solver.solve", "allowed_row_bits", "int64",
     lambda e, v: e.solver.solve(e.sensing, e.w, k=2, allowed=np.ones(4, np.uint64),
                                 allowed_row_bits=v)),
    ("status_name", "status", "int32", lambda e, v: csp.status_name(v)),
    ("status_str", "status", "int32", lambda e, v: csp.status_str(v)),
]
RANGES = {"int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1),
          "uint64": (0, 2 ** 64 - 1)}


@pytest.mark.parametrize("fn, name, ctype, call", INTS,
                         ids=["%s-%s-%d" % (f, n, i) for i, (f, n, _, _) in enumerate(INTS)])
def test_integers_out_of_their_c_range_are_refused(ctx, fn, name, ctype, call):
    e = _int_env(ctx)
    before = (e.p.last_step, e.p.digest(), len(e.p), len(e.p.companions(0)), ctx.num_threads)
    lo, hi = RANGES[ctype]
    where = "%s(): %s" % (fn, name) if fn else name
    for v in (hi + 1, lo - 1, hi + 1 + 2 ** 64, 2 ** 200):
        with pytest.raises(OverflowError) as err:
            call(e, v)
        msg = str(err.value)
        assert msg.startswith("%s = %d is out of range" % (where, v)), msg
        assert "%s (%d..%d)" % (ctype, lo, hi) in msg, msg
    for v in (True, np.bool_(False), 1.0, "1"):
        with pytest.raises(TypeError, match="must be an int"):
            call(e, v)
    assert (e.p.last_step, e.p.digest(), len(e.p), len(e.p.companions(0)),
            ctx.num_threads) == before  # nothing changed


def test_wrapped_examples_of_the_review(ctx):
    e = _int_env(ctx)
    with pytest.raises(OverflowError):
        e.p.step(2 ** 64 + 10)
    assert e.p.last_step is None  # it used to run as step 10
    for seed in (2 ** 64, -1):
        with pytest.raises(OverflowError, match="Context\\(\\): seed"):
            csp.Context(seed=seed)
    with pytest.raises(TypeError, match="bool"):
        e.p.step(True)  # not step 1
    with pytest.raises(OverflowError):
        e.p.nnz(2 ** 32)  # used to be tensor 0's
    assert e.p.step(0) == S.PRUNED


def test_integer_boundaries_and_numpy_integers(ctx):
    with csp.Context(seed=2 ** 64 - 1) as c:
        assert c.seed == 2 ** 64 - 1
    with csp.Context(seed=np.uint64(2 ** 64 - 1), num_threads=np.int8(2)) as c:
        assert c.seed == 2 ** 64 - 1 and c.num_threads == 2
        c.num_threads = np.int64(3)
        assert c.num_threads == 3
    s = csp.Sensing.gaussian(ctx, np.int64(8), m=np.int32(4), tensor_id=2 ** 64 - 1)
    np.testing.assert_array_equal(
        s.gram(np.int64(1), np.uint8(2)),
        csp.Sensing.gaussian(ctx, 8, m=4, tensor_id=np.uint64(2 ** 64 - 1)).gram(1, 2))
    sched = csp.Schedule.constant(ctx, 0.5, begin_step=np.int16(2), frequency=np.int64(3))
    assert (sched.begin_step, sched.frequency) == (2, 3) and type(sched.begin_step) is int
    assert sched.next_event(np.int32(2)) == 5 and sched.next_event(2 ** 63 - 1) is None
    p = csp.Pruner(ctx, sched, granularity=np.int64(2), nm=(np.int32(2), np.int64(4)),
                   block_size=np.int16(64))
    assert p.granularity == csp.Granularity.ROW
    w = weights()
    i = p.add_tensor(w, group=np.int8(1), granularity=np.uint8(4))
    assert p.stats(np.int64(i)).granularity == csp.Granularity.NM
    assert p.step(np.int64(2)) == S.PRUNED and p.last_step == 2
    assert p.mask(np.int32(0)).sum() == 32 and p.nnz(np.int64(0)) == 32
    r = csp.Solver.omp(ctx).solve(s, np.ones((3, 8), np.float32), k=np.int16(2))
    assert (r.nnz == 2).all()
    assert csp.status_name(np.int32(-17)) == "CSP_E_CALLBACK"
    with pytest.raises(TypeError):
        csp.Pruner(ctx, sched, granularity=np.bool_(True))  # not Granularity(1)


# --- csprune.torch ----------------------------------------------------------------------------

def torch_or_skip():
    if os.environ.get("CSP_TEST_SKIP_TORCH"):
        pytest.skip("CSP_TEST_SKIP_TORCH: " + os.environ["CSP_TEST_SKIP_TORCH"])
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    torch.set_num_threads(1)
    return torch


def _net(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _module_pruner(torch, model, **kw):
    kw.setdefault("final_sparsity", 0.5)
    kw.setdefault("frequency", 2)
    module_pruner = importlib.import_module("csprune.torch").ModulePruner
    return module_pruner(model, granularity="row", sensing="activations", observe_window=0,
                         **kw)


@pytest.mark.parametrize("how", sorted(COPIES))
def test_module_pruner_cannot_be_copied_or_pickled(how):
    torch = torch_or_skip()
    model = _net(torch)
    with _module_pruner(torch, model) as mp:
        msg = refused_copy(how, mp)
        assert msg.startswith("csprune.torch.ModulePruner cannot be copied or pickled")
        assert "load_state_dict(pruner.state_dict())" in msg
        model(torch.randn(4, 16))
        assert mp.step() == S.PRUNED and not mp.closed


def test_deepcopied_model_does_not_feed_the_pruner():
    """copy.deepcopy(model) copies the forward hooks along (an EMA or a
    teacher copy is common): the copy's passes must not be observed."""
    torch = torch_or_skip()
    model = _net(torch)
    with _module_pruner(torch, model) as mp:
        twin = copy.deepcopy(model)
        twin(torch.randn(5, 16))
        assert mp.observed_rows == {"0.weight": 0, "2.weight": 0}
        assert mp.pruner.sensing(0).count == 0
        model(torch.randn(4, 16))
        assert mp.observed_rows == {"0.weight": 4, "2.weight": 4}


@pytest.mark.parametrize("place", ["schedule", "step callback", "log hook"])
@pytest.mark.parametrize("action", ["ModulePruner.close()", "ModulePruner.step()",
                                    "ModulePruner.load_state_dict()"])
def test_module_pruner_refuses_close_and_step_from_callbacks(place, action, frees):
    torch = torch_or_skip()
    model = _net(torch)
    errors, fired = [], []

    def act():
        if fired:
            return
        fired.append(True)
        try:
            with frees.inside():
                if action == "ModulePruner.close()":
                    mp.close()
                elif action == "ModulePruner.step()":
                    mp.step()
                else:
                    mp.load_state_dict(state)
        except Exception as e:
            errors.append(e)
            raise

    def log(level, message):
        if place == "log hook" and "pruning event" in message:
            act()

    def target(step):
        if place == "schedule":
            act()
        return 0.5
    ctx = csp.Context(log=log, log_level="info")
    mp = _module_pruner(torch, model, schedule=target, ctx=ctx)
    state = mp.state_dict()
    if place == "step callback":
        mp.pruner.set_callback(lambda *a: act())
    model(torch.randn(4, 16))
    if place == "log hook":
        assert mp.step() == S.PRUNED
    else:
        with pytest.raises(csp.CspError) as e:
            mp.step()
        assert e.value.status == S.E_CALLBACK and e.value.__cause__ is errors[0]
    assert errors and errors[0].status == S.E_STATE, errors
    assert errors[0].message.startswith(action + ": refused while"), errors[0].message
    assert frees.unsafe == [] and not mp.closed
    # hooks, pruner and context all still work
    mp.pruner.set_callback(None)
    model(torch.randn(4, 16))
    assert mp.observed_rows["0.weight"] == 8
    mp.step(2)
    assert mp.sparsity() == 0.5
    mp.close()
    assert mp.closed and not ctx.closed
    ctx.close()


def test_forward_pass_inside_a_step_callback_cannot_observe(frees):
    """A training-mode forward pass run from the step callback reaches the
    hooks, whose observe() would change the pruner inside csp_step()."""
    torch = torch_or_skip()
    model = _net(torch)
    mp = _module_pruner(torch, model)
    x = torch.randn(4, 16)
    mp.pruner.set_callback(lambda *a: model(x))
    model(x)
    with pytest.raises(csp.CspError) as e:
        mp.step()
    assert e.value.status == S.E_CALLBACK
    assert e.value.__cause__.status == S.E_STATE
    assert "Pruner.observe(): refused while" in e.value.__cause__.message
    assert mp.observed_rows["0.weight"] == 4  # the callback's pass fed nothing
    model.eval()  # an evaluation pass observes nothing: allowed
    assert mp.step() == S.MASKED
    mp.close()


def test_observer_exceptions_and_close_inside_the_hooks():
    """The observer runs in the forward hooks, outside any libcsp call: its
    exception propagates from the forward pass as itself, and it may close
    the pruner (the rest of the pass then feeds nothing)."""
    torch = torch_or_skip()
    model = _net(torch)
    calls = []

    def observer(name, x):
        calls.append(name)
        if mode == "raise":
            raise KeyError("sink down")
        if mode == "close":
            mp.close()
    mp = _module_pruner(torch, model, observer=observer)
    mode = "raise"
    with pytest.raises(KeyError, match="sink down"):
        model(torch.randn(4, 16))
    assert calls == ["0.weight"] and not mp.closed
    mode = None
    model(torch.randn(4, 16))
    assert mp.step() == S.PRUNED
    mode = "close"
    out = model(torch.randn(4, 16))
    assert out.shape == (4, 3) and mp.closed
    assert calls == ["0.weight", "0.weight", "2.weight", "0.weight"]
    model(torch.randn(4, 16))  # the hooks are gone
    assert len(calls) == 4


def test_module_pruner_integers():
    torch = torch_or_skip()
    model = _net(torch)
    for seed in (-1, 2 ** 64):
        with pytest.raises(OverflowError, match="Context\\(\\): seed"):
            _module_pruner(torch, model, seed=seed)
    with pytest.raises(OverflowError, match="Schedule\\(\\): frequency"):
        _module_pruner(torch, model, frequency=2 ** 63)
    with _module_pruner(torch, model) as mp:
        model(torch.randn(4, 16))
        with pytest.raises(OverflowError, match="Pruner.step\\(\\): step"):
            mp.step(2 ** 64)
        with pytest.raises(TypeError):
            mp.step(True)
        assert mp.last_step is None
        assert mp.step(np.int64(0)) == S.PRUNED and mp.last_step == 0
