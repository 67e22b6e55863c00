"""Enums, errors, the handle base class, the context and tensors."""

import ctypes
import enum
import functools
import itertools
import operator
import os
import weakref

from . import _lib
from ._lib import lib


# --- enums: one per C enum; values are the C numbers --------------------------

class Status(enum.IntEnum):
    """Every status code of the C library (``enum csp_status_code``)."""
    OK = 0
    MASKED = 1      #: csp_step(): masks re-applied, no pruning event
    PRUNED = 2      #: csp_step(): pruning event, masks updated
    DAMPED = 3      #: solved, but some row needed damping (see its flags)
    NOT_CONVERGED = 4  #: solved, but some row stopped at max_iter
    NO_TENSORS = 5  #: csp_step(): the pruner has no tensors, nothing was done
    E_INVALID = -1
    E_NULL = -2
    E_NOMEM = -3
    E_OVERFLOW = -4
    E_STRUCT_SIZE = -5
    E_RESERVED = -6
    E_ENUM = -7
    E_DTYPE = -8
    E_SHAPE = -9
    E_RANGE = -10
    E_NONFINITE = -11
    E_STATE = -12
    E_VERSION = -13
    E_IO = -14
    E_CORRUPT = -15
    E_UNSUPPORTED = -16
    E_CALLBACK = -17
    E_THREAD = -18
    E_BUFFER = -19


class DType(enum.IntEnum):
    """Element types (``enum csp_dtype``)."""
    F32 = 1
    F64 = 2


class LogLevel(enum.IntEnum):
    """Log levels (``enum csp_log_level``)."""
    NONE = 0
    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4


class ScheduleKind(enum.IntEnum):
    """Kinds of schedule (``enum csp_schedule_kind``)."""
    CONSTANT = 1
    POLYNOMIAL = 2
    CALLBACK = 3


class Granularity(enum.IntEnum):
    """How the sparsity budget is spread (``enum csp_granularity``)."""
    TENSOR = 1
    ROW = 2
    GLOBAL = 3
    NM = 4


class SensingKind(enum.IntEnum):
    """Kinds of sensing operator (``enum csp_sensing_kind``)."""
    IDENTITY = 1     #: G = I (magnitude selection)
    GAUSSIAN = 2     #: G = Phi^T Phi, Phi m x n with N(0, 1/m) entries
    RADEMACHER = 3   #: G = Phi^T Phi, Phi m x n with +-1/sqrt(m) entries
    ACTIVATIONS = 4  #: G = X^T X / N + eps I from observed layer inputs
    GRAM = 5         #: a Gram matrix the host supplies (Sensing.from_gram)


class SolverMethod(enum.IntEnum):
    """Solver methods (``enum csp_solver_method``)."""
    OMP = 1
    ISTA = 2
    FISTA = 3
    SWEEP = 4  #: second-order sweep (experimental, <csp/experimental.h>)


class Correction(enum.IntEnum):
    """What a CSP event does to the weights it keeps (``enum csp_correction``)."""
    NONE = 1   #: x_S = w_S: kept weights unchanged
    FULL = 2   #: x_S = the least-squares refit through G
    BLEND = 3  #: x_S = w_S + alpha (refit - w_S)


class Support(enum.IntEnum):
    """Where a CSP event's new support comes from (``enum csp_support``)."""
    SOLVER = 1     #: the solver's (OMP, or calibrated L1) through G
    MAGNITUDE = 2  #: the k largest |w| (GMP's support); G serves the correction only
    WANDA = 3      #: the k largest |w_j| sqrt(G_jj) (Wanda, Sun et al. 2023)


class ExportFormat(enum.IntEnum):
    """Compressed export formats (``enum csp_export_format``)."""
    CSR = 1     #: row pointers, column indices, values
    BITMAP = 2  #: 1 bit per weight, then the kept values
    NM = 3      #: N value slots and ceil(log2 M)-bit indices per group of M


