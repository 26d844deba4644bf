"""LM RL fine-tuning with OrderGrad advantages: tiny Qwen3 on CPU, real checkpoints on TPU/GPU.

The public API, what ``ordergrad_experiments.bench``, ``report`` and ``sweeps`` import (``from
ordergrad_experiments.lm import NAME``); each name's module is imported on its first use.
``curate_run`` and ``run_rl`` are not named ``curate`` and ``run``, the submodules that hold them:
importing a submodule sets the package attribute of its name, which would hide a function of that
name.

* ``LMConfig`` -- the settings of one ``lm-rl`` run (``config``).
* ``QUICK`` -- the quick preset of ``ordergrad-jax run lm-rl`` (an ``LMConfig``).
* ``run_rl`` -- ``ordergrad-jax run lm-rl``: SFT, evaluation, then the RL steps (``run.run``).
* ``build_model`` -- ``(tokenizer, graphdef, params)`` of an ``LMConfig`` on a mesh (``run``).
* ``task_setup`` -- the task of an ``LMConfig``, its arrays and the RL step's setup (``run``).
* ``rl_start`` -- the RL state and the step's jitted phases from params (``run``).
* ``make_mesh`` -- a device mesh of a shape, axes named for the LM's shardings (``sharding``).
* ``curate_run`` -- copies a finished run's config, summary and cut metric rows (``curate.curate``).
* ``SolveRates`` -- per-prompt initial success probabilities, the start of the bandit (``bandit``).
* ``fit_solve_rates`` -- a zero-inflated Beta start fitted to a measured pass@k curve (``bandit``).
* ``solve_rates_from_counts`` -- a start from per-prompt success counts (``bandit``).
* ``BANDIT_OBJECTIVES`` -- the study's objectives as bandit objectives (``bandit.OBJECTIVES``).
* ``bandit_frontiers`` -- each objective's exact-gradient pass@k curve (``bandit.frontiers``).
* ``bandit_frontier`` -- pass@k at a pass@1 along such a curve (``bandit.frontier``).
* ``BANDIT_KS`` -- the k of the bandit's pass@k curves (``bandit.KS``).
* ``Counts`` -- a run's per-prompt correct counts at its checkpoints (``testbed``).
* ``read_counts`` -- the ``Counts`` of a ``counts.npz`` (``testbed``).
* ``pass_at_k_from_counts`` -- the unbiased pass@k of each prompt from its count
  (``testbed.pass_at_k``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordergrad_experiments.common.lazy import public_api

if TYPE_CHECKING:
    from .bandit import KS as BANDIT_KS
    from .bandit import OBJECTIVES as BANDIT_OBJECTIVES
    from .bandit import SolveRates, fit_solve_rates, solve_rates_from_counts
    from .bandit import frontier as bandit_frontier
    from .bandit import frontiers as bandit_frontiers
    from .config import QUICK, LMConfig
    from .curate import curate as curate_run
    from .run import build_model, rl_start, task_setup
    from .run import run as run_rl
    from .sharding import make_mesh
    from .testbed import Counts, read_counts
    from .testbed import pass_at_k as pass_at_k_from_counts

__all__ = [
    "BANDIT_KS",
    "BANDIT_OBJECTIVES",
    "QUICK",
    "Counts",
    "LMConfig",
    "SolveRates",
    "bandit_frontier",
    "bandit_frontiers",
    "build_model",
    "curate_run",
    "fit_solve_rates",
    "make_mesh",
    "pass_at_k_from_counts",
    "read_counts",
    "rl_start",
    "run_rl",
    "solve_rates_from_counts",
    "task_setup",
]

# {public name: (submodule, its attribute)}
_PUBLIC = {
    "BANDIT_KS": ("bandit", "KS"),
    "BANDIT_OBJECTIVES": ("bandit", "OBJECTIVES"),
    "bandit_frontier": ("bandit", "frontier"),
    "Counts": ("testbed", "Counts"),
    "read_counts": ("testbed", "read_counts"),
    "pass_at_k_from_counts": ("testbed", "pass_at_k"),
    "SolveRates": ("bandit", "SolveRates"),
    "bandit_frontiers": ("bandit", "frontiers"),
    "fit_solve_rates": ("bandit", "fit_solve_rates"),
    "solve_rates_from_counts": ("bandit", "solve_rates_from_counts"),
    "QUICK": ("config", "QUICK"),
    "LMConfig": ("config", "LMConfig"),
    "build_model": ("run", "build_model"),
    "curate_run": ("curate", "curate"),
    "make_mesh": ("sharding", "make_mesh"),
    "rl_start": ("run", "rl_start"),
    "run_rl": ("run", "run"),
    "task_setup": ("run", "task_setup"),
}


if not TYPE_CHECKING:  # type checkers see the imports above, and flag any other name
    __getattr__, __dir__ = public_api(__name__, _PUBLIC, __all__, globals())
