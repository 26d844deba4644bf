"""Rank-weight presets (maths.md §4): oracle vectors, definitions, the registry, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import ordergrad_jax as og

SKIP_TAGS = {"fractional_k", "lmoment_reference_weights", "float_rounding_quirk"}


def test_oracle_resolved_weights(oracle):
    checked = 0
    for case in oracle["cases"]:
        if SKIP_TAGS & set(case["tags"]):
            continue
        objective = case["objective"]
        if not isinstance(objective, str):
            objective = np.asarray(objective)[::-1]  # oracle stores top-rank order
        want = np.asarray(case["objective_weights_top_rank"])[::-1]
        np.testing.assert_allclose(
            og.rank_weights(objective, case["K"]), want, atol=1e-12, err_msg=case["id"]
        )
        checked += 1
    assert checked >= 55


@pytest.mark.parametrize(
    ("spec", "k", "want"),
    [
        ("Mean", 4, [0.25] * 4),
        ("ReMax", 3, [0, 0, 1]),
        ("max", 3, [0, 0, 1]),
        ("BestOfK", 2, [0, 1]),
        ("ReMin", 3, [1, 0, 0]),
        ("Min", 1, [1]),
        ("Rank:1", 4, [0, 0, 0, 1]),
        ("Rank:4", 4, [1, 0, 0, 0]),
        ("TopM:2", 5, [0, 0, 0, 0.5, 0.5]),
        ("BotM:3", 4, [1 / 3, 1 / 3, 1 / 3, 0]),
        ("TopBot:2", 3, [0.25, 0.5, 0.25]),  # overlaps add
        ("TrimM:1", 5, [0, 1 / 3, 1 / 3, 1 / 3, 0]),
        ("WinsorizedM:1", 5, [0, 0.4, 0.2, 0.4, 0]),
        ("WinsorizedM:1", 3, [0, 1, 0]),
        ("CVaR:0.1", 10, [1] + [0] * 9),
        ("LowerTailMean:0.25", 8, [0.5, 0.5] + [0] * 6),
        ("UpperTailMean:0.14", 50, [0] * 43 + [1 / 7] * 7),  # rounds with a tolerance: 7, not 8
        ("Median", 4, [0, 0.5, 0.5, 0]),
        ("Median", 3, [0, 1, 0]),
        ("Quantile:0.5", 4, [0, 0.5, 0.5, 0]),
        ("Quantile:0", 4, [1, 0, 0, 0]),
        ("QuantileWeibull:0.25", 3, [1, 0, 0]),
        ("QuantileWeibull:0.5", 3, [0, 1, 0]),
        ("TopQuantile:0", 4, [0, 0, 0, 1]),
        ("TrimmedMeanFrac:0:0.5", 4, [0.5, 0.5, 0, 0]),  # counted from the bottom
        ("RangeUpperTailMean:0:0.5", 4, [0, 0, 0.5, 0.5]),
        ("GMD", 2, [-1, 1]),
        ("GiniMeanDifference", 3, [-2 / 3, 0, 2 / 3]),
        ("HarrellDavis:1", 3, [0, 0, 1]),
        ("LMoment:1", 3, [1 / 3] * 3),
        ("LMoment:2", 2, [-0.5, 0.5]),
    ],
)
def test_preset_definitions(spec, k, want):
    np.testing.assert_allclose(og.rank_weights(spec, k), want, atol=1e-12)


def test_quantile_interpolates_between_ranks():
    # Hazen position q (K + 1 - 2c) + c = 0.3 * 5 + 0.5 = 2.0 -> rank 2 exactly; 0.35 -> 2.25.
    np.testing.assert_allclose(og.rank_weights("Quantile:0.3", 5), [0, 1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(
        og.rank_weights("Quantile:0.35", 5), [0, 0.75, 0.25, 0, 0], atol=1e-12
    )
    # Blom: c = 3/8, pos = 0.9 * (8 + 1 - 0.75) + 0.375 = 7.8
    np.testing.assert_allclose(og.rank_weights("QuantileBlom:0.9", 8)[-2:], [0.2, 0.8])


def test_harrell_davis_is_beta_mass_per_rank():
    k, q = 7, 0.3
    a, b = (k + 1) * q, (k + 1) * (1 - q)
    edges = special.betainc(a, b, np.arange(k + 1) / k)
    np.testing.assert_allclose(og.rank_weights("HarrellDavis:0.3", k), np.diff(edges), atol=1e-14)


@pytest.mark.parametrize("r", [1, 2, 3, 4])
def test_lmoment_weights_are_unbiased_for_population_lmoments(r):
    """E[sum_j w_j U_(j:K)] for U ~ Uniform(0,1) equals lambda_r of the uniform: 1/2, 1/6, 0, 0."""
    k = 6
    w = og.rank_weights(f"LMoment:{r}", k)
    expected_order_stats = np.arange(1, k + 1) / (k + 1)  # E[U_(j:K)]
    want = {1: 0.5, 2: 1 / 6, 3: 0.0, 4: 0.0}[r]
    assert abs(w @ expected_order_stats - want) < 1e-12
    # and the GMD (E|X - X'|) is twice lambda_2 (1/3 for the uniform)
    if r == 2:
        np.testing.assert_allclose(og.rank_weights("GMD", k), 2 * w, atol=1e-14)


def test_names_case_insensitive_and_objects():
    np.testing.assert_array_equal(og.rank_weights("topm:2", 4), og.rank_weights("TOPM:2", 4))
    obj = og.get_objective("cvar:0.25")
    assert obj == og.Objective("LowerTailMean", (0.25,))
    np.testing.assert_array_equal(og.rank_weights(obj, 8), og.rank_weights("CVaR:0.25", 8))
    assert str(og.get_objective("TopM:2")) == "TopM:2"
    listing = og.available_objectives()
    assert "TopM:m" in listing and "cvar" in listing["LowerTailMean:q"]


def test_weights_are_cached_and_read_only():
    w = og.rank_weights("TopM:2", 6)
    assert w is og.rank_weights("topm:2", 6)
    with pytest.raises(ValueError):
        w[0] = 1.0


def test_register_objective_reaches_every_estimator():
    def upper_half_minus_min(k, scale=1.0):
        w = np.zeros(k)
        w[k // 2 :] = scale / (k - k // 2)
        w[0] -= scale
        return w

    og.register_objective("UpperHalfMinusMin", upper_half_minus_min, overwrite=True)
    want = upper_half_minus_min(4, 2.0)
    np.testing.assert_allclose(og.rank_weights("upperhalfminusmin:2", 4), want)
    x = np.array([0.3, -1.0, 2.0, 0.5, 0.1, 1.5])
    for fn in (og.lstat, og.lstat_advantage, og.lstat_inclusion, og.lstat_weights_by_item):
        np.testing.assert_allclose(
            fn(x, 4, "UpperHalfMinusMin:2"), fn(x, 4, want), rtol=1e-6, atol=1e-6
        )
    r, p = np.array([0.0, 1.0, 3.0]), np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(
        og.exact.lstat(r, p, 4, "UpperHalfMinusMin:2"), og.exact.lstat(r, p, 4, want), rtol=1e-6
    )
    with pytest.raises(ValueError, match="already registered"):
        og.register_objective("UpperHalfMinusMin", upper_half_minus_min)


@pytest.mark.parametrize(
    ("spec", "k", "match"),
    [
        ("NoSuchThing", 4, "unknown objective preset 'NoSuchThing'; known presets: Mean"),
        ("TopM:0", 4, "1 <= m <= k"),
        ("TopM:5", 4, "1 <= m <= k"),
        ("TopM:1.5", 4, "integer"),
        ("TrimM:2", 4, "2m < k"),
        ("WinsorizedM:2", 4, "2m < k"),
        ("Quantile:1.5", 4, r"\[0, 1\]"),
        ("CVaR:0", 4, r"\(0, 1\]"),
        ("CVaR:abc", 4, "not a number"),
        ("TopM", 4, "takes 1 parameter"),
        ("ReMax:2", 4, "takes 0 parameter"),
        ("Rank:0", 3, "1 <= r <= k"),
        ("GMD", 1, "k >= 2"),
        ("LMoment:5", 4, "r <= k"),
        ("RangeLowerTailMean:0.5:0.5", 4, "empty"),
    ],
)
def test_bad_presets(spec, k, match):
    with pytest.raises(ValueError, match=match):
        og.rank_weights(spec, k)


def test_bad_k_and_weight_length():
    with pytest.raises(ValueError, match="k must be >= 1"):
        og.rank_weights("Mean", 0)
    with pytest.raises(TypeError, match="k must be a Python int"):
        og.rank_weights("Mean", 2.5)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        og.rank_weights([0.5, 0.5], 3)
    with pytest.raises(TypeError, match="preset string"):
        og.get_objective(3)
