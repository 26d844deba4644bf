"""The pathwise trainer: ``make_train(config) -> Trainer`` (PureJaxRL style).

For each of G start states, N rollouts of ``num_steps`` steps with different reparameterised action
noise (:mod:`ordergrad_experiments.pathwise.networks`) and the environment's own reparameterised
noise (e.g. the pushes of ``ordergrad_envs.brax_env``), all from one
``ordergrad_envs.rollout.group_rollout``. The return ``R_i`` of each rollout is a differentiable
function of ``theta`` through the policy *and* the dynamics, so

    loss(theta) = - mean_g  og.lstat(R[g, :], K, objective)

gives, by ``jax.grad``, the RP estimate of ``grad J`` for any L-statistic objective (the batch
L-statistic is unbiased for ``J``, docs/maths.md §2 and §5). Analytic-policy-gradient style:
short horizons, optional truncated backprop (``truncate``), global-norm gradient clipping, Adam.

The same rollout gives the LR estimate (``gradient="lr"``): the rollout stops the gradients at the
dynamics (``differentiable=False``) and the loss is ``og.lr_loss(sum_t log pi(u_t | s_t), R, K,
objective)``; both estimate the gradient of the same objective from the same number of episodes,
which is what the RP-vs-LR study (:mod:`ordergrad_experiments.pathwise.variance`) compares.

Caveat (measured in reports/brax/RESULTS.md): the pathwise gradient does not see the
discontinuity of termination (an episode ending when the pole falls), so on terminating tasks RP
estimates the gradient of the return *with the termination times held fixed*; it is exact only
for tasks without termination (reacher, Pendulum) or while no episode terminates.

Works with brax tasks (``env="brax/<task>"``) and with gymnax tasks that support
``with_transition_gradients()`` (``env="Pendulum-v1"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import ordergrad_envs
import ordergrad_jax as og
from ordergrad_envs.rollout import Episodes, group_rollout
from ordergrad_experiments.common.trainer import Module, Trainer, split_module
from ordergrad_experiments.pathwise import networks
from ordergrad_experiments.pathwise.config import PathwiseConfig, check, steps_per_iteration


class TrainState(NamedTuple):
    """The whole training state of one seed (checkpointed)."""

    params: Any
    opt_state: Any
    key: jax.Array
    iteration: jax.Array


def make_env(config: PathwiseConfig) -> tuple[Any, Any]:
    """``ordergrad_envs.make(config.env, **env_params)``, with the dynamics' gradients enabled for
    RP.

    Raises:
      ValueError: ``gradient="rp"`` on a task whose transitions have no gradient.
    """
    env, env_params = ordergrad_envs.make(
        config.env, **ordergrad_envs.parse_params(config.env_params)
    )
    if config.gradient == "rp":
        if not getattr(env, "supports_transition_gradients", False):
            raise ValueError(
                f"{config.env} does not support transition gradients, so it has no pathwise "
                "gradient; use a brax task, Pendulum-v1 or MountainCarContinuous-v0, or "
                "gradient=lr"
            )
        env = env.with_transition_gradients()
    return env, env_params


def policy_module(config: PathwiseConfig, env: Any, env_params: Any) -> tuple[Module, Callable]:
    """The policy's static part and ``key -> params``."""

    def build(key: jax.Array) -> networks.SquashedGaussianPolicy:
        return networks.make_policy(
            env,
            env_params,
            config.hidden,
            config.action_std,
            config.learn_std,
            key,
            obs_indices=config.obs_indices,
            obs_scale=config.obs_scale,
        )

    module, _ = split_module(build(jax.random.key(0)))
    return module, lambda key: split_module(build(key))[1]


def rollout(
    config: PathwiseConfig,
    policy: networks.SquashedGaussianPolicy,
    env: Any,
    env_params: Any,
    key: jax.Array,
    num_groups: int,
    differentiable: bool,
) -> Episodes:
    """``num_groups`` start states x ``group_size`` rollouts of ``num_steps`` steps (the N
    rollouts of a group share the start); differentiable through the dynamics (truncated every
    ``config.truncate`` steps) or not (the LR setting)."""
    return group_rollout(
        env,
        env_params,
        policy.sample,
        key,
        num_groups,
        config.groups.group_size,
        config.num_steps,
        share_start=True,
        differentiable=differentiable,
        truncate=config.truncate if differentiable else 0,
    )


