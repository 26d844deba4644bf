"""Extra sinks of a run's metric rows (``--set logger=tensorboard,wandb``).

``metrics.jsonl`` is always written (:class:`ordergrad_experiments.common.runs.RunWriter`): it is
the record every report reads. A config's ``logger`` field names the sinks that get the same rows as
well, from the host, each time the writer logs (after each jitted chunk, outside its timing):

* ``jsonl``: nothing more than ``metrics.jsonl`` (the default);
* ``tensorboard``: TensorBoard event files in ``<run folder>/tensorboard/`` (tensorboardX), so
  ``tensorboard --logdir results/`` shows every run;
* ``wandb``: a Weights & Biases run in ``<run folder>/wandb/``, offline (``wandb sync`` uploads
  it later) unless the user sets ``WANDB_MODE`` or names a server (``WANDB_BASE_URL``,
  ``WANDB_API_KEY``).

Each numeric field of a row becomes one scalar (:func:`row_scalars`) at the row's step
(:func:`row_step`). The packages come with the ``logging`` extra and are imported only when a
sink is made.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import numbers
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ordergrad_experiments.common.config import leaf_paths
from ordergrad_experiments.common.runs import row_kind

LOGGERS = ("jsonl", "tensorboard", "wandb")
"""The names ``logger`` takes: ``jsonl`` is ``metrics.jsonl`` alone, the others add a sink."""

EXTRA = "logging"
"""The optional-dependencies extra that installs the sinks' packages."""

STEP_FIELDS = ("env_steps", "step", "iteration", "chunk")
"""The fields that give a row's step, first present first: environment steps (control,
pathwise), RL steps (LM), iterations, chunks."""


class Sink(Protocol):
    """Where metric rows go besides ``metrics.jsonl``."""

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Records the rows the writer has just logged (in order)."""

    def close(self) -> None:
        """Flushes and releases the sink (called once, when the run ends)."""


class MissingLoggerPackage(ValueError):
    """A sink's package is not installed (the command exits 1 with this one line)."""


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without repeats, in order; ``ValueError`` naming :data:`LOGGERS` for another."""
    names = tuple(dict.fromkeys(names))
    unknown = [name for name in names if name not in LOGGERS]
    if unknown:
        raise ValueError(f"logger takes names among {list(LOGGERS)}; got {unknown}")
    return names


def config_loggers(config: Any) -> tuple[str, ...]:
    """The (checked) ``logger`` names of a dataclass config: those of its leaf named ``logger``
    (``lm.logger`` in a config that nests an LM config), of all of them where it nests several
    (a benchmark of several trainers: ``rp.logger`` and ``control.logger``); ``()`` for a config
    without one."""
    if not dataclasses.is_dataclass(config):
        return ()
    names: list[str] = []
    for path in leaf_paths(config):
        if path.rsplit(".", 1)[-1] == "logger":
            value = functools.reduce(getattr, path.split("."), config)
            names += [value] if isinstance(value, str) else value
    return check_names(names)


def row_step(row: Mapping[str, Any]) -> int | None:
    """A row's step: its first :data:`STEP_FIELDS` field that is a number, else ``None``."""
    for field in STEP_FIELDS:
        value = _number(row.get(field))
        if value is not None:
            return int(value)
    return None


def row_scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """A row's numeric fields as ``{tag: value}``.

    The tag is ``<kind>/<field>`` (the row's ``kind`` or ``phase``: ``train/return_mean``,
    ``rl/loss``), or ``<field>`` for a row with neither; a row of one seed of several (a ``seed``
    field) gets ``/seed_<seed>`` after it (``train/return_mean/seed_1``), so that the seeds'
    values at one step stay apart. ``seed``, ``kind``, ``phase``, booleans, strings and lists
    are not scalars.
    """
    kind = row_kind(row)
    prefix = f"{kind}/" if isinstance(kind, str) else ""
    seed = _number(row.get("seed"))
    suffix = "" if seed is None else f"/seed_{int(seed)}"
    scalars = {}
    for field, value in row.items():
        number = None if field in ("seed", "kind", "phase") else _number(value)
        if number is not None:
            scalars[f"{prefix}{field}{suffix}"] = number
    return scalars


def scalar_rows(
    rows: Iterable[Mapping[str, Any]], step: int = 0
) -> list[tuple[int, dict[str, float]]]:
    """``(step, scalars)`` of each row that has a scalar; a row without a step (a final
    evaluation, a speed row) takes the step of the row before it (``step`` for the first)."""
    out = []
    for row in rows:
        found = row_step(row)
        step = step if found is None else found
        scalars = row_scalars(row)
        if scalars:
            out.append((step, scalars))
    return out


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a real number that is not a bool (NumPy and JAX scalars
    and 0-d arrays included), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    dtype = getattr(value, "dtype", None)
    if getattr(value, "shape", None) == () and getattr(dtype, "kind", None) in ("i", "u", "f"):
        return float(value)
    return None


