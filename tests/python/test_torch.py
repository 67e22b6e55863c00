"""csprune.torch: pruning an nn.Module during training."""

import io
import os
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
from xtx_ref import assert_xtx  # noqa: E402

torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 32)
        self.norm = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


def data(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    return x, y


def train_step(model, opt, x, y):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def test_adam_reaches_the_scheduled_sparsity_and_pruned_weights_stay_zero():
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = data()
    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.8, begin_step=5, end_step=45,
                                    frequency=10)
    assert pruner.names == ["fc1.weight", "fc2.weight"]  # no biases, no norms
    params = dict(model.named_parameters())
    assert all(not pruner.pruner.companions(i) for i in range(2))  # Adam state is lazy
    sched_targets = {}
    prev = {n: torch.ones_like(params[n], dtype=torch.bool) for n in pruner.names}
    first = None
    for step in range(60):
        loss = train_step(model, opt, x, y)
        first = first if first is not None else loss
        st = pruner.step()
        assert st == (csp.Status.PRUNED if step in (5, 15, 25, 35, 45) else csp.Status.MASKED)
        for name, mask in pruner.masks().items():
            w = params[name]
            assert mask.shape == w.shape and mask.dtype == torch.bool
            assert (w[~mask] == 0).all()            # exactly zero, every step
            state = opt.state[w]
            assert (state["exp_avg"][~mask] == 0).all()
            assert (state["exp_avg_sq"][~mask] == 0).all()
            assert not (mask & ~prev[name]).any()    # monotone
            prev[name] = mask
        if st == csp.Status.PRUNED:
            sched_targets[step] = [s.target_sparsity for s in pruner.stats()]
    assert all(len(pruner.pruner.companions(i)) == 2 for i in range(2))
    assert sched_targets[45] == [0.8, 0.8]
    assert sched_targets[25] == [pytest.approx(pruner.schedule.target(25))] * 2
    for s in pruner.stats():
        assert s.nnz == s.numel - round(0.8 * s.numel)
    assert pruner.sparsity() == pytest.approx(0.8, abs=1e-3)
    assert loss < first
    assert pruner.last_step == 59


def test_sgd_momentum_is_a_companion_and_row_granularity():
    torch.manual_seed(1)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = data(1)
    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.5, granularity="row",
                                    frequency=1)
    for _ in range(3):
        train_step(model, opt, x, y)
        pruner.step()
    w = model.fc1.weight
    mask = pruner.mask("fc1.weight")
    assert (mask.sum(1) == 6).all()  # 6 of 12 kept in every row
    assert (opt.state[w]["momentum_buffer"][~mask] == 0).all()
    assert [len(pruner.pruner.companions(i)) for i in range(2)] == [1, 1]


def test_sgd_without_momentum_has_no_companion():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.5, frequency=1)
    train_step(model, opt, *data())
    pruner.step()
    assert not pruner.pruner.companions(0)


def _run(model, opt, pruner, x, y, steps):
    for _ in range(steps):
        train_step(model, opt, x, y)
        pruner.step()


def _reload(model, opt, pruner):
    """torch.save then torch.load of the three states; the pruner's with
    weights_only=True: it is plain data that loads without unpickling code
    (torch 1.13's weights_only refuses the optimizer's float options)."""
    buf, pbuf = io.BytesIO(), io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    torch.save(pruner.state_dict(), pbuf)
    buf.seek(0)
    pbuf.seek(0)
    return dict(torch.load(buf), pruner=torch.load(pbuf, weights_only=True))


def _same_state(model, opt, pruner, model2, opt2, pruner2):
    assert pruner2.digest() == pruner.digest()
    assert pruner2.last_step == pruner.last_step
    for (n, a), (_, b) in zip(model.named_parameters(), model2.named_parameters()):
        assert torch.equal(a, b), n
    for a, b in zip(model.parameters(), model2.parameters()):
        for key, v in opt.state[a].items():
            assert torch.equal(v, opt2.state[b][key]), key

    def strip(st):
        return {k: v for k, v in vars(st).items() if not k.endswith("seconds")}
    assert [strip(s) for s in pruner2.stats()] == [strip(s) for s in pruner.stats()]
    assert strip(pruner2.step_stats()) == strip(pruner.step_stats())


