"""Control benchmark: episodic group policy gradients (any og.estimators advantage) and PPO.

The public API, what ``ordergrad_experiments.bench``, ``report`` and ``sweeps`` import (``from
ordergrad_experiments.control import NAME``); each name's module is imported on its first use:

* ``ControlConfig`` -- the settings of one training run (``config``).
* ``QUICK`` -- the quick preset of ``ordergrad-jax run control`` (a ``ControlConfig``).
* ``make_train`` -- ``ControlConfig`` -> the trainer of ``config.algo`` (``run``).
* ``learning_curves`` -- the figure of a metric against env steps, one line per method (``plots``).
* ``return_histograms`` -- the figure of the final evaluation returns per method (``plots``).
* ``task_table`` -- the markdown table of one task's ``return-table`` rows (``return_table``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordergrad_experiments.common.lazy import public_api

if TYPE_CHECKING:
    from .config import QUICK, ControlConfig
    from .plots import learning_curves, return_histograms
    from .return_table import task_table
    from .run import make_train

__all__ = [
    "QUICK",
    "ControlConfig",
    "learning_curves",
    "make_train",
    "return_histograms",
    "task_table",
]

# {public name: (submodule, its attribute)}
_PUBLIC = {
    "QUICK": ("config", "QUICK"),
    "ControlConfig": ("config", "ControlConfig"),
    "learning_curves": ("plots", "learning_curves"),
    "make_train": ("run", "make_train"),
    "return_histograms": ("plots", "return_histograms"),
    "task_table": ("return_table", "task_table"),
}


if not TYPE_CHECKING:  # type checkers see the imports above, and flag any other name
    __getattr__, __dir__ = public_api(__name__, _PUBLIC, __all__, globals())
