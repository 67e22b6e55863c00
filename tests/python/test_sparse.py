"""Exports to scipy.sparse.csr_matrix and torch.sparse_csr_tensor and back
(csprune.export_to_scipy, export_to_torch, from_sparse): entries against the
pruner's mask and csp.export_decode (the library's own reader), every format
and value dtype, random inputs from a fresh seed (printed; CSP_TEST_SEED
replays it)."""

import os

import numpy as np
import pytest

import csprune as csp

scipy_sparse = pytest.importorskip("scipy.sparse")

F = csp.ExportFormat


@pytest.fixture
def rng():
    seed = int(os.environ.get("CSP_TEST_SEED", np.random.SeedSequence().entropy % 2**63))
    print("CSP_TEST_SEED=%d" % seed)
    return np.random.default_rng(seed)


def _pruned(ctx, rng):
    """A pruner with a row-pruned 2-D tensor, a 2:4 tensor, a tensor-pruned
    rank-3 tensor (conv-like) and a rank-1 one, pruned once to 0.75."""
    sched = csp.Schedule.constant(ctx, 0.75, end_step=-1)
    p = csp.Pruner(ctx, sched, granularity="row")
    arrays = [rng.standard_normal((9, 20)).astype(np.float32),
              rng.standard_normal((6, 16)),
              rng.standard_normal((4, 3, 5)).astype(np.float32),
              rng.standard_normal(37).astype(np.float32)]
    arrays[0][2] = 0.0                      # a row of zeros: kept zeros in the export
    p.add_tensor(arrays[0], "fc")
    p.add_tensor(arrays[1], "nm", granularity="nm", nm=(2, 4))
    p.add_tensor(arrays[2], "conv", granularity="tensor")
    p.add_tensor(arrays[3], "vec", granularity="tensor")
    p.step(0)
    return p, arrays


CASES = [(0, F.CSR), (0, F.BITMAP), (1, F.CSR), (1, F.BITMAP), (1, F.NM), (2, F.CSR),
         (2, F.BITMAP), (3, F.CSR), (3, F.BITMAP)]


@pytest.mark.parametrize("value_dtype", [None, "f32", "f64"])
@pytest.mark.parametrize("index,fmt", CASES)
def test_to_scipy_and_torch(ctx, rng, index, fmt, value_dtype):
    p, arrays = _pruned(ctx, rng)
    blob = p.export(index, fmt, value_dtype=value_dtype)
    info = csp.export_info(blob)
    dense = csp.export_decode(blob)
    mask = p.mask(index).reshape(info.rows, info.cols)
    m = csp.export_to_scipy(blob)
    assert isinstance(m, scipy_sparse.csr_matrix)
    assert m.shape == (info.rows, info.cols) and m.dtype == dense.dtype
    np.testing.assert_array_equal(m.toarray(), dense.reshape(info.rows, info.cols))
    stored = np.zeros((info.rows, info.cols), bool)
    stored[np.repeat(np.arange(info.rows), np.diff(m.indptr)), m.indices] = True
    if fmt == F.NM:   # padding slots and kept zeros look alike: nonzero slots only
        np.testing.assert_array_equal(stored, mask & (dense.reshape(mask.shape) != 0))
    else:             # every kept weight, the kept zeros of the zero row included
        np.testing.assert_array_equal(stored, mask)
        assert m.nnz == info.nnz == p.nnz(index)
    assert m.has_sorted_indices

    torch = pytest.importorskip("torch")
    t = csp.export_to_torch(blob)
    assert t.layout == torch.sparse_csr and tuple(t.shape) == (info.rows, info.cols)
    np.testing.assert_array_equal(t.crow_indices().numpy(), m.indptr)
    np.testing.assert_array_equal(t.col_indices().numpy(), m.indices)
    np.testing.assert_array_equal(t.to_dense().numpy(), m.toarray())


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_back_to_weights_and_mask(ctx, rng, index):
    p, arrays = _pruned(ctx, rng)
    blob = p.export(index)
    dense = csp.export_decode(blob)
    for m in (csp.export_to_scipy(blob), csp.export_to_scipy(blob).tocoo(),
              csp.export_to_scipy(blob).tocsc()):
        w, k = csp.from_sparse(m, shape=arrays[index].shape, dtype=dense.dtype)
        assert w.shape == k.shape == arrays[index].shape and w.flags.c_contiguous
        np.testing.assert_array_equal(w, dense)
        np.testing.assert_array_equal(k, p.mask(index))
    torch = pytest.importorskip("torch")
    t = csp.export_to_torch(blob)
    for tm in (t, t.to_dense().to_sparse()):          # CSR, and COO (no kept zeros)
        w, k = csp.from_sparse(tm, shape=arrays[index].shape, dtype=dense.dtype)
        np.testing.assert_array_equal(w, dense)
        if tm.layout == torch.sparse_csr:
            np.testing.assert_array_equal(k, p.mask(index))
        else:
            np.testing.assert_array_equal(k, dense != 0)
    # The weights load into a new pruner as its tensor's buffer.
    sched = csp.Schedule.constant(ctx, 0.0)
    q = csp.Pruner(ctx, sched)
    w, _ = csp.from_sparse(csp.export_to_scipy(blob), shape=arrays[index].shape)
    q.add_tensor(w, "back")
    assert q.tensor(0).shape == arrays[index].shape


def test_from_random_scipy_and_torch(rng):
    rows, cols = int(rng.integers(1, 40)), int(rng.integers(1, 70))
    m = scipy_sparse.random(rows, cols, density=0.3, format="coo", dtype=np.float64,
                            random_state=np.random.RandomState(int(rng.integers(2**31))))
    # A duplicate entry: summed, as scipy does.
    if m.nnz:
        m = scipy_sparse.coo_matrix((np.append(m.data, 1.25), (np.append(m.row, m.row[0]),
                                     np.append(m.col, m.col[0]))), shape=m.shape)
    ref = m.toarray()
    w, k = csp.from_sparse(m, dtype=np.float64)
    np.testing.assert_array_equal(w, ref)
    np.testing.assert_array_equal(k, ref != 0)
    w32, _ = csp.from_sparse(m)
    assert w32.dtype == np.float32
    np.testing.assert_array_equal(w32, ref.astype(np.float32))
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(ref).to_sparse_csr()
    w, k = csp.from_sparse(t, dtype=np.float64)
    np.testing.assert_array_equal(w, ref)
    np.testing.assert_array_equal(k, ref != 0)


def test_errors(ctx, rng):
    with pytest.raises(TypeError):
        csp.from_sparse(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        csp.from_sparse(scipy_sparse.eye(4, format="csr"), shape=(3, 5))
    with pytest.raises(ValueError):
        csp.from_sparse(scipy_sparse.eye(4, format="csr"), shape=(2, 8))
    p, _ = _pruned(ctx, rng)
    blob = bytearray(p.export(0))
    blob[-1] ^= 0x40                        # the CRC catches it before any array is read
    with pytest.raises(csp.CspError) as e:
        csp.export_to_scipy(bytes(blob))
    assert e.value.status == csp.Status.E_CORRUPT
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        csp.from_sparse(torch.zeros((2, 2, 2)).to_sparse())
    with pytest.raises(TypeError):
        csp.from_sparse(torch.zeros((2, 2)))