class RowFlag(enum.IntFlag):
    """Bits of a solved row's ``flags`` (``enum csp_row_flag``)."""
    DAMPED = 1      #: G_SS singular or ill-conditioned: solved with G + damping I
    DEPENDENT = 2   #: a selected column was linearly dependent on the others
    FILLED = 4      #: calibrated L1: no lambda reached k; support filled by |w|, index
    CUT = 8         #: calibrated L1: more than k nonzeros at the final lambda; k kept


def to_enum(cls, value, what):
    """Convert an enum member, its int value or its name (any case) to
    @p cls; anything else raises ValueError (TypeError for other types)."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return cls[value.upper()]
        except KeyError:
            pass
    elif not _is_bool(value) and hasattr(type(value), "__index__"):
        try:
            return cls(operator.index(value))
        except ValueError:
            pass
    else:
        raise TypeError("%s must be a %s, its name or its value, not %s"
                        % (what, cls.__name__, type(value).__name__))
    raise ValueError("unknown %s %r; one of %s" % (
        what, value, ", ".join("%s (%d)" % (m.name.lower(), m.value) for m in cls)))


# --- values crossing into C ---------------------------------------------------
# Every integer and string handed to a C function or written into a C struct
# goes through c_int() or c_str(): ctypes itself wraps integers modulo 2^bits
# and cuts strings at the first NUL, silently.

#: (lowest, highest) value of each C integer type the library's API uses.
C_INT_RANGES = {
    "int32": (-2 ** 31, 2 ** 31 - 1),
    "int64": (-2 ** 63, 2 ** 63 - 1),
    "uint32": (0, 2 ** 32 - 1),
    "uint64": (0, 2 ** 64 - 1),
    "size_t": (0, 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1),
}


def _is_bool(value):
    """bool, numpy.bool_ and bool arrays/tensors: not integers here (True
    must not pass as 1 where C takes a count, a step or an index)."""
    if isinstance(value, bool):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and (getattr(dtype, "kind", None) == "b"
                                  or str(dtype) == "torch.bool")


def _where(name, fn):
    return "%s(): %s" % (fn, name) if fn else name


def c_int(value, ctype, name, fn=None):
    """@p value as a Python int for a C argument or field of type @p ctype
    ("int32", "int64", "uint32", "uint64", "size_t"). Integers of any kind
    are accepted (int, numpy integer scalars, anything with __index__); a
    bool, a float or anything else is TypeError, and a value outside the C
    type's range is OverflowError naming @p name (in public function @p fn)
    and the range. The library checks what the value means."""
    if _is_bool(value):
        raise TypeError("%s must be an int, not a bool" % _where(name, fn))
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s must be an int, not %s"
                        % (_where(name, fn), type(value).__name__)) from None
    lo, hi = C_INT_RANGES[ctype]
    if not lo <= v <= hi:
        raise OverflowError("%s = %d is out of range: the C argument is %s (%d..%d)"
                            % (_where(name, fn), v, ctype, lo, hi))
    return v


def c_str(value, name, fn=None, *, path=False, max_bytes=None):
    """@p value as NUL-terminated bytes for a C string: a str (UTF-8), or
    for a @p path a str, bytes or os.PathLike (os.fsencode). A NUL byte,
    which C would take for the end of the string, is ValueError, as is more
    than @p max_bytes bytes; another type is TypeError."""
    if path:
        try:
            raw = os.fsencode(value)
        except TypeError:
            raise TypeError("%s must be a str, bytes or os.PathLike path, not %s"
                            % (_where(name, fn), type(value).__name__)) from None
    elif isinstance(value, str):
        raw = value.encode()
    else:
        raise TypeError("%s must be a str, not %s" % (_where(name, fn), type(value).__name__))
    if b"\0" in raw:
        raise ValueError("%s %r contains a NUL character, which C would read as its end"
                         % (_where(name, fn), value))
    if max_bytes is not None and len(raw) > max_bytes:
        raise ValueError("%s is %d bytes long; at most %d" % (_where(name, fn), len(raw),
                                                             max_bytes))
    return raw



def c_int_pair(pair, name, fn=None):
    """An (N, M) pair of int32 values (N:M sparsity) through c_int()."""
    try:
        n, m = pair
    except (TypeError, ValueError):
        raise TypeError("%s must be a pair (N, M), e.g. (2, 4), not %r"
                        % (_where(name, fn), pair)) from None
    return c_int(n, "int32", name + "[0]", fn), c_int(m, "int32", name + "[1]", fn)

# --- errors -------------------------------------------------------------------

class CspError(Exception):
    """A libcsp call failed. ``status`` is the C status code (a Status),
    ``name`` its symbolic name (e.g. "CSP_E_NOMEM") and ``message`` the
    context's text. An exception raised by a Python callback is chained as
    ``__cause__``."""

    def __init__(self, status, message=""):
        try:
            self.status = Status(int(status))
        except ValueError:
            self.status = int(status)
        self.name = status_name(status)
        self.message = message or status_str(status)
        super().__init__("%s: %s" % (self.name, self.message))


def status_name(status):
    """Symbolic name of a status code, e.g. "CSP_E_RANGE"."""
    return lib.csp_status_name(c_int(status, "int32", "status", "status_name")).decode()


def status_str(status):
    """One-line English description of a status code."""
    return lib.csp_status_str(c_int(status, "int32", "status", "status_str")).decode()


def check(status, ctx=None, callback=None, pending=None):
    """Raise CspError for a negative status; return it (as Status) otherwise.

    @p callback is the _Callback whose pending Python exception, if any,
    becomes the error's cause; @p pending is such an exception taken already."""
    if callback is not None:
        taken = callback.take()
        pending = pending if pending is not None else taken
    if status < 0:
        msg = ""
        if ctx is not None and ctx._handle:
            msg = lib.csp_context_last_error(ctx._handle).decode(errors="replace")
        err = CspError(status, msg)
        if pending is not None:
            if not isinstance(pending, Exception):  # KeyboardInterrupt, SystemExit
                raise pending
            raise err from pending
        raise err
    return Status(status) if status in _STATUS_VALUES else status


