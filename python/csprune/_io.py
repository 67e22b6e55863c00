"""Checkpoints and compressed exports (include/csp/io.h, docs/formats.md)."""

import ctypes
import dataclasses
from typing import Optional, Tuple

from . import _lib
from ._core import (CspError, DType, ExportFormat, Status, _numpy, c_int, c_int_pair, c_str,
                    check, to_enum)
from ._lib import lib


@dataclasses.dataclass(frozen=True)
class ExportStats:
    """Bytes of an export against dense storage (``csp_export_stats``)."""
    numel: int
    nnz: int
    bytes: int         #: the export, header included
    dense_bytes: int   #: numel * sizeof(the tensor's dtype)
    header_bytes: int
    index_bytes: int   #: row pointers + column indices, bitmap, or N:M indices
    value_bytes: int
    ratio: float       #: bytes / dense_bytes


@dataclasses.dataclass(frozen=True)
class ExportInfo:
    """What an export holds, from its header (``csp_export_info``)."""
    format: ExportFormat
    value_dtype: DType
    shape: Tuple[int, ...]
    rows: int
    cols: int
    nnz: int
    nm: Optional[Tuple[int, int]]  #: (N, M) of an N:M export
    index_bytes: int               #: CSR bytes per column index; N:M bits per index
    pointer_bytes: int             #: CSR bytes per row pointer
    version: int
    bytes: int


def _options(format, value_dtype, nm, fn):
    o = _lib.init_struct(_lib.ExportOptions)
    o.format = int(to_enum(ExportFormat, format, "format"))
    o.value_dtype = 0 if value_dtype is None else int(to_enum(DType, value_dtype, "value_dtype"))
    if nm is not None:
        o.nm_n, o.nm_m = c_int_pair(nm, "nm", fn)
    return o


def _bytes_view(data):
    """(pointer, size, keep-alive) of a bytes-like object, without a copy
    for bytes, bytearray and contiguous numpy uint8 arrays."""
    if isinstance(data, bytes):
        return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p), len(data), data
    mv = memoryview(data).cast("B")
    buf = (ctypes.c_char * len(mv)).from_buffer_copy(mv) if mv.readonly else \
        (ctypes.c_char * len(mv)).from_buffer(mv)
    return ctypes.cast(buf, ctypes.c_void_p), len(mv), buf


def save(pruner):
    h = pruner._live()
    size = ctypes.c_int64()
    check(lib.csp_pruner_save(h, None, 0, ctypes.byref(size)), pruner.ctx)
    buf = ctypes.create_string_buffer(size.value)
    check(lib.csp_pruner_save(h, buf, size.value, ctypes.byref(size)), pruner.ctx)
    return buf.raw[:size.value]


def load(pruner, data):
    ptr, n, keep = _bytes_view(data)
    check(lib.csp_pruner_load(pruner._live(), ptr, n), pruner.ctx)
    del keep


def save_file(pruner, path):
    path = c_str(path, "path", "Pruner.save_file", path=True)
    check(lib.csp_pruner_save_file(pruner._live(), path), pruner.ctx)


def load_file(pruner, path):
    path = c_str(path, "path", "Pruner.load_file", path=True)
    check(lib.csp_pruner_load_file(pruner._live(), path), pruner.ctx)


def export(pruner, index, format, value_dtype, nm):
    h = pruner._live()
    index = c_int(index, "int32", "index", "Pruner.export")
    o = _options(format, value_dtype, nm, "Pruner.export")
    size = ctypes.c_int64()
    check(lib.csp_pruner_export(h, index, ctypes.byref(o), None, 0, ctypes.byref(size)),
          pruner.ctx)
    buf = ctypes.create_string_buffer(max(size.value, 1))
    check(lib.csp_pruner_export(h, index, ctypes.byref(o), buf, size.value, ctypes.byref(size)),
          pruner.ctx)
    return buf.raw[:size.value]


def export_stats(pruner, index, format, value_dtype, nm):
    index = -1 if index is None else c_int(index, "int32", "index", "Pruner.export_stats")
    o = _options(format, value_dtype, nm, "Pruner.export_stats")
    st = _lib.init_struct(_lib.ExportStats)
    check(lib.csp_pruner_export_stats(pruner._live(), index, ctypes.byref(o),
                                      ctypes.byref(st)), pruner.ctx)
    return ExportStats(numel=st.numel, nnz=st.nnz, bytes=st.bytes, dense_bytes=st.dense_bytes,
                       header_bytes=st.header_bytes, index_bytes=st.index_bytes,
                       value_bytes=st.value_bytes, ratio=st.ratio)


def _raise(status):
    if status < 0:  # no context: the status says it all
        raise CspError(status, Status(status).name if status in Status._value2member_map_ else "")


def export_info(data):
    """Read and check an export's header and CRC; returns an ExportInfo."""
    ptr, n, keep = _bytes_view(data)
    info = _lib.init_struct(_lib.ExportInfo)
    _raise(lib.csp_export_inspect(None, ptr, n, ctypes.byref(info)))
    del keep
    return ExportInfo(format=ExportFormat(info.format), value_dtype=DType(info.value_dtype),
                      shape=tuple(info.shape[:info.rank]), rows=info.rows, cols=info.cols,
                      nnz=info.nnz, nm=(info.nm_n, info.nm_m) if info.nm_m else None,
                      index_bytes=info.index_bytes, pointer_bytes=info.pointer_bytes,
                      version=info.version, bytes=info.bytes)


def export_decode(data, dtype=None):
    """Expand an export (bytes) into a new dense numpy array of the exported
    tensor's shape: the kept weights at their places, 0 elsewhere. ``dtype``
    (DType, "f32"/"f64", or None for the export's value dtype) converts."""
    np = _numpy()
    info = export_info(data)
    dt = info.value_dtype if dtype is None else to_enum(DType, dtype, "dtype")
    out = np.empty(info.shape, np.float32 if dt == DType.F32 else np.float64)
    ptr, n, keep = _bytes_view(data)
    _raise(lib.csp_export_decode(None, ptr, n, out.ctypes.data, int(dt), 0, out.nbytes))
    del keep
    return out
