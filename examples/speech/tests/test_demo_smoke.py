#!/usr/bin/python3
"""Smoke test of speech_demo and compare.py, end to end, without FSDD.

Writes a tiny synthetic set of tone WAVs ({digit}_{speaker}_{index}.wav, the
FSDD layout), trains a small model for two epochs with each pruning method
and checks every RESULT line field by field against the schema
(speech_compare/schema.py: types, ranges, required and unknown keys) and
for consistency: totals computed from the model for the --hidden given (16
and 64), the final sparsity exactly the schedule's count, masked weights
and Adam moments zero, the pruning events ran, the recipe as asked. It
checks that README.md documents exactly the schema's keys, that only
speech_csp.c and speech_methods.c call libcsp, that the validation splits
hold no test utterance, and runs compare.py on a tiny grid (--hidden 64)
whose report must state the computed totals. When espeak-ng and sox are
installed it also checks the synthetic fallback (generated once into a
cache, two processes racing for it).

usage: test_demo_smoke.py SPEECH_DEMO
"""
import copy
import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
SPEECH = os.path.dirname(HERE)
sys.path.insert(0, SPEECH)

from speech_compare import schema  # noqa: E402

RATE = 8000
SPEAKERS = ("alto", "bass", "tenor")
PER = 12  # recordings per digit and speaker: 0-4 test, 5-9 validation, 10-11 train
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)


def write_tones(root, speakers=SPEAKERS, per=PER):
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


def model_sizes(h, n_in=40, classes=10):
    """(pruned weights, bias parameters, all parameters) of LSTM(n_in -> h)
    mean-pool Linear(h -> classes), counted from the architecture."""
    pruned = 4 * h * n_in + 4 * h * h + classes * h
    biases = 8 * h + classes
    return pruned, biases, pruned + biases


def check_consistency(label, r):
    """Relations between fields that the schema alone cannot state."""
    h = r["hidden"]
    pruned, biases, params = model_sizes(h)
    check(r["model"] == {"input": 40, "hidden": h, "classes": 10, "params": params,
                         "pruned_params": pruned, "bias_params": biases},
          f"{label}: model {r['model']} for H = {h}")
    shapes = [(t["rows"], t["cols"]) for t in r["tensors"]]
    check(shapes == [(4 * h, 40), (4 * h, h), (10, h)], f"{label}: shapes {shapes}")
    check(r["numel"] == pruned and sum(t["numel"] for t in r["tensors"]) == pruned and
          r["nnz"] == sum(t["nnz"] for t in r["tensors"]),
          f"{label}: totals {r['numel']} / {r['nnz']} vs the tensors")
    check(r["bytes"]["dense"] == 4 * pruned and r["bytes"]["biases"] == 4 * biases and
          r["bytes"]["csr"] == sum(t["csr_bytes"] for t in r["tensors"]) and
          r["bytes"]["bitmap"] == sum(t["bitmap_bytes"] for t in r["tensors"]),
          f"{label}: bytes {r['bytes']} for H = {h}")
    check(r["test_correct"] <= r["test_n"] and abs(r["test_err"] + r["test_acc"] - 1) < 1e-12
          and abs(r["test_acc"] - r["test_correct"] / r["test_n"]) < 1e-12,
          f"{label}: accuracy fields disagree")
    one = r["one_shot"]
    epochs = one["finetune_epochs"] if one else r["epochs"]  # epochs trained by this run
    check(r["steps"] == r["steps_per_epoch"] * epochs and
          len(r["history"]) == epochs and
          [x["epoch"] for x in r["history"]] == list(range(1, epochs + 1)),
          f"{label}: steps or history")
    last = r["history"][-1] if r["history"] else None
    check(last is None or (
          last["test_err"] is not None and abs(last["test_err"] - r["test_err"]) < 1e-12 and
          last["lr"] == r["training"]["final_lr"] and
          sum(x["clipped"] for x in r["history"]) == r["training"]["clipped_steps"] <= r["steps"]),
          f"{label}: the last epoch of the history is not the result")
    dense = r["method"] == "dense"
    check((r["schedule"] is None) == dense and (r["csp"] is None) == dense and
          (r["bytes"]["source"] == "speech_demo") == dense,
          f"{label}: schedule/csp/bytes source vs method")
    if not dense:
        check(r["time"]["csp_calls"] == r["steps"] + (1 if one else 0),
              f"{label}: csp_step not called every step (and at the one-shot event)")
        check(r["time"]["events"] > 0, f"{label}: no pruning event ran")
        check((r["time"]["csp_mask_s"] > 0) == (r["recipe"]["mask_gradients"] and r["steps"] > 0),
              f"{label}: gradient masking time {r['time']['csp_mask_s']} vs the recipe")


