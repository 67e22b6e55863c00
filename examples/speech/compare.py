#!/usr/bin/python3
"""compare.py - the speech benchmark: methods x sparsities x seeds on the
official FSDD split and leave-one-speaker-out, run with speech_demo.

    examples/speech/compare.py --grid reduced     # dense, gmp, csp-obs at 0.95, seed 1,
                                                  # official split
    examples/speech/compare.py --grid full        # every grid method, 0.9/0.95/0.98,
                                                  # seeds 1-3, official + leave-one-speaker-out
    examples/speech/compare.py --study regimes --regime a   # issue 14's regime study
                                                  # (speech_compare/regimes.py)

Runs up to --jobs speech_demo processes at once (default: the core count),
each single-threaded (OPENBLAS_NUM_THREADS=1), and caches every run's RESULT
line under <build>/speech-runs, keyed by its configuration and the data's
fingerprint, so a rerun skips what is done. A cached result made by other
binaries (speech_demo or libcsp changed) is rerun unless --accept-stale.

Writes <out>/<name>.md (tables: error rate mean +- sd, nnz, compressed
bytes, paired differences against row-balanced GMP, stability over the last
epochs, run times, data provenance, the command), <out>/<name>.png (error
rate against sparsity; gnuplot, else matplotlib) and <out>/<name>.json
(every run's RESULT). The code lives in speech_compare/ (runner, stats,
report, plot). Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import json
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from speech_compare import plot, regimes, report, runner  # noqa: E402

# The CSP variant the reduced grid runs while the library's default
# configuration ("csp") is not CSP (docs/results/speech.md, "Choosing the
# default", says why).
REDUCED_CSP = "csp-obs"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", choices=("reduced", "full"), default="reduced",
                    help="reduced: dense, gmp and a CSP variant at 0.95, seed 1, official "
                         "split; full: every grid method at 0.9/0.95/0.98, seeds 1-3, "
                         "official and leave-one-speaker-out (default reduced)")
    ap.add_argument("--study", choices=("regimes",),
                    help="regimes: the regime study of issue 14 (speech_compare/regimes.py; "
                         "docs/results/regimes.md); --regime picks the part")
    ap.add_argument("--regime", choices=("hp", "a", "b", "c", "d", "ehp", "e", "report"), default="report",
                    help="with --study regimes: hp (validation choice), a, b, c, d (test "
                         "regimes), ehp (validation: the adaptive bound), e (test) or report "
                         "(rewrite the report from the cache)")
    ap.add_argument("--methods", help="comma-separated methods (default: by grid)")
    ap.add_argument("--sparsities", help="comma-separated (default: by grid)")
    ap.add_argument("--seeds", help="comma-separated (default: by grid)")
    ap.add_argument("--evals", help="official, loso, speaker:NAME, comma-separated "
                                    "(default: by grid)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--extra", default="", help="more speech_demo flags, one string")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                    help="parallel runs (default: the usable cores)")
    ap.add_argument("--nice", type=int, default=0, help="run speech_demo under nice -n N")
    ap.add_argument("--build", default=os.path.join(runner.ROOT, "build"),
                    help="meson build dir")
    ap.add_argument("--demo", help="speech_demo binary (default <build>/examples/speech/...)")
    ap.add_argument("--data", help="data directory (default: speech_demo's resolution)")
    ap.add_argument("--out", help="output directory (default docs/results for the full "
                                  "grid, <build>/results for the reduced one)")
    ap.add_argument("--name", default="speech", help="output base name (default speech)")
    ap.add_argument("--cache", help="run cache (default <build>/speech-runs)")
    ap.add_argument("--fresh", action="store_true", help="ignore the cache")
    ap.add_argument("--accept-stale", action="store_true",
                    help="use cached runs made by other binaries")
    ap.add_argument("--cached-only", action="store_true",
                    help="report the cached runs of the grid, run nothing (cells with fewer "
                         "seeds or folds say so)")
    ap.add_argument("--append", action="append", metavar="FILE",
                    help="append this markdown file to the report (repeatable)")
    args = ap.parse_args(argv)
    args.cmdline = " ".join(["examples/speech/compare.py"] + [shlex.quote(a) for a in argv])
    args.build = os.path.abspath(args.build)
    args.demo = os.path.abspath(args.demo or os.path.join(args.build, "examples", "speech",
                                                          "speech_demo"))
    args.cache = os.path.abspath(args.cache or os.path.join(args.build, "speech-runs"))
    args.out = os.path.abspath(args.out or (os.path.join(runner.ROOT, "docs", "results")
                                            if args.grid == "full"
                                            else os.path.join(args.build, "results")))
    return args


def choose_methods(args, msum):
    """The methods to run, and (method, why) for those left out."""
    skipped = []
    if args.methods:
        methods = args.methods.split(",")
    elif args.grid == "reduced":
        methods = ["dense", "gmp", "csp" if msum["csp"]["is_csp"] else REDUCED_CSP]
    else:
        methods = ["dense", "gmp", "gmp-tensor"] + [
            n for n, m in msum.items() if m["is_csp"] and m.get("grid", True)
            and n not in ("gmp", "gmp-tensor")]
    for m in list(methods):
        if m not in msum:
            sys.exit(f"compare.py: unknown method {m}; known: {', '.join(msum)}")
        if not msum[m]["available"]:
            skipped.append((m, msum[m]["summary"]))
            methods.remove(m)
        elif m.startswith("csp") and not msum[m]["is_csp"] and not args.methods:
            skipped.append((m, msum[m]["summary"] + " (it would repeat gmp-tensor)"))
            methods.remove(m)
    return methods, skipped


def grid_axes(args, data):
    """(sparsities, seeds, evaluations) of the grid, loso expanded into folds."""
    reduced = args.grid == "reduced"
    sparsities = [float(x) for x in (args.sparsities or
                                     ("0.95" if reduced else "0.9,0.95,0.98")).split(",")]
    seeds = [int(x) for x in (args.seeds or ("1" if reduced else "1,2,3")).split(",")]
    evals = []
    for ev in (args.evals or ("official" if reduced else "official,loso")).split(","):
        evals += [f"speaker:{s}" for s in data["speakers"]] if ev == "loso" else [ev]
    return sparsities, seeds, evals


def configs(run, methods, sparsities, seeds, evals):
    """Every run of the grid once (dense runs once per seed and evaluation)."""
    cfgs, seen = [], set()
    for ev in evals:
        for seed in seeds:
            for m in methods:
                for s in sparsities:
                    c = run.config(m, s, seed, ev)
                    if runner.run_key(c) not in seen:
                        seen.add(runner.run_key(c))
                        cfgs.append(c)
    return cfgs


def write_outputs(args, g, data):
    """<name>.md, .png and .json; returns the markdown's path and the plot tool."""
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, args.name)
    g.plot_tool = plot.plot(base + ".png", g.methods, g.sparsities, g.kinds, g.entries)
    g.png_name = os.path.basename(base + ".png") if g.plot_tool else None
    with open(base + ".md", "w") as f:
        f.write(report.render(g))
    with open(base + ".json", "w") as f:
        json.dump(runner.portable({"command": args.cmdline, "data": data,
                                   "grid_wall_s": g.grid_wall,
                                   "runs": [{"config": e["config"], "wall_s": e["wall_s"],
                                             "result": e["result"]} for e in g.entries]},
                                  data), f, indent=0, sort_keys=True)
        f.write("\n")
    return base


