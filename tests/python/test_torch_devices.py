"""csprune.torch on devices and in low precision (the staged path, forced on
the CPU), gradient masking, construction checks, summary() and event
callbacks."""

import os
import random
import warnings

import numpy as np
import pytest

if os.environ.get("CSP_TEST_SKIP_TORCH"):
    pytest.skip("CSP_TEST_SKIP_TORCH: " + os.environ["CSP_TEST_SKIP_TORCH"],
                allow_module_level=True)
torch = pytest.importorskip("torch", reason="PyTorch (Debian python3-torch) is not installed")
from torch import nn  # noqa: E402

import csprune as csp  # noqa: E402
import csprune.torch  # noqa: E402

torch.set_num_threads(1)


def fresh_seed():
    seed = random.SystemRandom().randrange(2**31)
    print("seed", seed)
    return seed


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc3(torch.tanh(self.fc2(torch.relu(self.fc1(x)))))


def batch(g, n=32, dtype=torch.float32, device="cpu"):
    x = torch.randn(n, 12, generator=g)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    return x.to(device=device, dtype=dtype), y.to(device)


def train(seed, steps=40, device="cpu", dtype=torch.float32, clip=None, **kw):
    """Train Net with Adam under a ModulePruner; returns model, opt, pruner,
    and the masks seen at every step (all pruned weights checked zero)."""
    torch.manual_seed(seed)
    model = Net().to(device=device, dtype=dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    args = dict(final_sparsity=0.75, begin_step=2, end_step=22, frequency=5,
                granularity="row")
    args.update(kw)
    pruner = csprune.torch.ModulePruner(model, opt, **args)
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        x, y = batch(g, dtype=dtype, device=device)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x).float(), y).backward()
        if clip is not None:
            clip(model)
        opt.step()
        pruner.step()
        params = dict(model.named_parameters())
        for name in pruner.names:
            mask = pruner.mask(name).to(device)
            assert (params[name][~mask] == 0).all()
            for v in opt.state[params[name]].values():
                if isinstance(v, torch.Tensor) and v.shape == mask.shape:
                    assert (v[~mask] == 0).all()
    return model, opt, pruner


def snapshot(model, opt):
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            [{k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)}
             for s in opt.state.values()])


def assert_same(a, b, exact=True):
    (ma, oa), (mb, ob) = a, b
    for k in ma:
        if exact:
            assert torch.equal(ma[k], mb[k]), k
        else:
            assert torch.allclose(ma[k], mb[k], rtol=1e-5, atol=1e-6), k
    for sa, sb in zip(oa, ob):
        for k in sa:
            assert torch.equal(sa[k], sb[k]) if exact else \
                torch.allclose(sa[k], sb[k], rtol=1e-5, atol=1e-6), k


# --- the staged (device) path on the CPU -----------------------------------------------------

def test_staged_path_equals_in_place_bit_for_bit_gmp():
    seed = fresh_seed()
    m1, o1, p1 = train(seed, staged=False)
    m2, o2, p2 = train(seed, staged=True)
    assert not p1.staged and p2.staged
    assert_same(snapshot(m1, o1), snapshot(m2, o2))
    assert p1.digest() == p2.digest()
    for s in p2.stats():
        t = p2.pruner.tensor(s.index)
        assert s.nnz == t.rows * (t.cols - round(0.75 * t.cols))
    # ordinary steps of a staged pruner call no library function
    assert p2.pruner.step_stats().steps == p2.pruner.step_stats().events == 5
    assert p1.pruner.step_stats().steps == 40


def test_staged_path_with_activation_sensing_matches_in_place():
    """The device accumulators (float64 torch GEMM) against the library's
    (float32 sums over chunks of 128 rows, the chunks in float64): the two
    agree to ~1e-7 relative, far closer than the gaps between the scores
    the decisions compare (25 fresh seeds in a row gave the same digest)."""
    seed = fresh_seed()
    kw = dict(sensing="activations", correction="full", observe_window=3)
    m1, o1, p1 = train(seed, staged=False, **kw)
    m2, o2, p2 = train(seed, staged=True, **kw)
    assert p1.digest() == p2.digest()
    assert_same(snapshot(m1, o1), snapshot(m2, o2), exact=False)
    for a, b in zip(p1.stats(), p2.stats()):
        assert a.nnz == b.nnz and a.events == b.events == 5
        assert a.weight_error == pytest.approx(b.weight_error, rel=1e-4, abs=1e-7)


