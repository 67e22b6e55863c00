"""Exports (docs/formats.md) to and from scipy and torch sparse matrices.

An export is first checked by the library (``export_info``: magic, CRC,
fields, size); its arrays are then read in place with numpy."""

from ._core import ExportFormat, _numpy
from ._io import export_info

_HEADER = 80


def _arrays(data):
    """(info, crow, col, values) of an export, CSR-shaped, int64 indices."""
    np = _numpy()
    info = export_info(data)
    buf = memoryview(data).cast("B")
    vt = np.dtype("<f4") if int(info.value_dtype) == 1 else np.dtype("<f8")
    rows, cols = info.rows, info.cols
    pad8 = lambda n: (n + 7) // 8 * 8  # noqa: E731
    off = _HEADER
    if info.format == ExportFormat.CSR:
        pt = np.dtype("<u4") if info.pointer_bytes == 4 else np.dtype("<u8")
        it = {2: np.dtype("<u2"), 4: np.dtype("<i4"), 8: np.dtype("<i8")}[info.index_bytes]
        crow = np.frombuffer(buf, pt, rows + 1, off).astype(np.int64)
        off += pad8((rows + 1) * pt.itemsize)
        col = np.frombuffer(buf, it, info.nnz, off).astype(np.int64)
        off += pad8(info.nnz * it.itemsize)
        values = np.frombuffer(buf, vt, info.nnz, off).copy()
        return info, crow, col, values
    if info.format == ExportFormat.BITMAP:
        numel = rows * cols
        bits = np.unpackbits(np.frombuffer(buf, np.uint8, (numel + 7) // 8, off),
                             bitorder="little")[:numel].astype(bool)
        off += pad8((numel + 7) // 8)
        values = np.frombuffer(buf, vt, info.nnz, off).copy()
        keep = bits.reshape(rows, cols)
        crow = np.concatenate(([0], np.cumsum(keep.sum(axis=1)))).astype(np.int64)
        col = np.nonzero(keep)[1].astype(np.int64)
        return info, crow, col, values
    # N:M: N slots per group of M; padding slots hold 0 and are left out
    # (a kept weight of value 0 cannot be told from one, docs/formats.md).
    n, m = info.nm
    slots = rows * cols // m * n
    values = np.frombuffer(buf, vt, slots, off).copy()
    off += pad8(slots * vt.itemsize)
    b = info.index_bytes
    nbytes = (slots * b + 7) // 8
    stream = np.unpackbits(np.frombuffer(buf, np.uint8, nbytes, off), bitorder="little")
    pos = stream[:slots * b].reshape(slots, b).astype(np.int64) @ (1 << np.arange(b))
    group = np.arange(slots) // n                      # group index, row-major
    col_all = (group % (cols // m)) * m + pos
    row_all = group // (cols // m)
    keep = values != 0
    values, col, row = values[keep], col_all[keep], row_all[keep]
    crow = np.concatenate(([0], np.cumsum(np.bincount(row, minlength=rows)))).astype(np.int64)
    return info, crow, col.astype(np.int64), values


def export_to_scipy(data):
    """An export (any format) as a ``scipy.sparse.csr_matrix`` of its matrix
    view (rows x cols), its kept weights as the stored entries: in CSR and
    bitmap exports every kept weight (also one of value 0), in N:M exports
    the slots of nonzero value. Values keep the export's dtype."""
    import scipy.sparse
    info, crow, col, values = _arrays(data)
    return scipy.sparse.csr_matrix((values, col, crow), shape=(info.rows, info.cols))


def export_to_torch(data):
    """An export (any format) as a ``torch.sparse_csr_tensor`` of its matrix
    view (rows x cols), int64 indices; the entries of ``export_to_scipy``."""
    import torch
    info, crow, col, values = _arrays(data)
    return torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(col),
                                   torch.from_numpy(values), size=(info.rows, info.cols))


def from_sparse(matrix, shape=None, dtype=None):
    """A scipy sparse matrix (any format) or a torch sparse tensor (CSR or
    COO), 2-D, back to ``(weights, mask)``: a dense C-contiguous numpy array
    with the stored entries at their places and 0 elsewhere (the buffer a
    ``Pruner.add_tensor`` takes), and a bool array, True where an entry is
    stored (the mask; duplicates are summed). ``shape`` reshapes both (the
    tensor's shape, whose product of the trailing dimensions is cols);
    ``dtype`` defaults to float32."""
    np = _numpy()
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if hasattr(matrix, "tocsr"):  # scipy.sparse
        m = matrix.tocsr()
        m.sum_duplicates()
        rows, cols = m.shape
        crow, col, values = m.indptr, m.indices, m.data
    else:
        import torch
        if not isinstance(matrix, torch.Tensor) or matrix.layout not in (torch.sparse_csr,
                                                                          torch.sparse_coo):
            raise TypeError("from_sparse: a scipy sparse matrix or a torch sparse tensor "
                            "(sparse_csr or sparse_coo) is needed, got %r" % type(matrix))
        if matrix.dim() != 2:
            raise ValueError("from_sparse: a 2-D matrix is needed, got %d dimensions"
                             % matrix.dim())
        t = matrix.detach().cpu()
        if t.layout == torch.sparse_coo:
            t = t.coalesce().to_sparse_csr()
        rows, cols = t.shape
        crow = t.crow_indices().numpy()
        col = t.col_indices().numpy()
        values = t.values().numpy()
    r = np.repeat(np.arange(rows), np.diff(np.asarray(crow, dtype=np.int64)))
    weights = np.zeros((rows, cols), dt)
    mask = np.zeros((rows, cols), bool)
    weights[r, col] = values
    mask[r, col] = True
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != rows * cols or (len(shape) > 1 and shape[0] != rows):
            raise ValueError("from_sparse: shape %r does not match the %d x %d matrix"
                             % (shape, rows, cols))
        weights, mask = weights.reshape(shape), mask.reshape(shape)
    return weights, mask