_STATUS_VALUES = frozenset(int(s) for s in Status)


def version():
    """The loaded library's version string, e.g. "0.1.0"."""
    return lib.csp_version_string().decode()


def _handshake():
    st = lib.csp_check_version(_lib.ABI_VERSION, _lib.VERSION_NUMBER)
    if st != 0:
        raise ImportError(
            "libcsp at %s is version %s (ABI %d); this Python package needs ABI %d, "
            "version >= %d.%d" % (_lib.path, version(), lib.csp_abi_version(),
                                  _lib.ABI_VERSION, _lib.VERSION[0], _lib.VERSION[1]))
    problems = _lib.check_struct_sizes()
    if problems:
        raise ImportError("libcsp at %s and this Python package disagree on options "
                          "structs: %s" % (_lib.path, "; ".join(problems)))


# --- handles and lifetimes ----------------------------------------------------

_serial = itertools.count()


def _running_error(what):
    return CspError(Status.E_STATE,
                    "%s: refused while a libcsp call of its context is running (this was "
                    "called from inside a step, schedule or log callback, or from another "
                    "thread); inside a callback, objects of that context may be read but not "
                    "closed, stepped or changed: do it after the call returns" % what)


def refuse_while_running(objects, what):
    """Raise CspError (E_STATE) naming public function @p what when a libcsp
    call of the context of any of @p objects, or of anything depending on
    them (what close() would close too), is running: a callback of it is on
    the stack, or another thread is inside it. Closing or changing those
    objects then would free or change memory the running call uses."""
    seen = set()
    todo = [o for o in objects if o is not None]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or obj._closing:
            continue
        seen.add(id(obj))
        ctx = obj._context()
        if ctx is not None and ctx._running:
            raise _running_error(what)
        todo.extend(obj._users)


def modifies(method):
    """Decorator of the methods that free or change libcsp state (those
    whose C call takes a non-const object, or that write memory libcsp
    reads): refused by refuse_while_running() before anything is done."""
    what = method.__qualname__ + "()"

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        refuse_while_running((self,), what)
        return method(self, *args, **kwargs)
    return guarded


