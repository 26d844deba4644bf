"""One folder per run: ``results/NAME/<run-id>/`` with config, metrics, figures and a summary.

:class:`RunWriter` writes a run folder and :class:`Run` / :func:`find_runs` read it back: no
other module parses ``config.json`` or ``metrics.jsonl`` by hand (STYLE.md 19).

Every file is written atomically (temporary file + rename), so a crashed run never leaves a
half-written file that a reader could take for complete; ``summary.md`` is written last.
``config.json`` carries the run's provenance (``ordergrad_experiments.common.provenance``): git
commit and dirty flag, package versions, device kind and count, host, UTC start time and load
average, and the UTC end time once the summary is written. A resumed run keeps the earlier sessions'
records under ``provenance["previous"]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

from ordergrad_experiments.common import provenance
from ordergrad_experiments.common.io import atomic_temp_path, write_json_atomic, write_text_atomic


def new_run_id() -> str:
    """A sortable, unique-enough id: UTC time to the microsecond."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S-%f")


class RunWriter:
    """Writes one run's outputs under ``root / name / run_id``.

    On several hosts (``jax.process_count() > 1``) only process 0 writes files; the others keep
    ``metrics`` in memory so that every process runs the same code. Give every process the same
    ``run_id`` there (the default id is the local clock).

    Attributes:
      path: the run folder.
      metrics: the rows appended so far (rewritten atomically as ``metrics.jsonl`` on each call).
      primary: whether this process writes files.
      provenance: this session's record (``config.json["provenance"]``).
      sinks: extra destinations of the metric rows (``ordergrad_experiments.common.loggers``:
        TensorBoard, W&B), given the rows of each :meth:`log` call after ``metrics.jsonl``; closed
        by :meth:`close`. Empty by default; process 0 alone should have any.
    """

    def __init__(self, name: str, root: str | os.PathLike = "results", run_id: str | None = None):
        import jax

        self.path = pathlib.Path(root) / name / (run_id or new_run_id())
        self.primary = jax.process_index() == 0
        if self.primary:
            self.path.mkdir(parents=True, exist_ok=True)
        self.metrics: list[dict[str, Any]] = []
        self.provenance: dict[str, Any] = provenance.start_record()
        self._config: dict[str, Any] | None = None
        self._resumed_checked = False
        self.sinks: list[Any] = []

    def write_config(self, config: Any, **extra: Any) -> pathlib.Path:
        """``config.json``: the dataclass config, ``extra`` (seed, ...) and the provenance."""
        data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        self.provenance.update(provenance.device_record())
        self._config = {"config": data, **extra}
        return self._write_config()

    @property
    def config(self) -> dict[str, Any] | None:
        """The run's config as ``config.json`` holds it (JSON types), on every process (process 0
        alone writes the file); ``None`` before :meth:`write_config`."""
        if self._config is None:
            return None
        return json.loads(json.dumps(self._config["config"]))

    def _write_config(self) -> pathlib.Path:
        path = self.path / "config.json"
        if not self.primary:
            return path
        if not self._resumed_checked and path.exists():  # a resumed run: keep what ran before
            try:
                old = json.loads(path.read_text()).get("provenance")
            except (OSError, ValueError):
                old = None
            if isinstance(old, dict):
                self.provenance["previous"] = [*old.pop("previous", []), old]
        self._resumed_checked = True
        return write_json_atomic(path, {**(self._config or {}), "provenance": self.provenance})

    def log(self, rows: list[dict[str, Any]] | dict[str, Any]) -> pathlib.Path:
        """Appends metric rows (JSON-serialisable dicts) and rewrites ``metrics.jsonl``; then
        hands the rows to each of :attr:`sinks`."""
        new = [rows] if isinstance(rows, dict) else list(rows)
        self.metrics.extend(new)
        if not self.primary:
            return self.path / "metrics.jsonl"
        text = "".join(json.dumps(row, default=to_builtin) + "\n" for row in self.metrics)
        path = write_text_atomic(self.path / "metrics.jsonl", text)
        for sink in self.sinks if new else ():
            sink.write(new)
        return path

    def close(self) -> None:
        """Closes the :attr:`sinks` (each one, even if another fails) and forgets them."""
        sinks, self.sinks = self.sinks, []
        with contextlib.ExitStack() as stack:
            for sink in sinks:
                stack.callback(sink.close)

    def save_figure(self, fig: Any, stem: str) -> list[pathlib.Path]:
        """Saves a matplotlib figure as ``stem.png`` and ``stem.pdf`` (atomically)."""
        paths = []
        for ext in ("png", "pdf") if self.primary else ():
            target = self.path / f"{stem}.{ext}"
            fd, tmp = atomic_temp_path(target, suffix=f".{ext}")
            os.close(fd)
            try:
                fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight")
                os.replace(tmp, target)
            finally:
                pathlib.Path(tmp).unlink(missing_ok=True)
            paths.append(target)
        return paths

    def write_summary(self, markdown: str) -> pathlib.Path:
        """``summary.md``: the run's table of results (written last: its presence means done).
        ``config.json`` gets the end time first."""
        if "device_kind" not in self.provenance:  # no write_config call
            self.provenance.update(provenance.device_record())
        self.provenance["end_utc"] = provenance.utc_now()
        self._write_config()
        if not self.primary:
            return self.path / "summary.md"
        return write_text_atomic(self.path / "summary.md", markdown)


