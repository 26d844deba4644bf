"""Host-side float64 binomial rank tables of the batch regime (maths.md §2).

All tables are NumPy float64, computed from log-binomials (so C(4096, 512) does not overflow) and
cached per (n, k) or per (n, k, weights). Callers cast them once to the compute dtype.

Notation (1-based m, j; maths.md §2): for a group of n items and K-subsets,

* ``W[m, j] = C(m-1, j-1) C(n-m, K-j) / C(n, K)``: the probability that the m-th smallest item
  is the j-th smallest of a uniformly random K-subset, so ``v = sort(x) @ W``;
* include-one tables, normalised by ``C(n-1, K-1)``: ``A[m, j]`` (items ranked below the included
  one), ``B[t, j]`` (the included item itself), ``C[m, j]`` (items ranked above). With
  ``V = W_{n-1, K-1}`` they are ``A[m, j] = V[m, j]`` (m < n, j < K), ``B = (n / K) W`` and
  ``C[m, j] = V[m-1, j-1]`` (m > 1, j > 1); every other entry is 0.

* leave-one-out tables, with ``U = W_{n-1, K}`` (the U-statistic of the n-1 other items):
  ``L_below[m, j] = U[m, j]`` (m < n) and ``L_above[m, j] = U[m-1, j]`` (m > 1); zero if K = n.

With fixed weights ``alpha`` the rank axis collapses: ``by_rank = W alpha``, ``below = A alpha``,
``own = B alpha``, ... are length-n vectors. The advantage ``q - loo`` has the include-one scan's
form with ``below - loo_below``, ``own``, ``above - loo_above``, so it is computed directly rather
than as ``N/(N-K) (q - v)``, whose factor N/(N-K) would amplify float32 rounding when K is near N.
"""

from __future__ import annotations

import functools
from typing import Generic, NamedTuple, TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import special

__all__ = [
    "Tables",
    "collapsed",
    "collapsed_by_count",
    "orderstat_table",
    "rank_tables",
    "rank_tables_by_count",
]

# Largest number of float64 entries a per-count (masked) table stack may have.
MAX_STACK_ENTRIES = 1 << 26


ArrayT = TypeVar("ArrayT")


class Tables(NamedTuple, Generic[ArrayT]):
    """The rank tables of one group size (see module doc).

    Each field is ``(..., n, k)`` (rank-wise) or, contracted with fixed weights, ``(..., n)``:
    NumPy float64 on the host (``Tables[np.ndarray]``), cast once to device arrays
    (``Tables[jax.Array]``) by the transforms.
    """

    by_rank: ArrayT
    below: ArrayT
    own: ArrayT
    above: ArrayT
    loo_below: ArrayT
    loo_above: ArrayT


@functools.lru_cache(maxsize=8)
def _log_factorial(n: int) -> np.ndarray:
    """``log(i!)`` for i = 0..n, float64."""
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])


def orderstat_table(n: int, k: int, cols: np.ndarray | None = None) -> np.ndarray:
    """``W[m, j] = C(m-1, j-1) C(n-m, k-j) / C(n, k)`` (maths.md §2), float64.

    In log space ``log W[m, j] = a_m - b_j - g(m - j)`` with ``a_m = log (m-1)! (n-m)! / C(n, k)``,
    ``b_j = log (j-1)! (k-j)!`` and ``g(d) = log d! (n-k-d)!`` (``+inf`` outside ``[0, n-k]``), so
    the only two-dimensional term is a Toeplitz view of ``g``: no gather, one ``exp`` per entry.

    Args:
      n: group size (>= 0); k: subset size (>= 0).
      cols: optional 0-based columns ``j - 1`` to compute (default all k).

    Returns:
      ``(n, len(cols))`` float64; each full column sums to 1 (all zero when ``k > n``).
    """
    cols = np.arange(k) if cols is None else np.asarray(cols, dtype=np.int64)
    if n == 0 or cols.size == 0 or k > n:
        return np.zeros((n, cols.size))
    lf = _log_factorial(n)
    m = np.arange(1, n + 1)
    j = cols + 1
    a = lf[m - 1] + lf[n - m] - (lf[n] - lf[k] - lf[n - k])
    b = lf[j - 1] + lf[k - j]
    # g over d = m - j in [-(k-1), n-1], stored at position d + k - 1.
    g = np.full(n + k - 1, np.inf)
    d = np.arange(n - k + 1)
    g[k - 1 : n] = lf[d] + lf[n - k - d]
    # Window s = m - 1 holds d = m-k .. m-1, i.e. j = k .. 1: reverse it to ascending j.
    toeplitz = sliding_window_view(g, k)[:n, ::-1]
    if cols.size < k:
        toeplitz = toeplitz[:, cols]
    out = a[:, None] - toeplitz
    out -= b
    return np.exp(out, out=out)


