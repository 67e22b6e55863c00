"""Statistics of the speech benchmark (standard library only): mean and
sample sd, the regularised incomplete beta function behind a paired t-test's
two-sided p value, the exact two-sided sign test, and number formatting.
tests/test_compare.py checks them against scipy."""
import math


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
