"""csp.Solver: OMP against a float64 reference, identity = top-k |w|, ISTA/FISTA
objectives against a numpy reference, calibration, statuses, errors."""

import ctypes
import os

import numpy as np
import pytest

import csprune as csp

E = csp.Status


def raises_status(status):
    return pytest.raises(csp.CspError, match="^CSP_%s: " % status.name)


# --- independent references (numpy, float64) ---------------------------------------

def ref_omp(G, w, k, allowed=None):
    """Orthogonal matching pursuit in Gram form, float64: pick the allowed,
    unselected column of largest |G w - G_{:,S} c| (lowest index among
    equals), refit c = G_SS^-1 (G w)_S."""
    n = len(w)
    b = G @ w
    S, c = [], np.zeros(0)
    for _ in range(k):
        alpha = b - G[:, S] @ c
        score = np.abs(alpha)
        score[S] = -np.inf
        if allowed is not None:
            score[~allowed] = -np.inf
        S.append(int(np.argmax(score)))
        c = np.linalg.solve(G[np.ix_(S, S)], b[S])
    x = np.zeros(n)
    x[S] = c
    return x, S


def objective(G, w, x, lam):
    """1/2 (w - x)^T G (w - x) + lam ||x||_1 per row, float64."""
    d = (w - x).astype(np.float64)
    return 0.5 * np.einsum("ri,ij,rj->r", d, G, d) + lam * np.abs(x).sum(1)


def ref_fista(G, W, lam, iters=6000):
    """Plain FISTA in float64 with O'Donoghue & Candes' restart, all rows at once."""
    L = np.linalg.eigvalsh(G)[-1]
    B = W @ G
    x = np.zeros_like(W)
    y, t = x.copy(), 1.0
    for _ in range(iters):
        g = y @ G - B
        z = y - g / L
        xn = np.sign(z) * np.maximum(np.abs(z) - lam[:, None] / L, 0)
        tn = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = xn + (t - 1) / tn * (xn - x)
        restart = np.einsum("ri,ri->r", y - xn, xn - x) > 0
        y[restart] = xn[restart]
        x, t = xn, (1.0 if restart.any() else tn)
    return x


# --- OMP --------------------------------------------------------------------------

@pytest.mark.parametrize("m,n,k,rows", [(32, 96, 8, 200), (48, 64, 12, 100)])
def test_omp_matches_a_float64_reference(ctx, m, n, k, rows):
    rng = np.random.default_rng(m)
    s = csp.Sensing.gaussian(ctx, n, m=m, tensor_id=1)
    G = s.gram(0, 0)
    W = rng.standard_normal((rows, n), dtype=np.float32)
    with csp.Solver.omp(ctx) as solver:
        r = solver.solve(s, W, k=k)
    assert r.status == E.OK and r.ok
    assert r.x.shape == W.shape and r.x.dtype == np.float32 and r.support.dtype == bool
    assert np.array_equal(r.nnz, np.full(rows, k)) and r.converged.all()
    assert np.array_equal(r.iterations, np.full(rows, k)) and not r.lam.any()
    same = 0
    for i in range(rows):
        x, S = ref_omp(G, W[i].astype(np.float64), k)
        sup = np.zeros(n, bool)
        sup[S] = True
        if not np.array_equal(sup, r.support[i]):
            continue
        same += 1
        assert not r.x[i][~sup].any()
        # coefficients: 1e-4 relative to max(|x_j|, 1e-2 max |x|)
        tol = 1e-4 * np.maximum(np.abs(x), 1e-2 * np.abs(x).max())
        assert np.all(np.abs(r.x[i] - x) <= tol), i
        d = W[i] - x
        assert r.residual[i] == pytest.approx(d @ G @ d, rel=1e-3, abs=1e-6 * r.energy[i])
    assert same >= 0.99 * rows, "supports equal on %d/%d rows" % (same, rows)
    w64 = W.astype(np.float64)
    assert np.allclose(r.energy, np.einsum("ri,ij,rj->r", w64, G, w64), rtol=1e-5)