def print_summary(base, g, run):
    with open(base + ".md") as f:  # the main table, on the terminal too
        md = f.read()
    i = md.find("## Error rate")
    if i >= 0:
        j = md.find("\n## ", i + 1)
        print("\n" + md[i:j if j > 0 else len(md)].strip() + "\n")
    print(f"compare.py: {len(g.entries)} runs in {g.grid_wall / 60:.1f} min "
          f"({run.fresh_runs} run, {run.cached} cached); wrote {base}.md"
          + (f", {base}.png" if g.plot_tool else " (no plot: install gnuplot-nox)")
          + f", {base}.json")
    for label, rc, tail in run.failed:
        print(f"FAILED {label} (exit {rc}):\n{tail}", file=sys.stderr)


def main(argv):
    args = parse_args(argv)
    if not os.access(args.demo, os.X_OK):
        sys.exit(f"compare.py: {args.demo} not found: build first (ninja -C {args.build})")
    if args.study == "regimes":
        data = runner.resolve_data(args.demo, args.data)
        if data is None:
            sys.exit("compare.py: no data (see above)")
        return regimes.main(args, data)
    msum = runner.list_methods(args.demo)
    methods, skipped = choose_methods(args, msum)
    data = runner.resolve_data(args.demo, args.data)
    if data is None:
        sys.exit("compare.py: no data (see above)")
    if data["kind"] != "fsdd":
        print(f"NOTE: data is {data['kind']} ({data['path']}), not the Free Spoken Digit "
              f"Dataset", flush=True)
    sparsities, seeds, evals = grid_axes(args, data)
    run = runner.Runner(args.demo, args.build, args.cache, data, jobs=args.jobs,
                        epochs=args.epochs, extra=args.extra, fresh=args.fresh,
                        accept_stale=args.accept_stale, cached_only=args.cached_only,
                        nice=args.nice)
    cfgs = configs(run, methods, sparsities, seeds, evals)
    print(f"compare.py: {len(cfgs)} runs ({', '.join(methods)} x {sparsities} x seeds "
          f"{seeds} x {len(evals)} evaluation(s)), {run.jobs} at a time; "
          f"data {data['kind']} {data['path']}", flush=True)
    t0 = time.monotonic()
    entries = run.run_all(cfgs)
    g = report.Grid(title="Speech benchmark: pruning an LSTM digit recogniser during training",
                    grid=args.grid, cmdline=args.cmdline, methods=methods, msum=msum,
                    skipped=skipped, sparsities=sparsities, seeds=seeds, evals_run=evals,
                    epochs=args.epochs, extra=args.extra, entries=entries, data=data,
                    runner=run, grid_wall=time.monotonic() - t0, commit=runner.git_commit(),
                    append=args.append or ())
    base = write_outputs(args, g, data)
    print_summary(base, g, run)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
