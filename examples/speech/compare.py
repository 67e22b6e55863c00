#!/usr/bin/python3
"""compare.py - the speech benchmark: methods x sparsities x seeds on the
official FSDD split and leave-one-speaker-out, run with speech_demo.

    examples/speech/compare.py --grid reduced     # dense, gmp, csp at 0.95, seed 1, official
    examples/speech/compare.py --grid full        # every method, 0.9/0.95/0.98, seeds 1-3,
                                                  # official + leave-one-speaker-out

Runs up to --jobs speech_demo processes at once (default: the core count),
each single-threaded (OPENBLAS_NUM_THREADS=1), and caches every run's RESULT
line under <build>/speech-runs, keyed by its configuration and the data's
fingerprint, so a rerun skips what is done. A cached result made by other
binaries (speech_demo or libcsp changed) is rerun unless --accept-stale.

Writes <out>/<name>.md (tables: error rate mean +- sd, nnz, compressed
bytes, paired differences against row-balanced GMP, run times, data
provenance, the command), <out>/<name>.png (error rate against sparsity;
gnuplot, else matplotlib) and <out>/<name>.json (every run's RESULT).

Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import concurrent.futures
import datetime
import glob
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REFERENCE = "gmp"  # the baseline every method is paired against
# The CSP variant the reduced grid runs while the library's default
# configuration ("csp") is not CSP (docs/results/speech.md, "Choosing the
# default", says why).
REDUCED_CSP = "csp-obs"

# The PyTorch reference study of ../shared/design/METHOD.md §5 (same data,
# model, schedule; official split, 3 seeds): test accuracy %, mean and sd.
PYTORCH_STUDY = {
    ("dense", None): (98.5, 0.6),
    ("gmp", 0.95): (97.9, 0.2),
    ("gmp", 0.98): (96.5, 0.5),
    ("gmp-tensor", 0.95): (96.9, 1.2),
    ("gmp-tensor", 0.98): (90.3, 3.1),
}

# ------------------------------------------------------------------ stats


def portable(obj, data):
    """obj with this machine's paths made relative to the source tree: the
    data directory becomes its display path and any other absolute path
    inside the tree is made relative, so a report can be committed."""
    if isinstance(obj, dict):
        return {k: portable(v, data) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v, data) for v in obj]
    if isinstance(obj, str) and os.path.isabs(obj):
        if os.path.normpath(obj) == os.path.normpath(data["path"]):
            return data["display_path"]
        if os.path.commonpath([obj, ROOT]) == ROOT:
            return os.path.relpath(obj, ROOT)
    return obj


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def sd(xs):
    if len(xs) < 2:
        return float("nan")
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _betacf(a, b, x):
    # Continued fraction of the regularised incomplete beta (modified Lentz).
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
           + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def paired_t(diffs):
    """(t, two-sided p) of a paired t-test of diffs against 0."""
    n = len(diffs)
    s = sd(diffs)
    if n < 2 or not s > 0:
        return float("nan"), float("nan")
    t = mean(diffs) / (s / math.sqrt(n))
    df = n - 1
    return t, betainc(df / 2.0, 0.5, df / (df + t * t))


def sign_test(wins, losses):
    """Two-sided exact sign test p (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    p = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return min(1.0, 2.0 * p)


def fmt_pm(xs, digits=2):
    if not xs:
        return "-"
    if len(xs) < 2:
        return f"{mean(xs):.{digits}f}"
    return f"{mean(xs):.{digits}f} ± {sd(xs):.{digits}f}"


def fmt_p(p):
    if p != p:
        return "-"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


# ------------------------------------------------------------------ runs


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def binaries_id(demo, build):
    libs = sorted(p for p in glob.glob(os.path.join(build, "lib", "libcsp.so.*"))
                  if os.path.isfile(p) and not os.path.islink(p))
    h = hashlib.sha256()
    for p in [demo] + libs:
        h.update(sha256_file(p).encode())
    return h.hexdigest()[:16]


def run_key(cfg):
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:20]


def demo_env():
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


