"""Evaluation metrics: estimate the deployment objective, and diagnose gradient estimators.

Deployment objectives (maths.md §6), estimated from a group of N samples on the last axis of ``x``
(shape ``(..., N)``; leading axes are independent groups):

* :func:`mean`; :func:`pass_at_k` (binary rewards, ``1 - C(N-c, k) / C(N, k)``);
  :func:`max_at_k` and :func:`lstat_at_k` (the U-statistic ``alpha . v`` of maths.md §2). These are
  unbiased for the k-sample objective when the N samples are i.i.d.
* :func:`cvar` and :func:`var`: the lower-tail risk of the return distribution itself (not of a
  k-subset), by the plug-in (empirical-distribution) estimator. They are consistent, not unbiased
  (the bias is O(1/N)); for an unbiased estimate of a finite-k tail objective use
  ``lstat_at_k(x, k, "CVaR:q")``.

Sizes (``k``) are static Python ints; fractions (``alpha``, ``atol``) may be traced, so sweeping
them under ``jit``/``vmap`` does not recompile. Where a metric takes ``mask`` (bool ``(..., N)``,
True = valid), masked entries take no part whatever their value (NaN included) and a group with n
valid entries is an n-group; a group with too few valid entries (none, or fewer than ``k``) gives
0, as in :func:`ordergrad_jax.lstat`.

Gradient diagnostics take a stack of S gradient samples ``g`` of shape ``(S, ...)``, or a pytree
whose leaves all have the leading sample axis S: :func:`total_variance`, :func:`snr`,
:func:`snr_true_gradient`. Advantage diagnostics: :func:`zero_advantage_fraction`,
:func:`effective_weight`, :func:`effective_sample_size`.

Bad static inputs (ranks, sizes, dtypes, concrete out-of-range values) raise ``TypeError`` or
``ValueError`` at trace time; traced values that are out of range (a non-binary reward in
:func:`pass_at_k`, an ``alpha`` outside ``(0, 1]``) give NaN for the groups they touch.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ordergrad_jax import batch as _batch
from ordergrad_jax import objectives as _obj

__all__ = [
    "cvar",
    "effective_sample_size",
    "effective_weight",
    "lstat_at_k",
    "max_at_k",
    "mean",
    "pass_at_k",
    "snr",
    "snr_true_gradient",
    "total_variance",
    "var",
    "zero_advantage_fraction",
]

# alpha * N within this many machine epsilons (relative) of an integer counts as that integer, so
# that alpha = 0.1 and N = 30 give a tail of exactly 3 samples in float32 and float64 alike.
_SNAP_EPS = 16


# ----------------------------------------------------------------------------------------------
# Boundary checks (trace time).


def _concrete(value: Any) -> np.ndarray | None:
    """The value as a NumPy array, or None when it is traced."""
    try:
        return np.asarray(value)
    except jax.errors.TracerArrayConversionError:
        return None


def _check_k(k: Any, n: int, where: str) -> int:
    try:
        k = _obj._check_k(k)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None
    if k > n:
        raise ValueError(
            f"{where}: k={k} is larger than the group size N={n}; an unbiased "
            f"estimate from N samples needs 1 <= k <= N"
        )
    return k


def _check_fraction(value: Any, where: str, name: str, *, low_open: bool, high: float | None):
    """A real scalar/array parameter; concrete values are range-checked here."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{where}: {name} must be a real number or array, got {value!r}")
    arr = jnp.asarray(value)
    if arr.dtype == jnp.bool_ or not (
        jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
    ):
        raise TypeError(f"{where}: {name} must be a real number or array, got dtype {arr.dtype}")
    concrete = _concrete(value)
    if concrete is not None:
        concrete = concrete.astype(np.float64)
        low_ok = concrete > 0 if low_open else concrete >= 0
        high_ok = concrete <= high if high is not None else np.isfinite(concrete)
        if not np.all(low_ok & high_ok):
            bad = concrete[~(low_ok & high_ok)].flat[0]
            allowed = "0 < {0} <= 1" if low_open else "{0} >= 0 (finite)"
            raise ValueError(f"{where}: {name} must satisfy {allowed.format(name)}; got {bad}")
    return arr


def _check_batch_broadcast(alpha: jax.Array, batch_shape: tuple[int, ...], where: str):
    try:
        return jnp.broadcast_shapes(alpha.shape, batch_shape)
    except ValueError:
        raise ValueError(
            f"{where}: alpha must be a scalar or broadcast against the batch shape "
            f"{batch_shape} (the rewards' shape without the last axis); got shape "
            f"{alpha.shape}"
        ) from None


def _gradient_leaves(g: Any, where: str) -> tuple[list[jax.Array], int]:
    """The leaves of a gradient stack, checked: real arrays sharing a leading axis S >= 2."""
    leaves = jax.tree.leaves(g)
    if not leaves:
        raise ValueError(
            f"{where}: g must be an array (S, ...) or a pytree of such arrays; got an empty pytree"
        )
    arrays = []
    for leaf in leaves:
        a = _batch._as_real_float(leaf, where, "gradients")
        if a.ndim < 1:
            raise ValueError(
                f"{where}: every leaf of g needs a leading sample axis, shape "
                f"(S, ...); got a rank-0 leaf"
            )
        arrays.append(a)
    sizes = sorted({a.shape[0] for a in arrays})
    if len(sizes) > 1:
        raise ValueError(
            f"{where}: all leaves of g must share the leading sample axis S; got sizes {sizes}"
        )
    if sizes[0] < 2:
        raise ValueError(
            f"{where}: the unbiased variance needs S >= 2 gradient samples on the "
            f"leading axis; got S={sizes[0]}"
        )
    return arrays, sizes[0]


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


