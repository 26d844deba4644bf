"""Episodic group policy gradient with any ``og.estimators`` advantage (docs/maths.md §5).

Each iteration samples G groups of N i.i.d. episodes (``ordergrad_envs.rollout.group_rollout``; the
N episodes of a group share their start state where the task allows it), turns each group's
returns ``R [G, N]`` into advantages ``a = estimator(R)`` and updates the policy with

* ``update="lr"``: one step on the LR surrogate
  ``loss = -(1/G) sum_g (c/N) sum_i sg(a_gi) sum_t mask_git log pi(a_git | s_git)``,
  whose negative gradient is the estimator's policy gradient ``(c/N) sum_i a_i grad log p_i``
  averaged over groups; ``c`` is the estimator's gradient scale from its spec (K for OrderGrad
  and MaxPO, 1 for RLOO/GRPO/REINFORCE, N for CVaR-PG and PKPO);
* ``update="clip"``: ``update_epochs`` full-batch steps on the PPO-clipped version of the same
  surrogate (``og.estimators.clipped_surrogate``), the episode's advantage ``(c/N) a_gi`` on each
  of its steps, equal to the LR gradient at ``rho = 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import ordergrad_jax as og
from ordergrad_experiments.common.config import ResolvedEstimator
from ordergrad_experiments.common.trainer import Trainer, global_norm, masked_mean
from ordergrad_experiments.control import common
from ordergrad_experiments.control.config import ControlConfig


def policy_loss(
    policy: Any,
    episodes: Any,
    adv: jax.Array,
    old_logp: jax.Array,
    *,
    scale: float,
    update: str = "lr",
    clip_eps: float = 0.2,
    entropy_coef: float | jax.Array = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """The group-PG surrogate of one batch of episodes and the policy's mean entropy.

    ``"lr"``: ``-(1/G) sum_{g,i} (c/N) sg(a_gi) sum_t mask_git log pi(a_git | s_git)``;
    ``"clip"``: the same with ``log pi`` replaced by PPO's ``min(rho A, clip(rho) A)``,
    ``rho = exp(log pi - old_logp)``, ``A = (c/N) a_gi`` on every step of episode (g, i).

    Args:
      policy: a policy module (``log_prob``, ``entropy``).
      episodes: ``obs [G, N, T, obs_dim]``, ``actions [G, N, T, ...]``, bool ``mask [G, N, T]``.
      adv: advantages ``[G, N]``; old_logp: ``[G, N, T]`` (only read by ``"clip"``).
      scale: the estimator's gradient scale ``c`` (``og.estimators.spec(name).gradient_scale``).

    Returns:
      ``(loss, entropy)`` scalars; ``loss`` includes ``-entropy_coef * entropy``.
    """
    logp = policy.log_prob(episodes.obs, episodes.actions)  # [G, N, T]
    mask = episodes.mask.astype(logp.dtype)
    big_a = jax.lax.stop_gradient((scale / adv.shape[-1]) * adv)[..., None]  # [G, N, 1]
    if update == "lr":
        surrogate = big_a * logp
    else:
        surrogate = og.estimators.clipped_surrogate(logp, old_logp, big_a, clip_eps)
    entropy = masked_mean(policy.entropy(episodes.obs), episodes.mask)
    loss = -jnp.sum(surrogate * mask) / adv.shape[0] - entropy_coef * entropy
    return loss, entropy


def advantage_fn(
    config: ControlConfig, estimator: ResolvedEstimator, num_iterations: int
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``(iteration, rewards [G, N]) -> advantages [G, N]`` of ``estimator``; with
    ``warm_start_frac > 0`` and ``warm_start_schedule="step"`` the estimator with
    ``objective=warm_start_objective`` for iterations ``< S = round(warm_start_frac *
    num_iterations)``, then with its own objective; with ``"linear"``, ``(1 - l) a_warm + l a``
    with ``l = min(iteration / S, 1)``. It needs an estimator whose spec takes an ``objective``
    (ordergrad) and whose gradient scale does not depend on it (ordergrad's is K), so the
    schedule changes only the rank weights: OrderGrad's advantages are linear in the rank
    weights (maths.md §2), so the blend is the advantage of the blended weights
    ``(1 - l) alpha_warm + l alpha``."""
    if not 0.0 <= config.warm_start_frac <= 1.0:
        raise ValueError(f"warm_start_frac must be in [0, 1]; got {config.warm_start_frac}")
    if config.warm_start_schedule not in ("step", "linear"):
        raise ValueError(
            f"warm_start_schedule must be 'step' or 'linear'; got {config.warm_start_schedule!r}"
        )
    if config.warm_start_frac == 0.0:
        return lambda iteration, rewards: estimator.advantages(rewards)
    spec = og.estimators.spec(estimator.name)
    if "objective" not in spec.params:
        raise ValueError(
            f"warm_start_frac needs estimator=ordergrad or another estimator that takes an "
            f"objective (a schedule of rank weights); got {config.estimator.name!r}"
        )
    warm_params = {**estimator.params, "objective": config.warm_start_objective}
    warm = og.estimators.get(spec.name, **warm_params)
    if spec.gradient_scale(config.groups.group_size, **warm_params) != estimator.scale:
        raise ValueError(
            f"warm_start_frac: {spec.name}'s gradient scale changes with its objective, so a "
            f"warm start would change more than the rank weights"
        )
    switch = round(config.warm_start_frac * num_iterations)
    linear = config.warm_start_schedule == "linear"

    def advantages(iteration: jax.Array, rewards: jax.Array) -> jax.Array:
        if linear:
            lam = jnp.clip(iteration / max(switch, 1), 0.0, 1.0).astype(rewards.dtype)
            return (1 - lam) * warm(rewards) + lam * estimator.advantages(rewards)
        return jnp.where(iteration < switch, warm(rewards), estimator.advantages(rewards))

    return advantages