class Runner:
    def __init__(self, args, data, bin_id):
        self.args = args
        self.data = data
        self.bin_id = bin_id
        self.lock = threading.Lock()
        self.done = 0
        self.total = 0
        self.fresh = 0
        self.cached = 0
        self.failed = []
        self.missing = []
        os.makedirs(args.cache, exist_ok=True)

    def config(self, method, sparsity, seed, ev):
        return {
            "method": method,
            "sparsity": None if method == "dense" else sparsity,
            "seed": seed,
            "eval": ev,
            "epochs": self.args.epochs,
            "extra": self.args.extra,
            "data": self.data["fingerprint"],
        }

    def command(self, cfg):
        cmd = [self.args.demo, "--method", cfg["method"], "--seed", str(cfg["seed"]),
               "--epochs", str(cfg["epochs"]), "--eval", cfg["eval"],
               "--data", self.data["path"], "--quiet"]
        if cfg["sparsity"] is not None:
            cmd += ["--sparsity", repr(cfg["sparsity"])]
        return cmd + shlex.split(cfg["extra"])

    def run(self, cfg):
        key = run_key(cfg)
        path = os.path.join(self.args.cache, key + ".json")
        if not self.args.fresh and os.path.exists(path):
            with open(path) as f:
                entry = json.load(f)
            if entry.get("binaries") == self.bin_id or self.args.accept_stale:
                with self.lock:
                    self.cached += 1
                    self.done += 1
                return entry
        if self.args.cached_only:
            with self.lock:
                self.missing.append(cfg)
            return None
        cmd = self.command(cfg)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=demo_env())
        wall = time.monotonic() - t0
        with open(os.path.join(self.args.cache, key + ".log"), "w") as f:
            f.write(" ".join(shlex.quote(c) for c in cmd) + "\n" + proc.stdout)
        result = None
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
        with self.lock:
            self.done += 1
            n = self.done
        label = f"{cfg['method']} s={cfg['sparsity']} seed {cfg['seed']} {cfg['eval']}"
        if proc.returncode != 0 or result is None:
            with self.lock:
                self.failed.append((label, proc.returncode, proc.stdout[-2000:]))
            print(f"[{n}/{self.total}] {label}: FAILED (exit {proc.returncode}), "
                  f"log {key}.log", flush=True)
            return None
        entry = {"config": cfg, "binaries": self.bin_id, "wall_s": wall,
                 "command": cmd, "result": result}
        tmp = path + f".tmp{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w") as f:
            json.dump(entry, f)
        os.replace(tmp, path)
        with self.lock:
            self.fresh += 1
        print(f"[{n}/{self.total}] {label}: error {100 * result['test_err']:.2f}% "
              f"sparsity {result['sparsity_achieved']:.4f} ({wall:.1f} s, "
              f"csp_step {100 * result['time']['csp_share']:.2f}%)", flush=True)
        return entry

    def run_all(self, cfgs):
        self.total = len(cfgs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.args.jobs) as ex:
            return [e for e in ex.map(self.run, cfgs) if e is not None]


# --------------------------------------------------------------- report


def eval_kind(ev):
    return "official" if ev == "official" else "loso"


EVAL_TITLE = {"official": "official split", "loso": "leave-one-speaker-out"}


def collect(entries):
    """{(method, sparsity, kind): {(seed, fold): err%}} plus result rows."""
    table = {}
    rows = {}
    for e in entries:
        c, r = e["config"], e["result"]
        kind = eval_kind(c["eval"])
        fold = "official" if kind == "official" else c["eval"].split(":", 1)[1]
        key = (c["method"], c["sparsity"], kind)
        table.setdefault(key, {})[(c["seed"], fold)] = 100.0 * r["test_err"]
        rows.setdefault(key, []).append(e)
    return table, rows


def seed_means(cell):
    """Per seed, the mean error over folds (one value per seed)."""
    per = {}
    for (seed, _fold), err in cell.items():
        per.setdefault(seed, []).append(err)
    return [mean(v) for _s, v in sorted(per.items())]


def lookup(table, method, s, kind):
    return table.get((method, None if method == "dense" else s, kind), {})


