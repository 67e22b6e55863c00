"""rnnt_demo's one-shot mode (issue 14) end to end on a tiny model:

- --save-dense then --one-shot --load-dense --method dense: the loaded model
  is the saved one (params_fnv, the saver's in-memory parameters) and scores
  exactly the same test and validation WER (sub / ins / del);
- the file parses as rnnt_dense.h says and holds the saver's parameters;
- --one-shot --method gmp at sparsity s: exactly round(s * cols) zeros in
  every row of every pruned matrix, every kept weight bit-identical to the
  dense model, everything else (embedding, biases) untouched;
- --method csp-obs --csp correction=full (magnitude support, full refit) and
  csp-act-refit (activation OMP, full refit): the same per-row zero counts,
  and the kept weights are refitted (most of them change), the calibration
  pass observed; --finetune-epochs 1 trains with the masks fixed;
- bad input exits non-zero with a clear message: sizes that do not match,
  a truncated file, a corrupted byte, --one-shot without --load-dense and
  the reverse, --save-dense with a pruning method, a missing file.
Skips (77) when neither FSDD nor the espeak-ng fallback can give data.

usage: test_one_shot.py RNNT_DEMO [FSDD_DIR]"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rnnt_compare import schema  # noqa: E402

SIZES = ["--enc-layers", "1", "--enc-hidden", "16", "--embed", "8", "--pred-hidden", "16",
         "--joint", "16"]
TINY = ["--epochs", "2", "--n-train", "48", "--n-valid", "12", "--n-test", "16",
        "--batch", "16", "--quiet", "--calib", "32"] + SIZES
S = 0.75  # round(S * cols) is exact for every matrix of these sizes
PRUNED = ("weight_ih", "weight_hh", "joint.enc.weight", "joint.pred.weight",
          "joint.out.weight")


def run(demo, args, timeout=120):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([demo] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=timeout)


def read_model(path):
    """rnnt_dense.h's format -> (sizes, seed, [(rows, cols, values)])."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"RNNTDNS\0":
        raise ValueError("bad magic")
    ver, np_ = struct.unpack_from("<II", b, 8)
    if ver != 1:
        raise ValueError("version %d" % ver)
    sizes = struct.unpack_from("<7q", b, 16)
    seed, = struct.unpack_from("<Q", b, 72)
    shapes = [struct.unpack_from("<2q", b, 80 + 16 * k) for k in range(np_)]
    off = 80 + 16 * np_
    params = []
    for rows, cols in shapes:
        n = rows * cols
        params.append((rows, cols, struct.unpack_from("<%df" % n, b, off)))
        off += 4 * n
    if off + 8 != len(b):
        raise ValueError("length")
    h = 14695981039346656037
    for c in b[:off]:
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    if struct.unpack_from("<Q", b, off)[0] != h:
        raise ValueError("checksum")
    return sizes, seed, params


def prunable_flags(result, params):
    """Which file parameters are pruned: the RESULT's tensor shapes, in order."""
    shapes = [(t["rows"], t["cols"]) for t in result["tensors"]]
    flags, j = [], 0
    for rows, cols, _ in params:
        hit = j < len(shapes) and (rows, cols) == tuple(shapes[j]) and cols > 1
        flags.append(hit)
        j += hit
    if j != len(shapes):
        raise ValueError("cannot match the pruned tensors")
    return flags


