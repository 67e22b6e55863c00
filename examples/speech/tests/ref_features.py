#!/usr/bin/python3
"""Float64 numpy reference for examples/speech/logmel.c.

Usage: ref_features.py DUMP.bin FILE.wav...   (DUMP.bin from feat_dump)
Independent implementation (numpy rfft, own mel bank) of: 8 kHz, frame 200,
hop 80, symmetric Hamming (numpy.hamming), 256-point rfft, |X|^2, 40 HTK-mel
triangles 20..4000 Hz (torchaudio melscale_fbanks formula), log(mel + 1e-6).
Exits 1 when any value differs by more than TOL (absolute, in log units).
"""
import struct
import sys
import wave

import numpy as np

TOL = 1e-5


def mel_bank(sr=8000, nfft=256, nmel=40, fmin=20.0, fmax=4000.0):
    hz2mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    mel2hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    freqs = np.linspace(0, sr // 2, nfft // 2 + 1)
    fpts = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), nmel + 2))
    fdiff = fpts[1:] - fpts[:-1]
    slopes = fpts[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / fdiff[:-1]
    up = slopes[:, 2:] / fdiff[1:]
    return np.maximum(0.0, np.minimum(down, up))  # (nbins, nmel)


def logmel(x):
    if len(x) < 200:
        x = np.concatenate([x, np.zeros(200 - len(x))])
    nf = (len(x) - 200) // 80 + 1
    idx = np.arange(200)[None, :] + 80 * np.arange(nf)[:, None]
    frames = x[idx] * np.hamming(200)[None, :]
    power = np.abs(np.fft.rfft(frames, n=256, axis=1)) ** 2
    return np.log(power @ mel_bank() + 1e-6)


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0


def main():
    dump, files = sys.argv[1], sys.argv[2:]
    data = open(dump, "rb").read()
    pos, worst = 0, 0.0
    for path in files:
        (nf,) = struct.unpack_from("=q", data, pos)
        pos += 8
        got = np.frombuffer(data, dtype=np.float32, count=nf * 40, offset=pos)
        pos += nf * 40 * 4
        ref = logmel(read_wav(path))
        if ref.shape != (nf, 40):
            print(f"FAIL {path}: frames {nf} vs reference {ref.shape[0]}")
            return 1
        err = np.max(np.abs(got.reshape(nf, 40).astype(np.float64) - ref))
        worst = max(worst, err)
        print(f"{path}: frames={nf} max_abs_err={err:.3g}")
    ok = worst <= TOL
    print(f"features vs float64 reference: max_abs_err={worst:.3g} tol={TOL} "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
