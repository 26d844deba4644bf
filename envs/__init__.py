"""Control tasks for ordergrad-jax: gymnax's classic tasks and our risk-sensitive ones.

``make(name, **params) -> (env, env_params)`` has the shape of ``gymnax.make``: gymnax's own tasks
pass through (``CartPole-v1``, ``Acrobot-v1``, ``Pendulum-v1``, ``MountainCarContinuous-v0``, any
name of ``gymnax.registered_envs``), our tasks are added under their own names (``RiskyGrid-v0``,
``DisturbedCartPole-v0``, ``GuardedMaze-v0``, ``DeepHedging-v0``; see ``envs/README.md``), and
``**params`` override fields of the task's ``EnvParams``. ``register(name, factory)`` adds a task
whose ``factory(**params)`` returns ``(env, env_params)`` (the brax tasks register this way, lazily:
importing ``ordergrad_envs`` imports no brax). ``ordergrad_envs.rollout.group_rollout`` samples
groups of episodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import gymnax

Factory = Callable[..., tuple[Any, Any]]
"""``factory(**params) -> (env, env_params)``."""

_REGISTRY: dict[str, Factory] = {}


def with_params(env: Any, env_params: Any, **params: Any) -> tuple[Any, Any]:
    """``(env, env_params.replace(**params))``, checking that each name is a field.

    Raises:
      ValueError: a name is not a field of ``env_params`` (the message lists the fields).
    """
    fields = [f.name for f in dataclasses.fields(env_params)]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for {getattr(env, 'name', type(env).__name__)}; "
            f"allowed: {fields}"
        )
    return env, env_params.replace(**params)


def parse_params(items: Sequence[str]) -> dict[str, int | float | str]:
    """``("slip_prob=0.2", "backend=spring")`` -> ``{"slip_prob": 0.2, "backend": "spring"}``:
    the ``name=value`` form of ``make``'s params (config fields, command lines); each value is
    an int, else a float, else the string.

    Raises:
      ValueError: an item without ``=``.
    """
    params: dict[str, int | float | str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"env params are name=value items; got {item!r}")
        params[name.strip()] = _parse_value(value.strip())
    return params


def _parse_value(value: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _class_factory(cls: type) -> Factory:
    def factory(**params: Any) -> tuple[Any, Any]:
        env = cls()
        return with_params(env, env.default_params, **params)

    return factory


def register(name: str, factory: Factory) -> None:
    """Registers ``factory(**params) -> (env, env_params)`` under ``name``.

    Raises:
      TypeError: ``name`` is not a non-empty string or ``factory`` is not callable.
      ValueError: ``name`` is already registered (here or in gymnax).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string; got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable; got {factory!r}")
    if name in _REGISTRY or name in gymnax.registered_envs:
        raise ValueError(f"{name!r} is already registered")
    _REGISTRY[name] = factory


def registered() -> list[str]:
    """Every name ``make`` accepts: ours first, then gymnax's."""
    return list(_REGISTRY) + [n for n in gymnax.registered_envs if n not in _REGISTRY]


def make(name: str, **params: Any) -> tuple[Any, Any]:
    """Builds task ``name``; ``**params`` override fields of its ``EnvParams``.

    Returns:
      ``(env, env_params)``: a gymnax ``Environment`` and its params.

    Raises:
      ValueError: unknown ``name`` (the message lists ``registered()``) or an unknown parameter
        (the message lists the allowed fields).
    """
    if name in _REGISTRY:
        return _REGISTRY[name](**params)
    if name in gymnax.registered_envs:
        env, env_params = gymnax.make(name)
        return with_params(env, env_params, **params)
    raise ValueError(f"unknown env {name!r}; registered: {registered()}")


def _register_brax() -> None:
    """``brax/<task>`` for brax's tasks (``envs/brax_env.py``; brax is imported on ``make``)."""
    from ordergrad_envs.brax_env import register_brax_tasks

    register_brax_tasks(register)


_register_brax()


def _register_tasks() -> None:
    from ordergrad_envs.disturbed import DisturbedCartPole
    from ordergrad_envs.guarded_maze import GuardedMaze
    from ordergrad_envs.hedging import DeepHedging
    from ordergrad_envs.risky_grid import RiskyGrid

    register("RiskyGrid-v0", _class_factory(RiskyGrid))
    register("DisturbedCartPole-v0", _class_factory(DisturbedCartPole))
    register("GuardedMaze-v0", _class_factory(GuardedMaze))
    register("DeepHedging-v0", _class_factory(DeepHedging))


_register_tasks()

__all__ = ["Factory", "make", "parse_params", "register", "registered", "with_params"]
