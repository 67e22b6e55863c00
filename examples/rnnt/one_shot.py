#!/usr/bin/env python3
"""One-shot pruning of the trained RNN-T recogniser (issue 14), seeds x
methods x sparsities x fine-tune epochs, with paired tests. See
examples/rnnt/README.md, "One-shot pruning".

  python3 examples/rnnt/one_shot.py --build build-release --work rnnt-one-shot \
      --out rnnt-one-shot.md

For every seed: one dense run of the default recipe (`--save-dense`), then
each method prunes that model once (`--one-shot --load-dense`) at each
row-balanced sparsity and each --nm pattern, scored with no fine-tuning and after each --finetune value. Every
run's output is kept in --work as <name>.out and reused when it holds a
RESULT line (delete the folder to run again: the key is the file name, not
the binaries). Runs are single-threaded (OPENBLAS_NUM_THREADS=1), --jobs at
once. Nothing here is tuned: --calib and the fine-tune lr are rnnt_demo's
defaults.
"""
import argparse
import concurrent.futures
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "examples", "speech"))

from rnnt_compare import schema  # noqa: E402
from speech_compare import stats  # noqa: E402

# name -> (rnnt_demo arguments, description)
METHODS = {
    "gmp": (["--method", "gmp"], "magnitude, row-balanced (GMP's one event)"),
    "obsfull": (["--method", "csp-obs", "--csp", "correction=full"],
                "magnitude support + full refit through the activation Gram"),
    "actrefit": (["--method", "csp-act-refit"],
                 "activation-Gram OMP support + full refit (CSP)"),
}


