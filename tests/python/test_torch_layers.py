"""csprune.torch on every common layer: the inputs the forward hooks hand to
activation sensing against independent references, and per layer type a
training run that reaches the exact target with pruned weights zero at every
step and resumes bit for bit."""

import copy
import os
import random

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


def observed(model, run, **kw):
    seen = {}
    p = csprune.torch.ModulePruner(model, final_sparsity=0.5, end_step=10, observe=True,
                                   observer=lambda n, x: seen.setdefault(n, []).append(
                                       x.clone()), **kw)
    out = run()
    p.close()
    return {n: torch.cat(v) for n, v in seen.items()}, out


def gram(x):
    x = x.double()
    return x.t() @ x


# --- what the hooks feed ----------------------------------------------------------------

@pytest.mark.parametrize("case", ["conv1d", "conv1d_reflect", "conv2d_same", "conv2d_strided"])
def test_conv_patches_are_what_the_weight_multiplies(case):
    torch.manual_seed(fresh_seed())
    conv, shape = {
        "conv1d": (nn.Conv1d(3, 5, 4, stride=2, padding=1, dilation=2), (2, 3, 17)),
        "conv1d_reflect": (nn.Conv1d(3, 5, 3, padding=2, padding_mode="reflect"), (2, 3, 9)),
        "conv2d_same": (nn.Conv2d(2, 4, (3, 2), padding="same"), (2, 2, 6, 7)),
        "conv2d_strided": (nn.Conv2d(2, 4, 3, stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
                           (3, 2, 7, 8)),
    }[case]
    x = torch.randn(*shape)
    seen, out = observed(conv, lambda: conv(x))
    X = seen["weight"]
    W = conv.weight.detach().reshape(conv.out_channels, -1)
    # one row per output position: X W^T + b is the convolution's output
    want = out.detach().movedim(1, -1).reshape(-1, conv.out_channels)
    torch.testing.assert_close(X @ W.t() + conv.bias.detach(), want, rtol=1e-5, atol=1e-5)
    # unbatched input: the same rows
    seen1, out1 = observed(conv, lambda: conv(x[0]))
    assert seen1["weight"].shape[0] == out1[0].numel() == X.shape[0] // shape[0]
    torch.testing.assert_close(seen1["weight"], X[:X.shape[0] // shape[0]])


def _layerwise(rnn, x, lengths=None):
    """Reference: each layer of @p rnn as its own one-layer module with the
    same weights, run one after the other; per sequence when lengths are
    given (no padding). Returns the outputs of each layer, (T, B, D*H) padded
    with zeros (or a list of (T_b, D*H) per sequence)."""
    D = 2 if rnn.bidirectional else 1
    outs = []
    inp = x
    for k in range(rnn.num_layers):
        size = inp[0].shape[-1] if lengths is not None else inp.shape[-1]
        one = type(rnn)(size, rnn.hidden_size, bidirectional=rnn.bidirectional)
        with torch.no_grad():
            for name, _ in one.named_parameters():
                getattr(one, name).copy_(getattr(rnn, name.replace("_l0", "_l%d" % k)))
        if lengths is None:
            inp = one(inp)[0].detach()
        else:
            inp = [one(s.unsqueeze(1))[0][:, 0].detach() for s in inp]
        outs.append(inp)
    assert D in (1, 2)
    return outs


def _prev_rows(h, reverse):
    """h_{t-1} (or h_{t+1}) of (T, B, H), zeros at the edge, as rows."""
    z = torch.zeros_like(h[:1])
    prev = torch.cat([h[1:], z]) if reverse else torch.cat([z, h[:-1]])
    return prev.reshape(-1, h.shape[-1])


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
def test_every_layer_and_direction_of_a_recurrent_layer(kind):
    torch.manual_seed(fresh_seed())
    rnn = kind(4, 5, num_layers=3, bidirectional=True)
    x = torch.randn(6, 2, 4)
    seen, out = observed(rnn, lambda: rnn(x))
    ref = _layerwise(rnn, x)
    torch.testing.assert_close(ref[-1], out[0].detach(), rtol=1e-5, atol=1e-6)
    H = 5
    for k in range(3):
        src = x if k == 0 else ref[k - 1]
        for sfx in ("", "_reverse"):
            torch.testing.assert_close(seen["weight_ih_l%d%s" % (k, sfx)],
                                       src.reshape(-1, src.shape[-1]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(seen["weight_hh_l%d" % k],
                                   _prev_rows(ref[k][..., :H], False), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(seen["weight_hh_l%d_reverse" % k],
                                   _prev_rows(ref[k][..., H:], True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU])
def test_recurrent_layer_packed_with_initial_state(kind):
    """Packed sequences of different lengths: the reverse direction starts at
    each sequence's own last frame. Compared as Gram matrices (the row order
    of packed data is not the reference's)."""
    torch.manual_seed(fresh_seed())
    rnn = kind(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    lengths = torch.tensor([5, 2, 4])
    seqs = [torch.randn(int(n), 3) for n in lengths]
    padded = nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    packed = nn.utils.rnn.pack_padded_sequence(padded, lengths, batch_first=True,
                                               enforce_sorted=False)
    seen, _ = observed(rnn, lambda: rnn(packed))
    ref = _layerwise(rnn, seqs, lengths)
    H = 4
    for k in range(2):
        src = seqs if k == 0 else ref[k - 1]
        torch.testing.assert_close(gram(seen["weight_ih_l%d_reverse" % k]),
                                   gram(torch.cat(src)), rtol=1e-9, atol=1e-9)
        fw = torch.cat([_prev_rows(o[:, None, :H], False) for o in ref[k]])
        bw = torch.cat([_prev_rows(o[:, None, H:], True) for o in ref[k]])
        torch.testing.assert_close(gram(seen["weight_hh_l%d" % k]), gram(fw),
                                   rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(gram(seen["weight_hh_l%d_reverse" % k]), gram(bw),
                                   rtol=1e-5, atol=1e-6)
    # an initial state reaches the first frame of each direction
    h0 = torch.randn(4, 3, H)
    hx = (h0, torch.randn(4, 3, H)) if kind is nn.LSTM else h0
    seen2, _ = observed(rnn, lambda: rnn(packed, hx))
    rows = seen2["weight_hh_l1_reverse"]
    for b in range(3):  # h0 of layer 1, reverse, is the state at each last frame
        assert (rows == h0[3, b]).all(1).any()


def test_attention_inputs_and_out_proj_with_masks():
    torch.manual_seed(fresh_seed())
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(3, 5, 8)
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    seen, out = observed(mha, lambda: mha(x, x, x, key_padding_mask=pad))
    torch.testing.assert_close(seen["in_proj_weight"], x.reshape(-1, 8))  # q = k = v: once
    W, b = mha.out_proj.weight.detach(), mha.out_proj.bias.detach()
    torch.testing.assert_close(seen["out_proj.weight"] @ W.t() + b,
                               out[0].detach().reshape(-1, 8), rtol=1e-5, atol=1e-6)
    # cross attention with other key/value sizes: q, k, v projections apart
    cross = nn.MultiheadAttention(8, 2, kdim=3, vdim=4)
    q, k, v = torch.randn(4, 2, 8), torch.randn(6, 2, 3), torch.randn(6, 2, 4)
    seen, out = observed(cross, lambda: cross(q, k, v))
    for name, t in (("q_proj_weight", q), ("k_proj_weight", k), ("v_proj_weight", v)):
        torch.testing.assert_close(seen[name], t.reshape(-1, t.shape[-1]))
    W, b = cross.out_proj.weight.detach(), cross.out_proj.bias.detach()
    torch.testing.assert_close(seen["out_proj.weight"] @ W.t() + b,
                               out[0].detach().reshape(-1, 8), rtol=1e-5, atol=1e-6)


def test_transformer_layer_feeds_every_weight():
    torch.manual_seed(fresh_seed())
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, dropout=0.0, batch_first=True)
    x = torch.randn(2, 5, 8)
    mask = torch.triu(torch.full((5, 5), float("-inf")), 1)
    captured = {}
    h = layer.self_attn.register_forward_hook(lambda m, i, o: captured.setdefault("a", o[0]))
    seen, out = observed(layer, lambda: layer(x, src_mask=mask))
    h.remove()
    assert sorted(seen) == ["linear1.weight", "linear2.weight", "self_attn.in_proj_weight",
                            "self_attn.out_proj.weight"]
    W, b = layer.self_attn.out_proj.weight.detach(), layer.self_attn.out_proj.bias.detach()
    torch.testing.assert_close(seen["self_attn.out_proj.weight"] @ W.t() + b,
                               captured["a"].detach().reshape(-1, 8), rtol=1e-5, atol=1e-6)


def test_copies_of_a_model_feed_nothing():
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4, 2))
    mha = nn.MultiheadAttention(4, 1)
    seen = []
    ps = [csprune.torch.ModulePruner(m, final_sparsity=0.5, end_step=10, observe=True,
                                     observer=lambda n, x: seen.append(n))
          for m in (model, mha)]
    copy.deepcopy(model)(torch.randn(2, 2, 6))
    x = torch.randn(3, 2, 4)
    copy.deepcopy(mha)(x, x, x)
    assert seen == []
    mha(x, x, x)
    assert seen == ["in_proj_weight", "out_proj.weight"]
    ps[1].close()
    assert "forward" not in mha.__dict__  # the wrapper is gone
    assert ps[0]


# --- per layer type: train, exact target, zeros, resume -----------------------------------------

class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 6, 3, padding=1)
        self.c2 = nn.Conv1d(6, 8, 3, stride=2, padding=1, padding_mode="reflect")
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.c2(torch.relu(self.c1(x)))).mean(-1))


class Conv2dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 6, 3, padding="same")
        self.c2 = nn.Conv2d(6, 8, (3, 2), stride=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.c2(torch.relu(self.c1(x)))).mean((-1, -2)))


