"""The LM testbed (issue 24; ``reports/lm/testbed/``, sweep ``lm-testbed``): its SFT starts, the
step-size grid, the bandit's prediction and the study at matched pass@1, all from per-prompt
counts.

Every evaluation of the testbed is a ``counts.npz`` (:mod:`ordergrad_experiments.lm.testbed`):
the correct samples out of ``samples`` of each prompt at each checkpoint, from which any unbiased
pass@k follows (:func:`count_evaluations`). The folder holds the starts' measurements
(``start-sft<s>/``: ``lm-diagnose mode=start``), the grid runs (``lr-<arm>-<lr>/``, validation
split) and the study runs (``<arm>-sft<s>-s<seed>/``, held-out split), each curated
(``curve.jsonl``, ``config.json``, ``counts.npz``).

The rules the study was declared with (reports/lm/RESULTS.md, "The LM testbed"):

* **step size**: one Adam step size for every arm, the grid's value with the highest validation
  pass@1 at the last checkpoint averaged over the arms (:func:`chosen_lr`);
* **matched progress**: each arm is compared with RLOO pair by pair (same SFT seed, same RL
  seed) at the pair's matched pass@1, the lower of the two runs' final pass@1, each run's pass@k
  interpolated linearly in pass@1 between its checkpoints
  (:func:`~ordergrad_experiments.report.lm.runs.matched`);
* **primary endpoint** (:data:`PRIMARY`): TopM:2@4 minus RLOO, pass@64 at matched pass@1, paired
  t test at 5%; the **secondary family** (:data:`SECONDARY`), Holm-corrected together.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, find_runs, markdown_table
from ordergrad_experiments.lm import Counts, pass_at_k_from_counts, read_counts
from ordergrad_experiments.report.lm.runs import matched

KS = (1, 4, 16, 64, 128)
"""The pass@k read from the counts."""
TARGETS = "pass@1 0.15-0.35, pass@64 <= 0.75, greedy < pass@64, hard >= 0.20"
"""Issue 24's targets for a start, in words (:func:`misses`)."""
PRIMARY = ("top2at4", 64)
"""The primary endpoint: (arm, k) of pass@k at matched pass@1, minus RLOO."""
SECONDARY = (("grpo", 64), ("top3at4", 64), ("remax4", 64))
SECONDARY += (("grpo", 16), ("top2at4", 16), ("top3at4", 16), ("remax4", 16))
"""The secondary family (Holm): (arm, k) minus RLOO at matched pass@1."""


def sweep():
    """The ``lm-testbed`` sweep's declaration (arms, labels, grid)."""
    from ordergrad_experiments.sweeps import lm_testbed

    return lm_testbed


def count_evaluations(counts: Counts) -> list[tuple[int, dict[str, float]]]:
    """``[(step, {"pass@k": value})]`` of every checkpoint of ``counts``, in step order: the
    unbiased pass@k (k of :data:`KS` up to the samples) averaged over the prompts."""
    ks = [k for k in KS if k <= counts.samples]
    return [
        (
            int(step),
            {
                f"pass@{k}": float(np.mean(pass_at_k_from_counts(row, counts.samples, k)))
                for k in ks
            },
        )
        for step, row in zip(counts.steps, counts.counts, strict=True)
    ]


def run_evaluations(run: Run) -> list[tuple[int, dict[str, float]]]:
    """:func:`count_evaluations` of the run folder's ``counts.npz``."""
    return count_evaluations(read_counts(run.path / "counts.npz"))


def misses(row: dict[str, float]) -> list[str]:
    """The targets of :data:`TARGETS` a start (a ``start`` row) misses."""
    out = []
    if not 0.15 <= row["pass@1"] <= 0.35:
        out.append(f"pass@1 {row['pass@1']:.3f}")
    if row["pass@64"] > 0.75:
        out.append(f"pass@64 {row['pass@64']:.3f}")
    if row["greedy"] >= row["pass@64"]:
        out.append("greedy >= pass@64")
    if row["hard"] < 0.20:
        out.append(f"hard {row['hard']:.3f}")
    return out