def test_state_dict_round_trip_resumes_bit_for_bit():
    x, y = data(2)
    kw = dict(final_sparsity=0.9, end_step=40, frequency=5, granularity="row")
    torch.manual_seed(3)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    pruner = csprune.torch.ModulePruner(model, opt, **kw)
    _run(model, opt, pruner, x, y, 22)
    ckpt = _reload(model, opt, pruner)
    sd = ckpt["pruner"]
    assert sorted(sd) == ["checkpoint", "format", "names", "step", "version"]
    assert sd["names"] == ["fc1.weight", "fc2.weight"] and sd["version"] == 3
    assert sd["step"] == 22
    assert sd["checkpoint"].dtype == torch.uint8
    assert bytes(sd["checkpoint"].numpy()) == pruner.pruner.save()
    _run(model, opt, pruner, x, y, 22)

    torch.manual_seed(99)  # different init: everything must come from the checkpoint
    model2 = Net()
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    pruner2 = csprune.torch.ModulePruner(model2, opt2, **kw)
    pruner2.load_state_dict(sd)
    assert pruner2.last_step == 21
    _run(model2, opt2, pruner2, x, y, 22)  # the step counter goes on from 22
    _same_state(model, opt, pruner, model2, opt2, pruner2)


def test_load_state_dict_errors():
    model = Net()
    pruner = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=1)
    pruner.step()
    sd = pruner.state_dict()
    pruner.step()
    before = (pruner.last_step, pruner.digest())
    with pytest.raises(ValueError, match="version 2"):
        pruner.load_state_dict(dict(sd, version=1))
    with pytest.raises(ValueError, match="ModulePruner"):
        pruner.load_state_dict(dict(sd, format="csp.Pruner"))
    with pytest.raises(ValueError, match="uint8"):
        pruner.load_state_dict(dict(sd, checkpoint=sd["checkpoint"].to(torch.int64)))
    bad = sd["checkpoint"].clone()
    bad[len(bad) // 2] ^= 1
    with pytest.raises(csp.CspError) as e:
        pruner.load_state_dict(dict(sd, checkpoint=bad))
    assert e.value.status == csp.Status.E_CORRUPT and "csp_pruner_load" in e.value.message
    with pytest.raises(csp.CspError) as e:
        pruner.load_state_dict(dict(sd, checkpoint=sd["checkpoint"][:-8]))
    assert e.value.status == csp.Status.E_CORRUPT
    assert (pruner.last_step, pruner.digest()) == before  # refused: nothing changed
    # other parameters: the library's message, with both name lists
    other = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=1,
                                   overrides={"fc2.weight": {"prune": False}})
    with pytest.raises(csp.CspError) as e:
        other.load_state_dict(sd)
    assert e.value.status == csp.Status.E_SHAPE
    assert "the checkpoint holds 2 tensors" in e.value.message
    assert "['fc1.weight', 'fc2.weight']" in e.value.message
    # other options: the library names the difference
    other = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=1, granularity="row")
    with pytest.raises(csp.CspError) as e:
        other.load_state_dict(sd)
    assert e.value.status == csp.Status.E_STATE and "fc1.weight" in e.value.message
    assert other.last_step is None
    pruner.load_state_dict(sd)  # a rollback is a load too
    assert pruner.last_step == 0 and pruner.step() == csp.Status.PRUNED
    assert pruner.last_step == 1 and pruner.step_stats().steps == 2