def check_result(label, p, r, sparsity):
    check(p.returncode == 0, f"{label}: exit {p.returncode}\n{p.stdout[-3000:]}")
    check(r is not None, f"{label}: no RESULT line")
    if r is None:
        return
    problems = schema.validate(r)
    check(not problems, f"{label}: RESULT does not fit {schema.SCHEMA}: {problems[:8]}")
    if problems:
        return
    check_consistency(label, r)
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
    check(r["bytes"]["export_roundtrip"] is True, f"{label}: the CSR round trip differs")
    check(r["bytes"]["csr"] < r["bytes"]["dense"], f"{label}: CSR export not smaller than dense")


def check_schema_catches(r):
    """The validator finds each kind of problem in a copy of a valid result."""
    mutants = {
        "missing key": lambda x: x.pop("test_err"),
        "unknown key": lambda x: x.update(colour="red"),
        "wrong type": lambda x: x.update(seed="1"),
        "bool for int": lambda x: x["tensors"][0].update(nnz=True),
        "out of range": lambda x: x.update(test_acc=1.5),
        "bad choice": lambda x: x["recipe"].update(lr_decay="zigzag"),
        "bad pattern": lambda x: x.update(digest="xyz"),
        "null not allowed": lambda x: x.update(model=None),
        "nested missing": lambda x: x["history"][0].pop("lr"),
        "wrong schema": lambda x: x.update(schema="speech-result/1"),
    }
    for what, mutate in mutants.items():
        m = copy.deepcopy(r)
        mutate(m)
        check(schema.validate(m), f"schema validator misses: {what}")


def check_readme_documents_schema():
    """README.md's RESULT table lists exactly the schema's keys."""
    with open(os.path.join(SPEECH, "README.md")) as f:
        text = f.read()
    i = text.find("### RESULT")
    section = text[i:text.find("\n## ", i)] if i >= 0 else ""
    documented = re.findall(r"^\| `([^`]+)` \|", section, re.M)
    want = schema.key_paths()
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    check(rows == schema.markdown_rows(), "README.md's RESULT rows are not those of "
          "`python3 examples/speech/speech_compare/schema.py` (types or meanings differ)")
    check(i >= 0 and schema.SCHEMA in section, "README.md has no RESULT section naming "
          + schema.SCHEMA)
    check(sorted(documented) == sorted(want) and len(documented) == len(set(documented)),
          "README.md's RESULT table differs from the schema: missing "
          f"{sorted(set(want) - set(documented))}, extra {sorted(set(documented) - set(want))}")


def check_libcsp_calls_in_one_place():
    """Only speech_csp.c (calls) and speech_methods.c (option structs) use libcsp."""
    for name in ("speech_demo.c", "speech_args.c", "speech_data.c", "speech_report.c"):
        with open(os.path.join(SPEECH, name)) as f:
            src = re.sub(r"/\*.*?\*/|//[^\n]*|\"(\\.|[^\"\\])*\"", "", f.read(), flags=re.S)
        calls = sorted(set(re.findall(r"\b(csp_\w+)\s*\(", src)) |
                       set(re.findall(r"\b(CSP_CHECK_VERSION)\b", src)))
        check(not calls, f"{name} calls libcsp ({', '.join(calls)}): keep them in speech_csp.c")


def methods_of(demo):
    p = subprocess.run([demo, "--list-methods"], stdout=subprocess.PIPE, text=True)
    methods = {json.loads(ln[7:])["name"]: json.loads(ln[7:])
               for ln in p.stdout.splitlines() if ln.startswith("METHOD ")}
    check(p.returncode == 0 and {"dense", "gmp", "gmp-tensor", "csp"} <= set(methods),
          f"--list-methods: {list(methods)}")
    check(any(m["is_csp"] for m in methods.values()), "no CSP method is listed")
    return methods


