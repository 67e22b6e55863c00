#!/usr/bin/python3
"""Smoke test of speech_demo, end to end, without FSDD.

Writes a tiny synthetic set of tone WAVs ({digit}_{speaker}_{index}.wav, the
FSDD layout), trains a small model for two epochs with each pruning method
and checks the RESULT line: the final sparsity is exactly the schedule's
count, masked weights and Adam moments are zero, the pruning events ran.
When espeak-ng and sox are installed it also checks the synthetic fallback
(generated once into a cache, two processes racing for it).

usage: test_demo_smoke.py SPEECH_DEMO
"""
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import wave

RATE = 8000
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)


def write_tones(root, speakers=("alto", "bass"), per=8):
    """Digit d is a tone at 300 + 150 d Hz (shifted per speaker) with a
    little noise, 0.2-0.3 s long."""
    rng = random.Random(7)
    os.makedirs(root)
    for d in range(10):
        for si, spk in enumerate(speakers):
            for i in range(per):
                f0 = 300.0 + 150.0 * d + 40.0 * si + 10.0 * rng.random()
                n = int(RATE * (0.2 + 0.1 * rng.random()))
                frames = bytearray()
                for t in range(n):
                    v = 0.5 * math.sin(2 * math.pi * f0 * t / RATE) + 0.05 * rng.gauss(0, 1)
                    frames += struct.pack("<h", max(-32768, min(32767, int(v * 32767))))
                with wave.open(os.path.join(root, f"{d}_{spk}_{i}.wav"), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(RATE)
                    w.writeframes(bytes(frames))


def run(demo, args, cwd, env=None):
    e = dict(os.environ)
    e.pop("CSP_SPEECH_DATA", None)
    e["OPENBLAS_NUM_THREADS"] = "1"
    e.update(env or {})
    p = subprocess.run([demo] + args, cwd=cwd, env=e, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    result = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    return p, result


def check_result(label, p, r, sparsity):
    check(p.returncode == 0, f"{label}: exit {p.returncode}\n{p.stdout[-3000:]}")
    check(r is not None, f"{label}: no RESULT line")
    if r is None:
        return
    check(r["mask_ok"] is True, f"{label}: a masked weight or Adam moment is nonzero")
    if sparsity == 0:
        check(r["nnz"] == r["numel"], f"{label}: dense run has nnz {r['nnz']} of {r['numel']}")
        return
    exact = r["sparsity_exact"] is not None  # a global threshold has no per-tensor count
    check(r["sparsity_exact"] is True or not exact,
          f"{label}: nnz {r['nnz']} != expected {r['expected_nnz']}")
    for t in r["tensors"]:
        check(t["nnz"] == t["expected_nnz"] or not exact,
              f"{label}: {t['name']} nnz {t['nnz']} != expected {t['expected_nnz']}")
        check(t["nonzero_values"] <= t["nnz"], f"{label}: {t['name']} has values off the mask")
    check(abs(r["sparsity_achieved"] - sparsity) < 0.05,
          f"{label}: achieved sparsity {r['sparsity_achieved']} far from {sparsity}")
    check(r["bytes"]["source"] == "libcsp" and r["bytes"]["export_roundtrip"] is True,
          f"{label}: sizes not from libcsp's export, or its CSR round trip differs")
    check(r["bytes"]["csr"] < r["bytes"]["dense"], f"{label}: CSR export not smaller than dense")
    check(r["time"]["events"] > 0, f"{label}: no pruning event ran")
    check(r["time"]["csp_calls"] == r["steps"], f"{label}: csp_step not called every step")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    demo = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="speech-smoke-")
    try:
        data = os.path.join(tmp, "tones")
        write_tones(data)
        small = ["--data", data, "--epochs", "2", "--hidden", "16", "--batch", "8",
                 "--seed", "3"]

        p = subprocess.run([demo, "--list-methods"], stdout=subprocess.PIPE, text=True)
        methods = {json.loads(ln[7:])["name"]: json.loads(ln[7:])
                   for ln in p.stdout.splitlines() if ln.startswith("METHOD ")}
        names = list(methods)
        check(p.returncode == 0 and {"dense", "gmp", "gmp-tensor", "csp"} <= set(names),
              f"--list-methods: {names}")

        for method in ("gmp", "gmp-tensor"):
            for ev in ("official", "speaker:bass"):
                p, r = run(demo, small + ["--method", method, "--sparsity", "0.9",
                                          "--eval", ev], tmp)
                check_result(f"{method} {ev}", p, r, 0.9)
                if r:
                    check(r["data"]["kind"] == "other", f"{method}: data kind {r['data']}")
                    check(r["eval"] == ev, f"{method}: eval {r['eval']}")
        # Every method the binary lists runs, the CSP variants with exact counts
        # and their statistics in RESULT.
        check(any(m["is_csp"] for m in methods.values()), "no CSP method is listed")
        for method in names:
            if method in ("gmp", "gmp-tensor"):
                continue
            p, r = run(demo, small + ["--method", method, "--sparsity", "0.8", "--quiet"], tmp)
            if method == "dense":
                check_result(method, p, r, 0)
                continue
            check_result(method, p, r, 0.8)
            if r and methods[method]["is_csp"]:
                check("csp" in r and len(r["csp"]["tensors"]) == 3,
                      f"{method}: no CSP statistics in RESULT")
                if "csp" in r:
                    for t in r["csp"]["tensors"]:
                        check(0.0 <= t["weight_error"] <= 10.0 and t["changing_events"] > 0,
                              f"{method}: {t}")
                    if any(t["sensing"] == "activations" for t in r["csp"]["tensors"]):
                        check(r["csp"]["observed_passes"] > 0, f"{method}: nothing observed")
        # --csp overrides on top of a method: activations on W_ih only, with a
        # blended refit on GMP's support; the other two stay GMP tensors.
        p, r = run(demo, small + ["--method", "gmp", "--sparsity", "0.8", "--quiet", "--csp",
                                  "sensing=activations,support=magnitude,correction=blend,"
                                  "alpha=0.3,window=2,tensors=ih"], tmp)
        check_result("gmp --csp", p, r, 0.8)
        if r:
            kinds = [t["sensing"] for t in r["csp"]["tensors"]]
            check(kinds == ["activations", "identity", "identity"], f"--csp: sensing {kinds}")
            check(0 < r["csp"]["observed_passes"] <= 2 * r["time"]["events"],
                  f"--csp window=2: {r['csp']['observed_passes']} passes observed")
        # Same seed, same masks and accuracy.
        _p1, r1 = run(demo, small + ["--method", "gmp", "--sparsity", "0.9", "--quiet"], tmp)
        _p2, r2 = run(demo, small + ["--method", "gmp", "--sparsity", "0.9", "--quiet",
                                     "--threads", "2"], tmp)
        check(r1 and r2 and r1["digest"] == r2["digest"] and r1["test_acc"] == r2["test_acc"],
              "same seed, 1 vs 2 libcsp threads: different masks or accuracy")
        # Bad input is refused with a message.
        for bad in (["--method", "nope"], ["--sparsity", "1.0"], ["--eval", "speaker:nobody"],
                    ["--epochs", "0"], ["--csp", "sensing=nope"], ["--csp", "alpha"],
                    ["--csp", "tensors=ih+xx"], ["--csp", "colour=red"],
                    ["--method", "gmp-tensor", "--csp", "sensing=gaussian,granularity=tensor"]):
            p, r = run(demo, small + bad, tmp)
            check(p.returncode != 0 and r is None and p.stdout.strip(),
                  f"{bad}: exit {p.returncode} without a message")

        # The espeak-ng fallback (outside any repository, no FSDD).
        if shutil.which("espeak-ng") and shutil.which("sox"):
            cache = os.path.join(tmp, "cache")
            args = ["--espeak-cache", cache, "--espeak-takes", "5", "--print-data"]
            e = dict(os.environ, OPENBLAS_NUM_THREADS="1")
            e.pop("CSP_SPEECH_DATA", None)
            procs = [subprocess.Popen([demo] + args, cwd=tmp, env=e, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for _ in range(2)]
            outs = [pr.communicate(timeout=300)[0] for pr in procs]
            for pr, out in zip(procs, outs):
                check(pr.returncode == 0 and "DATA " in out, f"espeak fallback: {out[-2000:]}")
            p, r = run(demo, ["--espeak-cache", cache, "--espeak-takes", "5", "--epochs", "2",
                              "--hidden", "16", "--batch", "16", "--method", "gmp",
                              "--sparsity", "0.9", "--eval", "speaker:gbf3"], tmp)
            check_result("espeak gmp", p, r, 0.9)
            if r:
                check(r["data"]["kind"] == "espeak" and r["data"]["files"] == 250,
                      f"espeak data: {r['data']}")
                check("SYNTHETIC" in p.stdout, "espeak run does not say the data is synthetic")
        else:
            print("espeak-ng or sox missing: fallback not checked", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
