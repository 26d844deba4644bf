"""The bandit's predicted pass@k-vs-pass@1 frontiers beside the LM study's (issue 24, item 6).

The prediction (``ordergrad_experiments.lm.bandit``): a per-prompt softmax bandit whose initial
solve rates follow the zero-inflated Beta fitted to the study's SFT start (the mean over the
seeds of its held-out pass@1..pass@32; the study kept no per-prompt counts), trained with exact
gradients of each objective, by gradient flow (plain gradient ascent with small steps) and by
Adam (step 0.01). It is computed here, in float64, from the committed ``study/`` runs alone, in
a few seconds; the LM side is :func:`~ordergrad_experiments.report.lm.runs.matched` against GRPO.

``ordergrad-jax report lm --figures`` redraws ``reports/lm/figures/bandit_frontier.png``.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import markdown_table
from ordergrad_experiments.lm import (
    BANDIT_OBJECTIVES,
    SolveRates,
    bandit_frontiers,
    fit_solve_rates,
)
from ordergrad_experiments.report.lm import study
from ordergrad_experiments.report.lm.runs import evaluations, matched, start

KS = (1, 2, 4, 8, 16, 32, 64)
"""The bandit's pass@k (the study measured up to 32)."""
SHOWN = (4, 16, 32)
"""The k of the comparison table and figure."""
PROMPTS = 256
"""Prompts of the bandit: the fitted distribution's quantiles."""
GRADIENT_FLOW_STEPS, ADAM_STEPS, ADAM_LR = 2000, 1000, 0.01
OBJECTIVE_OF = {
    "grpo": "grpo",
    "rloo": "mean",
    "drgrpo": "mean",
    "maxpo4": "top1at4",
    "top1at4": "top1at4",
    "top2at4": "top2at4",
    "top3at4": "top3at4",
    "remax8": "remax8",
    "pkpo4": "top1at4",
    "chen4": "top1at4",
    "bot2at4": "bot2at4",
}
"""The bandit objective of each study method (PKPO@4 and Chen pass@4 target max@4)."""


def start_curve(folder: pathlib.Path) -> np.ndarray:
    """``[seeds, 6]``: each seed's held-out pass@1..pass@32 of the SFT start (``folder``:
    ``reports/lm/study``; the GRPO runs' evaluations of it)."""
    runs = study.runs(folder)[study.BASE]
    return np.array([[start(runs[s])[f"pass@{k}"] for k in study.KS] for s in sorted(runs)])


def solve_rates(folder: pathlib.Path) -> SolveRates:
    """The bandit's start: the zero-inflated Beta fitted to the mean start curve."""
    return fit_solve_rates(study.KS, start_curve(folder).mean(0), PROMPTS)


@functools.cache
def predictions(folder: pathlib.Path) -> dict[str, dict[str, np.ndarray]]:
    """``{"gradient flow" | "Adam": {objective: curve [T, len(KS)]}}`` (float64, cached)."""
    rates = solve_rates(folder)
    with jax.enable_x64(True):
        return {
            "gradient flow": bandit_frontiers(rates, steps=GRADIENT_FLOW_STEPS, ks=KS),
            "Adam": bandit_frontiers(rates, optimiser=optax.adam(ADAM_LR), steps=ADAM_STEPS, ks=KS),
        }


def at(curve: np.ndarray, level: float | np.ndarray, k: int) -> np.ndarray:
    """pass@k at pass@1 = ``level`` along a bandit curve (linear between its steps; NaN outside
    its range)."""
    return np.interp(level, curve[:, 0], curve[:, KS.index(k)], left=np.nan, right=np.nan)


def start_table(folder: pathlib.Path) -> str:
    """The SFT start's held-out pass@k (mean ± t over the seeds) and the fitted distribution's
    (the bandit's start; pass@64 extrapolated), and a Beta without the never-solved share."""
    measured = start_curve(folder)
    rates = solve_rates(folder)
    row = {"start": "SFT start, measured", "seeds": len(measured)}
    row |= {f"pass@{k}": stats.mean_ci_cell(measured[:, i], ".3f", ".3f")
            for i, k in enumerate(study.KS)}  # fmt: skip
    row["pass@64"] = "-"
    fit = {"start": f"bandit: {rates.source}", "seeds": "-"}
    fit |= {f"pass@{k}": f"{rates.pass_at_k(k):.3f}" for k in KS}
    return markdown_table([row, fit])


