"""How a rank transform becomes a policy gradient (maths.md §5).

* LR (score function): ``g = (K/N) sum_i a_i grad log p(x_i)`` with the OrderGrad advantages
  ``a = lstat_advantage(x, k, objective)``; :func:`lr_loss` is a surrogate whose gradient is it.
* RP (pathwise): ``g = grad_theta lstat(x(theta))``: differentiate
  :func:`ordergrad_jax.lstat` through the reparameterised samples.

Both are unbiased for ``J = sum_j alpha_j E[R_(j:K)]`` when the N samples of a group are i.i.d.
from the current policy; PPO clipping, KL terms, std-normalisation or off-policy data break that.

The estimator zoo (maths.md §5) puts OrderGrad beside the estimators it is compared with, behind one
signature: ``get(name, **params)`` returns ``fn(rewards (..., N), mask=None) -> (..., N)``, and
:func:`available` lists the names: ``ordergrad``, ``reinforce``, ``rloo``, ``grpo``, ``dr_grpo``,
``pkpo``, ``maxpo``, ``passk_chen``, ``cvar_pg``. Each docstring gives the formula, the factor
that turns ``sum_i a_i grad log p(x_i)`` into the paper's gradient estimate, and whether the
advantages sum to zero over a group.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike
from scipy import special

from ordergrad_jax import batch as _batch

__all__ = [
    "PKPO_VARIANTS",
    "available",
    "cvar_pg",
    "dr_grpo",
    "get",
    "grpo",
    "lr_loss",
    "maxpo",
    "ordergrad",
    "passk_chen",
    "pkpo",
    "reinforce",
    "rloo",
]


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
    adv = jax.lax.stop_gradient(
        _batch.lstat_advantage(jax.lax.stop_gradient(x), k, objective, mask=mask)
    )
    if mask is None:
        count = x.shape[-1]
    else:
        count = jnp.maximum(jnp.sum(mask, axis=-1), 1).astype(adv.dtype)
        logp = jnp.where(mask, logp, 0)
    per_group = -(k / count) * jnp.sum(adv * logp, axis=-1)
    return jnp.mean(per_group)


# ----------------------------------------------------------------------------------------------
# The estimator zoo (maths.md §5, "Comparison advantages"): one signature for every estimator,
# ``get(name, **params) -> fn(rewards (..., N), mask=None) -> advantages (..., N)``.
#
# Every function works on the last axis with any leading batch axes, takes static Python params
# (sizes, names, fractions), and is jit/vmap friendly. ``mask`` (bool, True = valid) is supported
# by all of them: masked entries take no part whatever their value (NaN included) and get 0; a
# group of n valid items is an n-group. The static group size N must satisfy each estimator's
# size rule (as in :mod:`ordergrad_jax.batch`); a masked group whose n valid items are too few
# for the estimator gets all zeros.
#
# What multiplies sum_i a_i grad log p(x_i) to give the paper's gradient estimate ("gradient
# scale" in each docstring) differs between estimators; it is stated in each docstring.

_ROUND_TOL = 1e-9  # fractions times a count are rounded with this tolerance (maths.md §4)

PKPO_VARIANTS = ("s", "s_loo", "s_loo_minus_one")
_PKPO_ALIASES = {
    "s_loo-1": "s_loo_minus_one",
    "sloo": "s_loo",
    "sloo_minus_one": "s_loo_minus_one",
    "s_loo_m1": "s_loo_minus_one",
}


# Boundary checks of the parameters (at get() time and again at trace time).


def _int_param(value: Any, what: str = "k", minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"{what} must be a Python int >= {minimum} (a static size); got "
            f"{value!r} of type {type(value).__name__}"
        )
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}; got {value}")
    return int(value)


def _alpha_param(alpha: Any) -> float:
    try:
        alpha = float(alpha)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError(
            f"alpha must be a Python float in (0, 1] (a static tail fraction); got {alpha!r}"
        ) from None
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1] (the lower-tail fraction); got {alpha!r}")
    return alpha


def _eps_param(eps: Any) -> float:
    try:
        eps = float(eps)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError(f"eps must be a Python float >= 0; got {eps!r}") from None
    if not (np.isfinite(eps) and eps >= 0.0):
        raise ValueError(f"eps must be a finite float >= 0; got {eps!r}")
    return eps


def _variant_param(variant: Any) -> str:
    key = str(variant).lower() if isinstance(variant, str) else None
    key = _PKPO_ALIASES.get(key, key)
    if key not in PKPO_VARIANTS:
        raise ValueError(
            f"unknown PKPO variant {variant!r}; allowed: {', '.join(PKPO_VARIANTS)} "
            f"(aliases: {', '.join(sorted(_PKPO_ALIASES))})"
        )
    return key


def _bool_param(value: Any, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be True or False; got {value!r}")
    return bool(value)


def _check_group(rewards: Any, mask: Any, where: str, min_n: int = 1):
    """Rewards as a float array ``(..., N)`` and the checked mask; ``N >= min_n`` (static)."""
    x = _batch._as_rewards(rewards, where)
    mask = _batch._check_mask(mask, x.shape, where)
    if x.shape[-1] < min_n:
        raise ValueError(
            f"{where}: needs a group of N >= {min_n} on the last axis; got N={x.shape[-1]}"
        )
    return x, mask


def _valid_and_count(x: jax.Array, mask: jax.Array | None):
    """(valid (..., N) bool, count (..., 1) int32, rewards with invalid entries set to 0)."""
    if mask is None:
        valid = jnp.ones(x.shape, bool)
        return valid, jnp.full((*x.shape[:-1], 1), x.shape[-1], jnp.int32), x
    count = jnp.sum(mask, axis=-1, keepdims=True, dtype=jnp.int32)
    return mask, count, jnp.where(mask, x, 0)


def _group_mean(xz: jax.Array, count: jax.Array) -> jax.Array:
    return jnp.sum(xz, axis=-1, keepdims=True) / jnp.maximum(count, 1).astype(xz.dtype)


# Host-side float64 binomial ratios (C(n, r) = 0 when r < 0, r > n or n < 0; maths.md §0).


def _log_comb(n: Any, r: Any) -> np.ndarray:
    n, r = np.broadcast_arrays(np.asarray(n, np.float64), np.asarray(r, np.float64))
    ok = (r >= 0) & (r <= n)
    out = np.full(n.shape, -np.inf)
    out[ok] = (
        special.gammaln(n[ok] + 1) - special.gammaln(r[ok] + 1) - special.gammaln(n[ok] - r[ok] + 1)
    )
    return out


def _comb_ratio(n: Any, r: Any, n0: int, r0: int) -> np.ndarray:
    """``C(n, r) / C(n0, r0)`` elementwise, float64; ``C(n0, r0)`` must be positive."""
    return np.exp(_log_comb(n, r) - _log_comb(n0, r0))


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.setflags(write=False)
    return arrays


# PKPO tables: at sorted position t (1-based) of a group of n,
# y_t = sum_{m<t} below_m x_(m) + own_t x_(t) + sum_{m>t} above_m x_(m).


def _pkpo_min_n(k: int, variant: str) -> int:
    return k + 1 if variant == "s_loo" else k


def _pkpo_vectors_uncached(n: int, k: int, variant: str) -> tuple[np.ndarray, ...]:
    m = np.arange(1, n + 1)
    own = _comb_ratio(m - 1, k - 1, n, k)  # C(t-1, k-1) / C(n, k): subsets where t is the max
    zero = np.zeros(n)
    if variant == "s":
        return zero, own, _comb_ratio(m - 2, k - 2, n, k)
    if variant == "s_loo":
        # minus (k/n) x the max@k U-statistic of the n-1 others (ranks above t shift down one)
        below = -(k / n) * _comb_ratio(m - 1, k - 1, n - 1, k)
        above = _comb_ratio(m - 2, k - 2, n, k) - (k / n) * _comb_ratio(m - 2, k - 1, n - 1, k)
        return below, own, above
    # s_loo_minus_one: minus (k/n) x the max@(k-1) U-statistic of the others; the terms above t
    # cancel exactly ((k/n) / C(n-1, k-1) = 1 / C(n, k)), leaving sum_{m<t} C(m-1, k-2)/C(n, k).
    return -_comb_ratio(m - 1, k - 2, n, k), own, zero


@functools.lru_cache(maxsize=256)
def _pkpo_vectors(n: int, k: int, variant: str) -> tuple[np.ndarray, ...]:
    return _read_only(*_pkpo_vectors_uncached(n, k, variant))


@functools.lru_cache(maxsize=32)
def _pkpo_by_count(n_max: int, k: int, variant: str) -> tuple[np.ndarray, ...]:
    """The vectors for every valid count 0..n_max, zero-padded: three ``(n_max + 1, n_max)``."""
    out = tuple(np.zeros((n_max + 1, n_max)) for _ in range(3))
    for count in range(_pkpo_min_n(k, variant), n_max + 1):  # host precompute over table rows
        for dst, src in zip(out, _pkpo_vectors_uncached(count, k, variant), strict=True):
            dst[count, :count] = src
    return _read_only(*out)


# MaxPO table: c[u] = P(max of a uniform (k-1)-subset of the n-2 others <= the u-th smallest
# of the group | the two left-out items straddle it) = C(u-1, k-1) / C(n-2, k-1), u = 0..n.


def _l2o_cdf_uncached(n: int, k: int) -> np.ndarray:
    return _comb_ratio(np.arange(n + 1) - 1, k - 1, n - 2, k - 1)


@functools.lru_cache(maxsize=256)
def _l2o_cdf(n: int, k: int) -> np.ndarray:
    return _read_only(_l2o_cdf_uncached(n, k))[0]


@functools.lru_cache(maxsize=32)
def _l2o_cdf_by_count(n_max: int, k: int) -> np.ndarray:
    out = np.zeros((n_max + 1, n_max + 1))
    for count in range(k + 1, n_max + 1):  # host precompute over table rows
        out[count, : count + 1] = _l2o_cdf_uncached(count, k)
    return _read_only(out)[0]


@functools.lru_cache(maxsize=256)
def _quantile_positions(n_max: int, alpha: float) -> np.ndarray:
    """0-based sorted position ``ceil(alpha n) - 1`` of the alpha-quantile for n = 0..n_max."""
    n = np.arange(n_max + 1)
    pos = np.clip(np.ceil(alpha * n - _ROUND_TOL), 1, np.maximum(n, 1)) - 1
    return _read_only(pos.astype(np.int32))[0]


# Kernels (inputs checked). Jitted so that eager calls compile once per shape and parameters.


@jax.jit
def _reinforce_kernel(x, mask):
    return x if mask is None else jnp.where(mask, x, 0)


@functools.partial(jax.jit, static_argnames=("kind", "eps"))
def _mean_baseline_kernel(x, mask, kind: str, eps: float = 0.0):
    valid, count, xz = _valid_and_count(x, mask)
    centred = jnp.where(valid, xz - _group_mean(xz, count), 0)
    countf = count.astype(x.dtype)
    if kind == "dr_grpo":
        return centred
    if kind == "rloo":
        return jnp.where(count > 1, countf / jnp.maximum(countf - 1, 1) * centred, 0)
    # grpo: population standard deviation of the valid rewards
    std = jnp.sqrt(jnp.sum(centred * centred, axis=-1, keepdims=True) / jnp.maximum(countf, 1))
    scale = std + eps
    return jnp.where(scale > 0, centred / jnp.where(scale > 0, scale, 1), 0)


@functools.partial(jax.jit, static_argnames=("k", "variant"))
def _pkpo_kernel(x, mask, k: int, variant: str):
    n = x.shape[-1]
    if mask is None:
        below, own, above = (jnp.asarray(v, x.dtype) for v in _pkpo_vectors(n, k, variant))
        xs, perm, _ = _batch._sort_with_index(x)
        center = _batch._middle(xs)
        y = _batch._scan(xs - center, below, own, above)
        if variant == "s":  # the only variant that is not shift-invariant: s(x + b) = s(x) + bk/n
            y = y + center * (k / n)
        return _batch._unsort(y, perm)
    count = jnp.sum(mask, axis=-1, keepdims=True, dtype=jnp.int32)
    below, own, above = (
        jnp.take(jnp.asarray(t, x.dtype), count[..., 0], axis=0)
        for t in _pkpo_by_count(n, k, variant)
    )
    xs, perm, _ = _batch._sort_with_index(jnp.where(mask, x, 0), ~mask)
    valid_s = lax.broadcasted_iota(jnp.int32, xs.shape, xs.ndim - 1) < count
    center = _batch._middle(xs, count)
    y = _batch._scan(jnp.where(valid_s, xs - center, 0), below, own, above)
    if variant == "s":
        y = y + center * (k / jnp.maximum(count, 1).astype(x.dtype))
    defined = valid_s & (count >= _pkpo_min_n(k, variant))
    return _batch._unsort(jnp.where(defined, y, 0), perm)


@functools.partial(jax.jit, static_argnames=("k",))
def _maxpo_kernel(x, mask, k: int):
    n = x.shape[-1]
    valid, count, xz = _valid_and_count(x, mask)
    xc = jnp.where(valid, xz - _group_mean(xz, count), 0)  # G is shift-invariant; centre for f32
    idx = jnp.arange(n)
    # lt[..., i, m]: valid item m ranks below item i (stable: ties go to the lower index).
    lt = valid[..., None, :] & (
        (xz[..., None, :] < xz[..., :, None])
        | ((xz[..., None, :] == xz[..., :, None]) & (idx[None, :] < idx[:, None]))
    )
    rank = jnp.sum(lt, axis=-1)  # 0-based rank among the valid items
    if mask is None:
        cdf = jnp.asarray(_l2o_cdf(n, k), x.dtype)
        c_own, c_next = jnp.take(cdf, rank), jnp.take(cdf, rank + 1)
    else:
        rows = jnp.take(jnp.asarray(_l2o_cdf_by_count(n, k), x.dtype), count[..., 0], axis=0)
        c_own = jnp.take_along_axis(rows, rank, axis=-1)
        c_next = jnp.take_along_axis(rows, rank + 1, axis=-1)
    # G(t) = sum_{u<t} (x_(u+1) - x_(u)) c_u, summed by parts so that no sort is needed.
    g = xc * c_own + jnp.einsum("...im,...m->...i", lt.astype(x.dtype), xc * (c_own - c_next))
    g = jnp.where(valid, g, 0)
    countf = count.astype(x.dtype)
    adv = countf / jnp.maximum(countf - 1, 1) * (g - _group_mean(g, count))
    return jnp.where(valid & (count > k), adv, 0)


def _survival_ratio(a: jax.Array, b: jax.Array, terms: int) -> jax.Array:
    """``C(a, terms) / C(b, terms) = prod_{j<terms} (a - j) / (b - j)`` for ``b >= terms``.

    Zero when ``a < terms`` (a factor is 0); 1 for ``terms = 0``. ``a``, ``b`` are float counts.
    """
    if terms == 0:
        return jnp.ones_like(a)
    j = jnp.arange(terms, dtype=a.dtype)
    num = jnp.maximum(a - j, 0)
    den = jnp.maximum(b - j, 1)  # only hit when b < terms, where the caller discards the value
    return jnp.prod(num / den, axis=-1, keepdims=True)


@functools.partial(jax.jit, static_argnames=("k", "normalize"))
def _passk_chen_kernel(x, mask, k: int, normalize: bool):
    valid, count, xz = _valid_and_count(x, mask)
    correct = valid & (xz > 0.5)
    n = count.astype(x.dtype)
    c = jnp.sum(correct, axis=-1, keepdims=True).astype(x.dtype)
    pass_k = 1 - _survival_ratio(n - c, n, k)  # unbiased pass@k of the group
    pass_incorrect = 1 - _survival_ratio(n - c - 1, n - 1, k - 1)  # include-one, wrong sample
    numerator = jnp.where(correct, 1 - pass_k, pass_incorrect - pass_k)
    if normalize:
        std = jnp.sqrt(jnp.maximum(pass_k * (1 - pass_k), 0))
        numerator = jnp.where(std > 0, numerator / jnp.where(std > 0, std, 1), 0)
    return jnp.where(valid & (count >= k), numerator, 0)


@functools.partial(jax.jit, static_argnames=("alpha",))
def _cvar_pg_kernel(x, mask, alpha: float):
    n = x.shape[-1]
    valid, count, xz = _valid_and_count(x, mask)
    _, xs = lax.sort((~valid, xz), dimension=x.ndim - 1, num_keys=2)  # invalid entries last
    pos = jnp.take(jnp.asarray(_quantile_positions(n, alpha)), count)
    var = jnp.take_along_axis(xs, pos, axis=-1)
    scale = alpha * jnp.maximum(count, 1).astype(x.dtype)
    return jnp.where(valid & (xz <= var), (xz - var) / scale, 0)


# ----------------------------------------------------------------------------------------------
# The public estimators.


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
    k = _int_param(k, "ordergrad: k")
    return _batch.lstat_advantage(rewards, k, objective, mask=mask, method=method)


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
    x, mask = _check_group(rewards, mask, "reinforce")
    return _reinforce_kernel(x, mask)


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
    x, mask = _check_group(rewards, mask, "rloo", min_n=2)
    return _mean_baseline_kernel(x, mask, "rloo")


def grpo(rewards: ArrayLike, mask: ArrayLike | None = None, *, eps: float = 1e-6) -> jax.Array:
    """GRPO group-normalised advantage ``a_i = (r_i - mean(r)) / (std(r) + eps)``.

    ``std`` is the *population* standard deviation of the group, ``sqrt(mean((r - mean)^2))``
    (ddof = 0; implementations that call ``torch.std`` use ddof = 1, larger by
    ``sqrt(N/(N-1))``). A group with ``std + eps = 0`` gets zeros.
    Gradient scale: none is unbiased (the std normalisation reweights groups); ``(1/N) sum_i a_i
    grad log p(x_i)`` is the usual surrogate.
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
    eps = _eps_param(eps)
    x, mask = _check_group(rewards, mask, "grpo")
    return _mean_baseline_kernel(x, mask, "grpo", eps)


