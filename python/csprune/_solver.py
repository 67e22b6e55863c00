"""Batched compressed-sensing solvers (OMP, ISTA, FISTA) over a Sensing."""

import ctypes
import dataclasses
from typing import Any

from . import _lib
from . import _options
from ._core import (Context, SolverMethod, Status, _Handle, _numpy, c_int, check, expect,
                    modifies, row_view, to_enum)
from ._lib import lib
from ._sensing import Sensing



def _solver_options():
    """{keyword: Option} of csp_solver_options, from the library's options
    table (the "solver." rows; C's ``lambda`` is ``lam``): an option the
    library adds needs no code here."""
    out = {}
    for o in _options.OPTIONS:
        if o.name.startswith("solver.") and o.name != "solver.method":
            key = o.name[len("solver."):]
            out["lam" if key == "lambda" else key] = o
    return out


_OPTIONS = _solver_options()

_row_stats_dtype = None


def row_stats_dtype():
    """The numpy structured dtype of ``csp_row_stats``, derived field for
    field (offsets, itemsize) from the ctypes mirror, so the library writes
    the per-row results straight into a numpy array. C's ``lambda`` is the
    field "lambda"."""
    global _row_stats_dtype
    if _row_stats_dtype is None:
        np = _numpy()
        names, formats, offsets = [], [], []
        for name, ctype in _lib.RowStats._fields_:
            names.append(name.rstrip("_"))
            formats.append(np.float64 if ctype is ctypes.c_double else np.int32)
            offsets.append(getattr(_lib.RowStats, name).offset)
        _row_stats_dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                                     "itemsize": ctypes.sizeof(_lib.RowStats)})
    return _row_stats_dtype


@dataclasses.dataclass
class SolveResult:
    """What :meth:`Solver.solve` returns.

    ``x`` has the shape of ``w`` (it is ``out`` when one was given);
    ``support`` is a bool array of the same shape (True = selected; for OMP
    a selected coefficient may happen to be 0); ``stats`` is a numpy
    structured array with one record per row (fields residual, energy,
    lambda, damping, iterations, nnz, converged, flags; see
    :func:`row_stats_dtype`), also reachable as the properties below;
    ``status`` is Status.OK, Status.DAMPED (some row needed damping) or
    Status.NOT_CONVERGED (some row stopped at max_iter): informational,
    never raised.
    """
    x: Any
    support: Any
    stats: Any
    status: Status

    @property
    def ok(self):
        """True when status is Status.OK."""
        return self.status == Status.OK

    @property
    def residual(self):
        """(w - x)^T G (w - x) per row."""
        return self.stats["residual"]

    @property
    def energy(self):
        """w^T G w per row."""
        return self.stats["energy"]

    @property
    def relative_error(self):
        """residual / energy per row (0 where the energy is 0)."""
        np = _numpy()
        e = self.energy
        return np.divide(self.residual, e, out=np.zeros_like(e), where=e > 0)

    @property
    def lam(self):
        """ISTA/FISTA: the L1 weight used per row (calibrated or given); OMP: 0."""
        return self.stats["lambda"]

    @property
    def damping(self):
        """Absolute damping added to diag(G) per row; 0 if none."""
        return self.stats["damping"]

    @property
    def iterations(self):
        """OMP: atoms selected; ISTA/FISTA: iterations over all lambda trials."""
        return self.stats["iterations"]

    @property
    def nnz(self):
        """Size of each row's support."""
        return self.stats["nnz"]

    @property
    def converged(self):
        """Bool per row: every solve of the row met its stopping rule."""
        return self.stats["converged"] != 0

    @property
    def flags(self):
        """RowFlag bits per row, as an int32 array (``RowFlag(int(f))`` names them)."""
        return self.stats["flags"]

    def flagged(self, flag):
        """Bool per row: is RowFlag ``flag`` set?"""
        return (self.stats["flags"] & int(flag)) != 0


def _int32_rows(k, rows):
    """Per-row budgets as a fresh int32 array (a small input: converted, never
    aliased)."""
    np = _numpy()
    arr = np.asarray(k)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError("k must be an int or an array of ints, not %s" % arr.dtype)
    if arr.shape != (rows,):
        raise ValueError("per-row k must have shape (%d,), not %s" % (rows, arr.shape))
    i32 = np.iinfo(np.int32)
    if rows and (arr.min() < i32.min or arr.max() > i32.max):
        raise ValueError("k values must be in 0..n")  # not representable in int32
    return np.ascontiguousarray(arr, dtype=np.int32)


