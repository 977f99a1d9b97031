"""server/stats.py against scipy and numpy, computed independently from the raw values."""

import random

import numpy as np
import pytest
from scipy import stats as sp

from promptgauge.server import stats


def test_seed_case_125_at_072_against_100_at_089():
    # The README's question: version 2 succeeds 90 times in 125 (0.72),
    # version 1 89 times in 100 (0.89). The pooled z-test says the gap is
    # real: z = -3.14, p = 0.00168 (two-sided).
    p = stats.two_proportion_p_value(90, 125, 89, 100)
    assert p == pytest.approx(0.0016786614879627, rel=1e-9)
    chi = sp.chi2_contingency(np.array([[90, 35], [89, 11]]), correction=False)
    assert p == pytest.approx(chi.pvalue, rel=1e-9)
    assert stats.holm_reject([p], 0.05) == [True]


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(90, 125, 89, 100), (1, 3, 2, 3), (0, 10, 5, 10), (500, 1000, 520, 1000), (7, 7, 3, 9), (1, 1000, 1, 2)],
)
def test_two_proportion_z_test_matches_chi_square_without_correction(x1, n1, x2, n2):
    # The pooled z-test's z² is Pearson's chi-square of the 2x2 table.
    chi = sp.chi2_contingency(np.array([[x1, n1 - x1], [x2, n2 - x2]]), correction=False)
    assert stats.two_proportion_p_value(x1, n1, x2, n2) == pytest.approx(chi.pvalue, rel=1e-9, abs=1e-300)


def test_two_proportion_degenerate_cases():
    assert stats.two_proportion_p_value(0, 0, 3, 4) is None
    assert stats.two_proportion_p_value(5, 5, 9, 9) == 1.0  # no variance, no evidence
    assert stats.two_proportion_p_value(0, 5, 0, 9) == 1.0


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99, 0.999])
@pytest.mark.parametrize(("k", "n"), [(90, 125), (0, 5), (5, 5), (1, 1), (333, 1000), (89, 100)])
def test_wilson_interval_matches_scipy(k, n, confidence):
    expected = sp.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = stats.wilson_interval(k, n, confidence)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_without_trials():
    assert stats.wilson_interval(0, 0, 0.95) is None


def _moments(values) -> stats.Moments:
    return stats.Moments(len(values), sum(values), sum(v * v for v in values))


@pytest.mark.parametrize("seed", range(8))
def test_welch_from_sums_matches_scipy_on_raw_values(seed):
    rng = random.Random(seed)
    a = [rng.lognormvariate(6, 0.5 + seed / 10) for _ in range(rng.randint(2, 400))]
    b = [rng.lognormvariate(6.1, 0.7) for _ in range(rng.randint(2, 400))]
    expected = sp.ttest_ind(a, b, equal_var=False).pvalue
    assert stats.welch_p_value(_moments(a), _moments(b)) == pytest.approx(expected, rel=1e-6)


def test_welch_on_costs_and_small_samples():
    a, b = [0.0021, 0.0019, 0.0030], [0.0011, 0.0012]
    expected = sp.ttest_ind(a, b, equal_var=False).pvalue
    assert stats.welch_p_value(_moments(a), _moments(b)) == pytest.approx(expected, rel=1e-6)


def test_welch_degenerate_cases():
    assert stats.welch_p_value(_moments([1.0]), _moments([1.0, 2.0])) is None
    assert stats.welch_p_value(_moments([2.0, 2.0]), _moments([2.0, 2.0, 2.0])) == 1.0
    assert stats.welch_p_value(_moments([2.0, 2.0]), _moments([3.0, 3.0])) == 0.0


@pytest.mark.parametrize("df", [1, 2.5, 7.3, 30, 1000])
@pytest.mark.parametrize("t", [0.0, 0.3, 1.96, 4.0, -12.0])
def test_student_t_matches_scipy(t, df):
    assert stats.student_t_two_sided(t, df) == pytest.approx(2 * sp.t.sf(abs(t), df), rel=1e-9, abs=1e-300)


def _holm_adjusted(p_values):
    """Holm's adjusted p-values, the other way to state the procedure."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m, running, out = len(p_values), 0.0, [0.0] * len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


@pytest.mark.parametrize("seed", range(20))
def test_holm_agrees_with_adjusted_p_values(seed):
    rng = random.Random(seed)
    p_values = [rng.random() ** 3 for _ in range(rng.randint(1, 12))]
    alpha = rng.choice([0.01, 0.05, 0.1])
    assert stats.holm_reject(p_values, alpha) == [adj <= alpha for adj in _holm_adjusted(p_values)]


def test_holm_steps_down_and_skips_untested():
    # 0.01 <= 0.05/3, 0.02 <= 0.05/2, 0.04 <= 0.05/1: all three.
    assert stats.holm_reject([0.04, 0.01, 0.02], 0.05) == [True, True, True]
    # 0.03 > 0.05/2 stops it: the smaller 0.01 alone.
    assert stats.holm_reject([0.01, 0.03, 0.04], 0.05) == [True, False, False]
    assert stats.holm_reject([None, 0.04], 0.05) == [False, True]


@pytest.mark.parametrize("n", [1, 2, 3, 10, 999, 1000])
def test_percentile_cont_is_numpys_default_to_the_bit(n):
    rng = random.Random(n)
    values = [rng.lognormvariate(5, 1) for _ in range(n)]
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert stats.percentile_cont(values, q) == float(np.percentile(values, q * 100))
    assert stats.percentile_cont([], 0.5) is None
