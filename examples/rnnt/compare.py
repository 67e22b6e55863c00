#!/usr/bin/env python3
"""Run rnnt_demo over a grid (methods x sparsities x seeds x evaluations),
cache every RESULT, and write a Markdown report: word error rate table
(mean, sd over seeds), paired differences against GMP (row-balanced) with
the sign test and a paired t-test, compressed sizes from libcsp's exports,
time in csp_step(), and a WER-vs-sparsity plot with error bars
(gnuplot, else matplotlib; skipped cleanly without both). See examples/rnnt/README.md.

  python3 examples/rnnt/compare.py --grid quick            # a few minutes
  python3 examples/rnnt/compare.py --grid full --out docs/results/rnnt.md

Runs are single-threaded (OPENBLAS_NUM_THREADS=1), --jobs at once. The
cache key is the run's configuration plus a hash of rnnt_demo and libcsp;
a cached RESULT of other binaries is run again.

The evaluation `loso` is leave-one-speaker-out over every speaker: one run
per held-out speaker (`rnnt_demo --eval loso:K`, K = 0 .. --loso-folds - 1)
with the grid's first seed; its table pools the folds, and its pairs are
per fold. `loso:K` alone runs that fold with every seed.
"""
import argparse
import concurrent.futures
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "examples", "speech"))

from rnnt_compare import schema  # noqa: E402
from speech_compare import stats  # noqa: E402  (mean, sd, paired_t, paired_ci, sign_test)

BEST_CSP = "csp-obs"  # the best CSP configuration of the speech study
GRIDS = {
    "quick": dict(methods=["dense", "gmp", BEST_CSP], sparsities=[0.9], seeds=[1],
                  evals=["official"]),
    "full": dict(methods=["dense", "gmp", "gmp-tensor", "csp-gauss", "csp-act", "csp-obs",
                          "csp-shrink"],
                 sparsities=[0.5, 0.7, 0.8, 0.9, 0.95], seeds=[1, 2, 3, 4, 5],
                 evals=["official", "loso"]),
    # docs/results/rnnt.md reports its dense, gmp and csp-obs cells (official split)
    "paper": dict(methods=["dense", "gmp", "csp-obs", "csp-act-refit"], sparsities=[0.8, 0.9],
                  seeds=[1, 2, 3, 4, 5], evals=["official"]),
}


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def binaries_id(demo, build):
    libs = sorted(p for p in glob.glob(os.path.join(build, "lib", "libcsp.so.*"))
                  if os.path.isfile(p) and not os.path.islink(p))
    return hashlib.sha256("".join(sha(p) for p in [demo] + libs).encode()).hexdigest()[:16]


def group(ev):
    """The report's evaluation of a run's --eval: every fold loso:K is `loso`."""
    return "loso" if ev.startswith("loso") else ev


def configs(g, args):
    out = []
    runs = []
    for ev in g["evals"]:
        if ev == "loso":
            runs += [("loso:%d" % k, g["seeds"][:1]) for k in range(args.loso_folds)]
        else:
            runs.append((ev, g["seeds"]))
    for ev, seeds in runs:
        for seed in seeds:
            for m in g["methods"]:
                for s in ([0.0] if m == "dense" else g["sparsities"]):
                    c = dict(method=m, sparsity=s, seed=seed, eval=ev, epochs=args.epochs,
                             extra=args.extra, data=args.data)
                    if c not in out:  # `loso` and `loso:K` share fold K's first seed
                        out.append(c)
    return out


def command(demo, c):
    cmd = [demo, "--method", c["method"], "--seed", str(c["seed"]), "--eval", c["eval"]]
    if c["method"] != "dense":
        cmd += ["--sparsity", repr(c["sparsity"])]
    if c["epochs"]:
        cmd += ["--epochs", str(c["epochs"])]
    if c["data"]:
        cmd += ["--data", c["data"]]
    return cmd + c["extra"].split()