def _missing(package: str, logger: str) -> MissingLoggerPackage:
    return MissingLoggerPackage(
        f'logger={logger} needs {package!r}, which is not installed: pip install -e ".[{EXTRA}]"'
    )


def require(names: Sequence[str]) -> None:
    """Imports the packages of the sinks ``names`` asks for: :class:`MissingLoggerPackage`
    (one line, naming the extra) where one is missing. Called before a run starts."""
    for name in check_names(names):
        if name == "tensorboard":
            _tensorboardx()
        elif name == "wandb":
            _wandb()


def _tensorboardx():
    try:
        import tensorboardX
    except ImportError as err:
        raise _missing("tensorboardX", "tensorboard") from err
    return tensorboardX


def _wandb():
    try:
        import wandb
    except ImportError as err:
        raise _missing("wandb", "wandb") from err
    return wandb


class TensorBoardSink:
    """Scalars in TensorBoard event files under ``folder`` (tensorboardX ``SummaryWriter``).

    :meth:`write` only queues the events; tensorboardX's thread writes them and flushes the
    file every ``flush_secs`` seconds (so a live ``tensorboard`` sees each chunk soon after it
    ends), and :meth:`close` writes the rest.
    """

    def __init__(self, folder: str | os.PathLike, flush_secs: int = 10):
        self.folder = pathlib.Path(folder)
        self._writer = _tensorboardx().SummaryWriter(
            str(self.folder), max_queue=4096, flush_secs=flush_secs
        )
        self._step = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        for step, scalars in scalar_rows(rows, self._step):
            for tag, value in scalars.items():
                self._writer.add_scalar(tag, value, step)
            self._step = step

    def close(self) -> None:
        self._writer.close()


def wandb_mode(environ: Mapping[str, str]) -> str | None:
    """``"offline"`` unless the environment chooses: ``None`` (W&B's own choice) where
    ``WANDB_MODE`` is set or a server is configured (``WANDB_BASE_URL`` or ``WANDB_API_KEY``)."""
    chosen = ("WANDB_MODE", "WANDB_BASE_URL", "WANDB_API_KEY")
    return None if any(environ.get(name) for name in chosen) else "offline"


class WandbSink:
    """A Weights & Biases run in ``folder / "wandb"``: one ``log`` call per step, ``finish`` on
    :meth:`close`.

    Args:
      folder: the run folder (W&B's ``dir``).
      config: the run's config (a dict; W&B's run config).
      environ: where :func:`wandb_mode` and the project name (``WANDB_PROJECT``, default
        ``ordergrad-jax``) are read from.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        config: dict[str, Any],
        environ: Mapping[str, str] = os.environ,
    ):
        wandb, folder, mode = _wandb(), pathlib.Path(folder), wandb_mode(environ)
        if mode == "offline":  # process-wide too: W&B's own telemetry would go online (0.31)
            wandb.setup(settings=wandb.Settings(mode="offline"))
        self.run = wandb.init(
            dir=str(folder),
            name=folder.name,
            group=folder.parent.name,
            project=environ.get("WANDB_PROJECT") or "ordergrad-jax",
            config=config,
            mode=mode,
        )
        self._step = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        merged: dict[int, dict[str, float]] = collections.defaultdict(dict)
        for step, scalars in scalar_rows(rows, self._step):
            merged[step].update(scalars)
            self._step = step
        for step, scalars in merged.items():
            self.run.log(scalars, step=step)

    def close(self) -> None:
        self.run.finish()


def make_sinks(names: Sequence[str], folder: str | os.PathLike, config: Any) -> list[Sink]:
    """The sinks ``names`` asks for (``jsonl`` adds none) for the run folder ``folder``.

    Args:
      names: among :data:`LOGGERS` (``ValueError`` for another).
      folder: the run folder: TensorBoard writes to ``folder/tensorboard``, W&B to
        ``folder/wandb``.
      config: the run's config (a dataclass or a dict), W&B's run config.
    """
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    folder = pathlib.Path(folder)
    sinks: list[Sink] = []
    with contextlib.ExitStack() as made:  # one that fails closes those made before it
        for name in check_names(names):
            if name == "tensorboard":
                sinks.append(TensorBoardSink(folder / "tensorboard"))
            elif name == "wandb":
                sinks.append(WandbSink(folder, data))
            else:
                continue
            made.callback(sinks[-1].close)
        made.pop_all()
    return sinks
