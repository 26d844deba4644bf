"""Benchmark: the OrderGrad advantage transform against the floor any rank transform pays.

For each (groups, N, K) it times, jitted, float32, in one process:

* ``floor``: ``lax.sort`` of ``(x, iota)`` plus scattering a ``cumsum`` of the sorted values back to
  item order (what any sort-based rank transform must do);
* ``grpo``: the GRPO mean/std normalisation (for context);
* ``ordergrad``: ``og.lstat_advantage`` with its automatic path, and both forced paths
  (``sort``; ``pairwise``, the sort-free O(N^2) path, for N <= 64).

Ratios against ``floor`` are what to compare across machines; absolute times are this machine's.
Run: ``ordergrad-jax bench transform [--quick] [--out DIR]``.
"""

from __future__ import annotations

import dataclasses
import platform
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

import ordergrad_jax as og
from experiments.common.runs import RunWriter, markdown_table
from experiments.common.timing import time_jitted

FULL_SHAPES = ((4096, 16, 4), (4096, 32, 8), (64, 1024, 256), (4, 16384, 64))
QUICK_SHAPES = ((256, 16, 4), (64, 32, 8), (4, 1024, 256))
PAIRWISE_MAX_N = 64


@dataclasses.dataclass(frozen=True)
class TransformBenchConfig:
    """Settings of the transform benchmark."""

    shapes: tuple[tuple[int, int, int], ...] = FULL_SHAPES
    """(groups, N, K) per row."""
    objective: str = "LowerTailMean:0.25"
    number: int = 20
    """Calls per timing round."""
    repeats: int = 5
    """Timing rounds; the best is kept."""
    seed: int = 0


QUICK = TransformBenchConfig(shapes=QUICK_SHAPES, number=3, repeats=2)


def floor_transform(x: jax.Array) -> jax.Array:
    """Sort ``(x, iota)``, cumsum the sorted values, scatter back: ``(G, N) -> (G, N)``."""
    iota = lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)
    xs, perm = lax.sort((x, iota), dimension=x.ndim - 1, num_keys=1)
    return jnp.put_along_axis(jnp.zeros_like(xs), perm, jnp.cumsum(xs, -1), -1, inplace=False)


def grpo_transform(x: jax.Array) -> jax.Array:
    """GRPO advantages ``(x - mean) / (std + 1e-6)`` per group."""
    return (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-6)


def run_shapes(config: TransformBenchConfig) -> list[dict]:
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


def print_table(rows: list[dict]) -> None:
    """Prints the rows as a table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="lstat_advantage vs the sort floor (float32, jitted; microseconds)")
    for col in (
        "groups",
        "N",
        "K",
        "floor",
        "grpo",
        "ordergrad",
        "path",
        "sort",
        "pairwise",
        "ordergrad/floor",
        "floor/grpo",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        pairwise = f"{r['pairwise_us']:.0f}" if "pairwise_us" in r else "-"
        table.add_row(
            str(r["groups"]),
            str(r["N"]),
            str(r["K"]),
            f"{r['floor_us']:.0f}",
            f"{r['grpo_us']:.0f}",
            f"{r['ordergrad_us']:.0f}",
            r["path"],
            f"{r['sort_us']:.0f}",
            pairwise,
            f"{r['ordergrad_over_floor']:.2f}",
            f"{r['floor_over_grpo']:.1f}",
        )
    Console(width=140).print(table)


def run(config: TransformBenchConfig, writer: RunWriter, progress: Any = None) -> list[dict]:
    """Runs the benchmark, prints the table; writes the rows (``metrics.jsonl``), the config
    with the machine (``config.json``) and the table (``summary.md``) through ``writer``."""
    writer.write_config(
        config, jax=jax.__version__, device=str(jax.devices()[0]), platform=platform.platform()
    )
    rows = run_shapes(config)
    print_table(rows)
    writer.log(rows)
    columns = ["groups", "N", "K", "floor_us", "grpo_us", "ordergrad_us", "path", "sort_us"]
    columns += ["pairwise_us", "ordergrad_over_floor", "floor_over_grpo"]
    writer.write_summary(
        "# lstat_advantage vs the sort floor (float32, jitted; microseconds)\n\n"
        + markdown_table(rows, columns, floatfmt=".3g")
    )
    return rows
