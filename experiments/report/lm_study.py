"""The tables and figure of ``reports/lm/RESULTS.md``'s pass@k study (issue 14, section 4), from
``reports/lm/study/``: one folder per run of ``experiments/lm/study.sh`` (``<method>-s<seed>``),
curated by :func:`experiments.report.lm_default.curate` (``config.json`` with the provenance,
``summary.md``, ``curve.jsonl``: the SFT evaluation, every 25th RL step and every held-out
evaluation).

Seeds are paired: every run starts from the one cached SFT checkpoint, and the runs of one seed
share the RL data order's seed and the evaluation keys (common random numbers), so differences
between methods are taken seed by seed (Student t over the seeds, two-sided p).

``python -m experiments.report.lm_study`` redraws ``reports/lm/figures/study_passk.png``.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import sys
from collections.abc import Callable

import numpy as np

from experiments.common import stats
from experiments.common.runs import markdown_table
from experiments.report import lm_default
from experiments.report.lm_default import _evals, _jsonl

KS = (1, 2, 4, 8, 16, 32)
METHODS = {
    "grpo": "GRPO",
    "rloo": "RLOO",
    "drgrpo": "Dr.GRPO",
    "maxpo4": "MaxPO@4",
    "top1at4": "OrderGrad TopM:1@4",
    "top2at4": "OrderGrad TopM:2@4",
    "top3at4": "OrderGrad TopM:3@4",
    "remax8": "OrderGrad ReMax@8",
    "pkpo4": "PKPO@4",
    "chen4": "Chen pass@4",
    "bot2at4": "OrderGrad BotM:2@4",
}
"""Run-name prefix -> label, in table order (``experiments/lm/study.sh``'s methods)."""
BASE = "grpo"


def runs(
    folder: pathlib.Path, methods: dict[str, str] = METHODS
) -> dict[str, dict[int, pathlib.Path]]:
    """``{method: {seed: run folder}}`` of the study's finished runs (:func:`lm_default.runs`
    with the study's methods by default)."""
    return lm_default.runs(folder, methods)


def final(run: pathlib.Path) -> dict[str, float]:
    """The last held-out evaluation ``{pass@k: value}``."""
    return _evals(run)[-1][1]


def start(run: pathlib.Path) -> dict[str, float]:
    """The SFT start's evaluation (with this seed's evaluation key)."""
    return _evals(run)[0][1]


def _values(seeds: dict[int, pathlib.Path], of, k: int, only=None) -> np.ndarray:
    keys = sorted(seeds if only is None else only)
    return np.array([of(seeds[s])[f"pass@{k}"] for s in keys])


def _cell(x) -> str:
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


def _paired_cell(a, b) -> str:
    test = stats.paired_test(a, b)
    return f"{_cell(np.subtract(a, b))} (p {stats.format_p(test.p_value)})"


def paired_table(folder: pathlib.Path, base: str = BASE) -> str:
    """Each method minus ``base`` at every k, paired by seed: mean difference ± Student t 95%
    half-width (p: two-sided paired t test); n = the seeds both have."""
    all_runs = runs(folder)
    rows = []
    for method, seeds in all_runs.items():
        if method == base:
            continue
        shared = sorted(set(seeds) & set(all_runs[base]))
        row = {f"method - {METHODS[base]}": METHODS[method], "seeds": len(shared)}
        for k in KS:
            a = _values(seeds, final, k, shared)
            b = _values(all_runs[base], final, k, shared)
            row[f"pass@{k}"] = _paired_cell(a, b)
        rows.append(row)
    return markdown_table(rows)


def base_vs_rl_table(folder: pathlib.Path) -> str:
    """pass@1 and pass@32 after RL minus the SFT start, paired by seed (the question of whether
    RL raises pass@1 while lowering pass@k at large k below the base model)."""
    rows = []
    for method, seeds in runs(folder).items():
        row = {"method": METHODS[method], "seeds": len(seeds)}
        for k in (1, 32):
            row[f"pass@{k} RL - SFT"] = _paired_cell(
                _values(seeds, final, k), _values(seeds, start, k)
            )
        rows.append(row)
    return markdown_table(rows)


def _rl_rows(run: pathlib.Path) -> dict[int, dict]:
    return {r["step"]: r for r in _jsonl(run / "curve.jsonl") if r["phase"] == "rl"}


def training_table(folder: pathlib.Path, steps: tuple[int, ...] = (25, 100, 200, 300)) -> str:
    """Token entropy of the training samples and mean completion length (tokens per sample,
    EOS included) at a few RL steps, means over the seeds."""
    rows = []
    for method, seeds in runs(folder).items():
        config = json.loads((next(iter(seeds.values())) / "config.json").read_text())["config"]
        batch = config["groups"]["num_groups"] * config["groups"]["group_size"]
        per_step = [_rl_rows(seeds[s]) for s in sorted(seeds)]
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
        rl = [r for s in sorted(seeds) for r in _rl_rows(seeds[s]).values()]

        def med(key, rl=rl):
            return float(np.median([r[key] for r in rl]))

        def share(key, rl=rl):
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


def runs_summary(folder: pathlib.Path, methods: dict[str, str] = METHODS) -> str:
    """The study's runs in one row: how many, first start and last end (UTC), the wall time per
    run (median and largest, SFT load and evaluations included), the load averages at the runs'
    starts and the commits they ran at."""
    provs = [
        json.loads((d / "config.json").read_text())["provenance"]
        for seeds in runs(folder, methods).values()
        for d in seeds.values()
    ]
    t0 = [datetime.datetime.fromisoformat(p["start_utc"]) for p in provs]
    t1 = [datetime.datetime.fromisoformat(p["end_utc"]) for p in provs]
    wall = np.array([(b - a).total_seconds() for a, b in zip(t0, t1, strict=True)])
    loads = [p["load_avg_start"][0] for p in provs]
    commits = sorted(
        {p["git_commit"][:12] + ("+dirty" if p.get("git_dirty") else "") for p in provs}
    )
    return markdown_table(
        [
            {
                "runs": len(provs),
                "first start (UTC)": min(t0).strftime("%Y-%m-%d %H:%M"),
                "last end (UTC)": max(t1).strftime("%Y-%m-%d %H:%M"),
                "wall s per run (median / max)": f"{np.median(wall):.0f} / {wall.max():.0f}",
                "1-min load at starts": f"{min(loads):.1f}-{max(loads):.1f}",
                "commits": ", ".join(commits),
            }
        ]
    )


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


def draw_figure(folder: pathlib.Path):
    """Left: held-out pass@k against k (log scale), mean over seeds, the SFT start dashed.
    Right: each method minus GRPO against k, paired by seed, with its 95% t interval."""
    import matplotlib

    matplotlib.use("Agg")
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
        shared = sorted(set(seeds) & set(all_runs[BASE]))
        diffs = [
            stats.t_interval(
                _values(seeds, final, k, shared) - _values(all_runs[BASE], final, k, shared)
            )
            for k in KS
        ]
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


def main(argv: list[str] | None = None) -> int:
    from experiments.report import repo_root

    del argv
    lm = repo_root() / "reports" / "lm"
    fig = draw_figure(lm / "study")
    fig.savefig(lm / "figures" / "study_passk.png", dpi=110, metadata={"Software": None})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
