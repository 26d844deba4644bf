"""Brute-force references written from the definitions (maths.md §2-3), NumPy float64.

They enumerate K-subsets of a group, or K-tuples of arms, so they are only for small sizes; the
library never calls them.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def subset_orderstats(x: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Order statistics of all K-subsets of one group ``x (N,)``.

    Returns ``v (k,)``, ``inclusion (N, k)``, ``leave_one_out (N, k)`` (NaN when k > N - 1) and
    ``grad_weights (k, N)``: ``d v_j / d x_i`` (away from ties).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    subsets = list(itertools.combinations(range(n), k))
    sorted_vals = np.array([np.sort(x[list(s)]) for s in subsets])  # (S, k)
    member = np.zeros((len(subsets), n), dtype=bool)
    rank_in = np.full((len(subsets), n), -1)
    for row, s in enumerate(subsets):
        member[row, list(s)] = True
        order = np.argsort(x[list(s)], kind="stable")
        for pos, idx in enumerate(order):
            rank_in[row, s[idx]] = pos
    v = sorted_vals.mean(0)
    inclusion = np.stack([sorted_vals[member[:, i]].mean(0) for i in range(n)])
    if k <= n - 1:
        loo = np.stack([sorted_vals[~member[:, i]].mean(0) for i in range(n)])
    else:
        loo = np.full((n, k), np.nan)
    grad = np.zeros((k, n))
    for row in range(len(subsets)):
        for i in np.flatnonzero(member[row]):
            grad[rank_in[row, i], i] += 1.0 / len(subsets)
    return {"v": v, "inclusion": inclusion, "leave_one_out": loo, "grad_weights": grad}


def tuple_orderstats(r: np.ndarray, p: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Exact order statistics of K draws with replacement by enumerating all m^K tuples.

    Returns ``v (k,)`` and ``inclusion (m, k)`` (conditioned on the first draw).
    """
    r = np.asarray(r, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    m = r.size
    v = np.zeros(k)
    inclusion = np.zeros((m, k))
    for tup in itertools.product(range(m), repeat=k):
        prob = math.prod(p[list(tup)])
        vals = np.sort(r[list(tup)])
        v += prob * vals
        if p[tup[0]] > 0:
            inclusion[tup[0]] += prob / p[tup[0]] * vals
    return {"v": v, "inclusion": inclusion}


def tuple_lstat_jax(r, p, k: int, alpha):
    """``sum over all m^K tuples of prod p * (alpha . sort(r[tuple]))``, differentiable (jnp)."""
    import jax.numpy as jnp

    p = p / jnp.sum(p)
    m = r.shape[-1]
    tuples = np.array(list(itertools.product(range(m), repeat=k)))  # (m^k, k)
    prob = jnp.prod(p[tuples], axis=-1)
    vals = jnp.sort(r[tuples], axis=-1) @ alpha
    return jnp.sum(prob * vals)
