"""rn_loss() against torchaudio.functional.rnnt_loss (Debian python3-torchaudio).

Random logits (N(0, 2^2), float32), labels and lengths from a fresh seed
(printed; rerun with RNNT_SEED=...), several shapes including U = 0, T = 1,
B > 1 with different lengths and a blank other than 0. torchaudio runs with
reduction="none" and the log-softmax fused (fused_log_softmax=True where
that keyword exists; torchaudio 0.13 always fuses and takes float32 only);
our loss and gradient (float64 inside, float32 out) must match it:
    |ours - ref| <= 1e-4 * max(|ref|) over the batch for the loss, and
    ||g_ours - g_ref|| <= 1e-4 ||g_ref|| per batch element for the gradient;
and an independent float64 numpy forward-backward here must agree with
ours to 1e-5 (torchaudio computes in float32, so its own error, printed,
grows with T). Exits 77 (skip) without torch or
torchaudio. Usage: test_loss_torchaudio.py LOSS_TOOL
"""
import inspect
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import torch
    import torchaudio.functional as TAF
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: {e} (apt-get install python3-torchaudio)")
    sys.exit(77)

RTOL = 1e-4


def run_tool(tool, logits, labels, t_len, u_len, blank):
    B, T, U1, V = logits.shape
    with tempfile.TemporaryDirectory() as d:
        fin, fout = os.path.join(d, "in.bin"), os.path.join(d, "out.bin")
        with open(fin, "wb") as f:
            f.write(np.array([B, T, U1, V, blank], np.int32).tobytes())
            f.write(logits.astype(np.float32).tobytes())
            f.write(labels.astype(np.int32).tobytes())
            f.write(t_len.astype(np.int32).tobytes())
            f.write(u_len.astype(np.int32).tobytes())
        subprocess.run([tool, fin, fout], check=True)
        raw = open(fout, "rb").read()
    rc = np.frombuffer(raw[:4], np.int32)[0]
    loss = np.frombuffer(raw[4:4 + 4 * B], np.float32)
    grad = np.frombuffer(raw[4 + 4 * B:], np.float32).reshape(B, T, U1, V)
    return rc, loss, grad


def torch_ref(logits, labels, t_len, u_len, blank, dtype):
    z = torch.tensor(logits, dtype=dtype, requires_grad=True)
    y = torch.tensor(labels, dtype=torch.int32)
    kw = dict(blank=blank, reduction="none")
    if "fused_log_softmax" in inspect.signature(TAF.rnnt_loss).parameters:
        kw["fused_log_softmax"] = True  # older torchaudio; 0.13 always fuses
    loss = TAF.rnnt_loss(z, y, torch.tensor(t_len, dtype=torch.int32),
                         torch.tensor(u_len, dtype=torch.int32), **kw)
    loss.sum().backward()
    return loss.detach().numpy().astype(np.float64), z.grad.numpy().astype(np.float64)


def numpy_ref(logits, labels, t_len, u_len, blank):
    """Independent float64 forward-backward (loss and gradient) in numpy."""
    z = logits.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    lp = z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))
    B, T, U1, V = z.shape
    loss, grad = np.zeros(B), np.zeros_like(z)
    for b in range(B):
        Tb, Ub = t_len[b], u_len[b]
        y = labels[b, :Ub]
        lb = lp[b, :Tb, :Ub + 1, blank]
        le = np.take_along_axis(lp[b, :Tb, :Ub], y[None, :, None], axis=2)[..., 0]
        a = np.full((Tb, Ub + 1), -np.inf)
        be = np.full((Tb, Ub + 1), -np.inf)
        for t in range(Tb):
            for u in range(Ub + 1):
                if t == 0 and u == 0:
                    a[t, u] = 0.0
                    continue
                a[t, u] = np.logaddexp(a[t - 1, u] + lb[t - 1, u] if t else -np.inf,
                                       a[t, u - 1] + le[t, u - 1] if u else -np.inf)
        for t in range(Tb - 1, -1, -1):
            for u in range(Ub, -1, -1):
                if t == Tb - 1 and u == Ub:
                    be[t, u] = lb[t, u]
                    continue
                be[t, u] = np.logaddexp(be[t + 1, u] + lb[t, u] if t < Tb - 1 else -np.inf,
                                        be[t, u + 1] + le[t, u] if u < Ub else -np.inf)
        logp = be[0, 0]
        loss[b] = -logp
        g = np.exp(a + be - logp)[..., None] * np.exp(lp[b, :Tb, :Ub + 1])
        nb = np.full((Tb, Ub + 1), -np.inf)
        nb[:-1] = be[1:]
        nb[-1, -1] = 0.0
        g[..., blank] -= np.exp(a + lb + nb - logp)
        ge = np.exp(a[:, :Ub] + le + be[:, 1:] - logp)
        for u in range(Ub):
            g[:, u, y[u]] -= ge[:, u]
        grad[b, :Tb, :Ub + 1] = g
    return loss, grad


