"""The markdown report of a benchmark grid (compare.py): one function per
section, each returning its lines. Every number comes from the runs'
RESULT lines (sizes and totals too, so any --hidden is reported right)."""
import datetime
import os
import platform

from .stats import fmt_p, fmt_pm, mean, paired_t, sign_test

REFERENCE = "gmp"  # the baseline every method is paired against
EVAL_TITLE = {"official": "official split", "loso": "leave-one-speaker-out"}

# A PyTorch reference study with the same data, model, optimizer and
# schedule (official split, 3 seeds): test accuracy %, mean and sd.
PYTORCH_STUDY = {
    ("dense", None): (98.5, 0.6),
    ("gmp", 0.95): (97.9, 0.2),
    ("gmp", 0.98): (96.5, 0.5),
    ("gmp-tensor", 0.95): (96.9, 1.2),
    ("gmp-tensor", 0.98): (90.3, 3.1),
}


def eval_kind(ev):
    return "official" if ev == "official" else "loso"


def collect(entries):
    """{(method, sparsity, kind): {(seed, fold): err%}} plus result rows."""
    table, rows = {}, {}
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


class Grid:
    """What a report describes: the grid's axes, the runs and how they ran."""

    def __init__(self, *, title, grid, cmdline, methods, msum, skipped, sparsities, seeds,
                 evals_run, epochs, extra, entries, data, runner, grid_wall, commit,
                 png_name=None, plot_tool=None, append=()):
        self.title, self.grid, self.cmdline = title, grid, cmdline
        self.methods, self.msum, self.skipped = methods, msum, skipped
        self.sparsities, self.seeds, self.evals_run = sparsities, seeds, evals_run
        self.epochs, self.extra, self.entries, self.data = epochs, extra, entries, data
        self.runner, self.grid_wall, self.commit = runner, grid_wall, commit
        self.png_name, self.plot_tool, self.append = png_name, plot_tool, append
        self.table, self.rows = collect(entries)
        self.kinds = [k for k in ("official", "loso")
                      if any(eval_kind(e) == k for e in evals_run)]


def data_line(data):
    if data["kind"] == "fsdd":
        return (f"**Data: the Free Spoken Digit Dataset** (real recordings; Jakobovski et al., "
                f"CC BY-SA 4.0), read from `{data['display_path']}`, never copied: "
                f"{data['files']} files, speakers {', '.join(data['speakers'])}; "
                f"fingerprint `{data['fingerprint']}`.\n")
    if data["kind"] == "espeak":
        return (f"**Data: SYNTHETIC spoken digits made by espeak-ng** (FSDD was not found): "
                f"{data['files']} files in `{data['display_path']}`, voices "
                f"{', '.join(data['speakers'])}; fingerprint `{data['fingerprint']}`. "
                "These are not real recordings; results on them say nothing about real "
                "speech.\n")
    return (f"**Data: an unrecognised set of digit recordings** in `{data['display_path']}` "
            f"({data['files']} files, speakers {', '.join(data['speakers'])}; fingerprint "
            f"`{data['fingerprint']}`).\n")


def recipe_words(results):
    """The training recipe of the runs, in words (several: each named)."""
    def one(r):
        rc = r["recipe"]
        lr = f"Adam (lr {rc['lr']:g}, clip {rc['clip']:g})"
        if rc["lr_decay"] == "none":
            lr += ", constant learning rate"
        else:
            lr += (f", {rc['lr_decay']} learning-rate decay to {rc['lr_final']:g}x over updates "
                   f"{rc['lr_decay_begin_step']}..{rc['lr_decay_end_step']} of {r['steps']}")
        pruned = [x for x in results if x["method"] != "dense"]
        if pruned:
            lr += ("; pruned weights' gradients masked before clipping"
                   if any(x["recipe"]["mask_gradients"] for x in pruned)
                   else "; pruned weights' gradients not masked")
        return lr
    names = sorted({(r["recipe"]["name"] or "custom") for r in results})
    if len(names) == 1:
        return f"recipe `{names[0]}`: {one(results[0])}"
    return "recipes " + "; ".join(
        f"`{n}`: {one(next(r for r in results if (r['recipe']['name'] or 'custom') == n))}"
        for n in names)


