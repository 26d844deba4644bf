"""Deployment objectives estimated from a group of samples (maths.md §6).

Each works on the last axis of ``x`` (shape ``(..., N)``; leading axes are independent groups):

* :func:`mean`; :func:`pass_at_k` (binary rewards, ``1 - C(N-c, k) / C(N, k)``);
  :func:`max_at_k` and :func:`lstat_at_k` (the U-statistic ``alpha . v`` of maths.md §2). These are
  unbiased for the k-sample objective when the N samples are i.i.d.
* :func:`cvar` and :func:`var`: the lower-tail risk of the return distribution itself (not of a
  k-subset), by the plug-in (empirical-distribution) estimator. They are consistent, not unbiased
  (the bias is O(1/N)); for an unbiased estimate of a finite-k tail objective use
  ``lstat_at_k(x, k, "CVaR:q")``.

Sizes (``k``) are static Python ints; fractions (``alpha``) may be traced, so sweeping them under
``jit``/``vmap`` does not recompile. Masked entries (``mask`` bool ``(..., N)``, True = valid)
take no part whatever their value (NaN included) and a group with n valid entries is an n-group;
a group with too few valid entries (none, or fewer than ``k``) gives 0, as in
:func:`ordergrad_jax.lstat`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ordergrad_jax import _checks
from ordergrad_jax.lstatistic import lstat

__all__ = ["cvar", "lstat_at_k", "max_at_k", "mean", "pass_at_k", "var"]

# alpha * N within this many machine epsilons (relative) of an integer counts as that integer, so
# that alpha = 0.1 and N = 30 give a tail of exactly 3 samples in float32 and float64 alike.
_SNAP_EPS = 16


def _check_batch_broadcast(
    alpha: jax.Array, batch_shape: tuple[int, ...], where: str
) -> tuple[int, ...]:
    try:
        return jnp.broadcast_shapes(alpha.shape, batch_shape)
    except ValueError:
        raise ValueError(
            f"{where}: alpha must be a scalar or broadcast against the batch shape "
            f"{batch_shape} (the rewards' shape without the last axis); got shape "
            f"{alpha.shape}"
        ) from None


# ----------------------------------------------------------------------------------------------
# Kernels (inputs already checked).


def _pairwise_sum(t: jax.Array) -> jax.Array:
    """Sum over the last axis by a balanced tree: rounding error O(log k) eps, not O(k) eps."""
    while t.shape[-1] > 1:
        if t.shape[-1] % 2:
            t = jnp.concatenate([t, jnp.zeros_like(t[..., :1])], axis=-1)
        t = t[..., 0::2] + t[..., 1::2]
    return t[..., 0]


@functools.partial(jax.jit, static_argnames=("k",))
def _pass_at_k(x: jax.Array, mask: jax.Array | None, k: int) -> jax.Array:
    dtype = x.dtype
    if mask is None:
        valid = jnp.ones(x.shape, bool)
        n = jnp.full((*x.shape[:-1], 1), x.shape[-1], dtype)
    else:
        valid = mask
        n = jnp.sum(mask, axis=-1, keepdims=True).astype(dtype)
    binary = jnp.all(~valid | (x == 0) | (x == 1), axis=-1)
    c = jnp.sum(jnp.where(valid, x, 0), axis=-1, keepdims=True)
    # log C(n-c, k)/C(n, k) = sum_{i<k} log((n-c-i)/(n-i)); all integers here are exact in float.
    i = jnp.arange(k, dtype=dtype)
    denom = jnp.maximum(n - i, 1)
    u = jnp.minimum(c / denom, 1)  # fraction of the remaining items that succeed
    ratio = jnp.maximum(n - c - i, 0) / denom
    # log1p is accurate for small u, log for small ratio: each term is within ~1 ulp.
    log_fail = jnp.where(u <= 0.5, jnp.log1p(-u), jnp.log(ratio))
    value = -jnp.expm1(_pairwise_sum(log_fail))  # relative accuracy even for tiny pass@k
    value = jnp.where(n[..., 0] >= k, value, 0)
    return jnp.where(binary, value, jnp.nan)


def _sorted_valid(x: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Ascending sort with masked entries last: (sorted values, valid count (..., 1))."""
    if mask is None:
        return jnp.sort(x, axis=-1), jnp.full((*x.shape[:-1], 1), x.shape[-1], jnp.int32)
    _, xs = lax.sort((~mask, jnp.where(mask, x, 0)), dimension=x.ndim - 1, num_keys=2)
    return xs, jnp.sum(mask, axis=-1, keepdims=True, dtype=jnp.int32)