def check_methods(demo, small, tmp, methods):
    """Every method the binary lists runs; the CSP variants with their
    statistics in RESULT. Returns one valid result for the schema checks."""
    valid = None
    for method in ("gmp", "gmp-tensor"):
        for ev in ("official", "speaker:bass"):
            p, r = run(demo, small + ["--method", method, "--sparsity", "0.9", "--eval", ev], tmp)
            check_result(f"{method} {ev}", p, r, 0.9)
            if r:
                valid = valid or r
                check(r["data"]["kind"] == "other", f"{method}: data kind {r['data']}")
                check(r["eval"] == ev and r["eval_set"] == "test", f"{method}: eval {r['eval']}")
    for method in methods:
        if method in ("gmp", "gmp-tensor"):
            continue
        p, r = run(demo, small + ["--method", method, "--sparsity", "0.8", "--quiet"], tmp)
        check_result(method, p, r, 0 if method == "dense" else 0.8)
        if r and r.get("csp") and methods[method]["is_csp"]:
            check(len(r["csp"]["tensors"]) == 3, f"{method}: no CSP statistics in RESULT")
            for t in r["csp"]["tensors"]:
                check(0.0 <= t["weight_error"] <= 10.0 and t["changing_events"] > 0,
                      f"{method}: {t}")
            if any(t["sensing"] == "activations" for t in r["csp"]["tensors"]):
                check(r["csp"]["observed_passes"] > 0, f"{method}: nothing observed")
        if r and method == "dense":
            check([h["test_err"] is None for h in r["history"]] == [False, False],
                  "--quiet with --history 5 evaluates both epochs of two")
    return valid


def check_overrides_and_threads(demo, small, tmp):
    # --csp overrides on top of a method: activations on W_ih only, with a
    # blended refit on GMP's support; the other two stay GMP tensors.
    p, r = run(demo, small + ["--method", "gmp", "--sparsity", "0.8", "--quiet", "--csp",
                              "sensing=activations,support=magnitude,correction=blend,"
                              "alpha=0.3,window=2,tensors=ih"], tmp)
    check_result("gmp --csp", p, r, 0.8)
    if r and r.get("csp"):
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
    # --csp adapt=B: the adaptive schedule (pruner-wide). A bound no event
    # exceeds grows every increment, so the model is sparser than the cubic
    # schedule's after epoch 1 (mid-ramp: the ramp ends at 0.9 of the steps) and at the same final sparsity.
    ramp = ["--method", "gmp", "--sparsity", "0.9", "--quiet", "--end", "0.9"]
    _p4, r1 = run(demo, small + ramp, tmp)
    _p3, r3 = run(demo, small + ramp + ["--csp", "adapt=1000"], tmp)
    check_result("gmp --csp adapt=1000", _p3, r3, 0.9)
    if r1 and r3:
        s1 = [h["sparsity"] for h in r1["history"]]
        s3 = [h["sparsity"] for h in r3["history"]]
        check(s3[0] > s1[0] + 0.01 and abs(s3[-1] - s1[-1]) < 1e-9,
              f"--csp adapt=1000: sparsity per epoch {s3} against the schedule's {s1}")