def _sorted_valid(x: jax.Array, mask: jax.Array | None):
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
    x = _batch._as_rewards(x, "mean")
    mask = _batch._check_mask(mask, x.shape, "mean")
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
    x = _batch._as_rewards(x, "pass_at_k")
    k = _check_k(k, x.shape[-1], "pass_at_k")
    mask = _batch._check_mask(mask, x.shape, "pass_at_k")
    concrete = _concrete(x)
    valid = np.True_ if mask is None else _concrete(mask)
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
    x = _batch._as_rewards(x, "lstat_at_k")
    k = _check_k(k, x.shape[-1], "lstat_at_k")
    return _batch.lstat(x, k, objective, mask=mask)


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
    x = _batch._as_rewards(x, "cvar")
    alpha = _check_fraction(alpha, "cvar", "alpha", low_open=True, high=1.0)
    _check_batch_broadcast(alpha, x.shape[:-1], "cvar")
    mask = _batch._check_mask(mask, x.shape, "cvar")
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
    x = _batch._as_rewards(x, "var")
    alpha = _check_fraction(alpha, "var", "alpha", low_open=True, high=1.0)
    _check_batch_broadcast(alpha, x.shape[:-1], "var")
    mask = _batch._check_mask(mask, x.shape, "var")
    return _var(x, alpha.astype(x.dtype), mask)


# ----------------------------------------------------------------------------------------------
# Gradient diagnostics.


def total_variance(g: Any) -> jax.Array:
    """The total variance ``tr Var[g]`` of a gradient estimator from S samples of it.

    ``tr Var[g] = sum_p (1/(S-1)) sum_s (g_sp - mean_s g_sp)^2``: the unbiased per-coordinate
    variance across the samples, summed over all coordinates p of all leaves.

    Args:
      g: an array ``(S, ...)`` or a pytree of arrays sharing the leading sample axis S >= 2.

    Returns:
      scalar.
    """
    leaves, _ = _gradient_leaves(g, "total_variance")
    return _total_variance(leaves)


def _total_variance(leaves: list[jax.Array]) -> jax.Array:
    dtype = jnp.result_type(*leaves)
    return sum(jnp.sum(jnp.var(a, axis=0, ddof=1)).astype(dtype) for a in leaves)


def _squared_norm_of_mean(leaves: list[jax.Array]) -> jax.Array:
    dtype = jnp.result_type(*leaves)
    return sum(jnp.sum(jnp.square(jnp.mean(a, axis=0))).astype(dtype) for a in leaves)


def snr(g: Any, *, debias: bool = False) -> jax.Array:
    """Signal-to-noise ratio of a gradient estimator: ``|E g|^2 / tr Var[g]``, from S samples.

    ``snr = |mean_s g_s|^2 / total_variance(g)``. The plug-in numerator is biased upwards:
    ``E|mean_s g_s|^2 = |E g|^2 + tr Var[g] / S``; with ``debias=True`` the numerator is
    ``|mean_s g_s|^2 - total_variance(g) / S`` (unbiased, may be negative).
    A zero total variance gives ``inf`` (or NaN if the numerator is 0 too).

    Args:
      g: an array ``(S, ...)`` or a pytree of arrays sharing the leading sample axis S >= 2.
      debias: subtract the ``tr Var / S`` bias from the numerator.

    Returns:
      scalar.
    """
    leaves, s = _gradient_leaves(g, "snr")
    total = _total_variance(leaves)
    signal = _squared_norm_of_mean(leaves)
    if debias:
        signal = signal - total / s
    return signal / total


def snr_true_gradient(g: Any, g_true: Any) -> jax.Array:
    """Signal-to-noise ratio against a known true gradient: ``|g_true|^2 / tr Var[g]``.

    Use it when the exact gradient of the objective is known (e.g. the exact regime, maths.md §3),
    so the signal carries no sampling error.

    Args:
      g: an array ``(S, ...)`` or a pytree of arrays sharing the leading sample axis S >= 2.
      g_true: the true gradient: the same pytree structure as ``g``, each leaf of shape
        ``leaf.shape[1:]``.

    Returns:
      scalar.
    """
    leaves, _ = _gradient_leaves(g, "snr_true_gradient")
    if jax.tree.structure(g_true) != jax.tree.structure(g):
        raise ValueError(
            f"snr_true_gradient: g_true must have the pytree structure of g; got "
            f"{jax.tree.structure(g_true)} for g {jax.tree.structure(g)}"
        )
    true_leaves = [jnp.asarray(t) for t in jax.tree.leaves(g_true)]
    for a, t in zip(leaves, true_leaves, strict=True):
        if t.shape != a.shape[1:]:
            raise ValueError(
                f"snr_true_gradient: each leaf of g_true must have the shape of a "
                f"gradient sample, {a.shape[1:]} (g's leaf {a.shape} without the "
                f"sample axis); got {t.shape}"
            )
    dtype = jnp.result_type(*leaves)
    signal = sum(jnp.sum(jnp.square(t.astype(dtype))) for t in true_leaves)
    return signal / _total_variance(leaves)


# ----------------------------------------------------------------------------------------------
# Advantage diagnostics.


def _as_advantages(adv: Any, mask: Any, where: str):
    adv = _batch._as_rewards(adv, where)
    return adv, _batch._check_mask(mask, adv.shape, where)


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
    atol = _check_fraction(atol, "zero_advantage_fraction", "atol", low_open=False, high=None)
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