def setup_section(g):
    results = [e["result"] for e in g.entries]
    if not results:
        return ["**Setup.** No run finished.\n"]
    ex = results[0]
    # The schedule is described from an official-split run when there is one,
    # else from the first pruned run (a leave-one-speaker-out fold has fewer
    # training steps, so its event steps differ).
    pruned = sorted((e for e in g.entries if e["config"]["method"] != "dense"),
                    key=lambda e: e["config"]["eval"] != "official")
    sch_split = ("official split" if not pruned or pruned[0]["config"]["eval"] == "official"
                 else f"fold {pruned[0]['config']['eval']}")
    sch = pruned[0]["result"]["schedule"] if pruned else None
    steps = pruned[0]["result"]["steps"] if pruned else ex["steps"]
    m = ex["model"]
    text = (f"**Setup.** {m['input']} log-mel bands -> LSTM({m['input']}->{m['hidden']}) -> "
            f"mean-pool -> Linear({m['hidden']}->{m['classes']}), batch {ex['batch']}, "
            f"{g.epochs} epochs, {recipe_words(results)}; `csp_step()` after every optimizer "
            "update prunes `W_ih`, `W_hh` and `W_out` (not the biases) and zeroes their Adam "
            "moments")
    if sch:
        text += (f"; cubic schedule from 0 ramping over {100 * sch['begin_step'] / steps:.0f}%.."
                 f"{100 * sch['end_step'] / steps:.0f}% of the training steps, about "
                 f"{sch['events']} events ({sch_split}: steps {sch['begin_step']}.."
                 f"{sch['end_step']} every {sch['frequency']}), monotone masks; the same "
                 "schedule for every method")
    if g.extra:
        text += f"; extra speech_demo flags `{g.extra}`"
    off = next((r for r in results if r["eval"] == "official"), None)
    sizes = f" ({off['test_n']} test, {off['train_n']} train)" if off else ""
    if any(r["eval_set"] == "validation" for r in results):
        text += ("; **the runs score validation splits** (`--validate`: carved from the "
                 "training side, the test set unused), not the test sets below")
    text += (f". Seeds {', '.join(map(str, g.seeds))}. Official split: recordings 0-4 test, "
             f"5-49 train{sizes}. Leave-one-speaker-out: train on the other speakers, test on "
             "the held-out one (a fold per speaker); its ± is over seeds of the mean over "
             "folds. Error rate = 100 - test accuracy, in %, after the last epoch.\n")
    return [text]


def head_section(g):
    L = [f"# {g.title}\n",
         f"Generated by `examples/speech/compare.py` on {datetime.date.today().isoformat()}; "
         f"grid `{g.grid}`. Regenerate with:\n",
         "```sh\n" + g.cmdline + "\n```\n",
         data_line(g.data)]
    L += setup_section(g)
    L.append("**Methods.**\n")
    L += [f"- `{m}`: {g.msum[m]['summary']}" for m in g.methods]
    L += [f"- `{m}`: not run: {why}" for m, why in g.skipped]
    L.append("")
    return L


def error_section(g):
    n_folds = sum(1 for e in g.evals_run if e != "official")
    L = ["## Error rate (%), mean ± sd over seeds\n",
         "| method | " + " | ".join(f"{EVAL_TITLE[k]} s={s}" for k in g.kinds
                                   for s in g.sparsities) + " |",
         "|" + "---|" * (1 + len(g.kinds) * len(g.sparsities))]
    for m in g.methods:
        cells = []
        for k in g.kinds:
            for s in g.sparsities:
                cell = lookup(g.table, m, s, k)
                v = seed_means(cell)
                note = ""
                if v and len(v) != len(g.seeds):
                    note = f" ({len(v)} seed{'s' if len(v) > 1 else ''})"
                if k == "loso" and cell and len(cell) != len(v) * n_folds:
                    note = f" ({len(cell)} runs)"
                cells.append(fmt_pm(v) + note)
        L.append(f"| {m} | " + " | ".join(cells) + " |")
    L.append("\n`dense` is not pruned: the same runs are shown under every sparsity.\n")
    if len(g.seeds) == 1:
        L.append("**One seed.** On this benchmark the seed-to-seed sd is 0.5-2 points on the "
                 "official split (one test utterance is 0.4) and 5-9 points per held-out "
                 "speaker, so a single seed cannot rank methods; `docs/results/speech.md` has "
                 "the full grid with paired differences.\n")
    return L