def check_recipes(demo, small, tmp):
    """The default recipe, --recipe old and the same spelt out, --hidden 64."""
    base = small + ["--method", "gmp", "--sparsity", "0.9", "--quiet"]
    p, new = run(demo, base, tmp)
    check_result("default recipe", p, new, 0.9)
    p, old = run(demo, base + ["--recipe", "old"], tmp)
    check_result("--recipe old", p, old, 0.9)
    p, spelt = run(demo, base + ["--lr-decay", "none", "--no-mask-gradients"], tmp)
    check_result("old spelt out", p, spelt, 0.9)
    if new and old and spelt:
        rc = new["recipe"]
        check(rc["name"] == "masked-decay" and rc["mask_gradients"] and
              rc["lr_decay"] == "cosine" and rc["lr_final"] == 0.05 and
              rc["lr_decay_begin_step"] == round(0.8 * new["steps"]) and
              rc["lr_decay_end_step"] == new["steps"] - 1, f"default recipe {rc}")
        check(abs(new["training"]["final_lr"] - rc["lr"] * rc["lr_final"]) < 1e-9,
              f"final lr {new['training']['final_lr']} vs {rc['lr']} x {rc['lr_final']}")
        check(old["recipe"]["lr_decay"] == "none" and not old["recipe"]["mask_gradients"] and
              old["training"]["final_lr"] == old["recipe"]["lr"], f"old recipe {old['recipe']}")
        check(old["digest"] == spelt["digest"] and old["test_loss"] == spelt["test_loss"],
              "--recipe old differs from its flags spelt out")
    # A decay asked for by kind starts at the ramp's end (0.6) unless given.
    for extra, begin in ((["--lr-decay", "linear"], 0.6),
                         (["--lr-decay", "linear", "--lr-decay-begin", "0.7"], 0.7),
                         (["--lr-decay-begin", "0.7", "--lr-decay", "exp"], 0.7),
                         (["--recipe", "old", "--lr-decay", "cosine"], 0.6)):
        p, r = run(demo, base + extra, tmp)
        check(r is not None and r["recipe"]["lr_decay_begin_step"] == round(begin * r["steps"]),
              f"{extra}: decay from {r and r['recipe']['lr_decay_begin_step']}, want "
              f"{begin} of the steps")
    p, r = run(demo, base + ["--hidden", "64"], tmp)
    check_result("--hidden 64", p, r, 0.9)
    check(r is not None and r["model"]["params"] == model_sizes(64)[2],
          "--hidden 64: parameter count")


def check_validation(demo, small, tmp):
    for ev, n_train, n_val in (("official", 60, 150), ("speaker:bass", 120, 120)):
        p, r = run(demo, small + ["--method", "gmp", "--sparsity", "0.9", "--quiet",
                                  "--validate", "--eval", ev], tmp)
        check_result(f"--validate {ev}", p, r, 0.9)
        if r:
            check(r["eval_set"] == "validation" and r["validation"] is not None and
                  r["train_n"] == n_train and r["test_n"] == n_val,
                  f"--validate {ev}: {r['eval_set']} {r['validation']} train {r['train_n']} "
                  f"validation {r['test_n']}")
            if ev != "official":
                check(r["validation"]["speaker"] == "tenor", f"validation speaker "
                      f"{r['validation']}")


def check_refusals(demo, small, tmp):
    for bad in (["--method", "nope"], ["--sparsity", "1.0"], ["--eval", "speaker:nobody"],
                ["--epochs", "0"], ["--csp", "sensing=nope"], ["--csp", "alpha"],
                ["--csp", "tensors=ih+xx"], ["--csp", "colour=red"],
                ["--csp", "adapt=-0.1"],
                ["--method", "gmp-tensor", "--csp", "sensing=gaussian,granularity=tensor"],
                ["--recipe", "new"], ["--lr-decay", "zigzag"], ["--lr-final", "0"],
                ["--lr-decay-begin", "0.9", "--lr-decay-end", "0.8"], ["--history", "-1"]):
        p, r = run(demo, small + bad, tmp)
        check(p.returncode != 0 and r is None and p.stdout.strip(),
              f"{bad}: exit {p.returncode} without a message")


