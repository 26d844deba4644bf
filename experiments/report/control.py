"""The tables and figures of ``reports/control/RESULTS.md``, built from the run data committed
beside it, and the cross-run tables and figures of any control runs (:func:`table`,
:func:`env_figures`: ``ordergrad-jax report brax`` and the notebooks use them too).

Each committed run is a folder ``reports/control/<set>/<run-id>/`` with its ``config.json``
(the config and provenance), ``metrics.jsonl`` (the per-seed training rows and final evaluation
rows) and ``summary.md``; the control sweeps (``experiments/sweeps/control.py``,
``ordergrad-jax sweep control-{risk,sparse,classic,speed}``) make exactly these runs.
A table is either one row per run (:func:`runs_table`: mean ± Student t 95% interval over the
seeds, n - 1 df, the ``seeds`` column is n) or paired-by-seed differences between two runs of a
set (:func:`paired_table`), the runs named by the part of the run id after its first ``-``.
The figures (:data:`FIGURES`, ``ordergrad-jax report control --figures``) are the learning
curves and return histograms of chosen runs of a set, one pair per env.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, find_runs, markdown_table
from ordergrad_experiments.control import NOT_STATISTICS
from ordergrad_experiments.report.returns import (
    Powered,
    final_returns,
    gradients_table,
    powered_runs_table,
    powered_tests_table,
)

DCP48 = "disturbed-cartpole-48seeds"
DCP10 = "disturbed-cartpole-10seeds"
RG10 = "riskygrid-10seeds"
SETS = {
    DCP48: "DisturbedCartPole-v0, 48 seeds per arm (sweep control-dcp48)",
    DCP10: "DisturbedCartPole-v0, 10 seeds per method (sweep control-risk)",
    RG10: "RiskyGrid-v0, 10 seeds per method (sweep control-risk)",
    "sparse": "MountainCarContinuous-v0, 5 seeds per method (sweep control-sparse)",
    "classic": "CartPole, Acrobot, Pendulum, 5 seeds per method (sweep control-classic)",
}
# (run A, run B[, statistic]) of each paired table, by run-id suffix; the statistic defaults to
# the paired table's (CVaR_0.1).
PAIRS = {
    DCP48: (),  # its tests are the ones stated before the runs: POWERED
    DCP10: (
        ("og_ltm", "rloo"),
        ("og_ltm", "cvar_pg"),
        ("cvar_pg", "rloo"),
        ("og_botm", "rloo"),
        ("og_ltm", "ppo"),
        ("og_botm", "ppo"),
        ("og_ltm", "rloo", "mean"),
    ),
    RG10: tuple(
        (a, "rloo")
        for a in (
            "og_ltm",
            "og_botm",
            "cvar_pg",
            "og_ltm_warm30",
            "og_ltm_warm10",
            "og_ltm_warm05_ent5",
            "og_ltm_warm30_ent1",
            "og_ltm_warm30_ent5",
            "og_ltm_warm30_ent30",
            "og_ltm_ent1",
            "og_ltm_ent10",
            "og_ltm_ent30",
            "og_ltm_n64_warm30_ent5",
            "og_ltm_success",
        )
    ),
    "sparse": (
        ("og_top2", "rloo", "success_rate"),
        ("og_top2", "rloo", "pass_at_8"),
        ("og_top2", "rloo", "max_at_8"),
        ("og_remax", "rloo", "max_at_8"),
    ),
    "classic": (
        ("CartPole-v1-og_ltm", "CartPole-v1-og_mean", "mean"),
        ("CartPole-v1-og_ltm", "CartPole-v1-og_mean", "cvar_0.1"),
        ("CartPole-v1-ppo", "CartPole-v1-rloo", "mean"),
        ("Acrobot-v1-og_mean", "Acrobot-v1-rloo", "mean"),
        ("Acrobot-v1-ppo", "Acrobot-v1-rloo", "mean"),
        ("Pendulum-v1-og_mean", "Pendulum-v1-rloo", "mean"),
        ("Pendulum-v1-ppo", "Pendulum-v1-rloo", "mean"),
    ),
}
# A set whose paired table also counts the seeds on which A reaches a goal value of the statistic.
GOALS = {RG10: 12.0}

TAIL10 = "LowerTailMean:0.1@10"
POWERED = {
    DCP48: Powered(
        primary=("og_cvar10", "rloo", "cvar_0.1"),
        secondary=(
            ("og_cvar10", "rloo", "mean"),
            ("og_cvar10", "rloo", TAIL10),
            ("og_cvar10", "cvar_pg", "cvar_0.1"),
            ("og_cvar10", "ppo", "cvar_0.1"),
            ("cvar_pg", "rloo", "cvar_0.1"),
        ),
        statistics=("mean", "cvar_0.1", TAIL10, "median", "below_100"),
    ),
}


def _runs(folder: pathlib.Path, name: str) -> list[Run]:
    """Every run folder of set ``name`` (finished or not), by name; ``[]`` for no such set."""
    return find_runs(folder / name, finished=None) if (folder / name).is_dir() else []


def run_row(run: Run) -> dict[str, Any]:
    """The summary row of one control run: env, method, seeds, env steps per seed, the objective
    it trained (runs since the eval rows name it), each final evaluation statistic (``trained``,
    its value, among them; mean ± Student t 95% interval over the seeds, n - 1 df:
    ``stats.mean_ci_cell``), the training diagnostics of the last chunk (entropy, advantage std,
    fraction of zero advantages; means over seeds) and the steady env-steps/s."""
    evals, train = run.rows("eval"), run.rows("train")
    out: dict[str, Any] = {"env": run.config["env"], "method": evals[0]["method"] if evals else "?"}
    out["seeds"] = len(evals)
    out["env_steps"] = max((r["env_steps"] for r in train), default=0)
    if evals and "trained_objective" in evals[0]:
        out["trained_objective"] = evals[0]["trained_objective"]
    skip = {*NOT_STATISTICS, "std"}
    for stat in [c for c in (evals[0] if evals else {}) if c not in skip]:
        out[stat] = stats.mean_ci_cell([r[stat] for r in evals])
    last = [r for r in train if r["env_steps"] == out["env_steps"]]
    for diag in ("entropy", "adv_std", "zero_adv_frac"):
        if last and diag in last[0]:
            out[diag] = float(np.mean([r[diag] for r in last]))
    speed = run.rows("speed")
    if speed:
        out["env_steps_per_s"] = float(speed[0]["env_steps_per_s"])
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return markdown_table(rows, columns, floatfmt=".3g")


def table(runs: list[Run]) -> str:
    """A markdown table of :func:`run_row` for every finished run of ``runs``, in order."""
    return _table([run_row(run) for run in runs if run.finished])


def runs_table(folder: pathlib.Path, name: str) -> str:
    """One row per run of set ``name``: its run id, then :func:`run_row`."""
    return _table([{"run": run.name, **run_row(run)} for run in _runs(folder, name)])


def paired_table(folder: pathlib.Path, name: str, stat: str = "cvar_0.1") -> str:
    """Paired-by-seed differences of ``stat`` (or a pair's own statistic) between the runs of
    ``PAIRS[name]``.

    Seed ``i`` of one method against seed ``i`` of the other (the same initial parameters and the
    same training and evaluation keys): the mean difference with its Student t 95% interval
    (n - 1 df) and the two-sided paired t test (``stats.paired_test``); Welch's p beside it, for
    comparison; the seeds on which A is above B and, for a set in ``GOALS``, those on which A
    reaches the goal (``stat >= GOALS[name]``); where the paired p >= 0.05, the pairs a rerun
    would need if the observed mean difference and the standard deviation of the per-seed
    differences were the true ones (``stats.pairs_to_resolve``: for the expected interval to
    exclude 0, and for 80% power).

    Raises:
      ValueError: a run of ``PAIRS[name]`` is not committed, or two runs do not have the same
        seeds.
    """
    runs = {run.name.split("-", 1)[-1]: run for run in _runs(folder, name)}
    missing = sorted({r for pair in PAIRS[name] for r in pair[:2]} - set(runs))
    if missing:
        raise ValueError(f"{name}: no committed run(s) {missing} for the paired table")
    rows = []
    for a, b, *which in PAIRS[name]:
        stat_ab = which[0] if which else stat
        ev_a, ev_b = runs[a].rows("eval"), runs[b].rows("eval")
        x = {r["seed"]: float(r[stat_ab]) for r in ev_a}
        y = {r["seed"]: float(r[stat_ab]) for r in ev_b}
        if sorted(x) != sorted(y):
            raise ValueError(f"{a} and {b} have different seeds: {sorted(x)} vs {sorted(y)}")
        seeds = sorted(x)
        xs, ys = [x[s] for s in seeds], [y[s] for s in seeds]
        paired = stats.paired_test(xs, ys)
        welch = stats.welch_test(xs, ys)
        wins = sum(u > v for u, v in zip(xs, ys, strict=True))
        need = "-"
        if paired.p_value >= 0.05:
            sd = float(np.std(np.subtract(xs, ys), ddof=1))
            need = (
                f"{stats.pairs_to_resolve(paired.difference, sd)} / "
                f"{stats.pairs_to_resolve(paired.difference, sd, power=0.8)}"
            )
        row = {
            "A": runs[a].name,
            "B": runs[b].name,
            "statistic": stat_ab,
            "seeds (pairs)": len(seeds),
            "mean A - B": f"{paired.difference:.3g}",
            "95% CI (t, n - 1 df)": f"{paired.interval.low:.3g} to {paired.interval.high:.3g}",
            "paired t p": stats.format_p(paired.p_value),
            "Welch p": stats.format_p(welch.p_value),
            "seeds with A > B": f"{wins} of {len(seeds)}",
        }
        if name in GOALS:
            row[f"seeds with A >= {GOALS[name]:g}"] = (
                f"{sum(u >= GOALS[name] for u in xs)} of {len(seeds)}"
            )
        row["pairs to resolve: CI excludes 0 / 80% power"] = need
        rows.append(row)
    return markdown_table(rows)


MIXTURE_EPS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0)


def riskygrid_routes() -> dict[str, float]:
    """RiskyGrid-v0's (default params) route returns, from rollouts of
    ``ordergrad_envs.risky_grid.route_policy``: the ledge's return without a gust (``ledge``) and
    after one (``fall``: the same on each of its exposed steps, whose moves right pay 0), the
    sheltered route's (``sheltered``), and the ledge's fall probability ``1 - (1 - wind_prob)^(width
    - 2)`` (its steps that start on an exposed cell)."""

    import jax

    import ordergrad_envs
    from ordergrad_envs.risky_grid import route_policy
    from ordergrad_envs.rollout import group_rollout

    env, params = ordergrad_envs.make("RiskyGrid-v0")

    def route_return(row: int, wind: float) -> float:
        p = dataclasses.replace(params, wind_prob=wind)
        out = group_rollout(env, p, route_policy(p, row), jax.random.key(0), 1, 1, 30)
        return float(out.returns[0, 0])

    return {
        "ledge": route_return(1, 0.0),
        "fall": route_return(1, 1.0),
        "sheltered": route_return(params.height - 1, 0.0),
        "fall_prob": 1.0 - (1.0 - float(params.wind_prob)) ** (params.width - 2),
    }


def bottom_mean(values: np.ndarray, probs: np.ndarray, k: int, m: int) -> float:
    """E[mean of the m lowest of k i.i.d. draws] of a distribution on sorted ``values``."""
    from itertools import product
    from math import factorial

    total = 0.0
    for counts in product(range(k + 1), repeat=len(values)):
        if sum(counts) != k:
            continue
        weight = factorial(k) * np.prod(
            [q**c / factorial(c) for q, c in zip(probs, counts, strict=True)]
        )
        total += weight * np.mean(np.repeat(values, counts)[:m])
    return float(total)


def route_mixture_table() -> str:
    """Exact objectives of the policy that takes the sheltered route with probability ``eps``
    and the ledge otherwise (:func:`riskygrid_routes`): the mean, CVaR_0.1 (the deployed
    metric), CVaR_0.25 (CVaR-PG's alpha), and the expectations of the two OrderGrad lower-tail
    objectives trained here (the mean of the 2 lowest of 8, ``LowerTailMean:0.25`` at K = 8,
    and the lowest of 4, ``BotM:1`` at K = 4)."""
    from ordergrad_envs.guarded_maze import discrete_mean_cvar

    r = riskygrid_routes()
    values = np.array([r["fall"], r["sheltered"], r["ledge"]])
    rows = []
    for eps in MIXTURE_EPS:
        probs = np.array([(1 - eps) * r["fall_prob"], eps, (1 - eps) * (1 - r["fall_prob"])])
        rows.append(
            {
                "P(sheltered)": f"{eps:g}",
                "mean": f"{float(values @ probs):.2f}",
                "cvar_0.1": f"{discrete_mean_cvar(values, probs, 0.1)[1]:.2f}",
                "cvar_0.25": f"{discrete_mean_cvar(values, probs, 0.25)[1]:.2f}",
                "LowerTailMean:0.25, K=8": f"{bottom_mean(values, probs, 8, 2):.2f}",
                "BotM:1, K=4": f"{bottom_mean(values, probs, 4, 1):.2f}",
            }
        )
    return markdown_table(rows)


def speed_table(folder: pathlib.Path) -> str:
    """Section 4: the rows of the committed ``ordergrad-jax bench control`` run
    (``speed/<run-id>/metrics.jsonl``: one row per trainer, best of the run's repeats; one
    measurement, so no interval)."""
    (run,) = _runs(folder, "speed")
    rows = [r for r in run.metrics if "trainer" in r]
    columns = ["trainer", "env_steps", "seconds", "env_steps_per_s", "vs_rloo", "compile_s"]
    return markdown_table(rows, columns, floatfmt=".4g")


def env_figures(runs: list[Run], which: tuple[str, ...] = ("curves", "returns")) -> dict[str, Any]:
    """The learning curves and final-return histograms of the finished ``runs``, all methods of
    an env in one figure: ``{"<env>_curves": Figure, "<env>_returns": Figure}`` per env, in the
    order of ``runs`` (the legend's order); only the kinds in ``which``; no ``_returns`` figure
    for an env none of whose runs holds its final returns (:func:`final_returns`)."""
    from ordergrad_experiments.control import learning_curves, return_histograms

    by_env: dict[str, tuple[list[dict], dict[str, np.ndarray]]] = {}
    for run in runs:
        if not run.finished:
            continue
        rows, returns = by_env.setdefault(run.config["env"], ([], {}))
        rows.extend(run.metrics)
        returns.update(final_returns(run))
    out = {}
    for env, (rows, returns) in by_env.items():
        if "curves" in which:
            out[f"{env}_curves"] = learning_curves(rows)
        if returns and "returns" in which:
            out[f"{env}_returns"] = return_histograms(returns)
    for stem, fig in out.items():
        fig.axes[0].set_title(stem.rsplit("_", 1)[0])
    return out


# The document's figures: {env: (set, the runs drawn, by run-id suffix, in legend order)}, each
# drawn as figures/<env>_curves.png and figures/<env>_returns.png.
FIGURES = {
    "DisturbedCartPole-v0": (DCP48, ("rloo", "og_cvar10", "cvar_pg", "ppo")),
    "RiskyGrid-v0": (RG10, ("rloo", "ppo", "og_ltm", "og_ltm_warm30", "og_ltm_warm30_ent30")),
}


def draw_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    """Redraws :data:`FIGURES` into ``folder / "figures"`` from the committed runs (PNG, 110 dpi)
    and returns the paths written. A return histogram needs its runs' final returns
    (:func:`final_returns`): where none of them is committed, the figure is left as it is and a
    line says so.

    Raises:
      ValueError: a run of :data:`FIGURES` is not committed.
    """
    from ordergrad_experiments.report.figures import save_png

    written = []
    for env, (name, ids) in FIGURES.items():
        runs = {run.name.split("-", 1)[-1]: run for run in _runs(folder, name)}
        missing = [i for i in ids if i not in runs]
        if missing:
            raise ValueError(f"{name}: no committed run(s) {missing} for the {env} figures")
        figures = env_figures([runs[i] for i in ids])
        for stem, fig in figures.items():
            written.append(save_png(fig, folder / "figures" / f"{stem}.png", dpi=110))
        if f"{env}_returns" not in figures:
            print(
                f"figures/{env}_returns.png: not redrawn: the runs' final_returns.npz (the "
                "evaluation returns) is not committed"
            )
    return written


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """Every table of the document that has committed data, by id: ``SET`` (one row per run)
    and ``SET-paired`` (the paired differences) for each set with committed runs."""
    out: dict[str, Callable[[], str]] = {"riskygrid-route-mixture": route_mixture_table}
    for name in SETS:
        if not _runs(folder, name):
            continue
        if name in POWERED:
            out[name] = lambda name=name: powered_runs_table(folder, name, POWERED[name])
            out[f"{name}-tests"] = lambda name=name: powered_tests_table(
                folder, name, POWERED[name]
            )
            out[f"{name}-gradients"] = lambda name=name: gradients_table(folder / name)
            continue
        out[name] = lambda name=name: runs_table(folder, name)
        if PAIRS[name]:
            out[f"{name}-paired"] = lambda name=name: paired_table(folder, name)
    if _runs(folder, "speed"):
        out["speed"] = lambda: speed_table(folder)
    return out