class _Handle:
    """Base of every wrapper: owns one C handle, freed by close().

    Lifetimes follow the C rules whatever the order of close() calls, ``with``
    blocks or garbage collection (which finalises the objects of a cycle in
    any order, after clearing the weak references between them):
    - an object *depends on* what its C object points to (a tensor on its
      context, a pruner on its context and its tensors): it holds them
      strongly and *pins* them; a pinned object's C handle is freed only once
      nothing pins it, so no C object is ever freed before one that uses it;
    - an explicit close() first closes every live object that depends on this
      one (newest first): closing a context closes everything made from it,
      closing a tensor closes the pruners bound to it;
    - close() and every method that changes libcsp state are refused while a
      libcsp call of the context runs (refuse_while_running): from a callback
      they would free or change what that call is using. Garbage collection
      closes without that check: an unreachable object is in no running call.
    A closed object raises ValueError when used, even while its C handle
    waits for its dependents to go.

    Wrappers cannot be copied or pickled (a copy would own the same C object
    and free it a second time): _copy_hint says what to do instead.
    """
    _free = None
    _copy_hint = "create another one"

    def __init__(self):
        self._handle = None
        self._closing = False
        self._serial = next(_serial)
        self._users = weakref.WeakSet()  # objects that depend on this one
        self._deps = []                  # objects this one depends on (pinned)
        self._pins = 0
        self._freed = False

    def _context(self):
        """The Context whose calls this object's C object takes part in."""
        return getattr(self, "ctx", None)

    @classmethod
    def _public_name(cls):
        return next(c.__name__ for c in cls.__mro__ if not c.__name__.startswith("_"))

    # --- no copies ------------------------------------------------------------

    def _no_copy(self):
        return TypeError("csp.%s cannot be copied or pickled: it owns a libcsp object, which a "
                         "copy would share (and free twice); %s"
                         % (self._public_name(), self._copy_hint))

    def __copy__(self):
        raise self._no_copy()

    def __deepcopy__(self, memo):
        raise self._no_copy()

    def __reduce_ex__(self, protocol):
        raise self._no_copy()

    def __reduce__(self):
        raise self._no_copy()

    # --- lifetime -------------------------------------------------------------

    def _depend_on(self, other):
        other._users.add(self)
        other._pins += 1
        self._deps.append(other)

    def _undepend(self, other):
        other._users.discard(self)
        self._deps.remove(other)
        other._unpin()

    def _unpin(self):
        self._pins -= 1
        self._maybe_free()

    def close(self):
        """Close this object (and first every object that depends on it).
        Idempotent. Refused (CspError E_STATE) from inside a callback of a
        libcsp call of its context: close it after that call returns."""
        if self._closing:
            return
        refuse_while_running((self,), "%s.close()" % self._public_name())
        self._close()

    def _close(self):
        if self._closing:
            return
        for user in sorted(list(self._users), key=lambda u: -u._serial):
            user._close()
        self._closing = True
        self._maybe_free()

    def _maybe_free(self):
        if not self._closing or self._pins > 0 or self._freed:
            return
        self._freed = True
        if self._handle:
            handle, self._handle = self._handle, None
            type(self)._free(handle)
        self._closed()
        deps, self._deps = self._deps, []
        for dep in deps:
            dep._unpin()

    def _closed(self):
        """Hook for subclasses, called once the C handle is freed."""

    @property
    def closed(self):
        return self._closing or not self._handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self._close()
        except Exception:
            pass

    def _live(self):
        if self._closing or not self._handle:
            raise ValueError("%s is closed" % self._public_name())
        return self._handle