class Zoo(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.conv3 = nn.Conv3d(1, 2, 2)
        self.lstm = nn.LSTM(8, 6)
        self.ln = nn.LayerNorm(6)
        self.fc = nn.Linear(6, 2)
        self.fc.weight = nn.Parameter(self.fc.weight.detach().clone())
        self.head = self.fc  # shared module: registered once


def test_default_selection_and_overrides():
    model = Zoo()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=1)
    assert p.names == ["emb.weight", "conv.weight", "conv3.weight", "lstm.weight_ih_l0",
                       "lstm.weight_hh_l0", "fc.weight"]
    p.step()
    c3 = model.conv3.weight  # rank 5: folded, same flat order
    assert p.mask("conv3.weight").shape == c3.shape
    assert torch.equal(p.mask("conv3.weight"), c3 != 0)
    p.close()

    model = Zoo()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=1, overrides={
        "lstm.*": {"granularity": "row", "sparsity": 0.25},
        "lstm.weight_hh_l0": {"sparsity": 0.4},
        "emb.weight": {"exclude": True},
        "conv.weight": {"prune": False},
        "fc.bias": {},  # an exact name chooses a parameter the default skips
    })
    assert "conv.weight" not in p.names and "fc.bias" in p.names
    assert "lstm.bias_ih_l0" not in p.names  # patterns only tune chosen parameters
    p.step()
    st = {s.name: s for s in p.stats()}
    assert st["emb.weight"].excluded and st["emb.weight"].nnz == 80
    assert (model.emb.weight != 0).all()
    assert st["lstm.weight_ih_l0"].granularity is csp.Granularity.ROW
    assert st["lstm.weight_ih_l0"].target_sparsity == 0.25
    assert st["lstm.weight_hh_l0"].target_sparsity == 0.4
    assert st["fc.bias"].nnz == 1


def test_override_errors():
    with pytest.raises(ValueError, match="unknown keys"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5, overrides={"fc1.weight": {"amount": 1}})
    with pytest.raises(ValueError, match="match no parameter"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5, overrides={"fc9.*": {"sparsity": 0.1}})
    with pytest.raises(ValueError, match="granularity"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5,
                               overrides={"fc1.weight": {"granularity": "block"}})
    with pytest.raises(ValueError, match="final_sparsity"):
        csprune.torch.ModulePruner(Net())
    with pytest.raises(TypeError, match="nn.Module"):
        csprune.torch.ModulePruner(object(), final_sparsity=0.5)


def test_parameters_that_would_need_a_copy_are_staged_or_refused():
    # staged=False: only what can be viewed in place
    model = Net()
    model.fc1.weight = nn.Parameter(torch.randn(12, 32).t())  # non-contiguous view
    with pytest.raises(ValueError, match="fc1.weight.*not contiguous"):
        csprune.torch.ModulePruner(model, final_sparsity=0.5, end_step=-1, staged=False)
    with pytest.raises(TypeError, match="fc1.weight.*float16"):
        csprune.torch.ModulePruner(Net().half(), final_sparsity=0.5, end_step=-1, staged=False)
    with pytest.raises(TypeError, match="bfloat16"):
        csprune.torch.ModulePruner(Net().to(torch.bfloat16), final_sparsity=0.5, end_step=-1,
                                   staged=False)
    # the default stages them (tests/python/test_torch_devices.py)
    for m in (model, Net().half(), Net().to(torch.bfloat16)):
        p = csprune.torch.ModulePruner(m, final_sparsity=0.5, end_step=-1)
        assert p.staged
        assert p.step() == csp.Status.PRUNED
        assert (m.fc1.weight == 0).sum() == 12 * 32 // 2
    # another device without data (the meta device)
    meta = Net().to("meta")
    with pytest.raises(ValueError, match="device 'meta'"):
        csprune.torch.ModulePruner(meta, final_sparsity=0.5, end_step=-1)
    # float64 is viewed as well
    p = csprune.torch.ModulePruner(Net().double(), final_sparsity=0.5, frequency=1, end_step=-1)
    assert not p.staged
    assert p.step() == csp.Status.PRUNED


