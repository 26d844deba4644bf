"""The LM runs of ``reports/lm/`` and their evaluations, read through ``common.runs``.

A run is an ``ordergrad-jax run lm-rl`` folder as written (``metrics.jsonl``) or curated
(``curve.jsonl``, :func:`ordergrad_experiments.lm.curate_run`). Its evaluations are the SFT start's
(the ``sft`` row: ``pass@k`` and, where measured, ``length`` and ``scratchpad``) and each held-out
one (``heldout_*`` values of an RL row). Runs named ``<method>-s<seed>`` are paired by seed: the
runs of one seed start from the same SFT checkpoint and share the RL data order and the evaluation
keys (common random numbers), so differences between methods are taken seed by seed.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

import ordergrad_jax as og
from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, find_runs, markdown_table
from ordergrad_experiments.report.provenance import run_record

KS = (1, 2, 4, 8, 16)
"""The grid's pass@k."""


def method_label(config: dict[str, Any]) -> str:
    """``grpo``, ``rloo``, ``maxpo@4``, ``ordergrad TopM:2@4``: a run's method from its config,
    the estimator spec's :meth:`~ordergrad_jax.estimators.EstimatorSpec.short_label`.

    Reads the nested ``estimator`` part, or the flat fields of runs made before it."""
    est = config["estimator"]
    if not isinstance(est, dict):
        est = {"name": est, "objective": config.get("objective"), "k": config.get("k")}
    params = {k: v for k, v in est.items() if v is not None}
    return og.estimators.spec(est["name"]).short_label(**params)


def budget(config: dict[str, Any]) -> tuple[int, int]:
    """``(total RL steps, chunks)`` of a run from its config: the nested ``budget`` part, or the
    flat ``steps`` and ``num_chunks`` fields of runs made before it (committed run folders)."""
    if "budget" in config:
        return config["budget"]["total"], config["budget"]["num_chunks"]
    return config["steps"], config["num_chunks"]


def seeded_runs(folder: pathlib.Path, methods: Mapping[str, str]) -> dict[str, dict[int, Run]]:
    """``{method: {seed: run}}`` of the finished runs ``<method>-s<seed>`` in ``folder`` whose
    method is a key of ``methods``, in its order (the default runs, the study's, the length
    comparison's)."""
    out: dict[str, dict[int, Run]] = {}
    for run in find_runs(folder, "*-s*"):
        method, _, seed = run.name.rpartition("-s")
        if method in methods and seed.isdigit():
            out.setdefault(method, {})[int(seed)] = run
    return {m: out[m] for m in methods if m in out}


def method_runs(folder: pathlib.Path) -> dict[str, list[Run]]:
    """``{method label: [run, ...]}`` of the finished runs anywhere under ``folder`` (the grid,
    a results folder), methods sorted by :func:`method_label`, seeds in order; the run that
    trained the shared SFT start (``sft``) left out."""
    out: dict[str, list[Run]] = {}
    for run in find_runs(folder):
        if run.name != "sft":
            out.setdefault(method_label(run.config), []).append(run)
    return {m: sorted(out[m], key=lambda run: run.config["seed"]) for m in sorted(out)}


def evaluations(run: Run) -> list[tuple[int, dict[str, float]]]:
    """``[(step, {pass@k: value, "length": ...})]``: the SFT start's evaluation (step 0), then
    every held-out one (each with what it measured: pass@k and, where measured, the mean
    completion length and, on the scratchpad task, the share of completions opening one)."""
    out = []
    for r in run.rows("sft")[:1]:
        evaluated = {k: v for k, v in r.items() if k.startswith("pass@")}
        evaluated.update({k: r[k] for k in ("length", "scratchpad") if k in r})
        out.append((0, evaluated))
    for r in run.evaluations:
        out.append((r["step"], {k[8:]: v for k, v in r.items() if k.startswith("heldout_")}))
    return out


def final(run: Run) -> dict[str, float]:
    """The run's last held-out evaluation ``{pass@k: value, ...}``."""
    return evaluations(run)[-1][1]


