"""Pathwise (RP) order-statistic policy gradients through a differentiable simulator.

A sibling of ``experiments/control`` (as brax's APG is of its PPO): ``config`` (the settings),
``networks`` (the squashed Gaussian policy), ``train`` (the loss and ``make_train``), ``run``
(``ordergrad-jax run brax-rp``) and ``variance`` (the RP-vs-LR study, ``run brax-variance``).

The public API, what ``ordergrad_experiments.bench``, ``report`` and ``sweeps`` import (``from
ordergrad_experiments.pathwise import NAME``); each name's module is imported on its first use:

* ``PathwiseConfig`` -- the settings of one ``brax-rp`` run (``config``).
* ``QUICK`` -- the quick preset of ``ordergrad-jax run brax-rp`` (a ``PathwiseConfig``).
* ``make_train`` -- ``PathwiseConfig`` -> the trainer (``train``).
* ``run_settings`` -- a ``brax-rp`` run's ``config.json`` -> its settings, any version (``run``).
* ``variance_table`` -- the RP-vs-LR study's markdown table of its rows (``variance.table``).
* ``variance_figure`` -- the RP-vs-LR study's figure of its rows (``variance.figure``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordergrad_experiments.common.lazy import public_api

if TYPE_CHECKING:
    from .config import QUICK, PathwiseConfig
    from .run import run_settings
    from .train import make_train
    from .variance import figure as variance_figure
    from .variance import table as variance_table

__all__ = [
    "QUICK",
    "PathwiseConfig",
    "make_train",
    "run_settings",
    "variance_figure",
    "variance_table",
]

# {public name: (submodule, its attribute)}
_PUBLIC = {
    "QUICK": ("config", "QUICK"),
    "PathwiseConfig": ("config", "PathwiseConfig"),
    "make_train": ("train", "make_train"),
    "run_settings": ("run", "run_settings"),
    "variance_figure": ("variance", "figure"),
    "variance_table": ("variance", "table"),
}


if not TYPE_CHECKING:  # type checkers see the imports above, and flag any other name
    __getattr__, __dir__ = public_api(__name__, _PUBLIC, __all__, globals())
