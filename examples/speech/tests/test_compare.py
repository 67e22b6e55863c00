#!/usr/bin/python3
"""speech_compare's statistics against scipy on random inputs (fresh seed,
printed): the regularised incomplete beta function (1e-10 absolute), the
paired t-test's statistic and two-sided p (1e-9 relative), Student's t
quantile (scipy's CDF at it gives q back to 1e-10 of the tail; closed forms
at 1, 2 and 4 degrees of freedom) and the paired mean's 95 % interval (1e-9
of its width), the exact
two-sided sign test (1e-12), mean (1e-12 of max |x|) and sample sd (1e-12 relative); and the
schema module's key list and table generator; the regime report's
sections kept across caches. Skips (exit 77) without scipy.

usage: test_compare.py
"""
import math
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from speech_compare import regimes, schema, stats  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def test_betainc(rng, special):
    worst = 0.0
    for _ in range(2000):
        a = rng.choice([0.5, 1.0, 1.5]) if rng.random() < 0.3 else 10 ** rng.uniform(-1, 2)
        b = 10 ** rng.uniform(-1, 2)
        x = rng.random()
        worst = max(worst, abs(stats.betainc(a, b, x) - float(special.betainc(a, b, x))))
    check(worst < 1e-10, f"betainc vs scipy: max abs error {worst:.3g}")
    check(stats.betainc(2, 3, 0.0) == 0.0 and stats.betainc(2, 3, 1.0) == 1.0,
          "betainc at the ends")


def test_paired_t(rng, sst):
    worst_t = worst_p = 0.0
    for _ in range(500):
        n = rng.randint(2, 40)
        shift = rng.choice([0.0, 0.3, 2.0])
        d = [rng.gauss(shift, rng.uniform(0.1, 5)) for _ in range(n)]
        t, p = stats.paired_t(d)
        ref = sst.ttest_1samp(d, 0.0)
        worst_t = max(worst_t, rel(t, float(ref.statistic)))
        worst_p = max(worst_p, rel(p, float(ref.pvalue)) if ref.pvalue > 1e-200 else 0.0)
    check(worst_t < 1e-9 and worst_p < 1e-9,
          f"paired t vs scipy: t {worst_t:.3g}, p {worst_p:.3g} relative")
    t, p = stats.paired_t([1.0, 1.0, 1.0])
    check(t != t and p != p, "paired t of a constant difference is undefined (nan)")


def test_t_quantile(rng, sst):
    # Reference: scipy's t CDF at the returned quantile gives back q (scipy's
    # own ppf is less accurate: 5e-9 relative at q 0.95, df 30).
    worst = 0.0
    for _ in range(400):
        df = rng.choice([1, 2, 3, 4, 9]) if rng.random() < 0.4 else 10 ** rng.uniform(-0.5, 3)
        q = rng.choice([0.9, 0.95, 0.975, 0.995]) if rng.random() < 0.4 else rng.uniform(1e-4, 1 - 1e-4)
        p = float(sst.t.cdf(stats.t_quantile(q, df), df))
        worst = max(worst, abs(p - q) / min(q, 1 - q))
    check(worst < 1e-10, f"t quantile vs scipy's t CDF: max relative tail error {worst:.3g}")
    # Closed forms: df 1 (Cauchy), 2 and 4.
    for q in (0.6, 0.9, 0.975, 0.999, rng.uniform(0.51, 0.999)):
        a = 4 * q * (1 - q)
        t4 = math.sqrt(4 / math.sqrt(a) * math.cos(math.acos(math.sqrt(a)) / 3) - 4)
        for df, ref in ((1, math.tan(math.pi * (q - 0.5))), (2, (2 * q - 1) * math.sqrt(2 / a)),
                        (4, t4)):
            check(rel(stats.t_quantile(q, df), ref) < 1e-9 and
                  rel(stats.t_quantile(1 - q, df), -ref) < 1e-9,
                  f"t quantile df {df} at {q}: not the closed form {ref}")
    check(stats.t_quantile(0.5, 7) == 0.0, "t quantile at the median")
    check(rel(stats.t_quantile(0.025, 4), -stats.t_quantile(0.975, 4)) < 1e-12,
          "t quantile is odd about the median")
    for bad in ((0.0, 3), (1.0, 3), (0.5, 0), (float("nan"), 3)):
        try:
            stats.t_quantile(*bad)
            check(False, f"t quantile accepted {bad}")
        except ValueError:
            pass
    worst = 0.0
    for _ in range(200):
        n = rng.randint(2, 30)
        d = [rng.gauss(rng.uniform(-2, 2), rng.uniform(0.1, 3)) for _ in range(n)]
        lo, hi = stats.paired_ci(d)
        rlo, rhi = sst.t.interval(0.95, n - 1, loc=statistics.mean(d),
                                  scale=statistics.stdev(d) / math.sqrt(n))
        worst = max(worst, max(abs(lo - rlo), abs(hi - rhi)) / (rhi - rlo))
    check(worst < 1e-9, f"paired 95 % interval vs scipy: max error {worst:.3g} of its width")
    lo, hi = stats.paired_ci([1.0])
    check(lo != lo and hi != hi, "a one-value interval is undefined (nan)")


