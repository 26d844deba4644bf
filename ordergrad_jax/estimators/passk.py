"""The max@k / pass@k family: PKPO, MaxPO and Chen et al.'s analytic pass@k (maths.md §5).

Each estimates the policy gradient of ``E[max of k i.i.d. rewards]`` (pass@k on 0/1 rewards) from
a group of N; they differ in their baselines and in where the k/N factor sits (their spec's
gradient scale: K for MaxPO, N for PKPO, ``kN/(N-k)`` or 1 for pass@k-Chen).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from ordergrad_jax import _checks
from ordergrad_jax._sorted import middle, ranks_below, scan, sort_with_index, unsort
from ordergrad_jax.estimators._common import (
    check_group,
    comb_ratio,
    group_mean,
    group_size_scale,
    max_at_k_target,
    read_only,
    subset_size_scale,
    valid_and_count,
)
from ordergrad_jax.estimators.registry import register

__all__ = ["PKPO_VARIANTS", "maxpo", "passk_chen", "pkpo"]

PKPO_VARIANTS = ("s", "s_loo", "s_loo_minus_one")
_PKPO_ALIASES = {
    "s_loo-1": "s_loo_minus_one",
    "sloo": "s_loo",
    "sloo_minus_one": "s_loo_minus_one",
    "s_loo_m1": "s_loo_minus_one",
}


def _variant_param(variant: Any) -> str:
    key = str(variant).lower() if isinstance(variant, str) else None
    key = _PKPO_ALIASES.get(key, key) if key is not None else None
    if key not in PKPO_VARIANTS:
        raise ValueError(
            f"unknown PKPO variant {variant!r}; allowed: {', '.join(PKPO_VARIANTS)} "
            f"(aliases: {', '.join(sorted(_PKPO_ALIASES))})"
        )
    return key


def _pkpo_params(k: Any, variant: Any) -> dict[str, Any]:
    k = _checks.static_int(k, "k")
    variant = _variant_param(variant)
    if variant == "s_loo_minus_one" and k < 2:
        raise ValueError("pkpo: variant 's_loo_minus_one' needs k >= 2; for k = 1 use 's_loo'")
    return {"k": k, "variant": variant}


def _k_params(k: Any) -> dict[str, Any]:
    return {"k": _checks.static_int(k, "k")}


def _passk_chen_params(k: Any, normalize: Any) -> dict[str, Any]:
    k = _checks.static_int(k, "k")
    return {"k": k, "normalize": _checks.static_bool(normalize, "normalize")}


def _passk_chen_scale(n: int, *, k: int, normalize: bool) -> float:
    if normalize:
        return 1.0  # sigma-normalised advantages are used as they are, like GRPO's (maths.md §5)
    if k >= n:
        raise ValueError(
            f"passk_chen: the scale kN/(N-k) of normalize=False needs k < N; got k={k}, N={n}"
        )
    return k * n / (n - k)


def _pkpo_label(*, k: int, variant: str) -> str:
    """``PKPO@4`` for the default variant, ``PKPO@4 s_loo`` for the others."""
    return f"PKPO@{k}" if variant == "s_loo_minus_one" else f"PKPO@{k} {variant}"


def _passk_chen_label(*, k: int, normalize: bool) -> str:
    """``Chen pass@4``; ``Chen pass@4 (numerator)`` for ``normalize=False``."""
    return f"Chen pass@{k}" if normalize else f"Chen pass@{k} (numerator)"


# PKPO tables: at sorted position t (1-based) of a group of n,
# y_t = sum_{m<t} below_m x_(m) + own_t x_(t) + sum_{m>t} above_m x_(m).


def _pkpo_min_n(k: int, variant: str) -> int:
    return k + 1 if variant == "s_loo" else k


def _pkpo_vectors_uncached(n: int, k: int, variant: str) -> tuple[np.ndarray, ...]:
    m = np.arange(1, n + 1)
    own = comb_ratio(m - 1, k - 1, n, k)  # C(t-1, k-1) / C(n, k): subsets where t is the max
    zero = np.zeros(n)
    if variant == "s":
        return zero, own, comb_ratio(m - 2, k - 2, n, k)
    if variant == "s_loo":
        # minus (k/n) x the max@k U-statistic of the n-1 others (ranks above t shift down one)
        below = -(k / n) * comb_ratio(m - 1, k - 1, n - 1, k)
        above = comb_ratio(m - 2, k - 2, n, k) - (k / n) * comb_ratio(m - 2, k - 1, n - 1, k)
        return below, own, above
    # s_loo_minus_one: minus (k/n) x the max@(k-1) U-statistic of the others; the terms above t
    # cancel exactly ((k/n) / C(n-1, k-1) = 1 / C(n, k)), leaving sum_{m<t} C(m-1, k-2)/C(n, k).
    return -comb_ratio(m - 1, k - 2, n, k), own, zero


@functools.lru_cache(maxsize=256)
def _pkpo_vectors(n: int, k: int, variant: str) -> tuple[np.ndarray, ...]:
    return read_only(*_pkpo_vectors_uncached(n, k, variant))


@functools.lru_cache(maxsize=32)
def _pkpo_by_count(n_max: int, k: int, variant: str) -> tuple[np.ndarray, ...]:
    """The vectors for every valid count 0..n_max, zero-padded: three ``(n_max + 1, n_max)``."""
    out = tuple(np.zeros((n_max + 1, n_max)) for _ in range(3))
    for count in range(_pkpo_min_n(k, variant), n_max + 1):  # host precompute over table rows
        for dst, src in zip(out, _pkpo_vectors_uncached(count, k, variant), strict=True):
            dst[count, :count] = src
    return read_only(*out)


# MaxPO table: c[u] = P(max of a uniform (k-1)-subset of the n-2 others <= the u-th smallest
# of the group | the two left-out items straddle it) = C(u-1, k-1) / C(n-2, k-1), u = 0..n.


def _l2o_cdf_uncached(n: int, k: int) -> np.ndarray:
    return comb_ratio(np.arange(n + 1) - 1, k - 1, n - 2, k - 1)


@functools.lru_cache(maxsize=256)
def _l2o_cdf(n: int, k: int) -> np.ndarray:
    return read_only(_l2o_cdf_uncached(n, k))[0]


@functools.lru_cache(maxsize=32)
def _l2o_cdf_by_count(n_max: int, k: int) -> np.ndarray:
    out = np.zeros((n_max + 1, n_max + 1))
    for count in range(k + 1, n_max + 1):  # host precompute over table rows
        out[count, : count + 1] = _l2o_cdf_uncached(count, k)
    return read_only(out)[0]


@functools.partial(jax.jit, static_argnames=("k", "variant"))
def _pkpo_kernel(x: jax.Array, mask: jax.Array | None, k: int, variant: str) -> jax.Array:
    n = x.shape[-1]
    if mask is None:
        below, own, above = (jnp.asarray(v, x.dtype) for v in _pkpo_vectors(n, k, variant))
        xs, perm, _ = sort_with_index(x)
        center = middle(xs)
        y = scan(xs - center, below, own, above)
        if variant == "s":  # the only variant that is not shift-invariant: s(x + b) = s(x) + bk/n
            y = y + center * (k / n)
        return unsort(y, perm)
    count = jnp.sum(mask, axis=-1, keepdims=True, dtype=jnp.int32)
    below, own, above = (
        jnp.take(jnp.asarray(t, x.dtype), count[..., 0], axis=0)
        for t in _pkpo_by_count(n, k, variant)
    )
    xs, perm, _ = sort_with_index(jnp.where(mask, x, 0), ~mask)
    valid_s = lax.broadcasted_iota(jnp.int32, xs.shape, xs.ndim - 1) < count
    center = middle(xs, count)
    y = scan(jnp.where(valid_s, xs - center, 0), below, own, above)
    if variant == "s":
        y = y + center * (k / jnp.maximum(count, 1).astype(x.dtype))
    defined = valid_s & (count >= _pkpo_min_n(k, variant))
    return unsort(jnp.where(defined, y, 0), perm)


@functools.partial(jax.jit, static_argnames=("k",))
def _maxpo_kernel(x: jax.Array, mask: jax.Array | None, k: int) -> jax.Array:
    n = x.shape[-1]
    valid, count, xz = valid_and_count(x, mask)
    xc = jnp.where(valid, xz - group_mean(xz, count), 0)  # G is shift-invariant; centre for f32
    # lt[..., i, m]: valid item m ranks below item i (stable: ties go to the lower index).
    lt = valid[..., None, :] & ranks_below(xz)
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
    adv = countf / jnp.maximum(countf - 1, 1) * (g - group_mean(g, count))
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
def _passk_chen_kernel(x: jax.Array, mask: jax.Array | None, k: int, normalize: bool) -> jax.Array:
    valid, count, xz = valid_and_count(x, mask)
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


@register(
    "pkpo",
    params=("k", "variant"),
    gradient_scale=group_size_scale,
    zero_sum=False,
    label=_pkpo_label,
    target=max_at_k_target,
    target_label="max@{k}",
    description="PKPO max@k / pass@k rewards, variant s | s_loo | s_loo_minus_one (param k)",
    validate=_pkpo_params,
)
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
    for ``grad E[max of k i.i.d. rewards]``: the spec's ``c = N``.
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
    k = _checks.static_int(k, "pkpo: k")
    variant = _variant_param(variant)
    if variant == "s_loo_minus_one" and k < 2:
        raise ValueError(
            "pkpo: variant 's_loo_minus_one' needs k >= 2 (its baseline is the max "
            "of the k - 1 other members of each subset); for k = 1 use 's_loo' "
            "(which is RLOO / N)"
        )
    x, mask = check_group(rewards, mask, "pkpo")
    n = x.shape[-1]
    if n < _pkpo_min_n(k, variant):
        rule = "k <= N - 1" if variant == "s_loo" else "k <= N"
        raise ValueError(f"pkpo: variant {variant!r} needs {rule}; got k={k}, N={n}")
    return _pkpo_kernel(x, mask, k, variant)


@register(
    "maxpo",
    params=("k",),
    gradient_scale=subset_size_scale,
    zero_sum=True,
    label="MaxPO@{k}",
    target=max_at_k_target,
    target_label="max@{k}",
    description="MaxPO max@k advantages with the Leave-Two-Out baseline, O(N^2) (param k)",
    validate=_k_params,
)
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
    k = _checks.static_int(k, "maxpo: k")
    x, mask = check_group(rewards, mask, "maxpo")
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


@register(
    "passk_chen",
    params=("k", "normalize"),
    gradient_scale=_passk_chen_scale,
    zero_sum=True,
    binary_rewards=True,
    label=_passk_chen_label,
    target=max_at_k_target,
    target_label="pass@{k}",
    aliases=("passk", "pass_k_chen"),
    description="Chen et al. analytic pass@k advantage, binary rewards (param k)",
    validate=_passk_chen_params,
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
    unbiased for ``grad pass@k`` (k < N): the spec's ``c = kN/(N-k)``. The sigma-normalised
    advantage has no unbiased scale; like GRPO's it is used as it is, ``c = 1`` (maths.md §5).
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
    k = _checks.static_int(k, "passk_chen: k")
    normalize = _checks.static_bool(normalize, "passk_chen: normalize")
    x, mask = check_group(rewards, mask, "passk_chen")
    if k > x.shape[-1]:
        raise ValueError(f"passk_chen: needs k <= N; got k={k}, N={x.shape[-1]}")
    _check_binary(x, mask, "passk_chen")
    return _passk_chen_kernel(x, mask, k, normalize)
