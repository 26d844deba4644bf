"""The tables of ``reports/control/RESULTS.md`` that have data committed beside it.

Sections 1-4 of the document were typed from run folders that were not kept; only the runs below
are committed (``reports/control/``):

* ``disturbed-cartpole-10seeds/<run-id>/``: DisturbedCartPole-v0 with 10 seeds per method (RLOO,
  OrderGrad LowerTailMean:0.25 at K = 8, CVaR-PG alpha = 0.25; section 1's settings), each with
  its ``config.json``, ``metrics.jsonl`` (the per-seed final evaluation rows) and ``summary.md``.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import numpy as np

from experiments.common import stats
from experiments.common.runs import markdown_table

DCP10 = "disturbed-cartpole-10seeds"
# (run A, run B) of the paired comparisons, by run-id suffix.
DCP10_PAIRS = (("og_ltm", "rloo"), ("og_ltm", "cvar_pg"), ("cvar_pg", "rloo"))


def _runs(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(d for d in (folder / DCP10).glob("*/") if (d / "config.json").exists())


def dcp10_table(folder: pathlib.Path) -> str:
    """One row per run: ``experiments.control.aggregate.table`` (mean ± Student t 95% CI over
    the seeds, n - 1 df; the ``seeds`` column is n)."""
    from experiments.control import aggregate

    return aggregate.table(_runs(folder))


def _per_seed(run_dir: pathlib.Path, stat: str) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["seed"]: float(r[stat]) for r in rows if r.get("kind") == "eval"}


def _method(run_dir: pathlib.Path) -> str:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return next(r["method"] for r in rows if r.get("kind") == "eval")


def dcp10_paired_table(folder: pathlib.Path, stat: str = "cvar_0.1") -> str:
    """Paired-by-seed differences of ``stat`` between the runs of :data:`DCP10_PAIRS`.

    Seed ``i`` of one method against seed ``i`` of the other (the same initial parameters and the
    same training and evaluation keys): the mean difference with its Student t 95% interval
    (n - 1 df) and the two-sided paired t test (``stats.paired_test``); Welch's p beside it, for
    comparison; where the paired p >= 0.05, the pairs a rerun would need if the observed mean
    difference and the standard deviation of the per-seed differences were the true ones
    (``stats.pairs_to_resolve``: for the expected interval to exclude 0, and for 80% power).

    Raises:
      ValueError: the two runs do not have the same seeds.
    """
    runs = {d.name.rsplit("-", 1)[-1]: d for d in _runs(folder)}
    rows = []
    for a, b in DCP10_PAIRS:
        x, y = _per_seed(runs[a], stat), _per_seed(runs[b], stat)
        if sorted(x) != sorted(y):
            raise ValueError(f"{a} and {b} have different seeds: {sorted(x)} vs {sorted(y)}")
        seeds = sorted(x)
        paired = stats.paired_test([x[s] for s in seeds], [y[s] for s in seeds])
        welch = stats.welch_test([x[s] for s in seeds], [y[s] for s in seeds])
        wins = sum(x[s] > y[s] for s in seeds)
        need = "-"
        if paired.p_value >= 0.05:
            sd = float(np.std([x[s] - y[s] for s in seeds], ddof=1))
            need = (
                f"{stats.pairs_to_resolve(paired.difference, sd)} / "
                f"{stats.pairs_to_resolve(paired.difference, sd, power=0.8)}"
            )
        rows.append(
            {
                "A": _method(runs[a]),
                "B": _method(runs[b]),
                "statistic": stat,
                "seeds (pairs)": len(seeds),
                "mean A - B": f"{paired.difference:.3g}",
                "95% CI (t, n - 1 df)": f"{paired.interval.low:.3g} to {paired.interval.high:.3g}",
                "paired t p": stats.format_p(paired.p_value),
                "Welch p": stats.format_p(welch.p_value),
                "seeds with A > B": f"{wins} of {len(seeds)}",
                "pairs to resolve: CI excludes 0 / 80% power": need,
            }
        )
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """Every table of the document that has committed data, by id."""
    return {
        "disturbed-cartpole-10seeds": lambda: dcp10_table(folder),
        "disturbed-cartpole-10seeds-paired": lambda: dcp10_paired_table(folder),
    }
