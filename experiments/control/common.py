"""Pieces shared by the group-PG and PPO trainers: the env, the policy's split, the budget.
(The parts the pathwise trainer shares too, ``Trainer`` and ``split_module``, are in
``experiments.common.trainer``.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from experiments.common.trainer import Module, split_module
from experiments.control import networks
from experiments.control.config import ControlConfig


def make_env(config: ControlConfig) -> tuple[Any, Any]:
    """``envs.make(config.env)`` with the ``name=value`` overrides of ``config.env_params``."""
    import envs

    return envs.make(config.env, **envs.parse_params(config.env_params))


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
