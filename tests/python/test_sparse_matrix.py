"""csp.SparseMatrix (include/csp/sparse.h): matvec / matmul against a
float64 numpy reference for every layout, from a dense array, an export and
a pruner tensor; thread-count independence; bad input. Random inputs from a
fresh seed (printed; CSP_TEST_SEED replays it)."""

import os

import numpy as np
import pytest

import csprune as csp

SF = csp.SparseFormat


@pytest.fixture
def rng():
    seed = int(os.environ.get("CSP_TEST_SEED", np.random.SeedSequence().entropy % 2**63))
    print("CSP_TEST_SEED=%d" % seed)
    return np.random.default_rng(seed)


def _close(got, want, w, x):
    # float32 sums of |w||x| terms: a few ulps of the absolute sum per row
    tol = 1e-5 * (np.abs(w).astype(np.float64) @ np.abs(x).astype(np.float64).T).T + 1e-30
    assert np.all(np.abs(got.astype(np.float64) - want) <= tol)


def _balanced(rng, rows, cols, keep):
    w = np.zeros((rows, cols), np.float32)
    for r in range(rows):
        w[r, rng.choice(cols, keep, replace=False)] = rng.standard_normal(keep)
    return w


def _nm(rng, rows, cols, n, m):
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    g = w.reshape(rows, cols // m, m)
    order = np.argsort(rng.random(g.shape), axis=2)
    g[np.take_along_axis(np.ones(g.shape, bool), order, 2) & (order >= n)] = 0.0
    return w


@pytest.mark.parametrize("fmt", [SF.CSR, SF.BALANCED, SF.NM, SF.AUTO])
def test_matvec_matmul_reference(ctx, rng, fmt):
    rows, cols = int(rng.integers(1, 70)), 4 * int(rng.integers(1, 40))
    w = _nm(rng, rows, cols, 2, 4) if fmt in (SF.NM, SF.AUTO) else (
        _balanced(rng, rows, cols, int(rng.integers(0, cols + 1))) if fmt == SF.BALANCED
        else rng.standard_normal((rows, cols)).astype(np.float32) * (rng.random((rows, cols)) < .2))
    s = csp.SparseMatrix.from_dense(ctx, w, format=fmt, nm=(2, 4) if fmt == SF.NM else None)
    assert s.shape == (rows, cols) and s.nnz == np.count_nonzero(w)
    if fmt != SF.AUTO:
        assert s.format == fmt
    x = rng.standard_normal(cols).astype(np.float32)
    _close(s.matvec(x), w.astype(np.float64) @ x, w, x[None])
    y0 = rng.standard_normal(rows).astype(np.float32)
    y = y0.copy()
    s.matvec(x, alpha=0.5, beta=-2.0, y=y)
    want = 0.5 * (w.astype(np.float64) @ x) - 2.0 * y0
    assert np.allclose(y, want, rtol=1e-5, atol=1e-5 * (np.abs(w) @ np.abs(x) + 1))
    for b in (1, 3, 32):
        xb = rng.standard_normal((b, cols)).astype(np.float32)
        yb = s.matmul(xb)
        assert yb.shape == (b, rows)
        _close(yb, xb.astype(np.float64) @ w.T.astype(np.float64), w, xb)
        # each vector of a batch is bit-identical to its own matvec
        np.testing.assert_array_equal(yb[b - 1], s.matvec(xb[b - 1]))


def test_threads_and_kernels_agree(rng):
    w = _balanced(rng, 3000, 256, 26)
    x = rng.standard_normal((5, 256)).astype(np.float32)
    outs = []
    for threads in (1, 2, 7):
        with csp.Context(seed=1, num_threads=threads) as c:
            outs.append(csp.SparseMatrix.from_dense(c, w).matmul(x))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    with csp.Context() as c:
        p = csp.SparseMatrix.from_dense(c, w, kernel=csp.SparseKernel.PORTABLE)
        assert p.kernel == csp.SparseKernel.PORTABLE
        _close(p.matmul(x), x.astype(np.float64) @ w.T.astype(np.float64), w, x)


def test_from_export_and_pruner(ctx, rng):
    sched = csp.Schedule.constant(ctx, 0.75, end_step=-1)
    pr = csp.Pruner(ctx, sched, granularity="row")
    a = rng.standard_normal((16, 24)).astype(np.float32)
    pr.add_tensor(a, "fc")
    pr.add_tensor(rng.standard_normal((8, 16)).astype(np.float32), "nm", granularity="nm",
                  nm=(2, 4))
    pr.step(0)
    x = rng.standard_normal(24).astype(np.float32)
    w = (a * pr.mask(0).reshape(a.shape)).astype(np.float32)
    for s in (csp.SparseMatrix.from_pruner(pr, 0),
              csp.SparseMatrix.from_export(ctx, pr.export(0, csp.ExportFormat.CSR)),
              csp.SparseMatrix.from_export(ctx, pr.export(0, csp.ExportFormat.BITMAP))):
        assert s.format == SF.BALANCED      # row granularity: equal counts per row
        _close(s.matvec(x), w.astype(np.float64) @ x, w, x[None])
    s = csp.SparseMatrix.from_export(ctx, pr.export(1, csp.ExportFormat.NM))
    assert s.format == SF.NM
    assert repr(s).startswith("<csp.SparseMatrix 8x16 nnz=%d nm " % s.nnz)


def test_bad_input(ctx, rng):
    w = rng.standard_normal((4, 8)).astype(np.float32)
    s = csp.SparseMatrix.from_dense(ctx, w)
    with pytest.raises(ValueError):
        s.matvec(np.zeros(7, np.float32))
    with pytest.raises(ValueError):
        s.matmul(np.zeros((2, 9), np.float32))
    with pytest.raises(ValueError):
        s.matvec(np.zeros(8, np.float32), y=np.zeros(4, np.float64))
    with pytest.raises(ValueError):
        csp.SparseMatrix.from_dense(ctx, np.zeros(8, np.float32))
    with pytest.raises(csp.CspError):       # 2:4 refused: a row of 8 nonzeros
        csp.SparseMatrix.from_dense(ctx, w, format=SF.NM, nm=(2, 4))
    with pytest.raises(csp.CspError):
        csp.SparseMatrix.from_export(ctx, b"not an export")
    s.close()
    with pytest.raises(ValueError):
        s.matvec(np.zeros(8, np.float32))
