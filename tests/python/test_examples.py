"""The Python examples run (the speech one on a tiny synthetic data set)."""

import os
import subprocess
import sys
import wave

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python")


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args],
                          capture_output=True, text=True, timeout=300)


def test_minimal_numpy():
    r = run("minimal_numpy.py")
    assert r.returncode == 0, r.stderr
    assert "step 100: pruned to  8 of 32 weights kept (target 0.750)" in r.stdout


def write_digits(directory, indices=7):
    """Tones standing in for spoken digits: {digit}_{speaker}_{index}.wav."""
    rng = np.random.default_rng(0)
    for digit in range(10):
        for speaker in ("ann", "bob"):
            for index in range(indices):  # 0-4 test, the rest train (rnnt: and validation)
                n = int(8000 * rng.uniform(0.1, 0.3))
                t = np.arange(n) / 8000
                x = 0.3 * np.sin(2 * np.pi * (300 + 150 * digit) * t)
                x += 0.01 * rng.standard_normal(n)
                with wave.open(str(directory / ("%d_%s_%d.wav" % (digit, speaker, index))),
                               "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(8000)
                    w.writeframes((x * 32767).astype("<i2").tobytes())


def test_torch_speech_smoke(tmp_path):
    if os.environ.get("CSP_TEST_SKIP_TORCH"):
        pytest.skip("CSP_TEST_SKIP_TORCH: " + os.environ["CSP_TEST_SKIP_TORCH"])
    pytest.importorskip("torch", reason="PyTorch (Debian python3-torch) is not installed")
    write_digits(tmp_path)
    r = run("torch_speech.py", "--data", str(tmp_path), "--epochs", "2", "--hidden", "16",
            "--batch", "8", "--sparsity", "0.5", "--events", "2", "--sensing", "activations",
            "--observe-window", "2", "--correction", "blend", "--save", str(tmp_path / "ckpt.pt"))
    assert r.returncode == 0, r.stderr
    assert "40 train / 100 test utterances" in r.stdout
    assert "lstm.weight_hh_l0" in r.stdout and "test accuracy" in r.stdout
    assert "sensing activations" in r.stdout and "weight error" in r.stdout
    assert (tmp_path / "ckpt.pt").is_file()


def test_rnnt_smoke(tmp_path):
    if os.environ.get("CSP_TEST_SKIP_TORCH"):
        pytest.skip("CSP_TEST_SKIP_TORCH: " + os.environ["CSP_TEST_SKIP_TORCH"])
    pytest.importorskip("torch", reason="PyTorch (Debian python3-torch) is not installed")
    pytest.importorskip("torchaudio", reason="torchaudio (Debian python3-torchaudio) is not "
                        "installed")
    write_digits(tmp_path, indices=12)  # 0-4 test, 5-6 train, 7-11 validation
    r = run("rnnt.py", "--data", str(tmp_path), "--epochs", "2", "--per-epoch", "16",
            "--batch", "8", "--eval", "4", "--enc", "16", "--sparsity", "0.5", "--events", "2",
            "--observe-window", "1", "--norm-strings", "8", "--save",
            str(tmp_path / "ckpt.pt"))
    assert r.returncode == 0, r.stderr
    assert "data %s: 2 speakers" % tmp_path in r.stdout
    assert "encoder.weight_hh_l1" in r.stdout and "activations" in r.stdout
    assert "embed.weight" not in r.stdout  # the embedding stays dense
    assert "test WER" in r.stdout and (tmp_path / "ckpt.pt").is_file()