def test_reallocated_parameters_and_state_are_followed():
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = data()
    pruner = csprune.torch.ModulePruner(model, opt, final_sparsity=0.5, frequency=1)
    train_step(model, opt, x, y)
    pruner.step()
    # the host gives a parameter new memory: the view follows it
    model.fc1.weight.data = torch.randn(32, 12)
    new_ptr = model.fc1.weight.data_ptr()
    train_step(model, opt, x, y)
    pruner.step()
    assert pruner.pruner.tensor(0).data_ptr == new_ptr
    mask = pruner.mask("fc1.weight")
    assert (model.fc1.weight[~mask] == 0).all()
    # load_state_dict replaces the optimizer's state tensors: followed too
    opt.load_state_dict(opt.state_dict())
    train_step(model, opt, x, y)
    pruner.step()
    assert (opt.state[model.fc1.weight]["exp_avg"][~mask] == 0).all()
    comp = pruner.pruner.companions(0)[0]
    assert comp.data_ptr == opt.state[model.fc1.weight]["exp_avg"].data_ptr()
    # ... but not into a layout that would need a copy
    model.fc2.weight.data = model.fc2.weight.data.half()
    with pytest.raises(ValueError, match="fc2.weight is now torch.float16.*staged=True"):
        pruner.step()


def test_close_and_context_manager():
    model = Net()
    with csprune.torch.ModulePruner(model, final_sparsity=0.5, observe=True) as p:
        assert model.fc1._forward_hooks
    assert p.closed and not model.fc1._forward_hooks
    assert p.schedule.closed and p.ctx.closed  # made here, closed here
    with pytest.raises(ValueError, match="closed"):
        p.step()
    with pytest.raises(ValueError, match="closed"):
        p.state_dict()
    p.close()
    assert repr(p) == "<csprune.torch.ModulePruner closed>"


def test_shared_context_and_schedule_object():
    with csp.Context(seed=3) as ctx:
        sched = csp.Schedule.constant(ctx, 0.5, frequency=2)
        p = csprune.torch.ModulePruner(Net(), schedule=sched)
        assert p.ctx is ctx and p.step() == csp.Status.PRUNED
    assert p.closed  # closing the context closed the pruner
    with pytest.raises(ValueError, match="another context"):
        with csp.Context() as a, csp.Context() as b:
            csprune.torch.ModulePruner(Net(), schedule=csp.Schedule.constant(a, 0.5), ctx=b)


def test_callback_schedule_and_its_errors():
    def fn(step):
        if step > 2:
            raise KeyError("no target")
        return 0.25
    model = Net()
    p = csprune.torch.ModulePruner(model, schedule=fn, final_sparsity=0.25, frequency=1)
    assert p.step() == csp.Status.PRUNED
    before = model.fc1.weight.detach().clone()
    p.step()
    p.step()
    with pytest.raises(csp.CspError) as e:
        p.step()
    assert e.value.status == csp.Status.E_CALLBACK and isinstance(e.value.__cause__, KeyError)
    assert torch.equal(model.fc1.weight, before)


def test_core_pruner_views_torch_tensors_in_place(ctx):
    w = torch.arange(1.0, 9.0)
    pruner = csp.Pruner(ctx, csp.Schedule.constant(ctx, 0.5, frequency=1))
    i = pruner.add_tensor(w)
    assert pruner.tensor(i).data_ptr == w.data_ptr()
    pruner.step(0)
    assert w.tolist() == [0, 0, 0, 0, 5, 6, 7, 8]


# --- activation hooks -------------------------------------------------------------------

class Seq(nn.Module):
    def __init__(self, batch_first=False, layers=1, bidirectional=False):
        super().__init__()
        self.lstm = nn.LSTM(5, 7, num_layers=layers, batch_first=batch_first,
                            bidirectional=bidirectional)
        self.fc = nn.Linear(7 * (2 if bidirectional else 1), 3)

    def forward(self, x, hx=None):
        out, _ = self.lstm(x, hx) if hx is not None else self.lstm(x)
        if isinstance(out, nn.utils.rnn.PackedSequence):
            out = nn.utils.rnn.pad_packed_sequence(out)[0]
        return self.fc(out)