def _start_rows(folder: pathlib.Path) -> dict[int, list[dict[str, Any]]]:
    """``{sft seed: the start run's rows}`` of ``start-sft<s>/``."""
    out = {}
    for run in find_runs(folder, "start-sft*"):
        seed = int(run.name.removeprefix("start-sft"))
        out[seed] = [r for r in run.metrics if "kind" in r]
    return dict(sorted(out.items()))


CANDIDATE_SETTINGS = ("carry_keep", "sft_steps", "sft_lr", "sft_smoothing", "sft_seed")
"""The SFT settings the candidates table shows."""


def candidates_table(folder: pathlib.Path) -> str:
    """The candidate starts measured before the sweep (``candidates/<name>/``, one SFT seed
    each): their SFT settings, held-out numbers and the targets they miss."""
    rows = []
    for run in find_runs(folder / "candidates"):
        lm = run.config["lm"]
        (st,) = [r for r in run.metrics if r.get("kind") == "start"]
        row: dict[str, Any] = {"candidate": run.name}
        row |= {key: lm[key] for key in CANDIDATE_SETTINGS}
        row["prompts x samples"] = f"{st['prompts']} x {st['samples']}"
        row |= {f"pass@{k}": f"{st[f'pass@{k}']:.3f}" for k in (1, 64)}
        row |= {key: f"{st[key]:.3f}" for key in ("greedy", "hard")}
        row["targets"] = "met" if not misses(st) else "missed: " + ", ".join(misses(st))
        rows.append(row)
    return markdown_table(rows)


def starts_table(folder: pathlib.Path) -> str:
    """Each SFT start's held-out numbers (prompts x samples, common random numbers), whether it
    meets the targets and whether the study uses it."""
    used = sweep().SFT_SEEDS
    rows = []
    for seed, rs in _start_rows(folder).items():
        (st,) = [r for r in rs if r["kind"] == "start"]
        row: dict[str, Any] = {"SFT seed": seed, "prompts x samples": f"{st['prompts']} x "
                               f"{st['samples']}"}  # fmt: skip
        row |= {f"pass@{k}": f"{st[f'pass@{k}']:.3f}" for k in KS if f"pass@{k}" in st}
        row |= {key: f"{st[key]:.3f}" for key in ("greedy", "never", "hard")}
        row["targets"] = "met" if not misses(st) else "missed: " + ", ".join(misses(st))
        row["in the study"] = "yes" if seed in used else "no"
        rows.append(row)
    return markdown_table(rows)


def histogram_table(folder: pathlib.Path) -> str:
    """Each start's per-prompt solve-rate histogram (share of prompts per bin)."""
    rows = []
    for seed, rs in _start_rows(folder).items():
        row: dict[str, Any] = {"SFT seed": seed}
        row |= {r["bin"]: f"{r['share']:.3f}" for r in rs if r["kind"] == "histogram"}
        rows.append(row)
    return markdown_table(rows)


def chain_table(folder: pathlib.Path) -> str:
    """Each start's mean solve rate by longest carry chain L (prompts per L in the header)."""
    rows = []
    for seed, rs in _start_rows(folder).items():
        chains = [r for r in rs if r["kind"] == "chain"]
        row: dict[str, Any] = {"SFT seed": seed}
        row |= {f"L={r['chain']} ({r['prompts']})": f"{r['rate']:.3f}" for r in chains}
        rows.append(row)
    return markdown_table(rows)


def grid_runs(folder: pathlib.Path) -> dict[str, dict[float, Run]]:
    """``{arm: {lr: run}}`` of the grid (``lr-<arm>-<lr>/``), arms in table order."""
    out: dict[str, dict[float, Run]] = {}
    for run in find_runs(folder, "lr-*"):
        arm, lr = run.name.removeprefix("lr-").split("-", 1)  # arm ids hold no "-"
        out.setdefault(arm, {})[float(lr)] = run
    return {a: dict(sorted(out[a].items())) for a in sweep().ARMS if a in out}


def final_pass1(folder: pathlib.Path) -> dict[str, dict[float, float]]:
    """``{arm: {step size: validation pass@1 at the grid run's last checkpoint}}``."""
    return {
        arm: {lr: run_evaluations(run)[-1][1]["pass@1"] for lr, run in by_lr.items()}
        for arm, by_lr in grid_runs(folder).items()
    }


