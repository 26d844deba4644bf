"""The known-(r, p) regime (maths.md §3): exact order-statistic values of K i.i.d. draws.

A discrete distribution puts probability ``p_b`` on arm ``b`` with reward ``r_b``; K arms are
drawn with replacement. All functions take ``r`` and ``p`` of shape ``(..., m)`` (arms on the last
axis, leading axes independent), a static int ``k``, and are differentiable in ``p`` (exact policy
gradients: ``jax.grad`` of :func:`lstat` through a softmax) and in ``r``. ``p`` is normalised by
its sum. No Python loops over arms or ranks: one sort of the arms and O(m k) scans.

With the arms sorted by value, ``F_t = p_(1) + ... + p_(t)`` and ``T(t, j) = P(Bin(K, F_t) >= j)
= P(X_(j:K) <= r_(t))``; summation by parts gives
``v_j = r_(m) - sum_{t<m} T(t, j) (r_(t+1) - r_(t))``, and the include-one value conditions on
the first draw: ``P(X_(j:K) <= r_(t) | A_1 = b) = P(Bin(K-1, F_t) >= j - 1{r_b <= r_(t)})``.

Value checks on ``p`` (negative, non-finite, zero sum) run when ``p`` is concrete; under ``jit``
they are skipped (wrap with ``jax.experimental.checkify`` if you need them there).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ordergrad_jax import _checks
from ordergrad_jax import tables as _tables
from ordergrad_jax._sorted import unsort
from ordergrad_jax.lstatistic import objective_weights

__all__ = [
    "advantage",
    "inclusion",
    "lstat",
    "lstat_advantage",
    "lstat_inclusion",
    "orderstats",
]


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def binomial_pmf(n: int, f: jax.Array) -> jax.Array:
    """``P(Bin(n, f) = i)`` for i = 0..n: ``(..., n + 1)`` from ``f`` of shape ``(...)``.

    Log-space, exact at ``f`` in {0, 1}; its derivative ``n (pmf_{n-1}(i-1) - pmf_{n-1}(i))`` is
    exact there too (autodiff of the log form would give NaN).
    """
    f = f[..., None]
    i = jnp.arange(n + 1)
    log_c = jnp.asarray(_tables.binomial_log_coefficients(n), f.dtype)
    inside = (f > 0) & (f < 1)
    fs = jnp.where(inside, f, 0.5)
    log_pmf = log_c + i * jnp.log(fs) + (n - i) * jnp.log1p(-fs)
    edge = jnp.where(f <= 0, i == 0, i == n).astype(f.dtype)
    return jnp.where(inside, jnp.exp(log_pmf), edge)


@binomial_pmf.defjvp
def _binomial_pmf_jvp(n: int, primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    (f,), (df,) = primals, tangents
    pmf = binomial_pmf(n, f)
    if n == 0:
        return pmf, jnp.zeros_like(pmf)
    lower = binomial_pmf(n - 1, f)
    zero = jnp.zeros_like(lower[..., :1])
    slope = n * (jnp.concatenate([zero, lower], -1) - jnp.concatenate([lower, zero], -1))
    return pmf, slope * df[..., None]


def _binomial_sf(n: int, f: jax.Array, k: int) -> jax.Array:
    """``P(Bin(n, f) >= j)`` for j = 1..k (zero for j > n): ``(..., k)``."""
    pmf = binomial_pmf(n, f)
    sf = jnp.flip(jnp.cumsum(jnp.flip(pmf, -1), -1), -1)[..., 1:]  # j = 1..n
    width = sf.shape[-1]
    if width >= k:
        return sf[..., :k]
    return jnp.concatenate([sf, jnp.zeros((*sf.shape[:-1], k - width), sf.dtype)], -1)


def _check(r: Any, p: Any, k: Any, where: str) -> tuple[jax.Array, jax.Array, int]:
    r, p = jnp.asarray(r), jnp.asarray(p)
    if r.ndim < 1 or r.shape != p.shape:
        raise ValueError(
            f"{where}: r and p must have the same shape (..., m) with the arms on "
            f"the last axis; got r {r.shape}, p {p.shape}"
        )
    for name, a in (("r", r), ("p", p)):
        if jnp.issubdtype(a.dtype, jnp.complexfloating):
            raise TypeError(f"{where}: {name} must be real, got dtype {a.dtype}")
    dtype = jnp.result_type(r.dtype, p.dtype, float)
    k = _checks.check_k(k)
    try:
        p_host = np.asarray(p, dtype=np.float64)
    except jax.errors.TracerArrayConversionError:
        p_host = None
    if p_host is not None:
        if not np.all(np.isfinite(p_host)) or np.any(p_host < 0):
            raise ValueError(f"{where}: p must be finite and non-negative; got {p_host}")
        if np.any(p_host.sum(-1) <= 0):
            raise ValueError(
                f"{where}: p must sum to a positive number over the arms (it is "
                f"normalised by its sum); some group sums to 0"
            )
    return r.astype(dtype), p.astype(dtype), k


@functools.partial(jax.jit, static_argnames=("k",))
def _exact(r: jax.Array, p: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """(v (..., k), q (..., m, k)): exact order statistics and include-one values, item order."""
    iota = lax.broadcasted_iota(jnp.int32, r.shape, r.ndim - 1)
    rs, ps, perm = lax.sort((r, p, iota), dimension=r.ndim - 1, num_keys=1)
    cdf = jnp.cumsum(ps, -1)
    f = (cdf / cdf[..., -1:])[..., :-1]  # F_1..F_{m-1}; F_m = 1 is not needed
    gap = (rs[..., 1:] - rs[..., :-1])[..., None]  # r_(t+1) - r_(t), (..., m-1, 1)
    top = rs[..., -1, None]
    v = top - jnp.sum(_binomial_sf(k, f, k) * gap, -2)
    # Include-one: thresholds shift by one rank from the arm's own sorted position on (ties give
    # zero gaps, so the run start and the arm's position agree).
    below = _binomial_sf(k - 1, f, k)  # P(Bin(K-1, F_t) >= j)
    jump = binomial_pmf(k - 1, f)[..., :k]  # P(Bin(K-1, F_t) = j-1)
    base = top - jnp.sum(below * gap, -2)  # (..., k)
    shift = jnp.cumsum(jnp.flip(jump * gap, -2), -2)
    zero = jnp.zeros((*shift.shape[:-2], 1, k), shift.dtype)
    shift = jnp.flip(jnp.concatenate([zero, shift], -2), -2)
    q_sorted = base[..., None, :] - shift  # (..., m, k): suffix sums from each arm's position
    return v, unsort(q_sorted, perm)


def _alpha(objective: Any, k: int, dtype: Any) -> jax.Array:
    return jnp.asarray(objective_weights(objective, k), dtype)


def orderstats(r: Any, p: Any, k: int) -> jax.Array:
    """Exact ``E[X_(j:K)]`` for K draws with replacement: ``(..., k)`` ascending (maths.md §3).

    Args:
      r: arm rewards ``(..., m)``; p: arm probabilities ``(..., m)`` (normalised by their sum).
      k: number of draws (static int >= 1).
    """
    r, p, k = _check(r, p, k, "exact.orderstats")
    return _exact(r, p, k)[0]


def inclusion(r: Any, p: Any, k: int) -> jax.Array:
    """Exact include-one values ``q[b, j] = E[X_(j:K) | first draw is arm b]``: ``(..., m, k)``."""
    r, p, k = _check(r, p, k, "exact.inclusion")
    return _exact(r, p, k)[1]


def advantage(r: Any, p: Any, k: int) -> jax.Array:
    """Exact rank advantages ``q[b] - v``: ``(..., m, k)``; ``sum_b p_b adv[b] = 0`` (maths.md §3).

    The batch advantages are unbiased for these: ``E[adv_I | arm of I = b] = adv[b]``.
    """
    r, p, k = _check(r, p, k, "exact.advantage")
    v, q = _exact(r, p, k)
    return q - v[..., None, :]


def lstat(r: Any, p: Any, k: int, objective: Any) -> jax.Array:
    """The exact objective ``J = alpha . v`` (maths.md §1, §3): ``(...)``; differentiable in p.

    Args:
      r: ``(..., m)``; p: ``(..., m)``; k: static int; objective: preset, Objective or ``(k,)``.
    """
    r, p, k = _check(r, p, k, "exact.lstat")
    return _exact(r, p, k)[0] @ _alpha(objective, k, r.dtype)


def lstat_inclusion(r: Any, p: Any, k: int, objective: Any) -> jax.Array:
    """Exact include-one L-values ``alpha . q[b]``: ``(..., m)``."""
    r, p, k = _check(r, p, k, "exact.lstat_inclusion")
    return _exact(r, p, k)[1] @ _alpha(objective, k, r.dtype)


def lstat_advantage(r: Any, p: Any, k: int, objective: Any) -> jax.Array:
    """Exact L-advantages ``alpha . (q[b] - v)``: ``(..., m)``; ``sum_b p_b a_b = 0``.

    ``grad_theta J = K sum_b p_b a_b grad log p_b`` for a policy ``p(theta)`` (maths.md §3, §5).
    """
    r, p, k = _check(r, p, k, "exact.lstat_advantage")
    v, q = _exact(r, p, k)
    alpha = _alpha(objective, k, r.dtype)
    return q @ alpha - (v @ alpha)[..., None]
