"""Evaluation of final policies on the deployment objective: >= 1000 i.i.d. episodes each."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og


def episode_returns(
    policy: Any, env: Any, env_params: Any, key: jax.Array, episodes: int, num_steps: int
) -> jax.Array:
    """Returns ``[episodes]`` of the stochastic ``policy``, independent starts, ``num_steps`` cap.

    Uses ``ordergrad_envs.rollout.group_rollout`` with groups of one episode (so every start is
    drawn anew).
    """
    from ordergrad_envs.rollout import group_rollout

    out = group_rollout(env, env_params, policy.sample, key, episodes, 1, num_steps)
    return out.returns[:, 0]


def return_stats(
    returns: np.ndarray, *, k: int, cvar_alpha: float, success_return: float | None
) -> dict[str, float]:
    """Deployment statistics of ``returns [E]``: mean, CVaR_alpha, median, min, max@k and, with a
    success threshold, the success rate and pass@k (unbiased U-statistics from ``og.metrics``)."""
    x = jnp.asarray(returns, jnp.float32)
    stats = {
        "mean": float(og.metrics.mean(x)),
        f"cvar_{cvar_alpha:g}": float(og.metrics.cvar(x, cvar_alpha)),
        "median": float(np.median(np.asarray(returns))),
        "min": float(np.min(returns)),
        f"max_at_{k}": float(og.metrics.max_at_k(x, k)),
        "std": float(np.std(returns)),
    }
    if success_return is not None:
        success = (x >= success_return).astype(jnp.float32)
        stats["success_rate"] = float(jnp.mean(success))
        stats[f"pass_at_{k}"] = float(og.metrics.pass_at_k(success, k))
    return stats


def trained_objective(config: Any, returns: np.ndarray) -> tuple[str, np.ndarray] | None:
    """The statistic a run's update ascends, estimated on its evaluation ``returns [S, E]``
    (``S`` seeds): ``(label, values [S])``; ``None`` for an estimator that registers no target
    (a user's, registered without ``target=``).

    Group PG: the estimator's registered target (``og.estimators.spec(name).target``: OrderGrad's
    L-statistic at its K, the mean for RLOO, CVaR_alpha for CVaR-PG...) of the final objective
    (a warm start's first objective is not the one trained last), on the success indicators
    ``returns >= success_return`` where the run ranks success (``train_reward="success"``; the
    label then ends ``of success``). PPO: the mean return (it ascends the discounted mean).
    """
    returns = np.asarray(returns, np.float32)
    if config.algo == "ppo":
        return "mean", returns.mean(-1)
    spec, params = config.estimator.spec(), config.estimator.params()
    if spec.target_fn is None:
        return None
    label = spec.target_label(**params)
    if config.train_reward == "success":
        returns = (returns >= config.success_return).astype(np.float32)
        label += " of success"
    return label, np.asarray(spec.target(jnp.asarray(returns), **params), np.float64)


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean over seeds and the half-width of its Student t 95% interval, n - 1 df
    (``ordergrad_experiments.common.stats.t_interval``); the half-width is NaN for one seed."""
    from ordergrad_experiments.common import stats

    values = np.asarray(values, np.float64)
    if values.size < 2:
        return float(values.mean()), float("nan")
    interval = stats.t_interval(values)
    return interval.mean, interval.half_width
