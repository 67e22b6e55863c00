"""rnnt_demo end to end in seconds: a tiny model, one epoch, a few
utterances; the RESULT line must follow rnnt_compare/schema.py, pruned runs
must reach their sparsity with pruned weights zero (mask_ok) and libcsp's
exports must decode back (export_ok). Also: a bad option exits 2, and the
schema checker rejects a broken line. Skips (77) when neither FSDD nor the
espeak-ng fallback can give data.

usage: test_demo_smoke.py RNNT_DEMO [FSDD_DIR]"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rnnt_compare import schema  # noqa: E402

TINY = ["--epochs", "1", "--n-train", "48", "--n-valid", "12", "--n-test", "16",
        "--batch", "16", "--enc-layers", "1", "--enc-hidden", "16", "--embed", "8",
        "--pred-hidden", "16", "--joint", "16", "--events", "2", "--begin", "0.0",
        "--end", "0.5"]


def run(demo, args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([demo] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=300)


def main():
    demo = sys.argv[1]
    data = ["--data-dir", sys.argv[2]] if len(sys.argv) > 2 else []
    if run(demo, ["--bogus", "1"]).returncode != 2:
        sys.exit("a bad option must exit 2")
    fails = 0
    for method, s in (("dense", 0.0), ("gmp", 0.5), ("csp-act", 0.5)):
        infer = ["--infer"] if method == "gmp" else []
        p = run(demo, TINY + data + ["--method", method, "--sparsity", str(s)] + infer)
        if p.returncode != 0 and method == "dense" and "data:" in p.stderr:
            print("no data (FSDD or espeak-ng): skipped\n" + p.stderr)
            sys.exit(77)
        if p.returncode != 0:
            print(p.stdout + p.stderr)
            sys.exit("%s failed with %d" % (method, p.returncode))
        for needle in ("epoch   1/1", "valid WER", "remaining", "csp_step", "data: "):
            if needle not in p.stdout:
                print(p.stdout)
                sys.exit("%s: no %r in the output" % (method, needle))
        r = schema.parse(p.stdout)
        ok = r["mask_ok"] and r["export_ok"] and r["method"] == method
        if method != "dense":
            ok = ok and abs(r["actual_sparsity"] - s) < 0.02 and r["events"] >= 1
            ok = ok and len(r["tensors"]) == 7 and r["csp_step_seconds"] > 0
        else:
            ok = ok and r["nnz"] == r["prunable_numel"]
        if method == "csp-act":
            ok = ok and r["observed_passes"] > 0
        if infer:
            # The streaming decoders, dense and sparse, on the test strings:
            # the same hypotheses (near ties aside), fewer bytes when sparse.
            lines = [l for l in p.stdout.splitlines() if l.startswith("INFER ")]
            inf = json.loads(lines[-1][len("INFER "):]) if lines else {}
            # (16 FSDD test strings; the espeak fallback's test set is fixed)
            n = inf.get("utterances", 0)
            ok = ok and n > 0 and inf["same_hyps"] >= n - max(2, n // 8)
            ok = ok and 0 < inf["sparse_bytes"] < inf["dense_bytes"]
            ok = ok and inf["dense_s"] > 0 and inf["sparse_s"] > 0 and inf["audio_s"] > 0
            print("infer: %s" % inf)
        print("%-8s WER %.1f %% sparsity %.3f events %d: %s"
              % (method, r["wer"], r["actual_sparsity"], r["events"], "ok" if ok else "BAD"))
        fails += not ok
        line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")][-1]
        obj = json.loads(line[len(schema.PREFIX):])
        obj["wer"] = "x"
        try:
            schema.check(obj)
            sys.exit("the schema checker accepted a string WER")
        except ValueError:
            pass
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
