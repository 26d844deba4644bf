"""The declaration of a sweep (:class:`Sweep`, :class:`RunSpec`) and the registry the declaration
modules add their sweeps to (:func:`register`); :mod:`ordergrad_experiments.sweeps` looks them up.

The declaration modules import this module, not the package, so the package can import them on
first lookup without an import cycle.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

Keep = Callable[[Any, pathlib.Path], None]
"""``keep(run, dest)``: copies what a results document needs of a finished run
(:class:`ordergrad_experiments.common.runs.Run`) into ``dest`` (the run's folder in ``--keep
DIR``)."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Attributes:
      id: the run id, unique in its sweep: the run folder ``OUT/<experiment name>/<id>/``.
      experiment: a registered experiment (``ordergrad-jax run NAME``), or ``"bench:NAME"`` for a
        benchmark (``ordergrad-jax bench NAME``).
      overrides: ``key=value`` config overrides (``--set``), applied after the sweep's pins.
      seed: the run's seed (``--seed``), or ``None`` for the config's.
      env: extra environment variables of the run's process (e.g. ``XLA_FLAGS``).
      stage: runs of a lower stage finish before a higher stage starts (a shared SFT cache).
      keep: how ``--keep`` keeps this run: ``True``, the sweep's keep; ``False``, not at all (a
        cache-filling run may be made and not kept); a function, this run's own keep.
      kept_as: the run's name in ``--keep DIR`` (default: its id), e.g. ``starts.jsonl`` for a
        diagnostic whose rows several runs append to one file.
    """

    id: str
    experiment: str
    overrides: tuple[str, ...] = ()
    seed: int | None = None
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    stage: int = 0
    keep: bool | Keep = True
    kept_as: str | None = None

    @property
    def kept_name(self) -> str:
        """The run's name in ``--keep DIR``."""
        return self.kept_as or self.id


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A study: its runs and how the results document reads and keeps them.

    Attributes:
      name: the sweep's name (``ordergrad-jax sweep NAME``).
      description: one line, as ``ordergrad-jax list`` shows it.
      runs: the runs, in the order they start.
      pins: overrides every run of the sweep shares (before its own).
      labels: method id -> the label the report shows (method ids are run-id prefixes).
      keep: how a finished run is copied into ``--keep DIR`` (``None``:
        :func:`ordergrad_experiments.sweeps.keep.small_files`, its config, metrics, summary and
        other small files).
      documents: the folders where its kept runs are committed, relative to the repository
        root (``reports/<document>/<section>``; several where a document splits one sweep's
        runs), so a test can hold the declaration against them; ``()`` where none is committed.
    """

    name: str
    description: str
    runs: tuple[RunSpec, ...]
    pins: tuple[str, ...] = ()
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    keep: Keep | None = None
    documents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = [run.id for run in self.runs]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"sweep {self.name!r}: run ids used twice: {duplicated}")

    def kept(self) -> list[str]:
        """The names ``--keep DIR`` holds after the sweep (its document folder's entries)."""
        return list(dict.fromkeys(run.kept_name for run in self.runs if run.keep is not False))

    def overrides(self, run: RunSpec, out: str | pathlib.Path) -> tuple[str, ...]:
        """The run's overrides after the sweep's pins, with ``{out}`` filled in."""
        return tuple(item.format(out=out) for item in (*self.pins, *run.overrides))


REGISTRY: dict[str, Sweep] = {}


def register(sweep: Sweep) -> Sweep:
    """Adds ``sweep`` to the registry (``ValueError`` if the name is taken); returns it."""
    if sweep.name in REGISTRY and REGISTRY[sweep.name] is not sweep:
        raise ValueError(f"a sweep called {sweep.name!r} is already registered")
    REGISTRY[sweep.name] = sweep
    return sweep