def observed(model, run):
    seen = {}
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, observe=True,
                               observer=lambda n, x: seen.setdefault(n, []).append(x.clone()))
    run()
    return p, {n: torch.cat(v) for n, v in seen.items()}


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_lstm_and_linear_hooks_padded(batch_first, with_h0):
    torch.manual_seed(4)
    model = Seq(batch_first)
    x = torch.randn(3, 6, 5) if batch_first else torch.randn(6, 3, 5)
    hx = (torch.randn(1, 3, 7), torch.randn(1, 3, 7)) if with_h0 else None
    p, seen = observed(model, lambda: model(x, hx))
    model.eval()  # the reference below must not be observed
    out, _ = model.lstm(x, hx) if hx is not None else model.lstm(x)
    h0 = hx[0][0] if with_h0 else torch.zeros(3, 7)
    if batch_first:
        prev = torch.cat([h0.unsqueeze(1), out[:, :-1]], 1)
    else:
        prev = torch.cat([h0.unsqueeze(0), out[:-1]], 0)
    assert torch.equal(seen["lstm.weight_ih_l0"], x.reshape(-1, 5))
    assert torch.allclose(seen["lstm.weight_hh_l0"], prev.reshape(-1, 7))
    assert torch.equal(seen["fc.weight"], out.detach().reshape(-1, 7))
    assert p.observed_rows == {"lstm.weight_ih_l0": 18, "lstm.weight_hh_l0": 18,
                               "fc.weight": 18}


@pytest.mark.parametrize("with_h0", [False, True])
def test_lstm_hook_packed(with_h0):
    torch.manual_seed(5)
    model = Seq()
    lengths = torch.tensor([4, 6, 2])
    padded = torch.randn(6, 3, 5)
    packed = nn.utils.rnn.pack_padded_sequence(padded, lengths, enforce_sorted=False)
    hx = (torch.randn(1, 3, 7), torch.randn(1, 3, 7)) if with_h0 else None
    p, seen = observed(model, lambda: model(packed, hx))
    model.eval()
    out, _ = model.lstm(packed, hx) if hx is not None else model.lstm(packed)
    out_padded = nn.utils.rnn.pad_packed_sequence(out)[0]
    h0 = hx[0][0] if with_h0 else torch.zeros(3, 7)
    prev_padded = torch.cat([h0.unsqueeze(0), out_padded[:-1]], 0)
    want = nn.utils.rnn.pack_padded_sequence(prev_padded, lengths, enforce_sorted=False).data
    assert torch.equal(seen["lstm.weight_ih_l0"], packed.data)
    assert torch.allclose(seen["lstm.weight_hh_l0"], want)
    assert p.observed_rows["lstm.weight_hh_l0"] == 12


def test_hooks_skip_eval_and_report_what_they_cannot_see():
    model = Seq()
    p, seen = observed(model, lambda: (model.eval(), model(torch.randn(4, 2, 5))))
    assert seen == {} and sum(p.observed_rows.values()) == 0
    # every layer of an LSTM is visible now; a projection is not
    p2 = csprune.torch.ModulePruner(Seq(layers=2), final_sparsity=0.5, end_step=10,
                                    observe=True)
    assert p2.unobserved == []
    proj = nn.LSTM(5, 6, proj_size=3)
    with pytest.warns(UserWarning, match="weight_hr_l0"):
        p3 = csprune.torch.ModulePruner(proj, final_sparsity=0.5, end_step=10, observe=True,
                                        observer=lambda n, x: None)
    assert p3.unobserved == ["weight_hr_l0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        csprune.torch.ModulePruner(Seq(), final_sparsity=0.5, end_step=10, observe=True)


def test_observe_checks_the_shape():
    p = csprune.torch.ModulePruner(Net(), final_sparsity=0.5)
    p.observe("fc1.weight", torch.randn(4, 12, dtype=torch.float64))
    assert p.observed_rows["fc1.weight"] == 4
    with pytest.raises(ValueError, match="rows x 12"):
        p.observe("fc1.weight", torch.randn(4, 11))


def test_masks_match_numpy_reference_on_a_module():
    torch.manual_seed(6)
    model = Net()
    w0 = model.fc1.weight.detach().numpy().copy()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.3, frequency=1)
    p.step()
    order = np.lexsort((-np.arange(w0.size), np.abs(w0.ravel())))
    want = np.ones(w0.size, bool)
    want[order[:round(0.3 * w0.size)]] = False
    assert np.array_equal(p.mask("fc1.weight").numpy().ravel(), want)