def run(cmd, out):
    if os.path.exists(out):
        with open(out) as f:
            text = f.read()
        try:
            return schema.parse(text)
        except ValueError:
            pass
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    with open(out + ".tmp", "w") as f:
        f.write(p.stdout)
    os.replace(out + ".tmp", out)
    return schema.parse(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--demo", help="the rnnt_demo binary (default: BUILD/examples/rnnt/rnnt_demo)")
    ap.add_argument("--extra", default="", help="arguments added to every run (e.g. sizes)")
    ap.add_argument("--work", required=True, help="folder for dense models and run outputs")
    ap.add_argument("--out", help="Markdown report (default: stdout)")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--sparsities", default="0.8,0.9")
    ap.add_argument("--nm", default="", help="N:M patterns too, e.g. 2:4,4:8 (sparsity 1 - N/M)")
    ap.add_argument("--finetune", default="0,1", help="fine-tune epochs after the event")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    demo = args.demo or os.path.join(args.build, "examples", "rnnt", "rnnt_demo")
    if not os.path.exists(demo):
        sys.exit("no %s: build it first (ninja -C %s)" % (demo, args.build))
    seeds = [int(s) for s in args.seeds.split(",")]
    sps = [float(s) for s in args.sparsities.split(",")]
    fts = [int(s) for s in args.finetune.split(",")]
    methods = args.methods.split(",")
    # (label, sparsity, N:M or None): the row-balanced sparsities, then N:M
    pats = [("%.2f" % s, s, None) for s in sps]
    for nm in filter(None, args.nm.split(",")):
        try:
            n, m = (int(x) for x in nm.split(":"))
        except ValueError:
            n = m = 0
        if not 1 <= n < m:
            sys.exit("bad N:M pattern %r (e.g. 2:4)" % nm)
        pats.append((nm, 1.0 - n / m, (n, m)))
    for m in methods:
        if m not in METHODS:
            sys.exit("unknown method %r (have %s)" % (m, ", ".join(METHODS)))
    os.makedirs(args.work, exist_ok=True)
    w = args.work
    base = ["--eval", "official", "--quiet"] + args.extra.split()

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        dense = dict(zip(seeds, ex.map(lambda s: run(
            [demo, "--method", "dense", "--seed", str(s)] + base
            + ["--save-dense", os.path.join(w, "dense-s%d.bin" % s)],
            os.path.join(w, "dense-s%d.out" % s)), seeds)))
        cells = [(m, p, ft, seed) for seed in seeds for p in pats for ft in fts for m in methods]

        def one(c):
            m, (label, s, nm), ft, seed = c
            margs = list(METHODS[m][0])
            name = "%s-%s-ft%d-s%d.out" % (m, s, ft, seed)
            if nm:
                spec = "granularity=nm,nm=%d:%d" % nm
                if "--csp" in margs:
                    i = margs.index("--csp") + 1
                    margs[i] += "," + spec
                else:
                    margs += ["--csp", spec]
                name = "%s-nm%dof%d-ft%d-s%d.out" % (m, nm[0], nm[1], ft, seed)
            cmd = ([demo] + margs + ["--seed", str(seed), "--sparsity", repr(s), "--one-shot",
                                     "--load-dense", os.path.join(w, "dense-s%d.bin" % seed),
                                     "--finetune-epochs", str(ft)] + base)
            r = run(cmd, os.path.join(w, name))
            if abs(r["actual_sparsity"] - s) > 0.01:
                raise RuntimeError("%s: sparsity %.4f, not %.4f" % (name, r["actual_sparsity"], s))
            return (m, label, ft, seed), r
        res = dict(ex.map(one, cells))

    calib = sorted({r["calib_n"] for r in res.values() if r["calib_n"] > 0})
    ftlr = sorted({r["finetune_lr"] for r in res.values() if r["finetune_epochs"] > 0})
    L = ["# RNN-T one-shot pruning (%d seeds)" % len(seeds), "",
         "Test WER (%%), official split, %s data; dense %s. Each seed's dense model is "
         "pruned once at step 0 (calibration strings: %s), then fine-tuned the given "
         "epochs (masks fixed, gradients masked, fresh Adam, lr cosine from %s)." % (
             dense[seeds[0]]["data"], stats.fmt_pm([dense[s]["wer"] for s in seeds]),
             "/".join(str(c) for c in calib) or "none",
             "/".join("%g" % x for x in ftlr) or "-"), ""]
    L += ["| method | sparsity or N:M | fine-tune epochs | per seed | mean +- sd | valid WER right "
          "after the event |", "|---|---|---|---|---|---|"]
    for s, _, _ in pats:
        for ft in fts:
            for m in methods:
                v = [res[(m, s, ft, k)]["wer"] for k in seeds]
                a = [res[(m, s, ft, k)]["valid_wer_after_event"] for k in seeds]
                a = [x for x in a if x is not None]
                L.append("| %s | %s | %d | %s | %s | %s |" % (
                    m, s, ft, " ".join("%.2f" % x for x in v), stats.fmt_pm(v),
                    stats.fmt_pm(a) if a else "-"))
    L += ["", "Paired differences (WER points, first minus second; negative: the first is "
          "better). Sign test over wins/losses; t: paired t-test, two-sided.", "",
          "| sparsity or N:M | fine-tune | comparison | mean diff | wins/losses | sign p | t p |",
          "|---|---|---|---|---|---|---|"]
    pairs = [(a, b) for a, b in (("actrefit", "gmp"), ("obsfull", "gmp"),
                                 ("actrefit", "obsfull")) if a in methods and b in methods]
    for s, _, _ in pats:
        for ft in fts:
            for a, b in pairs:
                d = [res[(a, s, ft, k)]["wer"] - res[(b, s, ft, k)]["wer"] for k in seeds]
                wins, losses = sum(x < 0 for x in d), sum(x > 0 for x in d)
                _, p = stats.paired_t(d)
                L.append("| %s | %d | %s - %s | %+.2f | %d/%d | %s | %s |" % (
                    s, ft, a, b, stats.mean(d), wins, losses,
                    stats.fmt_p(stats.sign_test(wins, losses)), stats.fmt_p(p)))
    L += ["", "Methods: " + "; ".join("`%s`: %s (`%s`)" % (m, METHODS[m][1],
                                                            " ".join(METHODS[m][0]))
                                        for m in methods) + "."]
    if any(nm for _, _, nm in pats):
        L += ["N:M rows add `--csp granularity=nm,nm=N:M` to the method's options: every "
              "group of M consecutive weights of a row keeps N (the method's support and "
              "refit within that constraint)."]
    text = "\n".join(L) + "\n"
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(args.out + ".tmp", args.out)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
