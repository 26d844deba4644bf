"""What a ``brax-rp`` run measures of its final policies, after the last chunk.

* :func:`final_evaluation` (``final_episodes > 0``): each seed's *deterministic* policy (the mean
  action, :meth:`~ordergrad_experiments.pathwise.networks.SquashedGaussianPolicy.mean_action`: the
  exploration noise off) on ``final_episodes`` episodes, the same episodes for every seed (one
  key: the seeds differ only by their policies) and for the env's ``reference_policy(params)``
  where the env has one (DeepHedging: the Black-Scholes delta hedge), so a policy and the
  reference are compared on common random numbers. Deployed statistics: mean, std, median,
  ``CVaR_0.1`` with its Monte Carlo standard error, and the env's ``evaluation_metrics(params,
  episodes)`` where it has them (DeepHedging: the indifference price, the distance from the delta
  along the paths, turnover); against the reference, the paired difference of ``CVaR_0.1`` with
  its standard error and the std of the return difference.
* :func:`policy_grid` (where the env has ``policy_grid(params)``): each seed's deterministic
  action, and the reference's, on the env's named observation grids.
* :func:`gradient_snr` (``snr_repeats > 0``): the RP and LR gradient estimates of the run's
  objective, ``snr_repeats`` independent ones each, at the initial and at the final parameters of
  every seed: ``tr Var``, the debiased SNR (``og.metrics.snr(debias=True)``), the mean's norm and
  the cosine between the RP and LR means (RP only where the env has transition gradients).

Standard error of the plug-in ``CVaR_q`` (the lower-tail mean of ``n`` samples): its influence
function ``IF(r) = v + min(r - v, 0) / q - CVaR_q`` (``v`` the ``q``-quantile) gives ``SE =
std(IF(R)) / sqrt(n)``; for a paired difference, ``std(IF_a - IF_b) / sqrt(n)``
(:func:`cvar_influence`). The hooks are found on the env by name, so the trainer has no
task-specific branch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og
from ordergrad_envs.rollout import group_rollout
from ordergrad_experiments.pathwise import train
from ordergrad_experiments.pathwise.config import GRADIENTS, PathwiseConfig

Q = 0.1
"""The tail fraction of the deployed ``CVaR``."""
EVAL_SEED_OFFSET = 1_000_003
"""The final evaluation's key is ``key(seed + EVAL_SEED_OFFSET)``: apart from the training keys."""


def cvar_influence(returns: np.ndarray, q: float = Q) -> np.ndarray:
    """The plug-in ``CVaR_q``'s influence values ``v + min(r - v, 0) / q`` (``v``: the empirical
    ``q``-quantile) of ``returns [n]``, float64; their mean is ``CVaR_q`` up to the quantile's
    interpolation, and ``std / sqrt(n)`` its standard error."""
    r = np.asarray(returns, np.float64).reshape(-1)
    v = np.sort(r)[max(math.ceil(q * r.size) - 1, 0)]
    return v + np.minimum(r - v, 0.0) / q


def _se(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(values.size))