# --- CSP ------------------------------------------------------------------------------------

class Speech(nn.Module):
    """The shape of the speech model: LSTM over frames, mean-pooled, Linear."""
    def __init__(self, n_in=6, hidden=8, n_out=3):
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, n_out)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out.mean(1))


def speech_data(seed=0, n=16, frames=5, n_in=6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, frames, n_in, generator=g)
    y = (x[:, :, 0].mean(1) > 0).long() + (x[:, :, 1].mean(1) > 0.3).long()
    return x, y


def test_hooks_feed_activation_sensing_exactly_what_method_md_says():
    torch.manual_seed(7)
    model = Speech()
    x, _ = speech_data(1)
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=4, granularity="row",
                               sensing="activations", observe_window=2)
    assert model.lstm._forward_hooks and model.fc._forward_hooks  # observe=None: auto
    assert [p.pruner.sensing_kind(i) for i in range(3)] == [csp.SensingKind.ACTIVATIONS] * 3
    # events 0, 4, 8, ...: the passes of steps 0, 3, 4, 7, 8 observe
    assert [t for t in range(9) if p.wants_observe(t)] == [0, 3, 4, 7, 8]
    fed = 0
    for t in range(3):
        assert p.wants_observe() == (t == 0)
        model(x)
        if t == 0:
            # what the library holds after the pass, against the model's own tensors
            model.eval()  # the reference pass must not be observed
            with torch.no_grad():
                out, _ = model.lstm(x)
            model.train()
            prev = torch.cat([torch.zeros(x.shape[0], 1, 8), out[:, :-1]], 1)
            refs = {"lstm.weight_ih_l0": x.reshape(-1, 6), "lstm.weight_hh_l0":
                    prev.reshape(-1, 8), "fc.weight": out.mean(1)}
            for name, X in refs.items():
                acc = p.sensing(name).read_accumulator()
                n = X.shape[1]
                X = X.detach().double().numpy()
                assert_xtx(acc[:-1].reshape(n, n), X)
                assert acc[-1] == X.shape[0]
            fed = p.observed_rows["lstm.weight_ih_l0"]
            assert fed == 80 and p.observed_rows["fc.weight"] == 16
        p.step()
        # outside the window the hooks do nothing: no rows counted, none observed
        assert p.observed_rows["lstm.weight_ih_l0"] == fed
        assert all(s.observed_rows == 0 for s in p.stats())  # reset by the event at 0
    model(x)  # the pass of step 3: in the window of the event at 4
    assert p.observed_rows["lstm.weight_ih_l0"] == 160
    assert [s.observed_rows for s in p.stats()] == [80, 80, 16]
    model.eval()
    model(x)  # eval passes never observe
    assert [s.observed_rows for s in p.stats()] == [80, 80, 16]


