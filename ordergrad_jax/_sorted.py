"""Sorted-order kernels on the last axis, shared by the transforms and the estimators (private).

Inputs are checked by the callers. A group is the last axis of ``x`` (``(..., n)``); sorts are
stable, invalid entries (where given) sort last, and rank comparisons are exact on ties.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

# With method="auto", groups up to this size use the sort-free pairwise path for include-one and
# advantage transforms (ranks by O(N^2) comparisons, no sort, no scatter); larger groups sort.
# On a 2-core CPU (`ordergrad-jax bench transform`, reports/transform/) pairwise took 0.10-0.28
# of the sort floor's time at N <= 32 (earlier runs: slower from N = 48 on). On an H100 (jax
# 0.11.2) small batches are launch-bound (~40 us for every path) and at scale the sort wins:
# 65536 groups of 16 took 91 us sorted vs 468 us pairwise (floor 80 us), 16384 x 64 took 74 us
# vs 3952 us; so accelerators always sort.
SORT_FREE_MAX_N = 32
SORT_FREE_MAX_N_BY_BACKEND = {"cpu": SORT_FREE_MAX_N}  # other backends: 0 (always sort)
METHODS = ("auto", "sort", "pairwise")


def sort_free_max_n(backend: str | None = None) -> int:
    """The largest group size that ``method="auto"`` sends to the pairwise path on ``backend``
    (default: ``jax.default_backend()``, read at trace time)."""
    return SORT_FREE_MAX_N_BY_BACKEND.get(backend or jax.default_backend(), 0)


def sort_with_index(
    x: jax.Array, invalid: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Stable ascending sort on the last axis, invalid entries last: (xs, perm, sorted invalid)."""
    iota = lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)
    if invalid is None:
        xs, perm = lax.sort((x, iota), dimension=x.ndim - 1, num_keys=1)
        return xs, perm, None
    invalid_s, xs, perm = lax.sort((invalid, x, iota), dimension=x.ndim - 1, num_keys=2)
    return xs, perm, invalid_s


def unsort(values: jax.Array, perm: jax.Array) -> jax.Array:
    """Puts values at sorted positions back to item order: ``out[..., perm[t], :] = values[t]``.

    ``values`` is ``(..., n)`` or ``(..., n, k)`` (rank axis last); ``perm`` is ``(..., n)``.
    """
    extra = values.ndim - perm.ndim
    index = jnp.broadcast_to(perm.reshape(perm.shape + (1,) * extra), values.shape)
    return jnp.put_along_axis(
        jnp.zeros_like(values), index, values, axis=perm.ndim - 1, inplace=False
    )


def middle(xs: jax.Array, count: jax.Array | None = None) -> jax.Array:
    """The centre used before the scans: the middle order statistic, ``(..., 1)``."""
    if count is None:
        return xs[..., (xs.shape[-1] - 1) // 2, None]
    return jnp.take_along_axis(xs, jnp.maximum(count - 1, 0) // 2, axis=-1)


def tie_average(xs: jax.Array, w: jax.Array, invalid_s: jax.Array | None) -> jax.Array:
    """Replaces each weight by the mean over its run of tied sorted values (maths.md §2 ties)."""
    n = xs.shape[-1]
    w = jnp.broadcast_to(w, xs.shape)
    idx = lax.broadcasted_iota(jnp.int32, xs.shape, xs.ndim - 1)
    differs = xs[..., 1:] != xs[..., :-1]
    if invalid_s is not None:
        differs = differs | (invalid_s[..., 1:] != invalid_s[..., :-1])
    true = jnp.ones((*xs.shape[:-1], 1), bool)
    starts = jnp.concatenate([true, differs], axis=-1)
    ends = jnp.concatenate([differs, true], axis=-1)
    start = lax.cummax(jnp.where(starts, idx, 0), axis=xs.ndim - 1)
    end = lax.cummin(jnp.where(ends, idx, n - 1), axis=xs.ndim - 1, reverse=True)
    csum = jnp.concatenate([jnp.zeros_like(w[..., :1]), jnp.cumsum(w, axis=-1)], axis=-1)
    run_sum = jnp.take_along_axis(csum, end + 1, -1) - jnp.take_along_axis(csum, start, -1)
    return jnp.where(start == end, w, run_sum / (end - start + 1).astype(w.dtype))


def scan(
    xc: jax.Array, below: jax.Array, own: jax.Array, above: jax.Array, axis: int = -1
) -> jax.Array:
    """A scan transform at sorted positions from centred sorted rewards (maths.md §2).

    ``y_t = sum_{m<t} xc_m below_m + xc_t own_t + sum_{m>t} xc_m above_m``, as one inclusive scan:
    ``cumsum(xc (below - above)) + xc (own - below) + sum(xc above)`` along ``axis``: -1 for
    ``(..., n)`` collapsed vectors, -2 for ``(n, k)`` rank-wise tables with ``xc (..., n, 1)``.
    """
    return (
        jnp.cumsum(xc * (below - above), axis=axis)
        + xc * (own - below)
        + jnp.sum(xc * above, axis=axis, keepdims=True)
    )


def ranks_below(x: jax.Array) -> jax.Array:
    """``lt[..., i, j]``: item j ranks below item i, ``(..., n, n)`` bool (maths.md §7, ties).

    Stable order: ``x_j < x_i``, ties broken by index. The comparisons are made on ``x`` itself,
    never on a value computed from it (such as ``x - mean``): XLA may recompute a fused value in
    each place it is read and contract some copies into fused multiply-adds (XLA:CPU in jax 0.10
    does), so two copies of "the same" float can differ by an ulp and an item would rank below
    itself. ``lt`` is also irreflexive and antisymmetric by construction: only the pairs
    ``j < i`` are compared, the rest is their negated transpose.
    """
    idx = lax.broadcasted_iota(jnp.int32, (x.shape[-1], x.shape[-1]), 1)
    lower = idx < idx.T  # j < i
    below_or_tied = x[..., None, :] <= x[..., :, None]  # x_j <= x_i: j first when tied, j < i
    return jnp.where(lower, below_or_tied, ~jnp.swapaxes(below_or_tied, -1, -2) & (idx != idx.T))
