"""Figures of a control run: learning curves against env steps and the final return distributions
(histograms with the lower tail visible), from metric rows and evaluation returns. The trainer
draws them for its own run; ``ordergrad_experiments.report.control`` draws them across runs (the
rows and returns of several runs together)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

Rows = list[dict]


def learning_curves(rows: Rows, metric: str = "return_mean", ax: Any = None) -> Any:
    """Mean over seeds (line) and the range of seeds (band) of ``metric`` against env steps,
    one line per method."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    train = [r for r in rows if r.get("kind") == "train"]
    for method in dict.fromkeys(r["method"] for r in train):
        mine = [r for r in train if r["method"] == method]
        steps = sorted({r["env_steps"] for r in mine})
        values = np.array(
            [[r[metric] for r in mine if r["env_steps"] == s] for s in steps], np.float64
        )
        mean = np.nanmean(values, axis=1)
        ax.plot(steps, mean, label=method)
        ax.fill_between(steps, np.nanmin(values, 1), np.nanmax(values, 1), alpha=0.2)
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize=8)
    return fig if fig is not None else ax.figure


def return_histograms(returns: dict[str, np.ndarray], cvar_alpha: float = 0.1) -> Any:
    """Histogram of the final policies' evaluation returns (all seeds pooled) per method, log
    counts so the tail shows; a dashed line at each method's pooled CVaR_alpha."""
    fig, ax = plt.subplots(figsize=(6, 4))
    pooled = {m: np.ravel(r) for m, r in returns.items()}
    if not pooled:
        return fig
    lo = min(v.min() for v in pooled.values())
    hi = max(v.max() for v in pooled.values())
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
    for method, values in pooled.items():
        (line,) = ax.plot([], [])
        color = line.get_color()
        ax.hist(values, bins=bins, histtype="step", color=color, label=method, log=True)
        tail = np.sort(values)[: max(1, int(np.floor(cvar_alpha * values.size)))]
        ax.axvline(tail.mean(), color=color, linestyle="--", linewidth=1)
    ax.set_xlabel(f"episode return (dashed: CVaR_{cvar_alpha:g})")
    ax.set_ylabel("episodes (log)")
    ax.legend(fontsize=8)
    return fig


def all_figures(rows: Rows, returns: dict[str, np.ndarray]) -> dict[str, Any]:
    """The run's figures by file stem."""
    return {
        "learning_curves": learning_curves(rows),
        "final_returns": return_histograms(returns),
    }