def rel(x, ref):
    """Largest per-utterance relative error, in the Frobenius norm."""
    return max(np.linalg.norm(x[b] - ref[b]) / max(np.linalg.norm(ref[b]), 1e-30)
               for b in range(ref.shape[0]))


def case(tool, rng, B, T, U1, V, blank, t_len=None, u_len=None, ta_check=True):
    logits = (2.0 * rng.standard_normal((B, T, U1, V))).astype(np.float32)
    labels = rng.integers(0, V - 1, size=(B, U1 - 1))
    labels = np.where(labels >= blank, labels + 1, labels).astype(np.int32)
    t_len = np.array(t_len if t_len is not None else rng.integers(1, T + 1, B), np.int32)
    u_len = np.array(u_len if u_len is not None else rng.integers(0, U1, B), np.int32)
    # torchaudio takes the padded sizes from the tensors: the longest
    # utterance must fill them.
    t_len[0], u_len[0] = T, U1 - 1
    rc, loss, grad = run_tool(tool, logits, labels, t_len, u_len, blank)
    assert rc == 0, f"rn_loss returned {rc}"
    l64, g64 = torch_ref(logits, labels, t_len, u_len, blank, torch.float32)
    scale = np.max(np.abs(l64))
    err = np.max(np.abs(loss - l64)) / scale
    gerr = rel(grad, g64)
    ln, gn = numpy_ref(logits, labels, t_len, u_len, blank)
    print(f"B={B} T={T} U1={U1} V={V} blank={blank}: vs torchaudio: loss {err:.2e} "
          f"grad {gerr:.2e}; vs float64 numpy: loss {np.max(np.abs(loss - ln)) / scale:.2e} "
          f"grad {rel(grad, gn):.2e} (torchaudio's grad {rel(g64, gn):.2e})")
    assert np.max(np.abs(loss - ln)) <= 1e-5 * scale and rel(grad, gn) <= 1e-5
    assert err <= RTOL, f"loss differs from torchaudio: {loss} vs {l64}"
    assert gerr <= RTOL or not ta_check, "gradient differs from torchaudio"
    # cells beyond the lengths: zero in both
    for b in range(B):
        assert not grad[b, t_len[b]:].any() and not grad[b, :, u_len[b] + 1:].any()
    return err, gerr


def main():
    tool = sys.argv[1]
    seed = int(os.environ.get("RNNT_SEED", np.random.SeedSequence().entropy % (1 << 63)))
    print(f"seed {seed} (rerun: RNNT_SEED={seed})")
    rng = np.random.default_rng(seed)
    case(tool, rng, 1, 1, 4, 5, 0)                        # T = 1
    case(tool, rng, 3, 6, 1, 11, 0, u_len=[0, 0, 0])      # U = 0
    case(tool, rng, 4, 9, 5, 11, 0, t_len=[9, 3, 1, 7], u_len=[4, 0, 2, 4])
    case(tool, rng, 2, 12, 8, 7, 4)                       # blank not 0
    for _ in range(4):
        case(tool, rng, int(rng.integers(1, 6)), int(rng.integers(1, 60)),
             int(rng.integers(1, 9)), 11, 0)
    case(tool, rng, 8, 60, 8, 11, 0)  # near the recogniser's size
    # Longer: torchaudio's float32 gradient error nears 1e-4 by itself, so
    # here only the float64 numpy reference is binding.
    case(tool, rng, 2, 200, 8, 11, 0, ta_check=False)
    print("ok")


if __name__ == "__main__":
    main()
