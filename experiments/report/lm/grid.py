"""The 50-step grid (6 methods x seeds 0, 1, 2) and the learning-rate runs made before it.

* ``reports/lm/grid/``: one ``ordergrad-jax run lm-rl`` folder per run (``config.json`` with the
  provenance, ``metrics.jsonl``, ``summary.md``; no checkpoints), and ``sft/``, the one-step run
  that trained the shared SFT start into the cache (its start is the grid's start).
* ``reports/lm/lr/``: the learning-rate runs (same folder format).

The grid's functions take any folder of lm-rl runs (a results folder too: the notebook draws
one with them), grouped by :func:`~ordergrad_experiments.report.lm.runs.method_label`. Means over
seeds carry the Student t 95% interval (n - 1 df, :mod:`ordergrad_experiments.common.stats`).

``ordergrad-jax report lm --figures`` redraws ``reports/lm/figures/lm_passk_compare.png`` and
``lm_training_compare.png`` from the grid.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, find_runs, markdown_table
from ordergrad_experiments.report.lm.runs import (
    KS,
    budget,
    evaluations,
    final,
    method_label,
    method_runs,
    provenance_table,
    start,
)

SFT = "SFT start"
# The grid's comparisons behind "The paper's claims at this scale": (method a, method b, k).
CLAIMS = (
    ("ordergrad TopM:2@4", "grpo", 1),
    ("ordergrad TopM:2@4", "grpo", 8),
    ("ordergrad TopM:2@4", "grpo", 16),
    ("ordergrad TopM:2@4", "maxpo@4", 8),
    ("ordergrad TopM:2@4", "rloo", 8),
    ("maxpo@4", SFT, 8),
    ("ordergrad ReMax@8", SFT, 1),
    ("ordergrad ReMax@8", SFT, 8),
    ("ordergrad BotM:2@4", "rloo", 1),
    ("ordergrad BotM:2@4", "rloo", 16),
)


def sft_evaluations(runs: dict[str, list[Run]], ks: Sequence[int] = KS) -> dict[int, dict]:
    """``{seed: the SFT start's pass@k with that seed's key}`` (equal in every method's run of
    the seed; checked)."""
    evals: dict[int, dict] = {}
    for seeded in runs.values():
        for run in seeded:
            values = {k: start(run)[f"pass@{k}"] for k in ks}
            if evals.setdefault(run.config["seed"], values) != values:
                raise ValueError(f"seed {run.config['seed']}: the runs evaluated different starts")
    return dict(sorted(evals.items()))


def grid_values(folder: pathlib.Path, ks: Sequence[int] = KS) -> dict[str, dict[int, np.ndarray]]:
    """``{method: {k: [final held-out pass@k per seed]}}`` of the runs in ``folder``, and the
    SFT start's evaluations under :data:`SFT` (one per seed's evaluation key)."""
    runs = method_runs(folder)
    sft = sft_evaluations(runs, ks)
    out = {SFT: {k: np.array([v[k] for v in sft.values()]) for k in ks}}
    for method, seeded in runs.items():
        out[method] = {k: np.array([final(run)[f"pass@{k}"] for run in seeded]) for k in ks}
    return out


def grid_table(folder: pathlib.Path, ks: Sequence[int] = KS) -> str:
    """Held-out pass@k after the runs' last step: per method the mean ± Student t 95% interval
    over seeds, the seeds, and the mean token entropy of the sampled completions at the first
    and last RL step. The SFT row: the same checkpoint evaluated with each seed's key."""
    runs = method_runs(folder)
    rows = []
    for method, by_k in grid_values(folder, ks).items():
        row = {"method": method, "seeds": len(by_k[ks[0]])}
        row.update({f"pass@{k}": stats.mean_ci_cell(by_k[k], ".3f", ".3f") for k in ks})
        if method == SFT:
            row["entropy first→last"] = "-"
        else:
            ent = [[r["entropy"] for r in run.rows("rl")] for run in runs[method]]
            first, last = np.mean([e[0] for e in ent]), np.mean([e[-1] for e in ent])
            row["entropy first→last"] = f"{first:.3f} → {last:.3f}"
        rows.append(row)
    return markdown_table(rows)