def chosen_lr(folder: pathlib.Path) -> dict[str, float]:
    """Every arm's step size: one for all, the grid's value with the highest final validation
    pass@1 averaged over the arms (the smaller on a tie). One seed per cell separates an arm's
    step sizes by less than the runs' noise, while the step size itself moves pass@64 at
    matched pass@1 far more: a choice per arm would let the noise, not the objective, decide
    the comparison (reports/lm/RESULTS.md, "Step sizes")."""
    mean = arm_means(final_pass1(folder))
    best = max(mean, key=lambda lr: (mean[lr], -lr))
    return dict.fromkeys(grid_runs(folder), best)


def arm_means(final: dict[str, dict[float, float]]) -> dict[float, float]:
    """``{step size: final pass@1 averaged over the arms}`` of :func:`final_pass1`'s values, for
    the step sizes every arm ran, in increasing order."""
    steps = sorted(set.intersection(*(set(v) for v in final.values())))
    return {lr: float(np.mean([v[lr] for v in final.values()])) for lr in steps}


def lr_table(folder: pathlib.Path) -> str:
    """The grid: each arm and step size's validation pass@1 and pass@64 at the start and at the
    last checkpoint; then each step size's final pass@1 averaged over the arms, and the one
    chosen."""
    labels, chosen = sweep().TESTBED.labels, chosen_lr(folder)
    rows = []
    for arm, by_lr in grid_runs(folder).items():
        for lr, run in by_lr.items():
            evals = run_evaluations(run)
            (_, first), (s1, last) = evals[0], evals[-1]
            rows.append(
                {
                    "arm": labels[arm],
                    "Adam step": f"{lr:g}",
                    "steps": s1,
                    "pass@1 start -> end": f"{first['pass@1']:.3f} -> {last['pass@1']:.3f}",
                    "pass@64 start -> end": f"{first['pass@64']:.3f} -> {last['pass@64']:.3f}",
                    "chosen": "yes" if chosen[arm] == lr else "",
                }
            )
    final = final_pass1(folder)
    for lr, mean in arm_means(final).items():
        rows.append(
            {
                "arm": f"mean of {len(final)} arms",
                "Adam step": f"{lr:g}",
                "pass@1 start -> end": f"end {mean:.3f}",
                "chosen": "yes" if lr in chosen.values() else "",
            }
        )
    return markdown_table(rows)


def study_runs(folder: pathlib.Path) -> dict[str, dict[tuple[int, int], Run]]:
    """``{arm: {(sft seed, rl seed): run}}`` of the study (``study/<arm>-sft<s>-s<seed>/``)."""
    out: dict[str, dict[tuple[int, int], Run]] = {}
    for run in find_runs(folder / "study", "*-sft*-s*"):
        arm, _, rest = run.name.partition("-sft")
        sft, _, seed = rest.partition("-s")
        out.setdefault(arm, {})[(int(sft), int(seed))] = run
    return {a: dict(sorted(out[a].items())) for a in sweep().ARMS if a in out}


def study_complete(folder: pathlib.Path) -> bool:
    """Whether ``folder / "study"`` holds every run the study declared (the tests are read only
    then: the analysis was stated for all the pairs)."""
    if not (folder / "study").is_dir():
        return False
    have = {run.name for run in find_runs(folder / "study")}
    return set(sweep().STUDY.kept()) <= have


@functools.cache
def _tests(folder: pathlib.Path):
    """``(primary, [(arm, k, matched, test)] secondary, Holm-adjusted p)``, computed once for
    the primary and the secondary table."""
    runs = study_runs(folder)
    base = runs[sweep().BASE]

    def one(arm: str, k: int):
        m = matched(runs[arm], base, ["pass@1", f"pass@{k}"], evals=run_evaluations)
        return arm, k, m, m.test(f"pass@{k}")

    primary = one(*PRIMARY)
    secondary = [one(a, k) for a, k in SECONDARY if a in runs]
    return primary, secondary, stats.holm([t[3].p_value for t in secondary])


def _test_row(arm: str, k: int, m, test, p: str) -> dict[str, Any]:
    return {
        "arm - RLOO": sweep().TESTBED.labels[arm],
        "endpoint": f"pass@{k} at matched pass@1",
        "pairs": len(m.seeds),
        "matched pass@1": stats.mean_ci_cell(m.level, ".3f", ".3f"),
        "difference (95% t)": test.interval.format("+.4f", ".4f"),
        "p": p,
    }