def run_one(demo, cache, bid, c):
    key = hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest()[:20]
    path = os.path.join(cache, key + ".json")
    if os.path.exists(path):
        with open(path) as f:
            rec = json.load(f)
        if rec.get("binaries") == bid and rec["result"].get("schema") == schema.SCHEMA:
            return rec["result"], True
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    tag = "%s s=%.2f seed %d %s" % (c["method"], c["sparsity"], c["seed"], c["eval"])
    p = subprocess.Popen(command(demo, c), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    out = []
    for line in p.stdout:  # per-epoch progress: loss, valid WER, elapsed, remaining
        out.append(line)
        if line.startswith("epoch"):
            print("  [%s] %s" % (tag, line.rstrip()), flush=True)
    err = p.stderr.read()
    if p.wait() != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(command(demo, c)), p.returncode,
                                                   err[-2000:]))
    res = schema.parse("".join(out))
    with open(path + ".tmp", "w") as f:
        json.dump(dict(config=c, binaries=bid, result=res), f)
    os.replace(path + ".tmp", path)
    return res, False


def run_all(demo, cache, bid, cfgs, jobs):
    os.makedirs(cache, exist_ok=True)
    results, t0, done = [], time.time(), 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = {ex.submit(run_one, demo, cache, bid, c): c for c in cfgs}
        for fu in concurrent.futures.as_completed(futs):
            c = futs[fu]
            res, cached = fu.result()
            done += 1
            el = time.time() - t0
            print("[%d/%d] %-11s s=%.2f seed %d %-8s WER %6.2f %%%s  (elapsed %.0f s)"
                  % (done, len(cfgs), c["method"], c["sparsity"], c["seed"], c["eval"],
                     res["wer"], " (cached)" if cached else "", el), flush=True)
            results.append((c, res))
    return results


# ------------------------------------------------------------------ report

def cells(results):
    """{(evaluation, method, sparsity): {sample: RESULT}}; a sample is a seed, or
    (seed, held-out speaker) for the leave-one-speaker-out folds."""
    t = {}
    for c, r in results:
        ev = c["eval"]
        key = (c["seed"], int(ev.split(":")[1])) if ev.startswith("loso:") else c["seed"]
        t.setdefault((group(ev), c["method"], c["sparsity"]), {})[key] = r
    return t


def wer_table(t, g):
    lines = []
    for ev in g["evals"]:
        lines += ["", "### WER (%%), %s evaluation (mean ± sd over %s; string accuracy)"
                  % (ev, "held-out speakers" if ev == "loso" else "seeds"),
                  "", "| method | " + " | ".join("s = %.2f" % s for s in g["sparsities"]) + " |",
                  "|---|" + "---|" * len(g["sparsities"])]
        for m in g["methods"]:
            row = []
            for s in g["sparsities"]:
                c = t.get((ev, m, 0.0 if m == "dense" else s), {})
                w = [r["wer"] for r in c.values()]
                a = [r["string_acc"] for r in c.values()]
                row.append("%s (%s)" % (stats.fmt_pm(w), stats.fmt_pm(a, 1)) if w else "-")
            lines.append("| %s | %s |" % (m, " | ".join(row)))
    return lines


