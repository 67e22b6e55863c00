#!/usr/bin/python3
"""A connected-digit RNN-Transducer in PyTorch, pruned during training by
csprune.torch.ModulePruner.

The recogniser of examples/rnnt (the C one) at a size that trains in a few
minutes on one CPU core: strings of 1-7 spoken digits, an LSTM encoder over
stacked log-mel frames, a prediction network over the previous label, a
joint network, torchaudio.functional.rnnt_loss, greedy decoding, word error
rate. ModulePruner prunes every LSTM matrix (every layer) and the joint's
matrices with activation sensing by default (the hooks feed each weight the
inputs it multiplies), masks their gradients before gradient clipping and
zeroes Adam's moments; the label embedding stays dense.

    /usr/bin/python3 examples/python/rnnt.py [--data DIR] [--epochs 30]
        [--sparsity 0.8] [--sensing activations|identity|gaussian] [--seed 1]
        [--device cpu|cuda] [--save CKPT]

Data: the Free Spoken Digit Dataset (FSDD, Zohar Jackson et al., CC BY-SA
4.0), read where it lies: --data DIR, else $CSP_SPEECH_DATA, else
../shared/data/fsdd relative to the repository root; never copied. An
utterance is made on the fly, deterministically from (seed, role, index): a
speaker, 1-7 random digits, a random recording of that speaker for each,
joined with pauses of 50-300 ms (also at both ends), a gain of -6..+6 dB
(+-2 dB per digit), then noise at an SNR of 10-30 dB: coloured Gaussian
noise (AR(1), pole in [-0.5, 0.95]), in half of the utterances mixed with
babble of 3-6 other speakers' training recordings. Recordings 5-44 train,
45-49 validate, 0-4 (FSDD's official test split) make the test strings.
This is the construction of examples/rnnt/digits.h, written again in numpy
(the same recipe, not the same random draws).
"""
import argparse
import math
import os
import pathlib
import re
import sys
import time

import numpy as np
import torch
from torch import nn

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
try:
    import csprune
except ImportError:  # run from the source tree
    sys.path.insert(0, str(ROOT / "python"))
    import csprune
import csprune.torch  # noqa: E402

sys.path.insert(0, str(HERE))
from torch_speech import RATE, logmel, read_wav  # noqa: E402  (examples/speech's features)

BLANK, VOCAB = 0, 11  # blank + the digits 0-9 as labels 1-10
NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$")
STACK = 3             # 3 log-mel frames stacked every 3: 120 inputs every 30 ms


# --- data ----------------------------------------------------------------------------

class Corpus:
    """FSDD-style recordings by speaker, digit and role (train / val / test)."""

    def __init__(self, directory):
        recs = []
        for p in sorted(pathlib.Path(directory).iterdir()):
            m = NAME.match(p.name)
            if m:
                recs.append((m[2], int(m[1]), int(m[3]), p))
        if not recs:
            raise SystemExit("no {digit}_{speaker}_{index}.wav files in %s" % directory)
        top = max(r[2] for r in recs)
        self.speakers = sorted({r[0] for r in recs})
        self.pools = {role: {} for role in ("train", "val", "test")}
        for spk, digit, index, path in recs:
            role = "test" if index < 5 else ("val" if index > top - 5 else "train")
            self.pools[role].setdefault((spk, digit), []).append(path)
        self.audio = {}
        for role, pool in self.pools.items():
            complete = [s for s in self.speakers if all((s, d) in pool for d in range(10))]
            if not complete:
                raise SystemExit("no speaker has every digit among the %s recordings" % role)
            pool["speakers"] = complete

    def wav(self, path):
        x = self.audio.get(path)
        if x is None:
            x = self.audio[path] = read_wav(path)
        return x

    def utterance(self, seed, role, index):
        """(samples, digits) of utterance @p index of @p role, a function of
        (seed, role, index) only."""
        rng = np.random.default_rng([seed, ("train", "val", "test").index(role), index])
        pool = self.pools[role]
        spk = pool["speakers"][rng.integers(len(pool["speakers"]))]
        digits = rng.integers(0, 10, size=rng.integers(1, 8)).tolist()
        pause = lambda: np.zeros(int(RATE * rng.uniform(0.05, 0.3)))  # noqa: E731
        parts = [pause()]
        for d in digits:
            files = pool[(spk, d)]
            x = self.wav(files[rng.integers(len(files))])
            parts += [x * 10 ** (rng.uniform(-2, 2) / 20), pause()]
        x = np.concatenate(parts) * 10 ** (rng.uniform(-6, 6) / 20)
        # coloured noise at a random SNR, half of the time with babble
        noise = ar1(rng.standard_normal(len(x)), rng.uniform(-0.5, 0.95))
        if rng.random() < 0.5:
            others = [s for s in self.pools["train"]["speakers"] if s != spk] or [spk]
            babble = np.zeros(len(x))
            for _ in range(rng.integers(3, 7)):
                s = others[rng.integers(len(others))]
                files = self.pools["train"][(s, int(rng.integers(10)))]
                b = self.wav(files[rng.integers(len(files))])
                reps = np.tile(b, len(x) // len(b) + 2)
                off = rng.integers(len(b))
                babble += reps[off:off + len(x)]
            noise = noise / (noise.std() + 1e-12) + babble / (babble.std() + 1e-12)
        snr = rng.uniform(10, 30)
        power = np.mean(x ** 2) + 1e-12
        noise *= np.sqrt(power / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr / 10))
        return x + noise, digits