def start(run: Run) -> dict[str, float]:
    """The SFT start's evaluation (with this run's evaluation key)."""
    return evaluations(run)[0][1]


def rl_rows(run: Run) -> dict[int, dict[str, Any]]:
    """``{step: row}`` of the run's (kept) RL steps."""
    return {r["step"]: r for r in run.rows("rl")}


def first_step_with_gain(evals: list[tuple[int, dict[str, float]]], gain: float) -> int | None:
    """The first evaluation step at which pass@1 is at least ``gain`` above the start's."""
    begin = evals[0][1]["pass@1"]
    return next((s for s, e in evals if e["pass@1"] >= begin + gain), None)


@dataclasses.dataclass(frozen=True)
class Paired:
    """One measure of two sets of runs, paired by seed.

    Attributes:
      seeds: the seeds (or other pairing keys) both sets have, in order.
      a, b: the measure on each side, one value per seed.
    """

    seeds: list[int]
    a: np.ndarray
    b: np.ndarray

    @property
    def difference(self) -> np.ndarray:
        """``a - b`` seed by seed."""
        return self.a - self.b

    def p(self) -> str:
        """The two-sided paired t test's p-value, formatted (:func:`stats.format_p`)."""
        return stats.format_p(stats.paired_test(self.a, self.b).p_value)

    def cell(self, fmt: str = ".3f") -> str:
        """``"mean ± half"`` of the differences (Student t 95%)."""
        return stats.mean_ci_cell(self.difference, fmt, fmt)


