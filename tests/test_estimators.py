"""Estimator behaviour (maths.md §3, §5): Monte Carlo unbiasedness with standard-error tolerances.

Every Monte Carlo check uses a fixed seed and a bound of 4 standard errors, and first asserts that
the bound is tight compared with the quantity tested, so that a biased estimator would fail.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_jax as og

from conftest import FLOAT, assert_close

R = jnp.asarray([-1.0, 0.0, 0.5, 2.0], FLOAT)
LOGITS = jnp.asarray([0.2, -0.3, 0.1, -0.5], FLOAT)
N, K = 8, 4


def _within_4_se(mean, se, want, *, power: float):
    mean, se, want = (np.asarray(a, np.float64) for a in (mean, se, want))
    assert 4 * se.max() < power * max(np.abs(want).max(), 1e-3), "test too weak to detect bias"
    np.testing.assert_array_less(np.abs(mean - want), 4 * se + 1e-6)


def _mean_se(samples):
    samples = np.asarray(samples, np.float64)
    return samples.mean(0), samples.std(0, ddof=1) / np.sqrt(samples.shape[0])


def _sample_arms(key, logits=LOGITS, n=N):
    return jax.random.categorical(key, logits, shape=(n,))


@pytest.mark.parametrize("objective", ["ReMax", "TopM:2", "LowerTailMean:0.5", "TrimM:1", "Median"])
def test_lr_gradient_is_unbiased(objective):
    p = jax.nn.softmax(LOGITS)

    def one_batch(key):
        arms = _sample_arms(key)
        a = og.lstat_advantage(R[arms], K, objective)
        score = jax.nn.one_hot(arms, R.size, dtype=FLOAT) - p  # grad_theta log p(arm)
        return (K / N) * a @ score

    keys = jax.random.split(jax.random.key(1), 40_000)
    mean, se = _mean_se(jax.jit(jax.vmap(one_batch))(keys))
    exact = jax.grad(lambda t: og.exact.lstat(R, jax.nn.softmax(t), K, objective))(LOGITS)
    _within_4_se(mean, se, exact, power=0.25)


def test_lr_loss_gradient_is_the_lr_estimate():
    keys = jax.random.split(jax.random.key(2), 3)
    arms = jax.vmap(_sample_arms)(keys)  # 3 groups
    x = R[arms]

    def loss(logits):
        logp = jax.nn.log_softmax(logits)[arms]
        return og.lr_loss(logp, x, K, "TopM:2")

    a = og.lstat_advantage(x, K, "TopM:2")
    score = jax.nn.one_hot(arms, R.size, dtype=FLOAT) - jax.nn.softmax(LOGITS)
    want = -(K / N) * jnp.einsum("gi,git->t", a, score) / 3
    assert_close(jax.grad(loss)(LOGITS), want, rel=1e-5)
    # with a mask, K/n uses the valid count and masked samples contribute nothing
    mask = jnp.ones_like(arms, bool).at[0, :3].set(False)
    a_m = og.lstat_advantage(x, K, "TopM:2", mask=mask)
    counts = mask.sum(-1)
    want_m = -jnp.einsum("g,gi,git->t", K / counts, a_m, score) / 3
    masked = jax.grad(lambda t: og.lr_loss(jax.nn.log_softmax(t)[arms], x, K, "TopM:2", mask=mask))(
        LOGITS
    )
    assert_close(masked, want_m, rel=1e-5)


def test_batch_advantage_is_unbiased_for_exact_advantage():
    """E[adv_I | arm of I = b] = adv_b (maths.md §3 theorem), rank-wise."""
    p = jax.nn.softmax(LOGITS)

    def one_batch(key):
        arms = _sample_arms(key)
        adv = og.orderstats_advantage(R[arms], K)  # (N, K)
        onehot = jax.nn.one_hot(arms, R.size, dtype=FLOAT)  # (N, m)
        return onehot.T @ adv, onehot.sum(0)  # per-arm sums (m, K) and counts (m,)

    sums, counts = jax.jit(jax.vmap(one_batch))(jax.random.split(jax.random.key(3), 40_000))
    sums, counts = np.asarray(sums, np.float64), np.asarray(counts, np.float64)
    mean = sums.sum(0) / counts.sum(0)[:, None]
    # ratio estimator: standard error from the per-batch residuals S - mean * C
    resid = sums - mean[None] * counts[..., None]
    se = resid.std(0, ddof=1) / (np.sqrt(resid.shape[0]) * counts.mean(0)[:, None])
    exact = og.exact.advantage(R, p, K)
    _within_4_se(mean, se, exact, power=0.2)


def test_batch_lstat_is_unbiased_for_exact_objective():
    p = jax.nn.softmax(LOGITS)
    keys = jax.random.split(jax.random.key(4), 20_000)
    values = jax.jit(jax.vmap(lambda k: og.lstat(R[_sample_arms(k)], K, "WinsorizedM:1")))(keys)
    mean, se = _mean_se(values[:, None])
    _within_4_se(mean, se, [og.exact.lstat(R, p, K, "WinsorizedM:1")], power=0.2)


@pytest.mark.parametrize("objective", ["TopM:2", "ReMin", "Median"])
def test_rp_and_lr_agree_on_gaussian_location(objective):
    """x = mu + eps, reward f(x) = -(x - 1)^2 + sin(3x): mean RP gradient == mean LR gradient."""
    mu = jnp.asarray(0.3, FLOAT)

    def reward(x):
        return -((x - 1.0) ** 2) + jnp.sin(3.0 * x)

    def rp(key):
        eps = jax.random.normal(key, (N,), FLOAT)
        return jax.grad(lambda m: og.lstat(reward(m + eps), K, objective))(mu)

    def lr(key):
        x = mu + jax.random.normal(key, (N,), FLOAT)
        return (K / N) * og.lstat_advantage(reward(x), K, objective) @ (x - mu)

    rp_mean, rp_se = _mean_se(jax.jit(jax.vmap(rp))(jax.random.split(jax.random.key(5), 40_000)))
    lr_mean, lr_se = _mean_se(jax.jit(jax.vmap(lr))(jax.random.split(jax.random.key(6), 40_000)))
    se = np.sqrt(rp_se**2 + lr_se**2)
    _within_4_se(rp_mean, se, lr_mean, power=0.5)
