"""The pruner: weight tensors, companions, masks, csp_step()."""

import contextlib
import ctypes
import dataclasses
import numbers
import weakref
from typing import Optional

from . import _lib
from . import _io
from . import _options
from ._core import (Context, Correction, ExportFormat, Support, Granularity, SensingKind, SolverMethod,
                    Status, Tensor, _Handle, _numpy, c_int, c_int_pair, check, expect, modifies,
                    row_view, to_enum)
from ._schedule import Schedule
from ._sensing import Sensing, _BorrowedSensing
from ._lib import lib

#: Format tag and version of Pruner.state() dictionaries (version 2: the
#: library's checkpoint bytes).
STATE_FORMAT = "csp.Pruner"
STATE_VERSION = 2


def _checkpoint_of(state, fmt, version):
    """The "checkpoint" entry of a state dict tagged ``fmt``/``version``
    (ValueError for anything else)."""
    try:
        ok = state.get("format") == fmt and state.get("version") == version
    except AttributeError:
        raise TypeError("a state must be a dict (from state()), not %s"
                        % type(state).__name__) from None
    if not ok:
        raise ValueError("not a %s state of version %d (format %r, version %r)"
                         % (fmt, version, state.get("format"), state.get("version")))
    if "checkpoint" not in state:
        raise ValueError("the %s state has no checkpoint" % fmt)
    return state["checkpoint"]


@dataclasses.dataclass(frozen=True)
class TensorStats:
    """Statistics of one tensor of a pruner (``csp_tensor_stats``)."""
    index: int
    name: str
    numel: int
    nnz: int
    target_sparsity: float     #: target of the last event (0 before any)
    achieved_sparsity: float   #: 1 - nnz / numel
    granularity: Granularity
    excluded: bool
    last_event: Optional[int]  #: step of the last event applied, None before any
    # CSP (docs/guide.md, "Statistics"): the configuration in force, then the
    # last event with W the masked weights before it and X after it.
    sensing: SensingKind       #: of the attached operator when one is set; IDENTITY for GMP
    solver: SolverMethod       #: configured (GMP tensors ignore it)
    correction: Correction     #: configured (GMP tensors ignore it)
    converged: bool            #: every row of the last solve converged (always for GMP, OMP)
    weight_error: float        #: ||W - X||_F / ||W||_F (0 before any event or when W = 0)
    sensing_error: float       #: sum (w-x)^T G (w-x) / sum w^T G w over rows (G = I for GMP)
    solver_iterations: int     #: summed over the solved rows (OMP: atoms); 0 for GMP
    solver_iterations_max: int  #: the largest per-row count
    rows_not_converged: int    #: rows that stopped at solver_max_iter
    rows_damped: int           #: rows solved or refit with damping (singular G_SS)
    events: int                #: events applied to this tensor
    event_seconds: float       #: this tensor's seconds at the last event
    total_seconds: float       #: the same over every event
    observed_rows: int         #: activations: rows observed since the last event
    observe_seconds: float     #: seconds of every successful observe() on this tensor


@dataclasses.dataclass(frozen=True)
class StepStats:
    """Statistics of step() over the whole pruner (``csp_step_stats``)."""
    steps: int                 #: step() calls whose step was applied (MASKED, PRUNED, or
    #:                            E_CALLBACK after either)
    events: int                #: pruning events applied
    last_event: Optional[int]  #: schedule step of the last event, None before any
    numel: int                 #: weights of every tensor (excluded ones too)
    nnz: int                   #: kept weights (excluded tensors count whole)
    last_event_seconds: float  #: wall seconds of the step() call of the last event
    event_seconds: float       #: wall seconds of every event call together
    total_seconds: float       #: wall seconds of every applied call (callback excluded)
    observe_seconds: float     #: wall seconds of every successful observe() (not in
    #:                            total_seconds: the CSP overhead is the sum of both)


def _maybe_status(value):
    try:
        return Status(value)
    except ValueError:
        return int(value)


