"""Episodic group policy gradient with any ``og.estimators`` advantage (docs/maths.md §5).

Each iteration samples G groups of N i.i.d. episodes (``envs.rollout.group_rollout``; the N
episodes of a group share their start state where the task allows it), turns each group's
returns ``R [G, N]`` into advantages ``a = estimator(R)`` and updates the policy with

* ``update="lr"``: one step on the LR surrogate
  ``loss = -(1/G) sum_g c sum_i sg(a_gi) sum_t mask_git log pi(a_git | s_git)``,
  whose negative gradient is the estimator's policy gradient averaged over groups; ``c`` is the
  estimator's gradient scale (K/N for OrderGrad and MaxPO, 1/N for RLOO/GRPO/REINFORCE, 1 for
  CVaR-PG and PKPO, k/(N-k) for Chen's pass@k), see :func:`gradient_scale`;
* ``update="clip"``: ``update_epochs`` full-batch steps on the PPO-clipped version of the same
  surrogate, the episode's advantage ``c a_gi`` on each of its steps,
  ``-(1/G) sum mask min(rho A, clip(rho, 1 -+ eps) A)``, equal to the LR gradient at ``rho = 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import ordergrad_jax as og
from experiments.control import common
from experiments.control.config import ControlConfig

_PARAMS = {
    "ordergrad": ("k", "objective"),
    "pkpo": ("k",),
    "maxpo": ("k",),
    "passk_chen": ("k",),
    "cvar_pg": ("alpha",),
}


def canonical_estimator(name: str) -> str:
    """The registry name of an estimator (``og.estimators.get`` checks it)."""
    fn = og.estimators.get(name, **_probe_params(name))
    return fn.__name__


def _probe_params(name: str) -> dict[str, Any]:
    key = str(name).strip().lower().replace("-", "_").replace(".", "_")
    key = {"cvar": "cvar_pg", "passk": "passk_chen", "drgrpo": "dr_grpo"}.get(key, key)
    probe = {"k": 2, "objective": "Mean", "alpha": 0.5}
    return {p: probe[p] for p in _PARAMS.get(key, ())}


def estimator_params(config: ControlConfig) -> dict[str, Any]:
    """The ``og.estimators.get`` parameters of ``config.estimator`` taken from the config."""
    key = canonical_estimator(config.estimator)
    values = {"k": config.k, "objective": config.objective, "alpha": config.alpha}
    return {p: values[p] for p in _PARAMS.get(key, ())}


def gradient_scale(config: ControlConfig) -> float:
    """``c`` with ``g = c sum_i a_i grad log p_i`` the estimator's gradient (its docstring)."""
    key = canonical_estimator(config.estimator)
    n, k = config.group_size, config.k
    if key in ("ordergrad", "maxpo"):
        return k / n
    if key in ("cvar_pg", "pkpo"):
        return 1.0
    if key == "passk_chen":
        return k / (n - k)
    return 1.0 / n


def policy_loss(
    policy: Any,
    episodes: Any,
    adv: jax.Array,
    old_logp: jax.Array,
    *,
    scale: float,
    update: str = "lr",
    clip_eps: float = 0.2,
    entropy_coef: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """The group-PG surrogate of one batch of episodes and the policy's mean entropy.

    ``"lr"``: ``-(1/G) sum_{g,i} c sg(a_gi) sum_t mask_git log pi(a_git | s_git)``;
    ``"clip"``: the same with ``log pi`` replaced by PPO's ``min(rho A, clip(rho) A)``,
    ``rho = exp(log pi - old_logp)``, ``A = c a_gi`` on every step of episode (g, i).

    Args:
      policy: a policy module (``log_prob``, ``entropy``).
      episodes: ``obs [G, N, T, obs_dim]``, ``actions [G, N, T, ...]``, bool ``mask [G, N, T]``.
      adv: advantages ``[G, N]``; old_logp: ``[G, N, T]`` (only read by ``"clip"``).
      scale: the estimator's gradient scale ``c`` (:func:`gradient_scale`).

    Returns:
      ``(loss, entropy)`` scalars; ``loss`` includes ``-entropy_coef * entropy``.
    """
    logp = policy.log_prob(episodes.obs, episodes.actions)  # [G, N, T]
    mask = episodes.mask.astype(logp.dtype)
    big_a = jax.lax.stop_gradient(scale * adv)[..., None]  # [G, N, 1]
    if update == "lr":
        surrogate = big_a * logp
    else:
        ratio = jnp.exp(logp - old_logp)
        clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps)
        surrogate = jnp.minimum(ratio * big_a, clipped * big_a)
    entropy = common.masked_mean(policy.entropy(episodes.obs), episodes.mask)
    loss = -jnp.sum(surrogate * mask) / adv.shape[0] - entropy_coef * entropy
    return loss, entropy