def test_sign(rng, sst):
    worst = 0.0
    for _ in range(300):
        wins, losses = rng.randint(0, 30), rng.randint(0, 30)
        if wins + losses == 0:
            check(stats.sign_test(0, 0) == 1.0, "sign test without pairs")
            continue
        ref = sst.binomtest(wins, wins + losses, 0.5, alternative="two-sided").pvalue
        worst = max(worst, abs(stats.sign_test(wins, losses) - float(ref)))
    check(worst < 1e-12, f"sign test vs scipy binomtest: max abs error {worst:.3g}")


def test_mean_sd(rng):
    worst = 0.0
    for _ in range(200):
        xs = [rng.uniform(-100, 100) for _ in range(rng.randint(2, 50))]
        # The mean's error relative to the data's scale (a mean near zero
        # has no relative accuracy to speak of: summation cancels), the
        # sd's relative to itself.
        scale = max(abs(x) for x in xs)
        worst = max(worst, abs(stats.mean(xs) - statistics.fmean(xs)) / scale,
                    rel(stats.sd(xs), statistics.stdev(xs)))
    check(worst < 1e-12, f"mean/sd vs statistics: {worst:.3g}")
    check(math.isnan(stats.mean([])) and math.isnan(stats.sd([1.0])), "mean/sd of too few")
    check(stats.fmt_pm([1.0, 3.0]) == "2.00 ± 1.41" and stats.fmt_pm([]) == "-" and
          stats.fmt_p(0.5) == "0.500" and stats.fmt_p(1e-5) == "1.0e-05", "formatting")


def test_schema_table():
    paths = schema.key_paths()
    rows = schema.markdown_rows()
    check(len(paths) == len(set(paths)) == len(rows), "schema: keys unique, one row each")
    check(all(r.startswith(f"| `{p}` |") for p, r in zip(paths, rows)), "schema rows in order")
    check("history[].test_err" in paths and "tensors[].nnz" in paths, "schema: list members")


