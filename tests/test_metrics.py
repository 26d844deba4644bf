"""Evaluation metrics (maths.md §6) against brute force, closed forms and NumPy references.

The references are written here from the definitions: k-subset enumeration for pass@k, max@k and
L-statistics; the quantile-function integral and the Rockafellar-Uryasev maximum for CVaR; the
inverse empirical CDF for VaR; ``np.var(ddof=1)`` for the gradient diagnostics. Monte Carlo checks
use fixed seeds and a bound of 4 standard errors, asserting first that the bound is tight.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import ordergrad_jax as og
from ordergrad_jax import metrics

from conftest import FLOAT, X64, assert_close

# ---------------------------------------------------------------------------------------------
# References (NumPy float64 / exact rationals).


def _subset_mean(x, k, fn):
    """The mean of ``fn(sorted x_S)`` over all k-subsets S of one group."""
    return np.mean(
        [
            fn(np.sort(np.asarray(x, np.float64)[list(s)]))
            for s in itertools.combinations(range(len(x)), k)
        ]
    )


def _exact_alpha(alpha) -> Fraction:
    """The rational the user meant by a float level such as 0.1 or 1/3."""
    return Fraction(alpha).limit_denominator(10**6)


def _cvar_reference(x, alpha) -> float:
    """``(1/alpha) int_0^alpha F_n^{-1}(u) du``: x_(i) holds on ((i-1)/n, i/n]."""
    xs, n, a = np.sort(np.asarray(x, np.float64)), len(x), _exact_alpha(alpha)
    total = sum(
        float(max(Fraction(0), min(Fraction(i, n), a) - Fraction(i - 1, n))) * xs[i - 1]
        for i in range(1, n + 1)
    )
    return total / float(a)


def _cvar_ru_reference(x, alpha) -> float:
    """Rockafellar-Uryasev: ``max_t t - mean((t - x)_+) / alpha``; attained at a sample."""
    x = np.asarray(x, np.float64)
    return max(t - np.mean(np.maximum(t - x, 0)) / alpha for t in x)


def _var_reference(x, alpha) -> float:
    """``inf{t : F_n(t) >= alpha}`` over the sample, with exact rational comparisons."""
    x = np.asarray(x, np.float64)
    a = _exact_alpha(alpha)
    return min(t for t in x if Fraction(int(np.sum(x <= t)), len(x)) >= a)


def _subgroup(x, mask):
    return np.asarray(x, np.float64)[np.asarray(mask)]


def _rel() -> float:
    return 1e-12 if X64 else 1e-5


# ---------------------------------------------------------------------------------------------
# mean, pass@k, max@k, L-statistics.


def test_mean_with_and_without_mask(rng):
    x = rng.normal(size=(3, 4, 7))
    assert_close(metrics.mean(jnp.asarray(x, FLOAT)), x.mean(-1), scale=3)
    mask = rng.random(x.shape) < 0.6
    mask[0, 0] = False  # a group with no valid entry gives 0
    x_nan = np.where(mask, x, np.nan)  # masked entries take no part, NaN included
    want = np.array(
        [
            [_subgroup(x[g, h], mask[g, h]).mean() if mask[g, h].any() else 0.0 for h in range(4)]
            for g in range(3)
        ]
    )
    assert_close(metrics.mean(jnp.asarray(x_nan, FLOAT), mask=jnp.asarray(mask)), want, scale=3)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_subset_enumeration_and_closed_form(n, rng):
    x = (rng.random(size=(4, n)) < 0.4).astype(np.float64)
    x[0] = 0.0
    x[1, 0] = 1.0
    for k in range(1, n + 1):
        brute = np.array([_subset_mean(row, k, np.max) for row in x])
        closed = np.array([1 - math.comb(n - int(c), k) / math.comb(n, k) for c in x.sum(-1)])
        np.testing.assert_allclose(brute, closed, atol=1e-12)
        got = metrics.pass_at_k(jnp.asarray(x, FLOAT), k)
        assert_close(got, closed)
        assert_close(metrics.pass_at_k(x.astype(bool), k), closed)
        assert_close(metrics.max_at_k(jnp.asarray(x, FLOAT), k), closed)


@pytest.mark.parametrize("k", [1, 7, 512, 4096])
def test_pass_at_k_is_stable_for_n_4096(k):
    """No binomial overflow at n = 4096, and small values keep their relative accuracy."""
    n = 4096
    successes = [0, 1, 2, 5, 100, 2048, 4000, 4095, 4096]
    x = np.zeros((len(successes), n))
    for row, c in enumerate(successes):
        x[row, :c] = 1.0
    got = np.asarray(metrics.pass_at_k(jnp.asarray(x, FLOAT), k), np.float64)
    exact = np.array([float(1 - Fraction(math.comb(n - c, k), math.comb(n, k))) for c in successes])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, exact, rtol=1e-13 if X64 else 2e-6, atol=0)
    # the complement too (1 - pass@k, i.e. all k fail) where it is not tiny
    mid = (exact > 0) & (exact < 1 - 1e-3)
    np.testing.assert_allclose(1 - got[mid], 1 - exact[mid], rtol=1e-12 if X64 else 1e-5)


def test_pass_at_k_with_mask(rng):
    x = (rng.random(size=(5, 9)) < 0.5).astype(np.float64)
    mask = rng.random(size=x.shape) < 0.7
    mask[0] = [True] * 2 + [False] * 7  # 2 valid < k: gives 0
    x_nan = np.where(mask, x, np.nan)
    k = 3
    want = [
        1 - math.comb(int(m.sum() - r[m].sum()), k) / math.comb(int(m.sum()), k)
        if m.sum() >= k
        else 0.0
        for r, m in zip(x, mask, strict=True)
    ]
    got = metrics.pass_at_k(jnp.asarray(x_nan, FLOAT), k, mask=jnp.asarray(mask))
    assert_close(got, want)
    assert_close(metrics.max_at_k(jnp.asarray(x_nan, FLOAT), k, mask=jnp.asarray(mask)), want)


def test_pass_at_k_rejects_non_binary_rewards():
    x = jnp.asarray([[0.0, 1.0, 0.5, 1.0], [1.0, 0.0, 0.0, 1.0]], FLOAT)
    with pytest.raises(ValueError, match=r"binary .*0\.5"):
        metrics.pass_at_k(x, 2)
    # under jit the values are unknown at trace time: the offending group gives NaN
    got = jax.jit(metrics.pass_at_k, static_argnums=1)(x, 2)
    assert np.isnan(got[0]) and np.isclose(got[1], 1 - 1 / 6)
    # a masked non-binary entry takes no part
    mask = jnp.asarray([[True, True, False, True], [True] * 4])
    assert np.all(np.isfinite(metrics.pass_at_k(x, 2, mask=mask)))


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_max_at_k_and_lstat_at_k_match_subset_enumeration(n, rng):
    x = rng.normal(size=(3, n))
    x[0] = np.round(x[0])  # ties
    for k in range(1, n + 1):
        custom = rng.normal(size=k)
        for objective in ["ReMax", "Median", "LowerTailMean:0.5", "Mean", custom]:
            alpha = og.rank_weights(objective, k)
            want = np.array([_subset_mean(row, k, lambda s, a=alpha: s @ a) for row in x])
            assert_close(metrics.lstat_at_k(jnp.asarray(x, FLOAT), k, objective), want, scale=3)
        want_max = np.array([_subset_mean(row, k, np.max) for row in x])
        assert_close(metrics.max_at_k(jnp.asarray(x, FLOAT), k), want_max, scale=3)


def test_max_at_k_with_mask(rng):
    x = rng.normal(size=(4, 8))
    mask = rng.random(size=x.shape) < 0.7
    mask[:, :3] = True
    k = 3
    want = [_subset_mean(_subgroup(r, m), k, np.max) for r, m in zip(x, mask, strict=True)]
    got = metrics.max_at_k(jnp.asarray(np.where(mask, x, np.nan), FLOAT), k, mask=mask)
    assert_close(got, want, scale=3)


# ---------------------------------------------------------------------------------------------
# CVaR and VaR.

ALPHAS = [0.01, 0.1, 0.25, 1 / 3, 0.5, 0.9, 1.0]


@pytest.mark.parametrize("n", [1, 2, 5, 30, 101])
@pytest.mark.parametrize("ties", [False, True])
def test_cvar_and_var_match_the_definitions(n, ties, rng):
    x = rng.integers(-3, 4, size=n).astype(np.float64) if ties else rng.normal(size=n)
    xj = jnp.asarray(x, FLOAT)
    for alpha in ALPHAS:
        want_cvar = _cvar_reference(x, alpha)
        np.testing.assert_allclose(_cvar_ru_reference(x, alpha), want_cvar, atol=1e-12)
        assert_close(metrics.cvar(xj, alpha), want_cvar, scale=3)
        v = metrics.var(xj, alpha)
        assert_close(v, _var_reference(x, alpha), scale=3)
        # the Rockafellar-Uryasev identity holds exactly at t = VaR
        ru = float(v) - np.mean(np.maximum(float(v) - x, 0)) / alpha
        assert_close(metrics.cvar(xj, alpha), ru, scale=3 / alpha)
    assert_close(metrics.cvar(xj, 1.0), x.mean(), scale=3)
    assert_close(metrics.var(xj, 1.0), x.max(), scale=3)


def test_cvar_var_batch_dims_alpha_broadcast_and_vmap(rng):
    x = rng.normal(size=(2, 3, 11))
    alpha = np.array([0.1, 0.5, 0.8])
    xj, aj = jnp.asarray(x, FLOAT), jnp.asarray(alpha, FLOAT)
    want_cvar = [[_cvar_reference(x[g, h], alpha[h]) for h in range(3)] for g in range(2)]
    want_var = [[_var_reference(x[g, h], alpha[h]) for h in range(3)] for g in range(2)]
    assert_close(metrics.cvar(xj, aj), want_cvar, scale=3)
    assert_close(metrics.var(xj, aj), want_var, scale=3)
    # a sweep over traced alphas is a vmap and agrees with one call per alpha
    swept = jax.jit(jax.vmap(metrics.cvar, in_axes=(None, 0)))(xj, aj)
    assert swept.shape == (3, 2, 3)
    for h, a in enumerate(alpha):
        assert_close(swept[h], metrics.cvar(xj, float(a)), scale=3)


def test_cvar_var_with_mask(rng):
    x = rng.normal(size=(4, 12))
    mask = rng.random(size=x.shape) < 0.6
    mask[:, 0] = True
    mask[3] = False  # no valid entry: 0
    x_nan = jnp.asarray(np.where(mask, x, np.nan), FLOAT)
    for alpha in [0.2, 0.5]:
        want_cvar = [
            _cvar_reference(_subgroup(r, m), alpha) if m.any() else 0.0
            for r, m in zip(x, mask, strict=True)
        ]
        want_var = [
            _var_reference(_subgroup(r, m), alpha) if m.any() else 0.0
            for r, m in zip(x, mask, strict=True)
        ]
        assert_close(metrics.cvar(x_nan, alpha, mask=mask), want_cvar, scale=3)
        assert_close(metrics.var(x_nan, alpha, mask=mask), want_var, scale=3)


@pytest.mark.parametrize("alpha", [0.05, 0.25])
def test_cvar_and_var_are_consistent_for_the_normal(alpha):
    """Many N(0, 1) samples: CVaR -> -phi(z_alpha)/alpha, VaR -> z_alpha (4 standard errors)."""
    replicates, n = 64, 16_384
    x = jax.random.normal(jax.random.key(7), (replicates, n), FLOAT)
    z = special.ndtri(alpha)
    for got, want in [
        (metrics.cvar(x, alpha), -stats.norm.pdf(z) / alpha),
        (metrics.var(x, alpha), z),
    ]:
        got = np.asarray(got, np.float64)
        se = got.std(ddof=1) / np.sqrt(replicates)
        assert 4 * se < 0.02 * abs(want), "test too weak to detect a bias"
        assert abs(got.mean() - want) < 4 * se


# ---------------------------------------------------------------------------------------------
# Gradient diagnostics.


def _flat_stack(g) -> np.ndarray:
    leaves = jax.tree.leaves(g)
    return np.concatenate([np.asarray(a, np.float64).reshape(a.shape[0], -1) for a in leaves], 1)


def _pytree_stack(rng, s=9):
    return {
        "w": rng.normal(1.0, 2.0, size=(s, 3, 2)),
        "b": rng.normal(size=(s, 2)),
        "layers": [rng.normal(-0.5, 0.3, size=(s,)), rng.normal(size=(s, 4))],
    }


@pytest.mark.parametrize("kind", ["array", "pytree"])
def test_gradient_diagnostics_match_numpy(kind, rng):
    g = rng.normal(0.7, 1.5, size=(9, 3, 4)) if kind == "array" else _pytree_stack(rng)
    g = jax.tree.map(lambda a: jnp.asarray(a, FLOAT), g)
    flat = _flat_stack(g)
    tr_var = flat.var(0, ddof=1).sum()
    signal = np.sum(flat.mean(0) ** 2)
    assert_close(metrics.total_variance(g), tr_var, scale=tr_var)
    assert_close(metrics.snr(g), signal / tr_var, scale=signal / tr_var)
    debiased = (signal - tr_var / flat.shape[0]) / tr_var
    assert_close(metrics.snr(g, debias=True), debiased, scale=abs(debiased))
    g_true = jax.tree.map(lambda a: jnp.ones(a.shape[1:], FLOAT), g)
    assert_close(metrics.snr_true_gradient(g, g_true), flat.shape[1] / tr_var)
    # the same under jit
    assert_close(jax.jit(metrics.total_variance)(g), metrics.total_variance(g), scale=tr_var)
    assert_close(jax.jit(metrics.snr)(g), metrics.snr(g), scale=signal / tr_var)
    assert_close(
        jax.jit(metrics.snr_true_gradient)(g, g_true),
        metrics.snr_true_gradient(g, g_true),
        scale=flat.shape[1] / tr_var,
    )


def test_debiased_snr_numerator_is_unbiased():
    """E[|mean g|^2 - trVar/S] = |E g|^2 while the plug-in is high by trVar/S."""
    mu = jnp.asarray([0.3, -0.2, 0.1], FLOAT)
    s, replicates = 4, 20_000

    def numerators(key):
        g = mu + jax.random.normal(key, (s, 3), FLOAT)
        tv = metrics.total_variance(g)
        return metrics.snr(g) * tv, metrics.snr(g, debias=True) * tv

    plug_in, debiased = jax.jit(jax.vmap(numerators))(
        jax.random.split(jax.random.key(3), replicates)
    )
    want = float(jnp.sum(mu**2))
    debiased = np.asarray(debiased, np.float64)
    se = debiased.std(ddof=1) / np.sqrt(replicates)
    bias = 3 / s  # trVar / S of the plug-in numerator
    assert 4 * se < 0.5 * bias, "test too weak to tell the two numerators apart"
    assert abs(debiased.mean() - want) < 4 * se
    assert abs(np.mean(plug_in) - want - bias) < 4 * se * 2


# ---------------------------------------------------------------------------------------------
# Advantage diagnostics.


def test_zero_advantage_fraction_of_rloo_on_binary_rewards(rng):
    rewards = (rng.random(size=(6, 8)) < 0.5).astype(np.float64)
    rewards[0], rewards[1] = 0.0, 1.0  # all-equal groups: every advantage is exactly 0
    adv = og.lstat_advantage(jnp.asarray(rewards, FLOAT), 1, "Mean")
    adv_np = np.asarray(adv, np.float64)
    assert np.all(adv_np[:2] == 0)
    assert_close(metrics.zero_advantage_fraction(adv), np.mean(adv_np == 0))
    assert_close(metrics.zero_advantage_fraction(adv, axis=-1), np.mean(adv_np == 0, -1))
    assert_close(metrics.zero_advantage_fraction(adv, 0.3), np.mean(np.abs(adv_np) <= 0.3))
    # only valid entries count; NaN is never zero
    mask = np.ones_like(rewards, bool)
    mask[2:, :4] = False
    noisy = np.where(mask, adv_np, 0.0)
    noisy[5, 7] = np.nan
    want = np.sum((noisy == 0) & mask) / mask.sum()
    got = metrics.zero_advantage_fraction(jnp.asarray(noisy, FLOAT), mask=jnp.asarray(mask))
    assert_close(got, want)
    assert_close(
        jax.jit(metrics.zero_advantage_fraction)(adv, 0.3),
        metrics.zero_advantage_fraction(adv, 0.3),
    )


def test_effective_weight_and_sample_size(rng):
    adv = rng.normal(size=(2, 3, 6))
    adv[0, 0] = 0.0
    adv[0, 1] = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    aj = jnp.asarray(adv, FLOAT)
    l1, l2 = np.abs(adv).sum(-1), (adv**2).sum(-1)
    ess = np.where(l2 > 0, l1**2 / np.where(l2 > 0, l2, 1), 0)
    assert_close(metrics.effective_weight(aj), l1, scale=6)
    assert_close(metrics.effective_sample_size(aj), ess, scale=6)
    assert float(metrics.effective_sample_size(aj)[0, 1]) == pytest.approx(6)
    # scale-free, with no overflow in float32
    assert_close(metrics.effective_sample_size(aj * 1e30), ess, scale=6)
    mask = rng.random(size=adv.shape) < 0.6
    masked = jnp.asarray(np.where(mask, adv, np.nan), FLOAT)
    l1m = np.where(mask, np.abs(adv), 0).sum(-1)
    l2m = np.where(mask, adv**2, 0).sum(-1)
    assert_close(metrics.effective_weight(masked, mask=mask), l1m, scale=6)
    assert_close(
        metrics.effective_sample_size(masked, mask=mask),
        np.where(l2m > 0, l1m**2 / np.where(l2m > 0, l2m, 1), 0),
        scale=6,
    )


# ---------------------------------------------------------------------------------------------
# jit == eager on every group metric, batch dims.

GROUP_METRICS = {
    "mean": lambda x, b: metrics.mean(x),
    "pass_at_k": lambda x, b: metrics.pass_at_k(b, 3),
    "max_at_k": lambda x, b: metrics.max_at_k(x, 3),
    "lstat_at_k": lambda x, b: metrics.lstat_at_k(x, 4, "TopM:2"),
    "cvar": lambda x, b: metrics.cvar(x, 0.3),
    "var": lambda x, b: metrics.var(x, 0.3),
    "effective_weight": lambda x, b: metrics.effective_weight(x),
    "effective_sample_size": lambda x, b: metrics.effective_sample_size(x),
}


@pytest.mark.parametrize("name", sorted(GROUP_METRICS))
def test_jit_equals_eager_and_batch_dims_are_independent_groups(name, rng):
    fn = GROUP_METRICS[name]
    x = jnp.asarray(rng.normal(size=(2, 3, 9)), FLOAT)
    b = jnp.asarray(rng.random(size=(2, 3, 9)) < 0.4, FLOAT)
    eager = fn(x, b)
    assert eager.shape == (2, 3)
    assert_close(jax.jit(fn)(x, b), eager, scale=3)
    per_group = [[fn(x[g, h], b[g, h]) for h in range(3)] for g in range(2)]
    assert_close(eager, per_group, scale=3)
    assert_close(jax.vmap(fn)(x, b), eager, scale=3)


# ---------------------------------------------------------------------------------------------
# Bad inputs.


def test_bad_sizes_and_types_raise_with_what_is_allowed():
    x = jnp.zeros((2, 4), FLOAT)
    with pytest.raises(ValueError, match=r"pass_at_k: k=5 .* N=4.*1 <= k <= N"):
        metrics.pass_at_k(x, 5)
    with pytest.raises(ValueError, match=r"max_at_k|lstat_at_k"):
        metrics.max_at_k(x, 5)
    with pytest.raises(ValueError, match=r"pass_at_k: k must be >= 1"):
        metrics.pass_at_k(x, 0)
    with pytest.raises(TypeError, match=r"pass_at_k: k must be a Python int"):
        metrics.pass_at_k(x, 2.0)
    with pytest.raises(TypeError, match=r"lstat_at_k: k must be a Python int"):
        metrics.lstat_at_k(x, True, "ReMax")
    with pytest.raises(ValueError, match=r"cvar: rewards must have shape \(\.\.\., N\)"):
        metrics.cvar(jnp.asarray(1.0), 0.5)
    with pytest.raises(TypeError, match=r"mean: rewards must be real"):
        metrics.mean(jnp.zeros(3, jnp.complex64))
    with pytest.raises(ValueError, match=r"mask must have the rewards' shape"):
        metrics.mean(x, mask=jnp.ones(4, bool))
    with pytest.raises(TypeError, match=r"mask must be boolean"):
        metrics.pass_at_k(x, 2, mask=jnp.ones((2, 4)))


@pytest.mark.parametrize("fn", [metrics.cvar, metrics.var])
def test_bad_alpha_raises_or_gives_nan_when_traced(fn):
    x = jnp.asarray([[1.0, 2.0, 3.0]] * 3, FLOAT)
    for bad in [0.0, -0.1, 1.5, float("nan"), [0.5, 2.0]]:
        with pytest.raises(ValueError, match=r"alpha must satisfy 0 < alpha <= 1"):
            fn(x, bad)
    for bad in ["0.1", None, True, 0.5j]:
        with pytest.raises(TypeError, match=r"alpha must be a real number"):
            fn(x, bad)
    with pytest.raises(ValueError, match=r"alpha must be a scalar or broadcast .*\(3,\)"):
        fn(x, jnp.full((4,), 0.5))
    got = jax.jit(fn)(x, jnp.asarray([0.5, 1.5, 0.0], FLOAT))
    assert np.isfinite(got[0]) and np.isnan(got[1]) and np.isnan(got[2])


def test_bad_gradient_stacks_raise():
    g = jnp.ones((5, 3), FLOAT)
    with pytest.raises(ValueError, match=r"S >= 2 .* S=1"):
        metrics.total_variance(jnp.ones((1, 3)))
    with pytest.raises(ValueError, match=r"share the leading sample axis S; got sizes \[4, 5\]"):
        metrics.snr({"a": g, "b": jnp.ones((4,))})
    with pytest.raises(ValueError, match=r"leading sample axis, shape \(S, \.\.\.\)"):
        metrics.total_variance([g, jnp.asarray(1.0)])
    with pytest.raises(ValueError, match=r"empty pytree"):
        metrics.snr({})
    with pytest.raises(TypeError, match=r"gradients must be real"):
        metrics.total_variance(jnp.ones((3, 2), jnp.complex64))
    with pytest.raises(ValueError, match=r"g_true must have the pytree structure of g"):
        metrics.snr_true_gradient({"a": g}, [jnp.ones(3)])
    with pytest.raises(ValueError, match=r"shape of a gradient sample, \(3,\)"):
        metrics.snr_true_gradient({"a": g}, {"a": jnp.ones(4)})
    with pytest.raises(ValueError, match=r"atol must satisfy atol >= 0"):
        metrics.zero_advantage_fraction(g, -1e-3)
