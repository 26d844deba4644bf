"""The tables of ``reports/brax/RESULTS.md``, built from the data committed beside it.

The folder's layout (``reports/brax/``) is what the brax sweeps (``experiments/sweeps/brax.py``)
write with ``ordergrad-jax sweep NAME --out reports/brax`` (a run folder is ``config.json`` with
provenance, ``metrics.jsonl`` rows and ``summary.md``, written last: a folder without it is an
unfinished run and is left out):

* ``control/<run-id>/``: runs of ``ordergrad-jax run control`` on brax tasks (``sweep brax``),
  named ``brax-<task>[-push]-<method>``; one table per task
  (``ordergrad_experiments.report.control.table``).
* ``brax-rp/<run-id>/``: runs of ``ordergrad-jax run brax-rp`` (``sweep brax-rp``); the
  inverted_pendulum runs (``ip-*``) and the reacher/hopper runs in separate tables
  (:func:`rp_runs_table`), and the inverted_pendulum learning curves.
* the RP vs LR variance study (the study's own table and figure,
  ``ordergrad_experiments.pathwise.variance_table``/``variance_figure``), one study: either the run
  folder ``brax-variance/<run-id>/`` of ``ordergrad-jax run brax-variance --out reports/brax``
  (``sweep brax-variance``: run id ``variance``; its rows in ``metrics.jsonl``, its figure
  ``rp_vs_lr.png`` beside them), or ``variance/rows.json``, the study committed before run
  folders (``{"config", "rows"}``, the rows naming the gradient ``estimator``; its figure
  ``variance/rp_vs_lr.png``). ``ordergrad-jax report brax --figures`` redraws that figure.
* the benchmarks against brax's own agents, one table row per trainer run of every benchmark run:
  the run folders ``bench/brax/<run-id>/`` of ``ordergrad-jax bench brax --out reports/brax/bench``
  (``sweep brax-bench``: run id the task), and ``bench/*.json``, the benchmarks committed
  before run folders (``{"config", "device", "rows"}``); a benchmark is named by its run id or
  file stem, and listed in that order.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, find_runs, markdown_table

CONTROL_TASKS = ("inverted_pendulum", "reacher", "hopper", "hopper-push")


def _runs(folder: pathlib.Path, finished: bool | None = None) -> list[Run]:
    """The run folders under ``folder`` by name (``[]`` where it does not exist)."""
    return find_runs(folder, finished=finished) if folder.is_dir() else []


def _control_runs(folder: pathlib.Path, task: str) -> list[Run]:
    """The control runs of one task (``brax-hopper-*`` without ``brax-hopper-push-*``)."""
    return [
        run for run in _runs(folder / "control") if run.name.rsplit("-", 1)[0] == f"brax-{task}"
    ]


def control_table(folder: pathlib.Path, task: str) -> str:
    """The group-PG and PPO runs of one task: ``ordergrad_experiments.report.control.table`` (mean ±
    95% CI over seeds)."""
    from ordergrad_experiments.report import control

    return control.table(_control_runs(folder, task))


def _rp_runs(folder: pathlib.Path, inverted_pendulum: bool) -> list[Run]:
    runs = _runs(folder / "brax-rp")
    return [run for run in runs if run.name.startswith("ip-") == inverted_pendulum]


def rp_runs_table(runs: list[Run]) -> str:
    """Markdown table of the finished ``brax-rp`` runs, one row each: the settings that differ
    between runs and the final evaluation (mean over seeds ± Student t 95% CI, n - 1 df), steady
    env-steps/s (the median over the chunks that were not the first of their process)."""
    from ordergrad_experiments.pathwise import run_settings

    out = []
    for run in runs:
        if not run.finished:
            continue
        rows = run.metrics
        final = [r for r in rows if r["env_steps"] == max(r["env_steps"] for r in rows)]
        steady = [r["env_steps_per_s"] for r in rows if not r.get("first_in_process")]
        settings = run_settings(run.config)
        row: dict[str, Any] = {"run": run.name}
        row |= {key: settings[key] for key in ("gradient", "objective", "truncate", "lr", "std")}
        row["push"] = f"{settings['push_prob']:g} x {settings['push_size']:g}"
        row["seeds"] = len(final)
        row["env_steps"] = final[0]["env_steps"]
        for key in (
            "eval_mean_length",
            "eval_mean",
            "eval_cvar_0.1",
            f"eval_max@{settings['k']}",  # estimator.k (top-level k in older configs)
        ):
            row[key.removeprefix("eval_")] = stats.mean_ci_cell([r[key] for r in final])
        row["env_steps_per_s"] = f"{np.median(steady) if steady else float('nan'):.3g}"
        out.append(row)
    return markdown_table(out) if out else "no finished runs\n"


def rp_table(folder: pathlib.Path, inverted_pendulum: bool) -> str:
    """The RP/LR runs: :func:`rp_runs_table` (final evaluation, mean ± Student t 95% CI over
    seeds)."""
    return rp_runs_table(_rp_runs(folder, inverted_pendulum))


def rp_curves_table(folder: pathlib.Path) -> str:
    """Learning curves of the inverted_pendulum runs: at each evaluation, the mean over seeds of
    the episode length (L) and of CVaR_0.1 of the return (C); columns in thousands of env steps."""
    rows, steps = [], set()
    for run in _rp_runs(folder, inverted_pendulum=True):
        if not run.finished:
            continue
        evals = [r for r in run.metrics if "eval_mean_length" in r]
        row = {"run": run.name}
        for s in sorted({r["env_steps"] for r in evals}):
            at = [r for r in evals if r["env_steps"] == s]
            length = np.mean([r["eval_mean_length"] for r in at])
            cvar = np.mean([r["eval_cvar_0.1"] for r in at])
            row[f"{s / 1000:.0f}k"] = f"L {length:.1f}, C {cvar:.1f}"
            steps.add(s)
        rows.append(row)
    columns = ["run", *(f"{s / 1000:.0f}k" for s in sorted(steps))]
    return markdown_table(rows, columns)


LEGACY_VARIANCE = "variance/rows.json"
FIGURE = "rp_vs_lr.png"


def variance_study(folder: pathlib.Path) -> tuple[pathlib.Path | None, list[dict]]:
    """``(its folder, its rows)`` of the one variance study in ``folder``: a finished
    ``brax-variance/<run-id>/`` run (its metric rows), or ``variance/rows.json`` (its ``rows``);
    ``(None, [])`` where there is none.

    Raises:
      ValueError: more than one study (the document shows one; keep the one it reports).
    """
    studies: dict[str, tuple[pathlib.Path, Callable[[], list[dict]]]] = {
        str(run.path.relative_to(folder)): (run.path, lambda run=run: run.metrics)
        for run in _runs(folder / "brax-variance", finished=True)
    }
    legacy = folder / LEGACY_VARIANCE
    if legacy.exists():
        studies[LEGACY_VARIANCE] = (legacy.parent, lambda: json.loads(legacy.read_text())["rows"])
    if len(studies) > 1:
        raise ValueError(
            f"{folder} holds {len(studies)} variance studies {sorted(studies)}; the document "
            "shows one: keep the one it reports"
        )
    if not studies:
        return None, []
    ((where, rows),) = studies.values()
    return where, rows()


def variance_rows(folder: pathlib.Path) -> list[dict]:
    """The rows of the one variance study in ``folder`` (:func:`variance_study`)."""
    return variance_study(folder)[1]


def variance_table(folder: pathlib.Path) -> str:
    """The RP vs LR variance study: its own table
    (``ordergrad_experiments.pathwise.variance_table``, the run's summary) of
    :func:`variance_rows`."""
    from ordergrad_experiments.pathwise import variance_table

    return variance_table(variance_rows(folder))


def draw_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    """Redraws the variance study's figure (``ordergrad_experiments.pathwise.variance_figure``, as
    the run draws it) as ``rp_vs_lr.png`` in the study's folder (:func:`variance_study`); returns
    the paths written (none without a study)."""
    from ordergrad_experiments.pathwise import variance_figure
    from ordergrad_experiments.report.figures import save_png

    where, rows = variance_study(folder)
    if where is None:
        print(f"{folder}: no variance study; no figure to draw")
        return []
    return [save_png(variance_figure(rows), where / FIGURE)]


def bench_runs(folder: pathlib.Path) -> list[tuple[str, list[dict]]]:
    """``(name, rows)`` of every benchmark under ``folder / "bench"``, by name: each finished run
    folder ``bench/brax/<run-id>/`` (its metric rows: one per trainer run) and each
    ``bench/*.json`` file (its ``rows``)."""
    bench = folder / "bench"
    runs = [(run.name, run.metrics) for run in _runs(bench / "brax", finished=True)]
    runs += [(p.stem, json.loads(p.read_text())["rows"]) for p in bench.glob("*.json")]
    return sorted(runs, key=lambda run: run[0])


def _counterpart(trainer: str) -> str:
    """brax's agent that one of ours is measured against: APG for RP, PPO for the LR trainers."""
    return "brax_apg" if trainer.startswith("ours_rp") else "brax_ppo"


def _cell(row: dict, key: str, fmt: str) -> str:
    """``row[key]`` formatted, or empty where the row has no such value (a failed trainer)."""
    return format(row[key], fmt) if key in row else ""


def bench_table(folder: pathlib.Path) -> str:
    """One row per trainer run of every benchmark (:func:`bench_runs`): steady env-steps/s (and
    its ratio to the brax agent of the same kind in the same benchmark: the i-th of ours against
    the i-th of theirs that ran), wall seconds with compilation (and the same ratio of wall
    times: below 1, ours finished sooner), and the final policy's evaluation. A trainer that
    failed (brax's agents on a jax they do not support) has only its ``error``, in a column of
    its own that is shown only then."""
    rows = []
    for name, runs in bench_runs(folder):
        brax_runs: dict[str, list[dict]] = {}
        for r in runs:
            if r["trainer"].startswith("brax_") and "error" not in r:
                brax_runs.setdefault(r["trainer"], []).append(r)
        seen: dict[str, int] = {}
        for r in runs:
            ratio = wall_ratio = ""
            if r["trainer"].startswith("ours_") and "error" not in r:
                theirs = _counterpart(r["trainer"])
                i = seen[theirs] = seen.get(theirs, -1) + 1
                matches = brax_runs.get(theirs, [])
                if matches:
                    other = matches[min(i, len(matches) - 1)]
                    ratio = f"{r['env_steps_per_s'] / other['env_steps_per_s']:.2f}x {theirs}"
                    wall_ratio = f"{r['wall_s'] / other['wall_s']:.2f}x"
            rows.append(
                {
                    "bench": name,
                    "task": r["task"],
                    "trainer": r["trainer"],
                    "env_steps": r.get("env_steps", ""),
                    "env_steps_per_s": _cell(r, "env_steps_per_s", ",.0f"),
                    "vs_brax": ratio,
                    "wall_s": _cell(r, "wall_s", ".1f"),
                    "wall_vs_brax": wall_ratio,
                    "eval_mean": _cell(r, "eval_mean", ".2f"),
                    "eval_cvar_0.1": _cell(r, "eval_cvar_0.1", ".2f"),
                    **({"error": r["error"]} if "error" in r else {}),
                }
            )
    columns = list(rows[0]) if rows else None
    if columns and any("error" in r for r in rows) and "error" not in columns:
        columns.append("error")
    return markdown_table(rows, columns)


# The differences the text claims or denies: (data folder, run A, run B, statistic). Welch tests:
# the runs of two methods share only their seed numbers, not their randomness.
COMPARISONS = (
    ("control", "brax-hopper-og_mean", "brax-hopper-ppo", "mean"),
    ("control", "brax-hopper-og_ltm", "brax-hopper-og_mean", "cvar_0.1"),
    ("control", "brax-hopper-og_ltm", "brax-hopper-og_mean", "mean"),
    ("control", "brax-hopper-og_ltm", "brax-hopper-og_remax", "cvar_0.1"),
    ("control", "brax-hopper-push-og_mean", "brax-hopper-push-ppo", "cvar_0.1"),
    ("control", "brax-hopper-push-og_ltm", "brax-hopper-push-ppo", "cvar_0.1"),
    ("control", "brax-hopper-push-og_ltm", "brax-hopper-push-og_mean", "cvar_0.1"),
    ("control", "brax-hopper-push-og_ltm_warm", "brax-hopper-push-ppo", "cvar_0.1"),
    ("control", "brax-hopper-push-og_ltm_warm", "brax-hopper-push-og_mean", "cvar_0.1"),
    ("control", "brax-inverted_pendulum-og_ltm", "brax-inverted_pendulum-og_mean", "cvar_0.1"),
    ("control", "brax-reacher-og_ltm", "brax-reacher-og_mean", "cvar_0.1"),
    ("brax-rp", "ip-spring-rp-LowerTailMean_0_25", "ip-spring-rp-Mean", "eval_cvar_0.1"),
    ("brax-rp", "ip-spring-push-rp-LowerTailMean_0_25", "ip-spring-push-rp-Mean", "eval_cvar_0.1"),
    ("brax-rp", "ip-spring-rp-Mean", "ip-spring-lr-Mean", "eval_cvar_0.1"),
)


def per_seed(run: Run, stat: str) -> list[float]:
    """The final evaluation's ``stat``, one value per seed: a control run's ``eval`` rows, or a
    ``brax-rp`` run's rows of its last evaluation (the largest ``env_steps``)."""
    rows = run.metrics
    evals = run.rows("eval")
    if not evals:
        last = max(r["env_steps"] for r in rows)
        evals = [r for r in rows if r["env_steps"] == last]
    return [float(r[stat]) for r in sorted(evals, key=lambda r: r["seed"])]


def comparisons_table(folder: pathlib.Path) -> str:
    """Each difference of :data:`COMPARISONS`: the difference of the means over seeds with its
    Welch 95% interval and two-sided p-value (``ordergrad_experiments.common.stats.welch_test``),
    and, where it is not significant at 5%, the seeds per arm a rerun would need if the observed
    difference and seed standard deviations were the true ones: for the expected 95% interval to
    exclude 0, and for 80% power (``stats.seeds_to_resolve``)."""
    rows = []
    for sub, a, b, stat in COMPARISONS:
        x, y = per_seed(Run(folder / sub / a), stat), per_seed(Run(folder / sub / b), stat)
        test = stats.welch_test(x, y)
        need = "-"
        if test.p_value >= 0.05:
            sds = (float(np.std(x, ddof=1)), float(np.std(y, ddof=1)))
            need = (
                f"{stats.seeds_to_resolve(test.difference, *sds)} / "
                f"{stats.seeds_to_resolve(test.difference, *sds, power=0.8)}"
            )
        rows.append(
            {
                "A": a,
                "B": b,
                "statistic": stat.removeprefix("eval_"),
                "seeds A, B": f"{test.n_a}, {test.n_b}",
                "A - B": f"{test.difference:.3g}",
                "95% CI": f"{test.interval.low:.3g} to {test.interval.high:.3g}",
                "Welch p": stats.format_p(test.p_value),
                "seeds per arm: CI excludes 0 / 80% power": need,
            }
        )
    return markdown_table(rows)


TAIL4 = "LowerTailMean:0.25@4"
"""E[worst of 4]: the statistic the brax sweeps' lower-tail learner ascends."""

HOPPER_TAIL = "hopper-tail"
"""The folder of ``sweep brax-hopper-tail``'s runs (``ht-*``): why the lower-tail learner ends
below the Mean learner on E[worst of 4] on hopper-push (issue 25)."""


def hopper_tail_study() -> Any:
    """The tests of the hopper-tail set, stated before its runs (RESULTS.md section 2): the
    primary, the rerun lower-tail learner against the rerun Mean learner on E[worst of 4] (the
    statistic the tail learner ascends); the secondary family (Holm), each tail variant (half and
    double step, groups of 16 and 32) against the Mean learner on it, and the rerun pair on the
    mean and CVaR_0.1."""
    from ordergrad_experiments.report.returns import Powered

    return Powered(
        primary=("og_ltm", "og_mean", TAIL4),
        secondary=(
            *((f"og_ltm_{v}", "og_mean", TAIL4) for v in ("lr1.5e-3", "lr6e-3", "n16", "n32")),
            ("og_ltm", "og_mean", "mean"),
            ("og_ltm", "og_mean", "cvar_0.1"),
        ),
        statistics=("mean", "cvar_0.1", TAIL4, "median"),
    )


HOPPER_POWERED = "hopper-63seeds"
"""The folder of ``sweep brax-hopper-63seeds``'s runs (``hp-*``): the nominal-hopper pair at the
seed count of section 6's power analysis (issue 25)."""


def hopper_powered_study() -> Any:
    """The tests of the hopper-63seeds set, stated before its runs (RESULTS.md section 2): the
    primary, the lower-tail learner minus the Mean learner on CVaR_0.1 (the endpoint of the power
    analysis); the secondary family (Holm), the same pair on the mean and on E[worst of 4] (the
    statistic the tail learner ascends)."""
    from ordergrad_experiments.report.returns import Powered

    return Powered(
        primary=("og_ltm", "og_mean", "cvar_0.1"),
        secondary=(("og_ltm", "og_mean", "mean"), ("og_ltm", "og_mean", TAIL4)),
        statistics=("mean", "cvar_0.1", TAIL4, "median"),
    )


POWERED = {HOPPER_TAIL: hopper_tail_study, HOPPER_POWERED: hopper_powered_study}
"""The document's sets whose tests were stated before their runs, each with its study (as
``report control``'s ``POWERED``)."""


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
    tables["comparisons"] = lambda: comparisons_table(folder)
    from ordergrad_experiments.report import returns

    for name, make_study in POWERED.items():
        if not _runs(folder / name, finished=True):
            continue
        study = make_study()
        tables[name] = lambda name=name, study=study: returns.powered_runs_table(
            folder, name, study
        )
        tables[f"{name}-tests"] = lambda name=name, study=study: returns.powered_tests_table(
            folder, name, study
        )
    if _runs(folder / HOPPER_TAIL, finished=True):
        tables["hopper-tail-gradients"] = lambda: returns.gradients_table(folder / HOPPER_TAIL)
    return tables