def _shift_pair(table: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pads an ``(n-1, ...)`` table to n rows twice: rows 0..n-2 (below) and rows 1..n-1 (above)."""
    below = np.zeros((n, *table.shape[1:]))
    above = np.zeros((n, *table.shape[1:]))
    below[: n - 1] = table
    above[1:] = table
    return below, above


def _collapsed_uncached(n: int, k: int, weights: np.ndarray) -> Tables[np.ndarray]:
    """Collapsed tables for one group size; only the columns with non-zero weight are built."""
    nz = np.flatnonzero(weights)
    by_rank = orderstat_table(n, k, nz) @ weights[nz]
    # Columns c of V = W_{n-1, k-1} that A (weight alpha_c, c < k-1) and C (weight alpha_{c+1},
    # shifted down one rank) need.
    need = np.union1d(nz[nz < k - 1], nz[nz >= 1] - 1)
    v = orderstat_table(n - 1, k - 1, need)
    below, _ = _shift_pair(v @ weights[need], n)
    _, above = _shift_pair(v @ weights[need + 1], n)
    loo_below, loo_above = _shift_pair(orderstat_table(n - 1, k, nz) @ weights[nz], n)
    return Tables(by_rank, below, (n / k) * by_rank, above, loo_below, loo_above)


@functools.lru_cache(maxsize=256)
def _collapsed_cached(n: int, k: int, weights_bytes: bytes) -> Tables[np.ndarray]:
    weights = np.frombuffer(weights_bytes, dtype=np.float64)
    out = _collapsed_uncached(n, k, weights)
    for a in out:
        a.setflags(write=False)
    return out


def collapsed(n: int, k: int, weights: np.ndarray) -> Tables[np.ndarray]:
    """The tables contracted with ``weights`` for a group of ``n`` (each ``(n,)``), cached.

    Args:
      n: group size; k: subset size, ``1 <= k <= n``; weights: ``(k,)`` ascending float64.
    """
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    return _collapsed_cached(n, k, weights.tobytes())


def _check_stack_size(n: int, width: int) -> None:
    entries = (n + 1) * n * width * len(Tables._fields)
    if entries > MAX_STACK_ENTRIES:
        raise ValueError(
            f"masked groups of N={n} need per-count tables of {entries:,} entries (limit "
            f"{MAX_STACK_ENTRIES:,}); use smaller groups, fixed (non-traced) weights, or no mask"
        )


@functools.lru_cache(maxsize=32)
def _collapsed_by_count_cached(n: int, k: int, weights_bytes: bytes) -> Tables[np.ndarray]:
    weights = np.frombuffer(weights_bytes, dtype=np.float64)
    _check_stack_size(n, 1)
    out = Tables(*(np.zeros((n + 1, n)) for _ in Tables._fields))
    for count in range(k, n + 1):  # host precompute over table rows, not data
        for dst, src in zip(out, _collapsed_uncached(count, k, weights), strict=False):
            dst[count, :count] = src
    for a in out:
        a.setflags(write=False)
    return out


def collapsed_by_count(n: int, k: int, weights: np.ndarray) -> Tables[np.ndarray]:
    """Collapsed tables of a sub-group of every size ``count = 0..n``, zero-padded to length n.

    Row ``count`` of each ``(n + 1, n)`` array holds the tables of a group of ``count`` valid
    items in its first ``count`` entries; rows with ``count < k`` are 0. Used for masked groups.
    """
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    return _collapsed_by_count_cached(n, k, weights.tobytes())


def _rank_tables_uncached(n: int, k: int) -> Tables[np.ndarray]:
    w = orderstat_table(n, k)
    v = orderstat_table(n - 1, k - 1)
    below, _ = _shift_pair(np.concatenate([v, np.zeros((n - 1, 1))], 1), n)
    _, above = _shift_pair(np.concatenate([np.zeros((n - 1, 1)), v], 1), n)
    loo_below, loo_above = _shift_pair(orderstat_table(n - 1, k), n)
    return Tables(w, below, (n / k) * w, above, loo_below, loo_above)


@functools.lru_cache(maxsize=16)
def rank_tables(n: int, k: int) -> Tables[np.ndarray]:
    """The rank-wise tables of a group of ``n`` (each ``(n, k)`` float64), cached."""
    out = _rank_tables_uncached(n, k)
    for a in out:
        a.setflags(write=False)
    return out


@functools.lru_cache(maxsize=8)
def rank_tables_by_count(n: int, k: int) -> Tables[np.ndarray]:
    """Rank-wise tables for every sub-group size ``count = 0..n``, each ``(n + 1, n, k)``."""
    _check_stack_size(n, k)
    out = Tables(*(np.zeros((n + 1, n, k)) for _ in Tables._fields))
    for count in range(k, n + 1):
        for dst, src in zip(out, _rank_tables_uncached(count, k), strict=False):
            dst[count, :count] = src
    for a in out:
        a.setflags(write=False)
    return out


def binomial_log_coefficients(n: int) -> np.ndarray:
    """``log C(n, i)`` for i = 0..n, float64 ``(n + 1,)``."""
    i = np.arange(n + 1)
    return special.gammaln(n + 1) - special.gammaln(i + 1) - special.gammaln(n - i + 1)