def main():
    demo = sys.argv[1]
    data = ["--data-dir", sys.argv[2]] if len(sys.argv) > 2 else []
    tmp = tempfile.mkdtemp(prefix="rnnt-one-shot-")
    fails = []

    def check(ok, what):
        print("%-4s %s" % ("ok" if ok else "BAD", what))
        if not ok:
            fails.append(what)

    try:
        dense = os.path.join(tmp, "dense.bin")
        # The first run may synthesise the espeak-ng strings (no FSDD) while
        # rnnt_demo_smoke fills the same cache: a one-time cost of minutes on
        # a slow 2-core machine, so it gets the smoke test's allowance.
        p = run(demo, TINY + data + ["--method", "dense", "--save-dense", dense], timeout=300)
        if p.returncode != 0 and "data:" in p.stderr:
            print("no data (FSDD or espeak-ng): skipped\n" + p.stderr)
            sys.exit(77)
        if p.returncode != 0:
            print(p.stdout + p.stderr)
            sys.exit("dense --save-dense failed with %d" % p.returncode)
        saved = schema.parse(p.stdout)
        check(os.path.exists(dense) and not os.path.exists(dense + ".tmp"),
              "the file is there, no temporary left")
        sizes, seed, params = read_model(dense)
        check(list(sizes[1:]) == [1, 16, 8, 16, 16, saved["model"]["vocab"]]
              and sizes[0] == saved["model"]["in"] and seed == 1,
              "file header: sizes %s seed %d" % (sizes, seed))
        check(sum(r * c for r, c, _ in params) == saved["model"]["params"],
              "file holds every parameter")

        # round trip: the loaded model is the saved one and scores the same
        p = run(demo, TINY + data + ["--method", "dense", "--one-shot", "--load-dense", dense])
        check(p.returncode == 0, "dense --one-shot --load-dense runs")
        if p.returncode != 0:
            print(p.stdout + p.stderr)
            sys.exit(1)
        back = schema.parse(p.stdout)
        check(back["params_fnv"] == saved["params_fnv"],
              "loaded parameters are the saved ones (params_fnv %s)" % back["params_fnv"])
        same = all(back[k] == saved[k] for k in ("wer", "sub", "ins", "del", "valid_wer",
                                                 "string_acc"))
        check(same, "round trip: test WER %.2f %% / valid %.2f %% == %.2f %% / %.2f %%"
              % (back["wer"], back["valid_wer"], saved["wer"], saved["valid_wer"]))
        check(back["one_shot"] and back["epochs"] == 0 and back["history"] == []
              and back["dense_model"] == dense, "one-shot RESULT fields")

        results = {}
        for name, extra in (("gmp", ["--method", "gmp"]),
                            ("obs-full", ["--method", "csp-obs", "--csp", "correction=full"]),
                            ("act-refit", ["--method", "csp-act-refit"]),
                            ("gmp-ft1", ["--method", "gmp", "--finetune-epochs", "1"])):
            out = os.path.join(tmp, name + ".bin")
            p = run(demo, TINY + data + extra + ["--sparsity", str(S), "--one-shot",
                                                 "--load-dense", dense, "--dump-params", out])
            check(p.returncode == 0, "%s one-shot runs" % name)
            if p.returncode != 0:
                print(p.stdout + p.stderr)
                continue
            r = schema.parse(p.stdout)
            _, _, pp = read_model(out)
            results[name] = (r, pp)
            check(r["events"] == 1 and r["mask_ok"] and r["export_ok"]
                  and abs(r["actual_sparsity"] - S) < 0.01,
                  "%s: one event, sparsity %.4f, masks and exports ok"
                  % (name, r["actual_sparsity"]))
            check(r["epochs"] == (1 if name.endswith("ft1") else 0)
                  and r["finetune_epochs"] == r["epochs"], "%s: epochs field" % name)
            if r["history"]:
                last = r["history"][-1]["valid_wer"]
                check(last is not None and r["valid_wer"] == last,
                      "%s: the last fine-tune epoch is scored on validation (--quiet)" % name)
            flags = prunable_flags(r, pp)
            rows_ok, other_same, kept, changed = True, True, 0, 0
            for (rows, cols, w), (_, _, w0), pruned in zip(pp, params, flags):
                if not pruned:
                    if not name.endswith("ft1"):
                        other_same &= w == w0
                    continue
                want = int(round(S * cols))
                for i in range(rows):
                    row = w[i * cols:(i + 1) * cols]
                    rows_ok &= sum(1 for x in row if x == 0.0) == want
                for x, x0 in zip(w, w0):
                    if x != 0.0:
                        kept += 1
                        changed += x != x0
            check(rows_ok, "%s: round(%g * cols) zeros in every row of every pruned matrix"
                  % (name, S))
            check(other_same, "%s: embedding and biases untouched" % name)
            if name == "gmp":
                check(changed == 0, "gmp: all %d kept weights are the dense ones" % kept)
                check(r["calib_n"] == 0, "gmp: no calibration pass (magnitude only)")
            elif name == "gmp-ft1":
                check(changed > kept // 2, "gmp + 1 fine-tune epoch: kept weights trained "
                      "(%d of %d changed)" % (changed, kept))
            else:
                check(changed > kept // 2, "%s: kept weights refitted (%d of %d changed)"
                      % (name, changed, kept))
                check(r["calib_n"] == 32 and r["observed_passes"] >= 1,
                      "%s: calibration observed %d strings" % (name, r["calib_n"]))
                check(r["valid_wer_after_event"] is not None, "%s: valid WER after the event"
                      % name)
        if "gmp" in results and "obs-full" in results:
            # csp-obs keeps GMP's (magnitude) support: the same zero pattern
            same_support = all(
                (a == 0.0) == (b == 0.0)
                for (_, _, wa), (_, _, wb) in zip(results["gmp"][1], results["obs-full"][1])
                for a, b in zip(wa, wb))
            check(same_support, "csp-obs correction=full keeps the magnitude support")

        # bad input: non-zero exit, a clear message
        trunc = os.path.join(tmp, "trunc.bin")
        with open(dense, "rb") as f:
            b = f.read()
        with open(trunc, "wb") as f:
            f.write(b[:len(b) // 2])
        corrupt = os.path.join(tmp, "corrupt.bin")
        c = bytearray(b)
        c[len(c) // 2] ^= 0x40
        with open(corrupt, "wb") as f:
            f.write(bytes(c))
        junk = os.path.join(tmp, "junk.bin")
        with open(junk, "wb") as f:
            f.write(b"not a model file, just text\n" * 4)
        base = ["--epochs", "1", "--n-train", "48", "--n-valid", "12", "--n-test", "16",
                "--quiet"] + data
        bad = [
            ("sizes differ", base + SIZES[:2] + ["--enc-hidden", "24"] + SIZES[4:]
             + ["--one-shot", "--load-dense", dense, "--method", "gmp"],
             "model size mismatch: enc_hidden is 16 in the file, 24"),
            ("truncated", base + SIZES + ["--one-shot", "--load-dense", trunc], "truncated"),
            ("corrupt", base + SIZES + ["--one-shot", "--load-dense", corrupt], "checksum"),
            ("not a model", base + SIZES + ["--one-shot", "--load-dense", junk], "bad magic"),
            ("missing", base + SIZES + ["--one-shot", "--load-dense",
                                        os.path.join(tmp, "nope.bin")], "cannot open"),
            ("--one-shot alone", base + SIZES + ["--one-shot", "--method", "gmp"],
             "--one-shot needs --load-dense"),
            ("--load-dense alone", base + SIZES + ["--load-dense", dense],
             "--load-dense needs --one-shot"),
            ("--save-dense gmp", base + SIZES + ["--method", "gmp", "--save-dense",
                                                 os.path.join(tmp, "x.bin")],
             "--save-dense needs --method dense"),
        ]
        for what, args, needle in bad:
            p = run(demo, args)
            check(p.returncode != 0 and needle in p.stderr and "RESULT" not in p.stdout,
                  "%s: exit %d, %r" % (what, p.returncode, p.stderr.strip().splitlines()[0]
                                       if p.stderr.strip() else ""))
        check(not os.path.exists(os.path.join(tmp, "x.bin")), "nothing written on refusal")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if fails:
        print("%d check(s) failed" % len(fails))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
