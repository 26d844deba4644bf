"""Control benchmark: episodic group policy gradients (any og.estimators advantage) and PPO.

The public API, what ``ordergrad_experiments.bench``, ``report`` and ``sweeps`` import (``from
ordergrad_experiments.control import NAME``); each name's module is imported on its first use:

* ``ControlConfig`` -- the settings of one training run (``config``).
* ``QUICK`` -- the quick preset of ``ordergrad-jax run control`` (a ``ControlConfig``).
* ``make_train`` -- ``ControlConfig`` -> the trainer of ``config.algo`` (``run``).
* ``learning_curves`` -- the figure of a metric against env steps, one line per method (``plots``).
* ``return_histograms`` -- the figure of the final evaluation returns per method (``plots``).
* ``task_table`` -- the markdown table of one task's ``return-table`` rows (``return_table``).
* ``FINAL_RETURNS`` -- the run folder's file of every final evaluation return (``run``).
* ``NOT_STATISTICS`` -- the keys of an ``eval`` row that are not per-seed statistics (``run``).
* ``gradient_summary_rows`` -- the means over seeds of a ``control-gradients`` run's probes
  (``gradients.summary_rows``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordergrad_experiments.common.lazy import public_api

if TYPE_CHECKING:
    from .config import QUICK, ControlConfig
    from .gradients import summary_rows as gradient_summary_rows
    from .plots import learning_curves, return_histograms
    from .return_table import task_table
    from .run import FINAL_RETURNS, NOT_STATISTICS, make_train

__all__ = [
    "FINAL_RETURNS",
    "NOT_STATISTICS",
    "QUICK",
    "ControlConfig",
    "gradient_summary_rows",
    "learning_curves",
    "make_train",
    "return_histograms",
    "task_table",
]

# {public name: (submodule, its attribute)}
_PUBLIC = {
    "FINAL_RETURNS": ("run", "FINAL_RETURNS"),
    "NOT_STATISTICS": ("run", "NOT_STATISTICS"),
    "QUICK": ("config", "QUICK"),
    "gradient_summary_rows": ("gradients", "summary_rows"),
    "ControlConfig": ("config", "ControlConfig"),
    "learning_curves": ("plots", "learning_curves"),
    "make_train": ("run", "make_train"),
    "return_histograms": ("plots", "return_histograms"),
    "task_table": ("return_table", "task_table"),
}


if not TYPE_CHECKING:  # type checkers see the imports above, and flag any other name
    __getattr__, __dir__ = public_api(__name__, _PUBLIC, __all__, globals())