def _scalars(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Host floats (and lists for vector metrics) of one seed's metric pytree."""
    out = {}
    for name, value in metrics.items():
        a = np.asarray(value, np.float64)
        out[prefix + name] = float(a) if a.ndim == 0 else a.round(6).tolist()
    return out


def _return_stats(returns: np.ndarray, prefix: str = "") -> dict[str, float]:
    r = np.asarray(returns, np.float64).reshape(-1)
    return {
        f"{prefix}mean": float(r.mean()),
        f"{prefix}mean_se": _se(r),
        f"{prefix}std": float(r.std(ddof=1)),
        f"{prefix}median": float(np.median(r)),
        f"{prefix}cvar_{Q:g}": float(og.metrics.cvar(r, Q)),
        f"{prefix}cvar_{Q:g}_se": _se(cvar_influence(r)),
    }


def _deterministic_episodes(config: PathwiseConfig, trainer: Any, policy_fn: Any, key: jax.Array):
    """``final_episodes`` episodes of ``policy_fn`` (one group; no gradient through them)."""
    return group_rollout(
        trainer.env,
        trainer.env_params,
        policy_fn,
        key,
        1,
        config.final_episodes,
        config.num_steps,
        differentiable=False,
    )


def final_evaluation(config: PathwiseConfig, trainer: Any, states: Any) -> dict[str, Any]:
    """The deterministic evaluation of every seed's final policy (module docstring).

    Args:
      config: the run's settings (``final_episodes > 0``).
      trainer: its :func:`~ordergrad_experiments.pathwise.train.make_train`.
      states: the final ``TrainState`` of every seed (leading seed axis).

    Returns:
      ``{"episodes", "q", "reference": {...} | None, "seeds": [{"seed", ...}, ...]}``.
    """
    env, params = trainer.env, trainer.env_params
    key = jax.random.key(config.seed + EVAL_SEED_OFFSET)
    metrics_fn = getattr(env, "evaluation_metrics", None)

    @jax.jit
    def evaluate(state):
        episodes = _deterministic_episodes(
            config, trainer, trainer.policy(state).deterministic, key
        )
        extra = metrics_fn(params, episodes) if metrics_fn else {}
        return episodes.returns[0], extra

    returns, extra = jax.vmap(evaluate)(states)
    reference = None
    ref_returns = None
    if hasattr(env, "reference_policy"):
        episodes = jax.jit(
            lambda: _deterministic_episodes(config, trainer, env.reference_policy(params), key)
        )()
        ref_returns = np.asarray(episodes.returns[0], np.float64)
        ref_extra = jax.jit(metrics_fn)(params, episodes) if metrics_fn else {}
        reference = {**_return_stats(ref_returns), **_scalars(ref_extra)}
    seeds = []
    for i, seed in enumerate(config.seed + np.arange(config.num_seeds)):
        r = np.asarray(returns[i], np.float64)
        row = {"seed": int(seed), **_return_stats(r)}
        row |= _scalars(jax.tree.map(lambda x, i=i: x[i], extra))
        if ref_returns is not None:
            diff = cvar_influence(r) - cvar_influence(ref_returns)
            row[f"cvar_{Q:g}_minus_reference"] = float(
                og.metrics.cvar(r, Q) - og.metrics.cvar(ref_returns, Q)
            )
            row[f"cvar_{Q:g}_minus_reference_se"] = _se(diff)
            row["std_of_difference_from_reference"] = float(np.std(r - ref_returns, ddof=1))
        seeds.append(row)
    return {
        "episodes": config.final_episodes,
        "q": Q,
        "reference": reference,
        "seeds": seeds,
    }


def policy_grid(config: PathwiseConfig, trainer: Any, states: Any) -> dict[str, Any] | None:
    """Every seed's deterministic action on the env's ``policy_grid(params)`` (``None`` where the
    env has none): ``{"seeds", "grids": {name: {"axes", "reference_action" [...], "action"
    [seed][...]}}}``, the grid's shape that of its axes (the env's docstring says what the
    observation is at each point)."""
    env, params = trainer.env, trainer.env_params
    if not hasattr(env, "policy_grid"):
        return None
    out = {}
    for name, (axes, obs) in env.policy_grid(params).items():
        flat = obs.reshape(-1, obs.shape[-1])
        actions = jax.vmap(lambda s, flat=flat: trainer.policy(s).mean_action(flat))(states)
        entry = {
            "axes": {k: np.asarray(v, np.float64).round(6).tolist() for k, v in axes.items()},
            "action": np.asarray(actions[..., 0].reshape(-1, *obs.shape[:-1]), np.float64)
            .round(4)
            .tolist(),
        }
        if hasattr(env, "reference_policy"):
            ref = jax.vmap(env.reference_policy(params))(
                jax.random.split(jax.random.key(0), len(flat)), flat
            )[0]
            entry["reference_action"] = (
                np.asarray(ref[..., 0].reshape(obs.shape[:-1]), np.float64).round(4).tolist()
            )
        out[name] = entry
    return {"seeds": [int(s) for s in config.seed + np.arange(config.num_seeds)], "grids": out}


def _flat(g: Any, repeats: int) -> jax.Array:
    return jnp.concatenate([x.reshape(repeats, -1) for x in jax.tree.leaves(g)], axis=1)


def gradient_snr(
    config: PathwiseConfig, trainer: Any, initial: Any, final: Any
) -> list[dict[str, Any]]:
    """RP and LR gradient statistics at the initial and final parameters of every seed (module
    docstring): one row per (seed, point, gradient).

    Args:
      initial, final: the seeds' ``TrainState`` before and after training (leading seed axis).
    """
    repeats = config.snr_repeats
    module, _ = train.policy_module(config, trainer.env, trainer.env_params)
    stats: dict[tuple[str, str], Any] = {}
    for gradient in GRADIENTS:
        gcfg = dataclasses.replace(config, gradient=gradient)
        try:
            env, env_params = train.make_env(gcfg)
        except ValueError:  # no transition gradients: no RP
            continue
        grad_fn = train.make_objective_grad(gcfg, env, env_params, module, gradient)

        @jax.jit
        def estimates(params, key, grad_fn=grad_fn):
            keys = jax.random.split(key, repeats)
            g = jax.lax.map(lambda k: grad_fn(params, k)[0], keys, batch_size=min(repeats, 8))
            flat = _flat(g, repeats)
            return {
                "mean": flat.mean(0),
                "total_variance": og.metrics.total_variance(flat),
                "snr": og.metrics.snr(flat, debias=True),
            }

        for point, states in (("initial", initial), ("final", final)):
            keys = jax.random.split(
                jax.random.key(config.seed + 2 * EVAL_SEED_OFFSET), config.num_seeds
            )
            stats[point, gradient] = jax.vmap(estimates)(states.params, keys)
    rows = []
    for (point, gradient), s in stats.items():
        for i, seed in enumerate(config.seed + np.arange(config.num_seeds)):
            mean = np.asarray(s["mean"][i], np.float64)
            row = {
                "seed": int(seed),
                "point": point,
                "gradient": gradient,
                "repeats": repeats,
                "episodes_per_estimate": config.groups.num_groups * config.groups.group_size,
                "total_variance": float(s["total_variance"][i]),
                "snr": float(s["snr"][i]),
                "mean_norm": float(np.linalg.norm(mean)),
            }
            other = stats.get((point, "lr" if gradient == "rp" else "rp"))
            if other is not None:
                m2 = np.asarray(other["mean"][i], np.float64)
                row["cosine_rp_lr"] = float(mean @ m2 / (np.linalg.norm(mean) * np.linalg.norm(m2)))
            rows.append(row)
    return rows
