"""Surrogate losses whose gradients are policy-gradient estimates (maths.md §5).

* :func:`lr_loss`: the OrderGrad LR (score-function) surrogate,
  ``-(K/N) sum_i stop_gradient(a_i) logp_i`` per group, so that ``-grad lr_loss`` is the unbiased
  LR gradient ``g = (K/N) sum_i a_i grad log p(x_i)``.
* :func:`clipped_surrogate`: PPO's clipped objective, elementwise; one function for PPO, the
  group policy gradient and the LM loop.

(The RP estimator needs no surrogate: differentiate :func:`ordergrad_jax.lstat` through the
reparameterised samples.) Both surrogates are unbiased only on-policy: with i.i.d. samples of the
current policy, where the ratio is 1 and clipping is inactive.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ordergrad_jax import _checks
from ordergrad_jax.lstatistic import lstat_advantage

__all__ = ["clipped_surrogate", "lr_loss"]


def lr_loss(logp: Any, x: Any, k: int, objective: Any, *, mask: Any = None) -> jax.Array:
    """Surrogate loss of the OrderGrad LR estimator (maths.md §5), averaged over groups.

    ``loss = mean_groups[ -(K/n) sum_i stop_gradient(a_i) logp_i ]``, so ``-grad loss`` is the
    LR gradient estimate of ``J``, averaged over groups. ``n`` is the group size (the number of
    valid items when ``mask`` is given; groups with ``n <= k`` contribute 0 but still count in
    the mean).

    Args:
      logp: log-probabilities of the sampled actions/sequences ``(..., N)``, differentiable.
      x: rewards ``(..., N)`` (no gradient flows into them).
      k: subset size (static int, ``1 <= k <= N - 1``).
      objective: preset string, Objective, or ``(k,)`` ascending weights.
      mask: optional bool ``(..., N)``; masked items take no part.

    Returns:
      scalar loss.
    """
    logp = jnp.asarray(logp)
    x = jnp.asarray(x)
    if logp.shape != x.shape:
        raise ValueError(
            f"lr_loss: logp and rewards must have the same shape (..., N); got "
            f"logp {logp.shape}, rewards {x.shape}"
        )
    adv = jax.lax.stop_gradient(lstat_advantage(jax.lax.stop_gradient(x), k, objective, mask=mask))
    if mask is None:
        count = x.shape[-1]
    else:
        count = jnp.maximum(jnp.sum(mask, axis=-1), 1).astype(adv.dtype)
        logp = jnp.where(mask, logp, 0)
    per_group = -(k / count) * jnp.sum(adv * logp, axis=-1)
    return jnp.mean(per_group)


def clipped_surrogate(
    logp: ArrayLike, logp_old: ArrayLike, advantages: ArrayLike, clip_eps: ArrayLike
) -> jax.Array:
    """PPO's clipped surrogate objective, elementwise (to *maximise*).

    ``min(r A, clip(r, 1 - eps, 1 + eps) A)`` with the probability ratio
    ``r = exp(logp - logp_old)``. Its gradient at ``logp = logp_old`` is ``A grad logp``; away
    from it, the clip stops the ratio from moving further than ``eps`` in the direction ``A``
    favours. Callers take their own (weighted) mean and sign: e.g. a loss
    ``-mean(clipped_surrogate(...))``, or the per-group ``(c/N) sum_i`` of the estimator spec.

    Args:
      logp: log-probabilities under the current policy, differentiable; any shape.
      logp_old: log-probabilities under the behaviour policy (no gradient is stopped here).
      advantages: the advantages ``A`` (treated as constants by the caller).
      clip_eps: the clip range ``eps >= 0`` (a scalar; may be traced).

    Returns:
      The elementwise surrogate, of the broadcast shape of the four inputs (they broadcast
      against each other).

    References:
      Schulman et al., "Proximal Policy Optimization Algorithms", arXiv 1707.06347, eq. (7).
    """
    eps = _checks.concrete(clip_eps)
    if eps is not None and not (np.all(np.isfinite(eps)) and np.all(eps >= 0)):
        raise ValueError(f"clipped_surrogate: clip_eps must be finite and >= 0; got {clip_eps!r}")
    ratio = jnp.exp(jnp.asarray(logp) - jnp.asarray(logp_old))
    clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    return jnp.minimum(ratio * advantages, clipped * advantages)