def advantage_fn(
    config: ControlConfig, num_iterations: int
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``(iteration, rewards [G, N]) -> advantages [G, N]`` of ``config.estimator``; with
    ``warm_start_frac > 0`` (ordergrad only) the OrderGrad advantage of ``warm_start_objective``
    for iterations ``< round(warm_start_frac * num_iterations)``, then of ``objective``. Both
    have the gradient scale K/N, so the switch changes only the rank weights."""
    estimator = og.estimators.get(config.estimator, **estimator_params(config))
    estimator(jnp.zeros((config.group_size,)))  # group-size errors here, not inside jit
    if not 0.0 <= config.warm_start_frac <= 1.0:
        raise ValueError(f"warm_start_frac must be in [0, 1]; got {config.warm_start_frac}")
    if config.warm_start_frac == 0.0:
        return lambda iteration, rewards: estimator(rewards)
    if canonical_estimator(config.estimator) != "ordergrad":
        raise ValueError(
            f"warm_start_frac needs estimator=ordergrad (a schedule of rank weights); "
            f"got {config.estimator!r}"
        )
    warm = og.estimators.get("ordergrad", k=config.k, objective=config.warm_start_objective)
    switch = round(config.warm_start_frac * num_iterations)

    def advantages(iteration: jax.Array, rewards: jax.Array) -> jax.Array:
        return jnp.where(iteration < switch, warm(rewards), estimator(rewards))

    return advantages


class GroupPGState(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array
    iteration: jax.Array


def make_group_pg(config: ControlConfig) -> common.Trainer:
    """The group-PG :class:`~experiments.control.common.Trainer` of ``config``."""
    from envs.rollout import group_rollout

    if config.update not in ("lr", "clip"):
        raise ValueError(f"update must be 'lr' or 'clip'; got {config.update!r}")
    for name in ("num_groups", "group_size", "num_steps", "update_epochs"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1; got {getattr(config, name)}")
    env, env_params = common.make_env(config)
    if config.train_reward not in ("return", "success"):
        raise ValueError(f"train_reward must be 'return' or 'success'; got {config.train_reward!r}")
    if config.train_reward == "success" and config.success_return is None:
        raise ValueError("train_reward='success' needs success_return (the success threshold)")
    if canonical_estimator(config.estimator) == "passk_chen" and config.train_reward != "success":
        raise ValueError(
            "passk_chen needs binary rewards: set train_reward=success and success_return"
        )

    def train_rewards(returns: jax.Array) -> jax.Array:
        if config.train_reward == "success":
            return (returns >= config.success_return).astype(returns.dtype)
        return returns

    scale = gradient_scale(config)
    module, init_params = common.policy_module(config, env, env_params)
    G, N, T = config.num_groups, config.group_size, config.num_steps
    steps = G * N * T
    per_chunk, num_chunks = common.iterations(config, steps)
    epochs = config.update_epochs if config.update == "clip" else 1
    tx = common.optimizer(config, per_chunk * num_chunks * epochs)
    advantages = advantage_fn(config, per_chunk * num_chunks)

    def init(key: jax.Array) -> GroupPGState:
        k_params, k_train = jax.random.split(key)
        params = init_params(k_params)
        return GroupPGState(params, tx.init(params), k_train, jnp.zeros((), jnp.int32))

    def loss_fn(params, old_logp, episodes, adv):
        return policy_loss(
            module.merge(params),
            episodes,
            adv,
            old_logp,
            scale=scale,
            update=config.update,
            clip_eps=config.clip_eps,
            entropy_coef=config.entropy_coef,
        )

    def iteration(state: GroupPGState, _):
        key, k_roll = jax.random.split(state.key)
        policy = module.merge(state.params)
        episodes = group_rollout(env, env_params, policy.sample, k_roll, G, N, T)
        returns = episodes.returns
        adv = advantages(state.iteration, train_rewards(returns))
        old_logp = jax.lax.stop_gradient(policy.log_prob(episodes.obs, episodes.actions))

        def epoch(carry, _):
            params, opt_state = carry
            (loss, entropy), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, old_logp, episodes, adv
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (
                loss,
                entropy,
                common.global_norm(grads),
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

    return common.Trainer(
        init=init,
        chunk=chunk,
        policy=lambda state: module.merge(state.params),
        iterations_per_chunk=per_chunk,
        num_chunks=num_chunks,
        steps_per_iteration=steps,
        env=env,
        env_params=env_params,
    )
