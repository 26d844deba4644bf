"""ordergrad_experiments.common.stats against textbook values and scipy's own tests (computed apart
from the code under test), and its refusals of bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ordergrad_experiments.common import stats

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

# Two-sided 95% Student t factors from a printed table (t_{0.975, df}).
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 29: 2.045}


@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_t_quantile_matches_the_printed_table(df):
    assert stats.t_quantile(0.95, df) == pytest.approx(T_TABLE[df], abs=1e-3)


def test_t_interval_by_hand():
    # 1..5: mean 3, s = sqrt(2.5), half = 2.776 * sqrt(2.5) / sqrt(5) = 2.776 / sqrt(2).
    iv = stats.t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert iv.mean == 3.0 and iv.n == 5 and iv.confidence == 0.95
    assert iv.half_width == pytest.approx(2.7764451 / math.sqrt(2), rel=1e-6)
    assert (iv.low, iv.high) == pytest.approx((3 - iv.half_width, 3 + iv.half_width))
    assert iv.format() == "3 ± 2"
    # 3 seeds: the 95% factor is 4.303, 2.2x the normal 1.96 (the old "± 1.96 SE").
    x = np.array([10.0, 12.0, 17.0])
    se = x.std(ddof=1) / math.sqrt(3)
    assert stats.t_interval(x).half_width == pytest.approx(4.3026527 * se, rel=1e-6)
    assert stats.t_interval(x, confidence=0.9).half_width == pytest.approx(2.9199856 * se, rel=1e-6)


def test_t_interval_matches_scipy():
    x = np.random.default_rng(0).normal(3.0, 2.0, 7)
    low, high = scipy_stats.t.interval(0.95, 6, loc=x.mean(), scale=scipy_stats.sem(x))
    iv = stats.t_interval(x)
    assert (iv.low, iv.high) == pytest.approx((low, high), rel=1e-12)


def test_mean_ci_cell():
    assert stats.mean_ci_cell([1.0, 2.0, 3.0, 4.0, 5.0]) == "3 ± 2"
    assert stats.mean_ci_cell([7.25]) == "7.25 (1 seed)"
    assert stats.mean_ci_cell([1.0, 1.0, 1.0]) == "1 ± 0"


@pytest.mark.parametrize("n_b", [4, 6])
def test_welch_matches_scipy(n_b):
    rng = np.random.default_rng(n_b)
    a, b = rng.normal(0.0, 1.0, 5), rng.normal(1.0, 3.0, n_b)
    ref = scipy_stats.ttest_ind(a, b, equal_var=False)
    out = stats.welch_test(a, b)
    assert out.kind == "welch" and (out.n_a, out.n_b) == (5, n_b)
    assert out.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert out.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert out.df == pytest.approx(ref.df, rel=1e-12)
    low, high = ref.confidence_interval(0.95)
    assert (out.interval.low, out.interval.high) == pytest.approx((low, high), rel=1e-10)
    assert out.difference == pytest.approx(a.mean() - b.mean())


def test_welch_by_hand():
    # a = (1, 2, 3), b = (4, 5, 6): difference -3, se^2 = 1/3 + 1/3, df = 4 (equal variances
    # and sizes), t = -3 / sqrt(2/3) = -3.674; two-sided p = 0.02131 (t table, 4 df).
    out = stats.welch_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert out.df == pytest.approx(4.0)
    assert out.statistic == pytest.approx(-3 / math.sqrt(2 / 3))
    assert out.p_value == pytest.approx(0.02131, abs=5e-5)
    assert out.format() == "-3 (95% CI -5.27 to -0.733; Welch p = 0.021, n = 3 vs 3)"
    big = stats.welch_test([100.0, 300.0, 500.0], [0.0, 1.0, 2.0]).format()
    assert big.startswith("+299 (95% CI -198 to 796; Welch p = 0.12")


def test_paired_matches_scipy_and_by_hand():
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, 10)
    b = a + rng.normal(0.3, 0.2, 10)
    ref = scipy_stats.ttest_rel(a, b)
    out = stats.paired_test(a, b)
    assert out.kind == "paired" and out.df == 9 and out.n_a == out.n_b == 10
    assert out.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert out.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    low, high = ref.confidence_interval(0.95)
    assert (out.interval.low, out.interval.high) == pytest.approx((low, high), rel=1e-10)
    # differences (1, 2, 3): mean 2, se 1/sqrt(3), t = 2 sqrt(3) = 3.464 on 2 df, p = 0.0742.
    by_hand = stats.paired_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert by_hand.statistic == pytest.approx(2 * math.sqrt(3))
    assert by_hand.p_value == pytest.approx(0.0742, abs=5e-4)
    assert by_hand.interval.half_width == pytest.approx(4.3026527 / math.sqrt(3), rel=1e-6)
    assert stats.format_p(1e-5) == "< 0.001" and stats.format_p(0.0742) == "0.074"
    assert "paired t p < 0.001, n = 10 pairs" in stats.paired_test(a, a + 1 + 1e-3 * a).format()


@pytest.mark.parametrize(
    ("effect", "power", "n"),
    # Cohen (1988), Table 2.4.1: n per group of a two-sided two-sample t test at alpha = 0.05.
    [(0.5, 0.8, 64), (0.8, 0.8, 26), (1.0, 0.8, 17), (0.5, 0.9, 86), (0.8, 0.9, 34)],
)
def test_seeds_to_resolve_matches_cohens_table(effect, power, n):
    assert stats.seeds_to_resolve(effect, 1.0, 1.0, power=power) == n
    assert stats.seeds_to_resolve(2 * effect, 2.0, 2.0, power=power) == n


def test_seeds_for_the_interval_to_exclude_zero():
    # Equal arms of sd 1, difference 1: smallest n with t_{2n-2} sqrt(2/n) < 1 (by hand: n = 9
    # gives 2.120 * 0.4714 = 0.9994, n = 8 gives 2.145 * 0.5 = 1.072).
    assert stats.seeds_to_resolve(1.0, 1.0, 1.0) == 9
    assert 0.45 < stats.welch_power(1.0, 1.0, 1.0, 9) < 0.55


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stats.t_interval([1.0]), "at least 2"),
        (lambda: stats.t_interval([]), "at least 2"),
        (lambda: stats.t_interval([1.0, float("nan")]), "non-finite"),
        (lambda: stats.t_interval([[1.0, 2.0]]), "rank 1"),
        (lambda: stats.t_interval([1.0, 2.0], confidence=1.0), "confidence"),
        (lambda: stats.welch_test([1.0], [1.0, 2.0]), "a: need at least 2"),
        (lambda: stats.welch_test([1.0, 1.0], [2.0, 2.0]), "constant"),
        (lambda: stats.paired_test([1.0, 2.0], [1.0, 2.0, 3.0]), "one value per seed"),
        (lambda: stats.paired_test([1.0, 2.0], [0.0, 1.0]), "constant"),
        (lambda: stats.mean_ci_cell([]), "at least 2"),
        (lambda: stats.seeds_to_resolve(0.0, 1.0, 1.0), "difference"),
        (lambda: stats.welch_power(1.0, 1.0, 1.0, 1), "n >= 2"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_welch_from_intervals_equals_welch_on_the_values():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.0, 1.0, 5), rng.normal(2.0, 3.0, 4)
    out = stats.welch_test_from_intervals(stats.t_interval(a), stats.t_interval(b))
    ref = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert out.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert out.df == pytest.approx(ref.df, rel=1e-10)
    with pytest.raises(ValueError, match="at least 2"):
        stats.welch_test_from_intervals(stats.Interval(1.0, 0.0, 1), stats.t_interval(a))
    with pytest.raises(ValueError, match="half-widths are 0"):
        stats.welch_test_from_intervals(stats.Interval(1.0, 0.0, 5), stats.Interval(2.0, 0.0, 5))


@pytest.mark.parametrize(
    ("effect", "power", "n"),
    # the paired (one-sample) t test, two-sided, alpha = 0.05 (G*Power's table values).
    [(0.2, 0.8, 199), (0.5, 0.8, 34), (0.8, 0.8, 15), (1.0, 0.8, 10), (0.5, 0.9, 44)],
)
def test_pairs_to_resolve_matches_the_one_sample_table(effect, power, n):
    assert stats.pairs_to_resolve(effect, 1.0, power=power) == n
    assert stats.pairs_to_resolve(-3 * effect, 3.0, power=power) == n


def test_pairs_for_the_interval_to_exclude_zero():
    # difference 1, sd 1: n = 7 gives t_6 = 2.447 < sqrt(7) = 2.646; n = 6 gives 2.571 > 2.449.
    assert stats.pairs_to_resolve(1.0, 1.0) == 7
    with pytest.raises(ValueError, match="sd > 0"):
        stats.pairs_to_resolve(1.0, 0.0)


def test_holm_by_hand():
    """m = 4: sorted 0.005, 0.01, 0.03, 0.04 scale by 4, 3, 2, 1 to 0.02, 0.03, 0.06, 0.04; the
    running maximum makes the last 0.06; then back in the input's order, and capped at 1."""
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.4]) == pytest.approx([0.8, 0.8])
    # sorted 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, max(0.06, 0.06), max(0.06, 0.5)
    assert stats.holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert stats.holm([0.7, 0.6]) == pytest.approx([1.0, 1.0])
    assert stats.holm([0.02]) == pytest.approx([0.02])
    for bad in ([], [1.2], [-0.1, 0.5]):
        with pytest.raises(ValueError, match="p-values in"):
            stats.holm(bad)