class RecNet(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = kind(4, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0].mean(1))


class AttnNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = self.proj(x)
        return self.fc(self.attn(h, h, h, need_weights=False)[0].mean(1))


class TransformerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 8)
        self.enc = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True),
            num_layers=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.enc(self.proj(x)).mean(1))


class EmbNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(16, 8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.emb(x).mean(1))


def _inputs(kind, g):
    if kind == "conv1d":
        x = torch.randn(16, 4, 12, generator=g)
        y = (x[:, 0].mean(-1) > 0).long() + (x[:, 1].mean(-1) > 0.3).long()
    elif kind == "conv2d":
        x = torch.randn(16, 2, 6, 6, generator=g)
        y = (x[:, 0].mean((-1, -2)) > 0).long() + (x[:, 1].mean((-1, -2)) > 0.2).long()
    elif kind == "embedding":
        x = torch.randint(0, 16, (16, 5), generator=g)
        y = (x < 5).sum(1).clamp(max=2)
    else:
        x = torch.randn(16, 5, 4, generator=g)
        y = (x[..., 0].mean(-1) > 0).long() + (x[..., 1].mean(-1) > 0.3).long()
    return x, y


_MODELS = {"conv1d": Conv1dNet, "conv2d": Conv2dNet, "lstm": lambda: RecNet(nn.LSTM),
           "gru": lambda: RecNet(nn.GRU), "attention": AttnNet,
           "transformer": TransformerNet, "embedding": EmbNet}


