"""Pieces shared by the group-PG and PPO trainers: the env, the policy split, the budget."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from experiments.control import networks
from experiments.control.config import ControlConfig


def make_env(config: ControlConfig) -> tuple[Any, Any]:
    """``envs.make(config.env)`` with the ``name=value`` overrides of ``config.env_params``."""
    import envs

    return envs.make(config.env, **envs.parse_params(config.env_params))


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
    return optax.tree.norm(tree)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
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


def iterations(config: ControlConfig, steps_per_iteration: int) -> tuple[int, int]:
    """``(iterations_per_chunk, num_chunks)`` covering at least one iteration per chunk."""
    if config.num_chunks < 1:
        raise ValueError(f"num_chunks must be >= 1; got {config.num_chunks}")
    total = max(config.total_env_steps // steps_per_iteration, config.num_chunks)
    return max(total // config.num_chunks, 1), config.num_chunks


def policy_module(config: ControlConfig, env: Any, env_params: Any) -> tuple[Module, Callable]:
    """The policy's static part and ``key -> params``."""
    info = networks.space_info(env, env_params)
    module, _ = split_module(
        networks.make_policy(info, config.hidden, jax.random.key(0), config.init_log_std)
    )

    def init_params(key: jax.Array) -> Any:
        policy = networks.make_policy(info, config.hidden, key, config.init_log_std)
        return split_module(policy)[1]

    return module, init_params