def test_omp_allowed_support_and_per_row_k(ctx):
    rng = np.random.default_rng(5)
    n, rows = 40, 30
    s = csp.Sensing.rademacher(ctx, n, m=30)
    G = s.gram()
    W = rng.standard_normal((rows, n), dtype=np.float32)
    allowed = rng.random((rows, n)) < 0.6
    k = np.minimum(rng.integers(0, 10, rows), allowed.sum(1))
    r = csp.Solver.omp(ctx).solve(s, W, k=k, allowed=allowed)
    assert np.array_equal(r.support.sum(1), k)
    assert not r.support[~allowed].any() and not r.x[~allowed].any()
    same = sum(set(np.flatnonzero(r.support[i])) ==
               set(ref_omp(G, W[i].astype(np.float64), k[i], allowed[i])[1])
               for i in range(rows))
    assert same >= 0.99 * rows
    # the same masks as uint64 words, word-aligned rows or packed (row_bits = n)
    words = np.zeros((rows, 1), np.uint64)
    packed = np.zeros((rows * n + 63) // 64, np.uint64)
    for i, j in zip(*np.nonzero(allowed)):
        words[i, 0] |= np.uint64(1) << np.uint64(j)
        packed[(i * n + j) // 64] |= np.uint64(1) << np.uint64((i * n + j) % 64)
    r2 = csp.Solver.omp(ctx).solve(s, W, k=k, allowed=words)
    r3 = csp.Solver.omp(ctx).solve(s, W, k=k, allowed=packed, allowed_row_bits=n)
    for other in (r2, r3):
        assert np.array_equal(other.x, r.x) and np.array_equal(other.support, r.support)


def test_identity_is_top_k_magnitude_with_ties_to_the_lower_index(ctx):
    rng = np.random.default_rng(6)
    n, rows = 50, 64
    W = rng.integers(-4, 5, (rows, n)).astype(np.float32)   # many ties and zeros
    s = csp.Sensing.identity(ctx, n)
    solver = csp.Solver.omp(ctx)
    for k in (0, 1, 7, 25, 49, 50):
        r = solver.solve(s, W, k=k)
        for i in range(rows):
            order = np.lexsort((np.arange(n), -np.abs(W[i])))  # |w| down, index up
            want = np.zeros(n, bool)
            want[order[:k]] = True
            assert np.array_equal(r.support[i], want), (k, i)
            assert np.array_equal(r.x[i], np.where(want, W[i], 0))   # x_S = w_S exactly
    # in place: out = w prunes the caller's array
    V = W.copy()
    r = solver.solve(s, V, k=10, out=V)
    assert r.x is V and np.array_equal(V, solver.solve(s, W, k=10).x)


def test_row_strided_blocks_are_solved_in_place(ctx):
    rng = np.random.default_rng(7)
    W = rng.standard_normal((12, 64), dtype=np.float32)
    s = csp.Sensing.gaussian(ctx, 16, m=12)
    solver = csp.Solver.omp(ctx)
    want = solver.solve(s, np.ascontiguousarray(W[:, 16:32]), k=4)
    block = W[:, 16:32]                       # a column block: rows 64 floats apart
    before = W.copy()
    r = solver.solve(s, block, k=4, out=block)
    assert r.x is block and np.array_equal(W[:, 16:32], want.x)
    assert np.array_equal(W[:, :16], before[:, :16]) and np.array_equal(W[:, 32:], before[:, 32:])
    # one row, 1-D
    r1 = solver.solve(s, want.x[3].copy(), k=4)
    assert r1.x.shape == (16,) and r1.support.shape == (16,) and r1.stats.shape == (1,)


def test_omp_with_pruner_masks(ctx):
    rng = np.random.default_rng(8)
    n = 32
    W = rng.standard_normal((16, n), dtype=np.float32)
    sched = csp.Schedule.constant(ctx, 0.5, frequency=1)
    pruner = csp.Pruner(ctx, sched, granularity="row")
    i = pruner.add_tensor(W.copy(), "w")
    pruner.step(0)
    s = csp.Sensing.gaussian(ctx, n, m=24)
    r = csp.Solver.omp(ctx).solve(s, W, k=8, allowed=pruner.mask_words(i),
                                  allowed_row_bits=n)
    assert not r.support[~pruner.mask(i)].any() and (r.support.sum(1) == 8).all()


def test_results_do_not_depend_on_threads():
    rng = np.random.default_rng(9)
    W = rng.standard_normal((600, 48), dtype=np.float32)
    out = []
    for threads in (1, 2):
        with csp.Context(seed=1, num_threads=threads) as c:
            s = csp.Sensing.gaussian(c, 48, m=20)
            out.append(csp.Solver.omp(c).solve(s, W, k=6).x)
    assert np.array_equal(out[0], out[1])


def test_damped_status_is_reported_not_raised(ctx):
    rng = np.random.default_rng(10)
    s = csp.Sensing.gaussian(ctx, 24, m=6)                  # rank 6
    W = rng.standard_normal((10, 24), dtype=np.float32)
    r = csp.Solver.omp(ctx).solve(s, W, k=12)                 # k > rank: dependent atoms
    assert r.status == E.DAMPED and not r.ok
    assert r.flagged(csp.RowFlag.DAMPED).all() and r.flagged(csp.RowFlag.DEPENDENT).all()
    assert (r.damping > 0).all() and np.isfinite(r.x).all()
    assert csp.RowFlag(int(r.flags[0])) & csp.RowFlag.DAMPED


# --- ISTA / FISTA -------------------------------------------------------------------

@pytest.mark.parametrize("method", ["ista", "fista"])
def test_l1_objective_matches_a_numpy_reference(ctx, method):
    rng = np.random.default_rng(11)
    n, rows = 32, 24
    s = csp.Sensing.gaussian(ctx, n, m=40)
    G = s.gram()
    W = rng.standard_normal((rows, n), dtype=np.float32)
    lam = 0.2 * np.abs(W.astype(np.float64) @ G).max(1)
    solver = csp.Solver(ctx, method, calibrate=False, tol=1e-6, max_iter=20000)
    assert solver.options["calibrate"] is False and solver.options["tol"] == 1e-6
    r = solver.solve(s, W, lam=lam)
    assert r.status == E.OK and r.converged.all()
    assert np.array_equal(r.lam, lam)
    f = objective(G, W.astype(np.float64), r.x.astype(np.float64), lam)
    f_ref = objective(G, W.astype(np.float64), ref_fista(G, W.astype(np.float64), lam), lam)
    # the library stops at a duality gap of tol = 1e-6 of the objective: its
    # objective is within 1e-6 of the optimum, plus float32 rounding of x
    assert np.all(np.abs(f - f_ref) <= 2e-6 * f_ref), np.max(np.abs(f - f_ref) / f_ref)
    assert np.array_equal(r.support, r.x != 0)
    # one lambda for every row: from the solver's options, or given as a scalar
    one = csp.Solver(ctx, method, calibrate=False, lam=float(lam[0]), tol=1e-6, max_iter=20000)
    a = one.solve(s, W[:3])
    b = solver.solve(s, W[:3], lam=float(lam[0]))
    assert np.array_equal(a.lam, np.full(3, lam[0])) and np.array_equal(a.x, b.x)


def test_calibrated_fista_reaches_exactly_k(ctx):
    rng = np.random.default_rng(12)
    n, rows, k = 40, 20, 6
    s = csp.Sensing.rademacher(ctx, n, m=30)
    W = rng.standard_normal((rows, n), dtype=np.float32)
    r = csp.Solver.fista(ctx).solve(s, W, k=k)
    assert r.status in (E.OK, E.NOT_CONVERGED)
    assert (r.support.sum(1) == k).all() and (r.nnz == k).all()
    assert not r.x[~r.support].any() and (r.lam > 0).all()
    # warm start from that solution with its lambdas as first guesses
    out = r.x.copy()
    r2 = csp.Solver.fista(ctx).solve(s, W, k=k, lam=r.lam, out=out, warm_start=True)
    assert r2.x is out and (r2.support.sum(1) == k).all()


def test_not_converged_status_is_reported_not_raised(ctx):
    rng = np.random.default_rng(13)
    s = csp.Sensing.gaussian(ctx, 32, m=16)
    W = rng.standard_normal((8, 32), dtype=np.float32)
    r = csp.Solver.ista(ctx, calibrate=False, lam=0.01, max_iter=1).solve(s, W)
    assert r.status == E.NOT_CONVERGED and not r.converged.all()
    assert (r.iterations == 1).all()


# --- the result layout ----------------------------------------------------------

def test_row_stats_dtype_mirrors_the_struct():
    dt = csp.row_stats_dtype()
    assert dt.itemsize == ctypes.sizeof(csp._lib.RowStats)
    assert dt.names == ("residual", "energy", "lambda", "damping", "iterations", "nnz",
                        "converged", "flags")
    for name, _ in csp._lib.RowStats._fields_:
        assert dt.fields[name.rstrip("_")][1] == getattr(csp._lib.RowStats, name).offset


def test_torch_rows_in_place(ctx):
    if os.environ.get("CSP_TEST_SKIP_TORCH"):
        pytest.skip("CSP_TEST_SKIP_TORCH: " + os.environ["CSP_TEST_SKIP_TORCH"])
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    w = torch.randn(6, 20)
    want = csp.Solver.omp(ctx).solve(csp.Sensing.identity(ctx, 20), w.numpy().copy(), k=5).x
    r = csp.Solver.omp(ctx).solve(csp.Sensing.identity(ctx, 20), w, k=5, out=w)
    assert r.x is w and np.array_equal(w.numpy(), want)
    with pytest.raises(TypeError, match="float32"):
        csp.Solver.omp(ctx).solve(csp.Sensing.identity(ctx, 20), w.double(), k=5)


# --- errors -------------------------------------------------------------------------

def test_solve_errors_leave_out_unchanged(ctx):
    n = 16
    s = csp.Sensing.gaussian(ctx, n, m=8)
    solver = csp.Solver.omp(ctx)
    W = np.ones((4, n), np.float32)
    out = np.full((4, n), 7, np.float32)
    with raises_status(E.E_RANGE):
        solver.solve(s, W, k=n + 1, out=out)
    with raises_status(E.E_RANGE):
        solver.solve(s, W, k=-1, out=out)
    with raises_status(E.E_RANGE):
        solver.solve(s, W, k=[1, 2, 3, 17], out=out)
    with raises_status(E.E_RANGE):          # fewer allowed columns than k
        solver.solve(s, W, k=3, allowed=np.eye(4, n, dtype=bool), out=out)
    bad = W.copy()
    bad[2, 5] = np.nan
    with raises_status(E.E_NONFINITE):
        solver.solve(s, bad, k=2, out=out)
    with raises_status(E.E_SHAPE):
        solver.solve(s, np.ones((4, n + 1), np.float32), k=2)
    buf = np.ones((4, n + 1), np.float32)
    with raises_status(E.E_INVALID):        # out overlaps w without being w
        solver.solve(s, buf[:, :n], k=2, out=buf[:, 1:])
    assert (out == 7).all()
    # Python-side checks: types and layouts, never a silent copy
    with pytest.raises(TypeError, match="float32"):
        solver.solve(s, W.astype(np.float64), k=2)
    with pytest.raises(TypeError):
        solver.solve(s, W.tolist(), k=2)
    with pytest.raises(ValueError, match="contiguous"):
        solver.solve(s, np.ones((n, 4), np.float32).T, k=2)
    with pytest.raises(ValueError, match="contiguous"):
        solver.solve(s, np.ones((4, 2 * n), np.float32)[:, ::2], k=2)
    ro = W.copy()
    ro.flags.writeable = False
    solver.solve(s, ro, k=2)                                 # w is only read
    with pytest.raises(ValueError, match="read-only"):
        solver.solve(s, ro, k=2, out=ro)
    with pytest.raises(TypeError, match="float32"):
        solver.solve(s, W, k=2, out=np.empty((4, n)))
    with pytest.raises(ValueError, match="shape"):
        solver.solve(s, W, k=2, out=np.empty((3, n), np.float32))
    with pytest.raises(ValueError, match="needs k"):
        solver.solve(s, W)
    with pytest.raises(ValueError, match="not lam"):
        solver.solve(s, W, k=2, lam=0.1)
    with pytest.raises(TypeError, match="ints"):
        solver.solve(s, W, k=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="shape"):
        solver.solve(s, W, k=[1, 2])
    with pytest.raises(TypeError, match="bool array or uint64"):
        solver.solve(s, W, k=2, allowed=np.ones((4, n)))
    with pytest.raises(ValueError, match="shape of w"):
        solver.solve(s, W, k=2, allowed=np.ones((4, n - 1), bool))
    with pytest.raises(ValueError, match="allowed_row_bits"):
        solver.solve(s, W, k=2, allowed=np.zeros(2, np.uint64))
    with pytest.raises(ValueError, match="need"):
        solver.solve(s, W, k=2, allowed=np.zeros(3, np.uint64), allowed_row_bits=64)
    with pytest.raises(ValueError, match="warm_start"):
        csp.Solver.fista(ctx).solve(s, W, k=2, warm_start=True)
    with pytest.raises(ValueError, match="takes lam"):
        csp.Solver.fista(ctx, calibrate=False, lam=0.1).solve(s, W, k=2)
    with raises_status(E.E_RANGE):          # uncalibrated with no lambda > 0
        csp.Solver.ista(ctx, calibrate=False).solve(s, W)
    with raises_status(E.E_NONFINITE):
        csp.Solver.fista(ctx).solve(s, W, k=2, lam=[0.1, np.nan, 0.1, 0.1])
    with pytest.raises(TypeError, match="csp.Sensing"):
        solver.solve(np.eye(n), W, k=2)


def test_sensing_errors_name_the_sensing_context(ctx):
    with csp.Context() as other:
        s = csp.Sensing.activations(other, 8)                # nothing observed yet
        with pytest.raises(csp.CspError) as e:
            csp.Solver.omp(ctx).solve(s, np.ones((2, 8), np.float32), k=2)
        assert e.value.status == E.E_STATE and "observ" in e.value.message


def test_solver_options_and_lifetime(ctx):
    with raises_status(E.E_RANGE):
        csp.Solver.fista(ctx, tol=2.0)
    with raises_status(E.E_RANGE):
        csp.Solver.omp(ctx, eps=1.0)
    with raises_status(E.E_RANGE):
        csp.Solver.ista(ctx, max_iter=0)
    with pytest.raises(TypeError, match="unknown solver option"):
        csp.Solver.omp(ctx, lambda_=0.1)
    with pytest.raises(TypeError, match="bool"):
        csp.Solver.fista(ctx, calibrate="yes")
    with pytest.raises(ValueError, match="solver method"):
        csp.Solver(ctx, "lasso")
    solver = csp.Solver(ctx, 3, restart=False, max_bisect=10)
    assert solver.method == csp.SolverMethod.FISTA and repr(solver) == "<csp.Solver fista>"
    assert solver.options["restart"] is False and solver.options["max_bisect"] == 10
    assert solver.options["max_iter"] == 1000                 # the library's default
    s = csp.Sensing.identity(ctx, 4)
    ctx.close()
    assert solver.closed and s.closed
    with pytest.raises(ValueError, match="closed"):
        solver.solve(s, np.ones((1, 4), np.float32), k=1)
