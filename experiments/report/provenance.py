"""The provenance of a committed run folder as a table row: what ran, where, when and under what
load (``config.json["provenance"]``, written by ``ordergrad_experiments.common.runs.RunWriter``)."""

from __future__ import annotations

import datetime
import os

from ordergrad_experiments.common.runs import Run


def run_record(run: Run | str | os.PathLike) -> dict[str, str]:
    """``{column: cell}`` of a run (or run folder): the run id (folder name), UTC start, wall
    time (end - start, seconds), the 1/5/15-minute load averages at the start, the commit (12
    digits, ``+dirty`` when tracked files differed from it), the jax version and the device kind
    and count."""
    run = run if isinstance(run, Run) else Run(run)
    prov = run.provenance
    start = datetime.datetime.fromisoformat(prov["start_utc"])
    wall = (datetime.datetime.fromisoformat(prov["end_utc"]) - start).total_seconds()
    dirty = {True: "+dirty", False: "", None: " (dirty unknown)"}[prov.get("git_dirty")]
    return {
        "run": run.name,
        "start (UTC)": start.strftime("%Y-%m-%d %H:%M:%S"),
        "wall s": f"{wall:.0f}",
        "load at start (1, 5, 15 min)": ", ".join(f"{x:.2f}" for x in prov["load_avg_start"]),
        "commit": prov["git_commit"][:12] + dirty,
        "jax": prov["packages"]["jax"],
        "device": f"{prov['device_count']} x {prov['device_kind']}",
    }
