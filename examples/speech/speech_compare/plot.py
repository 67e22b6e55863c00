"""Error rate against sparsity, one panel per evaluation (gnuplot, else
matplotlib, else no plot)."""
import os
import shutil
import subprocess
import sys
import tempfile

from .report import EVAL_TITLE, collect, lookup, seed_means
from .stats import mean, sd


def series(methods, sparsities, kinds, entries):
    """{(kind, method): [(sparsity, mean error, sd)]} over seeds."""
    table, _rows = collect(entries)
    out = {}
    for k in kinds:
        for m in methods:
            pts = []
            for s in sparsities:
                v = seed_means(lookup(table, m, s, k))
                if v:
                    pts.append((s, mean(v), sd(v) if len(v) > 1 else 0.0))
            if pts:
                out[(k, m)] = pts
    return out


def _gnuplot_panel(tmp, k, methods, ser, lo, hi, pad, jitter):
    plots = []
    for i, m in enumerate(methods):
        pts = ser.get((k, m))
        if not pts:
            continue
        dat = os.path.join(tmp, f"{k}-{i}.dat")
        with open(dat, "w") as f:
            if m == "dense":
                for x in (lo - pad, hi + pad):
                    f.write(f"{x} {pts[0][1]} {pts[0][2]}\n")
            else:
                dx = (i - (len(methods) - 1) / 2.0) * jitter
                for x, y, e in pts:
                    f.write(f"{x + dx} {y} {e}\n")
        if m == "dense":
            plots.append(f"'{dat}' using 1:2 with lines dt 2 lw 2 lc rgb 'black' title 'dense'")
        else:
            plots.append(f"'{dat}' using 1:2:3 with yerrorlines lw 2 pt 7 title '{m}'")
    return [f"set title '{EVAL_TITLE[k]}'", "plot " + ", ".join(plots)]


def gnuplot(out_png, methods, xs, kinds, ser):
    lo, hi = min(xs), max(xs)
    pad = max(0.01, 0.08 * (hi - lo))
    jitter = 0.004 * (hi - lo if hi > lo else 0.1)
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
        for k in kinds:
            script += _gnuplot_panel(tmp, k, methods, ser, lo, hi, pad, jitter)
        script.append("unset multiplot")
        r = subprocess.run(["gnuplot"], input="\n".join(script) + "\n", text=True,
                           capture_output=True)
        if r.returncode == 0 and os.path.exists(out_png):
            return True
        print("gnuplot failed: " + r.stderr.strip(), file=sys.stderr)
    return False


def matplotlib(out_png, methods, xs, kinds, ser):
    try:
        import matplotlib as mpl
        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    lo, hi = min(xs), max(xs)
    pad = max(0.01, 0.08 * (hi - lo))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 4.2), squeeze=False)
    for ax, k in zip(axes[0], kinds):
        for m in methods:
            pts = ser.get((k, m))
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
    return True


def plot(out_png, methods, sparsities, kinds, entries):
    """Write the plot; returns the tool used, or None."""
    ser = series(methods, sparsities, kinds, entries)
    if not ser:
        return None
    if shutil.which("gnuplot") and gnuplot(out_png, methods, sparsities, kinds, ser):
        return "gnuplot"
    if matplotlib(out_png, methods, sparsities, kinds, ser):
        return "matplotlib"
    return None
