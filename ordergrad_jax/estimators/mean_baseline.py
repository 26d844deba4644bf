"""The mean-baseline family: REINFORCE, RLOO, GRPO and Dr. GRPO (maths.md §5).

Each advantage is the reward minus a baseline built from the group's mean (none for REINFORCE),
possibly rescaled; all four have gradient scale ``c = 1`` in ``g = (c/N) sum_i a_i grad log p_i``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from ordergrad_jax import _checks
from ordergrad_jax.estimators._common import check_group, group_mean, mean_target, valid_and_count
from ordergrad_jax.estimators.registry import register

__all__ = ["dr_grpo", "grpo", "reinforce", "rloo"]


@jax.jit
def _reinforce_kernel(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    return x if mask is None else jnp.where(mask, x, 0)


@functools.partial(jax.jit, static_argnames=("kind", "eps"))
def _mean_baseline_kernel(
    x: jax.Array, mask: jax.Array | None, kind: str, eps: float = 0.0
) -> jax.Array:
    valid, count, xz = valid_and_count(x, mask)
    centred = jnp.where(valid, xz - group_mean(xz, count), 0)
    countf = count.astype(x.dtype)
    if kind == "dr_grpo":
        return centred
    if kind == "rloo":
        return jnp.where(count > 1, countf / jnp.maximum(countf - 1, 1) * centred, 0)
    # grpo: population standard deviation of the valid rewards
    std = jnp.sqrt(jnp.sum(centred * centred, axis=-1, keepdims=True) / jnp.maximum(countf, 1))
    scale = std + eps
    return jnp.where(scale > 0, centred / jnp.where(scale > 0, scale, 1), 0)


@register(
    "reinforce",
    params=(),
    gradient_scale=1.0,
    zero_sum=False,
    label="REINFORCE",
    target=mean_target,
    target_label="mean",
    aliases=("mean",),
    description="raw reward r_i (no baseline)",
)
def reinforce(rewards: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
    """Plain REINFORCE: the raw reward, ``a_i = r_i`` (no baseline).

    Gradient scale: ``g = (1/N) sum_i a_i grad log p(x_i)`` is unbiased for ``grad E[R]``.
    Sums to zero over each group: no.

    Args:
      rewards: ``(..., N)``.
      mask: optional bool ``(..., N)``; masked entries get 0.

    Returns:
      ``(..., N)``.

    References:
      Williams, "Simple statistical gradient-following algorithms for connectionist
      reinforcement learning", Machine Learning 8, 1992.
    """
    x, checked = check_group(rewards, mask, "reinforce")
    return _reinforce_kernel(x, checked)


@register(
    "rloo",
    params=(),
    gradient_scale=1.0,
    zero_sum=True,
    label="RLOO",
    target=mean_target,
    target_label="mean",
    description="leave-one-out baseline N/(N-1) (r_i - mean)",
)
def rloo(rewards: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
    """REINFORCE leave-one-out: ``a_i = r_i - mean_{j != i} r_j = N/(N-1) (r_i - mean(r))``.

    Equals OrderGrad with K = 1, ``"Mean"``.
    Gradient scale: ``g = (1/N) sum_i a_i grad log p(x_i)`` is unbiased for ``grad E[R]``.
    Sums to zero over each group: yes.

    Args:
      rewards: ``(..., N)`` with ``N >= 2``.
      mask: optional bool ``(..., N)``; groups with fewer than 2 valid items get zeros.

    Returns:
      ``(..., N)``.

    References:
      Kool, van Hoof & Welling, "Buy 4 REINFORCE samples, get a baseline for free!", ICLR DeepRL
      workshop 2019; Ahmadian et al., "Back to basics: revisiting REINFORCE-style optimization
      for learning from human feedback in LLMs", arXiv 2402.14740.
    """
    x, checked = check_group(rewards, mask, "rloo", min_n=2)
    return _mean_baseline_kernel(x, checked, "rloo")


def _grpo_params(eps: float) -> dict[str, float]:
    return {"eps": _checks.nonnegative_float(eps, "eps")}


@register(
    "grpo",
    params=("eps",),
    gradient_scale=1.0,
    zero_sum=True,
    label="GRPO",
    target=mean_target,
    target_label="mean",
    description="(r_i - mean) / (population std + eps)",
    validate=_grpo_params,
)
def grpo(rewards: ArrayLike, mask: ArrayLike | None = None, *, eps: float = 1e-6) -> jax.Array:
    """GRPO group-normalised advantage ``a_i = (r_i - mean(r)) / (std(r) + eps)``.

    ``std`` is the *population* standard deviation of the group, ``sqrt(mean((r - mean)^2))``
    (ddof = 0; implementations that call ``torch.std`` use ddof = 1, larger by
    ``sqrt(N/(N-1))``). A group with ``std + eps = 0`` gets zeros.
    Gradient scale: none is unbiased (the std normalisation reweights groups); the spec's
    ``c = 1``, ``(1/N) sum_i a_i grad log p(x_i)``, is the usual surrogate.
    Sums to zero over each group: yes (up to rounding).

    Args:
      rewards: ``(..., N)``.
      mask: optional bool ``(..., N)``; mean and std are over the valid items only.
      eps: float >= 0 added to the std.

    Returns:
      ``(..., N)``.

    References:
      Shao et al., "DeepSeekMath", arXiv 2402.03300, §4.1.2 (outcome supervision).
    """
    eps = _checks.nonnegative_float(eps, "eps")
    x, checked = check_group(rewards, mask, "grpo")
    return _mean_baseline_kernel(x, checked, "grpo", eps)


@register(
    "dr_grpo",
    params=(),
    gradient_scale=1.0,
    zero_sum=True,
    label="Dr.GRPO",
    target=mean_target,
    target_label="mean",
    aliases=("drgrpo",),
    description="r_i - mean (Dr. GRPO)",
)
def dr_grpo(rewards: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
    """Dr. GRPO advantage ``a_i = r_i - mean(r)`` (GRPO without the std division).

    ``a = ((N-1)/N) rloo(r)``, so ``(1/N) sum_i a_i grad log p`` (the spec's ``c = 1``) is
    unbiased for ``((N-1)/N) grad E[R]`` (the in-group mean is a baseline that depends on ``r_i``).
    Sums to zero over each group: yes.

    Args:
      rewards: ``(..., N)``.
      mask: optional bool ``(..., N)``; the mean is over the valid items only.

    Returns:
      ``(..., N)``.

    References:
      Liu et al., "Understanding R1-Zero-like training: a critical perspective",
      arXiv 2503.20783.
    """
    x, checked = check_group(rewards, mask, "dr_grpo")
    return _mean_baseline_kernel(x, checked, "dr_grpo")
