"""The return tables of ``envs/README.md``, from the run committed in ``reports/envs/``.

``reports/envs/return-table/`` is the folder of one ``ordergrad-jax run return-table`` run
(``config.json`` with the provenance, ``metrics.jsonl`` with one row per task and policy,
``summary.md``). Each task's table is ``ordergrad_experiments.control.task_table`` of its rows,
so the README and a new run's ``summary.md`` agree by construction. (The data is not under
``envs/``: the code folders hold no data files.)
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from ordergrad_experiments.common.runs import Run, markdown_table
from ordergrad_experiments.report.provenance import run_record

RUN = "return-table"


def task_rows(folder: pathlib.Path) -> dict[str, list[dict]]:
    """``{task: rows}`` of the committed run, tasks in the run's order."""
    tasks: dict[str, list[dict]] = {}
    for row in Run(folder / RUN).metrics:
        tasks.setdefault(row["task"], []).append(row)
    return tasks


def run_table(folder: pathlib.Path) -> str:
    """The run's settings (episodes per policy, seed, bootstrap resamples) and provenance."""
    run = Run(folder / RUN)
    settings = {k: str(run.config[k]) for k in ("episodes", "seed", "bootstrap")}
    return markdown_table([{**settings, **run_record(run)}])


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """One table per task of the committed run (id: the task's name) and ``return-table-run``."""
    from ordergrad_experiments.control import task_table

    tasks = task_rows(folder)
    out: dict[str, Callable[[], str]] = {"return-table-run": lambda: run_table(folder)}
    for name, rows in tasks.items():
        out[name] = lambda rows=rows: task_table(rows)
    return out
