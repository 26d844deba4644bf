"""Trainer parts shared by the control (group-PG, PPO) and pathwise trainers: the static
:class:`Trainer` that every ``make_train`` returns, the functional split of an nnx module, and the
masked mean and global norm of their losses and diagnostics."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx


class Module(NamedTuple):
    """A flax nnx module split for functional use: ``merge(params)`` rebuilds it."""

    graphdef: Any
    rest: Any  # non-trainable variables (e.g. the action scale), constant

    def merge(self, params: Any) -> nnx.Module:
        return nnx.merge(self.graphdef, params, self.rest)


def split_module(module: nnx.Module) -> tuple[Module, Any]:
    """``(Module, params)``: trainable ``nnx.Param`` leaves apart from the rest."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return Module(graphdef, rest), params


def global_norm(tree: Any) -> jax.Array:
    """The global L2 norm of a pytree's leaves (a gradient-norm diagnostic)."""
    return optax.tree.norm(tree)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """``sum(x * mask) / max(sum(mask), 1)``: the mean over the valid entries (``mask`` of ``x``'s
    shape, bool or 0/1); 0 when none is valid."""
    mask = mask.astype(x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1)


@dataclasses.dataclass(frozen=True)
class Trainer:
    """What ``make_train`` builds (static; the state is a pytree).

    Attributes:
      init: ``key -> state`` (one seed).
      chunk: ``state -> (state, metrics)``: ``iterations_per_chunk`` iterations (``lax.scan``);
        ``metrics`` leaves have a leading ``[iterations_per_chunk]`` axis.
      policy: ``state -> policy module`` (for evaluation).
      iterations_per_chunk, num_chunks, steps_per_iteration: the budget, in env steps
        ``num_chunks * iterations_per_chunk * steps_per_iteration``.
    """

    init: Callable[[jax.Array], Any]
    chunk: Callable[[Any], tuple[Any, dict[str, jax.Array]]]
    policy: Callable[[Any], nnx.Module]
    iterations_per_chunk: int
    num_chunks: int
    steps_per_iteration: int
    env: Any
    env_params: Any

    def train(self, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        """The whole run for one seed, ``key -> (state, metrics [num_chunks, iterations])``."""
        return jax.lax.scan(lambda s, _: self.chunk(s), self.init(key), length=self.num_chunks)
