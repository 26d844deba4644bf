"""Helpers shared by the estimator families (private to :mod:`ordergrad_jax.estimators`).

Every estimator works on the last axis with any leading batch axes, takes static Python params
(sizes, names, fractions), and is jit/vmap friendly. ``mask`` (bool, True = valid) is supported by
all of them: masked entries take no part whatever their value (NaN included) and get 0; a group of
n valid items is an n-group. A masked group whose n valid items are too few for the estimator gets
all zeros.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from ordergrad_jax import _checks
from ordergrad_jax.metrics import returns as metrics


def mean_target(returns: Any, **params: Any) -> jax.Array:
    """The mean objective's estimate from i.i.d. returns ``(..., E) -> (...)`` (the registered
    target of the mean-baseline family; their parameters play no part)."""
    return metrics.mean(returns)


def max_at_k_target(returns: Any, *, k: int, **params: Any) -> jax.Array:
    """The unbiased max@k of i.i.d. returns ``(..., E) -> (...)`` (pass@k on 0/1 returns)."""
    return metrics.max_at_k(returns, k)


def check_group(
    rewards: Any, mask: Any, where: str, min_n: int = 1
) -> tuple[jax.Array, jax.Array | None]:
    """Rewards as a float array ``(..., N)`` and the checked mask; ``N >= min_n`` (static)."""
    x = _checks.as_rewards(rewards, where)
    checked = _checks.check_mask(mask, x.shape, where)
    if x.shape[-1] < min_n:
        raise ValueError(
            f"{where}: needs a group of N >= {min_n} on the last axis; got N={x.shape[-1]}"
        )
    return x, checked


def valid_and_count(x: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(valid (..., N) bool, count (..., 1) int32, rewards with invalid entries set to 0)."""
    if mask is None:
        valid = jnp.ones(x.shape, bool)
        return valid, jnp.full((*x.shape[:-1], 1), x.shape[-1], jnp.int32), x
    count = jnp.sum(mask, axis=-1, keepdims=True, dtype=jnp.int32)
    return mask, count, jnp.where(mask, x, 0)


def group_mean(xz: jax.Array, count: jax.Array) -> jax.Array:
    """The mean of the valid entries (invalid ones already 0), ``(..., 1)``."""
    return jnp.sum(xz, axis=-1, keepdims=True) / jnp.maximum(count, 1).astype(xz.dtype)


def subset_size_scale(n: int, *, k: int, **_: Any) -> float:
    """Gradient scale ``c = K``: the K/N of the OrderGrad LR estimate (OrderGrad, MaxPO)."""
    return float(k)


def group_size_scale(n: int, **_: Any) -> float:
    """Gradient scale ``c = N``: advantages that already carry the 1/N (PKPO, CVaR-PG)."""
    return float(n)


# Host-side float64 binomial ratios (C(n, r) = 0 when r < 0, r > n or n < 0; maths.md §0).


def log_comb(n: Any, r: Any) -> np.ndarray:
    """``log C(n, r)`` elementwise in float64; ``-inf`` where ``C(n, r) = 0``."""
    n, r = np.broadcast_arrays(np.asarray(n, np.float64), np.asarray(r, np.float64))
    ok = (r >= 0) & (r <= n)
    out = np.full(n.shape, -np.inf)
    out[ok] = (
        special.gammaln(n[ok] + 1) - special.gammaln(r[ok] + 1) - special.gammaln(n[ok] - r[ok] + 1)
    )
    return out


def comb_ratio(n: Any, r: Any, n0: int, r0: int) -> np.ndarray:
    """``C(n, r) / C(n0, r0)`` elementwise, float64; ``C(n0, r0)`` must be positive."""
    return np.exp(log_comb(n, r) - log_comb(n0, r0))


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays, made read-only (they are cached and shared)."""
    for a in arrays:
        a.setflags(write=False)
    return arrays
