"""The pruner: weight tensors, companions, masks, csp_step()."""

import ctypes
import dataclasses
from typing import Optional

from . import _lib
from . import _io
from ._core import (Context, DType, ExportFormat, Granularity, Tensor, _Handle, _numpy, check,
                    describe_buffer, expect, to_enum)
from ._schedule import Schedule
from ._lib import lib

#: Format tag and version of Pruner.state() dictionaries.
STATE_FORMAT = "csp.Pruner"
STATE_VERSION = 1


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


def _nm(nm, what):
    if nm is None:
        return 0, 0
    try:
        n, m = nm
    except (TypeError, ValueError):
        raise TypeError("%s must be a pair (N, M), e.g. (2, 4), not %r" % (what, nm)) from None
    return int(n), int(m)


class Pruner(_Handle):
    """Binds weight tensors (and their optimizer-state companions) to a
    schedule and prunes them in place by magnitude (GMP) through step().

    @param ctx          The Context.
    @param schedule     A Schedule; copied by the library (a callback stays
                        alive with the pruner).
    @param granularity  Default Granularity of added tensors (an enum member,
                        its name such as "row", or its value).
    @param nm           Default (N, M) of N:M sparsity.

    Tensors given as numpy arrays or torch tensors are wrapped in a Tensor
    owned (and closed) by the pruner; Tensor objects given by the caller are
    borrowed, and closing one closes the pruner. The pruner keeps every
    buffer it prunes alive.
    """
    _free = lib.csp_pruner_free

    def __init__(self, ctx, schedule, *, granularity=Granularity.TENSOR, nm=(2, 4)):
        super().__init__()
        self.ctx = expect(ctx, Context, "ctx")
        expect(schedule, Schedule, "schedule")
        self._owned = []        # Tensors this pruner created and closes
        opts = _lib.init_struct(_lib.PrunerOptions)
        self.granularity = to_enum(Granularity, granularity, "granularity")
        opts.granularity = int(self.granularity)
        opts.nm_n, opts.nm_m = _nm(nm, "nm")
        self._callback = schedule._callback  # C copied the schedule, and its thunk pointer
        self._tensors = []      # Tensor per index (weights)
        self._companions = {}   # index -> [Tensor]
        self._excluded = []
        handle = ctypes.c_void_p()
        check(lib.csp_pruner_create(ctypes.byref(handle), ctx._live(), schedule._live(),
                                    ctypes.byref(opts)), ctx)
        self._handle = handle
        self._depend_on(ctx)

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
            t.close()

    def add_tensor(self, weight, name=None, *, granularity=None, group=0, nm=None,
                   exclude=False, final_sparsity=None):
        """Add a weight tensor (before the first step()); returns its index.

        @param weight          A Tensor, or a numpy array / torch tensor viewed
                               in place (C-contiguous float32/float64, CPU).
        @param name            Name of the view (ignored for a Tensor).
        @param granularity     This tensor's Granularity; None for the pruner's.
        @param group           Global group id (GLOBAL granularity).
        @param nm              (N, M) for N:M; None for the pruner's.
        @param exclude         Never pruned nor masked (its mask reads all ones).
        @param final_sparsity  Own final sparsity in [0, 1): the schedule's
                               targets scaled by final_sparsity / s_f.
        """
        self._live()
        opts = _lib.init_struct(_lib.PrunerTensorOptions)
        opts.granularity = 0 if granularity is None else int(
            to_enum(Granularity, granularity, "granularity"))
        opts.group = group
        opts.nm_n, opts.nm_m = _nm(nm, "nm")
        opts.exclude = 1 if exclude else 0
        opts.final_sparsity = -1.0 if final_sparsity is None else final_sparsity
        t = self._as_tensor(weight, name)
        index = ctypes.c_int32(-1)
        try:
            check(lib.csp_pruner_add_tensor(self._handle, t._live(), ctypes.byref(opts),
                                            ctypes.byref(index)), self.ctx)
        except Exception:
            self._release(t)
            raise
        self._tensors.append(t)
        self._excluded.append(bool(exclude))
        return index.value

    def add_companion(self, index, companion, name=None):
        """Register an optimizer-state buffer of tensor ``index`` (same shape,
        either dtype; SGD momentum, Adam's exp_avg and exp_avg_sq): step()
        zeroes it wherever the weight's mask is 0. Allowed at any time; the
        masks reach it from the next step(). Returns its Tensor."""
        self._live()
        t = self._as_tensor(companion, name)
        try:
            check(lib.csp_pruner_add_companion(self._handle, index, t._live()), self.ctx)
        except Exception:
            self._release(t)
            raise
        self._companions.setdefault(index, []).append(t)
        return t

    def _closed(self):
        owned, self._owned = self._owned, []
        for t in owned:
            t.close()

    # --- stepping ---------------------------------------------------------------

    def step(self, step):
        """Call after every optimizer update: prunes at pruning events, else
        re-applies the masks to the weights and their companions. Returns
        Status.PRUNED or Status.MASKED; raises CspError otherwise (every
        buffer and mask is then left untouched)."""
        return check(lib.csp_step(self._live(), step), self.ctx, self._callback)

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
        index = int(index)
        if not 0 <= index < len(self._tensors):
            raise IndexError("tensor index %d out of range (0..%d)"
                             % (index, len(self._tensors) - 1))
        return index

    def mask(self, index):
        """Tensor ``index``'s mask as a numpy bool array of the weight's shape
        (True = kept). An excluded tensor reads all True."""
        np = _numpy()
        h = self._live()
        t = self.tensor(index)
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
        t = self.tensor(index)
        out = np.empty((t.numel + 63) // 64, np.uint64)
        check(lib.csp_pruner_mask_words(h, index,
                                        out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)),
                                        out.size), self.ctx)
        return out

    def nnz(self, index=None):
        """Kept weights of tensor ``index``, or of all tensors (None; excluded
        tensors count whole)."""
        out = ctypes.c_int64()
        check(lib.csp_pruner_nnz(self._live(), -1 if index is None else index,
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
        st = _lib.init_struct(_lib.TensorStats)
        check(lib.csp_pruner_tensor_stats(self._live(), index, ctypes.byref(st)), self.ctx)
        return TensorStats(index=index, name=self.tensor(index).name, numel=st.numel,
                           nnz=st.nnz, target_sparsity=st.target_sparsity,
                           achieved_sparsity=st.achieved_sparsity,
                           granularity=Granularity(st.granularity),
                           excluded=bool(st.excluded),
                           last_event=None if st.last_event < 0 else st.last_event)

    # --- state --------------------------------------------------------------------

    def state(self):
        """The pruner's resumable state: the last step and every mask, as a
        dict of plain Python values and numpy uint64 word arrays.

        (Kept on the Python side until the library has a checkpoint API; then
        this becomes its buffer. The format is tagged and versioned.)"""
        last = self.last_step
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "last_step": -1 if last is None else last,
            "numels": [self.tensor(i).numel for i in range(len(self))],
            "excluded": list(self._excluded),
            "masks": [self.mask_words(i) for i in range(len(self))],
            "digest": self.digest(),
        }

    def load_state(self, state):
        """Restore state() into this pruner, which must have the same tensors
        (same order, sizes, exclusions, options) and must not have stepped.

        Until the library has a checkpoint API, the masks are re-derived: every
        weight view is pointed for one call at a 0/1 copy of its saved mask and
        the pruner steps once to the saved last step, which makes exactly the
        saved masks (the saved zeros are the smallest values and, for the
        built-in schedules, exactly the budget of the last event); the views
        then point back at the weights, the masks are applied to them and their
        companions, and the result is checked bit for bit against the saved
        masks. A callback schedule whose targets went down cannot be restored
        this way: ValueError, and this pruner must be discarded.
        """
        np = _numpy()
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ValueError("not a %s state of version %d" % (STATE_FORMAT, STATE_VERSION))
        if self.last_step is not None:
            raise ValueError("load_state needs a pruner that has not stepped yet")
        n = len(self)
        numels = [self.tensor(i).numel for i in range(n)]
        if list(state["numels"]) != numels or list(state["excluded"]) != self._excluded:
            raise ValueError("the state is of other tensors: numels %s excluded %s, this "
                             "pruner has %s and %s" % (list(state["numels"]),
                                                       list(state["excluded"]), numels,
                                                       self._excluded))
        masks = [np.asarray(m).view(np.uint64) for m in state["masks"]]
        last = int(state["last_step"])
        if last < 0:
            return
        scratch = []
        try:
            for i, t in enumerate(self._tensors):
                if self._excluded[i]:
                    continue
                bits = np.unpackbits(masks[i].astype("<u8").view(np.uint8),
                                     bitorder="little")[:t.numel]
                s = bits.astype(np.float32 if t.dtype == DType.F32 else np.float64)
                scratch.append(s)
                check(lib.csp_tensor_set_data(t._live(), s.ctypes.data), self.ctx)
            self.step(last)
        finally:
            for t in self._tensors:
                lib.csp_tensor_set_data(t._live(), describe_buffer(t.buffer)[0])
        self.step(last)  # same step: re-apply the masks to the real buffers
        for i in range(n):
            if not np.array_equal(self.mask_words(i), masks[i]):
                raise ValueError(
                    "tensor %d (%s): the replayed mask differs from the saved one (a callback "
                    "schedule whose targets decreased?); exact restore needs the library's "
                    "checkpoint API" % (i, self.tensor(i).name))
        if self.digest() != int(state["digest"]):
            raise ValueError("the restored masks' digest differs from the saved one")

    # --- checkpoints and compressed export (include/csp/io.h) ------------------------

    def save(self):
        """The library's checkpoint of this pruner (bytes, docs/formats.md):
        masks, schedule position, per-tensor targets and events. Weights and
        optimizer state are not in it: save them with the host's tools."""
        return _io.save(self)

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