def claims_table(folder: pathlib.Path) -> str:
    """The comparisons of :data:`CLAIMS`: means, the difference with its Welch 95% interval, the
    Welch p-value, and the paired-by-seed p-value (a method's seed-s run shares the SFT start and
    the evaluation key with every other method's seed-s run; against the SFT start, the pairs
    are the start's and the run's evaluations with that seed's key)."""
    values = grid_values(folder)
    rows = []
    for a, b, k in CLAIMS:
        x, y = values[a][k], values[b][k]
        welch = stats.welch_test(x, y)
        paired = stats.paired_test(x, y)
        rows.append(
            {
                "a": a,
                "b": b,
                "k": k,
                "pass@k a": f"{x.mean():.3f}",
                "pass@k b": f"{y.mean():.3f}",
                "a - b [Welch 95% CI]": f"{welch.difference:+.3f} "
                f"[{welch.interval.low:+.3f}, {welch.interval.high:+.3f}]",
                "Welch df": f"{welch.df:.1f}",
                "Welch p": stats.format_p(welch.p_value),
                "paired p (2 df)": stats.format_p(paired.p_value),
                "n": f"{x.size} vs {y.size}",
            }
        )
    return markdown_table(rows)


def lr_table(folder: pathlib.Path) -> str:
    """Each ``lr/`` run, then the grid's GRPO and RLOO seed-0 runs (lr 1e-4): method, Adam lr,
    steps, held-out pass@1 at the SFT start and after each evaluation (step: value), and the mean
    training reward of its first and last 10 steps (``folder``: ``reports/lm``)."""
    at_1e4 = [Run(folder / "grid" / f"{m}-s0") for m in ("grpo", "rloo")]
    rows = []
    for run in [*find_runs(folder / "lr"), *(run for run in at_1e4 if run.finished)]:
        config = run.config
        evals = evaluations(run)
        rewards = [r["reward"] for r in run.rows("rl")]
        rows.append(
            {
                "run": f"{run.path.parent.name}/{run.name}",
                "method": method_label(config),
                "Adam lr": f"{config['optim']['lr']:.0e}".replace("e-0", "e-"),
                "steps": budget(config)[0],
                "held-out pass@1: SFT, then at steps": f"{evals[0][1]['pass@1']:.3f}; "
                + ", ".join(f"{step}: {e['pass@1']:.3f}" for step, e in evals[1:]),
                "train reward, steps 1-10 → last 10": f"{np.mean(rewards[:10]):.3f} → "
                f"{np.mean(rewards[-10:]):.3f}",
            }
        )
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """``{table id: build}`` of the grid and the learning-rate runs, each where its folder
    exists (``folder``: ``reports/lm``)."""
    out: dict[str, Callable[[], str]] = {}
    if (folder / "grid").is_dir():
        out["lm-grid"] = lambda: grid_table(folder / "grid")
        out["lm-grid-claims"] = lambda: claims_table(folder / "grid")
        out["lm-grid-runs"] = lambda: provenance_table(find_runs(folder / "grid"))
    if (folder / "lr").is_dir():
        out["lm-lr"] = lambda: lr_table(folder)
        out["lm-lr-runs"] = lambda: provenance_table(find_runs(folder / "lr"))
    return out


def compare_figures(folder: pathlib.Path, ks: Sequence[int] = KS) -> dict[str, Any]:
    """``{"lm_passk_compare": fig, "lm_training_compare": fig}`` of the runs in ``folder``:
    held-out pass@k against k (mean over seeds; dashed: the first run's SFT start), and the
    train reward, token entropy and held-out pass@1 against the RL step (each method's first
    seed)."""
    import matplotlib.pyplot as plt

    runs = method_runs(folder)
    fig1, ax = plt.subplots(figsize=(5, 3.5))
    sft = start(next(iter(runs.values()))[0])
    ax.plot(ks, [sft[f"pass@{k}"] for k in ks], "k--", marker=".", label=SFT)
    fig2, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for name, seeded in runs.items():
        ax.plot(ks, [np.mean([final(r)[f"pass@{k}"] for r in seeded]) for k in ks], marker="o",
                label=name)  # fmt: skip
        rl = seeded[0].rows("rl")
        steps = [r["step"] for r in rl]
        axes[0].plot(steps, [r["reward"] for r in rl], label=name)
        axes[1].plot(steps, [r["entropy"] for r in rl], label=name)
        curve = evaluations(seeded[0])
        axes[2].plot([s for s, _ in curve], [e["pass@1"] for _, e in curve], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("held-out pass@k")
    ax.legend(fontsize=7)
    for a, ylabel in zip(axes, ("train reward", "token entropy", "held-out pass@1"), strict=True):
        a.set_xlabel("RL step")
        a.set_ylabel(ylabel)
    axes[0].legend(fontsize=7)
    fig2.tight_layout()
    return {"lm_passk_compare": fig1, "lm_training_compare": fig2}
