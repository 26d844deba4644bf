"""OrderGrad: the L-statistic advantage of maths.md §2 as a registered estimator."""

from __future__ import annotations

from typing import Any

import jax
from jax.typing import ArrayLike

from ordergrad_jax import _checks, lstatistic
from ordergrad_jax.estimators._common import subset_size_scale
from ordergrad_jax.estimators.registry import register
from ordergrad_jax.metrics import returns as metrics

__all__ = ["ordergrad"]


def _params(k: Any, objective: Any, method: Any) -> dict[str, Any]:
    k = _checks.static_int(k, "k")
    if method not in lstatistic.METHODS:
        raise ValueError(f"method must be one of {lstatistic.METHODS}; got {method!r}")
    lstatistic.objective_weights(objective, k)
    return {"k": k, "objective": objective, "method": method}


def _target(returns: ArrayLike, *, k: int, objective: Any, method: str = "auto") -> jax.Array:
    """The L-statistic ``J = sum_j alpha_j E[R_(j:K)]`` estimated from i.i.d. returns
    ``(..., E) -> (...)``: the U-statistic :func:`ordergrad_jax.metrics.lstat_at_k`
    (maths.md §2)."""
    return metrics.lstat_at_k(returns, k, objective)


@register(
    "ordergrad",
    params=("k", "objective", "method"),
    gradient_scale=subset_size_scale,
    zero_sum=True,
    label="OrderGrad {objective}@{k}",
    target=_target,
    target_label="{objective}@{k}",
    description="OrderGrad L-statistic advantages alpha.(q_i - loo_i) (params k, objective)",
    validate=_params,
)
def ordergrad(
    rewards: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    k: int,
    objective: Any,
    method: str = "auto",
) -> jax.Array:
    """OrderGrad LR advantages for the L-statistic ``J = sum_j alpha_j E[R_(j:K)]`` (maths.md §2).

    ``a_i = alpha . q_i - alpha . loo_i = N/(N-K) (alpha . q_i - alpha . v)``: the include-one
    value of item i minus the leave-one-out U-statistic of the others
    (:func:`ordergrad_jax.lstat_advantage`). K = 1 with ``"Mean"`` is RLOO; ``"ReMax"`` is max@K
    (pass@K on 0/1 rewards) and equals :func:`maxpo`.

    Gradient scale: ``g = (K/N) sum_i a_i grad log p(x_i)`` is unbiased for ``grad J``.
    Sums to zero over each group: yes.

    Args:
      rewards: ``(..., N)``.
      mask: optional bool ``(..., N)``; groups with ``n <= k`` valid items get zeros.
      k: subset size K (static int, ``1 <= k <= N - 1``).
      objective: preset string, Objective, or ``(k,)`` ascending weights (maths.md §4).
      method: ``"auto"``, ``"sort"`` or ``"pairwise"`` (see :func:`ordergrad_jax.lstat_advantage`).

    Returns:
      ``(..., N)`` advantages in item order.

    References:
      Parmas et al., "OrderGrad", arXiv 2606.06096.
    """
    k = _checks.static_int(k, "ordergrad: k")
    return lstatistic.lstat_advantage(rewards, k, objective, mask=mask, method=method)
