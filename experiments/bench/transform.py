"""Benchmark: the OrderGrad advantage transform against the floor any rank transform pays.

What it times (per (groups, N, K), jitted, float32: the sort floor, GRPO, ``og.lstat_advantage``
on each path) is the transform timing of :mod:`ordergrad_experiments.common.timing`, which the
variance study's runtime study runs too; this module prints and writes it. Ratios against ``floor``
are what to compare across machines; absolute times are this machine's.
Run: ``ordergrad-jax bench transform [--quick] [--out DIR]``.
"""

from __future__ import annotations

import platform
from typing import Any

import jax

from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.common.timing import (
    FULL_SHAPES,
    QUICK_TRANSFORM_TIMING,
    TransformTimingConfig,
    time_transforms,
)

__all__ = ["FULL_SHAPES", "QUICK", "TransformBenchConfig", "print_table", "run", "run_shapes"]

TransformBenchConfig = TransformTimingConfig
"""Settings of the transform benchmark: those of the transform timing it runs."""

QUICK = QUICK_TRANSFORM_TIMING


def run_shapes(config: TransformBenchConfig) -> list[dict]:
    """Times every shape (:func:`ordergrad_experiments.common.timing.time_transforms`); one row per
    shape."""
    return time_transforms(config)


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