def sizes_words(results):
    """The pruned matrices' weights and bytes and the biases' bytes, from
    the runs (one phrase per model size)."""
    sizes = sorted({(r["model"]["hidden"], r["numel"], r["bytes"]["dense"],
                     r["bytes"]["biases"]) for r in results})
    return "; ".join(f"{'H = %d: ' % h if len(sizes) > 1 else ''}{n:,} weights, {d:,} B as "
                     f"float32; the biases, {b:,} B, stay dense" for h, n, d, b in sizes)


def size_row(m, s, es):
    res = [e["result"] for e in es]
    nnz = sorted({r["nnz"] for r in res})
    csr = mean([r["bytes"]["csr"] for r in res])
    bmp = mean([r["bytes"]["bitmap"] for r in res])
    exact = [r["sparsity_exact"] for r in res]
    ex_s = ("yes" if all(x is True for x in exact) else
            "n/a" if all(x is None for x in exact) else "NO")
    mok = "yes" if all(r["mask_ok"] for r in res) else "NO"
    src = "/".join(sorted({r["bytes"]["source"] for r in res}))
    rt = "yes" if all(r["bytes"]["export_roundtrip"] for r in res) else "NO"
    return (f"| {m} | {s if s is not None else '-'} | {'/'.join(str(x) for x in nnz)} | "
            f"{mean([r['sparsity_achieved'] for r in res]):.4f} | {csr:,.0f} | {bmp:,.0f} | "
            f"{100 * csr / res[0]['bytes']['dense']:.2f} | {ex_s} | {mok} | {src} | {rt} |")


