"""csp.Sensing: Grams, Phi, activation accumulation, accumulators, errors."""

import math
import os

import numpy as np
import pytest

import csprune as csp
from xtx_ref import assert_xtx

E = csp.Status


def torch_or_skip():
    if os.environ.get("CSP_TEST_SKIP_TORCH"):
        pytest.skip("CSP_TEST_SKIP_TORCH: " + os.environ["CSP_TEST_SKIP_TORCH"])
    return pytest.importorskip("torch", reason="PyTorch is not installed")


def raises_status(status):
    class Ctx:
        def __enter__(self):
            self.cm = pytest.raises(csp.CspError)
            self.info = self.cm.__enter__()
            return self.info

        def __exit__(self, *exc):
            ok = self.cm.__exit__(*exc)
            err = self.info.value
            assert err.status == status, err
            assert err.name == "CSP_" + status.name
            assert err.message  # the context's text, not empty
            return ok
    return Ctx()


# --- kinds, G and Phi -------------------------------------------------------------

def test_kinds_and_properties(ctx):
    with csp.Sensing.identity(ctx, 10) as s:
        assert (s.kind, s.n, s.m, s.count, s.accumulator_len) == (
            csp.SensingKind.IDENTITY, 10, 10, 0, 0)
        assert np.array_equal(s.gram(), np.eye(10))
    g = csp.Sensing.gaussian(ctx, 50)
    assert g.kind == csp.SensingKind.GAUSSIAN and g.m == 25   # ceil(0.5 n)
    assert csp.Sensing.rademacher(ctx, 50, rho=0.3).m == 15
    assert csp.Sensing(ctx, "rademacher", 50, m=7).m == 7
    a = csp.Sensing.activations(ctx, 6)
    assert a.kind == csp.SensingKind.ACTIVATIONS and a.accumulator_len == 37
    assert "gaussian n=50 m=25" in repr(g) and "observed=0" in repr(a)
    ctx.close()
    assert g.closed and a.closed and "closed" in repr(g)
    with pytest.raises(ValueError, match="closed"):
        g.gram()


def test_random_gram_is_reproducible(ctx):
    n = 40
    s = csp.Sensing.gaussian(ctx, n, m=16, tensor_id=3)
    G = s.gram(2, 5)
    assert G.shape == (n, n) and G.dtype == np.float64 and G.flags.c_contiguous
    assert np.array_equal(G, s.gram(2, 5))               # same key, same bits
    assert np.array_equal(G, G.T)
    assert not np.array_equal(G, s.gram(2, 6))           # event redraws Phi
    assert not np.array_equal(G, s.gram(3, 5))           # so does the row block
    with csp.Context(seed=ctx.seed) as other:            # a new run, same seed
        assert np.array_equal(csp.Sensing.gaussian(other, n, m=16, tensor_id=3).gram(2, 5), G)
        assert not np.array_equal(
            csp.Sensing.gaussian(other, n, m=16, tensor_id=4).gram(2, 5), G)
    with csp.Context(seed=ctx.seed + 1) as other:
        assert not np.array_equal(csp.Sensing.gaussian(other, n, m=16, tensor_id=3).gram(2, 5),
                                  G)
    phi = s.phi(2, 5)
    assert phi.shape == (16, n)
    assert np.allclose(phi.T @ phi, G, rtol=0, atol=1e-12)
    assert abs(np.mean(phi ** 2) * 16 - 1) < 0.2            # N(0, 1/m) entries


def test_rademacher_gram_is_exact(ctx):
    s = csp.Sensing.rademacher(ctx, 70, m=100)
    phi = s.phi(0, 1)
    assert np.array_equal(np.abs(phi), np.full_like(phi, 1 / math.sqrt(100)))
    G = s.gram(0, 1)
    assert np.array_equal(np.diag(G), np.ones(70))
    # entries are (m - 2 * disagreements) / m exactly
    signs = np.sign(phi).astype(np.int64)
    assert np.array_equal(G, (signs.T @ signs) / 100)


def test_gram_out_is_written_in_place(ctx):
    s = csp.Sensing.gaussian(ctx, 12, m=5)
    big = np.full((12, 20), -1.0)
    view = big[:, 4:16]                    # row-strided: ld = 20
    assert s.gram(0, 0, out=view) is view
    assert np.array_equal(view, s.gram())
    assert np.all(big[:, :4] == -1) and np.all(big[:, 16:] == -1)
    with pytest.raises(TypeError, match="float64"):
        s.gram(out=np.empty((12, 12), np.float32))
    with pytest.raises(ValueError, match="shape"):
        s.gram(out=np.empty((12, 11)))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty((12, 12))
        ro.flags.writeable = False
        s.gram(out=ro)
    with pytest.raises(ValueError, match="contiguous"):
        s.gram(out=np.empty((12, 12)).T)


