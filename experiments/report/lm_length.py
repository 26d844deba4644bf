"""The tables and figure of ``reports/lm/RESULTS.md``'s length comparison (issue 14, section 4),
from ``reports/lm/length/``: one folder per run of ``experiments/lm/length.sh``
(``<method>-lp<penalty>-s<seed>``), curated like the study's
(:func:`experiments.report.lm_default.curate`).

The task is 3-digit addition whose answer may follow a column-sum scratchpad (``tasks.py``): the
same answer at 4-5 or 11-15 tokens. Seeds are paired as in the study (one SFT start, the RL data
order's seed and the evaluation keys shared by every method of a seed), so differences are taken
seed by seed (Student t over the seeds, two-sided p).

``python -m experiments.report.lm_length`` redraws ``reports/lm/figures/length.png``.
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Callable

import numpy as np

from experiments.common import stats
from experiments.common.runs import markdown_table
from experiments.report.lm_default import _evals
from experiments.report.lm_study import runs, runs_summary

METHODS = {
    "grpo-lp0.2": "GRPO, penalty 0.2",
    "top2at4-lp0.2": "OrderGrad TopM:2@4, penalty 0.2",
    "grpo-lp0": "GRPO, no penalty",
    "top2at4-lp0": "OrderGrad TopM:2@4, no penalty",
    "grpo-lp0.5": "GRPO, penalty 0.5",
    "top2at4-lp0.5": "OrderGrad TopM:2@4, penalty 0.5",
}
"""Run-name prefix -> label, in table order (``experiments/lm/length.sh``'s runs)."""
PAIRS = (
    ("top2at4-lp0.2", "grpo-lp0.2"),
    ("top2at4-lp0", "grpo-lp0"),
    ("top2at4-lp0.5", "grpo-lp0.5"),
)
"""The paired comparisons: OrderGrad minus GRPO at each penalty."""
MEASURES = {"pass@1": ".3f", "length": ".2f", "scratchpad": ".3f"}
"""What each held-out evaluation measured (mean completion length in tokens, EOS included; the
share of completions that open a scratchpad), with its print format."""


def _value(run: pathlib.Path, key: str, when: int = -1) -> float:
    """``key`` of the run's ``when``-th evaluation (0: the SFT start, -1: the last)."""
    return _evals(run)[when][1][key]


def final_table(folder: pathlib.Path) -> str:
    """Per method and penalty: held-out pass@1, pass@8, mean completion length and scratchpad
    share after the last RL step (mean and Student t 95% interval over the seeds); first row:
    the SFT start (each seed's evaluation of it)."""
    all_runs = runs(folder, METHODS)
    keys = {**MEASURES, "pass@8": ".3f"}

    def row(label, seeds, when):
        return {"method": label, "seeds": len(seeds)} | {
            k: stats.mean_ci_cell([_value(seeds[s], k, when) for s in sorted(seeds)], f, f)
            for k, f in keys.items()
        }

    first = max(all_runs.values(), key=len)
    rows = [row("SFT start", first, 0)]
    rows += [row(METHODS[m], seeds, -1) for m, seeds in all_runs.items()]
    return markdown_table(rows)


def paired_table(folder: pathlib.Path) -> str:
    """OrderGrad TopM:2@4 minus GRPO at each penalty, paired by seed: the final held-out pass@1,
    length and scratchpad share (mean difference ± Student t 95% half-width, two-sided p)."""
    all_runs = runs(folder, METHODS)
    rows = []
    for a, b in PAIRS:
        if a not in all_runs or b not in all_runs:
            continue
        shared = sorted(set(all_runs[a]) & set(all_runs[b]))
        row = {"comparison": f"{METHODS[a]} - GRPO", "seeds": len(shared)}
        for key, fmt in MEASURES.items():
            x = np.array([_value(all_runs[a][s], key) for s in shared])
            y = np.array([_value(all_runs[b][s], key) for s in shared])
            if len(shared) == 1:
                row[f"{key} difference"] = f"{(x - y)[0]:{fmt}} (1 seed)"
                continue
            if np.ptp(x - y) == 0:  # e.g. no scratchpad left on either side: no t statistic
                row[f"{key} difference"] = f"{(x - y)[0]:{fmt}} on every seed"
                continue
            p = stats.format_p(stats.paired_test(x, y).p_value)
            row[f"{key} difference"] = f"{stats.mean_ci_cell(x - y, fmt, fmt)} (p {p})"
        rows.append(row)
    return markdown_table(rows)


def curves_table(folder: pathlib.Path) -> str:
    """Mean over seeds of the held-out pass@1 / length at every evaluation step."""
    rows = []
    for method, seeds in runs(folder, METHODS).items():
        evals = [_evals(seeds[s]) for s in sorted(seeds)]
        row = {"method": METHODS[method], "seeds": len(evals)}
        for i, (step, _) in enumerate(evals[0]):
            p1 = np.mean([e[i][1]["pass@1"] for e in evals])
            length = np.mean([e[i][1]["length"] for e in evals])
            row[f"step {step}"] = f"{p1:.3f} / {length:.1f}"
        rows.append(row)
    return markdown_table(rows)


def forms_table(folder: pathlib.Path) -> str:
    """Held-out completions split by form (``forms.jsonl`` of ``diagnose forms``: the direct
    answer, or the scratchpad first), at the SFT start and after each method's last step: each
    form's share, solve rate and mean length (tokens, EOS included), mean and Student t 95%
    interval over the seeds (a form's solve rate and length over the seeds where it was
    sampled at all)."""
    rows_by = {}
    for line in (folder / "forms.jsonl").read_text().splitlines():
        r = json.loads(line)
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
        "length-runs": lambda: runs_summary(d, METHODS),
        "length-forms": lambda: forms_table(d),
    }


def draw_figure(folder: pathlib.Path):
    """Held-out pass@1 (left) and mean completion length (right) against the RL step, mean over
    seeds with each seed as a thin line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, seeds in runs(folder, METHODS).items():
        evals = [_evals(seeds[s]) for s in sorted(seeds)]
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


def main(argv: list[str] | None = None) -> int:
    from experiments.report import repo_root

    del argv
    lm = repo_root() / "reports" / "lm"
    fig = draw_figure(lm / "length")
    fig.savefig(lm / "figures" / "length.png", dpi=110, metadata={"Software": None})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