def test_regimes_report(rng):
    """regimes.py's report on synthetic regime-a and -b results: paired
    differences, the noise rule and the targets from known numbers."""
    def entry(err, hist=()):
        return {"result": {"test_err": err / 100, "history": [
            {"epoch": i + 1, "test_err": h / 100} for i, h in enumerate(hist)],
            "one_shot": {"event_s": 0.01, "calib_s": 0.1, "err_after_event": err / 100}}}
    res = {}
    for seed in regimes.SEEDS:
        res[("dense", "-", None, seed)] = entry(2.0)
        for pat in regimes.PATTERNS:
            for lab in regimes.LABELS:
                if lab == "sweep" and pat[0] != "row":
                    continue
                base = 40.0 if lab == "magnitude" else 4.0 + rng.random()
                res[(lab, pat[0], pat[1], seed)] = entry(base + seed, (base / 2 + seed,) * 3)
    d, w, l, ps, pt = regimes.paired({1: 1.0, 2: 2.0, 3: 3.5}, {1: 2.0, 2: 2.5, 3: 3.0})
    check(d == [-1.0, -0.5, 0.5] and (w, l) == (2, 1), f"regimes.paired: {d} {w}/{l}")
    check(not regimes.beyond_noise(d, pt), "3 seeds of mixed sign are noise")
    check(regimes.beyond_noise([-1.0, -1.2, -0.9, -1.1, -1.0], 0.001), "5/5 and p < 0.05")
    hp = {"damping": {}, "calib": {}, "ft_lr": 1e-3, "rule": "test", "table": {"x": 1.0}}
    study = type("S", (), {"hp": hp})()
    md = regimes.render(study, {"a": res, "b": res}, {"a": "VERDICT-A"})
    check("## Regime (a): one-shot, no fine-tuning" in md and "VERDICT-A" in md,
          "regimes report: regime a section")
    check("| row | 0.9 | 43.0 ± 1.6 |" in md, "regimes report: magnitude's mean ± sd")
    check("row 0.8: increase over dense" in md and "**met**" in md, "regimes report: targets")
    check("| 2:4 | 0.5 | sweep |" not in md and "refused" in md, "the sweep is refused at N:M")
    check("## Regime (d): gradual, full ramp" in md and "not run" in md, "regime d: not run")
    # A report written from a cache without regime a's runs keeps regime a's
    # sections from the previous report; regimes that were never run stay "not run".
    fresh = regimes.render(study, {"b": res}, {})
    check("## Regime (a): not run yet" in fresh, "regime a missing from the cache")
    kept = regimes.keep_sections(fresh, md, ["a", "c"])
    check("VERDICT-A" in kept and "## Regime (a): not run yet" not in kept,
          "regime a's sections kept from the previous report")
    check(kept.count("## Regime (a)") == 1 and kept.count("## Regime (b)") == 2,
          "each regime's sections once")
    check("## Regime (c): gradual, short ramp (10%..30% of 20 epochs, 10 events): not run"
          in kept, "a regime not run before stays not run")
    check(kept.index("## Regime (a)") < kept.index("## Regime (b)") < kept.index("## Defaults"),
          "sections in order")
    check(regimes.regime_sections(md, "d") == [], "a 'not run' section holds no results")
    # Regime e against the cubic schedules of d and c, paired per method and seed.
    grad = {}
    for seed in regimes.SEEDS:
        grad[("dense", "-", None, seed)] = entry(2.0)
        for pat in regimes.GRADUAL_PATTERNS:
            for lab in regimes.GRADUAL_METHODS:
                grad[(lab, pat[0], pat[1], seed)] = entry(3.0 + seed)
    ada = {k: entry(100 * e["result"]["test_err"] - 1.0) for k, e in grad.items()
           if k[0] in regimes.ADAPT_METHODS or k[0] == "dense"}
    study.adapt = {"bound": {"magnitude": 0.05, "mag-refit": 0.2}, "rule": "test",
                   "table": {"magnitude adapt=0.05": 3.0}}
    md = regimes.render(study, {"c": grad, "d": grad, "e": ada}, {"e": "VERDICT-E"})
    check("## Regime (e): adaptive schedule" in md and "VERDICT-E" in md, "regime e section")
    check("| row | 0.9 | mag-refit | d (cubic, full ramp) | 5.0 ± 1.6 | 6.0 ± 1.6 | **-1.0** | 5/0 |"
          in md, "regime e: adaptive minus cubic, paired")
    check("Short ramp minus full ramp" in md and
          "| row | 0.8 | omp-full | d | 6.0 ± 1.6 | 6.0 ± 1.6 | +0.0 | 0/0 |" in md,
          "regime c against d, paired")
    study.adapt = None
    check("## Regime (e): adaptive schedule on (d)'s ramp and events: not run" in
          regimes.render(study, {"e": ada}, {}), "regime e without its validation choice")


def main():
    try:
        import scipy.special as special
        import scipy.stats as sst
    except ImportError:
        print("scipy missing: skipped")
        return 77
    seed = int(os.environ.get("CSP_TEST_SEED", int(time.time())))
    print(f"test_compare: seed {seed} (rerun: CSP_TEST_SEED={seed})")
    rng = random.Random(seed)
    test_betainc(rng, special)
    test_paired_t(rng, sst)
    test_t_quantile(rng, sst)
    test_sign(rng, sst)
    test_mean_sd(rng)
    test_schema_table()
    test_regimes_report(rng)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
