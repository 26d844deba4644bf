"""Group rollouts: G groups x N episodes of a gymnax task, one episode per slot, with masks.

``group_rollout`` runs ``num_steps`` steps of every slot under ``lax.scan`` (vmapped over the
G x N slots) and keeps each slot's FIRST episode: the steps after its first ``done``
(terminated or truncated) are masked out. gymnax auto-resets a finished episode; what follows
the reset is computed (static shapes) and ignored.

Start states: with ``share_start=True`` the N episodes of a group are reset with the same key, so
they start from the same state (for tasks with a random start; a task with a fixed start, such
as ``RiskyGrid-v0``, is the same either way); they differ by their step and policy keys, so they
are i.i.d. given the start. With ``share_start=False`` every episode has its own reset key, so
the N returns of a group are i.i.d. draws of the task's full return distribution. OrderGrad's
unbiasedness needs the N returns of a group i.i.d. given whatever the group shares; both modes
give that (see ``docs/maths.md``, the estimator section).

Gradients (``differentiable``, ``truncate``): by default the rollout is differentiable wherever
the env and the policy are, so with ``env.with_transition_gradients()`` (gymnax's Pendulum,
MountainCarContinuous; the brax tasks of ``ordergrad_envs.brax_env``) and a reparameterised policy,
``jax.grad`` of a function of ``returns`` is the pathwise (RP) gradient (masking is a ``where``, so
the masked steps contribute nothing). ``truncate=k`` stops the state's gradient every ``k`` steps
(truncated backpropagation through time, as analytic policy gradients do on long horizons).
``differentiable=False`` stops the gradient at the actions the env receives and at the state, so
``returns`` are constants and the only path from the policy's parameters is its ``logp``: the
likelihood-ratio (LR) setting, from the same rollout code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Policy = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
"""``policy(key, obs) -> (action, logp)`` for ONE observation; ``group_rollout`` vmaps it."""


class Episodes(NamedTuple):
    """G x N episodes of length at most T = ``num_steps`` (leading dims ``[G, N]``).

    Attributes:
      obs: ``[G, N, T, *obs_shape]``, the observation at which ``actions[..., t]`` was taken.
      actions: ``[G, N, T, *act_shape]``.
      rewards: ``[G, N, T]``, 0 on masked steps.
      logp: ``[G, N, T]``, ``log pi(a_t | s_t)`` as returned by the policy, 0 on masked steps.
      mask: ``[G, N, T]`` bool, True on the episode's steps (up to and including its last).
      returns: ``[G, N]``, the undiscounted sum of the episode's rewards.
      sum_logp: ``[G, N]``, the sum of ``logp`` over the episode's steps.
      length: ``[G, N]`` int32, the number of steps of the episode (``mask.sum(-1)``).
      terminated: ``[G, N]`` bool, True if the episode ended by termination; False if it was
        truncated (by the env's time limit or by ``num_steps``).
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    logp: jax.Array
    mask: jax.Array
    returns: jax.Array
    sum_logp: jax.Array
    length: jax.Array
    terminated: jax.Array


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a Python int (a static size); got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return value


def group_rollout(
    env: Any,
    env_params: Any,
    policy: Policy,
    key: jax.Array,
    num_groups: int,
    group_size: int,
    num_steps: int,
    share_start: bool = True,
    *,
    differentiable: bool = True,
    truncate: int = 0,
) -> Episodes:
    """Samples ``num_groups`` groups of ``group_size`` episodes of at most ``num_steps`` steps.

    Pure and jittable (the three sizes and ``share_start`` are static); the same ``key`` gives
    the same episodes. Keys: ``key`` is split into the reset keys (one per group with
    ``share_start``, else one per episode) and one key per episode, which is split per step into
    the policy key and the env-step key.

    Args:
      env: a gymnax ``Environment`` (``reset(key, params)``, ``step(key, state, action, params)``
        with the gymnax 1.0 six-tuple), e.g. from ``ordergrad_envs.make``.
      env_params: its params.
      policy: ``policy(key, obs) -> (action, logp)`` for one observation (vmapped here).
      key: a typed PRNG key (``jax.random.key``) or a raw uint32 key.
      num_groups: G.
      group_size: N, episodes per group.
      num_steps: T, steps simulated per episode; an episode still running after T steps is
        truncated (``terminated=False``). Use the env's ``max_steps_in_episode`` for full
        episodes.
      share_start: whether the N episodes of a group start from the same reset state.
      differentiable: whether gradients flow through the env's dynamics (the actions it receives
        and the state it carries); ``False`` stops them there (the LR setting: only ``logp``
        depends on the policy's parameters).
      truncate: with ``differentiable``, stop the gradient of the observation and state every
        ``truncate`` steps (after steps ``truncate, 2 * truncate, ...``); ``0``: never.

    Returns:
      :class:`Episodes` with leading dims ``[G, N]``.
    """
    G = _check_size("num_groups", num_groups)
    N = _check_size("group_size", group_size)
    T = _check_size("num_steps", num_steps)
    if not isinstance(share_start, bool):
        raise TypeError(f"share_start must be a bool; got {share_start!r}")
    if not isinstance(differentiable, bool):
        raise TypeError(f"differentiable must be a bool; got {differentiable!r}")
    if isinstance(truncate, bool) or not isinstance(truncate, int) or truncate < 0:
        raise ValueError(f"truncate must be a Python int >= 0 (a static size); got {truncate!r}")

    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)  # a raw uint32 key
    k_reset, k_steps = jax.random.split(key)
    if share_start:
        reset_keys = jnp.repeat(jax.random.split(k_reset, G)[:, None], N, axis=1)
    else:
        reset_keys = jax.random.split(k_reset, (G, N))
    episode_keys = jax.random.split(k_steps, (G, N))

    def episode(reset_key, episode_key):
        obs0, state0 = env.reset(reset_key, env_params)

        def step(carry, inputs):
            obs, state, alive = carry
            t, step_key = inputs
            if not differentiable:
                obs, state = jax.lax.stop_gradient((obs, state))
            elif truncate:  # t is unbatched: the cond stays a branch under vmap
                obs, state = jax.lax.cond(
                    (t > 0) & (t % truncate == 0), jax.lax.stop_gradient, lambda x: x, (obs, state)
                )
            k_policy, k_env = jax.random.split(step_key)
            action, logp = policy(k_policy, obs)
            if not differentiable:
                action = jax.lax.stop_gradient(action)
            next_obs, next_state, reward, terminated, truncated, _ = env.step(
                k_env, state, action, env_params
            )
            done = jnp.logical_or(terminated, truncated)
            record = (
                obs,
                action,
                jnp.where(alive, reward, jnp.zeros_like(reward)),
                jnp.where(alive, logp, jnp.zeros_like(logp)),
                alive,
                jnp.logical_and(alive, jnp.asarray(terminated, bool)),
            )
            return (next_obs, next_state, jnp.logical_and(alive, ~done)), record

        _, (obs, actions, rewards, logp, mask, term) = jax.lax.scan(
            step,
            (obs0, state0, jnp.array(True)),
            (jnp.arange(T), jax.random.split(episode_key, T)),
        )
        return obs, actions, rewards, logp, mask, jnp.any(term)

    flat = jax.vmap(episode)(reset_keys.reshape(G * N), episode_keys.reshape(G * N))
    obs, actions, rewards, logp, mask, terminated = jax.tree.map(
        lambda x: x.reshape((G, N, *x.shape[1:])), flat
    )
    return Episodes(
        obs=obs,
        actions=actions,
        rewards=rewards,
        logp=logp,
        mask=mask,
        returns=rewards.sum(-1),
        sum_logp=logp.sum(-1),
        length=mask.sum(-1, dtype=jnp.int32),
        terminated=terminated,
    )
