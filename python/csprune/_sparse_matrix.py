"""csp.SparseMatrix: the library's immutable sparse float32 weight matrix
(include/csp/sparse.h) and y = alpha W x + beta y on numpy arrays."""

import ctypes
import enum

from . import _lib
from ._core import Context, _Handle, _numpy, check, expect
from ._lib import lib


class SparseFormat(enum.IntEnum):
    """Storage layouts (enum csp_sparse_format)."""
    AUTO = 0
    CSR = 1
    BALANCED = 2
    NM = 3


class SparseKernel(enum.IntEnum):
    """Kernel families (enum csp_sparse_kernel)."""
    AUTO = 0
    PORTABLE = 1
    AVX2 = 2
    AVX512 = 3
    NEON = 4


def _options(format, kernel, nm):
    o = _lib.init_struct(_lib.SparseOptions)
    o.format = int(SparseFormat(format))
    o.kernel = int(SparseKernel(kernel))
    if nm is not None:
        o.nm_n, o.nm_m = int(nm[0]), int(nm[1])
    return o


class SparseMatrix(_Handle):
    """An immutable sparse float32 matrix W (rows x cols) for inference.

    Build it with from_dense(), from_export() or from_pruner(); then
    matvec(x) = W x and matmul(X) = X W^T (batch-major, X of shape
    (B, cols)). Results never depend on the context's thread count.
    The context must stay open while the matrix is used (it is pinned)."""
    _free = lib.csp_sparse_free
    _copy_hint = "build another from the same weights"

    def __init__(self, ctx, handle):
        super().__init__()
        self.ctx = ctx
        self._depend_on(ctx)
        self._handle = handle
        info = _lib.init_struct(_lib.SparseInfo)
        check(lib.csp_sparse_inspect(handle, ctypes.byref(info)), ctx)
        self._info = info

    @classmethod
    def from_dense(cls, ctx, dense, format=SparseFormat.AUTO, kernel=SparseKernel.AUTO,
                   nm=None):
        """The nonzeros of a 2-D array (converted to C-contiguous float32)."""
        np = _numpy()
        expect(ctx, Context, "ctx")
        a = np.ascontiguousarray(dense, dtype=np.float32)
        if a.ndim != 2:
            raise ValueError("SparseMatrix.from_dense: dense must be 2-D, got shape %s"
                             % (a.shape,))
        o = _options(format, kernel, nm)
        h = ctypes.c_void_p()
        check(lib.csp_sparse_from_dense(ctx._live(), a.ctypes.data, a.shape[0], a.shape[1], 0,
                                        ctypes.byref(o), ctypes.byref(h)), ctx)
        return cls(ctx, h)

    @classmethod
    def from_export(cls, ctx, data, format=SparseFormat.AUTO, kernel=SparseKernel.AUTO,
                    nm=None):
        """An export (bytes from Pruner.export(): CSR, bitmap or N:M)."""
        expect(ctx, Context, "ctx")
        buf = bytes(data)
        o = _options(format, kernel, nm)
        h = ctypes.c_void_p()
        check(lib.csp_sparse_from_export(ctx._live(), buf, len(buf), ctypes.byref(o),
                                         ctypes.byref(h)), ctx)
        return cls(ctx, h)

    @classmethod
    def from_pruner(cls, pruner, index, format=SparseFormat.AUTO, kernel=SparseKernel.AUTO,
                    nm=None):
        """Tensor @p index of a Pruner: its weights now, times its mask."""
        o = _options(format, kernel, nm)
        h = ctypes.c_void_p()
        check(lib.csp_sparse_from_pruner(pruner._live(), int(index), ctypes.byref(o),
                                         ctypes.byref(h)), pruner.ctx)
        return cls(pruner.ctx, h)

    shape = property(lambda self: (self._info.rows, self._info.cols))
    nnz = property(lambda self: self._info.nnz)
    nbytes = property(lambda self: self._info.bytes, doc="bytes the kernels read")
    format = property(lambda self: SparseFormat(self._info.format))
    kernel = property(lambda self: SparseKernel(self._info.kernel))

    def matvec(self, x, alpha=1.0, beta=0.0, y=None):
        """alpha W x + beta y (y: float32, C-contiguous, updated in place
        when given, else a new array); x of length cols."""
        return self._apply(x, alpha, beta, y, batch=False)

    def matmul(self, x, alpha=1.0, beta=0.0, y=None):
        """alpha X W^T + beta Y for X of shape (B, cols): Y of shape (B, rows)."""
        return self._apply(x, alpha, beta, y, batch=True)

    def _apply(self, x, alpha, beta, y, batch):
        np = _numpy()
        name = "SparseMatrix.matmul" if batch else "SparseMatrix.matvec"
        rows, cols = self.shape
        xa = np.ascontiguousarray(x, dtype=np.float32)
        want = (xa.shape[0], cols) if batch and xa.ndim == 2 else (cols,)
        if xa.shape != want:
            raise ValueError("%s: x has shape %s, expected %s" % (name, xa.shape,
                             "(B, %d)" % cols if batch else (cols,)))
        out_shape = (xa.shape[0], rows) if batch else (rows,)
        if y is None:
            y = np.zeros(out_shape, np.float32)
            beta = 0.0
        elif (not isinstance(y, np.ndarray) or y.dtype != np.float32 or y.shape != out_shape
              or not y.flags.c_contiguous or not y.flags.writeable):
            raise ValueError("%s: y must be a writable C-contiguous float32 array of shape %s"
                             % (name, out_shape))
        h, ctx = self._live(), self.ctx._live()
        if batch:
            st = lib.csp_sparse_matmul(h, ctx, xa.shape[0], alpha, xa.ctypes.data, 0, beta,
                                       y.ctypes.data, 0)
        else:
            st = lib.csp_sparse_matvec(h, ctx, alpha, xa.ctypes.data, beta, y.ctypes.data)
        check(st, self.ctx)
        return y

    def __repr__(self):
        return "<csp.SparseMatrix %dx%d nnz=%d %s %s>" % (
            self.shape + (self.nnz, self.format.name.lower(), self.kernel.name.lower()))