def check_one_shot(demo, small, tmp):
    """--save-dense / --load-dense / --one-shot: the loaded dense model scores
    as it did; one event at step 0 to the exact budget (row and N:M), from
    calibration activations; fine-tuning keeps the pattern (same digest)."""
    dense = os.path.join(tmp, "model.dense")
    p, r = run(demo, small + ["--method", "dense", "--quiet", "--save-dense", dense], tmp)
    check_result("dense --save-dense", p, r, 0)
    check(os.path.exists(dense), "--save-dense wrote no file")
    base = small + ["--quiet", "--one-shot", "--load-dense", dense, "--calib", "40"]
    p, rd = run(demo, base + ["--method", "dense"], tmp)
    check_result("dense --one-shot", p, rd, 0)
    if r and rd:
        check(rd["test_err"] == r["test_err"] and rd["one_shot"]["calib_n"] == 0,
              f"loaded dense model: error {rd['test_err']} != {r['test_err']}")
    digests = {}
    for method, csp, sparsity in (("gmp", "", 0.7), ("csp-act-refit", "", 0.7),
                                  ("csp-act-refit", "granularity=nm,nm=1:4,normalize=1", 0.75),
                                  ("csp-act", "support=wanda,granularity=nm,nm=2:4", 0.5),
                                  ("csp-act", "solver=sweep", 0.7)):
        for ft in (0, 1):
            extra = ["--csp", csp] if csp else []
            label = f"{method} {csp} one-shot ft {ft}"
            p, r = run(demo, base + ["--method", method, "--sparsity", str(sparsity),
                                     "--finetune-epochs", str(ft)] + extra, tmp)
            check_result(label, p, r, sparsity)
            if not r:
                continue
            o = r["one_shot"]
            check(r["steps"] == ft * r["steps_per_epoch"] and len(r["history"]) == ft,
                  f"{label}: steps {r['steps']}, history {len(r['history'])}")
            check(r["schedule"]["events"] == 1 and r["csp"]["events"] == 1 and
                  r["time"]["events"] == 1, f"{label}: not one event: {r['schedule']}")
            check(r["sparsity_exact"] is True and r["mask_ok"], f"{label}: budget or mask")
            check(o["finetune_epochs"] == ft and (o["calib_n"] == 40) == (method != "gmp"),
                  f"{label}: {o}")
            if ft == 0:
                check(o["err_after_event"] == r["test_err"], f"{label}: err_after_event")
            digests.setdefault((method, csp), set()).add(r["digest"])
    for key, d in digests.items():
        check(len(d) == 1, f"{key}: fine-tuning changed the mask ({d})")
    for args, what in ((["--one-shot"], "--one-shot without --load-dense"),
                       (["--load-dense", dense], "--load-dense without --one-shot"),
                       (["--method", "gmp", "--save-dense", dense], "--save-dense with gmp")):
        p, _ = run(demo, small + args, tmp)
        check(p.returncode == 2, f"{what}: exit {p.returncode}")
    p, _ = run(demo, small + ["--hidden", "8", "--one-shot", "--load-dense", dense], tmp)
    check(p.returncode != 0 and "another model size" in p.stdout,
          f"--load-dense of another model size: exit {p.returncode}")


def check_compare(demo, data, tmp):
    """compare.py on a tiny grid with --hidden 64: totals from the runs."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(demo)))
    out = os.path.join(tmp, "report")
    p = subprocess.run([sys.executable, os.path.join(SPEECH, "compare.py"), "--demo", demo,
                        "--build", build, "--data", data, "--epochs", "2", "--jobs", "2",
                        "--extra", "--hidden 64 --batch 8", "--methods", "dense,gmp",
                        "--sparsities", "0.9", "--seeds", "1,2", "--evals", "official",
                        "--out", out, "--cache", os.path.join(tmp, "cache")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=300)
    check(p.returncode == 0, f"compare.py: exit {p.returncode}\n{p.stdout[-3000:]}")
    md = os.path.join(out, "speech.md")
    if not os.path.exists(md):
        check(False, "compare.py wrote no report")
        return
    with open(md) as f:
        text = f.read()
    pruned, biases, _ = model_sizes(64)
    want = f"{pruned:,} weights, {4 * pruned:,} B as float32; the biases, {4 * biases:,} B"
    check(want in text, f"compare.py report does not state the H = 64 totals ({want})")
    check("LSTM(40->64)" in text and "Linear(64->10)" in text, "compare.py: model size")
    with open(os.path.join(out, "speech.json")) as f:
        runs = json.load(f)["runs"]
    check(len(runs) == 4 and all(not schema.validate(x["result"]) for x in runs),
          "compare.py JSON: 4 valid results")


def check_espeak(demo, tmp):
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        print("espeak-ng or sox missing: fallback not checked", flush=True)
        return
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


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    demo = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="speech-smoke-")
    try:
        check_readme_documents_schema()
        check_libcsp_calls_in_one_place()
        data = os.path.join(tmp, "tones")
        write_tones(data)
        small = ["--data", data, "--epochs", "2", "--hidden", "16", "--batch", "8",
                 "--seed", "3"]
        methods = methods_of(demo)
        valid = check_methods(demo, small, tmp, methods)
        if valid:
            check_schema_catches(valid)
        check_overrides_and_threads(demo, small, tmp)
        check_recipes(demo, small, tmp)
        check_validation(demo, small, tmp)
        check_refusals(demo, small, tmp)
        check_one_shot(demo, small, tmp)
        check_compare(demo, data, tmp)
        check_espeak(demo, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
