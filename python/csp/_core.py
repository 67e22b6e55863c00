"""Status codes, errors, the context and tensors."""

import ctypes
import enum
import weakref

from . import _lib
from ._lib import lib


class Status(enum.IntEnum):
    """Every status code of the C library (include/csp/core.h)."""
    OK = 0
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
    F32 = 1
    F64 = 2


class LogLevel(enum.IntEnum):
    NONE = 0
    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4


class CspError(Exception):
    """A libcsp call failed. ``status`` is the C status code, ``name`` its
    symbolic name (e.g. "CSP_E_NOMEM") and ``message`` the context's text."""

    def __init__(self, status, message=""):
        self.status = int(status)
        self.name = status_name(status)
        self.message = message or status_str(status)
        super().__init__("%s: %s" % (self.name, self.message))


def status_name(status):
    return lib.csp_status_name(int(status)).decode()


def status_str(status):
    return lib.csp_status_str(int(status)).decode()


def check(status, ctx=None):
    """Raise CspError for a negative status; return it otherwise."""
    if status < 0:
        msg = ""
        if ctx is not None and ctx._handle:
            msg = lib.csp_context_last_error(ctx._handle).decode(errors="replace")
        raise CspError(status, msg)
    return status


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


class _Handle:
    """Base of every wrapper: owns one C handle, freed by close().

    Objects created from a context register with it: closing the context
    closes them first, so no C object outlives the context it came from.
    """
    _free = None

    def __init__(self):
        self._handle = None
        self._children = weakref.WeakSet()

    def _adopt(self, child):
        self._children.add(child)

    def close(self):
        for child in list(self._children):
            child.close()
        if self._handle:
            type(self)._free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _live(self):
        if not self._handle:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._handle


class Context(_Handle):
    """A libcsp context: threads, seed, log hook and the last error.

    Objects created from a context keep it alive. Use one context per thread.
    """
    _free = lib.csp_context_free

    def __init__(self, seed=0, num_threads=1, log=None, log_level=LogLevel.WARN):
        super().__init__()
        opts = _lib.ContextOptions()
        check(lib.csp_context_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
        opts.seed = seed
        opts.num_threads = num_threads
        opts.log_level = int(log_level)
        self._log_cb = None
        if log is not None:
            def trampoline(user, level, message):
                log(LogLevel(level), message.decode(errors="replace"))
            self._log_cb = _lib.LOG_FN(trampoline)
            opts.log = self._log_cb
        handle = ctypes.c_void_p()
        check(lib.csp_context_create(ctypes.byref(handle), ctypes.byref(opts)))
        self._handle = handle

    @property
    def seed(self):
        return lib.csp_context_seed(self._live())

    @property
    def num_threads(self):
        return lib.csp_context_num_threads(self._live())

    @num_threads.setter
    def num_threads(self, n):
        check(lib.csp_context_set_num_threads(self._live(), n), self)

    @property
    def last_error(self):
        return lib.csp_context_last_error(self._live()).decode(errors="replace")


def _numpy():
    import numpy
    return numpy


def as_tensor_array(array):
    """Check that @p array can be viewed without a copy; return it."""
    np = _numpy()
    if not isinstance(array, np.ndarray):
        raise TypeError("expected a numpy.ndarray, got %s" % type(array).__name__)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError("libcsp views float32 or float64 arrays, not %s" % array.dtype)
    if not array.flags.c_contiguous:
        raise ValueError("the array is not C-contiguous: libcsp prunes in place and never "
                         "copies silently; pass numpy.ascontiguousarray(a) and use that")
    if not array.flags.writeable:
        raise ValueError("the array is read-only: libcsp prunes in place")
    if array.ndim < 1 or array.ndim > 4:
        raise ValueError("libcsp tensors have rank 1 to 4, not %d" % array.ndim)
    return array


class Tensor(_Handle):
    """A zero-copy view of a numpy array (float32/float64, C-contiguous)."""
    _free = lib.csp_tensor_free

    def __init__(self, ctx, array, name=None):
        super().__init__()
        np = _numpy()
        array = as_tensor_array(array)
        self.ctx = ctx
        self.array = array  # keeps the buffer alive while the view exists
        ctx._adopt(self)
        shape = (ctypes.c_int64 * array.ndim)(*array.shape)
        dtype = DType.F32 if array.dtype == np.float32 else DType.F64
        handle = ctypes.c_void_p()
        check(lib.csp_tensor_create(ctypes.byref(handle), ctx._live(),
                                    array.ctypes.data_as(ctypes.c_void_p), int(dtype),
                                    array.ndim, shape, 0,
                                    None if name is None else name.encode()), ctx)
        self._handle = handle

    @property
    def name(self):
        return lib.csp_tensor_name(self._live()).decode()

    @property
    def shape(self):
        h = self._live()
        return tuple(lib.csp_tensor_dim(h, i) for i in range(lib.csp_tensor_rank(h)))

    @property
    def rows(self):
        return lib.csp_tensor_rows(self._live())

    @property
    def cols(self):
        return lib.csp_tensor_cols(self._live())


_handshake()