class _StepCallback:
    """A Python step callback behind a ctypes thunk (csp_pruner_set_callback).

    ``fn(pruner, step, status, event)`` runs at the end of every step() call.
    An exception never crosses into C: it is stored, the thunk returns
    CSP_E_CALLBACK (so a step that had succeeded returns E_CALLBACK, its work
    applied), and Pruner.step() raises CspError with the exception chained
    as its cause. The pruner is held weakly (no reference cycle)."""

    def __init__(self, fn, pruner):
        if not callable(fn):
            raise TypeError("the step callback must be callable, not %s" % type(fn).__name__)
        self.fn = fn
        self.pruner = weakref.ref(pruner)
        self.error = None
        self.thunk = _lib.STEP_FN(self._call)

    def _call(self, user, handle, step, status, event):
        try:
            self.fn(self.pruner(), int(step), _maybe_status(status), bool(event))
            return 0
        except BaseException as e:  # noqa: B902 -- nothing may unwind through C
            if self.error is None:
                self.error = e
            return int(Status.E_CALLBACK)

    def take(self):
        err, self.error = self.error, None
        return err


def _options_with_nm(options, nm, fn):
    """@p options with the convenience keyword nm=(N, M) spelt out."""
    if nm is not None:
        n, m = c_int_pair(nm, "nm", fn)
        for k, v in (("nm_n", n), ("nm_m", m)):
            if options.get(k) is not None:
                raise TypeError("%s(): give nm or %s, not both" % (fn, k))
            options[k] = v
    return options


def _experimental_option(param):
    if isinstance(param, _options.Option):
        o = param
    elif isinstance(param, str):
        o = _options.option(param)
    else:
        o = next((x for x in _options.OPTIONS if x.param == param and param), None)
    if o is None or not o.experimental:
        raise ValueError("%r is not an experimental parameter" % (param,))
    return o