class Context(_Handle):
    """A libcsp context: threads, seed, log hook and the last error.

    Every other object is created from a context and keeps it alive; closing
    the context closes them. Use a context (and its objects) from one thread
    at a time, as in C.

    @param seed         Seed of every random choice (0..2^64-1).
    @param num_threads  Worker threads, 1..256; results never depend on it.
    @param log          Callable ``log(level: LogLevel, message: str)`` or None.
    @param log_level    Messages up to this level go to @p log.
    """
    _free = lib.csp_context_free
    _copy_hint = ("create another: csp.Context(seed=ctx.seed, num_threads=ctx.num_threads, "
                  "log=...)")

    def __init__(self, seed=0, num_threads=1, log=None, log_level=LogLevel.WARN):
        super().__init__()
        #: libcsp calls of this context in progress (refuse_while_running)
        self._running = 0
        opts = _lib.init_struct(_lib.ContextOptions)
        opts.seed = c_int(seed, "uint64", "seed", "Context")
        opts.num_threads = c_int(num_threads, "int32", "num_threads", "Context")
        opts.log_level = int(to_enum(LogLevel, log_level, "log_level"))
        self._log_cb = self._make_log(log)
        if self._log_cb is not None:
            opts.log = self._log_cb
        handle = ctypes.c_void_p()
        check(lib.csp_context_create(ctypes.byref(handle), ctypes.byref(opts)))
        self._handle = handle

    def _context(self):
        return self

    def _enter(self):
        """Mark a libcsp call of this context as running (until _leave())."""
        self._running += 1

    def _leave(self):
        self._running -= 1

    def _make_log(self, log):
        if log is None:
            return None
        ref = weakref.ref(self)

        def trampoline(user, level, message):
            me = ref()
            if me is not None:
                me._enter()  # a log message comes from inside a call of this context
            try:
                log(LogLevel(level), message.decode(errors="replace"))
            except Exception:  # nowhere to report it: a log hook must not fail
                pass
            finally:
                if me is not None:
                    me._leave()
        return _lib.LOG_FN(trampoline)

    @modifies
    def set_log(self, log, level=LogLevel.WARN):
        """Replace the log hook (None stops logging) and level."""
        cb = self._make_log(log)
        level = int(to_enum(LogLevel, level, "log_level"))
        null = _lib.LOG_FN()  # a NULL function pointer: stop logging
        check(lib.csp_context_set_log(self._live(), cb if cb is not None else null, None,
                                      level), self)
        self._log_cb = cb  # keep the ctypes thunk alive while C holds it

    @property
    def seed(self):
        return lib.csp_context_seed(self._live())

    @property
    def num_threads(self):
        return lib.csp_context_num_threads(self._live())

    @num_threads.setter
    def num_threads(self, n):
        refuse_while_running((self,), "setting Context.num_threads")
        n = c_int(n, "int32", "num_threads", "Context.num_threads")
        check(lib.csp_context_set_num_threads(self._live(), n), self)

    @property
    def last_error(self):
        """Message of the last failed call made with this context ("" if none)."""
        return lib.csp_context_last_error(self._live()).decode(errors="replace")

    @property
    def last_status(self):
        """Status of the last failed call made with this context (OK if none)."""
        return Status(lib.csp_context_last_status(self._live()))

    @modifies
    def clear_error(self):
        lib.csp_context_clear_error(self._live())


# --- tensors ------------------------------------------------------------------

def expect(obj, cls, what):
    """TypeError unless @p obj is a @p cls."""
    if not isinstance(obj, cls):
        raise TypeError("%s must be a csp.%s, not %s" % (what, cls.__name__,
                                                       type(obj).__name__))
    return obj


def _numpy():
    import numpy
    return numpy


def _is_torch(obj):
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "data_ptr")


