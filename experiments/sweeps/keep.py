"""How a sweep keeps a finished run in a results document (``ordergrad-jax sweep NAME --keep
DIR``): each function is a :data:`ordergrad_experiments.sweeps.Keep`, ``keep(run, dest)`` with
``run`` an :class:`ordergrad_experiments.common.runs.Run` and ``dest`` the run's place in
``DIR``."""

from __future__ import annotations

import json
import pathlib
import shutil

from ordergrad_experiments.common.runs import Run

SMALL_BYTES = 1 << 20
"""The largest file :func:`small_files` copies."""

NOT_DATA = (".png", ".pdf", ".svg", ".log")
"""Files :func:`small_files` leaves out: figures (the report redraws them) and logs."""


def small_files(run: Run, dest: pathlib.Path) -> None:
    """The default keep: the run folder's own files (``config.json``, ``metrics.jsonl``,
    ``summary.md``, ``final_returns.npz``, ...) up to :data:`SMALL_BYTES` each; no sub-folders
    (checkpoints), no figures."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(run.path.iterdir()):
        if path.is_file() and path.suffix not in NOT_DATA and path.stat().st_size <= SMALL_BYTES:
            shutil.copyfile(path, dest / path.name)


def files(*names: str):
    """A keep that copies exactly the files ``names`` of the run folder."""

    def keep(run: Run, dest: pathlib.Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(run.path / name, dest / name)

    keep.__doc__ = f"Copies {', '.join(names)}."
    return keep


def _lines(run: Run) -> list[str]:
    return [json.dumps(row) + "\n" for row in run.metrics]


def append_rows(run: Run, dest: pathlib.Path) -> None:
    """Appends the run's metric rows to the JSON-lines file ``dest`` (several runs of a sweep
    write one file, in the sweep's order), unless ``dest`` already holds them: keeping twice
    changes nothing."""
    lines = _lines(run)
    old = dest.read_text() if dest.exists() else ""
    if "".join(lines) in old:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("a") as f:
        f.writelines(lines)


def write_rows(run: Run, dest: pathlib.Path) -> None:
    """Writes the run's metric rows as the JSON-lines file ``dest`` (replacing it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("".join(_lines(run)))
