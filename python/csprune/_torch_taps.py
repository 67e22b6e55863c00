"""The inputs each weight of a torch layer multiplies, for activation sensing.

Private to csprune.torch. A *tap* is installed on one module and, in
training-mode passes that the pruner wants observed, calls
``feed(name, rows)`` with a (rows x cols) matrix for every weight it serves:
the vectors the weight's matrix view (rows = out features, cols = the rest)
multiplies, so that S = X^T X is the Gram matrix of activation sensing.

    nn.Linear                     weight: the input, leading dims flattened
    nn.Conv1d / nn.Conv2d         weight (out, in, k...): the input patches
                                  (F.unfold), groups=1
    nn.LSTM / nn.GRU / nn.RNN     weight_ih_l{k}[_reverse]: layer k's input;
                                  weight_hh_l{k}[_reverse]: h_{t-1} of that
                                  direction (h_{t+1} in reverse time)
    nn.MultiheadAttention         in_proj_weight / q,k,v_proj_weight: query,
                                  key, value; out_proj.weight: the attention
                                  output before out_proj (recomputed)

Every tap acts only for the module it was put on (a deep copy of the model
keeps the hooks, but the copies' passes feed nothing).
"""

import types
import weakref

import torch
from torch import nn
from torch.nn import functional as F

_RNNS = (nn.LSTM, nn.GRU, nn.RNN)
_CONVS = (nn.Conv1d, nn.Conv2d)