def describe_buffer(obj):
    """(pointer, shape, DType) of a numpy array or a torch tensor that libcsp
    can view in place; TypeError/ValueError for anything that would need a
    copy (libcsp prunes in place: a silent copy would prune the copy)."""
    if _is_torch(obj):
        return _describe_torch(obj)
    np = _numpy()
    if not isinstance(obj, np.ndarray):
        raise TypeError("expected a numpy.ndarray or a torch.Tensor, got %s"
                        % type(obj).__name__)
    if obj.dtype not in (np.float32, np.float64):
        raise TypeError("libcsp views float32 or float64 arrays, not %s" % obj.dtype)
    if not obj.flags.c_contiguous:
        raise ValueError("the array is not C-contiguous: libcsp prunes in place and never "
                         "copies silently; pass numpy.ascontiguousarray(a) and use that")
    if not obj.flags.writeable:
        raise ValueError("the array is read-only: libcsp prunes in place")
    if obj.ndim < 1:
        raise ValueError("libcsp tensors have rank 1 to %d, not 0" % _lib.MAX_RANK)
    dtype = DType.F32 if obj.dtype == np.float32 else DType.F64
    return obj.ctypes.data, tuple(obj.shape), dtype


def _describe_torch(t):
    dev = t.device
    if dev.type != "cpu":
        raise ValueError("the tensor is on device '%s': libcsp works on CPU memory in place "
                         "and never copies; prune a CPU model (or move it with .cpu() first "
                         "and register the moved parameters)" % dev)
    name = str(t.dtype)
    if name not in ("torch.float32", "torch.float64"):
        raise TypeError("libcsp views float32 or float64 tensors, not %s" % name)
    if str(getattr(t, "layout", "torch.strided")) != "torch.strided":
        raise TypeError("libcsp views dense (strided) tensors, not %s ones" % t.layout)
    if not t.is_contiguous():
        raise ValueError("the tensor is not contiguous: libcsp prunes in place and never "
                         "copies silently; make the parameter contiguous first "
                         "(p.data = p.data.contiguous()) and register it then")
    if t.dim() < 1:
        raise ValueError("libcsp tensors have rank 1 to %d, not 0" % _lib.MAX_RANK)
    if t.numel() == 0:
        raise ValueError("the tensor is empty")
    dtype = DType.F32 if name == "torch.float32" else DType.F64
    return t.data_ptr(), tuple(t.shape), dtype


def row_view(obj, dtype, what, *, writable=False):
    """View the rows of a 1-D or 2-D numpy array or CPU torch tensor of
    @p dtype ("float32", "float64") in place, for a C argument that takes a
    pointer, rows, cols and a row stride. Returns (pointer, rows, cols,
    row_stride in elements); a 1-D array is one row.

    Accepted: C-contiguous arrays, and *row-strided* ones (each row
    contiguous, rows a whole number of elements apart, e.g. ``a[:, 10:20]``):
    exactly what the C stride describes. Anything else would need a copy and
    raises instead: another type or dtype (TypeError), another layout, a
    device other than the CPU, a misaligned or, when @p writable, read-only
    array (ValueError)."""
    if _is_torch(obj):
        if obj.device.type != "cpu":
            raise ValueError("%s is on device '%s': libcsp reads and writes CPU memory in "
                             "place and never copies" % (what, obj.device))
        if str(obj.dtype) != "torch." + dtype:
            raise TypeError("%s must be a %s tensor, not %s" % (what, dtype, obj.dtype))
        if str(getattr(obj, "layout", "torch.strided")) != "torch.strided":
            raise TypeError("%s must be a dense (strided) tensor, not %s" % (what, obj.layout))
        shape, strides, isz = tuple(obj.shape), tuple(obj.stride()), obj.element_size()
        strides = tuple(st * isz for st in strides)
        ptr = obj.data_ptr()
    else:
        np = _numpy()
        if not isinstance(obj, np.ndarray):
            raise TypeError("%s must be a numpy.ndarray or a torch.Tensor, not %s"
                            % (what, type(obj).__name__))
        if obj.dtype != np.dtype(dtype):
            raise TypeError("%s must be a %s array, not %s: libcsp never converts (that "
                            "would be a copy); pass a.astype(numpy.%s) yourself"
                            % (what, dtype, obj.dtype, dtype))
        if writable and not obj.flags.writeable:
            raise ValueError("%s is read-only: libcsp writes it in place" % what)
        if not obj.flags.aligned:
            raise ValueError("%s is not aligned to its element size" % what)
        shape, strides, isz = obj.shape, obj.strides, obj.itemsize
        ptr = obj.ctypes.data
    if len(shape) not in (1, 2):
        raise ValueError("%s must have 1 or 2 dimensions, not %d" % (what, len(shape)))
    if len(shape) == 1:
        shape, strides = (1,) + tuple(shape), (shape[0] * isz,) + tuple(strides)
    rows, cols = int(shape[0]), int(shape[1])
    empty = rows == 0 or cols == 0  # no element: any strides describe it
    inner_ok = empty or cols == 1 or strides[1] == isz
    stride = cols if rows <= 1 or empty else strides[0] // isz
    outer_ok = empty or rows == 1 or (strides[0] % isz == 0 and stride >= cols)
    if not (inner_ok and outer_ok):
        raise ValueError("%s is not C-contiguous nor row-strided (shape %s, strides %s): "
                         "libcsp views memory in place and never copies silently; pass "
                         "numpy.ascontiguousarray(a) (and use that)"
                         % (what, tuple(shape), tuple(strides)))
    return ptr, rows, cols, max(stride, cols)


