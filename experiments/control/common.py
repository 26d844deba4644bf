"""Pieces shared by the group-PG and PPO trainers: the env and the policy's split (the budget's
rounding to iterations is ``BudgetConfig.iterations``).
(The parts the pathwise trainer shares too, ``Trainer`` and ``split_module``, are in
``ordergrad_experiments.common.trainer``.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from ordergrad_experiments.common.trainer import Module, split_module
from ordergrad_experiments.control import networks
from ordergrad_experiments.control.config import ControlConfig


def make_env(config: ControlConfig) -> tuple[Any, Any]:
    """``ordergrad_envs.make(config.env)`` with the ``name=value`` overrides of
    ``config.env_params``."""
    import ordergrad_envs

    return ordergrad_envs.make(config.env, **ordergrad_envs.parse_params(config.env_params))


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
