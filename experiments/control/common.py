"""Pieces shared by the group-PG and PPO trainers: the env and the policy's split (the budget's
rounding to iterations is ``BudgetConfig.iterations``).
(The parts the pathwise trainer shares too, ``Trainer`` and ``split_module``, are in
``ordergrad_experiments.common.trainer``.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ordergrad_experiments.common.trainer import Module, split_module
from ordergrad_experiments.control import networks
from ordergrad_experiments.control.config import ControlConfig


def make_env(config: ControlConfig) -> tuple[Any, Any]:
    """``ordergrad_envs.make(config.env)`` with the ``name=value`` overrides of
    ``config.env_params``."""
    import ordergrad_envs

    return ordergrad_envs.make(config.env, **ordergrad_envs.parse_params(config.env_params))


def train_env_params(config: ControlConfig, env: Any, env_params: Any) -> Any:
    """The params of the training episodes: the task's (``env_params``, from :func:`make_env`)
    with the overrides of ``config.train_env_params`` on top; ``env_params`` itself when there
    are none.

    Raises:
      ValueError: an override that changes the observation or action space (the policy is
        built on the task's).
    """
    if not config.train_env_params:
        return env_params
    items = (*config.env_params, *config.train_env_params)  # a later name=value wins
    _, params = make_env(dataclasses.replace(config, env_params=items, train_env_params=()))
    task, tilted = networks.space_info(env, env_params), networks.space_info(env, params)
    if task.keys() != tilted.keys() or not all(np.array_equal(task[k], tilted[k]) for k in task):
        raise ValueError(
            f"train_env_params {config.train_env_params} change the observation or action "
            f"space of {config.env}; they may change only the task's numbers"
        )
    return params


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