def primary_table(folder: pathlib.Path) -> str:
    """The primary endpoint alone: paired t over the (SFT seed, RL seed) pairs, two-sided."""
    (arm, k, m, test), _, _ = _tests(folder)
    return markdown_table([_test_row(arm, k, m, test, stats.format_p(test.p_value))])


def secondary_table(folder: pathlib.Path) -> str:
    """The secondary family: paired t per comparison, p and Holm's adjusted p."""
    _, secondary, adjusted = _tests(folder)
    return markdown_table(
        [
            _test_row(a, k, m, t, f"{stats.format_p(t.p_value)}; Holm {stats.format_p(h)}")
            for (a, k, m, t), h in zip(secondary, adjusted, strict=True)
        ]
    )


BANDIT_OBJECTIVE = {
    "rloo": "mean",
    "grpo": "grpo",
    "top2at4": "top2at4",
    "top3at4": "top3at4",
    "remax4": "top1at4",
}
"""The bandit objective of each arm (ReMax@4 = TopM:1@4 = max@4)."""
BANDIT_STEPS = 2000


@functools.cache
def bandit_curves(folder: pathlib.Path, seed: int) -> dict[str, np.ndarray]:
    """The bandit's frontiers (gradient flow, float64) from the per-prompt solve rates of SFT
    start ``seed`` (its ``counts.npz``): ``{arm: curve [T, len(bandit.KS)]}``."""
    import jax

    from ordergrad_experiments.lm import (
        BANDIT_OBJECTIVES,
        bandit_frontiers,
        solve_rates_from_counts,
    )

    counts = read_counts(folder / f"start-sft{seed}" / "counts.npz")
    rates = solve_rates_from_counts(counts.counts[0], counts.samples, clip=0.0)
    objectives = {a: BANDIT_OBJECTIVES[o] for a, o in BANDIT_OBJECTIVE.items()}
    with jax.enable_x64(True):
        return bandit_frontiers(rates, objectives, steps=BANDIT_STEPS)


def bandit_table(folder: pathlib.Path, levels=(0.20, 0.25, 0.30)) -> str:
    """The bandit's prediction for each study start, made from the start's counts before any
    study run: each arm's pass@16 and pass@64 minus RLOO's at pass@1 = each of ``levels``, and
    RLOO's own, along the gradient-flow frontiers."""
    from ordergrad_experiments.lm import BANDIT_KS as BKS
    from ordergrad_experiments.lm import bandit_frontier as frontier

    rows = []
    for seed in sweep().SFT_SEEDS:
        curves = bandit_curves(folder, seed)
        base = {lv: frontier(curves[sweep().BASE], lv, BKS) for lv in levels}
        for arm, curve in curves.items():
            row: dict[str, Any] = {"SFT seed": seed, "arm": sweep().TESTBED.labels[arm]}
            for lv in levels:
                got = frontier(curve, lv, BKS)
                for k in (16, 64):
                    j = BKS.index(k)
                    cell = got[j] if arm == sweep().BASE else got[j] - base[lv][j]
                    sign = "" if arm == sweep().BASE else "+"
                    row[f"pass@{k} at {lv:g}"] = "-" if np.isnan(cell) else f"{cell:{sign}.4f}"
            rows.append(row)
    return markdown_table(rows)


def bandit_difference(curves: dict[str, np.ndarray], arm: str, level: float, k: int) -> float:
    """The bandit's pass@k of ``arm`` minus RLOO's at pass@1 = ``level``, along the frontiers
    ``curves`` (:func:`bandit_curves`); NaN where a frontier does not reach ``level``."""
    from ordergrad_experiments.lm import BANDIT_KS as BKS
    from ordergrad_experiments.lm import bandit_frontier as frontier

    j = BKS.index(k)
    return float(
        frontier(curves[arm], level, BKS)[j] - frontier(curves[sweep().BASE], level, BKS)[j]
    )