def comparison_table(folder: pathlib.Path) -> str:
    """Each method minus GRPO at matched pass@1: the LM study's (mean ± t over the seeds, as in
    ``study-matched``) beside the bandit's prediction at the same pass@1 (the mean matched level)
    by gradient flow and by Adam, at the k of :data:`SHOWN`; and the error of the LM's linear
    interpolation that the bandit's GRPO frontier implies (its value minus the chord between
    GRPO's bracketing evaluations, at the mean levels; > 0: the chord understates GRPO)."""
    runs = study.runs(folder)
    pred = predictions(folder)
    base_levels = np.mean(
        [[e["pass@1"] for _, e in evaluations(runs[study.BASE][s])] for s in runs[study.BASE]], 0
    )
    rows = []
    for method, seeds in runs.items():
        if method == study.BASE:
            continue
        m = matched(seeds, runs[study.BASE], [f"pass@{k}" for k in (1, *SHOWN)])
        level = float(m.level.mean())
        row: dict[str, Any] = {"method - GRPO": study.METHODS[method]}
        row["matched pass@1"] = f"{level:.3f}"
        objective = OBJECTIVE_OF[method]
        for k in SHOWN:
            lm = stats.t_interval(m.difference(f"pass@{k}"))
            row[f"pass@{k} LM"] = lm.format("+.4f", ".4f")
            for name, curves in pred.items():
                d = at(curves[objective], level, k) - at(curves["grpo"], level, k)
                row[f"pass@{k} {name}"] = "-" if np.isnan(d) else f"{d:+.4f}"
        grpo = pred["gradient flow"]["grpo"]
        i = int(np.clip(np.searchsorted(base_levels, level) - 1, 0, len(base_levels) - 2))
        lo, hi = np.clip(base_levels[i : i + 2], grpo[0, 0], grpo[-1, 0])
        t = (level - lo) / (hi - lo)
        errors = []
        for k in SHOWN:
            chord = at(grpo, lo, k) + t * (at(grpo, hi, k) - at(grpo, lo, k))
            errors.append(f"{at(grpo, level, k) - chord:+.4f}")
        row["chord error at " + " / ".join(f"pass@{k}" for k in SHOWN)] = " / ".join(errors)
        rows.append(row)
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """``{table id: build}`` of the prediction (``folder``: ``reports/lm``)."""
    d = folder / "study"
    return {"bandit-start": lambda: start_table(d), "bandit-vs-lm": lambda: comparison_table(d)}


def draw_figure(folder: pathlib.Path) -> Any:
    """Top: pass@k against pass@1 for k in :data:`SHOWN`: the bandit's gradient-flow frontiers
    (lines) and the LM study's evaluations (mean over seeds at each evaluation step, markers).
    Bottom: each minus GRPO's frontier at the same pass@1: the bandit by gradient flow (solid)
    and Adam (dashed), the LM at matched pass@1 (mean ± 95% t over the seeds) (``folder``:
    ``reports/lm/study``)."""
    import matplotlib.pyplot as plt

    runs = study.runs(folder)
    pred = predictions(folder)
    names = list(BANDIT_OBJECTIVES)
    color = {n: f"C{i}" for i, n in enumerate(names)}
    fig, axes = plt.subplots(2, len(SHOWN), figsize=(14, 7.5), sharex=True)
    for col, k in enumerate(SHOWN):
        top, bottom = axes[0, col], axes[1, col]
        for name in names:
            gf = pred["gradient flow"][name]
            label = f"bandit {BANDIT_OBJECTIVES[name].label}"
            top.plot(gf[:, 0], gf[:, KS.index(k)], color=color[name], lw=1.2, label=label)
            x = np.linspace(0.18, 0.8, 200)
            for curves, ls in ((pred["gradient flow"], "-"), (pred["Adam"], "--")):
                d = at(curves[name], x, k) - at(curves["grpo"], x, k)
                bottom.plot(x, d, color=color[name], ls=ls, lw=1.0)
        for method, seeds in runs.items():
            c = color[OBJECTIVE_OF[method]]
            ev = [evaluations(seeds[s]) for s in sorted(seeds)]
            x = np.mean([[e["pass@1"] for _, e in v] for v in ev], 0)
            y = np.mean([[e[f"pass@{k}"] for _, e in v] for v in ev], 0)
            top.plot(x, y, color=c, ls=":", marker="o", ms=3, lw=0.6)
            if method == study.BASE:
                continue
            m = matched(seeds, runs[study.BASE], [f"pass@{k}"])
            ci = stats.t_interval(m.difference(f"pass@{k}"))
            bottom.errorbar(m.level.mean(), ci.mean, yerr=ci.half_width, color=c, marker="o",
                            ms=4, capsize=2)  # fmt: skip
            bottom.annotate(study.METHODS[method].replace("OrderGrad ", ""),
                            (m.level.mean(), ci.mean), fontsize=6)  # fmt: skip
        top.set_ylabel(f"pass@{k}")
        bottom.set_ylabel(f"pass@{k} minus GRPO's at the same pass@1")
        bottom.axhline(0, color="k", lw=0.8)
        bottom.set_xlabel("pass@1")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
        lo = min(np.nanmin(at(pred["gradient flow"][n], np.linspace(0.18, 0.8, 50), k)
                           - at(pred["gradient flow"]["grpo"], np.linspace(0.18, 0.8, 50), k))
                 for n in names)  # fmt: skip
        bottom.set_ylim(max(lo, -0.06) * 1.1, None)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        "Bandit (exact gradients; lines: gradient flow, dashed: Adam) vs the LM study (markers)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
