#!/usr/bin/python3
"""Spoken-digit recognition in PyTorch, pruned during training by libcsp.

The model and features of examples/speech (README there): 40 log-mel bands
-> LSTM(40 -> 128) -> mean over the valid frames -> Linear(128 -> 10), Adam
with gradient-norm clipping, on the Free Spoken Digit Dataset (FSDD, Zohar
Jackson et al., CC BY-SA 4.0; official split: recordings 0-4 of every
speaker and digit are the test set). csprune.torch.ModulePruner prunes the LSTM
and output matrices to --sparsity with a cubic schedule (row-balanced by
default) and zeroes Adam's moments of the pruned weights. By magnitude (GMP)
by default; --sensing gaussian|rademacher|activations prunes with CSP
(docs/guide.md, "CSP"): with activations, the forward hooks feed the LSTM's
input frames to W_ih, its previous hidden states to W_hh and the pooled
vector to the output layer, for the --observe-window steps before each event.

    /usr/bin/python3 examples/python/torch_speech.py [--data DIR] [--epochs 20]
        [--sparsity 0.9] [--granularity row] [--seed 1] [--save CKPT]
        [--sensing activations --observe-window 10 --correction none]

Data: --data DIR, else $CSP_SPEECH_DATA, else ../shared/data/fsdd relative
to the repository root. Files are {digit}_{speaker}_{index}.wav, 8 kHz
16-bit mono (examples/speech/gen_espeak_digits.sh makes a synthetic set).
--sparsity 0 trains dense.
"""
import argparse
import math
import os
import pathlib
import re
import sys
import time
import wave

import numpy as np
import torch
from torch import nn

try:
    import csprune
except ImportError:  # run from the source tree
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
    import csprune
import csprune.torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]

# --- features: the recipe of examples/speech/logmel.c, in numpy float64 ----------------
RATE, FRAME, HOP, NFFT, NMEL, FMIN, FMAX = 8000, 200, 80, 256, 40, 20.0, 4000.0


def mel_bank():
    """(NFFT/2+1, NMEL) HTK-mel triangles, torchaudio melscale_fbanks(norm=None)."""
    hz2mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    mel2hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    freqs = np.linspace(0, RATE // 2, NFFT // 2 + 1)
    fpts = mel2hz(np.linspace(hz2mel(FMIN), hz2mel(FMAX), NMEL + 2))
    fdiff = fpts[1:] - fpts[:-1]
    slopes = fpts[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / fdiff[:-1]
    up = slopes[:, 2:] / fdiff[1:]
    return np.maximum(0.0, np.minimum(down, up))


MEL = mel_bank()
WINDOW = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))  # symmetric


def logmel(x):
    """Frames of 200 with hop 80 (a short clip is zero-padded to one frame),
    Hamming, 256-point |rfft|^2, 40 mel bands, log(mel + 1e-6)."""
    if len(x) < FRAME:
        x = np.concatenate([x, np.zeros(FRAME - len(x))])
    nf = (len(x) - FRAME) // HOP + 1
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(nf)[:, None]
    power = np.abs(np.fft.rfft(x[idx] * WINDOW, n=NFFT, axis=1)) ** 2
    return np.log(power @ MEL + 1e-6).astype(np.float32)


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError("%s: not 16-bit mono" % path)
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0


NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$")


