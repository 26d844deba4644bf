"""The known-(r, p) regime (maths.md §3) against tuple enumeration, the oracle and autodiff."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_jax as og

from conftest import FLOAT, assert_close
from reference import tuple_lstat_jax, tuple_orderstats

SKIP_TAGS = {"fractional_k", "lmoment_reference_weights", "float_rounding_quirk"}


def _arms(rng, m, ties=False, zero=False):
    r = rng.integers(-2, 3, size=m).astype(float) if ties else rng.normal(size=m)
    p = rng.random(m) + 0.05
    if zero and m > 1:
        p[rng.integers(m)] = 0.0
    return r, p / p.sum()


@pytest.mark.parametrize("m", [1, 2, 3, 5])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("variant", ["plain", "ties", "zero_prob"])
def test_matches_tuple_enumeration(m, k, variant, rng):
    r, p = _arms(rng, m, ties=variant == "ties", zero=variant == "zero_prob")
    ref = tuple_orderstats(r, p, k)
    rj, pj = jnp.asarray(r, FLOAT), jnp.asarray(p, FLOAT)
    assert_close(og.exact.orderstats(rj, pj, k), ref["v"], 3)
    live = p > 0  # the include-one value of a zero-probability arm is still defined, check live
    assert_close(np.asarray(og.exact.inclusion(rj, pj, k))[live], ref["inclusion"][live], 3)
    adv = og.exact.advantage(rj, pj, k)
    assert_close(p @ np.asarray(adv, np.float64), np.zeros(k), 3)
    alpha = og.rank_weights("Median", k)
    assert_close(og.exact.lstat(rj, pj, k, "Median"), ref["v"] @ alpha, 3)
    assert_close(
        np.asarray(og.exact.lstat_advantage(rj, pj, k, "Median"))[live],
        (ref["inclusion"] @ alpha - ref["v"] @ alpha)[live],
        3,
    )


def test_oracle_known_rp_cases(oracle):
    checked = 0
    for case in oracle["cases"]:
        if case["kind"] != "known_rp" or SKIP_TAGS & set(case["tags"]):
            continue
        r, p, k = np.asarray(case["r"]), np.asarray(case["p"]), case["K"]
        objective = case["objective"]
        if not isinstance(objective, str):
            objective = np.asarray(objective)[::-1]
        rj, pj = jnp.asarray(r, FLOAT), jnp.asarray(p, FLOAT)
        got = {
            "orderstats_known_rp": og.exact.orderstats(rj, pj, k),
            "inclusion_known_rp": og.exact.inclusion(rj, pj, k),
            "advantage_known_rp": og.exact.advantage(rj, pj, k),
            "lstat_known_rp": og.exact.lstat(rj, pj, k, objective),
            "lstat_inclusion_known_rp": og.exact.lstat_inclusion(rj, pj, k, objective),
            "lstat_advantage_known_rp": og.exact.lstat_advantage(rj, pj, k, objective),
        }
        for name, value in got.items():
            assert_close(value, case[name], np.abs(r).max())
        if "tied_arms" in case["tags"]:
            inc = np.asarray(got["inclusion_known_rp"])
            for i, j in zip(*np.nonzero(r[:, None] == r[None, :]), strict=True):
                np.testing.assert_array_equal(inc[i], inc[j])
        checked += 1
    assert checked == 10


@pytest.mark.parametrize("objective", ["ReMax", "TopM:2", "LowerTailMean:0.34", "Median", "GMD"])
def test_gradient_through_softmax_matches_enumeration(objective, rng):
    m, k = 4, 3
    r = jnp.asarray(rng.normal(size=m), FLOAT)
    logits = jnp.asarray(rng.normal(size=m), FLOAT)
    alpha = jnp.asarray(og.rank_weights(objective, k), FLOAT)
    got = jax.grad(lambda t: og.exact.lstat(r, jax.nn.softmax(t), k, objective))(logits)
    want = jax.grad(lambda t: tuple_lstat_jax(r, jax.nn.softmax(t), k, alpha))(logits)
    assert_close(got, want, rel=1e-8 if FLOAT == jnp.float64 else 1e-4)
    # and in r (pathwise through the arm values)
    got_r = jax.grad(lambda rr: og.exact.lstat(rr, jax.nn.softmax(logits), k, objective))(r)
    want_r = jax.grad(lambda rr: tuple_lstat_jax(rr, jax.nn.softmax(logits), k, alpha))(r)
    assert_close(got_r, want_r, rel=1e-8 if FLOAT == jnp.float64 else 1e-4)


def test_score_function_identity():
    """grad_theta J = K sum_b p_b a_b grad log p_b for a softmax policy (maths.md §3/§5)."""
    r = jnp.asarray([0.0, 1.0, 1.0, 4.0, -2.0], FLOAT)
    logits = jnp.asarray([0.3, -0.2, 0.0, -1.0, 0.5], FLOAT)
    k = 4
    p = jax.nn.softmax(logits)
    a = og.exact.lstat_advantage(r, p, k, "TrimM:1")
    score = jnp.eye(5) - p  # grad_theta log p_b, one row per arm
    want = k * jnp.einsum("b,b,bt->t", p, a, score)
    got = jax.grad(lambda t: og.exact.lstat(r, jax.nn.softmax(t), k, "TrimM:1"))(logits)
    assert_close(got, want, rel=1e-8 if FLOAT == jnp.float64 else 1e-4)


def test_gradient_at_zero_probability_is_finite_and_correct():
    """Zero-probability arms give F_t in {0, 1}; the binomial derivative must stay exact there."""
    r = jnp.asarray([-1.0, 0.5, 2.0], FLOAT)
    p = jnp.asarray([0.0, 0.6, 0.4], FLOAT)
    alpha = jnp.asarray(og.rank_weights("ReMin", 3), FLOAT)
    got = jax.grad(lambda q: og.exact.lstat(r, q, 3, "ReMin"))(p)
    want = jax.grad(lambda q: tuple_lstat_jax(r, q, 3, alpha))(p)
    assert np.all(np.isfinite(np.asarray(got)))
    assert_close(got, want, rel=1e-6 if FLOAT == jnp.float64 else 1e-4)


def test_batch_dims_and_vmap(rng):
    r = jnp.asarray(rng.normal(size=(3, 6)), FLOAT)
    p = jnp.asarray(rng.random((3, 6)), FLOAT)
    out = og.exact.lstat_advantage(r, p, 4, "TopM:2")
    loop = jnp.stack([og.exact.lstat_advantage(r[i], p[i], 4, "TopM:2") for i in range(3)])
    assert_close(out, loop, 3)
    assert_close(jax.vmap(lambda a, b: og.exact.lstat_advantage(a, b, 4, "TopM:2"))(r, p), loop, 3)
    assert_close(
        jax.jit(og.exact.inclusion, static_argnums=2)(r, p, 4), og.exact.inclusion(r, p, 4), 3
    )


def test_bad_inputs():
    r = jnp.zeros(3)
    with pytest.raises(ValueError, match="same shape"):
        og.exact.orderstats(r, jnp.ones(4), 2)
    with pytest.raises(ValueError, match="non-negative"):
        og.exact.orderstats(r, jnp.asarray([0.5, -0.1, 0.6]), 2)
    with pytest.raises(ValueError, match="finite"):
        og.exact.orderstats(r, jnp.asarray([0.5, np.nan, 0.6]), 2)
    with pytest.raises(ValueError, match="sum to a positive number"):
        og.exact.orderstats(r, jnp.zeros(3), 2)
    with pytest.raises(TypeError, match="k must be a Python int"):
        og.exact.lstat(r, jnp.ones(3), 2.5, "ReMax")
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        og.exact.lstat(r, jnp.ones(3), 2, [1.0, 0.0, 0.0])