def fold_shape(shape):
    """Fold a shape of rank > 4 into rank 4 by merging the trailing sizes: the
    same matrix view (rows = shape[0]) and the same row-major flat order."""
    shape = tuple(int(s) for s in shape)
    if len(shape) <= _lib.MAX_RANK:
        return shape
    tail = 1
    for s in shape[_lib.MAX_RANK - 1:]:
        tail *= s
    return shape[:_lib.MAX_RANK - 1] + (tail,)


class Tensor(_Handle):
    """A zero-copy view of a host buffer: a C-contiguous float32/float64 numpy
    array or CPU torch tensor of any rank >= 1 (ranks above 4 are folded into
    4: the same rows, the same flat order).

    The view keeps @p buffer alive (``tensor.buffer``) and its context; libcsp
    reads and writes that memory in place.
    """
    _free = lib.csp_tensor_free
    _copy_hint = "make another view of the same memory: csp.Tensor(ctx, t.buffer, t.name)"

    def __init__(self, ctx, buffer, name=None):
        super().__init__()
        expect(ctx, Context, "ctx")
        ptr, shape, dtype = describe_buffer(buffer)
        cname = None if name is None else c_str(name, "name", "Tensor",
                                                max_bytes=_lib.MAX_NAME)
        self.ctx = ctx
        self.buffer = buffer
        self.shape = shape          #: the buffer's own shape
        self.dtype = dtype
        folded = fold_shape(shape)
        dims = (ctypes.c_int64 * len(folded))(*folded)
        handle = ctypes.c_void_p()
        check(lib.csp_tensor_create(ctypes.byref(handle), ctx._live(), ptr, int(dtype),
                                    len(folded), dims, 0, cname), ctx)
        self._handle = handle
        self._depend_on(ctx)

    @modifies
    def set_data(self, buffer):
        """Point the view at another buffer of the same shape and dtype (for a
        host that reallocated its parameters); keeps the new buffer alive."""
        ptr, shape, dtype = describe_buffer(buffer)
        if shape != self.shape or dtype != self.dtype:
            raise ValueError("set_data needs the same shape and dtype: %s %s, not %s %s"
                             % (self.shape, self.dtype.name, shape, dtype.name))
        check(lib.csp_tensor_set_data(self._live(), ptr), self.ctx)
        self.buffer = buffer

    @property
    def data_ptr(self):
        """Address of the viewed memory."""
        return lib.csp_tensor_data(self._live())

    @property
    def name(self):
        return lib.csp_tensor_name(self._live()).decode()

    @property
    def numel(self):
        return lib.csp_tensor_numel(self._live())

    @property
    def rows(self):
        return lib.csp_tensor_rows(self._live())

    @property
    def cols(self):
        return lib.csp_tensor_cols(self._live())

    def __repr__(self):
        state = "closed" if self.closed else "%r %s" % (self.name, self.dtype.name)
        return "<csp.Tensor %s %s>" % (state, self.shape)


_handshake()