def ar1(e, pole):
    """n[i] = e[i] + pole n[i-1] (coloured noise: from hiss to rumble)."""
    try:
        from scipy.signal import lfilter
    except ImportError:
        n = e.copy()
        for i in range(1, len(n)):
            n[i] += pole * n[i - 1]
        return n
    return lfilter([1.0], [1.0, -pole], e)


def features(x, norm=None):
    f = logmel(x)
    f = f[:len(f) // STACK * STACK].reshape(-1, STACK * f.shape[1])
    if norm is not None:
        f = (f - norm[0]) / norm[1]
    return torch.from_numpy(f.astype(np.float32))


class Strings:
    """Utterances of one role as features and label tensors; training
    strings are fresh every epoch (index offset), evaluation ones fixed."""

    def __init__(self, corpus, seed, role, norm):
        self.corpus, self.seed, self.role, self.norm = corpus, seed, role, norm

    def batch(self, indices):
        feats, labels = [], []
        for i in indices:
            x, digits = self.corpus.utterance(self.seed, self.role, i)
            feats.append(features(x, self.norm))
            labels.append(torch.tensor([d + 1 for d in digits], dtype=torch.int32))
        return feats, labels


def normaliser(corpus, n=128):
    frames = np.concatenate([features(corpus.utterance(12345, "train", i)[0]).numpy()
                             for i in range(n)])
    return frames.mean(0), np.maximum(frames.std(0), 1e-3)


# --- model ------------------------------------------------------------------------------

class Transducer(nn.Module):
    def __init__(self, n_in, enc=96, pred=64, joint=96, layers=2):
        super().__init__()
        self.encoder = nn.LSTM(n_in, enc, num_layers=layers)
        self.embed = nn.Embedding(VOCAB, 32)
        self.predictor = nn.LSTM(32, pred)
        self.joint_enc = nn.Linear(enc, joint)
        self.joint_pred = nn.Linear(pred, joint, bias=False)
        self.out = nn.Linear(joint, VOCAB)

    def encode(self, feats):
        lengths = torch.tensor([len(f) for f in feats])
        padded = nn.utils.rnn.pad_sequence(feats)
        packed = nn.utils.rnn.pack_padded_sequence(padded, lengths, enforce_sorted=False)
        out, _ = self.encoder(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0], lengths

    def predict(self, labels):
        """Prediction network over blank + each label prefix: (B, U+1, pred)."""
        prev = [torch.cat([torch.zeros(1, dtype=torch.long, device=y.device), y.long()])
                for y in labels]
        lengths = torch.tensor([len(p) for p in prev])
        padded = nn.utils.rnn.pad_sequence(prev)
        emb = self.embed(padded)
        packed = nn.utils.rnn.pack_padded_sequence(emb, lengths, enforce_sorted=False)
        out, _ = self.predictor(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0]

    def joint(self, enc, pred):
        return self.out(torch.tanh(self.joint_enc(enc).unsqueeze(2) +
                                   self.joint_pred(pred).unsqueeze(1)))

    def loss(self, feats, labels):
        import torchaudio
        enc, t_len = self.encode(feats)
        pred = self.predict(labels)
        logits = self.joint(enc, pred)  # (B, T, U+1, V)
        targets = nn.utils.rnn.pad_sequence(labels, batch_first=True).int()
        u_len = torch.tensor([len(y) for y in labels], dtype=torch.int32)
        return torchaudio.functional.rnnt_loss(
            logits, targets, t_len.int().to(logits.device), u_len.to(logits.device),
            blank=BLANK, reduction="mean")

    @torch.no_grad()
    def greedy(self, feats, max_symbols=5):
        """Per frame, emit the argmax label and advance the prediction network
        until blank or @p max_symbols labels."""
        enc, t_len = self.encode(feats)
        dev = enc.device
        hyps = []
        for b in range(len(feats)):
            y = []
            p, state = self.predictor(self.embed(torch.zeros(1, 1, dtype=torch.long,
                                                             device=dev)))
            for t in range(int(t_len[b])):
                for _ in range(max_symbols):
                    k = int(self.joint(enc[b, t].view(1, 1, -1), p.view(1, 1, -1)).argmax())
                    if k == BLANK:
                        break
                    y.append(k - 1)
                    p, state = self.predictor(
                        self.embed(torch.full((1, 1), k, dtype=torch.long, device=dev)), state)
            hyps.append(y)
        return hyps


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[len(b)]


def wer(model, strings, n, batch=32):
    model.eval()
    errors = words = 0
    for i in range(0, n, batch):
        feats, labels = strings.batch(range(i, min(n, i + batch)))
        for hyp, ref in zip(model.greedy(feats), labels):
            ref = [int(v) - 1 for v in ref]
            errors += edit_distance(ref, hyp)
            words += len(ref)
    model.train()
    return 100.0 * errors / words


def default_data_dir():
    env = os.environ.get("CSP_SPEECH_DATA")
    return env if env else str(ROOT / ".." / "shared" / "data" / "fsdd")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=default_data_dir(), help="FSDD directory")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--per-epoch", type=int, default=512, help="training strings per epoch")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--enc", type=int, default=96, help="encoder LSTM size")
    ap.add_argument("--sparsity", type=float, default=0.8, help="final sparsity (0: dense)")
    ap.add_argument("--sensing", default="activations",
                    choices=["identity", "gaussian", "rademacher", "activations"],
                    help="CSP sensing (identity: magnitude pruning, GMP)")
    ap.add_argument("--correction", default="blend", choices=["none", "full", "blend"])
    ap.add_argument("--observe-window", type=int, default=4)
    ap.add_argument("--begin", type=float, default=0.1, help="ramp start, fraction of training")
    ap.add_argument("--end", type=float, default=0.6, help="ramp end, fraction of training")
    ap.add_argument("--events", type=int, default=10, help="pruning events on the ramp")
    ap.add_argument("--eval", type=int, default=100, help="validation and test strings")
    ap.add_argument("--norm-strings", type=int, default=128,
                    help="training strings the feature normalisation is fitted on")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, ... (staged pruning)")
    ap.add_argument("--save", help="write model, optimizer and pruner state here")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    t0 = time.time()
    corpus = Corpus(args.data)
    norm = normaliser(corpus, args.norm_strings)
    train = Strings(corpus, args.seed, "train", norm)
    val = Strings(corpus, 0, "val", norm)      # fixed: the same for every run
    test = Strings(corpus, 0, "test", norm)
    print("data %s: %d speakers, features normalised in %.1f s"
          % (args.data, len(corpus.speakers), time.time() - t0))

    model = Transducer(STACK * 40, enc=args.enc).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * math.ceil(args.per_epoch / args.batch)
    pruner = None
    if args.sparsity > 0:
        begin = int(args.begin * steps)
        end = max(begin + 1, int(args.end * steps))
        log = []
        pruner = csprune.torch.ModulePruner(
            model, opt, final_sparsity=args.sparsity, begin_step=begin, end_step=end,
            frequency=max(1, (end - begin) // args.events), granularity="row",
            sensing=args.sensing, correction=args.correction, alpha=0.5,
            observe_window=args.observe_window, seed=args.seed, num_threads=args.threads,
            overrides={"embed.weight": {"prune": False}},
            on_event=lambda info: log.append((info.step, info.sparsity)))
        print("pruning %d matrices to %.2f (sensing %s), steps %d..%d of %d"
              % (len(pruner.names), args.sparsity, args.sensing, begin, end, steps))

    step = 0
    for epoch in range(1, args.epochs + 1):
        t1, total = time.time(), 0.0
        for i in range(0, args.per_epoch, args.batch):
            idx = range((epoch - 1) * args.per_epoch + i,
                        (epoch - 1) * args.per_epoch + min(args.per_epoch, i + args.batch))
            feats, labels = train.batch(idx)
            loss = model.loss([f.to(dev) for f in feats], [y.to(dev) for y in labels])
            opt.zero_grad()
            loss.backward()  # the pruner's hooks mask the pruned weights' gradients
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if pruner is not None:
                pruner.step()
            total += loss.item()
            step += 1
        n = math.ceil(args.per_epoch / args.batch)
        print("epoch %d  loss %.3f  val WER %.1f%%  sparsity %.3f  %.0f s"
              % (epoch, total / n, wer(model, val, args.eval),
                 pruner.sparsity() if pruner else 0.0, time.time() - t1))
    result = wer(model, test, args.eval)
    if pruner is not None:
        print(pruner.summary())
        print("events: %s" % ", ".join("%d:%.2f" % e for e in log))
    if args.save:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "pruner": pruner.state_dict() if pruner else None}, args.save)
        print("saved", args.save)
    print("test WER %.1f%% (%d strings)" % (result, args.eval))
    if pruner is not None:
        pruner.close()
    return result


if __name__ == "__main__":
    main()
