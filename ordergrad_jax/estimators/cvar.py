"""CVaR policy gradient (Tamar et al. 2015): the lower alpha-tail of the rewards (maths.md §5)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from ordergrad_jax import _checks
from ordergrad_jax.estimators._common import (
    check_group,
    group_size_scale,
    read_only,
    valid_and_count,
)
from ordergrad_jax.estimators.registry import register
from ordergrad_jax.metrics import returns as metrics

__all__ = ["cvar_pg"]


def _params(alpha: Any) -> dict[str, Any]:
    return {"alpha": _checks.tail_fraction(alpha)}


def _target(returns: ArrayLike, *, alpha: float) -> jax.Array:
    """CVaR_alpha of i.i.d. returns ``(..., E) -> (...)``, the plug-in estimate (the objective
    CVaR-PG ascends)."""
    return metrics.cvar(returns, alpha)


@functools.lru_cache(maxsize=256)
def _quantile_positions(n_max: int, alpha: float) -> np.ndarray:
    """0-based sorted position ``ceil(alpha n) - 1`` of the alpha-quantile for n = 0..n_max."""
    n = np.arange(n_max + 1)
    pos = np.clip(np.ceil(alpha * n - _checks.ROUND_TOL), 1, np.maximum(n, 1)) - 1
    return read_only(pos.astype(np.int32))[0]


@functools.partial(jax.jit, static_argnames=("alpha",))
def _cvar_pg_kernel(x: jax.Array, mask: jax.Array | None, alpha: float) -> jax.Array:
    n = x.shape[-1]
    valid, count, xz = valid_and_count(x, mask)
    _, xs = lax.sort((~valid, xz), dimension=x.ndim - 1, num_keys=2)  # invalid entries last
    pos = jnp.take(jnp.asarray(_quantile_positions(n, alpha)), count)
    var = jnp.take_along_axis(xs, pos, axis=-1)
    scale = alpha * jnp.maximum(count, 1).astype(x.dtype)
    return jnp.where(valid & (xz <= var), (xz - var) / scale, 0)


@register(
    "cvar_pg",
    params=("alpha",),
    gradient_scale=group_size_scale,
    zero_sum=False,
    label="CVaR-PG alpha={alpha}",
    target=_target,
    target_label="CVaR_{alpha}",
    aliases=("cvar",),
    description="CVaR-PG (R_i - VaR) 1{R_i <= VaR} / (alpha N) (param alpha)",
    validate=_params,
)
def cvar_pg(rewards: ArrayLike, mask: ArrayLike | None = None, *, alpha: float) -> jax.Array:
    """CVaR policy gradient weights of the lower alpha-tail of the rewards.

    ``a_i = (R_i - VaR) 1{R_i <= VaR} / (alpha N)`` with ``VaR = R_(ceil(alpha N))``, the
    empirical alpha-quantile (ascending order statistic; ``ceil`` with a 1e-9 tolerance).
    Gradient scale: ``g = sum_i a_i grad log p(x_i)`` (the spec's ``c = N``) estimates
    ``grad CVaR_alpha`` (the mean of the worst alpha-fraction of rewards); it is consistent, not
    unbiased, at finite N.
    Sums to zero over each group: no (every entry is <= 0).

    Args:
      rewards: ``(..., N)`` (higher is better; pass ``-cost`` for costs).
      mask: optional bool ``(..., N)``; N and VaR refer to the valid items.
      alpha: tail fraction in (0, 1] (static float).

    Returns:
      ``(..., N)``.

    References:
      Tamar, Glassner & Mannor, "Optimizing the CVaR via Sampling", AAAI 2015 (Prop. 2 and the
      estimator of Sec. 4).
    """
    alpha = _checks.tail_fraction(alpha)
    x, mask = check_group(rewards, mask, "cvar_pg")
    return _cvar_pg_kernel(x, mask, alpha)
