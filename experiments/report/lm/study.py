"""The pass@k study (issue 14, section 4): its tables and figure, from ``reports/lm/study/``.

One folder per run (``<method>-s<seed>``), curated by :func:`ordergrad_experiments.lm.curate_run`
(``config.json`` with the provenance, ``summary.md``, ``curve.jsonl``: the SFT evaluation, every
25th RL step and every held-out evaluation). Seeds are paired
(:mod:`ordergrad_experiments.report.lm.runs`), so differences between methods are taken seed by seed
(Student t over the seeds, two-sided p).

``ordergrad-jax report lm --figures`` redraws ``reports/lm/figures/study_passk.png``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ordergrad_experiments import sweeps
from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, markdown_table
from ordergrad_experiments.report.lm.runs import (
    final,
    paired,
    provenance_summary,
    rl_rows,
    seeded_runs,
    start,
    versus_table,
)

KS = (1, 2, 4, 8, 16, 32)
METHODS = sweeps.get("lm-study").labels
"""Run-name prefix -> label, in table order (the study's methods, as its sweep declares them)."""
BASE = "grpo"


def runs(folder: pathlib.Path) -> dict[str, dict[int, Run]]:
    """``{method: {seed: run}}`` of the study's finished runs (:func:`seeded_runs`)."""
    return seeded_runs(folder, METHODS)


def _values(seeds: dict[int, Run], of: Callable[[Run], dict[str, float]], k: int) -> np.ndarray:
    return np.array([of(seeds[s])[f"pass@{k}"] for s in sorted(seeds)])


def _cell(x: Any) -> str:
    return stats.mean_ci_cell(x, ".3f", ".3f")


def passk_table(folder: pathlib.Path) -> str:
    """Held-out pass@k after the last RL step, mean and Student t 95% interval over the seeds;
    first row: the SFT start (each seed's evaluation of it)."""
    all_runs = runs(folder)
    first = next(iter(all_runs.values()))
    rows = [
        {"method": "SFT start", "seeds": len(first)}
        | {f"pass@{k}": _cell(_values(first, start, k)) for k in KS}
    ]
    for method, seeds in all_runs.items():
        rows.append(
            {"method": METHODS[method], "seeds": len(seeds)}
            | {f"pass@{k}": _cell(_values(seeds, final, k)) for k in KS}
        )
    return markdown_table(rows)


def paired_table(folder: pathlib.Path, base: str = BASE) -> str:
    """Each method minus ``base`` at every k, paired by seed: mean difference ± Student t 95%
    half-width (p: two-sided paired t test); n = the seeds both have."""
    return versus_table(runs(folder), METHODS, base, [f"pass@{k}" for k in KS])


def base_vs_rl_table(folder: pathlib.Path) -> str:
    """pass@1 and pass@32 after RL minus the SFT start, paired by seed (the question of whether
    RL raises pass@1 while lowering pass@k at large k below the base model)."""
    rows = []
    for method, seeds in runs(folder).items():
        row = {"method": METHODS[method], "seeds": len(seeds)}
        for k in (1, 32):
            pair = paired(seeds, seeds, f"pass@{k}", b_at=0)
            row[f"pass@{k} RL - SFT"] = f"{pair.cell()} (p {pair.p()})"
        rows.append(row)
    return markdown_table(rows)


def training_table(folder: pathlib.Path, steps: tuple[int, ...] = (25, 100, 200, 300)) -> str:
    """Token entropy of the training samples and mean completion length (tokens per sample,
    EOS included) at a few RL steps, means over the seeds."""
    rows = []
    for method, seeds in runs(folder).items():
        config = next(iter(seeds.values())).config
        batch = config["groups"]["num_groups"] * config["groups"]["group_size"]
        per_step = [rl_rows(seeds[s]) for s in sorted(seeds)]
        row = {"method": METHODS[method]}
        for step in steps:
            row[f"entropy @{step}"] = f"{np.mean([r[step]['entropy'] for r in per_step]):.3f}"
        for step in steps:
            tokens = np.mean([r[step]["completion_tokens"] / batch for r in per_step])
            row[f"length @{step}"] = f"{tokens:.2f}"
        rows.append(row)
    return markdown_table(rows)


def speed_table(folder: pathlib.Path) -> str:
    """The step-time split per method: medians over every kept RL row of every seed (steps 25,
    50, ..., 300; the first step, which compiles, is never kept) of the step time, the shares of
    sampling, scoring, learning and the advantage transform, completion tokens/s and the learner's
    GFLOP/s (``3 x`` forward FLOPs of the batch over the learn time)."""
    rows = []
    for method, seeds in runs(folder).items():
        rl = [r for s in sorted(seeds) for r in rl_rows(seeds[s]).values()]

        def med(key: str, rl: list[dict] = rl) -> float:
            return float(np.median([r[key] for r in rl]))

        def share(key: str, rl: list[dict] = rl) -> float:
            return 100 * float(np.median([r[key] / r["step_s"] for r in rl]))

        rows.append(
            {
                "method": METHODS[method],
                "steps": len(rl),
                "step s": f"{med('step_s'):.3f}",
                "sample %": f"{share('sample_s'):.0f}",
                "score %": f"{share('score_s'):.0f}",
                "learn %": f"{share('learn_s'):.0f}",
                "advantage %": f"{share('advantage_s'):.2f}",
                "tokens/s": f"{med('tokens_per_s'):.0f}",
                "learner GFLOP/s": f"{med('learner_flops_per_s') / 1e9:.1f}",
            }
        )
    return markdown_table(rows)


def runs_summary(folder: pathlib.Path) -> str:
    """The study's runs in one row (:func:`provenance_summary`)."""
    return provenance_summary([run for seeds in runs(folder).values() for run in seeds.values()])


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """``{table id: build}`` of the study (``folder``: ``reports/lm``)."""
    d = folder / "study"
    return {
        "study-passk": lambda: passk_table(d),
        "study-paired": lambda: paired_table(d),
        "study-paired-maxpo": lambda: paired_table(d, base="maxpo4"),
        "study-base-vs-rl": lambda: base_vs_rl_table(d),
        "study-training": lambda: training_table(d),
        "study-speed": lambda: speed_table(d),
        "study-runs": lambda: runs_summary(d),
    }


def draw_figure(folder: pathlib.Path) -> Any:
    """Left: held-out pass@k against k (log scale), mean over seeds, the SFT start dashed.
    Right: each method minus GRPO against k, paired by seed, with its 95% t interval
    (``folder``: ``reports/lm/study``)."""
    import matplotlib.pyplot as plt

    all_runs = runs(folder)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2))
    first = next(iter(all_runs.values()))
    ax.plot(KS, [_values(first, start, k).mean() for k in KS], "k--", marker=".", label="SFT")
    for i, (method, seeds) in enumerate(all_runs.items()):
        style = {"color": f"C{i % 10}", "ls": "-" if i < 10 else ":", "marker": "o", "ms": 3}
        ax.plot(KS, [_values(seeds, final, k).mean() for k in KS], label=METHODS[method], **style)
        if method == BASE:
            continue
        diffs = [stats.t_interval(paired(seeds, all_runs[BASE], f"pass@{k}").difference)
                 for k in KS]  # fmt: skip
        x = np.array(KS) * (1 + 0.02 * (i - 5))  # a small offset per method, for legibility
        bx.errorbar(
            x, [d.mean for d in diffs], yerr=[d.half_width for d in diffs], capsize=2, **style
        )
    for a in (ax, bx):
        a.set_xscale("log", base=2)
        a.set_xlabel("k (samples per problem)")
        a.grid(alpha=0.3)
    ax.set_ylabel("held-out pass@k (mean over seeds)")
    bx.set_ylabel(f"pass@k minus {METHODS[BASE]} (paired by seed, 95% t)")
    bx.axhline(0, color="k", lw=0.8)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