class Pruner(_Handle):
    """Binds weight tensors (and their optimizer-state companions) to a
    schedule and prunes them in place by magnitude (GMP) through step().

    @param ctx          The Context.
    @param schedule     A Schedule; copied by the library (a callback stays
                        alive with the pruner).
    @param granularity  Default Granularity of added tensors (an enum member,
                        its name such as "row", or its value).
    @param nm           Default (N, M) of N:M sparsity.

    Options (docs/options.md lists them all, from the library's table; the
    same names as add_tensor()'s): the defaults of every tensor added, each
    None for the library's default: a keyword per field of
    csp_pruner_options, the member path with "_" for "." (``correction``,
    ``block_size``, ``sensing_rho``, ``sensing_damping``, ``solver_tol``,
    ``solver_max_iter``, ...), with ``sensing`` (a SensingKind: anything but
    IDENTITY makes a tensor CSP, which needs ROW granularity) and ``solver``
    (a SolverMethod) for ``sensing.kind`` and ``solver.method``; and the
    experimental parameters (<csp/experimental.h>: ``shrink``, ``support``,
    ``redraw``, ``alpha``, and pruner-wide ``observe_window``). Types are
    checked here (TypeError, ValueError for an unknown enum name, an unknown
    keyword is TypeError); ranges by the library (CspError E_RANGE naming
    the option).

    Tensors given as numpy arrays or torch tensors are wrapped in a Tensor
    owned (and closed) by the pruner; Tensor objects given by the caller are
    borrowed, and closing one closes the pruner. The pruner keeps every
    buffer it prunes alive.
    """
    _free = lib.csp_pruner_free
    _copy_hint = ("its weights are your arrays, which a copy would still prune: build a new "
                  "Pruner the same way over the copied arrays and restore this one's state "
                  "into it (new.load_state(pruner.state()))")

    def __init__(self, ctx, schedule, *, granularity=Granularity.TENSOR, nm=None, **options):
        super().__init__()
        self.ctx = expect(ctx, Context, "ctx")
        expect(schedule, Schedule, "schedule")
        self._owned = []        # Tensors this pruner created and closes
        self.granularity = to_enum(Granularity, granularity, "granularity")
        options["granularity"] = self.granularity
        fields, experimental = _options.split(_options_with_nm(options, nm, "Pruner"),
                                              _options.PRUNER_KEYWORDS, "Pruner")
        opts = _options.new_buffer()
        check(lib.csp_pruner_options_init(opts, ctypes.sizeof(opts)))
        _options.write(opts, fields, tensor=False)
        self._callback = schedule._callback  # C copied the schedule, and its thunk pointer
        self._step_callback = None  # _StepCallback of set_callback()
        self._retired = []      # replaced step callbacks, kept until step() returns
        self._tensors = []      # Tensor per index (weights)
        self._companions = {}   # index -> [Tensor]
        self._excluded = []
        self._kinds = []        # SensingKind in force per index
        self._attached = {}     # index -> Sensing attached by set_sensing()
        self._views = weakref.WeakValueDictionary()  # index -> _BorrowedSensing
        handle = ctypes.c_void_p()
        check(lib.csp_pruner_create(ctypes.byref(handle), ctx._live(), schedule._live(), opts),
              ctx)
        self._handle = handle
        self._depend_on(ctx)
        try:
            for o, value in experimental:
                check(lib.csp_pruner_set_experimental(handle, -1, o.param, value), ctx)
        except Exception:
            self._close()
            raise

    # --- building ---------------------------------------------------------------

    def _as_tensor(self, buf, name):
        if isinstance(buf, Tensor):
            buf._live()
            if name is not None and name != buf.name:
                raise ValueError("the Tensor already has a name (%r)" % buf.name)
            self._depend_on(buf)
            return buf
        t = Tensor(self.ctx, buf, name=name)
        self._depend_on(t)
        self._owned.append(t)
        return t

    def _release(self, t):
        """Undo _as_tensor() after the library refused the tensor."""
        self._undepend(t)
        if t in self._owned:
            self._owned.remove(t)
            t._close()

    @modifies
    def add_tensor(self, weight, name=None, *, nm=None, **options):
        """Add a weight tensor (before the first step()); returns its index.

        @param weight          A Tensor, or a numpy array / torch tensor viewed
                               in place (C-contiguous float32/float64, CPU).
        @param name            Name of the view (ignored for a Tensor).
        @param nm              (N, M) for N:M (nm_n, nm_m); None for the pruner's.
        @param options         This tensor's options, each None for the
                               pruner's: every keyword of Pruner() but the
                               pruner-wide ones, and ``exclude`` (never pruned
                               nor masked; its mask reads all ones), ``group``
                               (global group id), ``final_sparsity`` (own final
                               sparsity in [0, 1): the schedule's targets scaled
                               by final_sparsity / s_f). A tensor's options
                               start as a copy of the pruner's
                               (csp_pruner_tensor_options_init()).
        """
        self._live()
        fn = "Pruner.add_tensor"
        if isinstance(options.get("exclude"), bool):
            options["exclude"] = int(options["exclude"])
        fields, experimental = _options.split(_options_with_nm(options, nm, fn),
                                              _options.TENSOR_KEYWORDS, fn)
        opts = _options.new_buffer()
        check(lib.csp_pruner_tensor_options_init(opts, ctypes.sizeof(opts), self._handle),
              self.ctx)
        _options.write(opts, fields, tensor=True)
        excluded = bool(_options.read(opts, _options.option("exclude"), tensor=True))
        t = self._as_tensor(weight, name)
        index = ctypes.c_int32(-1)
        try:
            with self._experimental_defaults(experimental):
                check(lib.csp_pruner_add_tensor(self._handle, t._live(), opts,
                                                ctypes.byref(index)), self.ctx)
        except Exception:
            self._release(t)
            raise
        self._tensors.append(t)
        self._excluded.append(excluded)
        self._kinds.append(self.stats(index.value).sensing)
        return index.value

    @contextlib.contextmanager
    def _experimental_defaults(self, params):
        """The pruner's experimental defaults set to @p params ((Option,
        value) pairs) for the tensor added inside, restored afterwards: the
        library checks them with the tensor, and a refused tensor changes
        nothing."""
        saved = []
        try:
            for o, value in params:
                old = ctypes.c_double()
                check(lib.csp_pruner_get_experimental(self._handle, -1, o.param,
                                                      ctypes.byref(old)), self.ctx)
                saved.append((o, old.value))
                check(lib.csp_pruner_set_experimental(self._handle, -1, o.param, value),
                      self.ctx)
            yield
        finally:
            for o, old in reversed(saved):
                lib.csp_pruner_set_experimental(self._handle, -1, o.param, old)

    def experimental(self, param, index=-1):
        """The value of experimental parameter @p param (an Option, its
        keyword, or the csp_experimental_param number) of tensor @p index, or
        of the pruner (-1)."""
        o = _experimental_option(param)
        value = ctypes.c_double()
        check(lib.csp_pruner_get_experimental(
            self._live(), c_int(index, "int32", "index", "Pruner.experimental"), o.param,
            ctypes.byref(value)), self.ctx)
        return o.enum(int(value.value)) if o.enum is not None else (
            int(value.value) if o.type != _options.DOUBLE else value.value)

    @modifies
    def set_experimental(self, param, value, index=-1):
        """Set experimental parameter @p param of tensor @p index, or (-1)
        the pruner's default for tensors added afterwards and the pruner-wide
        ones; before the first step()."""
        o = _experimental_option(param)
        fn = "Pruner.set_experimental"
        check(lib.csp_pruner_set_experimental(
            self._live(), c_int(index, "int32", "index", fn), o.param, o.convert(value, fn)),
            self.ctx)

    @modifies
    def add_companion(self, index, companion, name=None):
        """Register an optimizer-state buffer of tensor ``index`` (same shape,
        either dtype; SGD momentum, Adam's exp_avg and exp_avg_sq): step()
        zeroes it wherever the weight's mask is 0. Allowed at any time; the
        masks reach it from the next step(). Returns its Tensor."""
        self._live()
        index = c_int(index, "int32", "index", "Pruner.add_companion")
        t = self._as_tensor(companion, name)
        try:
            check(lib.csp_pruner_add_companion(self._handle, index, t._live()), self.ctx)
        except Exception:
            self._release(t)
            raise
        self._companions.setdefault(index, []).append(t)
        return t

    @modifies
    def add_gradient(self, index, gradient, name=None):
        """Register a gradient buffer of tensor ``index`` (same shape, either
        dtype) for mask_gradients(). Returns its Tensor."""
        self._live()
        index = c_int(index, "int32", "index", "Pruner.add_gradient")
        t = self._as_tensor(gradient, name)
        try:
            check(lib.csp_pruner_add_gradient(self._handle, index, t._live()), self.ctx)
        except Exception:
            self._release(t)
            raise
        self._companions.setdefault(index, []).append(t)
        return t

    @modifies
    def mask_gradients(self):
        """Zero every registered gradient (add_gradient()) wherever its
        tensor's mask is 0: call after backward(), before gradient clipping
        and the optimizer update."""
        check(lib.csp_pruner_mask_gradients(self._live()), self.ctx)

    @modifies
    def apply_mask(self, index, buffer):
        """Zero ``buffer`` (an array or tensor shaped like tensor ``index``,
        viewed in place) wherever that tensor's mask is 0, once."""
        self._live()
        index = c_int(index, "int32", "index", "Pruner.apply_mask")
        if isinstance(buffer, Tensor):
            check(lib.csp_pruner_apply_mask(self._handle, index, buffer._live()), self.ctx)
            return
        with Tensor(self.ctx, buffer) as t:
            check(lib.csp_pruner_apply_mask(self._handle, index, t._live()), self.ctx)

    def _closed(self):
        owned, self._owned = self._owned, []
        for t in owned:
            t._close()

    # --- stepping ---------------------------------------------------------------

    @modifies
    def step(self, step):
        """Call after every optimizer update: prunes at pruning events, else
        re-applies the masks to the weights and their companions. Returns
        Status.PRUNED or Status.MASKED (Status.NO_TENSORS for a pruner
        without tensors: nothing done, the step not recorded); raises CspError otherwise (every
        buffer and mask is then left untouched, except when the step callback
        failed: E_CALLBACK after a step that stays applied). ``step`` is an
        int64 (OverflowError outside it, TypeError for a bool or a float).
        Refused (CspError E_STATE) from inside a callback of its context."""
        step = c_int(step, "int64", "step", "Pruner.step")
        h = self._live()
        ctx = self.ctx
        ctx._enter()  # callbacks (step, schedule, log) run inside: see refuse_while_running
        try:
            st = lib.csp_step(h, step)
        finally:
            ctx._leave()
        self._retired = []
        pending = self._callback.take() if self._callback is not None else None
        mine = self._step_callback.take() if self._step_callback is not None else None
        if mine is not None and not isinstance(mine, Exception):
            raise mine      # KeyboardInterrupt, SystemExit: never swallowed
        if pending is None and st == Status.E_CALLBACK:
            pending = mine  # the schedule's callback, when it failed, came first
        return check(st, self.ctx, pending=pending)

    def set_callback(self, fn):
        """Run ``fn(pruner, step, status, event)`` at the end of every step()
        call (``csp_pruner_set_callback``), or remove it (None). ``status``
        is what step() is about to return (a Status, errors included),
        ``event`` is True when the step was, or would have been, a pruning
        event. It may read the pruner (stats, masks, digest); step() from
        inside it raises CspError (E_STATE). Its return value is ignored. An
        exception it raises makes a step() that had succeeded raise CspError
        (E_CALLBACK) with the exception as ``__cause__``; the step stays
        applied (calling step() again with the same step re-applies the
        masks)."""
        h = self._live()
        cb = None if fn is None else _StepCallback(fn, self)
        check(lib.csp_pruner_set_callback(h, cb.thunk if cb is not None else _lib.STEP_FN(),
                                          None), self.ctx)
        if self._step_callback is not None:
            self._retired.append(self._step_callback)  # it may be running right now
        self._step_callback = cb

    # --- CSP: sensing operators and observations --------------------------------

    def sensing(self, index):
        """Tensor ``index``'s sensing operator (``csp_pruner_sensing``), or
        None for a GMP or excluded tensor.

        An operator attached with set_sensing() is returned as itself. The
        pruner's own operator is returned as a *borrowed* csp.Sensing view
        (``.borrowed`` is True): every Sensing method works on it (gram(),
        set_gram() for SensingKind.GRAM tensors, read_accumulator() /
        write_accumulator() for an all-reduce), but it must not outlive the
        pruner: closing the pruner or its context closes the view, and
        set_sensing() on the tensor closes it too. Closing the view frees
        nothing."""
        h = self._live()
        index = self._index(index)
        out = ctypes.c_void_p()
        check(lib.csp_pruner_sensing(h, index, ctypes.byref(out)), self.ctx)
        if not out.value:
            return None
        attached = self._attached.get(index)
        if attached is not None and attached._handle and attached._handle.value == out.value:
            return attached
        view = self._views.get(index)
        if view is None or view.closed or view._handle.value != out.value:
            view = _BorrowedSensing(self, out.value)
            self._views[index] = view
        return view

    @modifies
    def set_sensing(self, index, sensing):
        """Attach a csp.Sensing you made to tensor ``index``
        (``csp_pruner_set_sensing``), replacing its operator for the
        following events; None detaches it again. The tensor must be a
        non-excluded ROW tensor and the operator's n its CSP row length (cols,
        or the block size of a rank-1 tensor); it becomes a CSP tensor. The
        pruner pins the operator: closing the operator closes the pruner, as
        for tensors. A borrowed view (from sensing()) cannot be attached."""
        h = self._live()
        index = self._index(index)
        if sensing is not None:
            expect(sensing, Sensing, "sensing")
            if sensing.borrowed:
                raise ValueError("a borrowed operator (Pruner.sensing()) cannot be attached: "
                                 "attach a csp.Sensing you made")
            ptr = sensing._live()
        else:
            ptr = None
        check(lib.csp_pruner_set_sensing(h, index, ptr), self.ctx)
        view = self._views.pop(index, None)
        if view is not None:
            view._close()
        old = self._attached.pop(index, None)
        if sensing is not None:
            self._depend_on(sensing)
            self._attached[index] = sensing
        if old is not None:
            self._deps.remove(old)
            if old not in self._deps:
                old._users.discard(self)
            old._unpin()
        self._kinds[index] = self.stats(index).sensing

    @modifies
    def observe(self, index, x):
        """Feed layer inputs to tensor ``index``'s activations operator
        (``csp_pruner_observe``: S += x^T x, N += rows). ``x`` is a (rows,
        n) float32 numpy array or CPU torch tensor, C-contiguous, n the
        tensor's CSP row length (the weight's columns, the input features of
        a Linear layer), read in place: never copied or converted (TypeError
        for another dtype, ValueError for another layout). The tensor must
        have activations sensing (else CspError E_INVALID); non-finite inputs
        raise CspError (E_NONFINITE) and change nothing."""
        h = self._live()
        index = self._index(index)
        ptr, rows, cols, stride = row_view(x, "float32", "x")
        if len(x.shape) != 2:
            raise ValueError("x must be 2-D (rows, n), not of shape %s" % (tuple(x.shape),))
        if rows > 1 and stride != cols:
            raise ValueError("x must be C-contiguous (csp_pruner_observe takes no row stride); "
                             "pass numpy.ascontiguousarray(x) or x.contiguous()")
        check(lib.csp_pruner_observe(h, index, ptr if rows else None, rows, cols), self.ctx)

    def wants_observe(self, step):
        """Should the forward pass of ``step`` (the pass whose update
        step(step) follows) observe activations? True when some tensor has
        activations sensing and the next event is within observe_window
        steps (any event when the window is 0). Advice only: observe() is
        never refused."""
        step = c_int(step, "int64", "step", "Pruner.wants_observe")
        out = ctypes.c_int32()
        check(lib.csp_pruner_wants_observe(self._live(), step, ctypes.byref(out)), self.ctx)
        return bool(out.value)

    def sensing_kind(self, index):
        """The SensingKind in force for tensor ``index`` (that of an attached
        operator when one is set; IDENTITY for GMP tensors), kept on the
        Python side: no library call."""
        self._live()
        return self._kinds[self._index(index)]

    @property
    def last_step(self):
        """The step of the last successful step() call, or None before it."""
        out = ctypes.c_int64()
        check(lib.csp_pruner_last_step(self._live(), ctypes.byref(out)), self.ctx)
        return None if out.value < 0 else out.value

    # --- reading ----------------------------------------------------------------

    def __len__(self):
        return lib.csp_pruner_num_tensors(self._live())

    @property
    def num_tensors(self):
        return len(self)

    def tensor(self, index):
        """The weight Tensor of ``index``."""
        self._live()
        return self._tensors[self._index(index)]

    def companions(self, index):
        """The companion Tensors of ``index``."""
        return list(self._companions.get(self._index(index), []))

    def _index(self, index):
        index = c_int(index, "int32", "index")
        if not 0 <= index < len(self._tensors):
            raise IndexError("tensor index %d out of range (0..%d)"
                             % (index, len(self._tensors) - 1))
        return index

    def mask(self, index):
        """Tensor ``index``'s mask as a numpy bool array of the weight's shape
        (True = kept). An excluded tensor reads all True."""
        np = _numpy()
        h = self._live()
        index = self._index(index)
        t = self._tensors[index]
        out = np.empty(t.numel, np.uint8)
        check(lib.csp_pruner_mask_bytes(h, index,
                                        out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
                                        out.size), self.ctx)
        return out.view(np.bool_).reshape(t.shape)

    def mask_words(self, index):
        """Tensor ``index``'s mask packed as numpy uint64 words: bit i of the
        row-major flat index is bit i % 64 of word i // 64, 1 = kept."""
        np = _numpy()
        h = self._live()
        index = self._index(index)
        t = self._tensors[index]
        out = np.empty((t.numel + 63) // 64, np.uint64)
        check(lib.csp_pruner_mask_words(h, index,
                                        out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)),
                                        out.size), self.ctx)
        return out

    def nnz(self, index=None):
        """Kept weights of tensor ``index``, or of all tensors (None; excluded
        tensors count whole)."""
        index = -1 if index is None else c_int(index, "int32", "index", "Pruner.nnz")
        out = ctypes.c_int64()
        check(lib.csp_pruner_nnz(self._live(), index, ctypes.byref(out)), self.ctx)
        return out.value

    def target(self, index=None):
        """The current target sparsity of tensor ``index`` (the target of the
        last event applied to it, 0 before the first; with the adaptive
        schedule, ``adapt_bound`` > 0, the adapted target), or a list for every
        tensor (None). Experimental (csp_pruner_target())."""
        if index is None:
            return [self.target(i) for i in range(len(self))]
        out = ctypes.c_double()
        check(lib.csp_pruner_target(self._live(), c_int(index, "int32", "index",
                                                        "Pruner.target"),
                                    ctypes.byref(out)), self.ctx)
        return out.value

    def digest(self):
        """64-bit FNV-1a digest of every mask (docs/guide.md), as an int."""
        out = ctypes.c_uint64()
        check(lib.csp_pruner_digest(self._live(), ctypes.byref(out)), self.ctx)
        return out.value

    def stats(self, index=None):
        """TensorStats of tensor ``index``, or a list for every tensor (None)."""
        if index is None:
            return [self.stats(i) for i in range(len(self))]
        index = c_int(index, "int32", "index", "Pruner.stats")
        st = _lib.init_struct(_lib.TensorStats)
        check(lib.csp_pruner_tensor_stats(self._live(), index, ctypes.byref(st)), self.ctx)
        return TensorStats(index=index, name=self.tensor(index).name, numel=st.numel,
                           nnz=st.nnz, target_sparsity=st.target_sparsity,
                           achieved_sparsity=st.achieved_sparsity,
                           granularity=Granularity(st.granularity),
                           excluded=bool(st.excluded),
                           last_event=None if st.last_event < 0 else st.last_event,
                           sensing=SensingKind(st.sensing), solver=SolverMethod(st.solver),
                           correction=Correction(st.correction),
                           converged=bool(st.converged), weight_error=st.weight_error,
                           sensing_error=st.sensing_error,
                           solver_iterations=st.solver_iterations,
                           solver_iterations_max=st.solver_iterations_max,
                           rows_not_converged=st.rows_not_converged,
                           rows_damped=st.rows_damped, events=st.events,
                           event_seconds=st.event_seconds, total_seconds=st.total_seconds,
                           observed_rows=st.observed_rows,
                           observe_seconds=st.observe_seconds)

    def step_stats(self):
        """StepStats of the whole pruner (``csp_pruner_step_stats``)."""
        st = _lib.init_struct(_lib.StepStats)
        check(lib.csp_pruner_step_stats(self._live(), ctypes.byref(st)), self.ctx)
        return StepStats(steps=st.steps, events=st.events,
                         last_event=None if st.last_event < 0 else st.last_event,
                         numel=st.numel, nnz=st.nnz, last_event_seconds=st.last_event_seconds,
                         event_seconds=st.event_seconds, total_seconds=st.total_seconds,
                         observe_seconds=st.observe_seconds)

    # --- state --------------------------------------------------------------------

    def state(self):
        """The pruner's resumable state as a dict of plain Python values:
        ``{"format": "csp.Pruner", "version": 2, "checkpoint": bytes}``, the
        checkpoint being the library's (save(), docs/formats.md): masks,
        schedule position, per-tensor targets and events, activation
        accumulators of the pruner's own operators, ISTA/FISTA warm-start
        lambdas and statistics. Weights, optimizer state and operators
        attached with set_sensing() are the host's to save."""
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "checkpoint": self.save()}

    @modifies
    def load_state(self, state):
        """Restore state() into this pruner, built the same way (same tensors
        in the same order, options, schedule, context seed; operators the host
        attached attached again); it may have stepped already (a rollback).
        A dict that is not such a state is ValueError; the checkpoint is then
        load(): CspError with the library's message (E_CORRUPT, E_VERSION,
        E_SHAPE, E_DTYPE, E_STATE) and nothing changed. Host buffers are not
        touched: the masks reach them at the next step()."""
        self.load(_checkpoint_of(state, STATE_FORMAT, STATE_VERSION))

    # --- checkpoints and compressed export (include/csp/io.h) ------------------------

    def save(self):
        """The library's checkpoint of this pruner (bytes, docs/formats.md):
        masks, schedule position, per-tensor targets and events, activation
        accumulators of the pruner's own operators, ISTA/FISTA warm-start
        lambdas, statistics. Weights, optimizer state and attached operators
        are not in it: save them with the host's tools."""
        return _io.save(self)

    @modifies
    def load(self, data):
        """Restore a checkpoint (bytes-like) into this pruner, built the same
        way (same tensors in the same order, options and schedule). Everything
        is checked first: on CspError (E_CORRUPT, E_VERSION, E_SHAPE, E_DTYPE,
        E_STATE with a message naming what differs) nothing changed. Host
        buffers are not touched: the masks reach them at the next step()."""
        _io.load(self, data)

    def save_file(self, path):
        """Write the checkpoint to ``path`` atomically (temporary file, fsync,
        rename); CspError E_IO names the failing operation."""
        _io.save_file(self, path)

    @modifies
    def load_file(self, path):
        """load() from a file written by save_file() (or save())."""
        _io.load_file(self, path)

    def export(self, index, format=ExportFormat.CSR, *, value_dtype=None, nm=None):
        """Tensor ``index``'s weights as they are now, without those its mask
        prunes, in an ExportFormat (bytes; decode with csp.export_decode()).
        ``value_dtype`` stores the values as another DType (None: the
        tensor's); ``nm`` is the (N, M) of ExportFormat.NM (None: the tensor's
        own N:M granularity)."""
        return _io.export(self, index, format, value_dtype, nm)

    def export_stats(self, index=None, format=ExportFormat.CSR, *, value_dtype=None, nm=None):
        """ExportStats (bytes against dense) of tensor ``index``, or summed over
        every non-excluded tensor (None)."""
        return _io.export_stats(self, index, format, value_dtype, nm)

    def __repr__(self):
        if self.closed:
            return "<csp.Pruner closed>"
        return "<csp.Pruner %d tensors, last step %s>" % (len(self), self.last_step)

