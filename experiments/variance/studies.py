"""The variance studies as jitted functions: ``make_*(...) -> fn(key) -> metrics pytree``.

Monte Carlo repetitions are ``vmap``s over keys; objectives are swept as traced weight vectors
(``vmap`` over a ``(O, k)`` stack), so one compilation serves every objective of a size.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og

# ---------------------------------------------------------------------------------------------
# Problems.


def arm_values(mode: str, arms: int, seed: int = 0) -> np.ndarray:
    """Reward of each arm of a softmax bandit: ``gaussian`` (fixed N(0,1) draws), ``linear``
    (evenly spaced in [0, 1]), ``exponential`` (``exp(3 u)`` on an even grid u in [0, 1])."""
    if mode == "gaussian":
        return np.sort(np.random.default_rng(seed).normal(size=arms))
    grid = np.linspace(0.0, 1.0, arms)
    if mode == "linear":
        return grid
    if mode == "exponential":
        return np.exp(3.0 * grid)
    raise ValueError(f"unknown reward mode {mode!r}; use gaussian, linear or exponential")


def bandit_logits(arms: int, seed: int = 1) -> np.ndarray:
    """A fixed, mildly non-uniform softmax policy over ``arms`` arms."""
    return 0.5 * np.random.default_rng(seed).normal(size=arms)


def location_reward(kind: str) -> Callable[[jax.Array], jax.Array]:
    """Reward of a point ``x (..., d)`` for the Gaussian location model: ``quadratic``
    ``-|x - 1|^2`` or ``quadratic_sine`` ``-|x - 1|^2 + sum sin(3 x)``."""
    if kind == "quadratic":
        return lambda x: -jnp.sum((x - 1.0) ** 2, -1)
    if kind == "quadratic_sine":
        return lambda x: -jnp.sum((x - 1.0) ** 2, -1) + jnp.sum(jnp.sin(3.0 * x), -1)
    raise ValueError(f"unknown reward {kind!r}; use quadratic or quadratic_sine")


def stack_weights(objectives: tuple[str, ...], k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(O, k)`` weights and an ``(O,)`` validity flag (a preset may not exist at this k)."""
    weights, valid = [], []
    for objective in objectives:
        try:
            weights.append(og.rank_weights(objective, k))
            valid.append(True)
        except ValueError:
            weights.append(np.zeros(k))
            valid.append(False)
    return np.stack(weights), np.asarray(valid)


def _lr_bandit_gradient(key, r, logits, n, k, alpha):
    """One group's LR gradient for a softmax bandit: ``(K/N) sum_i a_i (e_{arm_i} - p)``, (m,)."""
    arms = jax.random.categorical(key, logits, shape=(n,))
    a = og.lstat_advantage(r[arms], k, alpha)
    score = jax.nn.one_hot(arms, r.shape[-1], dtype=r.dtype) - jax.nn.softmax(logits)
    return (k / n) * a @ score


def exact_bandit_gradient(r, logits, k, alpha):
    """``grad_theta J`` of the exact objective through the softmax, ``(m,)``."""
    return jax.grad(lambda t: og.exact.lstat(r, jax.nn.softmax(t), k, alpha))(logits)


def moments(g: jax.Array) -> dict[str, jax.Array]:
    """Mean ``(d,)``, ``tr Var`` and SNR ``|E g|^2 / tr Var`` of gradient samples ``g (S, d)``."""
    return {
        "mean": jnp.mean(g, 0),
        "total_var": og.metrics.total_variance(g),
        "snr": og.metrics.snr(g),
    }


# ---------------------------------------------------------------------------------------------
# 1. Unbiasedness convergence.