def _train(kind, seed, batches, start=0, state=None, **kw):
    torch.manual_seed(seed)
    model = _MODELS[kind]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    args = dict(final_sparsity=0.5, begin_step=2, end_step=14, frequency=4,
                granularity="row", sensing="activations", correction="blend", alpha=0.5,
                observe_window=2)
    args.update(kw)
    pruner = csprune.torch.ModulePruner(model, opt, **args)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        pruner.load_state_dict(state["pruner"])
    losses, saved = [], None
    params = dict(model.named_parameters())
    for step in range(start, len(batches)):
        if step == 9:  # mid window before the event at 10
            saved = copy.deepcopy({"model": model.state_dict(), "opt": opt.state_dict(),
                                   "pruner": pruner.state_dict()})
        x, y = batches[step]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        pruner.step()
        losses.append(loss.item())
        for name in pruner.names:
            mask = pruner.mask(name)
            assert (params[name][~mask] == 0).all(), (step, name)
            assert (opt.state[params[name]]["exp_avg"][~mask] == 0).all()
    return model, pruner, losses, saved


@pytest.mark.parametrize("kind", sorted(_MODELS))
def test_layer_trains_to_the_exact_target_and_resumes(kind):
    seed = fresh_seed()
    g = torch.Generator().manual_seed(seed)
    data = [_inputs(kind, g) for _ in range(2)]
    batches = [data[i % 2] for i in range(20)]  # a small training set, seen 10 times
    model, pruner, losses, saved = _train(kind, seed, batches)
    assert np.isfinite(losses).all()
    assert np.mean(losses[-4:]) < np.mean(losses[:4])  # it learns
    kinds = {s.name: s.sensing for s in pruner.stats()}
    if kind == "embedding":
        assert kinds["emb.weight"] == csp.SensingKind.IDENTITY  # by magnitude
    assert list(kinds.values()).count(csp.SensingKind.ACTIVATIONS) >= 1
    assert pruner.unobserved == ([] if kind != "embedding" else ["emb.weight"])
    for s in pruner.stats():
        t = pruner.pruner.tensor(s.index)
        assert s.nnz == t.rows * (t.cols - round(0.5 * t.cols)), s.name
        assert s.events == 4
    # resume at step 9 into a fresh model: bit for bit
    model2, pruner2, _, _ = _train(kind, seed + 1, batches, start=9, state=saved)
    for (n, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert torch.equal(a, b), n
    assert pruner2.digest() == pruner.digest()
