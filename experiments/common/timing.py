"""Wall-clock timing of jitted functions, for benchmarks (never for test assertions), and the
transform timing: the OrderGrad advantage against the floor any rank transform pays.

The transform timing is shared by the transform benchmark (``ordergrad-jax bench transform``,
whose config is :class:`TransformTimingConfig`) and the variance study's runtime study. For each
(groups, N, K) it times, jitted, float32, in one process:

* ``floor``: ``lax.sort`` of ``(x, iota)`` plus scattering a ``cumsum`` of the sorted values back to
  item order (what any sort-based rank transform must do);
* ``grpo``: the GRPO mean/std normalisation (for context);
* ``ordergrad``: ``og.lstat_advantage`` with its automatic path, and both forced paths
  (``sort``; ``pairwise``, the sort-free O(N^2) path, for N <= 64).

Ratios against ``floor`` are what to compare across machines; absolute times are this machine's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

import ordergrad_jax as og


def time_jitted(fn: Callable[..., Any], *args: Any, number: int = 20, repeats: int = 5) -> float:
    """Seconds per call of ``fn(*args)``: compiled and warmed up first, then the best of
    ``repeats`` rounds of ``number`` back-to-back calls (the usual ``timeit`` convention)."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / number)
    return best


FULL_SHAPES = ((4096, 16, 4), (4096, 32, 8), (64, 1024, 256), (4, 16384, 64))
QUICK_SHAPES = ((256, 16, 4), (64, 32, 8), (4, 1024, 256))
PAIRWISE_MAX_N = 64


@dataclasses.dataclass(frozen=True)
class TransformTimingConfig:
    """Settings of the transform timing (the transform benchmark's config)."""

    shapes: tuple[tuple[int, int, int], ...] = FULL_SHAPES
    """(groups, N, K) per row."""
    objective: str = "LowerTailMean:0.25"
    number: int = 20
    """Calls per timing round."""
    repeats: int = 5
    """Timing rounds; the best is kept."""
    seed: int = 0


QUICK_TRANSFORM_TIMING = TransformTimingConfig(shapes=QUICK_SHAPES, number=3, repeats=2)


def floor_transform(x: jax.Array) -> jax.Array:
    """Sort ``(x, iota)``, cumsum the sorted values, scatter back: ``(G, N) -> (G, N)``."""
    iota = lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)
    xs, perm = lax.sort((x, iota), dimension=x.ndim - 1, num_keys=1)
    return jnp.put_along_axis(jnp.zeros_like(xs), perm, jnp.cumsum(xs, -1), -1, inplace=False)


def grpo_transform(x: jax.Array) -> jax.Array:
    """GRPO advantages ``(x - mean) / (std + 1e-6)`` per group."""
    return (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-6)


def time_transforms(config: TransformTimingConfig) -> list[dict]:
    """Times every shape; returns one row (a dict of seconds and ratios) per shape."""
    rows = []
    for groups, n, k in config.shapes:
        x = jax.random.normal(jax.random.key(config.seed), (groups, n), jnp.float32)
        stat = og.LStatistic.create(n, k, config.objective, dtype=jnp.float32)
        fns = {
            "floor": jax.jit(floor_transform),
            "grpo": jax.jit(grpo_transform),
            "ordergrad": jax.jit(lambda z, s=stat: s.advantage(z)),
            "sort": jax.jit(lambda z, s=stat: s.advantage(z, method="sort")),
        }
        if n <= PAIRWISE_MAX_N:
            fns["pairwise"] = jax.jit(lambda z, s=stat: s.advantage(z, method="pairwise"))
        secs = {
            name: time_jitted(fn, x, number=config.number, repeats=config.repeats)
            for name, fn in fns.items()
        }
        row = {
            "groups": groups,
            "N": n,
            "K": k,
            **{f"{name}_us": s * 1e6 for name, s in secs.items()},
        }
        row["ordergrad_over_floor"] = secs["ordergrad"] / secs["floor"]
        row["floor_over_grpo"] = secs["floor"] / secs["grpo"]
        row["path"] = "pairwise" if n <= og.sort_free_max_n() else "sort"
        rows.append(row)
    return rows
