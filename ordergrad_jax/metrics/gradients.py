"""Gradient diagnostics from a stack of S gradient samples (maths.md §6).

Each takes ``g`` of shape ``(S, ...)``, or a pytree whose leaves all have the leading sample axis
S: :func:`total_variance`, :func:`snr`, :func:`snr_true_gradient`.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp

from ordergrad_jax import _checks

__all__ = ["snr", "snr_true_gradient", "total_variance"]


def _gradient_leaves(g: Any, where: str) -> tuple[list[jax.Array], int]:
    """The leaves of a gradient stack, checked: real arrays sharing a leading axis S >= 2."""
    leaves = jax.tree.leaves(g)
    if not leaves:
        raise ValueError(
            f"{where}: g must be an array (S, ...) or a pytree of such arrays; got an empty pytree"
        )
    arrays = []
    for leaf in leaves:
        a = _checks.as_real_float(leaf, where, "gradients")
        if a.ndim < 1:
            raise ValueError(
                f"{where}: every leaf of g needs a leading sample axis, shape "
                f"(S, ...); got a rank-0 leaf"
            )
        arrays.append(a)
    sizes = sorted({a.shape[0] for a in arrays})
    if len(sizes) > 1:
        raise ValueError(
            f"{where}: all leaves of g must share the leading sample axis S; got sizes {sizes}"
        )
    if sizes[0] < 2:
        raise ValueError(
            f"{where}: the unbiased variance needs S >= 2 gradient samples on the "
            f"leading axis; got S={sizes[0]}"
        )
    return arrays, sizes[0]


def total_variance(g: Any) -> jax.Array:
    """The total variance ``tr Var[g]`` of a gradient estimator from S samples of it.

    ``tr Var[g] = sum_p (1/(S-1)) sum_s (g_sp - mean_s g_sp)^2``: the unbiased per-coordinate
    variance across the samples, summed over all coordinates p of all leaves.

    Args:
      g: an array ``(S, ...)`` or a pytree of arrays sharing the leading sample axis S >= 2.

    Returns:
      scalar.
    """
    leaves, _ = _gradient_leaves(g, "total_variance")
    return _total_variance(leaves)


def _total_variance(leaves: list[jax.Array]) -> jax.Array:
    dtype = jnp.result_type(*leaves)
    return functools.reduce(
        operator.add, [jnp.sum(jnp.var(a, axis=0, ddof=1)).astype(dtype) for a in leaves]
    )


def _squared_norm_of_mean(leaves: list[jax.Array]) -> jax.Array:
    dtype = jnp.result_type(*leaves)
    return functools.reduce(
        operator.add, [jnp.sum(jnp.square(jnp.mean(a, axis=0))).astype(dtype) for a in leaves]
    )


def snr(g: Any, *, debias: bool = False) -> jax.Array:
    """Signal-to-noise ratio of a gradient estimator: ``|E g|^2 / tr Var[g]``, from S samples.

    ``snr = |mean_s g_s|^2 / total_variance(g)``. The plug-in numerator is biased upwards:
    ``E|mean_s g_s|^2 = |E g|^2 + tr Var[g] / S``; with ``debias=True`` the numerator is
    ``|mean_s g_s|^2 - total_variance(g) / S`` (unbiased, may be negative).
    A zero total variance gives ``inf`` (or NaN if the numerator is 0 too).

    Args:
      g: an array ``(S, ...)`` or a pytree of arrays sharing the leading sample axis S >= 2.
      debias: subtract the ``tr Var / S`` bias from the numerator.

    Returns:
      scalar.
    """
    leaves, s = _gradient_leaves(g, "snr")
    total = _total_variance(leaves)
    signal = _squared_norm_of_mean(leaves)
    if debias:
        signal = signal - total / s
    return signal / total


def snr_true_gradient(g: Any, g_true: Any) -> jax.Array:
    """Signal-to-noise ratio against a known true gradient: ``|g_true|^2 / tr Var[g]``.

    Use it when the exact gradient of the objective is known (e.g. the exact regime, maths.md §3),
    so the signal carries no sampling error.

    Args:
      g: an array ``(S, ...)`` or a pytree of arrays sharing the leading sample axis S >= 2.
      g_true: the true gradient: the same pytree structure as ``g``, each leaf of shape
        ``leaf.shape[1:]``.

    Returns:
      scalar.
    """
    leaves, _ = _gradient_leaves(g, "snr_true_gradient")
    # jaxlib's stub leaves PyTreeDef's comparison untyped; the treedefs compare by structure
    structure: Any = jax.tree.structure(g)
    true_structure: Any = jax.tree.structure(g_true)
    if true_structure != structure:
        raise ValueError(
            f"snr_true_gradient: g_true must have the pytree structure of g; got "
            f"{true_structure} for g {structure}"
        )
    true_leaves = [jnp.asarray(t) for t in jax.tree.leaves(g_true)]
    for a, t in zip(leaves, true_leaves, strict=True):
        if t.shape != a.shape[1:]:
            raise ValueError(
                f"snr_true_gradient: each leaf of g_true must have the shape of a "
                f"gradient sample, {a.shape[1:]} (g's leaf {a.shape} without the "
                f"sample axis); got {t.shape}"
            )
    dtype = jnp.result_type(*leaves)
    signal = sum(jnp.sum(jnp.square(t.astype(dtype))) for t in true_leaves)
    return signal / _total_variance(leaves)
