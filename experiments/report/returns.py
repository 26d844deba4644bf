"""Tables from the evaluation returns control runs commit (``final_returns.npz``): per-seed
statistics of the returns (:func:`seed_statistics`) and the tables of a study whose tests were
stated before its runs (:class:`Powered`: the primary comparison alone, the secondary family
Holm-corrected). ``report control`` and ``report brax`` use them."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import numpy as np

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, find_runs, markdown_table

Comparison = tuple[str, str, str]
"""``(run A, run B, statistic)``: A - B of a statistic of :func:`seed_statistics`, paired by
seed (runs named by the part of the run id after its first ``-``)."""


@dataclasses.dataclass(frozen=True)
class Powered:
    """A study whose tests were stated before its runs (``RESULTS.md`` says when): the primary
    comparison, tested alone at 5%, and the secondary family, Holm-corrected together."""

    primary: Comparison
    secondary: tuple[Comparison, ...]
    statistics: tuple[str, ...]
    """The columns of its runs table, each a statistic of :func:`seed_statistics`."""


def final_returns(run: Run) -> dict[str, np.ndarray]:
    """``{method: final evaluation returns [seeds, episodes]}`` of a control run (its
    ``final_returns.npz``, :data:`ordergrad_experiments.control.run.FINAL_RETURNS`, or the
    ``final_returns.json`` that runs before it wrote); ``{}`` where the run folder holds
    neither."""
    from ordergrad_experiments.control import FINAL_RETURNS

    if (run.path / FINAL_RETURNS).exists():
        with np.load(run.path / FINAL_RETURNS) as data:
            return {str(data["method"]): np.asarray(data["returns"], np.float64)}
    if (run.path / "final_returns.json").exists():
        data = run.json("final_returns.json")
        return {data["method"]: np.asarray(data["returns"], np.float64)}
    return {}


def seed_statistics(returns: np.ndarray, stat: str) -> np.ndarray:
    """One statistic of each seed's evaluation returns ``[seeds, episodes] -> [seeds]``.

    ``mean``; ``cvar_<alpha>`` (the plug-in lower-tail mean, ``og.metrics.cvar``); ``median``;
    ``below_<v>`` (the share of episodes with return < v); ``<objective>@<K>`` (an L-statistic
    at K, e.g. ``LowerTailMean:0.1@10``, the mean of the worst 1 of 10: its unbiased U-statistic,
    ``og.metrics.lstat_at_k``). The library's metrics run on float32 returns, as in the runs.

    Raises:
      ValueError: a statistic of none of these forms.
    """
    import jax.numpy as jnp

    import ordergrad_jax as og

    x = jnp.asarray(returns, jnp.float32)
    if stat == "mean":
        return np.asarray(og.metrics.mean(x), np.float64)
    if stat == "median":
        return np.median(np.asarray(returns, np.float64), axis=-1)
    if stat.startswith("cvar_"):
        return np.asarray(og.metrics.cvar(x, float(stat[5:])), np.float64)
    if stat.startswith("below_"):
        return np.mean(np.asarray(returns) < float(stat[6:]), axis=-1)
    objective, at, k = stat.rpartition("@")
    if at and k.isdigit():
        return np.asarray(og.metrics.lstat_at_k(x, int(k), objective), np.float64)
    raise ValueError(
        f"unknown statistic {stat!r}: use mean, median, cvar_<alpha>, below_<value> or "
        "<objective>@<K>"
    )


def returns_by_arm(folder: pathlib.Path, name: str) -> dict[str, tuple[Run, np.ndarray]]:
    """``{arm: (run, final returns [seeds, episodes])}`` of the finished control runs of set
    ``name`` (runs with evaluation rows; a diagnostic run beside them is skipped).

    Raises:
      ValueError: a control run of the set without its final returns.
    """
    out = {}
    path = folder / name
    for run in find_runs(path, finished=None) if path.is_dir() else []:
        if not run.finished or not run.rows("eval"):
            continue
        returns = final_returns(run)
        if not returns:
            raise ValueError(f"{run.path}: no final_returns.npz, which the {name} tables read")
        ((_, values),) = returns.items()
        out[run.name.split("-", 1)[-1]] = (run, values)
    return out


def powered_runs_table(folder: pathlib.Path, name: str, study: Powered) -> str:
    """One row per arm of set ``name`` of a :class:`Powered` study (e.g. :data:`POWERED`), every
    cell from its committed evaluation returns: the statistic the arm trained (``trained``,
    named in ``trained_objective``: the runs' eval rows,
    :func:`ordergrad_experiments.control.evaluate.trained_objective`) and the study's statistics
    (:func:`seed_statistics`), each the mean over seeds ± the half-width of its Student t 95%
    interval (n - 1 df)."""
    rows = []
    for run, returns in returns_by_arm(folder, name).values():
        evals = run.rows("eval")
        row: dict[str, Any] = {"run": run.name, "method": evals[0]["method"]}
        row["seeds"] = returns.shape[0]
        row["trained_objective"] = evals[0].get("trained_objective", "-")
        row["trained"] = stats.mean_ci_cell([r["trained"] for r in evals])
        for stat in study.statistics:
            row[stat] = stats.mean_ci_cell(seed_statistics(returns, stat))
        rows.append(row)
    return markdown_table(rows)


def powered_tests_table(folder: pathlib.Path, name: str, study: Powered) -> str:
    """The tests of set ``name`` of a :class:`Powered` study, from its committed evaluation
    returns: the primary
    comparison, then the secondary family. Each: the mean per-seed difference A - B with its
    Student t 95% interval (n - 1 df), the two-sided paired t test's p, Holm's adjusted p over
    the secondary family (the primary is tested alone), and the seeds on which A > B.

    Raises:
      ValueError: an arm of a comparison is not committed, or two arms differ in seeds.
    """
    arms = returns_by_arm(folder, name)
    tests = []
    for a, b, stat in (study.primary, *study.secondary):
        if a not in arms or b not in arms:
            raise ValueError(f"{name}: no committed run for {a} or {b}")
        xs, ys = (seed_statistics(arms[arm][1], stat) for arm in (a, b))
        if xs.shape != ys.shape:
            raise ValueError(f"{a} and {b} have different seeds: {xs.shape} vs {ys.shape}")
        tests.append((a, b, stat, xs, ys, stats.paired_test(xs, ys)))
    adjusted = ["(alone)", *map(stats.format_p, stats.holm([t[-1].p_value for t in tests[1:]]))]
    rows = []
    for (a, b, stat, xs, ys, test), holm in zip(tests, adjusted, strict=True):
        rows.append(
            {
                "test": "primary" if not rows else "secondary",
                "A - B": f"{a} - {b}",
                "statistic": stat,
                "pairs": len(xs),
                "mean A - B": f"{test.difference:.3g}",
                "95% CI (t, n - 1 df)": f"{test.interval.low:.3g} to {test.interval.high:.3g}",
                "paired t p": stats.format_p(test.p_value),
                "Holm p": holm,
                "seeds with A > B": f"{int(np.sum(xs > ys))} of {len(xs)}",
            }
        )
    return markdown_table(rows)


def gradients_table(folder: pathlib.Path) -> str:
    """The gradient probes of the ``run control-gradients`` runs in ``folder`` (the runs with
    ``probe`` rows; the control runs beside them are skipped): one row per learner, probed chunk
    and probe, the means over the run's seeds
    (:func:`ordergrad_experiments.control.gradient_summary_rows`)."""
    from ordergrad_experiments.control import gradient_summary_rows

    rows = []
    for run in find_runs(folder, finished=True) if folder.is_dir() else []:
        if run.rows("probe"):
            rows += gradient_summary_rows(run.metrics)
    return markdown_table(rows, floatfmt=".3g")