def write_report(args, data, methods, msum, entries, grid_wall, runner, out_md, png_name,
                 plot_tool):
    table, rows = collect(entries)
    kinds = [k for k in ("official", "loso") if any(eval_kind(e) == k for e in args.evals_run)]
    L = []
    w = L.append
    title = "Speech benchmark: pruning an LSTM digit recogniser during training"
    w(f"# {title}\n")
    w(f"Generated by `examples/speech/compare.py` on {datetime.date.today().isoformat()}; "
      f"grid `{args.grid}`. Regenerate with:\n")
    w("```sh\n" + args.cmdline + "\n```\n")
    if data["kind"] == "fsdd":
        w(f"**Data: the Free Spoken Digit Dataset** (real recordings; Jakobovski et al., "
          f"CC BY-SA 4.0), read from `{data['display_path']}`, never copied: "
          f"{data['files']} files, speakers {', '.join(data['speakers'])}; "
          f"fingerprint `{data['fingerprint']}`.\n")
    elif data["kind"] == "espeak":
        w(f"**Data: SYNTHETIC spoken digits made by espeak-ng** (FSDD was not found): "
          f"{data['files']} files in `{data['display_path']}`, voices "
          f"{', '.join(data['speakers'])}; fingerprint `{data['fingerprint']}`. "
          f"These are not real recordings; results on them say nothing about real speech.\n")
    else:
        w(f"**Data: an unrecognised set of digit recordings** in `{data['display_path']}` "
          f"({data['files']} files, speakers {', '.join(data['speakers'])}; fingerprint "
          f"`{data['fingerprint']}`).\n")
    ex = entries[0]["result"] if entries else {}
    # The schedule is described from an official-split run when there is one,
    # else from the first pruned run (a leave-one-speaker-out fold has fewer
    # training steps, so its event steps differ).
    pruned = sorted((e for e in entries if e["config"]["method"] != "dense"),
                    key=lambda e: e["config"]["eval"] != "official")
    sch_split = ("official split" if pruned and pruned[0]["config"]["eval"] == "official"
                 else f"fold {pruned[0]['config']['eval']}" if pruned else "official split")
    pruned = [e["result"] for e in pruned]
    sch = pruned[0]["schedule"] if pruned else {}
    hid = ex.get("hidden", 128)
    steps = pruned[0]["steps"] if pruned else 0
    ramp = (f"{100 * sch['begin_step'] / steps:.0f}%..{100 * sch['end_step'] / steps:.0f}%"
            if steps and sch else "?")
    w(f"**Setup.** 40 log-mel bands -> LSTM(40->{hid}) -> mean-pool -> Linear({hid}->10), Adam "
      f"(lr 1e-3, clip 5), batch 32, {args.epochs} epochs; `csp_step()` after every optimizer "
      "update prunes `W_ih`, `W_hh` and `W_out` (not the biases) and zeroes their Adam moments; "
      f"cubic schedule from 0 ramping over {ramp} of the training steps, about "
      f"{sch.get('events', 50)} events "
      f"({sch_split}: steps {sch.get('begin_step', '?')}..{sch.get('end_step', '?')} every "
      f"{sch.get('frequency', '?')}), monotone masks; the same schedule for every method"
      + (f"; extra speech_demo flags `{args.extra}`" if args.extra else "") + ". "
      f"Seeds {', '.join(map(str, args.seeds))}. Official split: index 0-4 test (250), "
      "5-49 train. Leave-one-speaker-out: train on four speakers, test on the fifth "
      "(5 folds); its ± is over seeds of the mean over folds. Error rate = 100 - test "
      "accuracy, in %, after the last epoch.\n")
    w("**Methods.**\n")
    for m in methods:
        w(f"- `{m}`: {msum[m]['summary']}")
    for m, why in args.skipped:
        w(f"- `{m}`: not run: {why}")
    w("")

    # Main table.
    n_folds = sum(1 for e in args.evals_run if e != "official")
    w("## Error rate (%), mean ± sd over seeds\n")
    head = "| method | " + " | ".join(
        f"{EVAL_TITLE[k]} s={s}" for k in kinds for s in args.sparsities) + " |"
    w(head)
    w("|" + "---|" * (1 + len(kinds) * len(args.sparsities)))
    for m in methods:
        cells = []
        for k in kinds:
            for s in args.sparsities:
                cell = lookup(table, m, s, k)
                v = seed_means(cell)
                note = ""
                if v and len(v) != len(args.seeds):
                    note = f" ({len(v)} seed{'s' if len(v) > 1 else ''})"
                if k == "loso" and cell and len(cell) != len(v) * n_folds:
                    note = f" ({len(cell)} runs)"
                cells.append(fmt_pm(v) + note)
        w(f"| {m} | " + " | ".join(cells) + " |")
    w("\n`dense` is not pruned: the same runs are shown under every sparsity.\n")
    if len(args.seeds) == 1:
        w("**One seed.** On this benchmark the seed-to-seed sd is 0.5-2 points on the official "
          "split (one test utterance is 0.4) and 5-9 points per held-out speaker, so a single "
          "seed cannot rank methods; `docs/results/speech.md` has the full grid with paired "
          "differences.\n")

    # Size table.
    w("## Kept weights and compressed size\n")
    w("Over the three pruned matrices (87,296 weights, 349,184 B as float32; the biases, "
      "4,136 B, stay dense). For pruned runs the bytes are those of **libcsp's exports** "
      "(`csp_pruner_export()`; CSR: header, int32 row pointers, uint16 column indices, "
      "float32 values; bitmap: header, 1 bit per weight, float32 values; "
      "`docs/formats.md`), and the demo decodes the CSR export back and compares it with "
      "the weights bit for bit (column \"round trip\"). The dense run has no pruner: its "
      "bytes are computed by speech_demo with the same layouts, without headers. Every "
      "run's nnz equals the schedule's exact count where the granularity defines one (row: "
      "rows x (cols - round(s cols)); tensor: numel - round(s numel)).\n")
    w("| method | s | nnz | sparsity | CSR bytes | bitmap bytes | CSR % of dense | exact | "
      "masked moments zero | bytes from | round trip |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in methods:
        for s in (args.sparsities if m != "dense" else [None]):
            es = [e for k in kinds for e in rows.get((m, s, k), [])]
            if not es:
                continue
            nnz = sorted({e["result"]["nnz"] for e in es})
            csr = mean([e["result"]["bytes"]["csr"] for e in es])
            bmp = mean([e["result"]["bytes"]["bitmap"] for e in es])
            dense_b = es[0]["result"]["bytes"]["dense"]
            exact = [e["result"]["sparsity_exact"] for e in es]
            ex_s = ("yes" if all(x is True for x in exact) else
                    "n/a" if all(x is None for x in exact) else "NO")
            mok = "yes" if all(e["result"]["mask_ok"] for e in es) else "NO"
            sa = mean([e["result"]["sparsity_achieved"] for e in es])
            src = "/".join(sorted({e["result"]["bytes"].get("source", "speech_demo")
                                   for e in es}))
            rt = [e["result"]["bytes"].get("export_roundtrip") for e in es]
            rt_s = ("n/a" if any(x is None for x in rt) else
                    "yes" if all(rt) else "NO")
            w(f"| {m} | {s if s is not None else '-'} | "
              f"{'/'.join(str(x) for x in nnz)} | {sa:.4f} | {csr:,.0f} | {bmp:,.0f} | "
              f"{100 * csr / dense_b:.2f} | {ex_s} | {mok} | {src} | {rt_s} |")
    w("")

    # Paired differences.
    others = [m for m in methods if m not in (REFERENCE, "dense")] + (
        ["dense"] if "dense" in methods else [])
    if REFERENCE in methods and others:
        w(f"## Paired differences against row-balanced GMP (`{REFERENCE}`)\n")
        w("Difference = method's error rate - GMP's, in percentage points, paired by seed "
          "(official) and by seed and held-out speaker (leave-one-speaker-out); negative is "
          "better than GMP. W/T/L: pairs where the method is better / equal / worse. "
          "Sign test: two-sided exact binomial over the non-tied pairs. t: paired t-test, "
          "two-sided. Ratio: mean error / GMP's mean error (the issue's target for CSP is "
          "<= 0.9 at s = 0.95 and 0.98 on both evaluations, beyond seed noise).\n")
        w("| method | s | evaluation | pairs | mean diff ± sd | W/T/L | sign p | t | t p | "
          "ratio |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        details = []
        for m in others:
            for s in args.sparsities:
                for k in kinds:
                    a, b = lookup(table, m, s, k), lookup(table, REFERENCE, s, k)
                    keys = sorted(set(a) & set(b))
                    if not keys:
                        continue
                    d = [a[x] - b[x] for x in keys]
                    wins = sum(1 for x in d if x < -1e-9)
                    losses = sum(1 for x in d if x > 1e-9)
                    ties = len(d) - wins - losses
                    t, tp = paired_t(d)
                    ratio = mean([a[x] for x in keys]) / mean([b[x] for x in keys]) \
                        if mean([b[x] for x in keys]) > 0 else float("nan")
                    w(f"| {m} | {s} | {EVAL_TITLE[k]} | {len(d)} | {fmt_pm(d)} | "
                      f"{wins}/{ties}/{losses} | {fmt_p(sign_test(wins, losses))} | "
                      f"{'-' if t != t else f'{t:.2f}'} | {fmt_p(tp)} | "
                      f"{'-' if ratio != ratio else f'{ratio:.2f}'} |")
                    if k == "official":
                        parts = [f"seed {seed} {a[(seed, f)] - b[(seed, f)]:+.1f}"
                                 for seed, f in keys]
                    else:
                        folds = sorted({f for _s, f in keys})
                        parts = []
                        for f in folds:
                            ds = [a[(seed, ff)] - b[(seed, ff)] for seed, ff in keys if ff == f]
                            parts.append(f"{f} " + "/".join(f"{x:+.1f}" for x in ds))
                    details.append(f"- `{m}` s={s}, {EVAL_TITLE[k]}: " + "; ".join(parts))
        w("\nEvery pair (per held-out speaker, the seeds in order, separated by /):\n")
        L.extend(details)
        w("")

    # CSP statistics.
    csprows = []
    for m in methods:
        for s in args.sparsities:
            es = [e for k in kinds for e in rows.get((m, s, k), [])
                  if "csp" in e["result"] and msum.get(m, {}).get("is_csp")]
            if not es:
                continue
            ts = [e["result"]["csp"]["tensors"] for e in es]
            names = [t["name"] for t in ts[0]]

            def per(field):
                return "/".join(f"{mean([t[i][field] for t in ts]):.3g}"
                                for i in range(len(names)))
            c0 = ts[0]
            conf = ", ".join(sorted({f"{t['sensing']}/{t['solver']}/{t['correction']}"
                                     for t in c0}))
            csprows.append(
                f"| {m} | {s} | {conf} | {per('weight_error')} | {per('sensing_error')} | "
                f"{per('mean_weight_error')} | "
                f"{mean([sum(t['iterations'] for t in x) for x in ts]):,.0f} | "
                f"{mean([e['result']['csp']['event_s'] for e in es]):.2f} | "
                f"{mean([e['result']['csp']['observe_s'] for e in es]):.2f} | "
                f"{100 * mean([e['result']['time']['csp_share'] for e in es]):.1f} |")
    if csprows:
        w("## CSP statistics\n")
        w("Mean over every run of the method and sparsity (both evaluations). Per tensor "
          "(W_ih/W_hh/W_out), at the last pruning event that removed weights: the relative "
          "weight error ||W - X||_F / ||W||_F and the sensing error sum (w-x)^T G (w-x) / "
          "sum w^T G w (G = the tensor's sensing Gram), and the weight error averaged over "
          "all such events; solver iterations (OMP: atoms) summed over events and tensors; "
          "seconds in pruning events and in observing activations per run; the share of "
          "training time spent in libcsp (csp_step + observe).\n")
        w("| method | s | sensing/solver/correction | weight error (last) | sensing error "
          "(last) | weight error (mean) | iterations | event s | observe s | % of training |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        L.extend(csprows)
        w("")

    # Against the PyTorch reference study.
    refrows = []
    for (m, s), (acc, acc_sd) in PYTORCH_STUDY.items():
        if m not in methods or (s is not None and s not in args.sparsities):
            continue
        ours = seed_means(lookup(table, m, s, "official"))
        if ours:
            refrows.append(f"| {m} | {s if s is not None else '-'} | {fmt_pm(ours)} | "
                           f"{100 - acc:.1f} ± {acc_sd:.1f} | {mean(ours) - (100 - acc):+.2f} |")
    if refrows:
        w("## Against the PyTorch reference study (METHOD.md §5)\n")
        w("Official split, error rate % (100 - the study's accuracy), mean ± sd over 3 seeds. "
          "Same data, model, optimizer and schedule; a different framework, initialisation "
          "stream, batching (this trainer buckets batches by length) and BLAS.\n")
        w("| method | s | this benchmark | PyTorch study | difference |")
        w("|---|---|---|---|---|")
        L.extend(refrows)
        w("")

    # Per speaker.
    if "loso" in kinds:
        folds = sorted({f for c in table.values() for (_s, f) in c if f != "official"})
        w("## Leave-one-speaker-out: error rate (%) per held-out speaker, mean over seeds\n")
        w("| method | s | " + " | ".join(folds) + " |")
        w("|---|---|" + "---|" * len(folds))
        for m in methods:
            for s in (args.sparsities if m != "dense" else [None]):
                cell = table.get((m, s, "loso"), {})
                if not cell:
                    continue
                vals = []
                for f in folds:
                    v = [err for (seed, ff), err in cell.items() if ff == f]
                    vals.append(f"{mean(v):.1f}" if v else "-")
                w(f"| {m} | {s if s is not None else '-'} | " + " | ".join(vals) + " |")
        w("")

    # Plot.
    if png_name:
        w(f"## Plot\n\n![error rate against sparsity]({png_name})\n\n"
          f"Error rate (mean ± sd over seeds) against final sparsity; dense as a dashed line "
          f"(made with {plot_tool}).\n")

    # Times.
    w("## Run times\n")
    w("| method | runs | mean run s | mean training s | time in csp_step (% of training) | "
      "mean events |")
    w("|---|---|---|---|---|---|")
    for m in methods:
        es = [e for e in entries if e["config"]["method"] == m]
        if not es:
            continue
        w(f"| {m} | {len(es)} | {mean([e['result']['time']['total_s'] for e in es]):.1f} | "
          f"{mean([e['result']['time']['train_s'] for e in es]):.1f} | "
          f"{100 * mean([e['result']['time']['csp_share'] for e in es]):.2f} | "
          f"{mean([e['result']['time']['events'] for e in es]):.0f} |")
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    run_sum = sum(e["wall_s"] for e in entries)
    if runner.missing:
        w(f"Not run ({len(runner.missing)} runs of the grid, left out for time): " + "; ".join(
            sorted({f"{c['method']} s={c['sparsity']} {eval_kind(c['eval'])}"
                    for c in runner.missing})) + ".\n")
    w(f"\nThis grid: {len(entries)} runs, each one thread (OPENBLAS_NUM_THREADS=1), on "
      f"{os.cpu_count()} cores ({cpu or platform.machine()}; the machine may be shared). "
      f"Their own wall times sum to {run_sum / 60:.1f} min. This invocation ran "
      f"{runner.fresh} of them ({runner.cached} came from the cache) in "
      f"{grid_wall / 60:.1f} min with {args.jobs} in parallel. Times of cached runs are "
      f"those of their first run.\n")
    bins = sorted({e["binaries"] for e in entries})
    w(f"libcsp {ex.get('libcsp', '?')}; binaries {', '.join(bins)}; commit {args.commit}.\n")
    for path in args.append or []:
        with open(path) as f:
            w("\n" + f.read().strip() + "\n")
    with open(out_md, "w") as f:
        f.write("\n".join(L).rstrip() + "\n")


def plot(args, methods, entries, out_png):
    """Error rate against sparsity, one panel per evaluation. Returns the tool
    used, or None."""
    table, _rows = collect(entries)
    kinds = [k for k in ("official", "loso") if any(eval_kind(e) == k for e in args.evals_run)]
    series = {}
    for k in kinds:
        for m in methods:
            pts = []
            for s in args.sparsities:
                v = seed_means(lookup(table, m, s, k))
                if v:
                    pts.append((s, mean(v), sd(v) if len(v) > 1 else 0.0))
            if pts:
                series[(k, m)] = pts
    if not series:
        return None
    xs = args.sparsities
    lo, hi = min(xs), max(xs)
    pad = max(0.01, 0.08 * (hi - lo))
    if shutil.which("gnuplot"):
        with tempfile.TemporaryDirectory() as tmp:
            script = [
                "set terminal pngcairo size %d,480 font 'sans,10'" % (520 * len(kinds)),
                f"set output '{out_png}'",
                f"set multiplot layout 1,{len(kinds)}",
                "set key top left", "set grid",
                "set xlabel 'final sparsity'", "set ylabel 'test error rate (%)'",
                f"set xrange [{lo - pad}:{hi + pad}]", "set yrange [0:*]",
                "set xtics (" + ", ".join(f"'{x:g}' {x}" for x in xs) + ")",
            ]
            jitter = 0.004 * (hi - lo if hi > lo else 0.1)
            for k in kinds:
                plots = []
                for i, m in enumerate(methods):
                    pts = series.get((k, m))
                    if not pts:
                        continue
                    dat = os.path.join(tmp, f"{k}-{i}.dat")
                    with open(dat, "w") as f:
                        if m == "dense":
                            y, e = pts[0][1], pts[0][2]
                            for x in (lo - pad, hi + pad):
                                f.write(f"{x} {y} {e}\n")
                        else:
                            dx = (i - (len(methods) - 1) / 2.0) * jitter
                            for x, y, e in pts:
                                f.write(f"{x + dx} {y} {e}\n")
                    if m == "dense":
                        plots.append(f"'{dat}' using 1:2 with lines dt 2 lw 2 lc rgb 'black' "
                                     f"title 'dense'")
                    else:
                        plots.append(f"'{dat}' using 1:2:3 with yerrorlines lw 2 pt 7 "
                                     f"title '{m}'")
                script.append(f"set title '{EVAL_TITLE[k]}'")
                script.append("plot " + ", ".join(plots))
            script.append("unset multiplot")
            r = subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True,
                               capture_output=True)
            if r.returncode == 0 and os.path.exists(out_png):
                return "gnuplot"
            print("gnuplot failed: " + r.stderr.strip(), file=sys.stderr)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 4.2), squeeze=False)
    for ax, k in zip(axes[0], kinds):
        for m in methods:
            pts = series.get((k, m))
            if not pts:
                continue
            if m == "dense":
                ax.axhline(pts[0][1], ls="--", color="k", label="dense")
            else:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts],
                            marker="o", capsize=3, label=m)
        ax.set_title(EVAL_TITLE[k])
        ax.set_xlabel("final sparsity")
        ax.set_ylabel("test error rate (%)")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    return "matplotlib"