def dr_grpo(rewards: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
    """Dr. GRPO advantage ``a_i = r_i - mean(r)`` (GRPO without the std division).

    ``a = ((N-1)/N) rloo(r)``, so ``(1/N) sum_i a_i grad log p`` is unbiased for
    ``((N-1)/N) grad E[R]`` (the in-group mean is a baseline that depends on ``r_i``).
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
    x, mask = _check_group(rewards, mask, "dr_grpo")
    return _mean_baseline_kernel(x, mask, "dr_grpo")


def pkpo(
    rewards: ArrayLike, mask: ArrayLike | None = None, *, k: int, variant: str = "s_loo_minus_one"
) -> jax.Array:
    """PKPO transformed rewards for max@k (pass@k on 0/1 rewards), arbitrary ``k <= N``.

    With the group sorted ascending ``x_(1) <= ... <= x_(N)`` and I ranging over k-subsets of
    the N items, the unbiased max@k estimate is ``rho(N, k) = C(N, k)^-1 sum_I max x_I =
    C(N, k)^-1 sum_t C(t-1, k-1) x_(t)``, and its score-function gradient is
    ``sum_i s_i grad log p(x_i)`` with (item i at sorted position t):

    * ``"s"``: ``s_i = C(N, k)^-1 sum_{I ni i} max x_I
      = C(N, k)^-1 [C(t-1, k-1) x_(t) + sum_{m>t} C(m-2, k-2) x_(m)] = (k/N) q_i``,
      where ``q_i`` is the include-one max@k value (maths.md §2). On 0/1 rewards with c correct,
      ``s_i = k/N`` if correct and ``(k/N) rho(N-1, c, k-1)`` otherwise,
      ``rho(n, c, k) = 1 - C(n-c, k)/C(n, k)``.
    * ``"s_loo"``: ``s_i - (k/N) rho_{-i}(N-1, k)``, the baseline being the unbiased max@k
      estimate of the N-1 other samples scaled like ``s_i`` (``E[s_i] = (k/N) max@k``). This is
      ``(k/N)`` times the OrderGrad ReMax / MaxPO advantage. Needs ``k <= N-1``.
    * ``"s_loo_minus_one"``: ``s_i - (k/N) rho_{-i}(N-1, k-1)``, the baseline being the max@(k-1)
      estimate of the others; equivalently ``C(N, k)^-1 sum_{I ni i} (max x_I - max x_{I\\i})``
      ``= C(N, k)^-1 sum_{m<t} C(m-1, k-2) (x_(t) - x_(m)) >= 0``. For k = N it is
      ``max - second max`` on the top item and 0 elsewhere. Needs ``k >= 2``.

    The baselines do not depend on ``x_i``, so every variant is unbiased.
    Gradient scale: ``g = sum_i s_i grad log p(x_i)`` (the k/N factor is inside ``s``) is unbiased
    for ``grad E[max of k i.i.d. rewards]``.
    Sums to zero over each group: ``"s_loo"`` yes; ``"s"`` no (``sum_i s_i = k rho(N, k)``);
    ``"s_loo_minus_one"`` no (all entries are >= 0).
    Ties: ``max`` is tie-independent, so any stable order gives the subset sums exactly.
    Cost: one sort and O(N) scans (tables precomputed in float64 on the host).

    Args:
      rewards: ``(..., N)``.
      mask: optional bool ``(..., N)``; groups with fewer valid items than the variant needs
        (``k``, or ``k + 1`` for ``"s_loo"``) get zeros.
      k: subset size (static int).
      variant: ``"s"``, ``"s_loo"`` or ``"s_loo_minus_one"`` (alias ``"s_loo-1"``).

    Returns:
      ``(..., N)`` in item order.

    References:
      Walder & Karkhanis, "Pass@K Policy Optimization: Solving Harder Reinforcement Learning
      Problems", arXiv 2505.15201 (the continuous max@k estimator, the binary pass@k rewards,
      and the "loo" / "loo-1" baselines).
    """
    k = _int_param(k, "pkpo: k")
    variant = _variant_param(variant)
    if variant == "s_loo_minus_one" and k < 2:
        raise ValueError(
            "pkpo: variant 's_loo_minus_one' needs k >= 2 (its baseline is the max "
            "of the k - 1 other members of each subset); for k = 1 use 's_loo' "
            "(which is RLOO / N)"
        )
    x, mask = _check_group(rewards, mask, "pkpo")
    n = x.shape[-1]
    if n < _pkpo_min_n(k, variant):
        rule = "k <= N - 1" if variant == "s_loo" else "k <= N"
        raise ValueError(f"pkpo: variant {variant!r} needs {rule}; got k={k}, N={n}")
    return _pkpo_kernel(x, mask, k, variant)


def maxpo(rewards: ArrayLike, mask: ArrayLike | None = None, *, k: int) -> jax.Array:
    """MaxPO max@k advantages with the Leave-Two-Out (L2O) baseline, O(N^2) per group.

    Item i's advantage is its include-one max@k value minus the average over j != i of item j's
    include-one value in the group without i (a leave-two-out quantity):
    ``a_i = q_i - (1/(N-1)) sum_{j != i} q_j^{(-i)} = (1/(N-1)) sum_{j != i} D_ij`` with
    ``D_ij = E_J[max(x_i, M_J) - max(x_j, M_J)]``, J a uniform (k-1)-subset of the N-2 items
    other than i and j, ``M_J = max x_J``. (``q_i`` is the mean of ``q_i^{(-j)}`` over j.) Since
    ``max(b, M) - max(a, M) = integral_a^b 1{M < y} dy``, with items at sorted positions s < t,
    ``D = G(t) - G(s)``, ``G(t) = sum_{u<t} (x_(u+1) - x_(u)) C(u-1, k-1) / C(N-2, k-1)``, so
    ``a_i = N/(N-1) (G(t_i) - mean_j G(t_j))``. ``G`` is evaluated from O(N^2) pairwise rank
    comparisons (no sort): ``G_i = x_i c[r_i] + sum_{m: r_m < r_i} x_m (c[r_m] - c[r_m + 1])``,
    ``c[u] = C(u-1, k-1) / C(N-2, k-1)``, r the 0-based stable rank.

    Equals OrderGrad with ``"ReMax"`` (``q_i - loo_i``; :func:`ordergrad` computes it in
    O(N log N)), and ``(N/k)`` times PKPO ``"s_loo"``. K = 1 gives RLOO.
    Gradient scale: ``g = (K/N) sum_i a_i grad log p(x_i)`` is unbiased for ``grad max@K``.
    Sums to zero over each group: yes (``D`` is antisymmetric).

    Args:
      rewards: ``(..., N)``.
      mask: optional bool ``(..., N)``; groups with ``n <= k`` valid items get zeros.
      k: subset size (static int, ``1 <= k <= N - 1``).

    Returns:
      ``(..., N)`` in item order.

    References:
      Takashiro, Nishimori, Parmas et al., "On Advantage Estimates for Max@K Policy Gradients",
      arXiv 2606.06080 (the L2O baseline; the closed form above is derived here).
    """
    k = _int_param(k, "maxpo: k")
    x, mask = _check_group(rewards, mask, "maxpo")
    if k > x.shape[-1] - 1:
        raise ValueError(
            f"maxpo: needs k <= N - 1 (a leave-one-out baseline of k items); got "
            f"k={k}, N={x.shape[-1]}"
        )
    return _maxpo_kernel(x, mask, k)


def _check_binary(x: jax.Array, mask: jax.Array | None, where: str) -> None:
    """Raises if concrete rewards are not 0/1 on the valid entries (skipped under tracing)."""
    try:
        host = np.asarray(x, dtype=np.float64)
        valid = np.ones(host.shape, bool) if mask is None else np.asarray(mask)
    except jax.errors.TracerArrayConversionError:
        return
    bad = valid & (host != 0) & (host != 1)
    if np.any(bad):
        raise ValueError(
            f"{where}: rewards must be binary 0/1 (pass@k); got values such as "
            f"{host[bad][:3].tolist()}"
        )


def passk_chen(
    rewards: ArrayLike, mask: ArrayLike | None = None, *, k: int, normalize: bool = True
) -> jax.Array:
    """Chen et al.'s analytic pass@k advantage for binary 0/1 rewards.

    A group of N samples with c correct is read as all its k-subsets, each rewarded by pass@k;
    the group mean is the unbiased ``pass@k = 1 - C(N-c, k)/C(N, k)`` and the std is
    ``sigma = sqrt(pass@k (1 - pass@k))``. Each sample's advantage is the mean, over the
    subsets that contain it, of ``(subset reward - pass@k) / sigma``:

    * correct: ``a = (1 - pass@k) / sigma``;
    * incorrect: ``a = (1 - pass@k - C(N-c-1, k-1)/C(N-1, k-1)) / sigma``.

    The numerator (``normalize=False``) is ``q_i - v``, the include-one pass@k minus the group
    pass@k, so it equals ``((N-k)/N)`` times the OrderGrad ReMax advantage on the same rewards.
    A group with ``sigma = 0`` (no correct sample, or fewer than k incorrect) gets zeros.
    Gradient scale: with ``normalize=False``, ``g = (k/(N-k)) sum_i a_i grad log p(x_i)`` is
    unbiased for ``grad pass@k`` (k < N); the sigma-normalised advantage has no unbiased scale.
    Sums to zero over each group: yes (both forms).

    Args:
      rewards: ``(..., N)`` binary 0/1 (checked when concrete; under ``jit`` a reward counts as
        correct when it is > 0.5).
      mask: optional bool ``(..., N)``; groups with fewer than k valid items get zeros.
      k: pass@k's k (static int, ``1 <= k <= N``).
      normalize: divide by ``sigma`` (Chen et al.'s advantage) or return the numerator.

    Returns:
      ``(..., N)``.

    References:
      Chen et al., "Pass@k Training for Adaptively Balancing Exploration and Exploitation of
      Large Reasoning Models", arXiv 2508.10751 (analytical derivation of the advantage).
    """
    k = _int_param(k, "passk_chen: k")
    normalize = _bool_param(normalize, "passk_chen: normalize")
    x, mask = _check_group(rewards, mask, "passk_chen")
    if k > x.shape[-1]:
        raise ValueError(f"passk_chen: needs k <= N; got k={k}, N={x.shape[-1]}")
    _check_binary(x, mask, "passk_chen")
    return _passk_chen_kernel(x, mask, k, normalize)


def cvar_pg(rewards: ArrayLike, mask: ArrayLike | None = None, *, alpha: float) -> jax.Array:
    """CVaR policy gradient weights of the lower alpha-tail of the rewards.

    ``a_i = (R_i - VaR) 1{R_i <= VaR} / (alpha N)`` with ``VaR = R_(ceil(alpha N))``, the
    empirical alpha-quantile (ascending order statistic; ``ceil`` with a 1e-9 tolerance).
    Gradient scale: ``g = sum_i a_i grad log p(x_i)`` estimates ``grad CVaR_alpha`` (the mean
    of the worst alpha-fraction of rewards); it is consistent, not unbiased, at finite N.
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
    alpha = _alpha_param(alpha)
    x, mask = _check_group(rewards, mask, "cvar_pg")
    return _cvar_pg_kernel(x, mask, alpha)


# ----------------------------------------------------------------------------------------------
# The registry behind get().


@dataclasses.dataclass(frozen=True)
class _Entry:
    fn: Callable[..., jax.Array]
    summary: str
    checks: dict[str, Callable[[Any], Any]]


def _check_objective_for(params: dict[str, Any]) -> None:
    _batch._weights(params["objective"], params["k"])


def _method_param(method: Any) -> str:
    if method not in _batch._METHODS:
        raise ValueError(f"method must be one of {_batch._METHODS}; got {method!r}")
    return method


_REGISTRY: dict[str, _Entry] = {
    "ordergrad": _Entry(
        ordergrad,
        "OrderGrad L-statistic advantages alpha.(q_i - loo_i) (params k, objective)",
        {"k": _int_param, "method": _method_param},
    ),
    "reinforce": _Entry(reinforce, "raw reward r_i (no baseline)", {}),
    "rloo": _Entry(rloo, "leave-one-out baseline N/(N-1) (r_i - mean)", {}),
    "grpo": _Entry(grpo, "(r_i - mean) / (population std + eps)", {"eps": _eps_param}),
    "dr_grpo": _Entry(dr_grpo, "r_i - mean (Dr. GRPO)", {}),
    "pkpo": _Entry(
        pkpo,
        "PKPO max@k / pass@k rewards, variant s | s_loo | s_loo_minus_one (param k)",
        {"k": _int_param, "variant": _variant_param},
    ),
    "maxpo": _Entry(
        maxpo,
        "MaxPO max@k advantages with the Leave-Two-Out baseline, O(N^2) (param k)",
        {"k": _int_param},
    ),
    "passk_chen": _Entry(
        passk_chen,
        "Chen et al. analytic pass@k advantage, binary rewards (param k)",
        {"k": _int_param, "normalize": lambda v: _bool_param(v, "normalize")},
    ),
    "cvar_pg": _Entry(
        cvar_pg,
        "CVaR-PG (R_i - VaR) 1{R_i <= VaR} / (alpha N) (param alpha)",
        {"alpha": _alpha_param},
    ),
}
_NAME_ALIASES = {
    "mean": "reinforce",
    "drgrpo": "dr_grpo",
    "cvar": "cvar_pg",
    "passk": "passk_chen",
    "pass_k_chen": "passk_chen",
}


def available() -> dict[str, str]:
    """The estimator names that :func:`get` accepts, each with a one-line description."""
    return {name: entry.summary for name, entry in _REGISTRY.items()}


def _canonical_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError(
            f"estimator name must be a string; got {name!r}. Available: {', '.join(_REGISTRY)}"
        )
    key = name.strip().lower().replace("-", "_").replace(".", "_").replace(" ", "_")
    key = _NAME_ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown estimator {name!r}; available: {', '.join(_REGISTRY)} "
            f"(aliases: {', '.join(sorted(_NAME_ALIASES))})"
        )
    return key