def _tail_size(alpha: jax.Array, count: jax.Array, dtype: Any) -> jax.Array:
    """``alpha * n`` with near-integers snapped to the integer: ``(..., 1)``."""
    an = alpha[..., None].astype(dtype) * count.astype(dtype)
    nearest = jnp.round(an)
    tol = _SNAP_EPS * jnp.finfo(dtype).eps * jnp.maximum(an, 1)
    return jnp.where(jnp.abs(an - nearest) <= tol, nearest, an)


@jax.jit
def _cvar(x: jax.Array, alpha: jax.Array, mask: jax.Array | None) -> jax.Array:
    xs, count = _sorted_valid(x, mask)
    an = _tail_size(alpha, count, x.dtype)
    # weight of the i-th smallest (0-based): its share of the quantile interval below alpha.
    i = jnp.arange(x.shape[-1], dtype=x.dtype)
    safe_an = jnp.where(an > 0, an, 1)
    w = jnp.clip(an - i, 0, 1) / safe_an
    center = jnp.take_along_axis(xs, jnp.maximum(count - 1, 0) // 2, axis=-1)
    value = jnp.sum(w * (xs - center), axis=-1) + center[..., 0]
    value = jnp.where(count[..., 0] > 0, value, 0)
    return jnp.where((alpha > 0) & (alpha <= 1), value, jnp.nan)


@jax.jit
def _var(x: jax.Array, alpha: jax.Array, mask: jax.Array | None) -> jax.Array:
    xs, count = _sorted_valid(x, mask)
    an = _tail_size(alpha, count, x.dtype)
    index = jnp.clip(jnp.ceil(an).astype(jnp.int32) - 1, 0, jnp.maximum(count - 1, 0))
    xs = jnp.broadcast_to(xs, index.shape[:-1] + xs.shape[-1:])
    value = jnp.take_along_axis(xs, index, axis=-1)[..., 0]
    value = jnp.where(count[..., 0] > 0, value, 0)
    return jnp.where((alpha > 0) & (alpha <= 1), value, jnp.nan)


# ----------------------------------------------------------------------------------------------
# Deployment objectives (maths.md §6).


def mean(x: jax.typing.ArrayLike, mask: jax.typing.ArrayLike | None = None) -> jax.Array:
    """The sample mean of each group: unbiased for ``E[R]``.

    ``mean = (1/n) sum_{i valid} x_i`` (n = number of valid entries).

    Args:
      x: rewards ``(..., N)``.
      mask: optional bool ``(..., N)``, True = valid; a group with no valid entry gives 0.

    Returns:
      ``(...)``.
    """
    x = _checks.as_rewards(x, "mean")
    mask = _checks.check_mask(mask, x.shape, "mean")
    if mask is None:
        return jnp.mean(x, axis=-1)
    count = jnp.sum(mask, axis=-1)
    total = jnp.sum(jnp.where(mask, x, 0), axis=-1)
    return jnp.where(count > 0, total / jnp.maximum(count, 1).astype(x.dtype), 0)


def pass_at_k(
    x: jax.typing.ArrayLike, k: int, mask: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Unbiased pass@k of binary rewards: P(at least one of k i.i.d. samples succeeds).

    ``pass@k = 1 - C(n-c, k) / C(n, k)`` with c successes among n samples (Chen et al. 2021), the
    U-statistic of ``max`` over k-subsets, so it equals ``max_at_k`` on 0/1 rewards. Computed as
    ``-expm1(sum_{i<k} log((n-c-i)/(n-i)))`` with a pairwise sum: no binomial is formed (no
    overflow for any n), and small values keep their relative accuracy.

    Args:
      x: binary rewards ``(..., N)``, 0 = fail, 1 = success (bool or numeric). Concrete inputs with
        another value raise ValueError; traced ones give NaN for that group.
      k: number of attempts (static int, ``1 <= k <= N``).
      mask: optional bool ``(..., N)``, True = valid; groups with fewer than k valid entries
        give 0.

    Returns:
      ``(...)``, in ``[0, 1]``.

    References:
      Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. (1); maths.md §6.
    """
    x = _checks.as_rewards(x, "pass_at_k")
    k = _checks.check_k(k, x.shape[-1], "pass_at_k")
    mask = _checks.check_mask(mask, x.shape, "pass_at_k")
    concrete = _checks.concrete(x)
    valid = np.True_ if mask is None else _checks.concrete(mask)
    if concrete is not None and valid is not None:
        bad = valid & (concrete != 0) & (concrete != 1)
        if np.any(bad):
            raise ValueError(
                f"pass_at_k: rewards must be binary (0 = fail, 1 = success); got "
                f"the value {concrete[bad].flat[0]}. For real-valued rewards use "
                f"max_at_k"
            )
    return _pass_at_k(x, mask, k)


def max_at_k(
    x: jax.typing.ArrayLike, k: int, mask: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Unbiased max@k: the expected best of k i.i.d. samples (``E[R_(k:k)]``).

    The U-statistic ``sum_m x_(m) C(m-1, k-1) / C(N, k)`` (maths.md §2 with ``"ReMax"``): the mean
    of ``max`` over all k-subsets of the group. With 0/1 rewards it is pass@k.

    Args:
      x: rewards ``(..., N)``.
      k: static int, ``1 <= k <= N``.
      mask: optional bool ``(..., N)``; groups with fewer than k valid entries give 0.

    Returns:
      ``(...)``.
    """
    return lstat_at_k(x, k, "ReMax", mask=mask)


def lstat_at_k(
    x: jax.typing.ArrayLike, k: int, objective: Any, mask: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Unbiased estimate of any L-statistic objective ``J = sum_j alpha_j E[R_(j:k)]``.

    The U-statistic ``alpha . v`` with ``v = sort(x) @ W`` (maths.md §2): the mean of
    ``alpha . sort(x_S)`` over all k-subsets S. Same as :func:`ordergrad_jax.lstat`.

    Args:
      x: rewards ``(..., N)``.
      k: static int, ``1 <= k <= N``.
      objective: preset string (maths.md §4), Objective, or ``(k,)`` ascending weights.
      mask: optional bool ``(..., N)``; groups with fewer than k valid entries give 0.

    Returns:
      ``(...)``.
    """
    x = _checks.as_rewards(x, "lstat_at_k")
    k = _checks.check_k(k, x.shape[-1], "lstat_at_k")
    return lstat(x, k, objective, mask=mask)


def cvar(
    x: jax.typing.ArrayLike, alpha: jax.typing.ArrayLike, mask: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Conditional value at risk: the mean of the lower alpha tail of the returns (plug-in).

    The CVaR of the empirical distribution of the n valid samples,
    ``CVaR_alpha = (1/alpha) int_0^alpha F_n^{-1}(u) du
    = (1/(alpha n)) [sum_{i <= m} x_(i) + (alpha n - m) x_(m+1)]``, ``m = floor(alpha n)``:
    the lowest m order statistics in full and a fractional weight on the boundary one. It equals
    the Rockafellar-Uryasev form ``max_t { t - E_n[(t - X)_+] / alpha }``, attained at
    ``t = var(x, alpha)``. alpha = 1 gives the mean; ``alpha n <= 1`` gives the minimum.
    Consistent (bias O(1/n)), continuous in alpha; ``alpha n`` within ``16 eps`` (relative) of
    an integer is taken as that integer.

    Rewards: higher is better, so this is the bad tail; for costs pass ``-cost`` (maths.md §0).

    Args:
      x: returns ``(..., N)``.
      alpha: tail fraction in ``(0, 1]``: a scalar or an array broadcasting against ``(...)``
        (may be traced; out-of-range traced values give NaN).
      mask: optional bool ``(..., N)``; a group with no valid entry gives 0.

    Returns:
      ``broadcast((...), alpha.shape)``.

    References:
      Rockafellar & Uryasev 2000, "Optimization of conditional value-at-risk"; Acerbi & Tasche
      2002, "On the coherence of expected shortfall", eq. (3.2).
    """
    x = _checks.as_rewards(x, "cvar")
    alpha = _checks.check_fraction(alpha, "cvar", "alpha", low_open=True, high=1.0)
    _check_batch_broadcast(alpha, x.shape[:-1], "cvar")
    mask = _checks.check_mask(mask, x.shape, "cvar")
    return _cvar(x, alpha.astype(x.dtype), mask)


def var(
    x: jax.typing.ArrayLike, alpha: jax.typing.ArrayLike, mask: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Value at risk: the empirical lower alpha-quantile of the returns.

    ``VaR_alpha = F_n^{-1}(alpha) = inf{t : F_n(t) >= alpha} = x_(ceil(alpha n))`` (the inverse
    empirical CDF, Hyndman-Fan type 1; ``alpha n <= 1`` gives the minimum), so that
    ``cvar = var - mean((var - x)_+) / alpha`` holds exactly. ``alpha n`` within ``16 eps``
    (relative) of an integer is taken as that integer. (The ``"VaR:q"`` preset of maths.md §4 is a
    different quantity: the Hazen-interpolated quantile of k-subsets, via :func:`lstat_at_k`.)

    Args:
      x: returns ``(..., N)``.
      alpha: quantile level in ``(0, 1]``: a scalar or an array broadcasting against ``(...)``
        (may be traced; out-of-range traced values give NaN).
      mask: optional bool ``(..., N)``; a group with no valid entry gives 0.

    Returns:
      ``broadcast((...), alpha.shape)``.
    """
    x = _checks.as_rewards(x, "var")
    alpha = _checks.check_fraction(alpha, "var", "alpha", low_open=True, high=1.0)
    _check_batch_broadcast(alpha, x.shape[:-1], "var")
    mask = _checks.check_mask(mask, x.shape, "var")
    return _var(x, alpha.astype(x.dtype), mask)