def paired(t, g):
    lines = ["", "### Paired differences against GMP (row), WER points (method - gmp)", "",
             "Per seed (per held-out speaker for loso), the same data and initialisation. "
             "Sign test: wins (lower WER) / losses, ties dropped; t: paired t-test, "
             "two-sided; 95 % CI: Student's t interval of the mean difference (a method "
             "is better or worse than GMP beyond seed noise only where it excludes 0).", "",
             "| evaluation | method | sparsity | mean diff | 95 % CI | wins/losses | sign p | "
             "t p |",
             "|---|---|---|---|---|---|---|---|"]
    for ev in g["evals"]:
        for m in g["methods"]:
            if m in ("gmp", "dense"):
                continue
            for s in g["sparsities"]:
                a, b = t.get((ev, m, s), {}), t.get((ev, "gmp", s), {})
                seeds = sorted(set(a) & set(b))
                if not seeds:
                    continue
                d = [a[k]["wer"] - b[k]["wer"] for k in seeds]
                wins, losses = sum(x < 0 for x in d), sum(x > 0 for x in d)
                _, p = stats.paired_t(d)
                lo, hi = stats.paired_ci(d)
                ci = "[%+.2f, %+.2f]" % (lo, hi) if lo == lo else "-"
                lines.append("| %s | %s | %.2f | %+.2f | %s | %d/%d | %s | %s |"
                             % (ev, m, s, stats.mean(d), ci, wins, losses,
                                stats.fmt_p(stats.sign_test(wins, losses)), stats.fmt_p(p)))
    return lines


def sizes(t, g):
    lines = ["", "### Compressed size and time (first seed, first evaluation)", "",
             "| method | sparsity | nnz / prunable | CSR bytes | bitmap bytes | dense bytes | "
             "training s | csp_step s | libcsp share |", "|---|---|---|---|---|---|---|---|---|"]
    ev = g["evals"][0]
    for m in g["methods"]:
        for s in ([0.0] if m == "dense" else g["sparsities"]):
            c = t.get((ev, m, s), {})
            if not c:
                continue
            r = c[min(c)]
            lines.append("| %s | %.2f | %d / %d | %d | %d | %d | %.0f | %.2f | %.1f %% |"
                         % (m, s, r["nnz"], r["prunable_numel"], r["csr_bytes"],
                            r["bitmap_bytes"], r["dense_bytes"], r["train_seconds"],
                            r["csp_step_seconds"], 100 * r["csp_share"]))
    return lines


def series(t, g):
    """{(eval, method): [(sparsity, mean WER, sd)]}; dense spans the axis."""
    out = {}
    for ev in g["evals"]:
        for m in g["methods"]:
            pts = []
            for s in g["sparsities"]:
                w = [r["wer"] for r in t.get((ev, m, 0.0 if m == "dense" else s), {}).values()]
                if w:
                    pts.append((s, stats.mean(w), stats.sd(w) if len(w) > 1 else 0.0))
            if pts:
                out[(ev, m)] = pts
    return out


def plot_gnuplot(ser, g, png):
    if not shutil.which("gnuplot"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        cmds = ["set terminal pngcairo size %d,420" % (520 * len(g["evals"])),
                "set output '%s'" % png, "set multiplot layout 1,%d" % len(g["evals"]),
                "set grid", "set key top left", "set yrange [0:*]",
                "set xlabel 'sparsity of the pruned matrices'", "set ylabel 'WER (%)'",
                "set offsets 0.02, 0.02, 0, 0"]
        for ev in g["evals"]:
            parts = []
            for i, m in enumerate(g["methods"]):
                pts = ser.get((ev, m))
                if not pts:
                    continue
                dat = os.path.join(tmp, "%s-%d.dat" % (ev, i))
                with open(dat, "w") as f:
                    f.writelines("%g %g %g\n" % p for p in pts)
                style = "with lines dt 2 lw 2" if m == "dense" else "with yerrorlines lw 2 pt 7"
                parts.append("'%s' using 1:2:3 %s title '%s'" % (dat, style, m))
            cmds += ["set title '%s evaluation'" % ev, "plot " + ", ".join(parts)]
        cmds.append("unset multiplot")
        r = subprocess.run(["gnuplot"], input="\n".join(cmds) + "\n", text=True,
                           capture_output=True)
        return r.returncode == 0 and os.path.exists(png)


def plot_matplotlib(ser, g, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 - no matplotlib: no plot
        return False
    fig, axes = plt.subplots(1, len(g["evals"]), figsize=(6 * len(g["evals"]), 4), squeeze=False)
    for ax, ev in zip(axes[0], g["evals"]):
        for m in g["methods"]:
            pts = ser.get((ev, m))
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts],
                            marker="o", capsize=3, label=m)
        ax.set_title("%s evaluation" % ev)
        ax.set_xlabel("sparsity of the pruned matrices")
        ax.set_ylabel("WER (%)")
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    return True