def _bind_params(key: str, entry: _Entry, params: dict[str, Any]) -> dict[str, Any]:
    sig = inspect.signature(entry.fn)
    allowed = {p.name: p for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY}

    def usage() -> str:
        if not allowed:
            return f"estimator {key!r} takes no parameters"
        parts = [
            name if p.default is p.empty else f"{name}={p.default!r}" for name, p in allowed.items()
        ]
        return f"estimator {key!r} takes {', '.join(parts)} (no default = required)"

    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; {usage()}")
    missing = [name for name, p in allowed.items() if p.default is p.empty and name not in params]
    if missing:
        raise ValueError(f"missing parameter(s) {', '.join(map(repr, missing))}; {usage()}")
    bound = {name: params.get(name, p.default) for name, p in allowed.items()}
    for name, check in entry.checks.items():
        bound[name] = check(bound[name])
    if key == "ordergrad":
        _check_objective_for(bound)
    if key == "pkpo" and bound["variant"] == "s_loo_minus_one" and bound["k"] < 2:
        raise ValueError("pkpo: variant 's_loo_minus_one' needs k >= 2; for k = 1 use 's_loo'")
    return bound


def get(name: str, **params: Any) -> Callable[..., jax.Array]:
    """The advantage function of a named estimator: ``fn(rewards (..., N), mask=None) -> (..., N)``.

    Every estimator works on the last axis (leading axes are independent groups), is pure and
    jit/vmap friendly (its params are static), and takes an optional bool ``mask`` (True =
    valid; masked entries take no part whatever their value, NaN included, and get 0).

    Args:
      name: one of :func:`available` (case-insensitive; ``-`` and ``.`` read as ``_``, e.g.
        ``"Dr.GRPO"``, ``"CVaR-PG"``).
      **params: the estimator's keyword parameters, checked here:
        ``ordergrad``: ``k``, ``objective`` (``method="auto"``); ``grpo``: ``eps=1e-6``;
        ``pkpo``: ``k``, ``variant="s_loo_minus_one"``; ``maxpo``: ``k``;
        ``passk_chen``: ``k`` (``normalize=True``); ``cvar_pg``: ``alpha``;
        ``reinforce``, ``rloo``, ``dr_grpo``: none.

    Returns:
      The bound function; its docstring is the estimator's (formula, gradient scale, whether it
      sums to zero over a group, reference).

    Raises:
      ValueError: unknown name, unknown or missing parameter, or a bad parameter value; the
        message lists what is allowed.
    """
    key = _canonical_name(name)
    entry = _REGISTRY[key]
    bound = _bind_params(key, entry, params)
    fn = entry.fn

    def estimator(rewards: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
        return fn(rewards, mask, **bound)

    label = f"{key}({', '.join(f'{p}={v!r}' for p, v in bound.items())})"
    estimator.__name__ = estimator.__qualname__ = key
    estimator.__doc__ = f"{label}: {entry.summary}.\n\n{fn.__doc__}"
    return estimator
