"""The paper's estimator studies: unbiasedness, LR/RP vs exact gradients, variance and SNR.

The public API, what ``ordergrad_experiments.bench``, ``report`` and ``sweeps`` import (``from
ordergrad_experiments.variance import NAME``); each name's module is imported on its first use:

* ``VarianceConfig`` -- the settings of ``ordergrad-jax run variance`` (``config``).
* ``QUICK`` -- its quick preset (a ``VarianceConfig``).
* ``summary`` -- a run's config and metric rows -> its ``summary.md`` tables (``run``).
* ``all_figures`` -- a run's metric rows -> every figure of its studies, by stem (``plots``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordergrad_experiments.common.lazy import public_api

if TYPE_CHECKING:
    from .config import QUICK, VarianceConfig
    from .plots import all_figures
    from .run import summary

__all__ = ["QUICK", "VarianceConfig", "all_figures", "summary"]

# {public name: (submodule, its attribute)}
_PUBLIC = {
    "QUICK": ("config", "QUICK"),
    "VarianceConfig": ("config", "VarianceConfig"),
    "all_figures": ("plots", "all_figures"),
    "summary": ("run", "summary"),
}


if not TYPE_CHECKING:  # type checkers see the imports above, and flag any other name
    __getattr__, __dir__ = public_api(__name__, _PUBLIC, __all__, globals())