def agreement_table(folder: pathlib.Path) -> str:
    """Where the bandit and the LM agree, test by test (the primary and the secondary family):
    the LM's difference from RLOO at matched pass@1 (mean ± Student t 95% over the pairs)
    beside the bandit's prediction for the same pairs (the frontiers from each pair's start,
    :func:`bandit_curves`, read at the pair's matched pass@1, :func:`bandit_difference`,
    averaged over the pairs), whether the prediction lies inside the LM's interval and whether
    it has the LM's sign. Descriptive: not one of the declared tests."""
    primary, secondary, _ = _tests(folder)
    rows = []
    for arm, k, m, test in sorted(
        [primary, *secondary], key=lambda t: (t[1], list(sweep().ARMS).index(t[0]))
    ):
        predicted = np.mean(
            [
                bandit_difference(bandit_curves(folder, sft), arm, level, k)
                for (sft, _), level in zip(m.seeds, m.level, strict=True)
            ]
        )
        rows.append(
            {
                "arm - RLOO": sweep().TESTBED.labels[arm],
                "endpoint": f"pass@{k} at matched pass@1",
                "LM (95% t)": test.interval.format("+.4f", ".4f"),
                "bandit": "-" if np.isnan(predicted) else f"{predicted:+.4f}",
                "bandit inside the LM's interval": (
                    "yes" if test.interval.low <= predicted <= test.interval.high else "no"
                ),
                "same sign": "yes" if np.sign(predicted) == np.sign(test.difference) else "no",
            }
        )
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """The testbed's tables by id (``folder``: ``reports/lm``), where their runs exist."""
    tb = folder / "testbed"
    out: dict[str, Callable[[], str]] = {}
    if not tb.is_dir():
        return out
    if (tb / "candidates").is_dir():
        out["testbed-candidates"] = lambda: candidates_table(tb)
    if find_runs(tb, "start-sft*"):
        out |= {
            "testbed-starts": lambda: starts_table(tb),
            "testbed-histogram": lambda: histogram_table(tb),
            "testbed-chain": lambda: chain_table(tb),
            "testbed-bandit": lambda: bandit_table(tb),
        }
    if find_runs(tb, "lr-*"):
        out["testbed-lr"] = lambda: lr_table(tb)
    if study_complete(tb):
        out |= {
            "testbed-primary": lambda: primary_table(tb),
            "testbed-secondary": lambda: secondary_table(tb),
            "testbed-agreement": lambda: agreement_table(tb),
        }
    return out


def draw_figure(folder: pathlib.Path) -> Any:
    """pass@64 against pass@1, one panel per SFT start of the study: each arm's LM runs (mean
    over the RL seeds at each checkpoint, markers) beside the bandit's gradient-flow frontier
    from that start's counts (lines, up to a little past the LM's range) (``folder``:
    ``reports/lm/testbed``)."""
    import matplotlib.pyplot as plt

    from ordergrad_experiments.lm import BANDIT_KS as BKS

    runs = study_runs(folder)
    labels = sweep().TESTBED.labels
    seeds = sorted({sft for pairs in runs.values() for sft, _ in pairs})
    fig, axes = plt.subplots(1, len(seeds), figsize=(6 * len(seeds), 4.5), squeeze=False)
    for ax, sft in zip(axes[0], seeds, strict=True):
        curves = bandit_curves(folder, sft)
        top = 0.0
        for i, (arm, pairs) in enumerate(runs.items()):
            ev = [run_evaluations(r) for (s, _), r in pairs.items() if s == sft]
            x = np.mean([[e["pass@1"] for _, e in v] for v in ev], 0)
            y = np.mean([[e["pass@64"] for _, e in v] for v in ev], 0)
            top = max(top, float(x.max()))
            ax.plot(x, y, color=f"C{i}", ls=":", marker="o", ms=3, lw=0.8,
                    label=f"LM {labels[arm]} ({len(ev)} seeds)")  # fmt: skip
        for i, arm in enumerate(runs):
            c = curves[arm]
            keep = c[:, 0] <= top + 0.05
            ax.plot(c[keep, 0], c[keep, BKS.index(64)], color=f"C{i}", lw=1.2)
        ax.set_title(f"SFT seed {sft}: LM (markers) and bandit (lines)")
        ax.set_xlabel("held-out pass@1")
        ax.set_ylabel("held-out pass@64")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