# ----------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", choices=("reduced", "full"), default="reduced",
                    help="reduced: dense, gmp and the library's default CSP at 0.95, seed 1, "
                         "official split; full: every method at 0.9/0.95/0.98, seeds 1-3, "
                         "official and leave-one-speaker-out (default reduced)")
    ap.add_argument("--methods", help="comma-separated methods (default: by grid)")
    ap.add_argument("--sparsities", help="comma-separated (default: by grid)")
    ap.add_argument("--seeds", help="comma-separated (default: by grid)")
    ap.add_argument("--evals", help="official, loso, speaker:NAME, comma-separated "
                                    "(default: by grid)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--extra", default="", help="more speech_demo flags, one string")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                    help="parallel runs (default: the usable cores)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="meson build dir")
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
    args = ap.parse_args()

    args.cmdline = " ".join(["examples/speech/compare.py"] +
                            [shlex.quote(a) for a in sys.argv[1:]])
    args.build = os.path.abspath(args.build)
    args.demo = os.path.abspath(args.demo or os.path.join(args.build, "examples", "speech",
                                                          "speech_demo"))
    args.cache = os.path.abspath(args.cache or os.path.join(args.build, "speech-runs"))
    if not os.access(args.demo, os.X_OK):
        sys.exit(f"compare.py: {args.demo} not found: build first (ninja -C {args.build})")
    args.out = os.path.abspath(args.out or (os.path.join(ROOT, "docs", "results")
                                            if args.grid == "full"
                                            else os.path.join(args.build, "results")))
    args.jobs = max(1, args.jobs)

    # Methods the binary knows.
    r = subprocess.run([args.demo, "--list-methods"], capture_output=True, text=True, check=True)
    msum = {}
    for line in r.stdout.splitlines():
        if line.startswith("METHOD "):
            m = json.loads(line[7:])
            msum[m["name"]] = m
    args.skipped = []
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
            args.skipped.append((m, msum[m]["summary"]))
            methods.remove(m)
        elif m.startswith("csp") and not msum[m]["is_csp"] and not args.methods:
            args.skipped.append((m, msum[m]["summary"] + " (it would repeat gmp-tensor)"))
            methods.remove(m)
    args.sparsities = [float(x) for x in (args.sparsities or (
        "0.95" if args.grid == "reduced" else "0.9,0.95,0.98")).split(",")]
    args.seeds = [int(x) for x in (args.seeds or (
        "1" if args.grid == "reduced" else "1,2,3")).split(",")]
    evals = (args.evals or ("official" if args.grid == "reduced" else "official,loso")).split(",")

    # Data: resolved once (this may synthesise the espeak-ng fallback).
    cmd = [args.demo, "--print-data"] + (["--data", args.data] if args.data else [])
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=demo_env())
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("DATA ")]
    if r.returncode != 0 or not line:
        sys.exit("compare.py: no data (see above)")
    data = json.loads(line[0][5:])
    rel = os.path.relpath(data["path"], ROOT)
    data["display_path"] = rel if not rel.startswith("../..") else data["path"]
    if data["kind"] != "fsdd":
        print(f"NOTE: data is {data['kind']} ({data['path']}), not the Free Spoken Digit "
              f"Dataset", flush=True)
    args.evals_run = []
    for ev in evals:
        if ev == "loso":
            args.evals_run += [f"speaker:{s}" for s in data["speakers"]]
        else:
            args.evals_run.append(ev)
    try:
        args.commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                     capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        args.commit = "?"

    bin_id = binaries_id(args.demo, args.build)
    runner = Runner(args, data, bin_id)
    cfgs, seen = [], set()
    for ev in args.evals_run:
        for seed in args.seeds:
            for m in methods:
                for s in args.sparsities:
                    c = runner.config(m, s, seed, ev)
                    k = run_key(c)
                    if k not in seen:
                        seen.add(k)
                        cfgs.append(c)
    print(f"compare.py: {len(cfgs)} runs ({', '.join(methods)} x {args.sparsities} x seeds "
          f"{args.seeds} x {len(args.evals_run)} evaluation(s)), {args.jobs} at a time; "
          f"data {data['kind']} {data['path']}", flush=True)
    t0 = time.monotonic()
    entries = runner.run_all(cfgs)
    grid_wall = time.monotonic() - t0

    os.makedirs(args.out, exist_ok=True)
    out_md = os.path.join(args.out, args.name + ".md")
    out_png = os.path.join(args.out, args.name + ".png")
    out_json = os.path.join(args.out, args.name + ".json")
    tool = plot(args, methods, entries, out_png)
    write_report(args, data, methods, msum, entries, grid_wall, runner, out_md,
                 os.path.basename(out_png) if tool else None, tool)
    with open(out_json, "w") as f:
        json.dump(portable({"command": args.cmdline, "data": data, "grid_wall_s": grid_wall,
                            "runs": [{"config": e["config"], "wall_s": e["wall_s"],
                                      "result": e["result"]} for e in entries]}, data),
                  f, indent=0, sort_keys=True)
        f.write("\n")
    with open(out_md) as f:  # the main table, on the terminal too
        md = f.read()
    i = md.find("## Error rate")
    if i >= 0:
        j = md.find("\n## ", i + 1)
        print("\n" + md[i:j if j > 0 else len(md)].strip() + "\n")
    print(f"compare.py: {len(entries)} runs in {grid_wall / 60:.1f} min "
          f"({runner.fresh} run, {runner.cached} cached); wrote {out_md}"
          + (f", {out_png}" if tool else " (no plot: install gnuplot-nox)") + f", {out_json}")
    if runner.failed:
        for label, rc, tail in runner.failed:
            print(f"FAILED {label} (exit {rc}):\n{tail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