METRICS_FILES = ("metrics.jsonl", "curve.jsonl")
"""The metric rows of a run folder: ``metrics.jsonl`` as written, or ``curve.jsonl`` (the rows a
curated copy in ``reports/`` keeps)."""


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, one per non-empty line."""
    text = pathlib.Path(path).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def row_kind(row: dict[str, Any]) -> str | None:
    """A metric row's kind: its ``kind`` field (control: ``train``/``eval``/``speed``) or its
    ``phase`` field (LM: ``sft``/``rl``); ``None`` for rows with neither (one kind per run)."""
    return row.get("kind", row.get("phase"))


def is_evaluation(row: dict[str, Any]) -> bool:
    """Whether a metric row holds an evaluation: kind ``eval`` (control trainers) or held-out
    ``heldout_*`` values (the LM trainer's evaluation steps)."""
    return row_kind(row) == "eval" or any(k.startswith("heldout_") for k in row)


@dataclasses.dataclass(frozen=True)
class Run:
    """A run folder as :class:`RunWriter` wrote it (or a curated copy of one), read lazily.

    Attributes:
      path: the run folder.
    """

    path: pathlib.Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", pathlib.Path(self.path))

    @property
    def name(self) -> str:
        """The run id (the folder's name)."""
        return self.path.name

    @functools.cached_property
    def record(self) -> dict[str, Any]:
        """``config.json`` whole: ``config``, the extras the run wrote beside it (``seed``, ...)
        and ``provenance``; ``{}`` where the folder has none."""
        path = self.path / "config.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def config(self) -> dict[str, Any]:
        """The run's config (``config.json["config"]``, JSON types)."""
        return self.record.get("config", {})

    @property
    def provenance(self) -> dict[str, Any]:
        """Where and when it ran (``ordergrad_experiments.common.provenance``); ``{}`` if not
        recorded."""
        return self.record.get("provenance", {})

    @property
    def finished(self) -> bool:
        """Whether the run wrote its summary (written last: its presence means done)."""
        return (self.path / "summary.md").exists()

    @property
    def summary(self) -> str:
        """``summary.md``'s text (``FileNotFoundError`` for an unfinished run)."""
        return (self.path / "summary.md").read_text()

    @functools.cached_property
    def metrics(self) -> list[dict[str, Any]]:
        """Every metric row, in the order written (``metrics.jsonl``, else ``curve.jsonl``);
        ``[]`` where the run has logged none."""
        for name in METRICS_FILES:
            if (self.path / name).exists():
                return read_jsonl(self.path / name)
        return []

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The metric rows of one kind (see :func:`row_kind`), or all of them."""
        if kind is None:
            return list(self.metrics)
        return [row for row in self.metrics if row_kind(row) == kind]

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        """The rows that hold an evaluation (see :func:`is_evaluation`), in order."""
        return [row for row in self.metrics if is_evaluation(row)]

    @property
    def wall_s(self) -> float | None:
        """Seconds from the start to the end of the last session (``None`` before the end)."""
        prov = self.provenance
        if "end_utc" not in prov or "start_utc" not in prov:
            return None
        end = datetime.datetime.fromisoformat(prov["end_utc"])
        return (end - datetime.datetime.fromisoformat(prov["start_utc"])).total_seconds()

    def json(self, name: str) -> Any:
        """Another JSON file the run wrote beside its metrics (e.g. ``final_returns.json``)."""
        return json.loads((self.path / name).read_text())


def is_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder (it holds ``config.json``)."""
    return (pathlib.Path(path) / "config.json").is_file()


def find_runs(
    folder: str | os.PathLike, pattern: str = "*", finished: bool | None = True
) -> list[Run]:
    """The run folders at any depth under ``folder`` (itself included) whose name matches the
    glob ``pattern``, sorted by path.

    Args:
      folder: where to look (``FileNotFoundError`` if it does not exist).
      pattern: a glob on the run id (the folder's name).
      finished: ``True`` (default) keeps the finished runs, ``False`` the unfinished ones,
        ``None`` both.
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no run folder {str(folder)!r}")
    found = [Run(path) for path in _run_folders(folder) if path.match(pattern)]
    if finished is not None:
        found = [run for run in found if run.finished == finished]
    return sorted(found, key=lambda run: run.path)


def _run_folders(folder: pathlib.Path) -> Iterator[pathlib.Path]:
    if is_run(folder):
        yield folder
        return  # a run's own sub-folders (checkpoints) are not runs
    for child in sorted(p for p in folder.iterdir() if p.is_dir()):
        yield from _run_folders(child)


def to_builtin(value: Any) -> Any:
    """JSON fallback for NumPy/JAX scalars and arrays."""
    import numpy as np

    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()


def markdown_table(
    rows: list[dict[str, Any]], columns: list[str] | None = None, floatfmt: str = ".4g"
) -> str:
    """A GitHub markdown table of ``rows`` (dicts), one column per key."""
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])

    def cell(v: Any) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"