def size_section(g):
    L = ["## Kept weights and compressed size\n",
         f"Over the three pruned matrices ({sizes_words([e['result'] for e in g.entries])}). "
         "For pruned runs the bytes are those of **libcsp's exports** (`csp_pruner_export()`; "
         "CSR: header, int32 row pointers, uint16 column indices, float32 values; bitmap: "
         "header, 1 bit per weight, float32 values; `docs/formats.md`), and the demo decodes "
         "the CSR export back and compares it with the weights bit for bit (column \"round "
         "trip\"). The dense run has no pruner: its bytes are computed by speech_demo with "
         "the same layouts, without headers. Every run's nnz equals the schedule's exact "
         "count where the granularity defines one (row: rows x (cols - round(s cols)); "
         "tensor: numel - round(s numel)).\n",
         "| method | s | nnz | sparsity | CSR bytes | bitmap bytes | CSR % of dense | exact | "
         "masked moments zero | bytes from | round trip |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in g.methods:
        for s in (g.sparsities if m != "dense" else [None]):
            es = [e for k in g.kinds for e in g.rows.get((m, s, k), [])]
            if es:
                L.append(size_row(m, s, es))
    L.append("")
    return L


def paired_row(m, s, k, a, b):
    """The table row and the per-pair detail of method cell a against GMP's b."""
    keys = sorted(set(a) & set(b))
    d = [a[x] - b[x] for x in keys]
    wins = sum(1 for x in d if x < -1e-9)
    losses = sum(1 for x in d if x > 1e-9)
    t, tp = paired_t(d)
    gmp_mean = mean([b[x] for x in keys])
    ratio = mean([a[x] for x in keys]) / gmp_mean if gmp_mean > 0 else float("nan")
    row = (f"| {m} | {s} | {EVAL_TITLE[k]} | {len(d)} | {fmt_pm(d)} | "
           f"{wins}/{len(d) - wins - losses}/{losses} | {fmt_p(sign_test(wins, losses))} | "
           f"{'-' if t != t else f'{t:.2f}'} | {fmt_p(tp)} | "
           f"{'-' if ratio != ratio else f'{ratio:.2f}'} |")
    if k == "official":
        parts = [f"seed {seed} {a[(seed, f)] - b[(seed, f)]:+.1f}" for seed, f in keys]
    else:
        parts = [f"{f} " + "/".join(f"{a[(seed, ff)] - b[(seed, ff)]:+.1f}"
                                    for seed, ff in keys if ff == f)
                 for f in sorted({f for _s, f in keys})]
    return row, f"- `{m}` s={s}, {EVAL_TITLE[k]}: " + "; ".join(parts)


def paired_section(g):
    others = [m for m in g.methods if m not in (REFERENCE, "dense")] + (
        ["dense"] if "dense" in g.methods else [])
    if REFERENCE not in g.methods or not others:
        return []
    L = [f"## Paired differences against row-balanced GMP (`{REFERENCE}`)\n",
         "Difference = method's error rate - GMP's, in percentage points, paired by seed "
         "(official) and by seed and held-out speaker (leave-one-speaker-out); negative is "
         "better than GMP. W/T/L: pairs where the method is better / equal / worse. "
         "Sign test: two-sided exact binomial over the non-tied pairs. t: paired t-test, "
         "two-sided. Ratio: mean error / GMP's mean error (the target set for CSP is "
         "<= 0.9 at s = 0.95 and 0.98 on both evaluations, beyond seed noise).\n",
         "| method | s | evaluation | pairs | mean diff ± sd | W/T/L | sign p | t | t p | "
         "ratio |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    details = []
    for m in others:
        for s in g.sparsities:
            for k in g.kinds:
                a, b = lookup(g.table, m, s, k), lookup(g.table, REFERENCE, s, k)
                if set(a) & set(b):
                    row, detail = paired_row(m, s, k, a, b)
                    L.append(row)
                    details.append(detail)
    L.append("\nEvery pair (per held-out speaker, the seeds in order, separated by /):\n")
    return L + details + [""]


def csp_row(m, s, es):
    ts = [e["result"]["csp"]["tensors"] for e in es]

    def per(field):
        return "/".join(f"{mean([t[i][field] for t in ts]):.3g}" for i in range(len(ts[0])))
    conf = ", ".join(sorted({f"{t['sensing']}/{t['solver']}/{t['correction']}"
                             for t in ts[0]}))
    return (f"| {m} | {s} | {conf} | {per('weight_error')} | {per('sensing_error')} | "
            f"{per('mean_weight_error')} | "
            f"{mean([sum(t['iterations'] for t in x) for x in ts]):,.0f} | "
            f"{mean([e['result']['csp']['event_s'] for e in es]):.2f} | "
            f"{mean([e['result']['csp']['observe_s'] for e in es]):.2f} | "
            f"{100 * mean([e['result']['time']['csp_share'] for e in es]):.1f} |")


def csp_section(g):
    rows = []
    for m in g.methods:
        for s in g.sparsities:
            es = [e for k in g.kinds for e in g.rows.get((m, s, k), [])
                  if e["result"]["csp"] and g.msum.get(m, {}).get("is_csp")]
            if es:
                rows.append(csp_row(m, s, es))
    if not rows:
        return []
    return ["## CSP statistics\n",
            "Mean over every run of the method and sparsity (both evaluations). Per tensor "
            "(W_ih/W_hh/W_out), at the last pruning event that removed weights: the relative "
            "weight error ||W - X||_F / ||W||_F and the sensing error sum (w-x)^T G (w-x) / "
            "sum w^T G w (G = the tensor's sensing Gram), and the weight error averaged over "
            "all such events; solver iterations (OMP: atoms) summed over events and tensors; "
            "seconds in pruning events and in observing activations per run; the share of "
            "training time spent in libcsp (csp_step, gradient masking, observing).\n",
            "| method | s | sensing/solver/correction | weight error (last) | sensing error "
            "(last) | weight error (mean) | iterations | event s | observe s | % of "
            "training |",
            "|---|---|---|---|---|---|---|---|---|---|"] + rows + [""]


def reference_section(g):
    rows = []
    for (m, s), (acc, acc_sd) in PYTORCH_STUDY.items():
        if m not in g.methods or (s is not None and s not in g.sparsities):
            continue
        ours = seed_means(lookup(g.table, m, s, "official"))
        if ours:
            rows.append(f"| {m} | {s if s is not None else '-'} | {fmt_pm(ours)} | "
                        f"{100 - acc:.1f} ± {acc_sd:.1f} | {mean(ours) - (100 - acc):+.2f} |")
    if not rows:
        return []
    return ["## Against the PyTorch reference study\n",
            "Official split, error rate % (100 - the study's accuracy), mean ± sd over 3 "
            "seeds. Same data, model, optimizer and schedule; a different framework, "
            "initialisation stream, batching (this trainer buckets batches by length) and "
            "BLAS.\n",
            "| method | s | this benchmark | PyTorch study | difference |",
            "|---|---|---|---|---|"] + rows + [""]


def speaker_section(g):
    if "loso" not in g.kinds:
        return []
    folds = sorted({f for c in g.table.values() for (_s, f) in c if f != "official"})
    L = ["## Leave-one-speaker-out: error rate (%) per held-out speaker, mean over seeds\n",
         "| method | s | " + " | ".join(folds) + " |",
         "|---|---|" + "---|" * len(folds)]
    for m in g.methods:
        for s in (g.sparsities if m != "dense" else [None]):
            cell = g.table.get((m, s, "loso"), {})
            if not cell:
                continue
            vals = []
            for f in folds:
                v = [err for (_seed, ff), err in cell.items() if ff == f]
                vals.append(f"{mean(v):.1f}" if v else "-")
            L.append(f"| {m} | {s if s is not None else '-'} | " + " | ".join(vals) + " |")
    return L + [""]


def last_epochs(result, n=5):
    """Error rates (%) after the last epochs that were evaluated (up to n)."""
    errs = [h["test_err"] for h in result["history"] if h["test_err"] is not None]
    return [100.0 * x for x in errs[-n:]]


def stability_section(g, n=5):
    rows = []
    for m in g.methods:
        for s in (g.sparsities if m != "dense" else [None]):
            for k in g.kinds:
                swings = [max(v) - min(v) for e in g.rows.get((m, s, k), [])
                          for v in [last_epochs(e["result"], n)] if len(v) >= 2]
                if swings:
                    rows.append(f"| {m} | {s if s is not None else '-'} | {EVAL_TITLE[k]} | "
                                f"{len(swings)} | {mean(swings):.1f} | {max(swings):.1f} |")
    if not rows:
        return []
    return [f"## Stability over the last {n} epochs\n",
            f"Per run, the largest minus the smallest error rate (points) after each of the "
            f"last {n} epochs; mean and maximum over the runs.\n",
            "| method | s | evaluation | runs | mean swing | max swing |",
            "|---|---|---|---|---|---|"] + rows + [""]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def times_section(g):
    L = ["## Run times\n",
         "| method | runs | mean run s | mean training s | time in libcsp (% of training) | "
         "mean events |",
         "|---|---|---|---|---|---|"]
    for m in g.methods:
        rs = [e["result"] for e in g.entries if e["config"]["method"] == m]
        if rs:
            L.append(f"| {m} | {len(rs)} | {mean([r['time']['total_s'] for r in rs]):.1f} | "
                     f"{mean([r['time']['train_s'] for r in rs]):.1f} | "
                     f"{100 * mean([r['time']['csp_share'] for r in rs]):.2f} | "
                     f"{mean([r['time']['events'] for r in rs]):.0f} |")
    run = g.runner
    if run.missing:
        L.append(f"Not run ({len(run.missing)} runs of the grid, left out for time): " +
                 "; ".join(sorted({f"{c['method']} s={c['sparsity']} {eval_kind(c['eval'])}"
                                   for c in run.missing})) + ".\n")
    run_sum = sum(e["wall_s"] for e in g.entries)
    L.append(f"\nThis grid: {len(g.entries)} runs, each one thread (OPENBLAS_NUM_THREADS=1), "
             f"on {os.cpu_count()} cores ({cpu_name()}; the machine may be shared). Their own "
             f"wall times sum to {run_sum / 60:.1f} min. This invocation ran {run.fresh_runs} "
             f"of them ({run.cached} came from the cache) in {g.grid_wall / 60:.1f} min with "
             f"{run.jobs} in parallel. Times of cached runs are those of their first run.\n")
    bins = sorted({e["binaries"] for e in g.entries})
    lib = g.entries[0]["result"]["libcsp"] if g.entries else "?"
    L.append(f"libcsp {lib}; binaries {', '.join(bins)}; commit {g.commit}.\n")
    return L


def plot_section(g):
    if not g.png_name:
        return []
    return [f"## Plot\n\n![error rate against sparsity]({g.png_name})\n\n"
            f"Error rate (mean ± sd over seeds) against final sparsity; dense as a dashed line "
            f"(made with {g.plot_tool}).\n"]


SECTIONS = (head_section, error_section, size_section, paired_section, csp_section,
            reference_section, speaker_section, stability_section, plot_section,
            times_section)


def render(g):
    """The whole report, as text."""
    L = []
    for section in SECTIONS:
        L += section(g)
    for path in g.append or ():
        with open(path) as f:
            L.append("\n" + f.read().strip() + "\n")
    return "\n".join(L).rstrip() + "\n"


__all__ = ["Grid", "render", "collect", "seed_means", "lookup", "eval_kind", "EVAL_TITLE",
           "REFERENCE"]