def servable(module, prefix):
    """{parameter name: None} of the weights of @p module a tap can feed, and
    {name: reason} of those it cannot (for error messages)."""
    ok, why = set(), {}
    if isinstance(module, nn.MultiheadAttention):
        if module._qkv_same_embed_dim:
            ok.add(prefix + "in_proj_weight")
        else:
            ok.update(prefix + n for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"))
        ok.add(prefix + "out_proj.weight")
    elif isinstance(module, nn.Linear):
        ok.add(prefix + "weight")
    elif isinstance(module, _CONVS):
        if module.groups == 1:
            ok.add(prefix + "weight")
        else:
            why[prefix + "weight"] = ("a grouped convolution (groups=%d): each group of rows "
                                      "sees other input channels, which one Gram matrix "
                                      "cannot describe" % module.groups)
    elif isinstance(module, _RNNS):
        for name in module._flat_weights_names:
            if name.startswith("weight_hr"):
                why[prefix + name] = ("an LSTM projection (proj_size): its input, the cell "
                                      "output before projection, is not visible")
            elif name.startswith("weight"):
                ok.add(prefix + name)
    elif isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        why[prefix + "weight"] = "an embedding: its input is indices (pruned by magnitude)"
    return ok, why


def install(module, prefix, targets, active, feed):
    """Install the tap of @p module for @p targets ({full name: None}, a
    subset of servable()); returns a handle with remove()."""
    target = weakref.ref(module)
    if isinstance(module, nn.MultiheadAttention):
        return _ForwardWrap(module, _mha_tap(target, prefix, targets, active, feed))
    if isinstance(module, nn.Linear):
        fn = _linear_tap
    elif isinstance(module, _CONVS):
        fn = _conv_tap
    else:
        fn = _rnn_tap
    tap = fn(target, prefix, targets, active, feed)
    return module.register_forward_hook(lambda m, inputs, output: tap(m, inputs, {}, output))


class _ForwardWrap:
    """Wrap one module's forward (as an attribute of the instance) to see its
    keyword arguments too: forward hooks of torch < 2.0 get positional inputs
    only, and nn.TransformerEncoderLayer passes attention masks by keyword. A
    bound method, so a deep copy of the model rebinds it to the copy (whose
    passes then feed nothing)."""

    def __init__(self, module, tap):
        cls_forward = type(module).forward

        def forward(self, *args, **kwargs):
            out = cls_forward(self, *args, **kwargs)
            tap(self, args, kwargs, out)
            return out
        self._fn = forward
        self._module = weakref.ref(module)
        module.forward = types.MethodType(forward, module)

    def remove(self):
        m = self._module()
        if m is not None:
            f = m.__dict__.get("forward")
            if isinstance(f, types.MethodType) and f.__func__ is self._fn:
                del m.__dict__["forward"]


def _rows(x):
    return x.detach().reshape(-1, x.shape[-1])


def _linear_tap(target, prefix, targets, active, feed):
    name = prefix + "weight"

    def tap(module, inputs, kwargs, output):
        if module is target() and module.training and inputs and active():
            feed(name, _rows(inputs[0]))
    return tap


def conv_patches(conv, x):
    """The patches the weight of @p conv (Conv1d/Conv2d, groups 1) multiplies
    for input @p x, one row per output position, columns ordered like
    ``weight.reshape(out, -1)`` (channel, then kernel offsets)."""
    d = 1 if isinstance(conv, nn.Conv1d) else 2
    x = x.detach()
    if x.dim() == d + 1:  # unbatched
        x = x.unsqueeze(0)
    # the padding forward applies (zeros, 'same', reflect, circular, ...)
    pad = conv._reversed_padding_repeated_twice
    if any(pad):
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        x = F.pad(x, pad, mode=mode)
    k, s, dil = conv.kernel_size, conv.stride, conv.dilation
    if d == 1:
        x = x.unsqueeze(2)
        k, s, dil = (1, k[0]), (1, s[0]), (1, dil[0])
    cols = F.unfold(x, k, dilation=dil, padding=0, stride=s)  # (N, C*prod(k), L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _conv_tap(target, prefix, targets, active, feed):
    name = prefix + "weight"

    def tap(module, inputs, kwargs, output):
        if module is target() and module.training and inputs and active():
            with torch.no_grad():
                feed(name, conv_patches(module, inputs[0]))
    return tap


# --- recurrent layers -------------------------------------------------------------------

def _rnn_tap(target, prefix, targets, active, feed):
    def tap(module, inputs, kwargs, output):
        if module is not target() or not module.training or not inputs or not active():
            return
        x = inputs[0]
        hx = inputs[1] if len(inputs) > 1 else kwargs.get("hx")
        with torch.no_grad():
            for pname, rows in rnn_inputs(module, x, hx, output[0],
                                          {n[len(prefix):] for n in targets}):
                feed(prefix + pname, rows)
    return tap


def _layer_weights(rnn, layer):
    names = [n for n in rnn._flat_weights_names
             if n.endswith("_l%d" % layer) or n.endswith("_l%d_reverse" % layer)]
    return [getattr(rnn, n) for n in names]


def _run_layer(rnn, layer, x, batch_sizes, h0):
    """One layer of @p rnn (both directions) on (T, B, F) @p x, or packed data
    with @p batch_sizes, from h0 ((D, B, H), a tuple for LSTM); no dropout
    (the recomputation must not draw from the random generator). Returns the
    output, (T, B, D*Hout) or packed data."""
    w = _layer_weights(rnn, layer)
    args = (h0, w, rnn.bias, 1, 0.0, False, rnn.bidirectional)
    vf = torch._VF
    if isinstance(rnn, nn.LSTM):
        fn = vf.lstm
    elif isinstance(rnn, nn.GRU):
        fn = vf.gru
    else:
        fn = vf.rnn_tanh if rnn.nonlinearity == "tanh" else vf.rnn_relu
    if batch_sizes is None:
        return fn(x, *args, False)[0]
    return fn(x, batch_sizes, *args)[0]


def rnn_inputs(rnn, x, hx, out, wanted):
    """(parameter name, rows) for every weight name in @p wanted of an
    nn.LSTM/GRU/RNN given its input @p x (tensor or PackedSequence), initial
    state @p hx (or None) and output @p out of the forward pass.

    weight_ih_l{k}[_reverse] get layer k's input frames (layer 0: x; above:
    the output of layer k-1, both directions); weight_hh_l{k} the previous
    hidden state h_{t-1} of the forward direction (h_0 for the first frame),
    weight_hh_l{k}_reverse the reverse direction's h_{t+1} (h_0 at each
    sequence's last frame). Packed input: the valid frames, in packed order.
    Layers below the last are recomputed (one layer at a time, without
    dropout) when a weight needs their output."""
    packed = isinstance(x, nn.utils.rnn.PackedSequence)
    D = 2 if rnn.bidirectional else 1
    L = rnn.num_layers
    hout = rnn.proj_size if getattr(rnn, "proj_size", 0) else rnn.hidden_size
    lstm = isinstance(rnn, nn.LSTM)
    if packed:
        data, batch_sizes = x.data.detach(), x.batch_sizes
        sorted_idx = x.sorted_indices
        B = int(batch_sizes[0])
        unbatched = False
    else:
        batch_sizes = sorted_idx = None
        data = x.detach()
        unbatched = data.dim() == 2
        if unbatched:
            data = data.unsqueeze(1)
        elif rnn.batch_first:
            data = data.transpose(0, 1)
        B = data.shape[1]
    # initial states, batched (L*D, B, H), in the layer's own batch order
    if hx is None:
        h0 = data.new_zeros(L * D, B, hout)
        c0 = data.new_zeros(L * D, B, rnn.hidden_size) if lstm else None
    else:
        h0, c0 = (hx[0], hx[1]) if lstm else (hx, None)
        h0 = h0.detach()
        c0 = c0.detach() if c0 is not None else None
        if not packed and unbatched:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
    h0_user = h0  # original batch order (pad_packed_sequence restores it)
    if packed and sorted_idx is not None:
        h0 = h0.index_select(1, sorted_idx)
        c0 = c0.index_select(1, sorted_idx) if c0 is not None else None

    def needs(layer):
        return any(n.endswith("_l%d" % layer) or n.endswith("_l%d_reverse" % layer)
                   for n in wanted if n.startswith("weight_hh")) or \
            any(n.startswith("weight_ih_l%d" % (layer + 1)) for n in wanted)
    low = max([k for k in range(L - 1) if needs(k)], default=-1)  # layers to recompute
    outs = {}
    inp = data
    for k in range(low + 1):
        s = slice(k * D, (k + 1) * D)
        inp = _run_layer(rnn, k, inp, batch_sizes, (h0[s], c0[s]) if lstm else h0[s])
        outs[k] = inp
    if needs(L - 1):  # the last layer's output is the module's
        final = out.data.detach() if packed else out.detach()
        if not packed:
            final = final.unsqueeze(1) if unbatched else (
                final.transpose(0, 1) if rnn.batch_first else final)
        outs[L - 1] = final
    def rows(t):  # (T, B, F) back to the caller's frame order, one row per frame
        if not packed and not unbatched and rnn.batch_first:
            t = t.transpose(0, 1)
        return t.reshape(-1, t.shape[-1])

    result = []
    for name in sorted(wanted):
        base = name[:-len("_reverse")] if name.endswith("_reverse") else name
        layer = int(base.rsplit("_l", 1)[1])
        if name.startswith("weight_ih"):
            src = data if layer == 0 else outs[layer - 1]
            result.append((name, src if packed else rows(src)))
            continue
        rev = name.endswith("_reverse")
        o = outs[layer]
        half = o[..., hout:] if rev else o[..., :hout]
        h_init = h0_user[layer * D + (1 if rev else 0)]  # (B, Hout)
        prev = _shifted(half, h_init, rev, packed, x)
        result.append((name, prev if packed else rows(prev)))
    return result


def _shifted(h, h0, reverse, packed, x):
    """The previous hidden state of each frame for (T, B, H) @p h (or packed
    data): h_{t-1} (h0 first), or h_{t+1} in @p reverse (h0 at each sequence's
    last frame). Rows: every frame (padded input) or the valid ones in packed
    order; (T, B, H) for padded input)."""
    if not packed:
        if h.shape[0] == 0:
            return h
        first = h0.unsqueeze(0)
        return torch.cat([h[1:], first], 0) if reverse else torch.cat([first, h[:-1]], 0)
    seq = nn.utils.rnn.PackedSequence(h, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    padded, lengths = nn.utils.rnn.pad_packed_sequence(seq)  # (T, B, H), original order
    B = padded.shape[1]
    if reverse:
        prev = torch.cat([padded[1:], padded.new_zeros(1, B, padded.shape[2])], 0)
        last = (lengths - 1).to(padded.device)
        prev[last, torch.arange(B, device=padded.device)] = h0
    else:
        prev = torch.cat([h0.unsqueeze(0), padded[:-1]], 0)
    return nn.utils.rnn.pack_padded_sequence(prev, lengths, enforce_sorted=False).data


# --- multi-head attention -----------------------------------------------------------------

def _mha_args(args, kwargs):
    names = ("query", "key", "value")
    vals = list(args[:3]) + [kwargs.get(n) for n in names[len(args[:3]):]]
    return vals


def _mha_tap(target, prefix, targets, active, feed):
    eye_cache = {}

    def tap(module, args, kwargs, output):
        if module is not target() or not module.training or not active():
            return
        q, k, v = _mha_args(args, kwargs)
        with torch.no_grad():
            if module._qkv_same_embed_dim:
                name = prefix + "in_proj_weight"
                if name in targets:
                    srcs = [q] if (k is q and v is q) else [q, k, v]
                    feed(name, torch.cat([_rows(t) for t in srcs]) if len(srcs) > 1
                         else _rows(q))
            else:
                for pname, t in (("q_proj_weight", q), ("k_proj_weight", k),
                                 ("v_proj_weight", v)):
                    if prefix + pname in targets:
                        feed(prefix + pname, _rows(t))
            name = prefix + "out_proj.weight"
            if name in targets:
                feed(name, _rows(mha_context(module, args, kwargs, eye_cache)))
    return tap


def mha_context(mha, args, kwargs, cache=None):
    """The attention output of @p mha before out_proj (the input of
    out_proj.weight) for a call with @p args / @p kwargs, recomputed in
    no_grad with out_proj replaced by the identity and without dropout."""
    proj = mha.out_proj
    E = proj.weight.shape[1]
    key = (proj.weight.device, proj.weight.dtype)
    cache = {} if cache is None else cache
    if key not in cache:
        cache.clear()
        cache[key] = (torch.eye(E, device=key[0], dtype=key[1]),
                      torch.zeros(E, device=key[0], dtype=key[1]))
    eye, zero = cache[key]
    kwargs = dict(kwargs)
    kwargs["need_weights"] = False
    saved_w, saved_b = proj._parameters["weight"], proj._parameters.get("bias")
    training = mha.training
    try:
        proj._parameters["weight"] = eye
        if saved_b is not None:
            proj._parameters["bias"] = zero
        mha.training = False
        with torch.no_grad():
            out = type(mha).forward(mha, *args, **kwargs)
    finally:
        proj._parameters["weight"] = saved_w
        if saved_b is not None:
            proj._parameters["bias"] = saved_b
        mha.training = training
    return out[0] if isinstance(out, tuple) else out
