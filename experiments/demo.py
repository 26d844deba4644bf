"""A first look: objectives and their OrderGrad advantages on one sample group."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og

REWARDS = (0.1, 0.9, -1.2, 0.4, 2.5, 0.0, -0.3, 1.1)
OBJECTIVES = ("Mean", "ReMax", "ReMin", "TopM:2", "CVaR:0.5", "Median", "TrimM:1", "GMD")


def run(rewards=REWARDS, k: int = 4, objectives=OBJECTIVES) -> list[dict]:
    """Per objective: its rank weights, the batch L-statistic and the LR advantages."""
    x = jnp.asarray(rewards, jnp.float32)
    rows = []
    for objective in objectives:
        rows.append(
            {
                "objective": objective,
                "weights": np.asarray(og.rank_weights(objective, k)),
                "lstat": float(og.lstat(x, k, objective)),
                "advantage": np.asarray(og.lstat_advantage(x, k, objective)),
            }
        )
    return rows


def main(k: int = 4) -> None:
    """Prints the table."""
    from rich.console import Console
    from rich.table import Table

    rows = run(k=k)
    table = Table(
        title=f"OrderGrad advantages on one group of N={len(REWARDS)}, K={k} "
        "(rank weights ascending: first = minimum)"
    )
    table.add_column("objective")
    table.add_column("weights")
    table.add_column("lstat", justify="right")
    for r in REWARDS:
        table.add_column(f"x={r:g}", justify="right")
    for row in rows:
        weights = " ".join(f"{w:.2f}" for w in row["weights"])
        table.add_row(
            row["objective"],
            weights,
            f"{row['lstat']:.3f}",
            *(f"{a:+.3f}" for a in row["advantage"]),
        )
    Console(width=160).print(table)
    print("LR update: (K/N) * sum_i advantage_i * grad log p(x_i); advantages sum to 0 per group.")
