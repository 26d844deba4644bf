"""PPO with GAE, PureJaxRL style: ``num_envs`` auto-resetting envs x ``ppo_steps`` per iteration,
``update_epochs`` epochs of ``num_minibatches`` shuffled minibatches, clipped policy loss, value
loss, entropy bonus, per-minibatch advantage normalisation; same policy networks as group-PG and
a separate value MLP. Truncated episodes bootstrap from the value of their final observation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import ordergrad_jax as og
from ordergrad_experiments.common.trainer import Trainer, split_module
from ordergrad_experiments.control import common, networks
from ordergrad_experiments.control.config import ControlConfig


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates along the leading (time) axis.

    ``delta_t = r_t + gamma (1 - term_t) V(s'_t) - V(s_t)`` with ``s'_t`` the observation after
    step t (before any reset), and ``A_t = delta_t + gamma lam (1 - done_t) A_{t+1}``, cut at the
    end of the rollout (``A_T = 0``).

    Args:
      rewards, values, next_values: ``[T, ...]``.
      terminated: bool ``[T, ...]``, the episode ended in a terminal state (no bootstrap).
      done: bool ``[T, ...]``, terminated or truncated (the advantage chain is cut).
      gamma, lam: discount and GAE lambda.

    Returns:
      ``(advantages, value targets = advantages + values)``, ``[T, ...]``.

    References:
      Schulman et al., "High-Dimensional Continuous Control Using GAE", ICLR 2016, eq. (16).
    """
    dtype = values.dtype
    delta = rewards + gamma * (1 - terminated.astype(dtype)) * next_values - values
    keep = gamma * lam * (1 - done.astype(dtype))

    def back(carry, xs):
        d, k = xs
        a = d + k * carry
        return a, a

    _, adv = jax.lax.scan(back, jnp.zeros_like(values[0]), (delta, keep), reverse=True)
    return adv, adv + values


class PPOState(NamedTuple):
    params: Any  # {"policy": ..., "value": ...}
    opt_state: Any
    key: jax.Array
    iteration: jax.Array
    env_state: Any
    obs: jax.Array
    episode_return: jax.Array  # [num_envs], running return of the current episodes


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    logp: jax.Array
    value: jax.Array
    next_value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array


