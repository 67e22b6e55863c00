"""examples/rnnt/compare.py's grid and report logic, without running anything:

- the `loso` evaluation expands to one run per held-out speaker (loso:0 ..
  loso:F-1) with the grid's first seed, `loso:K` to that fold with every
  seed, `official` to every seed;
- the report pools the folds into one `loso` table (mean over held-out
  speakers) and pairs methods per fold: the paired differences are the
  per-fold differences of the RESULTs' WERs.

usage: test_compare.py"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import compare  # noqa: E402


def result(wer):
    return dict(wer=wer, string_acc=50.0, nnz=10, prunable_numel=100, csr_bytes=1,
                bitmap_bytes=1, dense_bytes=4, train_seconds=1.0, csp_step_seconds=0.1,
                csp_share=0.1)


def main():
    g = dict(methods=["dense", "gmp", "csp-obs"], sparsities=[0.9], seeds=[3, 4],
             evals=["official", "loso", "loso:2"])
    args = argparse.Namespace(epochs=0, extra="", data=None, loso_folds=5)
    cfgs = compare.configs(g, args)
    runs = {(c["eval"], c["seed"], c["method"]) for c in cfgs}
    assert len(runs) == len(cfgs), "a run is repeated"
    for ev, seeds in [("official", [3, 4])] + [("loso:%d" % k, [3]) for k in range(5)]:
        for m in g["methods"]:
            for seed in seeds:
                assert (ev, seed, m) in runs, (ev, seed, m)
    assert ("loso:2", 4, "gmp") in runs  # an explicit fold runs every seed
    assert len(cfgs) == 3 * (2 + 5 + 1), len(cfgs)  # loso:2 seed 3 once

    # Report: gmp and csp-obs over five folds with known WERs.
    gw = [10.0, 20.0, 30.0, 40.0, 50.0]
    cw = [9.0, 21.0, 27.0, 39.0, 44.0]
    results = []
    for k in range(5):
        for m, w in (("gmp", gw[k]), ("csp-obs", cw[k]), ("dense", 5.0 + k)):
            c = dict(method=m, sparsity=0.0 if m == "dense" else 0.9, seed=3,
                     eval="loso:%d" % k)
            results.append((c, result(w)))
    t = compare.cells(results)
    assert set(t[("loso", "gmp", 0.9)]) == {(3, k) for k in range(5)}
    g2 = dict(g, evals=["loso"])
    table = "\n".join(compare.wer_table(t, g2))
    assert "loso evaluation (mean ± sd over held-out speakers" in table, table
    assert "| gmp | 30.00 ± 15.81" in table, table
    lines = [x for x in compare.paired(t, g2) if x.startswith("| loso | csp-obs")]
    assert len(lines) == 1, lines
    d = [c - w for c, w in zip(cw, gw)]
    # d = -1 +1 -3 -1 -6: mean -2, sd sqrt(7) = 2.645751, t(0.975, 4) =
    # 2.776445: the 95 % interval is -2.00 +- 3.29 = [-5.29, +1.29].
    assert "| %+.2f | [-5.29, +1.29] | 4/1 |" % (sum(d) / 5) in lines[0], lines[0]
    print("ok")


if __name__ == "__main__":
    main()