def make_unbiasedness(r, logits, n: int, k: int, alpha, batches: int, grid: np.ndarray):
    """Batch orderstats / include-one / advantage / L-advantage averaged over t batches vs the
    exact known-(r, p) values; returns ``fn(key) -> {name: error at each t in grid}``."""
    r, logits, alpha = (jnp.asarray(a, jnp.result_type(float)) for a in (r, logits, alpha))
    p = jax.nn.softmax(logits)
    exact = {
        "orderstats": og.exact.orderstats(r, p, k),
        "inclusion": og.exact.inclusion(r, p, k),
        "advantage": og.exact.advantage(r, p, k),
    }
    exact["lstat_advantage"] = exact["advantage"] @ alpha
    grid = jnp.asarray(grid)

    def one(key):
        arms = jax.random.categorical(key, logits, shape=(n,))
        x = r[arms]
        onehot = jax.nn.one_hot(arms, r.shape[-1], dtype=r.dtype)
        return (
            og.orderstats(x, k),
            onehot.T @ og.orderstats_inclusion(x, k),
            onehot.T @ og.orderstats_advantage(x, k),
            onehot.sum(0),
        )

    def fn(key):
        v, q, adv, counts = jax.vmap(one)(jax.random.split(key, batches))
        t = jnp.arange(1, batches + 1, dtype=r.dtype)
        seen = jnp.cumsum(counts, 0)[..., None]
        means = {
            "orderstats": jnp.cumsum(v, 0) / t[:, None],
            "inclusion": jnp.cumsum(q, 0) / seen,
            "advantage": jnp.cumsum(adv, 0) / seen,
        }
        means["lstat_advantage"] = means["advantage"] @ alpha
        return {
            name: jnp.sqrt(
                jnp.sum((mean[grid - 1] - exact[name]) ** 2, axis=tuple(range(1, mean.ndim)))
            )
            for name, mean in means.items()
        }

    return jax.jit(fn)


# ---------------------------------------------------------------------------------------------
# 2. LR gradient vs the exact gradient on softmax bandits.


def make_lr_vs_exact(r, logits, n: int, k: int, weights, batches: int, grid: np.ndarray):
    """Relative error ``|mean of t LR gradients - exact| / |exact|`` for each objective (rows of
    ``weights (O, k)``) at each t in grid: ``fn(key) -> (O, len(grid))``."""
    r, logits, weights = (jnp.asarray(a, jnp.result_type(float)) for a in (r, logits, weights))
    grid = jnp.asarray(grid)

    def per_objective(key, alpha):
        g = jax.vmap(lambda kk: _lr_bandit_gradient(kk, r, logits, n, k, alpha))(
            jax.random.split(key, batches)
        )
        mean_t = jnp.cumsum(g, 0)[grid - 1] / grid[:, None]
        exact = exact_bandit_gradient(r, logits, k, alpha)
        return jnp.linalg.norm(mean_t - exact, axis=-1) / jnp.linalg.norm(exact)

    return jax.jit(lambda key: jax.vmap(per_objective, (None, 0))(key, weights))


# ---------------------------------------------------------------------------------------------
# 3-4. RP vs LR on the Gaussian location model, and variance / SNR sweeps.


def make_location_gradients(
    reward: str, dim: int, n: int, k: int, weights, batches: int, mu: float = 0.3
):
    """RP and LR gradients of ``J(mu)`` for ``x = mu + N(0, I_dim)``: ``fn(key) ->
    {"rp": moments, "lr": moments}`` per objective (rows of ``weights (O, k)``)."""
    f = location_reward(reward)
    dtype = jnp.result_type(float)
    weights = jnp.asarray(weights, dtype)
    mu0 = jnp.full((dim,), mu, dtype)

    def one(key, alpha):
        key_rp, key_lr = jax.random.split(key)
        eps = jax.random.normal(key_rp, (n, dim), dtype)
        rp = jax.grad(lambda m: og.lstat(f(m + eps), k, alpha))(mu0)
        x = mu0 + jax.random.normal(key_lr, (n, dim), dtype)
        lr = (k / n) * og.lstat_advantage(f(x), k, alpha) @ (x - mu0)
        return rp, lr

    def per_objective(key, alpha):
        rp, lr = jax.vmap(one, (0, None))(jax.random.split(key, batches), alpha)
        return {"rp": moments(rp), "lr": moments(lr)}

    return jax.jit(lambda key: jax.vmap(per_objective, (None, 0))(key, weights))


def make_bandit_lr_moments(r, logits, n: int, k: int, weights, batches: int):
    """LR gradient moments on a softmax bandit per objective, with the SNR against the exact
    gradient: ``fn(key) -> {"total_var": (O,), "snr": (O,), "bias": (O,)}``."""
    r, logits, weights = (jnp.asarray(a, jnp.result_type(float)) for a in (r, logits, weights))

    def per_objective(key, alpha):
        g = jax.vmap(lambda kk: _lr_bandit_gradient(kk, r, logits, n, k, alpha))(
            jax.random.split(key, batches)
        )
        exact = exact_bandit_gradient(r, logits, k, alpha)
        return {
            "total_var": og.metrics.total_variance(g),
            "snr": og.metrics.snr_true_gradient(g, exact),
            "bias": jnp.linalg.norm(jnp.mean(g, 0) - exact),
        }

    return jax.jit(lambda key: jax.vmap(per_objective, (None, 0))(key, weights))
