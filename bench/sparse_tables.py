#!/usr/bin/env python3
"""Markdown tables for docs/results/inference.md from the output of
bench_sparse (argument 1) and, optionally, bench_rnnt_infer (argument 2):
every column of the bench's own header, so none can go missing or shift.

    python3 bench/sparse_tables.py bench_sparse.txt [bench_rnnt_infer.txt]
"""
import sys


def read(path):
    """(comment lines, header, rows) of a bench's whitespace table."""
    notes, header, rows = [], None, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0].startswith("#"):
                notes.append(line.rstrip())
            elif header is None:
                header = parts
            elif len(parts) == len(header):
                rows.append(parts)
    return notes, header, rows


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def crossover(header, rows):
    """Per shape at batch 1: the lowest sparsity from which every measured
    sparsity is at least as fast as dense."""
    col = {h: i for i, h in enumerate(header)}
    by_shape = {}
    for r in rows:
        if r[col["B"]] == "1":
            by_shape.setdefault(r[col["shape"]], []).append(
                (float(r[col["s"]]), float(r[col["speedup"]])))
    out = ["| shape | crossover (batch 1) | speed-up at 0.7 | at 0.9 | at 0.95 |",
           "|---|---|---|---|---|"]
    for shape, pts in by_shape.items():
        pts.sort()
        cross = None
        for i, (s, _) in enumerate(pts):
            if all(v >= 1.0 for _, v in pts[i:]):
                cross = s
                break
        at = {s: v for s, v in pts}
        where = "never" if cross is None else ("<= %.2f" % cross if cross == pts[0][0]
                                               else "%.2f" % cross)
        out.append("| %s | %s | %s | %s | %s |" % (
            shape, where, *("%.2f" % at[s] if s in at else "-" for s in (0.7, 0.9, 0.95))))
    return "\n".join(out)


def main():
    notes, header, rows = read(sys.argv[1])
    b = header.index("B")
    print("\n".join(notes))
    print("\n### Batch 1 (against sgemv)\n")
    print(table(header, [r for r in rows if r[b] == "1"]))
    print("\n### Batches 4 and 16 (against sgemm)\n")
    print(table(header, [r for r in rows if r[b] != "1"]))
    print("\n### Crossover\n")
    print(crossover(header, rows))
    if len(sys.argv) > 2:
        notes, header, rows = read(sys.argv[2])
        print("\n### The recogniser's encoder\n")
        print("\n".join(notes))
        print()
        print(table(header, rows))


if __name__ == "__main__":
    main()
