"""The statistics of a comparison: pure functions of counts and sums.

Everything here works from what a checkpoint keeps (n, sum, sum of squares,
successes), never from the raw values, so a comparison's cost does not grow
with the traces behind it. No database, no gRPC, and no scipy: the server
needs only the normal distribution (statistics.NormalDist) and Student's t,
whose CDF is the regularized incomplete beta function below. The tests check
every function against scipy.
"""

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import NamedTuple

_NORMAL = NormalDist()


def z_for(confidence: float) -> float:
    """The two-sided standard normal quantile of a confidence level (0.95 -> 1.96)."""
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None without trials.

    Unlike the normal (Wald) interval it stays inside 0..1 and keeps its
    coverage near 0 and 1 and with few trials, which is where prompt
    versions being tried out live."""
    if n <= 0:
        return None
    z = z_for(confidence)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of x1/n1 against
    x2/n2; None when a side has no trials. When both sides are all successes
    or all failures there is no variance and no evidence of a difference: 1."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    # erfc, not 1 - cdf: exact far into the tail, where cdf rounds to 0.
    return math.erfc(abs(z) / math.sqrt(2))


class Moments(NamedTuple):
    """What a checkpoint keeps of one signal: count, sum, sum of squares."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """The sample variance (n - 1 in the denominator); None below 2 values.

        From the sums the subtraction can cancel a little below zero in
        floating point for near-constant values: clamped at 0."""
        if self.n < 2:
            return None
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


def welch_p_value(a: Moments, b: Moments) -> float | None:
    """Two-sided p-value of Welch's unequal-variance t-test of the means of
    `a` and `b`; None when a side has fewer than 2 values. Two constant
    samples: 1 if their means are equal, else 0 (the difference is exact)."""
    va, vb = a.variance, b.variance
    if va is None or vb is None:
        return None
    sa, sb = va / a.n, vb / b.n
    diff = a.mean - b.mean
    if sa + sb == 0:
        return 1.0 if diff == 0 else 0.0
    t = diff / math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / (sa * sa / (a.n - 1) + sb * sb / (b.n - 1))
    return student_t_two_sided(t, df)


def student_t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom (df may be
    fractional, as Welch's is): I_{df/(df+t²)}(df/2, 1/2)."""
    if math.isinf(t):
        return 0.0
    return min(1.0, regularized_beta(df / (df + t * t), df / 2, 0.5))


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, by Lentz's
    continued fraction (Numerical Recipes 6.4), on the side where it
    converges fast."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def holm_reject(p_values: Sequence[float | None], alpha: float) -> list[bool]:
    """Holm's step-down: which hypotheses are rejected at family-wise error
    `alpha`. None (a test that could not be run) is never rejected and does
    not count towards the family."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    out = [False] * len(p_values)
    for rank, (p, i) in enumerate(tested):
        if p > alpha / (m - rank):
            break
        out[i] = True
    return out


def percentile_cont(values: Sequence[float], q: float, presorted: bool = False) -> float | None:
    """The q-quantile (0..1) by linear interpolation between order statistics:
    PostgreSQL's percentile_cont and numpy's default ("linear")."""
    if not values:
        return None
    ordered = values if presorted else sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    t = position - low
    a, b = ordered[low], ordered[high]
    # numpy's _lerp, rounding alike: from the nearer end.
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t
