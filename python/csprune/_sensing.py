"""Sensing operators: where the Gram matrix G of every solver comes from."""

import ctypes

from . import _lib
from ._core import (Context, SensingKind, _Handle, _numpy, c_int, check, expect, modifies,
                    row_view, to_enum)
from ._lib import lib


def _out_matrix(out, rows, cols, what):
    """A float64 rows x cols output: a new array, or @p out viewed in place
    (C-contiguous or row-strided, writable). Returns (array, ptr, ld)."""
    np = _numpy()
    if out is None:
        out = np.empty((rows, cols), np.float64)
    ptr, r, c, ld = row_view(out, "float64", what, writable=True)
    if len(out.shape) != 2 or (r, c) != (rows, cols):
        raise ValueError("%s must have shape (%d, %d), not %s"
                         % (what, rows, cols, tuple(out.shape)))
    return out, ptr, ld


class Sensing(_Handle):
    """A sensing operator: produces the n x n Gram G that solvers compare a
    row w and its sparse approximation x through, ``(w - x)^T G (w - x)``
    (docs/guide.md, "Sensing operators").

    Use the constructors :meth:`identity`, :meth:`gaussian`,
    :meth:`rademacher`, :meth:`activations` and :meth:`from_gram`, or pass
    the kind and every field of ``csp_sensing_options`` as keywords.

    @param ctx        The Context; its seed keys the random kinds.
    @param kind       A SensingKind, its name or its value.
    @param n          Row length (G is n x n), 1..SENSING_MAX_N.
    @param m          Random kinds: rows of Phi; 0 means ceil(rho * n).
    @param rho        Random kinds: m / n when m is 0.
    @param damping    Activations: eps = damping * mean(diag(S / N)).
    @param tensor_id  Random kinds: key coordinate naming the tensor.

    Keyword arguments left as None take the library's defaults.
    """
    _free = lib.csp_sensing_free
    _copy_hint = ("create another with the same arguments; read_accumulator() and "
                  "write_accumulator() (or merge()) carry an activations operator's "
                  "observations over")
    #: False for operators made here; True for views of a pruner's own
    #: operators (Pruner.sensing()).
    borrowed = False

    def __init__(self, ctx, kind=SensingKind.IDENTITY, n=None, *, m=None, rho=None,
                 damping=None, tensor_id=None):
        super().__init__()
        self.ctx = expect(ctx, Context, "ctx")
        if n is None:
            raise TypeError("Sensing needs the row length n")
        opts = _lib.init_struct(_lib.SensingOptions)
        opts.kind = int(to_enum(SensingKind, kind, "sensing kind"))
        opts.n = c_int(n, "int64", "n", "Sensing")
        if m is not None:
            opts.m = c_int(m, "int64", "m", "Sensing")
        if tensor_id is not None:
            opts.tensor_id = c_int(tensor_id, "uint64", "tensor_id", "Sensing")
        for field, value in (("rho", rho), ("damping", damping)):
            if value is not None:
                setattr(opts, field, value)
        handle = ctypes.c_void_p()
        check(lib.csp_sensing_create(ctypes.byref(handle), ctx._live(), ctypes.byref(opts)),
              ctx)
        self._handle = handle
        self._depend_on(ctx)

    # --- constructors -------------------------------------------------------------

    @classmethod
    def identity(cls, ctx, n):
        """G = I: the solvers reduce to exact magnitude selection."""
        return cls(ctx, SensingKind.IDENTITY, n)

    @classmethod
    def gaussian(cls, ctx, n, *, m=None, rho=None, tensor_id=None):
        """G = Phi^T Phi with Phi m x n of N(0, 1/m) entries, keyed by (ctx
        seed, tensor_id, row_block, event)."""
        return cls(ctx, SensingKind.GAUSSIAN, n, m=m, rho=rho, tensor_id=tensor_id)

    @classmethod
    def rademacher(cls, ctx, n, *, m=None, rho=None, tensor_id=None):
        """G = Phi^T Phi with Phi m x n of +-1/sqrt(m) entries (diag(G) = 1)."""
        return cls(ctx, SensingKind.RADEMACHER, n, m=m, rho=rho, tensor_id=tensor_id)

    @classmethod
    def activations(cls, ctx, n, *, damping=None):
        """G = S / N + eps I from the layer inputs given to :meth:`observe`."""
        return cls(ctx, SensingKind.ACTIVATIONS, n, damping=damping)

    @classmethod
    def from_gram(cls, ctx, G):
        """A user Gram (kind GRAM): G, n x n float64, is validated and copied
        (:meth:`set_gram`)."""
        shape = tuple(getattr(G, "shape", ()))
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError("G must be a square matrix, not of shape %s" % (shape,))
        s = cls(ctx, SensingKind.GRAM, shape[0])
        try:
            s.set_gram(G)
        except BaseException:
            s.close()
            raise
        return s

    # --- properties ---------------------------------------------------------------

    @property
    def kind(self):
        return SensingKind(lib.csp_sensing_kind(self._live()))

    @property
    def n(self):
        """Row length: G is n x n."""
        return lib.csp_sensing_n(self._live())

    @property
    def m(self):
        """Rows of Phi for the random kinds, n for the others."""
        return lib.csp_sensing_m(self._live())

    @property
    def count(self):
        """Rows observed so far (N) by an activations operator; 0 otherwise."""
        return lib.csp_sensing_count(self._live())

    @property
    def accumulator_len(self):
        """n * n + 1 for an activations operator; 0 otherwise."""
        return lib.csp_sensing_accumulator_len(self._live())

    # --- G and Phi ----------------------------------------------------------------

    @modifies
    def gram(self, row_block=0, event=0, *, out=None):
        """The Gram matrix G as an (n, n) float64 numpy array. Random kinds
        draw Phi keyed by (ctx seed, tensor_id, row_block, event): the same
        key gives the same G bit for bit. ``out`` (float64, (n, n),
        C-contiguous or row-strided) is written in place and returned. It
        uses the operator's scratch memory (a non-const C call): refused
        inside callbacks like the methods that change the operator."""
        row_block = c_int(row_block, "int64", "row_block", "Sensing.gram")
        event = c_int(event, "int64", "event", "Sensing.gram")
        h = self._live()
        n = self.n
        out, ptr, ld = _out_matrix(out, n, n, "out")
        check(lib.csp_sensing_gram(h, row_block, event, ptr, ld), self.ctx)
        return out

    def phi(self, row_block=0, event=0, *, out=None):
        """The random measurement matrix Phi (m x n float64) of a GAUSSIAN or
        RADEMACHER operator, keyed like :meth:`gram` (G = Phi^T Phi)."""
        row_block = c_int(row_block, "int64", "row_block", "Sensing.phi")
        event = c_int(event, "int64", "event", "Sensing.phi")
        h = self._live()
        out, ptr, ld = _out_matrix(out, self.m, self.n, "out")
        check(lib.csp_sensing_phi(h, row_block, event, ptr, ld), self.ctx)
        return out

    @modifies
    def set_gram(self, G):
        """Set the Gram of a GRAM operator (copied): an (n, n) float64 array,
        C-contiguous or row-strided; it must be finite, symmetric, with a
        non-negative diagonal and positive semi-definite (CspError
        E_INVALID / E_NONFINITE otherwise, nothing changed)."""
        h = self._live()
        ptr, r, c, ld = row_view(G, "float64", "G")
        n = self.n
        if len(G.shape) != 2 or (r, c) != (n, n):
            raise ValueError("G must have shape (%d, %d), not %s" % (n, n, tuple(G.shape)))
        check(lib.csp_sensing_set_gram(h, ptr, ld), self.ctx)

    # --- activations --------------------------------------------------------------

    @modifies
    def observe(self, x):
        """Accumulate layer inputs: S += x^T x (float64), N += rows. ``x`` is
        a (rows, n) float32 numpy array or CPU torch tensor, one sample per
        row, read in place (C-contiguous or row-strided; never copied or
        converted). Non-finite inputs raise CspError (E_NONFINITE) and leave
        the operator unchanged."""
        h = self._live()
        ptr, rows, cols, stride = row_view(x, "float32", "x")
        if len(x.shape) != 2:
            raise ValueError("x must be 2-D (rows, n), not of shape %s" % (tuple(x.shape),))
        check(lib.csp_sensing_observe(h, ptr if rows else None, rows, cols, stride), self.ctx)

    @modifies
    def reset(self):
        """Forget every observed row (S = 0, N = 0)."""
        check(lib.csp_sensing_reset(self._live()), self.ctx)

    @modifies
    def merge(self, other):
        """Add the observations of ``other`` (an activations Sensing of the
        same n) to this one; ``other`` is unchanged."""
        expect(other, Sensing, "other")
        check(lib.csp_sensing_merge(self._live(), other._live()), self.ctx)

    def read_accumulator(self, out=None):
        """The accumulator as a 1-D float64 numpy array of n * n + 1 values:
        S (full symmetric, row-major), then N. A data-parallel host sums it
        across replicas (all-reduce) and hands it to
        :meth:`write_accumulator`; it also checkpoints the operator. ``out``
        (1-D, float64, contiguous) is written in place and returned."""
        np = _numpy()
        h = self._live()
        length = lib.csp_sensing_accumulator_len(h)
        if out is None:
            out = np.empty(max(length, 1), np.float64)
        ptr, _, c, _ = row_view(out, "float64", "out", writable=True)
        if len(out.shape) != 1:
            raise ValueError("out must be 1-D, not of shape %s" % (tuple(out.shape),))
        check(lib.csp_sensing_read_accumulator(h, ptr, c), self.ctx)
        return out

    @modifies
    def write_accumulator(self, buf):
        """Replace the accumulator with ``buf`` (1-D float64, the layout of
        :meth:`read_accumulator`), validated first: finite, S symmetric with
        a non-negative diagonal, N a whole number; on failure CspError and
        nothing changes."""
        h = self._live()
        ptr, _, c, _ = row_view(buf, "float64", "buf")
        if len(buf.shape) != 1:
            raise ValueError("buf must be 1-D, not of shape %s" % (tuple(buf.shape),))
        check(lib.csp_sensing_write_accumulator(h, ptr, c), self.ctx)

    def __repr__(self):
        if self.closed:
            return "<csp.Sensing closed>"
        extra = ""
        if self.kind in (SensingKind.GAUSSIAN, SensingKind.RADEMACHER):
            extra = " m=%d" % self.m
        elif self.kind == SensingKind.ACTIVATIONS:
            extra = " observed=%d" % self.count
        if self.borrowed:
            extra += " borrowed"
        return "<csp.Sensing %s n=%d%s>" % (self.kind.name.lower(), self.n, extra)


def _free_nothing(handle):
    """A borrowed operator is freed by the pruner that owns it."""


class _BorrowedSensing(Sensing):
    """A view of the sensing operator a pruner created and owns for one of
    its tensors (``csp_pruner_sensing()``): every method of Sensing works on
    it, but close() frees nothing, and it depends on the pruner like an
    object made from it. Closing the pruner (or its context) closes the view
    first; the pruner's C handle is not freed while a view is open, so a view
    never points at freed memory. Pruner.set_sensing() on the tensor closes
    the view (the C pointer is only valid until another operator is attached).
    """
    _free = staticmethod(_free_nothing)
    _copy_hint = "it is a borrowed view: ask the pruner again (pruner.sensing(index))"
    borrowed = True

    def __init__(self, pruner, handle):  # pylint: disable=super-init-not-called
        _Handle.__init__(self)
        self.ctx = pruner.ctx
        self._handle = ctypes.c_void_p(handle)
        self._depend_on(pruner)