def test_staged_accumulator_reaches_the_library_exactly():
    """What a staged pruner hands the library at an event is S = X^T X and N
    of the observed rows (float64 reference), summed with what the library
    already held."""
    seed = fresh_seed()
    torch.manual_seed(seed)
    model = Net()
    seen = []
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, begin_step=3, end_step=-1,
                                   frequency=3, granularity="row", sensing="activations",
                                   staged=True, overrides={"fc2.weight": {"sensing": "identity"},
                                                           "fc3.weight": {"sensing": "identity"}},
                                   observer=lambda n, x: seen.append((n, x.clone())))
    for step in range(3):
        model(torch.randn(7, 12, dtype=torch.float32))
        p.step()
    st = p.state_dict()  # moves the device statistics into the library
    acc = p.sensing("fc1.weight").read_accumulator()
    X = torch.cat([x for n, x in seen if n == "fc1.weight"]).double().numpy()
    assert acc[-1] == X.shape[0] == 21
    np.testing.assert_allclose(acc[:-1].reshape(12, 12), X.T @ X, rtol=1e-13, atol=1e-12)
    p.load_state_dict(st)  # the device accumulators are empty after a load
    model(torch.randn(5, 12))
    p.state_dict()
    assert p.sensing("fc1.weight").read_accumulator()[-1] == 26


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_parameters_are_decided_in_float32(dtype):
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    model = Net().to(dtype)
    with torch.no_grad():
        for prm in model.parameters():
            prm.copy_(torch.randn(prm.shape, generator=g))
    before = {n: q.detach().clone() for n, q in model.named_parameters()}
    momentum = {n: torch.randn(q.shape, generator=g).to(dtype) for n, q in before.items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    for q in model.parameters():
        opt.state[q]["momentum_buffer"] = momentum[[n for n, r in model.named_parameters()
                                                    if r is q][0]]
    p = csprune.torch.ModulePruner(model, opt, final_sparsity=0.5, end_step=-1,
                                   granularity="row")
    assert p.staged and p.step() == csp.Status.PRUNED
    params = dict(model.named_parameters())
    for name in p.names:
        w32 = before[name].float().numpy()
        k = w32.shape[1] - round(0.5 * w32.shape[1])
        order = np.argsort(-np.abs(w32), axis=1, kind="stable")  # ties: lower index first
        want = np.zeros(w32.shape, bool)
        np.put_along_axis(want, order[:, :k], True, axis=1)
        mask = p.mask(name).numpy()
        np.testing.assert_array_equal(mask, want)
        w = params[name]
        assert w.dtype == dtype
        assert torch.equal(w[torch.from_numpy(mask)], before[name][torch.from_numpy(mask)])
        assert (w[~torch.from_numpy(mask)] == 0).all()
        assert (opt.state[w]["momentum_buffer"][~torch.from_numpy(mask)] == 0).all()


def test_bfloat16_training_with_csp_correction():
    seed = fresh_seed()
    back = []

    def check(info):  # the corrected weights came back, rounded from the host's float32
        entries = info.pruner._entries
        back.append(all(torch.equal(e.param.detach(), e.host.to(torch.bfloat16))
                        for e in entries))
        back.append(sum(float((e.param.detach().float() - e.host).abs().max())
                        for e in entries))
    model, opt, p = train(seed, dtype=torch.bfloat16, sensing="activations",
                          correction="full", observe_window=2, on_event=check)
    assert p.staged
    for s in p.stats():
        t = p.pruner.tensor(s.index)
        assert s.nnz == t.rows * (t.cols - round(0.75 * t.cols))
    assert back[0::2] == [True] * 5
    assert max(back[1::2]) > 0  # float32 corrections, rounded


def test_staged_resume_is_bit_identical():
    seed = fresh_seed()
    kw = dict(staged=True, sensing="activations", observe_window=4)
    ref = train(seed, steps=30, **kw)
    torch.manual_seed(seed)
    # train 13 steps (mid observation window before the event at 17), save, resume
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    args = dict(final_sparsity=0.75, begin_step=2, end_step=22, frequency=5,
                granularity="row", **kw)
    pr = csprune.torch.ModulePruner(model, opt, **args)
    g = torch.Generator().manual_seed(seed + 1)

    def run(model, opt, pr, n):
        for _ in range(n):
            x, y = batch(g)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            pr.step()
    run(model, opt, pr, 15)
    saved = {"m": model.state_dict(), "o": opt.state_dict(), "p": pr.state_dict()}
    torch.manual_seed(seed)
    model2 = Net()
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    pr2 = csprune.torch.ModulePruner(model2, opt2, **args)
    model2.load_state_dict(saved["m"])
    opt2.load_state_dict(saved["o"])
    pr2.load_state_dict(saved["p"])
    assert pr2.last_step == 14
    run(model2, opt2, pr2, 15)
    assert_same(snapshot(*ref[:2]), snapshot(model2, opt2))
    assert pr2.digest() == ref[2].digest()


def test_ordinary_staged_steps_touch_no_host_buffer():
    model = Net()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, begin_step=0, end_step=10,
                                   frequency=5, staged=True)
    p.step()
    for e in p._entries:
        e.host.fill_(7.0)
    with torch.no_grad():
        model.fc1.weight.add_(1.0)  # an "update" reaching the pruned weights too
    for _ in range(3):
        assert p.step() == csp.Status.MASKED
    mask = p.mask("fc1.weight")
    assert (model.fc1.weight[~mask] == 0).all()
    assert all((e.host == 7.0).all() for e in p._entries)
    assert p.pruner.last_step == 0 and p.last_step == 3
    with pytest.raises(csp.CspError, match="before the last step"):
        p.step(2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_parameters():  # pragma: no cover - CI has no GPU
    seed = fresh_seed()
    for kw in ({}, {"sensing": "activations", "correction": "blend", "observe_window": 3}):
        model, opt, p = train(seed, device="cuda", **kw)
        assert p.staged and p.pin_memory
        for e in p._entries:
            assert e.pruned.device.type == "cuda" and e.host.is_pinned()
            assert torch.equal(e.pruned.cpu(), ~p.mask(e.name))
        for s in p.stats():
            t = p.pruner.tensor(s.index)
            assert s.nnz == t.rows * (t.cols - round(0.75 * t.cols))
        ref = train(seed, device="cpu", staged=True, **kw)
        assert abs(p.sparsity() - ref[2].sparsity()) < 1e-12
    # bfloat16 (float16 Adam would need a loss scaler: its eps underflows)
    m, o, p = train(seed, device="cuda", dtype=torch.bfloat16, sensing="activations",
                    correction="full", observe_window=2)
    assert all(e.param.dtype == torch.bfloat16 and e.param.is_cuda for e in p._entries)


# --- gradients ------------------------------------------------------------------------------

def _grads_after_event(mode, staged):
    seed = 11
    torch.manual_seed(seed)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    p = csprune.torch.ModulePruner(model, opt, final_sparsity=0.5, end_step=-1,
                                   granularity="row", mask_gradients=mode, staged=staged)
    p.step()  # one-shot pruning at step 0
    g = torch.Generator().manual_seed(3)
    x, y = batch(g)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    return model, p


@pytest.mark.parametrize("staged", [False, True])
def test_gradient_hooks_mask_before_clipping(staged):
    model, p = _grads_after_event("hook", staged)
    ref_model, ref = _grads_after_event("off", staged)
    masked_norm2 = unmasked_norm2 = 0.0
    for name, q in model.named_parameters():
        r = dict(ref_model.named_parameters())[name]
        if name in p.names:
            mask = p.mask(name)
            assert (q.grad[~mask] == 0).all()
            assert torch.equal(q.grad[mask], r.grad[mask])
            assert (r.grad[~mask] != 0).any()
            masked_norm2 += float((r.grad.double()[mask] ** 2).sum())
        else:
            masked_norm2 += float((r.grad.double() ** 2).sum())
        unmasked_norm2 += float((r.grad.double() ** 2).sum())
    total = nn.utils.clip_grad_norm_(model.parameters(), 1e-3)
    assert float(total) == pytest.approx(masked_norm2 ** 0.5, rel=1e-5)
    assert float(total) < 0.99 * unmasked_norm2 ** 0.5


@pytest.mark.parametrize("staged", [False, True])
def test_explicit_gradient_masking(staged):
    model, p = _grads_after_event("call", staged)
    mask = p.mask("fc1.weight")
    assert (model.fc1.weight.grad[~mask] != 0).any()  # no hooks: not masked yet
    before = model.fc1.weight.grad[mask].clone()
    p.mask_gradients()
    assert (model.fc1.weight.grad[~mask] == 0).all()
    assert torch.equal(model.fc1.weight.grad[mask], before)
    # a new gradient buffer (zero_grad(set_to_none=True)) is followed
    model.zero_grad(set_to_none=True)
    model(torch.randn(4, 12)).sum().backward()
    p.mask_gradients()
    assert (model.fc1.weight.grad[~mask] == 0).all()
    with pytest.raises(ValueError, match="mask_gradients must be one of"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5, end_step=-1,
                                   mask_gradients="yes")


def test_gradient_hooks_are_removed_on_close():
    model = Net()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, end_step=-1)
    p.step()
    p.close()
    model(torch.randn(4, 12)).sum().backward()
    assert (model.fc1.weight.grad != 0).all()