def test_user_gram(ctx):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((8, 5))
    G = a @ a.T                             # PSD of rank 5
    s = csp.Sensing.from_gram(ctx, G)
    assert s.kind == csp.SensingKind.GRAM and s.n == 8
    assert np.array_equal(s.gram(), (G + G.T) / 2)
    s.set_gram(np.eye(8))
    assert np.array_equal(s.gram(), np.eye(8))
    with raises_status(E.E_STATE):
        csp.Sensing(ctx, csp.SensingKind.GRAM, 4).gram()    # not set yet
    bad = np.eye(8)
    bad[0, 1] = 0.5                           # not symmetric
    with raises_status(E.E_INVALID):
        s.set_gram(bad)
    with raises_status(E.E_INVALID):
        s.set_gram(-np.eye(8) + 2 * np.diag(np.r_[1.0, np.zeros(7)]))  # not PSD
    bad = np.eye(8)
    bad[2, 2] = np.nan
    with raises_status(E.E_NONFINITE):
        s.set_gram(bad)
    assert np.array_equal(s.gram(), np.eye(8))           # unchanged by the failures
    with pytest.raises(ValueError, match="square"):
        csp.Sensing.from_gram(ctx, np.eye(3)[:2])
    with pytest.raises(TypeError, match="float64"):
        s.set_gram(np.eye(8, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        s.set_gram(np.eye(7))
    with raises_status(E.E_INVALID):
        csp.Sensing.gaussian(ctx, 8).set_gram(np.eye(8))


# --- activations ------------------------------------------------------------------

def test_observe_accumulates_xtx(ctx):
    rng = np.random.default_rng(2)
    n = 24
    x1 = rng.standard_normal((30, n), dtype=np.float32)
    x2 = rng.standard_normal((17, n), dtype=np.float32)
    s = csp.Sensing.activations(ctx, n, damping=0.05)
    s.observe(x1)
    s.observe(x2)
    s.observe(np.empty((0, n), np.float32))                 # no-op
    assert s.count == 47
    X = np.vstack([x1, x2]).astype(np.float64)
    S = X.T @ X
    acc = s.read_accumulator()
    assert acc.shape == (n * n + 1,) and acc[-1] == 47
    assert_xtx(acc[:-1].reshape(n, n), X)
    S = acc[:-1].reshape(n, n)  # the Gram is built from the accumulator as held
    eps = 0.05 * np.mean(np.diag(S / 47))
    assert np.allclose(s.gram(), S / 47 + eps * np.eye(n), rtol=1e-12, atol=1e-12)
    # a row-strided block of a wider batch is read in place
    wide = rng.standard_normal((9, n + 5), dtype=np.float32)
    t = csp.Sensing.activations(ctx, n)
    t.observe(wide[:, 3:3 + n])
    B = wide[:, 3:3 + n].astype(np.float64)
    assert_xtx(t.read_accumulator()[:-1].reshape(n, n), B)


def test_observe_torch_tensor(ctx):
    torch = torch_or_skip()
    x = torch.randn(11, 6, requires_grad=True)
    s = csp.Sensing.activations(ctx, 6)
    s.observe(x.detach())
    s.observe(x)                                             # read by pointer, no autograd
    X = x.detach().double().numpy()
    assert s.count == 22
    assert_xtx(s.read_accumulator()[:-1].reshape(6, 6), X, times=2)
    with pytest.raises(TypeError, match="float32"):
        s.observe(x.detach().double())
    with pytest.raises(ValueError, match="contiguous"):
        s.observe(x.detach().t().contiguous().t()[:, ::2])


def test_observe_errors_leave_the_operator_unchanged(ctx):
    s = csp.Sensing.activations(ctx, 4)
    x = np.ones((3, 4), np.float32)
    s.observe(x)
    before = s.read_accumulator()
    with pytest.raises(TypeError, match="float32"):
        s.observe(x.astype(np.float64))                     # never converted
    with pytest.raises(TypeError):
        s.observe([[1.0] * 4])
    with pytest.raises(ValueError, match="contiguous"):
        s.observe(np.ones((4, 3), np.float32).T)              # a transposed view
    with pytest.raises(ValueError, match="contiguous"):
        s.observe(np.ones((3, 8), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="2-D"):
        s.observe(np.ones(4, np.float32))
    with raises_status(E.E_SHAPE):
        s.observe(np.ones((3, 5), np.float32))
    bad = x.copy()
    bad[1, 2] = np.inf
    with raises_status(E.E_NONFINITE):
        s.observe(bad)
    assert s.count == 3 and np.array_equal(s.read_accumulator(), before)
    with raises_status(E.E_INVALID):
        csp.Sensing.gaussian(ctx, 4).observe(x)


def test_accumulator_round_trip_merge_and_all_reduce(ctx):
    rng = np.random.default_rng(3)
    n = 16
    parts = [rng.standard_normal((r, n), dtype=np.float32) for r in (20, 13, 7)]
    whole = csp.Sensing.activations(ctx, n)
    replicas = [csp.Sensing.activations(ctx, n) for _ in parts]
    for x, rep in zip(parts, replicas):
        whole.observe(x)
        rep.observe(x)
    # round trip: the same bits, the same Gram
    copy = csp.Sensing.activations(ctx, n)
    copy.write_accumulator(whole.read_accumulator())
    assert np.array_equal(copy.read_accumulator(), whole.read_accumulator())
    assert copy.count == 40 and np.array_equal(copy.gram(), whole.gram())
    # a data-parallel all-reduce: sum the buffers, write the sum back everywhere
    total = sum(rep.read_accumulator() for rep in replicas)
    for rep in replicas:
        rep.write_accumulator(total)
        assert rep.count == 40
        assert np.allclose(rep.gram(), whole.gram(), rtol=1e-12, atol=1e-14)
    # merge: dst += src, src unchanged
    a, b = csp.Sensing.activations(ctx, n), csp.Sensing.activations(ctx, n)
    a.observe(parts[0])
    b.observe(parts[1])
    b_before = b.read_accumulator()
    a.merge(b)
    assert a.count == 33 and np.array_equal(b.read_accumulator(), b_before)
    X = np.vstack(parts[:2]).astype(np.float64)
    assert_xtx(a.read_accumulator()[:-1].reshape(n, n), X)
    # read into a caller's buffer
    buf = np.empty(n * n + 1)
    assert a.read_accumulator(out=buf) is buf and buf[-1] == 33
    # reset
    a.reset()
    assert a.count == 0 and not a.read_accumulator().any()
    with raises_status(E.E_STATE):
        a.gram()                                           # nothing observed


def test_accumulator_and_merge_errors(ctx):
    s = csp.Sensing.activations(ctx, 3)
    s.observe(np.eye(3, dtype=np.float32))
    good = s.read_accumulator()
    with raises_status(E.E_BUFFER):
        s.write_accumulator(good[:-1])
    with raises_status(E.E_BUFFER):
        s.read_accumulator(out=np.empty(9))
    bad = good.copy()
    bad[-1] = -1
    with raises_status(E.E_RANGE):
        s.write_accumulator(bad)
    bad = good.copy()
    bad[1] = 5.0                                             # S not symmetric
    with raises_status(E.E_INVALID):
        s.write_accumulator(bad)
    bad = good.copy()
    bad[0] = np.nan
    with raises_status(E.E_NONFINITE):
        s.write_accumulator(bad)
    assert np.array_equal(s.read_accumulator(), good)        # unchanged
    with pytest.raises(TypeError, match="float64"):
        s.write_accumulator(good.astype(np.float32))
    with pytest.raises(ValueError, match="1-D"):
        s.write_accumulator(good.reshape(1, -1))
    with pytest.raises(ValueError, match="contiguous"):
        s.write_accumulator(np.repeat(good, 2)[::2])
    gauss = csp.Sensing.gaussian(ctx, 3)
    with raises_status(E.E_INVALID):
        gauss.read_accumulator()
    with raises_status(E.E_INVALID):
        gauss.reset()
    with raises_status(E.E_INVALID):
        s.merge(gauss)
    with raises_status(E.E_INVALID):
        s.merge(s)
    with raises_status(E.E_SHAPE):
        s.merge(csp.Sensing.activations(ctx, 4))
    with pytest.raises(TypeError, match="csp.Sensing"):
        s.merge(good)


def test_create_errors(ctx):
    with raises_status(E.E_RANGE):
        csp.Sensing.identity(ctx, 0)
    with raises_status(E.E_RANGE):
        csp.Sensing.identity(ctx, csp.SENSING_MAX_N + 1)
    with raises_status(E.E_RANGE):
        csp.Sensing.gaussian(ctx, 10, rho=0)
    with raises_status(E.E_RANGE):
        csp.Sensing.activations(ctx, 10, damping=-1)
    with pytest.raises(ValueError, match="sensing kind"):
        csp.Sensing(ctx, "user", 10)
    with pytest.raises(TypeError, match="row length"):
        csp.Sensing(ctx, "identity")
    with pytest.raises(TypeError, match="ctx"):
        csp.Sensing.identity(None, 4)
    with raises_status(E.E_INVALID):
        csp.Sensing.identity(ctx, 4).phi()


def test_module_pruner_hooks_feed_activation_sensing():
    torch = torch_or_skip()
    import csprune.torch
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with csp.Context(seed=1) as ctx:
        sens = {"0.weight": csp.Sensing.activations(ctx, 6),
                "2.weight": csp.Sensing.activations(ctx, 5)}
        with csprune.torch.ModulePruner(model, opt, final_sparsity=0.5, ctx=ctx, observe=True,
                                    observer=lambda name, x: sens[name].observe(x)):
            x = torch.randn(10, 6)
            with torch.no_grad():
                model(x)
                h = torch.relu(torch.nn.functional.linear(x, model[0].weight, model[0].bias))
            assert sens["0.weight"].count == 10 and sens["2.weight"].count == 10
            X = x.double().numpy()
            assert_xtx(sens["0.weight"].read_accumulator()[:-1].reshape(6, 6), X)
            H = h.double().numpy()
            assert np.allclose(sens["2.weight"].read_accumulator()[:-1].reshape(5, 5),
                               H.T @ H, rtol=1e-6)