def make_objective_grad(
    config: PathwiseConfig, env: Any, env_params: Any, module: Module, gradient: str | None = None
) -> Callable[..., tuple[Any, dict[str, jax.Array]]]:
    """``(params, key, objective=config.estimator.objective) -> (grad of J, aux)``: one estimate
    of the objective's gradient (the ascent direction) from ``num_groups * group_size`` episodes,
    by ``gradient`` (default ``config.gradient``). ``objective`` may be a ``(K,)`` weight array
    (traced too: a sweep over objectives compiles once). ``aux``: ``returns [G, N]``, ``length
    [G, N]`` (live steps), ``objective`` (the batch L-statistic)."""
    gradient = gradient or config.gradient
    rp = gradient == "rp"
    k = config.estimator.k

    def loss(params, key, objective):
        policy = module.merge(params)
        episodes = rollout(
            config, policy, env, env_params, key, config.groups.num_groups, differentiable=rp
        )
        returns = jax.lax.stop_gradient(episodes.returns)
        if rp:
            value = -jnp.mean(og.lstat(episodes.returns, k, objective))
        else:
            value = og.lr_loss(episodes.sum_logp, returns, k, objective)
        stat = jnp.mean(og.lstat(returns, k, objective))
        return value, {"returns": returns, "length": episodes.length, "objective": stat}

    def objective_grad(params, key, objective=config.estimator.objective):
        grads, aux = jax.grad(loss, has_aux=True)(params, key, objective)
        return jax.tree.map(jnp.negative, grads), aux

    return objective_grad


def make_train(config: PathwiseConfig) -> Trainer:
    """The trainer of ``config``: ``init(key)`` (one seed), ``chunk(state)`` (the iterations of
    one chunk of ``config.budget.iterations(steps_per_iteration)`` under ``lax.scan``; metrics
    ``train_mean``, ``train_objective``, ``grad_norm`` with a leading iteration axis) and
    ``policy(state)``; ``vmap`` them over seeds.
    """
    check(config)
    env, env_params = make_env(config)
    module, init_params = policy_module(config, env, env_params)
    steps = steps_per_iteration(config)
    per_chunk, num_chunks = config.budget.iterations(steps)
    tx = config.optim.make(per_chunk * num_chunks)
    objective_grad = make_objective_grad(config, env, env_params, module)

    def init(key: jax.Array) -> TrainState:
        key_init, key_train = jax.random.split(key)
        params = init_params(key_init)
        return TrainState(params, tx.init(params), key_train, jnp.zeros((), jnp.int32))

    def train_step(state: TrainState, _: Any = None) -> tuple[TrainState, dict[str, jax.Array]]:
        """One iteration: a gradient estimate of the objective and an optimiser step."""
        key, k_step = jax.random.split(state.key)
        grads, aux = objective_grad(state.params, k_step)
        descent = jax.tree.map(jnp.negative, grads)  # optax minimises
        updates, opt_state = tx.update(descent, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "train_mean": jnp.mean(aux["returns"]),
            "train_objective": aux["objective"],
            "grad_norm": optax.tree.norm(grads),
        }
        return TrainState(params, opt_state, key, state.iteration + 1), metrics

    return Trainer(
        init=init,
        chunk=lambda state: jax.lax.scan(train_step, state, None, length=per_chunk),
        policy=lambda state: module.merge(state.params),
        iterations_per_chunk=per_chunk,
        num_chunks=num_chunks,
        steps_per_iteration=steps,
        env=env,
        env_params=env_params,
    )


def evaluate(
    config: PathwiseConfig, trainer: Trainer, state: TrainState, key: jax.Array
) -> Episodes:
    """``eval_groups * group_size`` episodes of the stochastic policy (groups share a start)."""
    policy = trainer.policy(state)
    return rollout(config, policy, trainer.env, trainer.env_params, key, config.eval_groups, False)