def _allowed_words(allowed, rows, n, row_bits):
    """(words array, row bits) of the allowed supports: a bool array of the
    rows' shape is packed (a small copy: an input only); uint64 words are
    used in place."""
    np = _numpy()
    if not isinstance(allowed, np.ndarray):
        raise TypeError("allowed must be a numpy bool array or uint64 words, not %s"
                        % type(allowed).__name__)
    if allowed.dtype == np.bool_:
        if row_bits is not None:
            raise ValueError("allowed_row_bits is for uint64 words, not a bool array")
        a = allowed.reshape(1, -1) if allowed.ndim == 1 else allowed
        if a.shape != (rows, n):
            raise ValueError("allowed must have the shape of w (%d x %d), not %s"
                             % (rows, n, allowed.shape))
        words = (n + 63) // 64
        packed = np.zeros((rows, words * 8), np.uint8)
        packed[:, :(n + 7) // 8] = np.packbits(a, axis=1, bitorder="little")
        return packed.view("<u8").astype(np.uint64, copy=False), 64 * words
    if allowed.dtype != np.uint64:
        raise TypeError("allowed must be a bool array or uint64 words, not %s" % allowed.dtype)
    if not allowed.flags.c_contiguous:
        raise ValueError("allowed words must be C-contiguous")
    if row_bits is None:
        if allowed.ndim != 2:
            raise ValueError("1-D allowed words need allowed_row_bits (e.g. n for a "
                             "Pruner.mask_words() of a 2-D tensor)")
        row_bits = 64 * allowed.shape[1]
    row_bits = c_int(row_bits, "int64", "allowed_row_bits", "Solver.solve")
    if row_bits < n:
        raise ValueError("allowed_row_bits = %d is below n = %d" % (row_bits, n))
    need = ((rows - 1) * row_bits + n + 63) // 64 if rows else 0
    if allowed.size < need:
        raise ValueError("allowed has %d words; %d rows of %d bits need %d"
                         % (allowed.size, rows, row_bits, need))
    return allowed, row_bits


class Solver(_Handle):
    """A batched solver: a method and its options (``csp_solver``).

    @param ctx             The Context (threads; results do not depend on them).
    @param method          SolverMethod, its name ("omp", "ista", "fista") or value.
    @param tol             ISTA/FISTA: stop at duality gap <= tol * objective.
    @param eps             OMP: also stop when (w-x)^T G (w-x) <= eps w^T G w.
    @param lam             ISTA/FISTA without calibration: the L1 weight
                           (C's ``lambda``) of rows without their own.
    @param damping         First damping (relative to mean(diag G)) for a
                           singular G_SS; escalates x10 while needed.
    @param dependence_tol  Cholesky pivot threshold of linear dependence.
    @param max_iter        ISTA/FISTA: iterations per solve.
    @param calibrate       ISTA/FISTA: True = find lambda per row so that
                           exactly k entries are nonzero; False = lambda as given.
    @param max_bisect      Calibration: most lambda trials per row.
    @param restart         FISTA: adaptive momentum restart.

    Options left as None take the library's defaults; ``options`` holds
    the values in use.
    """
    _free = lib.csp_solver_free
    _copy_hint = "create another: csp.Solver(ctx, solver.method, **solver.options)"

    def __init__(self, ctx, method=SolverMethod.OMP, **options):
        super().__init__()
        self.ctx = expect(ctx, Context, "ctx")
        self.method = to_enum(SolverMethod, method, "solver method")
        opts = _options.new_buffer()
        check(lib.csp_solver_options_init(opts, ctypes.sizeof(opts)))
        method = _options.option("solver")
        ctypes.c_int32.from_buffer(opts, method.member_offset).value = int(self.method)
        for key, value in options.items():
            if key not in _OPTIONS:
                raise TypeError("unknown solver option %r; one of %s"
                                % (key, ", ".join(_OPTIONS)))
            if value is None:
                continue
            o = _OPTIONS[key]
            if o.min == 0 and o.max == 1 and o.type != _options.DOUBLE:
                if not isinstance(value, (bool, int)):
                    raise TypeError("%s must be a bool, not %s" % (key, type(value).__name__))
                value = 1 if value else 0
            _options.write_member(opts, o, o.convert(value, "Solver", key))
        self.options = {}
        for key, o in _OPTIONS.items():
            v = _options.read_member(opts, o)
            self.options[key] = bool(v) if o.min == 0 and o.max == 1 and \
                o.type != _options.DOUBLE else v
        handle = ctypes.c_void_p()
        check(lib.csp_solver_create(ctypes.byref(handle), ctx._live(), opts), ctx)
        self._handle = handle
        self._depend_on(ctx)

    @classmethod
    def omp(cls, ctx, **options):
        """Batch-OMP: k atoms per row, least-squares coefficients on them."""
        return cls(ctx, SolverMethod.OMP, **options)

    @classmethod
    def ista(cls, ctx, **options):
        """ISTA: L1-regularised, lambda calibrated to k nonzeros by default."""
        return cls(ctx, SolverMethod.ISTA, **options)

    @classmethod
    def fista(cls, ctx, **options):
        """FISTA (with adaptive restart): as ISTA, with Nesterov momentum."""
        return cls(ctx, SolverMethod.FISTA, **options)

    @property
    def _uses_k(self):
        return self.method == SolverMethod.OMP or self.options["calibrate"]

    @modifies
    def solve(self, sensing, w, k=None, *, lam=None, allowed=None, allowed_row_bits=None,
              row_block=0, event=0, out=None, warm_start=False):
        """Solve every row of ``w`` through the Gram of ``sensing`` at
        (``row_block``, ``event``); returns a SolveResult.

        @param sensing    A Sensing of n = w's columns.
        @param w          (rows, n) or (n,) float32 numpy array or CPU torch
                          tensor, read in place (C-contiguous or row-strided).
        @param k          OMP and calibrated L1: the budget, an int for every
                          row or one int per row.
        @param lam        ISTA/FISTA: an L1 weight for every row or one per
                          row; without calibration the weights used (None:
                          the solver's ``lam``), with calibration a first
                          guess. OMP: must be None.
        @param allowed    Allowed supports (x is zero elsewhere), or None: a
                          bool array of w's shape, or uint64 words (LSB
                          first) of ``allowed_row_bits`` bits per row (for 2-D
                          words: 64 * their columns).
        @param out        Output x, float32 of w's shape, written in place
                          (may be w itself); None: a new numpy array.
        @param warm_start ISTA/FISTA: start from the content of ``out``.

        Every argument and value is checked before anything is written: an
        error raises (TypeError/ValueError in Python, CspError from the
        library) and leaves ``out`` unchanged. Status.DAMPED and
        Status.NOT_CONVERGED are reported in the result, not raised.
        """
        np = _numpy()
        row_block = c_int(row_block, "int64", "row_block", "Solver.solve")
        event = c_int(event, "int64", "event", "Solver.solve")
        h = self._live()
        expect(sensing, Sensing, "sensing")
        sh = sensing._live()
        wptr, rows, n, wstride = row_view(w, "float32", "w")
        shape = tuple(w.shape)
        if out is None:
            if warm_start:
                raise ValueError("warm_start starts from the content of out: pass out")
            out = np.empty(shape, np.float32)
        xptr, xr, xc, xstride = row_view(out, "float32", "out", writable=True)
        if tuple(out.shape) != shape:
            raise ValueError("out must have the shape of w %s, not %s"
                             % (shape, tuple(out.shape)))
        batch = _lib.init_struct(_lib.SolverBatch)
        batch.rows, batch.n = rows, n
        batch.w, batch.w_stride = wptr, wstride
        batch.x, batch.x_stride = xptr, xstride
        keep = []  # arrays the batch points into, alive until the call returns
        if self._uses_k:
            if k is None:
                raise ValueError("%s needs k (an int, or one per row)"
                                 % ("OMP" if self.method == SolverMethod.OMP
                                    else "calibrated %s" % self.method.name))
            if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
                batch.k_all = c_int(k, "int32", "k", "Solver.solve")  # the library checks 0..n
            else:
                karr = _int32_rows(k, rows)
                keep.append(karr)
                batch.k = karr.ctypes.data
        elif k is not None:
            raise ValueError("uncalibrated %s takes lam, not k" % self.method.name)
        if lam is not None:
            if self.method == SolverMethod.OMP:
                raise ValueError("OMP takes k, not lam")
            larr = np.array(np.broadcast_to(np.asarray(lam, dtype=np.float64), (rows,)))
            keep.append(larr)
            batch.lambda_ = larr.ctypes.data
        if allowed is not None:
            words, bits = _allowed_words(allowed, rows, n, allowed_row_bits)
            keep.append(words)
            batch.allowed, batch.allowed_row_bits = words.ctypes.data, bits
        elif allowed_row_bits is not None:
            raise ValueError("allowed_row_bits without allowed")
        nwords = (n + 63) // 64
        support = np.zeros((rows, nwords), np.uint64)
        stats = np.zeros(rows, row_stats_dtype())
        batch.support, batch.support_row_bits = support.ctypes.data, 64 * nwords
        batch.stats, batch.stats_size = stats.ctypes.data, stats.dtype.itemsize
        batch.warm_start = 1 if warm_start else 0
        st = lib.csp_solver_solve(h, sh, row_block, event, ctypes.byref(batch))
        ctx = self.ctx
        if st < 0 and sensing.ctx is not ctx and ctx.last_status != st:
            ctx = sensing.ctx  # the sensing's Gram could not be prepared
        status = check(st, ctx)
        bits = np.unpackbits(support.astype("<u8", copy=False).view(np.uint8), axis=1,
                             bitorder="little")[:, :n].astype(bool)
        return SolveResult(x=out, support=bits.reshape(shape), stats=stats,
                           status=Status(status))

    def __repr__(self):
        if self.closed:
            return "<csp.Solver closed>"
        return "<csp.Solver %s>" % self.method.name.lower()

