"""Advantage diagnostics: how much of a group's LR gradient its advantages carry.

:func:`zero_advantage_fraction`, :func:`effective_weight`, :func:`effective_sample_size`; each
takes advantages ``(..., N)`` and an optional bool ``mask`` (True = valid).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ordergrad_jax import _checks

__all__ = ["effective_sample_size", "effective_weight", "zero_advantage_fraction"]


def _as_advantages(adv: Any, mask: Any, where: str) -> tuple[jax.Array, jax.Array | None]:
    adv = _checks.as_rewards(adv, where)
    return adv, _checks.check_mask(mask, adv.shape, where)


def zero_advantage_fraction(
    adv: jax.typing.ArrayLike,
    atol: jax.typing.ArrayLike = 0.0,
    *,
    mask: jax.typing.ArrayLike | None = None,
    axis: int | tuple[int, ...] | None = None,
) -> jax.Array:
    """The fraction of advantages that are zero: samples that carry no LR gradient.

    ``mean_i 1{|a_i| <= atol}`` over the valid entries. With binary rewards, GRPO/RLOO groups
    whose rewards are all equal have all-zero advantages, and so do OrderGrad groups whose top
    ranks tie (e.g. ReMax with two or more successes among the top ranks).

    Args:
      adv: advantages ``(..., N)`` (any shape).
      atol: threshold ``>= 0`` (may be traced); 0 counts exact zeros only (NaN is not zero).
      mask: optional bool of ``adv``'s shape; only valid entries count.
      axis: the axes to reduce; None (default) gives one fraction over the whole batch, -1 one per
        group. A reduction with no valid entry gives 0.

    Returns:
      scalar (``axis=None``) or the unreduced axes' shape.
    """
    adv, mask = _as_advantages(adv, mask, "zero_advantage_fraction")
    atol = _checks.check_fraction(
        atol, "zero_advantage_fraction", "atol", low_open=False, high=None
    )
    valid = jnp.ones(adv.shape, bool) if mask is None else mask
    zero = (jnp.abs(adv) <= atol) & valid
    count = jnp.sum(valid, axis=axis)
    return jnp.where(count > 0, jnp.sum(zero, axis=axis) / jnp.maximum(count, 1), 0).astype(
        adv.dtype
    )


def effective_weight(
    adv: jax.typing.ArrayLike, mask: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """The total advantage weight of each group: ``sum_i |a_i|``.

    The L1 mass of the LR weights ``a_i`` in ``sum_i a_i grad log p(x_i)``: 0 for a group that
    gives no gradient (e.g. GRPO with all-equal rewards), and, with scores bounded by G, the
    group's gradient is at most ``G sum_i |a_i|``. Scale-dependent; see
    :func:`effective_sample_size` for the scale-free count.

    Args:
      adv: advantages ``(..., N)``.
      mask: optional bool ``(..., N)``; masked entries take no part.

    Returns:
      ``(...)``.
    """
    adv, mask = _as_advantages(adv, mask, "effective_weight")
    if mask is not None:
        adv = jnp.where(mask, adv, 0)
    return jnp.sum(jnp.abs(adv), axis=-1)


def effective_sample_size(
    adv: jax.typing.ArrayLike, mask: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """How many samples of each group carry the LR gradient: ``(sum_i |a_i|)^2 / sum_i a_i^2``.

    Scale-free, in ``[1, n]`` (n valid entries): n when all ``|a_i|`` are equal, 1 when a single
    sample carries all the weight; zero-sum advantages (RLOO, OrderGrad) give at least 2. A group
    whose advantages are all 0 gives 0.

    Args:
      adv: advantages ``(..., N)``.
      mask: optional bool ``(..., N)``; masked entries take no part.

    Returns:
      ``(...)``.
    """
    adv, mask = _as_advantages(adv, mask, "effective_sample_size")
    if mask is not None:
        adv = jnp.where(mask, adv, 0)
    magnitude = jnp.abs(adv)
    # divide by the largest |a_i| first, so that squares neither overflow nor underflow
    scale = jnp.max(magnitude, axis=-1, keepdims=True)
    u = magnitude / jnp.where(scale > 0, scale, 1)
    l1, l2 = jnp.sum(u, axis=-1), jnp.sum(jnp.square(u), axis=-1)
    return jnp.where(l2 > 0, jnp.square(l1) / jnp.where(l2 > 0, l2, 1), 0)
