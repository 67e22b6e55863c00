"""examples/rnnt/one_shot.py end to end on a tiny model (seconds):

- every cell runs and the report holds one row per method x (sparsity or
  N:M pattern) x fine-tune value, with the per-seed test WERs of the runs'
  RESULT lines; the N:M runs have sparsity 1 - N/M and the pattern's option;
- the paired differences are the differences of those WERs;
- a second call reuses every output (no run again: files untouched) and
  writes the same report;
- an unknown method and a bad N:M pattern are refused before anything runs.
Skips (77) when neither FSDD nor the espeak-ng fallback can give data.

usage: test_one_shot_study.py RNNT_DEMO [FSDD_DIR]"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from rnnt_compare import schema  # noqa: E402

TOOL = os.path.join(HERE, "..", "one_shot.py")
TINY = ("--epochs 2 --n-train 48 --n-valid 12 --n-test 16 --batch 16 --calib 32 "
        "--enc-layers 1 --enc-hidden 16 --embed 8 --pred-hidden 16 --joint 16")


def main():
    demo = sys.argv[1]
    extra = TINY + (" --data-dir " + sys.argv[2] if len(sys.argv) > 2 else "")
    tmp = tempfile.mkdtemp(prefix="rnnt-one-shot-study-")
    fails = []

    def check(ok, what):
        print("%-4s %s" % ("ok" if ok else "BAD", what))
        if not ok:
            fails.append(what)

    def tool(*more):
        return subprocess.run([sys.executable, TOOL, "--demo", demo, "--work", work,
                               "--seeds", "1,2", "--sparsities", "0.75", "--nm", "2:4",
                               "--finetune", "0,1",
                               "--extra", extra, "--jobs", "2"] + list(more),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=600)

    try:
        work = os.path.join(tmp, "work")
        out = os.path.join(tmp, "report.md")
        p = tool("--out", out)
        if p.returncode != 0 and "data:" in p.stderr:
            print("no data (FSDD or espeak-ng): skipped\n" + p.stderr[-2000:])
            sys.exit(77)
        if p.returncode != 0:
            print(p.stdout + p.stderr)
            sys.exit("one_shot.py failed with %d" % p.returncode)
        with open(out) as f:
            text = f.read()
        rows = [r for r in text.splitlines() if re.match(r"\| (gmp|obsfull|actrefit) \|", r)]
        check(len(rows) == 12, "12 rows (3 methods x (0.75, 2:4) x 2 fine-tune values): %d"
              % len(rows))
        wers = {}
        for r in rows:
            cells = [c.strip() for c in r.strip("|").split("|")]
            m, pat, ft = cells[0], cells[1], int(cells[2])
            per = [float(x) for x in cells[3].split()]
            nm = pat == "2:4"
            got = []
            for seed in (1, 2):
                name = ("%s-nm2of4-ft%d-s%d.out" if nm else "%s-0.75-ft%d-s%d.out") % (
                    m, ft, seed)
                with open(os.path.join(work, name)) as f:
                    res = schema.parse(f.read())
                got.append(res["wer"])
                want = 0.5 if nm else 0.75
                check(res["one_shot"] and res["events"] == 1 and res["epochs"] == ft
                      and abs(res["actual_sparsity"] - want) < 0.01
                      and ("nm=2:4" in res["csp_overrides"]) == nm,
                      "%s %s ft %d seed %d: one event, sparsity %.3f, %d epochs, --csp %r"
                      % (m, pat, ft, seed, res["actual_sparsity"], res["epochs"],
                         res["csp_overrides"]))
            wers[(m, pat, ft)] = got
            check(per == [float("%.2f" % x) for x in got],
                  "%s %s ft %d: the row's per-seed WERs %s are the runs' %s"
                  % (m, pat, ft, per, got))
        diff_rows = [r for r in text.splitlines()
                     if " - " in r and (r.startswith("| 0.75") or r.startswith("| 2:4"))]
        check(len(diff_rows) == 12, "12 paired rows: %d" % len(diff_rows))
        for r in diff_rows:
            cells = [c.strip() for c in r.strip("|").split("|")]
            pat, ft, (a, b) = cells[0], int(cells[1]), cells[2].split(" - ")
            mean = float(cells[3])
            want = sum(x - y for x, y in zip(wers[(a, pat, ft)], wers[(b, pat, ft)])) / 2
            check(abs(mean - want) < 0.006, "%s - %s %s ft %d: mean diff %+.2f == %+.2f"
                  % (a, b, pat, ft, mean, want))
        stamps = {f: os.path.getmtime(os.path.join(work, f)) for f in os.listdir(work)}
        p = tool("--out", out + ".again")
        check(p.returncode == 0, "second call runs")
        with open(out + ".again") as f:
            check(f.read() == text, "second call: the same report")
        check(all(os.path.getmtime(os.path.join(work, f)) == t for f, t in stamps.items()),
              "second call: every output reused, none rewritten")
        p = tool("--methods", "gmp,nope")
        check(p.returncode != 0 and "unknown method 'nope'" in p.stderr,
              "unknown method refused: %r" % p.stderr.strip()[-80:])
        p = tool("--nm", "4:2")
        check(p.returncode != 0 and "bad N:M pattern '4:2'" in p.stderr,
              "bad N:M pattern refused: %r" % p.stderr.strip()[-80:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if fails:
        print("%d check(s) failed" % len(fails))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