def make_ppo(config: ControlConfig) -> Trainer:
    """The PPO :class:`~ordergrad_experiments.common.trainer.Trainer` of ``config``."""
    for name in ("num_envs", "ppo_steps", "update_epochs", "num_minibatches"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1; got {getattr(config, name)}")
    if config.entropy_schedule != "constant":
        raise ValueError(
            f"entropy_schedule={config.entropy_schedule!r} is a group_pg option; PPO takes a "
            "constant entropy_coef"
        )
    batch = config.num_envs * config.ppo_steps
    if batch % config.num_minibatches:
        raise ValueError(
            f"num_envs * ppo_steps = {batch} must be a multiple of num_minibatches "
            f"({config.num_minibatches})"
        )
    env, env_params = common.make_env(config)
    train_params = common.train_env_params(config, env, env_params)
    info = networks.space_info(env, env_params)
    policy_mod, init_policy = common.policy_module(config, env, env_params)
    value_mod, _ = split_module(
        networks.ValueNet(info["obs_dim"], config.hidden, rngs=networks.nnx.Rngs(0))
    )
    E, T = config.num_envs, config.ppo_steps
    per_chunk, num_chunks = config.budget.iterations(batch)
    tx = config.optim.make(per_chunk * num_chunks * config.update_epochs * config.num_minibatches)
    mb_size = batch // config.num_minibatches
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def init(key: jax.Array) -> PPOState:
        k_pi, k_v, k_env, k_train = jax.random.split(key, 4)
        value = networks.ValueNet(info["obs_dim"], config.hidden, rngs=networks.nnx.Rngs(k_v))
        params = {"policy": init_policy(k_pi), "value": split_module(value)[1]}
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, E), train_params
        )
        return PPOState(
            params,
            tx.init(params),
            k_train,
            jnp.zeros((), jnp.int32),
            env_state,
            obs,
            jnp.zeros((E,), jnp.float32),
        )

    def loss_fn(params, mb: Transition, adv, target):
        policy = policy_mod.merge(params["policy"])
        value = value_mod.merge(params["value"])(mb.obs)
        logp = policy.log_prob(mb.obs, mb.action)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = -jnp.mean(og.estimators.clipped_surrogate(logp, mb.logp, adv, config.clip_eps))
        v_loss = 0.5 * jnp.mean((value - target) ** 2)
        entropy = jnp.mean(policy.entropy(mb.obs))
        loss = pg_loss + config.vf_coef * v_loss - config.entropy_coef * entropy
        approx_kl = jnp.mean(mb.logp - logp)
        return loss, (v_loss, entropy, approx_kl)

    def iteration(state: PPOState, _):
        policy = policy_mod.merge(state.params["policy"])
        value_net = value_mod.merge(state.params["value"])

        def env_step(carry, key):
            env_state, obs, ep_ret = carry
            k_act, k_env = jax.random.split(key)
            action, logp = jax.vmap(policy.sample)(jax.random.split(k_act, E), obs)
            obs2, env_state, reward, term, trunc, step_info = step_env(
                jax.random.split(k_env, E), env_state, action, train_params
            )
            reward = jnp.reshape(reward, (E,)).astype(jnp.float32)
            done = jnp.logical_or(term, trunc)
            ep_ret = ep_ret + reward
            tr = Transition(
                obs,
                action,
                logp,
                value_net(obs),
                value_net(step_info["final_observation"]),
                reward,
                term,
                done,
            )
            finished = (jnp.where(done, ep_ret, 0.0), done)
            return (env_state, obs2, jnp.where(done, 0.0, ep_ret)), (tr, finished)

        key, k_roll, k_perm = jax.random.split(state.key, 3)
        carry = (state.env_state, state.obs, state.episode_return)
        (env_state, obs, ep_ret), (traj, (fin_ret, fin)) = jax.lax.scan(
            env_step, carry, jax.random.split(k_roll, T)
        )
        adv, target = gae(
            traj.reward,
            traj.value,
            traj.next_value,
            traj.terminated,
            traj.done,
            config.gamma,
            config.gae_lambda,
        )
        flat = jax.tree.map(lambda x: x.reshape(batch, *x.shape[2:]), (traj, adv, target))

        def epoch(carry, key):
            def minibatch(carry, idx):
                params, opt_state = carry
                mb, mb_adv, mb_target = jax.tree.map(lambda x: x[idx], flat)
                (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                    params, mb, mb_adv, mb_target
                )
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), (loss, *aux)

            perm = jax.random.permutation(key, batch).reshape(config.num_minibatches, mb_size)
            return jax.lax.scan(minibatch, carry, perm)

        (params, opt_state), (loss, v_loss, entropy, kl) = jax.lax.scan(
            epoch,
            (state.params, state.opt_state),
            jax.random.split(k_perm, config.update_epochs),
        )
        count = jnp.sum(fin)
        metrics = {
            "return_mean": jnp.where(count > 0, jnp.sum(fin_ret) / jnp.maximum(count, 1), jnp.nan),
            "episodes": count,
            "value_loss": v_loss.mean(),
            "entropy": entropy.mean(),
            "approx_kl": kl.mean(),
            "loss": loss.mean(),
        }
        new = PPOState(params, opt_state, key, state.iteration + 1, env_state, obs, ep_ret)
        return new, metrics

    def chunk(state: PPOState):
        return jax.lax.scan(iteration, state, length=per_chunk)

    return Trainer(
        init=init,
        chunk=chunk,
        policy=lambda state: policy_mod.merge(state.params["policy"]),
        iterations_per_chunk=per_chunk,
        num_chunks=num_chunks,
        steps_per_iteration=batch,
        env=env,
        env_params=env_params,
    )
