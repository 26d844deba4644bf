"""The length comparison (issue 14, section 4): its tables and figure, from ``reports/lm/length/``.

One folder per run (``<method>-lp<penalty>-s<seed>``), curated like the study's
(:func:`ordergrad_experiments.lm.curate_run`), and ``forms.jsonl`` (``diagnose forms``: a header
line, then one row per run and answer form). The task is 3-digit addition whose answer may follow a
column-sum scratchpad (``experiments/lm/tasks.py``): the same answer at 4-5 or 11-15 tokens.
Seeds are paired as in the study (:mod:`ordergrad_experiments.report.lm.runs`), so differences are
taken seed by seed (Student t over the seeds, two-sided p).

``ordergrad-jax report lm --figures`` redraws ``reports/lm/figures/length.png``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ordergrad_experiments import sweeps
from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, markdown_table, read_jsonl
from ordergrad_experiments.report.lm.runs import (
    evaluations,
    mean_rows,
    paired,
    provenance_summary,
    seeded_runs,
)

METHODS = sweeps.get("lm-length").labels
"""Run-name prefix -> label, in table order (the length comparison's arms, as its sweep
declares them)."""
PAIRS = (
    ("top2at4-lp0.2", "grpo-lp0.2"),
    ("top2at4-lp0", "grpo-lp0"),
    ("top2at4-lp0.5", "grpo-lp0.5"),
)
"""The paired comparisons: OrderGrad minus GRPO at each penalty."""
MEASURES = {"pass@1": ".3f", "length": ".2f", "scratchpad": ".3f"}
"""What each held-out evaluation measured (mean completion length in tokens, EOS included; the
share of completions that open a scratchpad), with its print format."""


def runs(folder: pathlib.Path) -> dict[str, dict[int, Run]]:
    """``{method: {seed: run}}`` of the comparison's finished runs (:func:`seeded_runs`)."""
    return seeded_runs(folder, METHODS)


def final_table(folder: pathlib.Path) -> str:
    """Per method and penalty: held-out pass@1, pass@8, mean completion length and scratchpad
    share after the last RL step (mean and Student t 95% interval over the seeds); first row:
    the SFT start (each seed's evaluation of it)."""
    all_runs = runs(folder)
    keys = {**MEASURES, "pass@8": ".3f"}

    def row(label: str, seeds: dict[int, Run], when: int) -> dict[str, Any]:
        at = [evaluations(seeds[s])[when][1] for s in sorted(seeds)]
        return {"method": label, "seeds": len(seeds)} | {
            k: stats.mean_ci_cell([e[k] for e in at], f, f) for k, f in keys.items()
        }

    first = max(all_runs.values(), key=len)
    rows = [row("SFT start", first, 0)]
    rows += [row(METHODS[m], seeds, -1) for m, seeds in all_runs.items()]
    return markdown_table(rows)


def paired_table(folder: pathlib.Path) -> str:
    """OrderGrad TopM:2@4 minus GRPO at each penalty, paired by seed: the final held-out pass@1,
    length and scratchpad share (mean difference ± Student t 95% half-width, two-sided p)."""
    all_runs = runs(folder)
    rows = []
    for a, b in PAIRS:
        if a not in all_runs or b not in all_runs:
            continue
        row: dict[str, Any] = {"comparison": f"{METHODS[a]} - GRPO"}
        for key, fmt in MEASURES.items():
            pair = paired(all_runs[a], all_runs[b], key)
            row["seeds"] = len(pair.seeds)
            d = pair.difference
            if len(pair.seeds) == 1:
                row[f"{key} difference"] = f"{d[0]:{fmt}} (1 seed)"
            elif np.ptp(d) == 0:  # e.g. no scratchpad left on either side: no t statistic
                row[f"{key} difference"] = f"{d[0]:{fmt}} on every seed"
            else:
                row[f"{key} difference"] = f"{pair.cell(fmt)} (p {pair.p()})"
        rows.append(row)
    return markdown_table(rows)


def curves_table(folder: pathlib.Path) -> str:
    """Mean over seeds of the held-out pass@1 / length at every evaluation step."""

    def cell(at: list[dict[str, float]]) -> str:
        return (
            f"{np.mean([e['pass@1'] for e in at]):.3f} / {np.mean([e['length'] for e in at]):.1f}"
        )

    return markdown_table(mean_rows(runs(folder), METHODS, cell, with_seeds=True))


def forms_table(folder: pathlib.Path) -> str:
    """Held-out completions split by form (``forms.jsonl`` of ``diagnose forms``: the direct
    answer, or the scratchpad first), at the SFT start and after each method's last step: each
    form's share, solve rate and mean length (tokens, EOS included), mean and Student t 95%
    interval over the seeds (a form's solve rate and length over the seeds where it was
    sampled at all)."""
    rows_by: dict[str, list[dict]] = {}
    for r in read_jsonl(folder / "forms.jsonl"):
        if "form" in r:
            rows_by.setdefault(r["run"].rpartition("-s")[0] or r["run"], []).append(r)
    out = []
    for name, label in {"": "SFT start", **METHODS}.items():
        rows = rows_by.get(name or "sft", [])
        if not rows:
            continue
        row = {"method": label, "seeds": sum(r["form"] == "direct" for r in rows)}
        for form in ("direct", "scratchpad"):
            mine = [r for r in rows if r["form"] == form]
            for key in ("share", "correct", "length"):
                x = [r[key] for r in mine if np.isfinite(r[key])]
                fmt = ".1f" if key == "length" else ".3f"
                head = {"share": "share", "correct": "solves", "length": "length"}[key]
                row[f"{form} {head}"] = stats.mean_ci_cell(x, fmt, fmt) if x else "none sampled"
        out.append(row)
    return markdown_table(out)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """``{table id: build}`` of the length comparison (``folder``: ``reports/lm``)."""
    d = folder / "length"
    return {
        "length-final": lambda: final_table(d),
        "length-paired": lambda: paired_table(d),
        "length-curves": lambda: curves_table(d),
        "length-runs": lambda: provenance_summary(
            [run for seeds in runs(d).values() for run in seeds.values()]
        ),
        "length-forms": lambda: forms_table(d),
    }


def draw_figure(folder: pathlib.Path) -> Any:
    """Held-out pass@1 (left) and mean completion length (right) against the RL step, mean over
    seeds with each seed as a thin line (``folder``: ``reports/lm/length``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, seeds in runs(folder).items():
        evals = [evaluations(seeds[s]) for s in sorted(seeds)]
        steps = [step for step, _ in evals[0]]
        style = {
            "color": "C1" if method.startswith("top") else "C0",
            "ls": {"0.2": "-", "0": ":", "0.5": "--"}[method.rpartition("-lp")[2]],
        }
        for ax, key in zip(axes, ("pass@1", "length"), strict=True):
            values = np.array([[e[1][key] for e in ev] for ev in evals])
            for v in values:
                ax.plot(steps, v, lw=0.5, alpha=0.35, **style)
            ax.plot(steps, values.mean(0), lw=2, label=METHODS[method], marker="o", ms=3, **style)
    axes[0].set_ylabel("held-out pass@1")
    axes[1].set_ylabel("held-out completion length (tokens, EOS included)")
    for ax in axes:
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
