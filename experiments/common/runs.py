"""One folder per run: ``results/NAME/<run-id>/`` with config, metrics, figures and a summary.

Every file is written atomically (temporary file + rename), so a crashed run never leaves a
half-written file that a reader could take for complete; ``summary.md`` is written last.
``config.json`` carries the run's provenance (``experiments.common.provenance``): git commit and
dirty flag, package versions, device kind and count, host, UTC start time and load average, and
the UTC end time once the summary is written. A resumed run keeps the earlier sessions' records
under ``provenance["previous"]``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
from typing import Any

from experiments.common import provenance
from experiments.common.io import atomic_temp_path, write_json_atomic, write_text_atomic


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
        """Appends metric rows (JSON-serialisable dicts) and rewrites ``metrics.jsonl``."""
        self.metrics.extend([rows] if isinstance(rows, dict) else rows)
        if not self.primary:
            return self.path / "metrics.jsonl"
        text = "".join(json.dumps(row, default=to_builtin) + "\n" for row in self.metrics)
        return write_text_atomic(self.path / "metrics.jsonl", text)

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
