"""The tables of ``reports/brax/RESULTS.md``, built from the data committed beside it.

The folder's layout (``reports/brax/``):

* ``control/<run-id>/``: runs of ``ordergrad-jax run control`` on brax tasks (``results.sh brax``),
  named ``brax-<task>[-push]-<method>``; one table per task (``experiments.control.aggregate``).
* ``brax-rp/<run-id>/``: runs of ``ordergrad-jax run brax-rp`` (``results.sh brax-rp``); the
  inverted_pendulum runs (``ip-*``) and the reacher/hopper runs in separate tables
  (``experiments.pathwise.run.runs_table``), and the inverted_pendulum learning curves.
* ``variance/rows.json``: the RP vs LR variance study (``experiments.pathwise.variance.table``).
* ``bench/*.json``: the benchmarks against brax's own agents, one row per trainer run.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import numpy as np

from experiments.common.runs import markdown_table

CONTROL_TASKS = ("inverted_pendulum", "reacher", "hopper", "hopper-push")


def _control_runs(folder: pathlib.Path, task: str) -> list[pathlib.Path]:
    """The control run folders of one task (``brax-hopper-*`` without ``brax-hopper-push-*``)."""
    return sorted(
        d for d in (folder / "control").glob("*/") if d.name.rsplit("-", 1)[0] == f"brax-{task}"
    )


def control_table(folder: pathlib.Path, task: str) -> str:
    """The group-PG and PPO runs of one task: ``aggregate.table`` (mean ± 95% CI over seeds)."""
    from experiments.control import aggregate

    return aggregate.table(_control_runs(folder, task))


def _rp_runs(folder: pathlib.Path, inverted_pendulum: bool) -> list[pathlib.Path]:
    runs = sorted(d for d in (folder / "brax-rp").glob("*/") if (d / "config.json").exists())
    return [d for d in runs if d.name.startswith("ip-") == inverted_pendulum]


def rp_table(folder: pathlib.Path, inverted_pendulum: bool) -> str:
    """The RP/LR runs: ``experiments.pathwise.run.runs_table`` (final evaluation, mean ± 1.96 SE
    over seeds)."""
    from experiments.pathwise import run

    return run.runs_table(_rp_runs(folder, inverted_pendulum))


def rp_curves_table(folder: pathlib.Path) -> str:
    """Learning curves of the inverted_pendulum runs: at each evaluation, the mean over seeds of
    the episode length (L) and of CVaR_0.1 of the return (C); columns in thousands of env steps."""
    rows, steps = [], set()
    for d in _rp_runs(folder, inverted_pendulum=True):
        if not (d / "summary.md").exists():
            continue
        metrics = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in metrics if "eval_mean_length" in r]
        row = {"run": d.name}
        for s in sorted({r["env_steps"] for r in evals}):
            at = [r for r in evals if r["env_steps"] == s]
            length = np.mean([r["eval_mean_length"] for r in at])
            cvar = np.mean([r["eval_cvar_0.1"] for r in at])
            row[f"{s / 1000:.0f}k"] = f"L {length:.1f}, C {cvar:.1f}"
            steps.add(s)
        rows.append(row)
    columns = ["run", *(f"{s / 1000:.0f}k" for s in sorted(steps))]
    return markdown_table(rows, columns)


def variance_table(folder: pathlib.Path) -> str:
    """The RP vs LR variance study: ``experiments.pathwise.variance.table`` of
    ``variance/rows.json``."""
    from experiments.pathwise import variance

    return variance.table(json.loads((folder / "variance" / "rows.json").read_text())["rows"])


def _counterpart(trainer: str) -> str:
    """brax's agent that one of ours is measured against: APG for RP, PPO for the LR trainers."""
    return "brax_apg" if trainer.startswith("ours_rp") else "brax_ppo"


def bench_table(folder: pathlib.Path) -> str:
    """One row per trainer run of every ``bench/*.json``: steady env-steps/s (and its ratio to the
    brax agent of the same kind in the same file: the i-th of ours against the i-th of theirs),
    wall seconds with compilation, and the final policy's evaluation."""
    rows = []
    for path in sorted((folder / "bench").glob("*.json")):
        runs = json.loads(path.read_text())["rows"]
        brax_speeds: dict[str, list[float]] = {}
        for r in runs:
            if r["trainer"].startswith("brax_"):
                brax_speeds.setdefault(r["trainer"], []).append(r["env_steps_per_s"])
        seen: dict[str, int] = {}
        for r in runs:
            ratio = ""
            if r["trainer"].startswith("ours_"):
                theirs = _counterpart(r["trainer"])
                i = seen[theirs] = seen.get(theirs, -1) + 1
                speeds = brax_speeds.get(theirs, [])
                if speeds:
                    ratio = (
                        f"{r['env_steps_per_s'] / speeds[min(i, len(speeds) - 1)]:.2f}x {theirs}"
                    )
            rows.append(
                {
                    "bench": path.stem,
                    "task": r["task"],
                    "trainer": r["trainer"],
                    "env_steps": r["env_steps"],
                    "env_steps_per_s": f"{r['env_steps_per_s']:,.0f}",
                    "vs_brax": ratio,
                    "wall_s": f"{r['wall_s']:.1f}",
                    "eval_mean": f"{r['eval_mean']:.2f}",
                    "eval_cvar_0.1": f"{r['eval_cvar_0.1']:.2f}",
                }
            )
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """Every table of the document by id."""
    tables: dict[str, Callable[[], str]] = {
        f"control-{task}": (lambda task=task: control_table(folder, task)) for task in CONTROL_TASKS
    }
    tables["rp-inverted_pendulum"] = lambda: rp_table(folder, inverted_pendulum=True)
    tables["rp-inverted_pendulum-curves"] = lambda: rp_curves_table(folder)
    tables["rp-reacher-hopper"] = lambda: rp_table(folder, inverted_pendulum=False)
    tables["variance"] = lambda: variance_table(folder)
    tables["bench"] = lambda: bench_table(folder)
    return tables