def paired(
    a: Mapping[int, Run],
    b: Mapping[int, Run],
    key: str = "pass@1",
    a_at: int = -1,
    b_at: int = -1,
) -> Paired:
    """``key`` of the ``a_at``-th / ``b_at``-th evaluation (0: the SFT start, -1: the last) of
    the runs of ``a`` and ``b`` (``{seed: run}``) over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    return Paired(
        seeds,
        np.array([evaluations(a[s])[a_at][1][key] for s in seeds]),
        np.array([evaluations(b[s])[b_at][1][key] for s in seeds]),
    )


def versus_table(
    runs: Mapping[str, Mapping[int, Run]],
    labels: Mapping[str, str],
    base: str,
    keys: Iterable[str],
    p_apart: bool = False,
) -> str:
    """Each method's final ``keys`` minus ``base``'s, paired by seed: the mean difference ±
    Student t 95% half-width and the two-sided paired t p (n = the seeds both have), one row per
    method in ``runs``' order. ``p_apart``: the p in its own column ``KEY p`` beside ``KEY
    difference``; else in the cell, ``"cell (p P)"`` under ``KEY``."""
    rows = []
    for method, seeds in runs.items():
        if method == base:
            continue
        row: dict[str, Any] = {f"method - {labels[base]}": labels[method]}
        for key in keys:
            pair = paired(seeds, runs[base], key)
            row["seeds"] = len(pair.seeds)
            if p_apart:
                row[f"{key} difference"] = pair.cell()
                row[f"{key} p"] = pair.p()
            else:
                row[key] = f"{pair.cell()} (p {pair.p()})"
        rows.append(row)
    return markdown_table(rows)


def mean_rows(
    runs: Mapping[str, Mapping[int, Run]],
    labels: Mapping[str, str],
    cell: Callable[[list[dict[str, float]]], str],
    with_seeds: bool = False,
) -> list[dict[str, Any]]:
    """Per method, every evaluation step: ``{"method": label, "seeds": n (with_seeds),
    "step S": cell(the seeds' evaluations at S)}`` (the start is step 0)."""
    rows = []
    for method, seeds in runs.items():
        evals = [evaluations(seeds[s]) for s in sorted(seeds)]
        row: dict[str, Any] = {"method": labels[method]}
        if with_seeds:
            row["seeds"] = len(evals)
        for i, (step, _) in enumerate(evals[0]):
            row[f"step {step}"] = cell([e[i][1] for e in evals])
        rows.append(row)
    return rows


def provenance_table(runs: list[Run]) -> str:
    """Provenance of every run (:func:`run_record`), and the first row: the whole set from the
    earliest start to the last end."""
    records = [run_record(run.path) for run in runs]
    start = min(datetime.datetime.fromisoformat(r.provenance["start_utc"]) for r in runs)
    end = max(datetime.datetime.fromisoformat(r.provenance["end_utc"]) for r in runs)
    whole = {key: "" for key in records[0]}
    whole.update(
        run=f"all {len(runs)}",
        **{"start (UTC)": start.strftime("%Y-%m-%d %H:%M:%S")},
        **{"wall s": f"{(end - start).total_seconds():.0f}"},
    )
    return markdown_table([whole, *records])


def provenance_summary(runs: list[Run]) -> str:
    """A set of runs in one row: how many, first start and last end (UTC), the wall time per run
    (median and largest, SFT load and evaluations included), the load averages at the runs'
    starts and the commits they ran at."""
    provs = [run.provenance for run in runs]
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


def at_pass1(
    evals: list[tuple[int, dict[str, float]]], level: float, keys: Iterable[str]
) -> dict[str, float]:
    """``keys`` of a run at held-out pass@1 = ``level``, interpolated along its evaluations
    (``[(step, {key: value})]`` in step order, :func:`evaluations`): linear in pass@1 between
    the two evaluations of the first segment whose pass@1 range holds ``level`` (an evaluation
    at exactly ``level`` gives its own values).

    Raises:
      ValueError: ``level`` outside every segment (the run never reached it).
    """
    x = [e["pass@1"] for _, e in evals]
    for i in range(len(x) - 1):
        lo, hi = x[i], x[i + 1]
        if min(lo, hi) <= level <= max(lo, hi):
            t = 0.0 if hi == lo else (level - lo) / (hi - lo)
            a, b = evals[i][1], evals[i + 1][1]
            return {k: a[k] + t * (b[k] - a[k]) for k in keys}
    if len(x) == 1 and x[0] == level:
        return {k: evals[0][1][k] for k in keys}
    raise ValueError(f"pass@1 = {level} is outside the run's range {min(x)}-{max(x)}")


@dataclasses.dataclass(frozen=True)
class Matched:
    """Two sets of runs compared at matched progress, seed by seed.

    Attributes:
      seeds: the seeds (or other pairing keys) both sets have, in order.
      level: ``[n]``, the pass@1 each seed's pair is compared at: the higher of the two runs'
        final pass@1 that both reached, ``min(final a, final b)``.
      a, b: ``{key: [n]}``, each side's values at that level (:func:`at_pass1`): the run whose
        final pass@1 is the level gives its last evaluation, the other is interpolated.
    """

    seeds: list[int]
    level: np.ndarray
    a: dict[str, np.ndarray]
    b: dict[str, np.ndarray]

    def difference(self, key: str) -> np.ndarray:
        """``a - b`` of ``key``, seed by seed."""
        return self.a[key] - self.b[key]

    def test(self, key: str) -> stats.TestResult:
        """The paired t test of ``a - b`` of ``key`` (two-sided, n - 1 df)."""
        return stats.paired_test(self.a[key], self.b[key])


def matched(a: Mapping[Any, Run], b: Mapping[Any, Run], keys: Iterable[str], evals=None) -> Matched:
    """``keys`` of the runs of ``a`` and ``b`` (``{seed: run}``) at matched held-out pass@1,
    seed by seed (:class:`Matched`): equal progress instead of equal steps. ``evals(run)``
    gives a run's evaluations (default :func:`evaluations`; the testbed's come from its
    per-prompt counts)."""
    evals = evaluations if evals is None else evals
    keys = list(keys)
    seeds = sorted(set(a) & set(b))
    level, va, vb = [], [], []
    for s in seeds:
        ea, eb = evals(a[s]), evals(b[s])
        at = min(ea[-1][1]["pass@1"], eb[-1][1]["pass@1"])
        level.append(at)
        va.append(at_pass1(ea, at, keys))
        vb.append(at_pass1(eb, at, keys))
    return Matched(
        seeds,
        np.array(level),
        {k: np.array([v[k] for v in va]) for k in keys},
        {k: np.array([v[k] for v in vb]) for k in keys},
    )