def load(data_dir, limit=None):
    """Features and labels of the official split, in a deterministic order."""
    files = []
    for p in pathlib.Path(data_dir).iterdir():
        m = NAME.match(p.name)
        if m:
            files.append((int(m[1]), m[2], int(m[3]), p))
    files.sort(key=lambda f: f[:3])
    if not files:
        raise SystemExit("no {digit}_{speaker}_{index}.wav files in %s" % data_dir)
    if limit:
        files = files[::max(1, len(files) // limit)][:limit]
    split = {"train": ([], []), "test": ([], [])}
    for digit, _, index, path in files:
        feats, labels = split["test" if index < 5 else "train"]
        feats.append(logmel(read_wav(path)))
        labels.append(digit)
    # per-band normalisation fitted on the training frames
    frames = np.concatenate(split["train"][0]).astype(np.float64)
    mean, sd = frames.mean(0), frames.std(0)
    inv = np.where(sd < 1e-6, 1e6, 1.0 / np.maximum(sd, 1e-12))
    for feats, _ in split.values():
        for i, f in enumerate(feats):
            feats[i] = torch.from_numpy(((f - mean) * inv).astype(np.float32))
    return split


# --- model ------------------------------------------------------------------------------

class DigitLSTM(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.lstm = nn.LSTM(NMEL, hidden)
        self.out = nn.Linear(hidden, 10)

    def forward(self, feats):
        lengths = torch.tensor([len(f) for f in feats])
        padded = nn.utils.rnn.pad_sequence(feats)  # (T, B, 40)
        packed = nn.utils.rnn.pack_padded_sequence(padded, lengths, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out)  # zeros past each length
        pooled = out.sum(0) / lengths[:, None].to(out.dtype)
        return self.out(pooled)


def evaluate(model, feats, labels, batch=128):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            logits = model(feats[i:i + batch])
            correct += (logits.argmax(1) == torch.tensor(labels[i:i + batch])).sum().item()
    model.train()
    return 100.0 * correct / len(feats)


def default_data_dir():
    env = os.environ.get("CSP_SPEECH_DATA")
    return env if env else str(ROOT / ".." / "shared" / "data" / "fsdd")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=default_data_dir(), help="FSDD directory")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--sparsity", type=float, default=0.9, help="final sparsity (0: dense)")
    ap.add_argument("--granularity", default="row", choices=["tensor", "row", "global"])
    ap.add_argument("--begin", type=float, default=0.1, help="ramp start, fraction of training")
    ap.add_argument("--end", type=float, default=0.6, help="ramp end, fraction of training")
    ap.add_argument("--events", type=int, default=50, help="pruning events on the ramp")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch and libcsp threads")
    ap.add_argument("--observe", action="store_true",
                    help="install the activation hooks even without activations sensing")
    ap.add_argument("--sensing", default="identity",
                    choices=["identity", "gaussian", "rademacher", "activations"],
                    help="CSP sensing operator (identity: magnitude pruning, GMP)")
    ap.add_argument("--solver", default="omp", choices=["omp", "ista", "fista"])
    ap.add_argument("--correction", default="none", choices=["none", "full", "blend"])
    ap.add_argument("--rho", type=float, default=0.5, help="random sensing: m = rho n")
    ap.add_argument("--observe-window", type=int, default=10,
                    help="activations: observe the passes of this many steps before each "
                         "event (0: every step)")
    ap.add_argument("--limit", type=int, default=0, help="use only N files (smoke tests)")
    ap.add_argument("--save", help="write model, optimizer and pruner state here")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    data = load(args.data, args.limit or None)
    xtr, ytr = data["train"]
    xte, yte = data["test"]
    print("FSDD %s: %d train / %d test utterances, features in %.1f s"
          % (args.data, len(xtr), len(xte), time.time() - t0))

    model = DigitLSTM(args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(xtr) / args.batch)
    total = steps_per_epoch * args.epochs
    pruner = None
    if args.sparsity > 0:
        begin = int(args.begin * total)
        end = max(begin + 1, int(args.end * total))
        pruner = csprune.torch.ModulePruner(
            model, opt, final_sparsity=args.sparsity, begin_step=begin, end_step=end,
            frequency=max(1, (end - begin) // args.events), granularity=args.granularity,
            observe=True if args.observe else None, seed=args.seed, num_threads=args.threads,
            sensing=args.sensing, solver=args.solver, correction=args.correction,
            sensing_rho=args.rho, observe_window=args.observe_window)
        print("pruning %s to %.2f (%s, sensing %s), steps %d..%d of %d"
              % (", ".join(pruner.names), args.sparsity, args.granularity, args.sensing,
                 begin, end, total))

    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        t1 = time.time()
        order = torch.randperm(len(xtr), generator=gen).tolist()
        loss_sum, correct = 0.0, 0
        for i in range(0, len(order), args.batch):
            ids = order[i:i + args.batch]
            y = torch.tensor([ytr[j] for j in ids])
            logits = model([xtr[j] for j in ids])
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if pruner is not None:
                pruner.step()  # right after every optimizer update
            loss_sum += loss.item() * len(ids)
            correct += (logits.argmax(1) == y).sum().item()
        print("epoch %2d  loss %.4f  train %.1f%%  test %.1f%%  sparsity %.3f  %.1f s"
              % (epoch, loss_sum / len(xtr), 100.0 * correct / len(xtr),
                 evaluate(model, xte, yte), pruner.sparsity() if pruner else 0.0,
                 time.time() - t1))

    if pruner is not None:
        for s in pruner.stats():
            print("  %-18s %6d of %6d kept (sparsity %.3f), last event: weight error %.3f, "
                  "sensing error %.3f, %.1f ms"
                  % (s.name, s.nnz, s.numel, s.achieved_sparsity, s.weight_error,
                     s.sensing_error, 1e3 * s.event_seconds))
        print("mask digest %016x" % pruner.digest())
    if args.save:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "pruner": pruner.state_dict() if pruner else None}, args.save)
        print("saved", args.save)
    acc = evaluate(model, xte, yte)
    print("test accuracy %.1f%%" % acc)
    if pruner is not None:
        pruner.close()
    return acc


if __name__ == "__main__":
    main()