def test_adam_with_activation_sensing_reaches_exact_sparsity():
    torch.manual_seed(8)
    model = Speech()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = speech_data(2)
    events = [2, 7, 12, 17, 22]
    p = csprune.torch.ModulePruner(model, opt, final_sparsity=0.75, begin_step=2, end_step=22,
                               frequency=5, granularity="row", sensing="activations",
                               correction="blend", alpha=0.2, observe_window=3)
    params = dict(model.named_parameters())
    first = None
    for step in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        st = p.step()
        assert st == (csp.Status.PRUNED if step in events else csp.Status.MASKED)
        for name, mask in p.masks().items():
            w = params[name]
            assert (w[~mask] == 0).all()  # exactly zero at every step
            assert (opt.state[w]["exp_avg"][~mask] == 0).all()
            assert (opt.state[w]["exp_avg_sq"][~mask] == 0).all()
        if st == csp.Status.PRUNED:
            target = p.schedule.target(step)
            for s in p.stats():
                cols = params[s.name].shape[1]
                assert (p.mask(s.name).sum(1) == cols - round(target * cols)).all(), s.name
                assert s.sensing == csp.SensingKind.ACTIVATIONS and s.last_event == step
                assert s.observed_rows == 0  # consumed by the event
    for s in p.stats():
        cols = params[s.name].shape[1]
        assert s.nnz == s.numel - s.numel // cols * round(0.75 * cols)
        assert s.events == 5 and s.correction == csp.Correction.BLEND
    zeros = sum(params[n].shape[0] * round(0.75 * params[n].shape[1]) for n in p.names)
    assert p.sparsity() == pytest.approx(zeros / sum(params[n].numel() for n in p.names),
                                         rel=1e-12)  # row-balanced
    # the passes of the 3 steps up to each event observed (steps 0-2 for the first)
    assert p.observed_rows["fc.weight"] == 16 * 3 * len(events)
    assert p.step_stats().events == 5 and loss.item() < first


def test_csp_options_and_per_parameter_overrides():
    model = Net()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=1, granularity="row",
                               sensing="gaussian", sensing_rho=0.5, overrides={
                                   "fc1.weight": {"correction": "full", "sensing_rho": 0.25},
                                   "fc2.weight": {"sensing": "identity"}})
    assert not model.fc1._forward_hooks  # no activations sensing: no hooks
    assert p.sensing("fc1.weight").m == 3 and p.sensing("fc2.weight") is None
    p.step()
    st = {s.name: s for s in p.stats()}
    assert (st["fc1.weight"].sensing, st["fc1.weight"].correction) == \
        (csp.SensingKind.GAUSSIAN, csp.Correction.FULL)
    assert st["fc2.weight"].sensing == csp.SensingKind.IDENTITY
    assert (p.mask("fc1.weight").sum(1) == 6).all()
    assert p.step_stats().events == 1


