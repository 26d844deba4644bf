"""The transform-speed tables of ``reports/transform/RESULTS.md`` and the README, from the data
committed in ``reports/transform/``.

* ``transform-cpu-<i>/``: runs of ``ordergrad-jax bench transform`` (``config.json`` with the
  provenance, ``metrics.jsonl`` with one row per shape, ``summary.md``) on the project's shared
  2-core CPU, one after the other. The README's table is the first of them (:data:`README_RUN`);
  the document shows every run, so the spread between runs is visible.
* ``transform_h100.json``: an older run on an H100, a flat JSON list of rows in the bench's
  older format (no provenance; some shapes appear twice). Its table lists every distinct shape
  once and, for a shape measured twice, both values in the file's order (``a / b``), with the
  rows' positions in the file.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

from ordergrad_experiments.common.runs import Run, find_runs, markdown_table
from ordergrad_experiments.report.provenance import run_record

README_RUN = "transform-cpu-1"
H100 = "transform_h100.json"


def cpu_runs(folder: pathlib.Path) -> list[Run]:
    """The committed bench runs ``transform-cpu-*`` (finished or not), in order."""
    return find_runs(folder, "transform-cpu-*", finished=None)


def readme_table(folder: pathlib.Path) -> str:
    """The README's table: :data:`README_RUN`'s rows (microseconds per call, best of the run's
    rounds; the ratio of the automatic path to the sort + scatter floor)."""
    rows = [
        {
            "groups": r["groups"],
            "N": r["N"],
            "K": r["K"],
            "floor (sort + scatter)": f"{r['floor_us']:.0f}",
            "GRPO": f"{r['grpo_us']:.0f}",
            "ordergrad": f"{r['ordergrad_us']:.0f}",
            "path": r["path"],
            "ordergrad / floor": f"{r['ordergrad_over_floor']:.2f}",
        }
        for r in Run(folder / README_RUN).metrics
    ]
    return markdown_table(rows)


def runs_table(folder: pathlib.Path) -> str:
    """One row per committed CPU run: its provenance (:func:`run_record`)."""
    return markdown_table([run_record(d) for d in cpu_runs(folder)])


def all_runs_table(folder: pathlib.Path) -> str:
    """Every shape of every CPU run, grouped by shape: the automatic path, both forced paths
    (pairwise only for N <= 64), and the ratios ordergrad / floor and pairwise / sort."""
    rows = []
    for run in cpu_runs(folder):
        for r in run.metrics:
            pairwise = r.get("pairwise_us")
            rows.append(
                {
                    "groups": r["groups"],
                    "N": r["N"],
                    "K": r["K"],
                    "run": run.name,
                    "floor": f"{r['floor_us']:.0f}",
                    "GRPO": f"{r['grpo_us']:.0f}",
                    "ordergrad": f"{r['ordergrad_us']:.0f}",
                    "path": r["path"],
                    "sort": f"{r['sort_us']:.0f}",
                    "pairwise": "-" if pairwise is None else f"{pairwise:.0f}",
                    "ordergrad / floor": f"{r['ordergrad_over_floor']:.2f}",
                    "pairwise / sort": "-"
                    if pairwise is None
                    else f"{pairwise / r['sort_us']:.2f}",
                }
            )
    rows.sort(key=lambda r: (r["N"], r["groups"]))  # stable: runs stay in order within a shape
    return markdown_table(rows)


def h100_table(folder: pathlib.Path) -> str:
    """``transform_h100.json``, one row per distinct (groups, N, K), sorted by N then groups:
    microseconds per call of the floor, GRPO, the forced sort and pairwise paths, the ratio
    pairwise / sort, and the path ``method="auto"`` took when it was measured (the file's
    ``path``). A shape in the file twice shows both values, ``first / second``."""
    data = json.loads((folder / H100).read_text())
    shapes: dict[tuple[int, int, int], list[tuple[int, dict]]] = {}
    for position, r in enumerate(data, start=1):
        shapes.setdefault((r["groups"], r["N"], r["K"]), []).append((position, r))

    def cells(measured: list[tuple[int, dict]], value: Callable[[dict], float | None]) -> str:
        values = [value(r) for _, r in measured]
        return " / ".join("-" if v is None else f"{v:.1f}" for v in values)

    def ratio(r: dict) -> float | None:
        return r["pairwise_us"] / r["sort_us"] if "pairwise_us" in r else None

    rows = []
    for (groups, n, k), measured in sorted(shapes.items(), key=lambda s: (s[0][1], s[0][0])):
        rows.append(
            {
                "groups": groups,
                "N": n,
                "K": k,
                "floor": cells(measured, lambda r: r["floor_us"]),
                "GRPO": cells(measured, lambda r: r["grpo_us"]),
                "sort": cells(measured, lambda r: r["sort_us"]),
                "pairwise": cells(measured, lambda r: r.get("pairwise_us")),
                "pairwise / sort": " / ".join(
                    "-" if ratio(r) is None else f"{ratio(r):.2f}" for _, r in measured
                ),
                "auto path then": " / ".join(dict.fromkeys(r["path"] for _, r in measured)),
                "file rows": ", ".join(str(p) for p, _ in measured),
            }
        )
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """Every table by id: ``transform-cpu`` (the README's), ``transform-cpu-runs``,
    ``transform-cpu-all`` and ``transform-h100``."""
    return {
        "transform-cpu": lambda: readme_table(folder),
        "transform-cpu-runs": lambda: runs_table(folder),
        "transform-cpu-all": lambda: all_runs_table(folder),
        "transform-h100": lambda: h100_table(folder),
    }
