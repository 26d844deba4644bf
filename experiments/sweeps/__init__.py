"""Studies as data: every sweep (a set of runs behind a results document) is declared once here.

A :class:`Sweep` names its runs (:class:`RunSpec`: run id, experiment, ``--set`` overrides, seed),
the overrides every run shares (``pins``), the labels the report shows for its methods and how a
finished run is kept in ``reports/`` (``keep``). ``ordergrad-jax sweep NAME`` runs it
(:mod:`ordergrad_experiments.sweeps.runner`); ``ordergrad-jax list`` shows the sweeps. The
declarations live in one module per results document (``experiments/sweeps/<document>.py``), each
registering its sweeps with :func:`register` when imported; :func:`get` imports them on demand.

Overrides may name the sweep's output folder as ``{out}`` (e.g. ``sft_cache={out}/sft``): the
runner fills it in, so a shared cache lives beside the runs that use it.
"""

from __future__ import annotations

import importlib

from ordergrad_experiments.sweeps.spec import REGISTRY, Keep, RunSpec, Sweep, register

__all__ = ["Keep", "RunSpec", "Sweep", "get", "names", "register"]

DECLARATIONS = (
    "ordergrad_experiments.sweeps.control",
    "ordergrad_experiments.sweeps.brax",
    "ordergrad_experiments.sweeps.lm",
    "ordergrad_experiments.sweeps.lm_testbed",
    "ordergrad_experiments.sweeps.variance",
    "ordergrad_experiments.sweeps.transform",
    "ordergrad_experiments.sweeps.envs",
    "ordergrad_experiments.sweeps.guarded_maze",
    "ordergrad_experiments.sweeps.hedging",
)
"""The modules that declare the project's sweeps (imported on first lookup)."""

_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in DECLARATIONS:
            importlib.import_module(module)


def names() -> list[str]:
    """The registered sweeps' names, sorted."""
    _load()
    return sorted(REGISTRY)


def get(name: str) -> Sweep:
    """The sweep called ``name``; ``ValueError`` lists the known ones."""
    _load()
    if name not in REGISTRY:
        raise ValueError(f"unknown sweep {name!r}; available: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]
