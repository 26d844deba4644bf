"""How a rank transform becomes a policy gradient (SPEC.md §5).

* LR (score function): ``g = (K/N) sum_i a_i grad log p(x_i)`` with the OrderGrad advantages
  ``a = lstat_advantage(x, k, objective)``; :func:`lr_loss` is a surrogate whose gradient is it.
* RP (pathwise): ``g = grad_theta lstat(x(theta))``: differentiate
  :func:`ordergrad_jax.lstat` through the reparameterised samples.

Both are unbiased for ``J = sum_j alpha_j E[R_(j:K)]`` when the N samples of a group are i.i.d.
from the current policy; PPO clipping, KL terms, std-normalisation or off-policy data break that.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ordergrad_jax import batch as _batch

__all__ = ["lr_loss"]


def lr_loss(logp: Any, x: Any, k: int, objective: Any, *, mask: Any = None) -> jax.Array:
    """Surrogate loss of the OrderGrad LR estimator (SPEC.md §5), averaged over groups.

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
        raise ValueError(f"lr_loss: logp and rewards must have the same shape (..., N); got "
                         f"logp {logp.shape}, rewards {x.shape}")
    adv = jax.lax.stop_gradient(
        _batch.lstat_advantage(jax.lax.stop_gradient(x), k, objective, mask=mask))
    if mask is None:
        count = x.shape[-1]
    else:
        count = jnp.maximum(jnp.sum(mask, axis=-1), 1).astype(adv.dtype)
        logp = jnp.where(mask, logp, 0)
    per_group = -(k / count) * jnp.sum(adv * logp, axis=-1)
    return jnp.mean(per_group)