# --- construction checks ------------------------------------------------------------------

def test_replaced_parameter_is_refused():
    model = Net()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, end_step=10, frequency=2)
    p.step()
    model.fc2.weight = nn.Parameter(torch.randn(16, 32))
    with pytest.raises(RuntimeError, match="fc2.weight was replaced by another object"):
        p.step()
    with pytest.raises(RuntimeError, match="fc2.weight was replaced"):
        p.mask_gradients()


def test_missing_end_step_warns_about_one_shot_pruning():
    with pytest.warns(UserWarning, match="no end_step.*prunes to 0.9 at once"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        csprune.torch.ModulePruner(Net(), final_sparsity=0.9, end_step=-1)  # meant
        csprune.torch.ModulePruner(Net(), final_sparsity=0.9, end_step=100)


def test_eval_mode_model_warns_and_the_event_says_why():
    model = Net().eval()
    with pytest.warns(UserWarning, match="eval\\(\\) mode"):
        p = csprune.torch.ModulePruner(model, final_sparsity=0.5, end_step=4, frequency=2,
                                       initial_sparsity=0.25,  # the first event prunes
                                       granularity="row", sensing="activations")
    model(torch.randn(4, 12))
    with pytest.raises(csp.CspError, match="no activations of fc1.weight, fc2.weight, "
                       "fc3.weight were observed.*model.train"):
        p.step()
    model.train()
    model(torch.randn(4, 12))
    assert p.step() == csp.Status.PRUNED


def test_attention_out_proj_is_fed():
    """nn.MultiheadAttention never calls out_proj; its input is recomputed."""
    mha = nn.MultiheadAttention(8, 2)
    p = csprune.torch.ModulePruner(mha, final_sparsity=0.5, end_step=4, frequency=2,
                                   granularity="row", sensing="activations")
    assert p.names == ["in_proj_weight", "out_proj.weight"] and p.unobserved == []
    x = torch.randn(5, 3, 8)
    mha(x, x, x)
    assert p.observed_rows == {"in_proj_weight": 15, "out_proj.weight": 15}


# --- reading ------------------------------------------------------------------------------

def test_summary_and_event_callbacks():
    infos = []
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    p = csprune.torch.ModulePruner(model, opt, final_sparsity=0.5, begin_step=1, end_step=5,
                                   frequency=2, granularity="row", on_event=infos.append)
    extra = []
    handle = p.add_event_callback(lambda info: extra.append(info.step))
    for step in range(8):
        model(torch.randn(4, 12)).sum().backward()
        opt.step()
        p.step()
        if step == 3:
            handle.remove()
    assert [i.step for i in infos] == [1, 3, 5] and extra == [1, 3]
    last = infos[-1]
    assert last.names == tuple(p.names) and last.sparsity == pytest.approx(0.5, abs=0.01)
    sc = last.scalars()
    assert sc["csp/fc1.weight/sparsity"] == 0.5 and sc["csp/fc1.weight/target"] == 0.5
    assert sc["csp/sparsity"] == last.sparsity
    text = p.summary()
    print(text)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["parameter", "shape", "device/dtype"]
    row = next(ln for ln in lines if ln.startswith("fc1.weight"))
    assert row.split() == ["fc1.weight", "32x12", "cpu/float32", "row", "identity", "0.500",
                           "0.500", "192/384"]
    assert lines[-2].split()[0] == "total" and "%d/%d" % (p.nnz(), 384 + 512 + 48) in lines[-2]
    with pytest.raises(TypeError, match="callable"):
        p.add_event_callback(3)