def entropy_coef_fn(
    config: ControlConfig, num_iterations: int
) -> Callable[[jax.Array], float | jax.Array]:
    """``iteration -> entropy coefficient`` of ``config.entropy_schedule``: ``"constant"``
    gives ``entropy_coef`` (a Python float, so the default run's computation is unchanged);
    ``"linear"`` gives ``entropy_coef * (1 - iteration / (num_iterations - 1))``, from
    ``entropy_coef`` at the first iteration to 0 at the last."""
    if config.entropy_schedule == "constant":
        return lambda iteration: config.entropy_coef
    if config.entropy_schedule != "linear":
        raise ValueError(
            f"entropy_schedule must be 'constant' or 'linear'; got {config.entropy_schedule!r}"
        )
    last = max(num_iterations - 1, 1)

    def coef(iteration: jax.Array) -> jax.Array:
        frac = jnp.clip(iteration / last, 0.0, 1.0)
        return config.entropy_coef * (1.0 - frac)

    return coef


class GroupPGState(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array
    iteration: jax.Array


def make_group_pg(config: ControlConfig) -> Trainer:
    """The group-PG :class:`~ordergrad_experiments.common.trainer.Trainer` of ``config``."""
    from ordergrad_envs.rollout import group_rollout

    if config.update not in ("lr", "clip"):
        raise ValueError(f"update must be 'lr' or 'clip'; got {config.update!r}")
    sizes = {**vars(config.groups), "num_steps": config.num_steps}
    for name in ("num_groups", "group_size", "num_steps"):
        if sizes[name] < 1:
            raise ValueError(f"{name} must be >= 1; got {sizes[name]}")
    if config.update_epochs < 1:
        raise ValueError(f"update_epochs must be >= 1; got {config.update_epochs}")
    env, env_params = common.make_env(config)
    train_params = common.train_env_params(config, env, env_params)
    if config.train_reward not in ("return", "success"):
        raise ValueError(f"train_reward must be 'return' or 'success'; got {config.train_reward!r}")
    if config.train_reward == "success" and config.success_return is None:
        raise ValueError("train_reward='success' needs success_return (the success threshold)")
    estimator = config.estimator.resolve(config.groups.group_size)
    if config.estimator.spec().binary_rewards and config.train_reward != "success":
        raise ValueError(
            f"{estimator.name} needs binary rewards: set train_reward=success and success_return"
        )

    def train_rewards(returns: jax.Array) -> jax.Array:
        if config.train_reward == "success":
            return (returns >= config.success_return).astype(returns.dtype)
        return returns

    module, init_params = common.policy_module(config, env, env_params)
    G, N, T = config.groups.num_groups, config.groups.group_size, config.num_steps
    steps = G * N * T
    per_chunk, num_chunks = config.budget.iterations(steps)
    epochs = config.update_epochs if config.update == "clip" else 1
    tx = config.optim.make(per_chunk * num_chunks * epochs)
    advantages = advantage_fn(config, estimator, per_chunk * num_chunks)
    entropy_coef = entropy_coef_fn(config, per_chunk * num_chunks)

    def init(key: jax.Array) -> GroupPGState:
        k_params, k_train = jax.random.split(key)
        params = init_params(k_params)
        return GroupPGState(params, tx.init(params), k_train, jnp.zeros((), jnp.int32))

    def loss_fn(params, old_logp, episodes, adv, ent_coef):
        return policy_loss(
            module.merge(params),
            episodes,
            adv,
            old_logp,
            scale=estimator.scale,
            update=config.update,
            clip_eps=config.clip_eps,
            entropy_coef=ent_coef,
        )

    def iteration(state: GroupPGState, _):
        key, k_roll = jax.random.split(state.key)
        policy = module.merge(state.params)
        episodes = group_rollout(env, train_params, policy.sample, k_roll, G, N, T)
        returns = episodes.returns
        adv = advantages(state.iteration, train_rewards(returns))
        old_logp = jax.lax.stop_gradient(policy.log_prob(episodes.obs, episodes.actions))
        ent_coef = entropy_coef(state.iteration)

        def epoch(carry, _):
            params, opt_state = carry
            (loss, entropy), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, old_logp, episodes, adv, ent_coef
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (
                loss,
                entropy,
                global_norm(grads),
            )

        (params, opt_state), (loss, entropy, grad_norm) = jax.lax.scan(
            epoch, (state.params, state.opt_state), length=epochs
        )
        flat = returns.reshape(-1)
        metrics = {
            "return_mean": jnp.mean(flat),
            "return_cvar": og.metrics.cvar(flat, config.cvar_alpha),
            "return_min": jnp.min(flat),
            "return_max": jnp.max(flat),
            "episode_length": jnp.mean(episodes.length.astype(flat.dtype)),
            "adv_std": jnp.std(adv),
            "zero_adv_frac": jnp.mean(adv == 0),
            "entropy": entropy[0],
            "grad_norm": grad_norm[0],
            "loss": loss[0],
        }
        new = GroupPGState(params, opt_state, key, state.iteration + 1)
        return new, metrics

    def chunk(state: GroupPGState):
        return jax.lax.scan(iteration, state, length=per_chunk)

    return Trainer(
        init=init,
        chunk=chunk,
        policy=lambda state: module.merge(state.params),
        iterations_per_chunk=per_chunk,
        num_chunks=num_chunks,
        steps_per_iteration=steps,
        env=env,
        env_params=env_params,
    )
