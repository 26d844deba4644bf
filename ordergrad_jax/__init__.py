"""ordergrad-jax: order-statistic policy-gradient estimators (OrderGrad) in JAX.

The objective is a finite-sample L-statistic ``J = sum_j alpha_j E[R_(j:K)]`` of K i.i.d.
rewards; the rank weights ``alpha`` choose it (mean, CVaR, median, max@K, ...). The maths and
conventions are in the repository's ``docs/maths.md``; docstrings cite its sections as
``maths.md §N``.
"""

from ordergrad_jax import estimators, exact, metrics
from ordergrad_jax._sorted import SORT_FREE_MAX_N, sort_free_max_n
from ordergrad_jax.estimators import lr_loss
from ordergrad_jax.lstatistic import (
    LStatistic,
    advantage_defined,
    lstat,
    lstat_advantage,
    lstat_inclusion,
    lstat_leave_one_out,
    lstat_weights_by_item,
    lstat_weights_by_rank,
    orderstats,
    orderstats_advantage,
    orderstats_inclusion,
    orderstats_leave_one_out,
)
from ordergrad_jax.objectives import (
    Objective,
    available_objectives,
    get_objective,
    rank_weights,
    register_objective,
)

__version__ = "0.1.0"

__all__ = [
    "SORT_FREE_MAX_N",
    "LStatistic",
    "Objective",
    "advantage_defined",
    "available_objectives",
    "estimators",
    "exact",
    "get_objective",
    "lr_loss",
    "lstat",
    "lstat_advantage",
    "lstat_inclusion",
    "lstat_leave_one_out",
    "lstat_weights_by_item",
    "lstat_weights_by_rank",
    "metrics",
    "orderstats",
    "orderstats_advantage",
    "orderstats_inclusion",
    "orderstats_leave_one_out",
    "rank_weights",
    "register_objective",
    "sort_free_max_n",
]
