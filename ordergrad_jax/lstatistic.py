"""The batch regime (maths.md §2): rank transforms of an observed group of N i.i.d. rewards.

Every function works on the last axis of ``x`` (shape ``(..., N)``); leading axes are independent
groups. ``k`` is a static Python int. ``objective`` is a preset string, an
:class:`~ordergrad_jax.objectives.Objective`, or a length-``k`` ascending weight array (which may
be traced: sweeping weights under ``jit``/``vmap`` does not recompile).

Cost with fixed weights: one stable sort and O(N) scans per group (a sort-free pairwise path for
small groups, where it is faster); rank-wise outputs ``(..., N, k)`` cost O(N k).

Numerics: tables are float64 on the host, cast once to the compute dtype; each group is centred on
its middle order statistic before the scans, so float32 keeps its accuracy under large reward
offsets. Non-finite rewards make every output of their own group non-finite and never touch other
groups; drop failed samples with ``mask`` instead (masked entries take no part, whatever their
value, NaN included).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ordergrad_jax import _checks
from ordergrad_jax import objectives as _obj
from ordergrad_jax import tables as _tables
from ordergrad_jax._sorted import (
    METHODS,
    middle,
    ranks_below,
    scan,
    sort_free_max_n,
    sort_with_index,
    tie_average,
    unsort,
)

__all__ = [
    "LStatistic",
    "advantage_defined",
    "lstat",
    "lstat_advantage",
    "lstat_inclusion",
    "lstat_leave_one_out",
    "lstat_weights_by_item",
    "lstat_weights_by_rank",
    "orderstats",
    "orderstats_advantage",
    "orderstats_inclusion",
    "orderstats_leave_one_out",
]


def objective_weights(objective: Any, k: int) -> np.ndarray | jax.Array:
    """The rank weights of ``objective`` for subsets of ``k``, checked (maths.md §4): concrete
    float64 NumPy weights where possible, else the traced array (its shape checked)."""
    if isinstance(objective, (str, _obj.Objective)):
        return _obj.rank_weights(objective, k)
    try:
        return _obj.rank_weights(np.asarray(objective), k)
    except jax.errors.TracerArrayConversionError:
        weights = jnp.asarray(objective)
        _obj.check_weight_shape(weights, k)
        if not jnp.issubdtype(weights.dtype, jnp.floating):
            weights = weights.astype(jnp.result_type(float))
        return weights


# ----------------------------------------------------------------------------------------------
# The precomputed statistic.


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["weights", "vectors", "by_count"],
    meta_fields=["n", "k"],
)
@dataclasses.dataclass(frozen=True)
class LStatistic:
    """An L-statistic of K-subsets of a group of N, with its rank tables precomputed.

    A registered pytree: ``n`` and ``k`` are static; the weights and the collapsed tables
    (maths.md §2, "O(N) when alpha is fixed") are array leaves, so a ``vmap`` over statistics with
    different weights needs no recompilation.

    Attributes:
      n, k: group size N and subset size K (static ints).
      weights: ``(k,)`` ascending rank weights alpha.
      vectors: :class:`~ordergrad_jax.tables.Tables` contracted with alpha, each ``(n,)``:
        ``by_rank = W alpha`` (``lstat = sort(x) . by_rank``, the RP weights), the include-one
        vectors ``below, own, above`` and the leave-one-out vectors ``loo_below, loo_above``.
      by_count: ``None``, or the same vectors for every valid count ``0..n`` as ``(n + 1, n)``
        arrays (zero-padded), which masked groups need.
    """

    n: int
    k: int
    weights: jax.Array
    vectors: _tables.Tables[jax.Array]
    by_count: _tables.Tables[jax.Array] | None = None

    @classmethod
    def create(
        cls, n: int, k: int, objective: Any, *, masked: bool = False, dtype: Any = None
    ) -> LStatistic:
        """Precomputes the statistic for groups of ``n`` (host float64, cached, cast once).

        Args:
          n: group size N (static int >= 1).
          k: subset size K, ``1 <= k <= n``.
          objective: preset string, :class:`Objective`, or ``(k,)`` weights (may be traced).
          masked: also precompute the per-count tables that ``mask=`` needs (O(N^2) memory).
          dtype: compute dtype (default: JAX's default float, float32 unless x64 is on).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"LStatistic.create: n must be an int >= 1, got {n!r}")
        n = int(n)
        k = _checks.check_k(k, n, "LStatistic.create")
        dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
        weights = objective_weights(objective, k)
        cast = functools.partial(jnp.asarray, dtype=dtype)
        if isinstance(weights, np.ndarray):
            vectors = jax.tree.map(cast, _tables.collapsed(n, k, weights))
            by_count = None
            if masked:
                by_count = jax.tree.map(cast, _tables.collapsed_by_count(n, k, weights))
        else:  # traced weights: contract the rank-wise tables in the graph
            weights = weights.astype(dtype)
            vectors = jax.tree.map(lambda t: cast(t) @ weights, _tables.rank_tables(n, k))
            by_count = None
            if masked:
                by_count = jax.tree.map(
                    lambda t: cast(t) @ weights, _tables.rank_tables_by_count(n, k)
                )
        return cls(n, k, cast(weights), vectors, by_count)

    @property
    def weights_by_rank(self) -> jax.Array:
        """``(n,)`` weights on the ascending sorted group: ``lstat = sort(x) . w`` (maths.md §2)."""
        return self.vectors.by_rank

    # Public methods: thin checked wrappers around the kernels below.

    def value(self, x: Any, mask: Any = None) -> jax.Array:
        """The L-statistic ``alpha . v`` of each group, ``(...)``; differentiable in ``x`` (RP)."""
        x, mask = self._check(x, mask, "LStatistic.value")
        return _value(self, x, mask)

    def inclusion(self, x: Any, *, method: str = "auto") -> jax.Array:
        """Include-one values ``alpha . q_i``, ``(..., n)`` in item order.

        ``method``: ``"sort"`` (one sort + scan), ``"pairwise"`` (O(n^2) comparisons, no sort) or
        ``"auto"`` (pairwise for ``n <= sort_free_max_n()``: 32 on CPU, always sort on
        accelerators).
        """
        x, _ = self._check(x, None, "LStatistic.inclusion")
        q, center = _scan_transform(self, x, "inclusion", method)
        return q + center * jnp.sum(self.weights)

    def leave_one_out(self, x: Any, *, method: str = "auto") -> jax.Array:
        """Leave-one-out values ``alpha . loo_i``, ``(..., n)``; needs ``k <= n - 1``."""
        x, _ = self._check(x, None, "LStatistic.leave_one_out", leave_one_out=True)
        loo, center = _scan_transform(self, x, "leave_one_out", method)
        return loo + center * jnp.sum(self.weights)

    def advantage(self, x: Any, mask: Any = None, *, method: str = "auto") -> jax.Array:
        """LR advantages ``a_i = alpha . (q_i - loo_i)``, ``(..., n)``; sum to 0 per group.

        With ``mask``, a group of n valid items gives the n-group's advantages on its valid items
        and 0 elsewhere; groups with ``n <= k`` have none (all 0, see :func:`advantage_defined`).
        ``method`` as in :meth:`inclusion` (masked groups always sort).
        """
        x, mask = self._check(x, mask, "LStatistic.advantage", leave_one_out=True)
        if mask is None:
            return _scan_transform(self, x, "advantage", method)[0]
        return _masked_advantage(self, x, mask)

    def weights_by_item(self, x: Any, mask: Any = None) -> jax.Array:
        """``d value / d x``, ``(..., n)``: ``by_rank`` at each item's rank, tied ranks averaged."""
        x, mask = self._check(x, mask, "LStatistic.weights_by_item")
        return _weights_by_item(self, x, mask)

    def _check(
        self, x: Any, mask: Any, where: str, *, leave_one_out: bool = False
    ) -> tuple[jax.Array, jax.Array | None]:
        x = _checks.as_rewards(x, where)
        if x.shape[-1] != self.n:
            raise ValueError(
                f"{where}: rewards have group size {x.shape[-1]} on the last axis, "
                f"but this LStatistic was created for n={self.n}"
            )
        _checks.check_k(self.k, self.n, where, leave_one_out=leave_one_out)
        mask = _checks.check_mask(mask, x.shape, where)
        if mask is not None and self.by_count is None:
            raise ValueError(
                f"{where}: mask= needs the per-count tables; create the statistic "
                f"with LStatistic.create(n, k, objective, masked=True)"
            )
        return x, mask


# ----------------------------------------------------------------------------------------------
# Kernels (inputs already checked).


def _count_rows(stat: LStatistic, mask: jax.Array) -> tuple[jax.Array, _tables.Tables[jax.Array]]:
    """The per-count table rows of each group: (count (..., 1), Tables of (..., n))."""
    count = jnp.sum(mask, axis=-1, keepdims=True)
    rows = jax.tree.map(lambda t: jnp.take(t, count[..., 0], axis=0), stat.by_count)
    return count, rows


# The kernels are jitted so that eager calls compile one program per shape instead of dispatching
# op by op; inside a caller's jit they inline.


@jax.jit
def _weights_by_item(stat: LStatistic, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """The RP weights per item: by-rank weights at each item's rank, tied runs averaged."""
    if mask is None:
        xs, perm, invalid_s = sort_with_index(x)
        by_rank = stat.vectors.by_rank.astype(x.dtype)
    else:
        _, rows = _count_rows(stat, mask)
        xs, perm, invalid_s = sort_with_index(jnp.where(mask, x, 0), ~mask)
        by_rank = rows.by_rank.astype(x.dtype)
    return unsort(tie_average(xs, by_rank, invalid_s), perm)


@jax.jit
def _value(stat: LStatistic, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    if mask is None:
        return _lstat_sorted(x, stat.vectors.by_rank.astype(x.dtype), None)
    _, rows = _count_rows(stat, mask)
    return _lstat_sorted(jnp.where(mask, x, 0), rows.by_rank.astype(x.dtype), ~mask)


@jax.custom_jvp
def _lstat_sorted(x: jax.Array, by_rank: jax.Array, invalid: jax.Array | None) -> jax.Array:
    """``sum_m x_(m) by_rank_m`` (maths.md §2 "RP weights"), centred; invalid entries sort last."""
    if invalid is None:
        xs = jnp.sort(x, axis=-1)
    else:
        _, xs = lax.sort((invalid, x), dimension=x.ndim - 1, num_keys=2)
    return _centred_dot(xs, by_rank)


def _centred_dot(xs: jax.Array, by_rank: jax.Array) -> jax.Array:
    """``sum_m xs_m w_m`` computed as ``sum_m (xs_m - c) w_m + c sum_m w_m`` (c = the middle)."""
    center = middle(xs)
    return jnp.sum((xs - center) * by_rank, axis=-1) + center[..., 0] * jnp.sum(by_rank, axis=-1)


@_lstat_sorted.defjvp
def _lstat_sorted_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    x, by_rank, invalid = primals
    dx, dby_rank, _ = tangents
    xs, perm, invalid_s = sort_with_index(x, invalid)
    value = _centred_dot(xs, by_rank)
    by_item = unsort(tie_average(xs, jnp.broadcast_to(by_rank, xs.shape), invalid_s), perm)
    return value, jnp.sum(by_item * dx, -1) + jnp.sum(xs * dby_rank, -1)


def _coefficients(
    t: _tables.Tables[jax.Array], kind: str, dtype: Any
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The (below, own, above) coefficients of a scan transform (maths.md §2).

    ``"inclusion"``: ``(A, B, C)``; ``"leave_one_out"``: ``(L_below, 0, L_above)``;
    ``"advantage"``: their difference ``(A - L_below, B, C - L_above)``.
    """
    below, own, above = (v.astype(dtype) for v in (t.below, t.own, t.above))
    if kind == "inclusion":
        return below, own, above
    loo_below, loo_above = t.loo_below.astype(dtype), t.loo_above.astype(dtype)
    if kind == "leave_one_out":
        return loo_below, jnp.zeros_like(own), loo_above
    return below - loo_below, own, above - loo_above


@functools.partial(jax.jit, static_argnames=("kind", "method"))
def _scan_transform(
    stat: LStatistic, x: jax.Array, kind: str, method: str = "auto"
) -> tuple[jax.Array, jax.Array]:
    """A centred scan transform in item order and the centre: ((..., n), (..., 1)).

    ``"pairwise"``: ranks from O(n^2) comparisons, no sort; ``"sort"``: one stable sort, one scan.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    dtype = x.dtype
    below, own, above = _coefficients(stat.vectors, kind, dtype)
    if method == "pairwise" or (method == "auto" and stat.n <= sort_free_max_n()):
        center = jnp.mean(x, axis=-1, keepdims=True)
        xc = x - center
        lt = ranks_below(x)
        rank = jnp.sum(lt, axis=-1)
        coef = jnp.stack([below - above, own - above, above], axis=-1)  # (n, 3)
        d, e, c = jnp.moveaxis(jnp.take(coef, rank, axis=0), -1, 0)
        y = (
            jnp.einsum("...ij,...j->...i", lt.astype(dtype), xc * d)
            + xc * e
            + jnp.sum(xc * c, axis=-1, keepdims=True)
        )
        return y, center
    xs, perm, _ = sort_with_index(x)
    center = middle(xs)
    return unsort(scan(xs - center, below, own, above), perm), center


@jax.jit
def _masked_advantage(stat: LStatistic, x: jax.Array, mask: jax.Array) -> jax.Array:
    """Advantages of the valid sub-group of each group (maths.md §2 "Masks"), sorted path."""
    count, rows = _count_rows(stat, mask)
    xs, perm, _ = sort_with_index(jnp.where(mask, x, 0), ~mask)
    valid_s = lax.broadcasted_iota(jnp.int32, xs.shape, xs.ndim - 1) < count
    xc = jnp.where(valid_s, xs - middle(xs, count), 0)
    adv = scan(xc, *_coefficients(rows, "advantage", x.dtype))
    return unsort(jnp.where(valid_s & (count > stat.k), adv, 0), perm)


@functools.partial(jax.jit, static_argnames=("k",))
def _orderstats(x: jax.Array, k: int) -> jax.Array:
    """``v = sort(x) @ W`` (maths.md §2), centred: ``(..., k)``."""
    xs = jnp.sort(x, axis=-1)
    center = middle(xs)
    w = jnp.asarray(_tables.orderstat_table(x.shape[-1], k), x.dtype)
    return (xs - center) @ w + center


@functools.partial(jax.jit, static_argnames=("k", "kind"))
def _rankwise(x: jax.Array, k: int, kind: str) -> tuple[jax.Array, jax.Array]:
    """A rank-wise scan transform ``(..., n, k)`` in item order, and the centre ``(..., 1, 1)``."""
    xs, perm, _ = sort_with_index(x)
    center = middle(xs)[..., None]
    tabs = _tables.Tables(*(jnp.asarray(t, x.dtype) for t in _tables.rank_tables(x.shape[-1], k)))
    out = scan((xs[..., None] - center), *_coefficients(tabs, kind, x.dtype), axis=-2)
    return unsort(out, perm), center


# ----------------------------------------------------------------------------------------------
# The functional API.


def _statistic(
    x: Any, k: Any, objective: Any, where: str, *, leave_one_out: bool = False, mask: Any = None
) -> tuple[LStatistic, jax.Array]:
    x = _checks.as_rewards(x, where)
    k = _checks.check_k(k, x.shape[-1], where, leave_one_out=leave_one_out)
    stat = LStatistic.create(x.shape[-1], k, objective, masked=mask is not None, dtype=x.dtype)
    return stat, x


def orderstats(x: Any, k: int) -> jax.Array:
    """Unbiased expected order statistics ``v_j = E[R_(j:K)]`` of each group (maths.md §2).

    ``v = sort(x) @ W`` with ``W[m, j] = C(m-1, j-1) C(N-m, K-j) / C(N, K)`` (a U-statistic).

    Args:
      x: rewards ``(..., N)``.
      k: subset size K (static int, ``1 <= k <= N``).

    Returns:
      ``(..., k)``, ascending (index 0 = expected minimum).
    """
    x = _checks.as_rewards(x, "orderstats")
    k = _checks.check_k(k, x.shape[-1], "orderstats")
    return _orderstats(x, k)


def orderstats_inclusion(x: Any, k: int) -> jax.Array:
    """Include-one order statistics ``q[i, j] = E[(x_S)_(j:K) | i in S]`` (maths.md §2).

    Args:
      x: rewards ``(..., N)``; k: static int, ``1 <= k <= N``.

    Returns:
      ``(..., N, k)``: row i belongs to ``x[..., i]``; the rank axis is ascending.
    """
    x = _checks.as_rewards(x, "orderstats_inclusion")
    k = _checks.check_k(k, x.shape[-1], "orderstats_inclusion")
    q, center = _rankwise(x, k, "inclusion")
    return q + center


def orderstats_leave_one_out(x: Any, k: int) -> jax.Array:
    """Leave-one-out order statistics: the U-statistic ``v`` of the N-1 other items (maths.md §2).

    ``loo[t] = sum_{m<t} x_(m) U[m] + sum_{m>t} x_(m) U[m-1]`` with ``U = W_{N-1, K}``.

    Args:
      x: rewards ``(..., N)``; k: static int, ``1 <= k <= N - 1``.

    Returns:
      ``(..., N, k)``, rows in item order, rank axis ascending.
    """
    x = _checks.as_rewards(x, "orderstats_leave_one_out")
    n = x.shape[-1]
    k = _checks.check_k(k, n, "orderstats_leave_one_out", leave_one_out=True)
    loo, center = _rankwise(x, k, "leave_one_out")
    return loo + center


def orderstats_advantage(x: Any, k: int) -> jax.Array:
    """Rank advantages ``adv[i, j] = q[i, j] - loo[i, j] = N/(N-K) (q[i, j] - v_j)`` (maths.md §2).

    Args:
      x: rewards ``(..., N)``; k: static int, ``1 <= k <= N - 1``.

    Returns:
      ``(..., N, k)``; each column sums to 0 over items.
    """
    x = _checks.as_rewards(x, "orderstats_advantage")
    n = x.shape[-1]
    k = _checks.check_k(k, n, "orderstats_advantage", leave_one_out=True)
    return _rankwise(x, k, "advantage")[0]


def lstat(x: Any, k: int, objective: Any, *, mask: Any = None) -> jax.Array:
    """The batch L-statistic ``alpha . v`` of each group: unbiased for ``J = sum_j alpha_j
    E[R_(j:K)]`` (maths.md §1-2). Differentiable in ``x`` (the RP estimator); at ties the gradient
    is the mean of the tied ranks' weights.

    Args:
      x: rewards ``(..., N)``.
      k: subset size (static int, ``1 <= k <= N``).
      objective: preset string, Objective, or ``(k,)`` ascending weights (may be traced).
      mask: optional bool ``(..., N)``, True = valid. A group with n valid items is an n-group;
        groups with ``n < k`` give 0.

    Returns:
      ``(...)``.
    """
    stat, x = _statistic(x, k, objective, "lstat", mask=mask)
    return stat.value(x, mask)


def lstat_inclusion(x: Any, k: int, objective: Any) -> jax.Array:
    """Include-one L-values ``alpha . q_i`` (maths.md §2), ``(..., N)`` in item order."""
    stat, x = _statistic(x, k, objective, "lstat_inclusion")
    return stat.inclusion(x)


def lstat_leave_one_out(x: Any, k: int, objective: Any) -> jax.Array:
    """Leave-one-out L-values ``alpha . loo_i`` (maths.md §2), ``(..., N)``; ``k <= N - 1``."""
    stat, x = _statistic(x, k, objective, "lstat_leave_one_out", leave_one_out=True)
    return stat.leave_one_out(x)


def lstat_advantage(
    x: Any, k: int, objective: Any, *, mask: Any = None, method: str = "auto"
) -> jax.Array:
    """OrderGrad LR advantages ``a_i = alpha . q_i - alpha . loo_i`` (maths.md §2, §5).

    The LR gradient is ``(K/N) sum_i a_i grad log p(x_i)``; ``a`` is a drop-in replacement for
    GRPO/RLOO advantages. ``a_i = N/(N-K) (alpha . q_i - lstat)``; ``sum_i a_i = 0``; K = 1 with
    ``"Mean"`` gives RLOO.

    Args:
      x: rewards ``(..., N)``.
      k: subset size (static int, ``1 <= k <= N - 1``).
      objective: preset string, Objective, or ``(k,)`` ascending weights (may be traced).
      mask: optional bool ``(..., N)``: masked entries take no part (any value, NaN included)
        and get 0; a group with ``n <= k`` valid items gets all zeros (:func:`advantage_defined`).
      method: ``"auto"``, ``"sort"`` or ``"pairwise"`` (see :meth:`LStatistic.inclusion`).

    Returns:
      ``(..., N)`` in item order.
    """
    stat, x = _statistic(x, k, objective, "lstat_advantage", leave_one_out=True, mask=mask)
    return stat.advantage(x, mask, method=method)


def lstat_weights_by_rank(n: int, k: int, objective: Any) -> jax.Array:
    """``W alpha`` (maths.md §2): ``lstat = sum_m sort(x)_m w_m``; ``(n,)``, ascending ranks."""
    return LStatistic.create(n, k, objective).weights_by_rank


def lstat_weights_by_item(x: Any, k: int, objective: Any, *, mask: Any = None) -> jax.Array:
    """``d lstat / d x`` (the RP weights per item), ``(..., N)``; tied items share the mean."""
    stat, x = _statistic(x, k, objective, "lstat_weights_by_item", mask=mask)
    return stat.weights_by_item(x, mask)


def advantage_defined(mask: Any, k: int) -> jax.Array:
    """Whether each masked group has LR advantages: more than ``k`` valid items. ``(...)`` bool."""
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_ or mask.ndim < 1:
        raise TypeError(
            f"advantage_defined: mask must be a bool array (..., N); got "
            f"{mask.dtype} of shape {mask.shape}"
        )
    return jnp.sum(mask, axis=-1) > _checks.check_k(k)
