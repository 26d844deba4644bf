"""Evaluation metrics: estimate the deployment objective, and diagnose gradient estimators.

* :mod:`.returns`, deployment objectives from a group of N samples (maths.md §6): :func:`mean`,
  :func:`pass_at_k`, :func:`max_at_k`, :func:`lstat_at_k` (unbiased for the k-sample objective),
  :func:`cvar`, :func:`var` (plug-in, consistent).
* :mod:`.gradients`, from a stack of S gradient samples ``(S, ...)`` (or a pytree of them):
  :func:`total_variance`, :func:`snr`, :func:`snr_true_gradient`.
* :mod:`.advantages`, from advantages ``(..., N)``: :func:`zero_advantage_fraction`,
  :func:`effective_weight`, :func:`effective_sample_size`.

Bad static inputs (ranks, sizes, dtypes, concrete out-of-range values) raise ``TypeError`` or
``ValueError`` at trace time; traced values that are out of range (a non-binary reward in
:func:`pass_at_k`, an ``alpha`` outside ``(0, 1]``) give NaN for the groups they touch.
"""

from ordergrad_jax.metrics.advantages import (
    effective_sample_size,
    effective_weight,
    zero_advantage_fraction,
)
from ordergrad_jax.metrics.gradients import snr, snr_true_gradient, total_variance
from ordergrad_jax.metrics.returns import cvar, lstat_at_k, max_at_k, mean, pass_at_k, var

__all__ = [
    "cvar",
    "effective_sample_size",
    "effective_weight",
    "lstat_at_k",
    "max_at_k",
    "mean",
    "pass_at_k",
    "snr",
    "snr_true_gradient",
    "total_variance",
    "var",
    "zero_advantage_fraction",
]
