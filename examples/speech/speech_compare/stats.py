"""Statistics of the speech benchmark (standard library only): mean and
sample sd, the regularised incomplete beta function behind a paired t-test's
two-sided p value and Student's t quantile (the paired mean's confidence
interval), the exact two-sided sign test, and number formatting.
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


def t_quantile(q, df):
    """Student's t quantile: the t with P(T <= t) = q, 0 < q < 1, df > 0."""
    if not (0.0 < q < 1.0) or not df > 0:
        raise ValueError("t_quantile needs 0 < q < 1 and df > 0 (got q=%r, df=%r)" % (q, df))
    if q == 0.5:
        return 0.0
    # P(|T| <= t) = I_{t^2/(df+t^2)}(1/2, df/2) = 1 - I_{df/(df+t^2)}(df/2, 1/2)
    # rises monotonically in t: bisect on [lo, hi], hi doubled until it
    # brackets. Near the median the central mass is the accurate form, in the
    # tails the tail mass (each keeps its own relative precision).
    central = abs(2.0 * q - 1.0)
    if central < 0.5:
        def below(t):
            return betainc(0.5, df / 2.0, t * t / (df + t * t)) < central
    else:
        two = 2.0 * (1.0 - q if q > 0.5 else q)

        def below(t):
            return betainc(df / 2.0, 0.5, df / (df + t * t)) > two
    lo, hi = 0.0, 1.0
    while below(hi):
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if below(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    t = 0.5 * (lo + hi)
    return t if q > 0.5 else -t


def paired_ci(diffs, level=0.95):
    """(low, high): the two-sided confidence interval of the mean of diffs
    (Student's t, n - 1 degrees of freedom); (nan, nan) below two values."""
    n = len(diffs)
    if n < 2:
        return float("nan"), float("nan")
    h = t_quantile(0.5 + level / 2.0, n - 1) * sd(diffs) / math.sqrt(n)
    m = mean(diffs)
    return m - h, m + h


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