def test_csp_option_errors():
    # CSP needs row (or N:M) granularity: said in Python terms
    with pytest.raises(ValueError, match="parameter fc1.weight: sensing='gaussian'.*"
                       r"granularity='row' \(or 'nm'\), not 'tensor'"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5, sensing="gaussian")
    with pytest.raises(ValueError, match="parameter fc2.weight: sensing='activations'.*not "
                       "'global'"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5, granularity="row",
                                   overrides={"fc2.weight": {"sensing": "activations",
                                                             "granularity": "global"}})
    with pytest.raises(csp.CspError, match="parameter fc1.weight: .*sensing.rho = 0"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5, granularity="row",
                               overrides={"fc1.weight": {"sensing_rho": 0}})
    with pytest.raises(ValueError, match="unknown sensing"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5, sensing="activation")
    with pytest.raises(ValueError, match="unknown keys"):
        csprune.torch.ModulePruner(Net(), final_sparsity=0.5,
                               overrides={"fc1.weight": {"observe_window": 3}})
    # activations on weights no hook can feed (the embedding is pruned by magnitude)
    with pytest.raises(ValueError, match="of conv3.weight, which no forward hook"):
        csprune.torch.ModulePruner(Zoo(), final_sparsity=0.5, granularity="row",
                                   sensing="activations")
    with pytest.raises(ValueError, match="grouped convolution"):
        csprune.torch.ModulePruner(nn.Conv2d(4, 4, 3, groups=2), final_sparsity=0.5,
                                   granularity="row", sensing="activations")
    with pytest.raises(ValueError, match="emb.weight.*its input is indices"):
        csprune.torch.ModulePruner(Zoo(), final_sparsity=0.5, granularity="row",
                                   sensing="activations", overrides={
                                       "emb.weight": {"sensing": "activations"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the other unobserved weights need no inputs
        p = csprune.torch.ModulePruner(Zoo(), final_sparsity=0.5, granularity="row",
                                       end_step=10, sensing="activations", overrides={
                                           "conv3.weight": {"sensing": "gaussian"}})
    assert p.unobserved == ["emb.weight", "conv3.weight"]
    assert p.stats()[0].sensing == csp.SensingKind.IDENTITY  # emb: by magnitude


def test_activation_sensing_fed_by_hand():
    model = Net()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=2, granularity="row",
                               sensing="activations", observe=False)
    assert not model.fc1._forward_hooks
    model(torch.randn(4, 12))
    with pytest.raises(csp.CspError) as e:  # an event with nothing observed
        p.step()
    assert e.value.status == csp.Status.E_STATE
    x = torch.randn(8, 12, dtype=torch.float64)  # converted: it is only read
    p.observe("fc1.weight", x)
    p.observe("fc2.weight", torch.randn(32, 8).t())  # not contiguous: converted too
    with pytest.raises(ValueError, match="device 'meta'"):
        p.observe("fc1.weight", torch.empty(2, 12, device="meta"))
    with pytest.raises(csp.CspError) as e:
        p.observe("fc1.weight", torch.full((1, 12), float("nan")))
    assert e.value.status == csp.Status.E_NONFINITE and "fc1.weight" in e.value.message
    assert [s.observed_rows for s in p.stats()] == [8, 8]  # the NaN batch was refused
    assert p.step() == csp.Status.PRUNED
    assert [s.observed_rows for s in p.stats()] == [0, 0]


def test_csp_state_dict_round_trip_resumes_bit_for_bit():
    """Activations sensing + FISTA: the state is saved mid-way through an
    observation window (the accumulators hold rows) after events that left
    FISTA's warm-start lambdas; both come back through the checkpoint."""
    x, y = speech_data(3)
    kw = dict(final_sparsity=0.8, end_step=20, frequency=5, granularity="row",
              sensing="activations", solver="fista", observe_window=3,
              overrides={"fc.weight": {"sensing": "gaussian", "correction": "full"}})

    def run(model, opt, pruner, steps):
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            pruner.step()

    torch.manual_seed(9)
    model = Speech()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    pruner = csprune.torch.ModulePruner(model, opt, **kw)
    run(model, opt, pruner, 14)  # steps 0..13: events 0, 5, 10; 13 observed for 15
    rows = [s.observed_rows for s in pruner.stats()]
    assert rows[:2] == [80, 80] and pruner.stats()[0].events == 3
    ckpt = _reload(model, opt, pruner)
    run(model, opt, pruner, 10)

    torch.manual_seed(10)
    model2 = Speech()
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    pruner2 = csprune.torch.ModulePruner(model2, opt2, **kw)
    pruner2.load_state_dict(ckpt["pruner"])
    assert pruner2.last_step == 13
    assert [s.observed_rows for s in pruner2.stats()] == rows  # the accumulators came back
    run(model2, opt2, pruner2, 10)
    _same_state(model, opt, pruner, model2, opt2, pruner2)
    assert pruner.stats()[0].events == 5 and pruner.stats()[0].solver == csp.SolverMethod.FISTA


def test_hooks_only_for_the_weights_that_need_them():
    model = Speech()
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=1, granularity="row",
                               sensing="activations", overrides={
                                   "fc.weight": {"sensing": "gaussian"},
                                   "lstm.weight_hh_l0": {"sensing": "identity"}})
    assert not model.fc._forward_hooks and model.lstm._forward_hooks
    model(speech_data()[0])
    assert p.observed_rows == {"lstm.weight_ih_l0": 80, "lstm.weight_hh_l0": 0,
                               "fc.weight": 0}
    assert p.step() == csp.Status.PRUNED
    seen = []  # an observer sees every weight the hooks can feed
    p2 = csprune.torch.ModulePruner(model, final_sparsity=0.5, frequency=1, granularity="row",
                                sensing="activations", observer=lambda n, x: seen.append(n),
                                overrides={"fc.weight": {"sensing": "gaussian"}})
    model(speech_data()[0])
    assert sorted(seen) == ["fc.weight", "lstm.weight_hh_l0", "lstm.weight_ih_l0"]
    assert p2.step() == csp.Status.PRUNED