def plot(t, g, png):
    """Write the WER-vs-sparsity plot; returns the tool used or None."""
    ser = series(t, g)
    if not ser:
        return None
    for name, fn in (("gnuplot", plot_gnuplot), ("matplotlib", plot_matplotlib)):
        if fn(ser, g, png):
            return name
    return None


def where(desc):
    """The data description without this machine's directory (reports may be committed)."""
    return re.sub(r" at /[^:]*/([^/:]+):", r" (\1):", desc)


def report(results, g, args, elapsed, png):
    t = cells(results)
    first = results[0][1]
    lines = ["# RNN-T connected digits: CSP against GMP", "",
             "Written by `examples/rnnt/compare.py --grid %s` (%d runs, %.0f s wall on %d "
             "jobs, %s). Data: %s." % (args.grid, len(results), elapsed, args.jobs,
                                       platform.machine(), where(first["data_description"])),
             "Model: %d parameters, %d in the pruned matrices (every LSTM and joint weight "
             "matrix); %d epochs; libcsp %s." % (first["model"]["params"],
                                                 first["model"]["prunable"], first["epochs"],
                                                 first["libcsp"])]
    lines += wer_table(t, g) + paired(t, g) + sizes(t, g)
    if png:
        lines += ["", "![WER against sparsity](%s)" % os.path.basename(png)]
    else:
        lines += ["", "(No plot: neither gnuplot nor matplotlib is installed.)"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", choices=sorted(GRIDS), default="quick")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=0, help="0: rnnt_demo's default")
    ap.add_argument("--data", choices=["fsdd", "espeak"], default=None)
    ap.add_argument("--extra", default="", help="more rnnt_demo flags, one string")
    ap.add_argument("--methods", help="comma-separated, replaces the grid's")
    ap.add_argument("--sparsities", help="comma-separated, replaces the grid's")
    ap.add_argument("--seeds", help="comma-separated, replaces the grid's")
    ap.add_argument("--evals", help="comma-separated (official, loso, loso:K), replaces the "
                                    "grid's")
    ap.add_argument("--loso-folds", type=int, default=5,
                    help="speakers held out in turn by the loso evaluation (FSDD has 5)")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--out", default=None, help="report (default <build>/examples/rnnt/"
                                                "rnnt-<grid>.md)")
    args = ap.parse_args()
    g = dict(GRIDS[args.grid])
    for k, conv in (("methods", str), ("sparsities", float), ("seeds", int), ("evals", str)):
        v = getattr(args, k)
        if v:
            g[k] = [conv(x) for x in v.split(",")]
    demo = os.path.join(args.build, "examples", "rnnt", "rnnt_demo")
    if not os.path.exists(demo):
        sys.exit("no %s: build first (ninja -C %s)" % (demo, args.build))
    cache = args.cache or os.path.join(args.build, "examples", "rnnt", "compare-cache")
    out = args.out or os.path.join(args.build, "examples", "rnnt", "rnnt-%s.md" % args.grid)
    t0 = time.time()
    results = run_all(demo, cache, binaries_id(demo, args.build), configs(g, args), args.jobs)
    g["evals"] = list(dict.fromkeys(group(ev) for ev in g["evals"]))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    png = os.path.splitext(out)[0] + ".png"
    tool = plot(cells(results), g, png)
    png = png if tool else None
    with open(out, "w") as f:
        f.write(report(results, g, args, time.time() - t0, png))
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump([dict(config=c, result=r) for c, r in results], f, indent=1)
    print("report: %s%s" % (out, " (plot: %s)" % tool if tool else " (no plot: neither gnuplot nor matplotlib)"))


if __name__ == "__main__":
    main()
