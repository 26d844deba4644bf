"""Pathwise (RP) order-statistic policy gradients through a differentiable simulator.

For each of G start states, N rollouts of ``horizon`` steps with different reparameterised action
noise ``u_t = mu_theta(s_t) + sigma * eps_t``, ``a_t = tanh(u_t)`` (and the environment's own
reparameterised noise, e.g. the pushes of ``envs.brax_env``). The return ``R_i`` of each rollout
is a differentiable function of ``theta`` through the policy *and* the dynamics, so

    loss(theta) = - mean_g  og.lstat(R[g, :], K, objective)

gives, by ``jax.grad``, the RP estimate of ``grad J`` for any L-statistic objective (the batch
L-statistic is unbiased for ``J``, docs/maths.md §2 and §5). Analytic-policy-gradient style:
short horizons, optional truncated backprop (the state's gradient is stopped every ``truncate``
steps), global-norm gradient clipping, Adam.

The same rollout gives the LR estimate (``estimator="lr"``): gradients are stopped through the
dynamics and actions, and the loss is ``og.lr_loss(sum_t log pi(u_t | s_t), R, K, objective)``;
both estimate the gradient of the same objective from the same number of episodes, which is what
the RP-vs-LR variance study (``experiments/control/brax_variance.py``) compares.

Caveat (honest, and measured in reports/brax/RESULTS.md, section 4): the pathwise gradient
does not see the discontinuity of termination (an episode ending when the pole falls), so on
terminating tasks RP estimates the gradient of the return *with the termination times held fixed*;
it is exact only for tasks without termination (reacher, Pendulum) or while no episode terminates.

Works with brax tasks (``env="brax/<task>"``, backend a config field) and with gymnax tasks that
support ``with_transition_gradients()`` (``env="Pendulum-v1"``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import pathlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import ordergrad_jax as og
from experiments.common.runs import RunWriter, markdown_table

ESTIMATORS = ("rp", "lr")


@dataclasses.dataclass(frozen=True)
class PathwiseConfig:
    """The pathwise trainer (``ordergrad-jax run brax-rp``); every field a ``--set`` override."""

    env: str = "brax/inverted_pendulum"
    backend: str = "spring"
    """brax physics backend (ignored for gymnax tasks)."""
    reward: str = "smooth"
    """brax reward: ``native`` or ``smooth`` (inverted_pendulum's native reward: zero RP grad)."""
    noise_scale: float = 0.0
    push_prob: float = 0.0
    push_size: float = 0.0
    """risk variant of brax tasks: always-on actuation noise and rare pushes (action units)."""
    estimator: str = "rp"
    """``rp`` (through the simulator) or ``lr`` (likelihood ratio, same rollouts)."""
    objective: str = "Mean"
    k: int = 4
    groups: int = 16
    """G start states per iteration."""
    group_size: int = 8
    """N rollouts per start state (different action noise)."""
    horizon: int = 64
    """steps per rollout (also the episode length of the task)."""
    truncate: int = 0
    """stop the state's gradient every ``truncate`` steps (0: through the whole horizon)."""
    action_std: float = 0.3
    """std of the pre-tanh Gaussian action noise (the initial std with ``learn_std``)."""
    learn_std: bool = False
    """learn a per-dimension log-std (through RP, or through the score with ``estimator=lr``)."""
    hidden: tuple[int, ...] = (32, 32)
    learning_rate: float = 3e-3
    max_grad_norm: float = 1.0
    iterations: int = 200
    chunk: int = 20
    """iterations per jitted chunk (a checkpoint after each)."""
    eval_groups: int = 128
    """evaluation: ``eval_groups * group_size`` episodes of the stochastic policy per chunk."""
    seed: int = 0
    num_seeds: int = 1
    """seeds ``seed, seed + 1, ...`` trained side by side (``vmap``: one compile)."""


QUICK = PathwiseConfig(
    env="Pendulum-v1",
    groups=4,
    group_size=4,
    k=2,
    horizon=8,
    iterations=4,
    chunk=2,
    eval_groups=4,
    hidden=(8,),
    num_seeds=2,
)
"""CI size: gymnax Pendulum (RP through its dynamics; compiles in seconds, where RP through a brax
pipeline takes tens of seconds). ``--set env=brax/inverted_pendulum`` for the brax smoke run."""


def make_policy(cfg: PathwiseConfig, obs_dim: int, act_dim: int, rngs: nnx.Rngs) -> Policy:
    """The :class:`Policy` of ``cfg`` (learned log-std iff ``cfg.learn_std``)."""
    log_std = float(np.log(cfg.action_std)) if cfg.learn_std else None
    return Policy(obs_dim, act_dim, cfg.hidden, rngs=rngs, log_std=log_std)


def make_env(cfg: PathwiseConfig) -> tuple[Any, Any]:
    """``(env, params)`` for ``cfg.env`` with the dynamics' gradients enabled.

    ``brax/<task>`` goes to :func:`envs.brax_env.make_brax`; other names to ``envs.make`` when
    that registry is present, else ``gymnax.make``.
    """
    if cfg.env.startswith("brax/"):
        from envs.brax_env import make_brax

        return make_brax(
            cfg.env,
            backend=cfg.backend,
            reward=cfg.reward,
            episode_length=cfg.horizon,
            noise_scale=cfg.noise_scale,
            push_prob=cfg.push_prob,
            push_size=cfg.push_size,
        )
    try:
        import envs

        env, params = envs.make(cfg.env)
    except (ImportError, AttributeError):
        import gymnax

        env, params = gymnax.make(cfg.env)
    if cfg.estimator == "rp":
        if not getattr(env, "supports_transition_gradients", False):
            raise ValueError(
                f"{cfg.env} does not support transition gradients, so it has no pathwise "
                "gradient; use a brax task, Pendulum-v1 or MountainCarContinuous-v0, or "
                "estimator=lr"
            )
        env = env.with_transition_gradients()
    return env, params


class Policy(nnx.Module):
    """MLP mean ``mu_theta(obs)`` of a pre-tanh Gaussian policy: ``(..., obs) -> (..., act)``.

    With ``log_std`` (a float) the policy also has a learned per-dimension log-std, initialised
    to it; otherwise the std is the caller's constant (:meth:`std`).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...],
        *,
        rngs: nnx.Rngs,
        log_std: float | None = None,
    ):
        sizes = (obs_dim, *hidden)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])
        self.out = nnx.Linear(
            sizes[-1], act_dim, kernel_init=nnx.initializers.normal(0.01), rngs=rngs
        )
        self.log_std = None if log_std is None else nnx.Param(jnp.full((act_dim,), log_std))

    def std(self, default: float) -> jax.Array | float:
        """The action std: ``exp(log_std)`` ``(act,)`` if learned, else ``default``."""
        return default if self.log_std is None else jnp.exp(self.log_std[...])

    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs
        for layer in self.layers:
            x = jnp.tanh(layer(x))
        return self.out(x)


class TrainState(NamedTuple):
    """The whole training state (checkpointed): params, optimiser state, key, iteration."""

    params: Any
    opt_state: Any
    key: jax.Array
    iteration: jax.Array


def _check(cfg: PathwiseConfig) -> None:
    if cfg.estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}; got {cfg.estimator!r}")
    if not 1 <= cfg.k <= cfg.group_size - (cfg.estimator == "lr"):
        raise ValueError(
            f"k must be in [1, group_size{' - 1' if cfg.estimator == 'lr' else ''}] "
            f"(group_size={cfg.group_size}); got k={cfg.k}"
        )
    for name in ("groups", "group_size", "horizon", "iterations", "chunk", "eval_groups"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1; got {getattr(cfg, name)}")
    if cfg.num_seeds < 1:
        raise ValueError(f"num_seeds must be >= 1; got {cfg.num_seeds}")
    if cfg.iterations % cfg.chunk:
        raise ValueError(f"iterations ({cfg.iterations}) must be a multiple of chunk ({cfg.chunk})")
    if cfg.truncate < 0 or cfg.action_std <= 0 or cfg.max_grad_norm <= 0:
        raise ValueError(
            f"need truncate >= 0, action_std > 0, max_grad_norm > 0; got {cfg.truncate}, "
            f"{cfg.action_std}, {cfg.max_grad_norm}"
        )


class Rollouts(NamedTuple):
    """Per-episode results of :func:`group_rollouts`: ``returns``/``logp``/``length`` ``(G, N)``."""

    returns: jax.Array
    logp: jax.Array
    length: jax.Array


def group_rollouts(
    graphdef: Any,
    params: Any,
    key: jax.Array,
    env: Any,
    env_params: Any,
    cfg: PathwiseConfig,
    groups: int,
    estimator: str,
) -> Rollouts:
    """G groups x N rollouts of ``cfg.horizon`` steps; the N rollouts of a group share a start.

    Rewards after an episode terminates are masked out (the auto-reset continuation is unused).
    With ``estimator="rp"`` the returns are differentiable in ``params`` through the policy and the
    dynamics (truncated every ``cfg.truncate`` steps); with ``"lr"`` gradients stop at the
    dynamics and the actions, and ``logp`` (summed ``log N(u_t; mu(s_t), sigma)`` over live
    steps) carries them.

    Returns:
      :class:`Rollouts` with ``(groups, N)`` arrays.
    """
    n, horizon = cfg.group_size, cfg.horizon
    policy = nnx.merge(graphdef, params)
    space = env.action_space(env_params)
    low, high = jnp.asarray(space.low), jnp.asarray(space.high)
    act_shape = tuple(space.shape)
    k_reset, k_roll = jax.random.split(key)
    obs0, state0 = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(k_reset, groups), env_params
    )
    tile = functools.partial(jax.tree.map, lambda x: jnp.repeat(x[:, None], n, axis=1))
    obs0, state0 = tile(obs0), tile(state0)
    step = jax.vmap(jax.vmap(env.step, in_axes=(0, 0, 0, None)), in_axes=(0, 0, 0, None))
    lr = estimator == "lr"

    def body(carry, inputs):
        obs, state, alive, ret, logp = carry
        t, k_t = inputs
        if lr:
            obs, state = jax.lax.stop_gradient((obs, state))
        elif cfg.truncate:
            obs, state = jax.lax.cond(
                (t % cfg.truncate == 0) & (t > 0),
                lambda x: jax.lax.stop_gradient(x),
                lambda x: x,
                (obs, state),
            )
        k_eps, k_env = jax.random.split(k_t)
        mu = policy(obs.reshape(groups, n, -1).astype(jnp.result_type(float)))
        mu = mu.reshape(groups, n, *act_shape)
        eps = jax.random.normal(k_eps, mu.shape, mu.dtype)
        std = policy.std(cfg.action_std)
        u = mu + std * eps
        if lr:
            u = jax.lax.stop_gradient(u)
            step_logp = jnp.sum(
                -0.5 * ((u - mu) / std) ** 2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi),
                axis=tuple(range(2, mu.ndim)),
            )
            logp = logp + jnp.where(alive, step_logp, 0.0)
        action = low + (jnp.tanh(u) + 1.0) * 0.5 * (high - low)
        keys = jax.random.split(k_env, groups * n).reshape(groups, n)
        obs, state, reward, terminated, _, _ = step(keys, state, action, env_params)
        ret = ret + jnp.where(alive, reward, 0.0)
        alive = alive & ~terminated
        return (obs, state, alive, ret, logp), alive

    dtype = jnp.result_type(float)
    zeros = jnp.zeros((groups, n), dtype)
    carry = (obs0, state0, jnp.ones((groups, n), bool), zeros, zeros)
    inputs = (jnp.arange(horizon), jax.random.split(k_roll, horizon))
    (_, _, _, ret, logp), alive = jax.lax.scan(body, carry, inputs)
    length = 1 + jnp.sum(alive[:-1], axis=0) if horizon > 1 else jnp.ones((groups, n), jnp.int32)
    return Rollouts(ret, logp, length)


def make_objective_grad(
    cfg: PathwiseConfig, env: Any, env_params: Any, graphdef: Any, estimator: str | None = None
) -> Callable[[Any, jax.Array], tuple[Any, dict[str, jax.Array]]]:
    """``(params, key, objective=cfg.objective) -> (grad of J, aux)``: one estimate of the
    objective's gradient (ascent direction) from ``cfg.groups * cfg.group_size`` episodes, with
    ``estimator`` (default ``cfg.estimator``). ``objective`` may be a ``(K,)`` weight array
    (traced too: a sweep over objectives compiles once). ``aux``: ``returns (G, N)``,
    ``length (G, N)`` (live steps), ``objective`` (the batch L-statistic)."""
    estimator = estimator or cfg.estimator

    def loss(params, key, objective):
        roll = group_rollouts(graphdef, params, key, env, env_params, cfg, cfg.groups, estimator)
        stat = jnp.mean(og.lstat(jax.lax.stop_gradient(roll.returns), cfg.k, objective))
        if estimator == "rp":
            value = -jnp.mean(og.lstat(roll.returns, cfg.k, objective))
        else:
            value = og.lr_loss(roll.logp, roll.returns, cfg.k, objective)
        aux = {
            "returns": jax.lax.stop_gradient(roll.returns),
            "length": roll.length,
            "objective": stat,
        }
        return value, aux

    def objective_grad(params, key, objective=cfg.objective):
        grads, aux = jax.grad(loss, has_aux=True)(params, key, objective)
        return jax.tree.map(jnp.negative, grads), aux

    return objective_grad


def make_train(
    cfg: PathwiseConfig,
) -> tuple[TrainState, Callable[[TrainState], tuple[TrainState, dict[str, jax.Array]]], Any]:
    """PureJaxRL style: ``(init_state, chunk_fn, env)``; ``chunk_fn`` (jitted) runs ``cfg.chunk``
    iterations under ``lax.scan`` and then evaluates ``eval_groups * group_size`` episodes, for
    ``cfg.num_seeds`` seeds side by side (every leaf of the state and the metrics has a leading
    seed axis).

    Metrics of a chunk: per iteration (``(S, chunk)``) ``train_mean``, ``train_objective``,
    ``grad_norm``; and ``eval_returns`` ``(S, eval_groups, N)``, ``eval_length``.
    """
    _check(cfg)
    env, env_params = make_env(cfg)
    obs_dim = int(np.prod(env.observation_space(env_params).shape))
    act_dim = int(np.prod(env.action_space(env_params).shape))
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate))
    graphdef = nnx.graphdef(make_policy(cfg, obs_dim, act_dim, nnx.Rngs(0)))

    def init_one(seed):
        key_init, key_train = jax.random.split(jax.random.key(seed))
        policy = make_policy(cfg, obs_dim, act_dim, nnx.Rngs(params=key_init))
        params = nnx.state(policy, nnx.Param)
        return TrainState(params, tx.init(params), key_train, jnp.zeros((), jnp.int32))

    seeds = cfg.seed + np.arange(cfg.num_seeds)
    init = jax.tree.map(lambda *xs: jnp.stack(xs), *[init_one(int(s)) for s in seeds])
    objective_grad = make_objective_grad(cfg, env, env_params, graphdef)

    def iteration(state: TrainState, _):
        key, k_it = jax.random.split(state.key)
        grads, aux = objective_grad(state.params, k_it)
        ascent = jax.tree.map(jnp.negative, grads)  # optax minimises
        updates, opt_state = tx.update(ascent, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "train_mean": jnp.mean(aux["returns"]),
            "train_objective": aux["objective"],
            "grad_norm": optax.global_norm(grads),
        }
        return TrainState(params, opt_state, key, state.iteration + 1), metrics

    def chunk_one(state: TrainState):
        state, metrics = jax.lax.scan(iteration, state, None, length=cfg.chunk)
        key, k_eval = jax.random.split(state.key)
        roll = group_rollouts(
            graphdef, state.params, k_eval, env, env_params, cfg, cfg.eval_groups, "lr"
        )
        metrics = {**metrics, "eval_returns": roll.returns, "eval_length": roll.length}
        return state._replace(key=key), metrics

    return init, jax.jit(jax.vmap(chunk_one)), env


def evaluation_row(returns: Any, cfg: PathwiseConfig) -> dict[str, float]:
    """Deployment metrics of ``(groups, N)`` returns: mean, CVaR_0.1, median, max@K, the
    objective at K (per-group U-statistics averaged), and the number of episodes."""
    x = jnp.asarray(returns)
    flat = x.reshape(-1)
    return {
        "eval_mean": float(og.metrics.mean(flat)),
        "eval_cvar_0.1": float(og.metrics.cvar(flat, 0.1)),
        "eval_median": float(jnp.median(flat)),
        f"eval_max@{cfg.k}": float(jnp.mean(og.metrics.max_at_k(x, cfg.k))),
        "eval_objective": float(jnp.mean(og.metrics.lstat_at_k(x, cfg.k, cfg.objective))),
        "eval_episodes": int(flat.size),
    }


def run(cfg: PathwiseConfig, writer: RunWriter, progress: Callable | None = None) -> list[dict]:
    """Trains with checkpoint/resume (``train_in_chunks``), logging one row per chunk; writes the
    final evaluation as the summary."""
    from experiments.common.checkpoint import train_in_chunks

    writer.write_config(cfg, jax=jax.__version__, device=str(jax.devices()[0]))
    init, chunk_fn, _ = make_train(cfg)
    steps_per_iteration = cfg.groups * cfg.group_size * cfg.horizon
    eval_steps = cfg.eval_groups * cfg.group_size * cfg.horizon

    def log_fn(chunk: int, state: TrainState, metrics: dict, seconds: float) -> list[dict]:
        iterations = (chunk + 1) * cfg.chunk
        work = cfg.num_seeds * (cfg.chunk * steps_per_iteration + eval_steps)
        rows = []
        for i in range(cfg.num_seeds):
            rows.append(
                {
                    "seed": cfg.seed + i,
                    "iteration": iterations,
                    "env_steps": iterations * steps_per_iteration,
                    "train_mean": float(metrics["train_mean"][i, -1]),
                    "train_objective": float(metrics["train_objective"][i, -1]),
                    "grad_norm": float(np.mean(metrics["grad_norm"][i])),
                    "eval_mean_length": float(np.mean(metrics["eval_length"][i])),
                    **evaluation_row(metrics["eval_returns"][i], cfg),
                    "env_steps_per_s": work / seconds,
                }
            )
        return rows

    tic = time.perf_counter()
    train_in_chunks(init, chunk_fn, cfg.iterations // cfg.chunk, writer, log_fn, progress)
    rows = writer.metrics
    writer.write_summary(summary(cfg, rows, time.perf_counter() - tic))
    return rows


def _mean_se(values: list[float]) -> str:
    """``"mean ± 1.96 SE"`` over seeds (nan half-width for one seed)."""
    x = np.asarray(values, float)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return f"{x.mean():.4g} ± {half:.2g}"


def summary(cfg: PathwiseConfig, rows: list[dict], wall_s: float) -> str:
    """Markdown: the final evaluation and the steady env-steps/s (chunks after the first)."""
    if not rows:
        return "# brax-rp\n\nno rows\n"
    last_chunk = max(r["chunk"] for r in rows)
    final = [r for r in rows if r["chunk"] == last_chunk]
    last = final[-1]
    steady = [r["env_steps_per_s"] for r in rows if not r.get("first_in_process")]
    keys = [k for k in last if k.startswith("eval_")]

    lines = [
        f"# brax-rp: {cfg.env} ({cfg.backend}), estimator={cfg.estimator}, "
        f"objective={cfg.objective}, K={cfg.k}, G={cfg.groups}, N={cfg.group_size}, "
        f"horizon={cfg.horizon}, seeds={len(final)}",
        "",
        "| metric (mean over seeds ± 1.96 SE) | value |",
        "|---|---|",
        *[f"| {k} | {_mean_se([r[k] for r in final])} |" for k in keys],
        f"| env_steps (per seed) | {last['env_steps']} |",
        f"| steady env_steps_per_s | {np.median(steady) if steady else float('nan'):.4g} |",
        f"| wall_s (this process) | {wall_s:.1f} |",
        "",
    ]
    return "\n".join(lines)


def runs_table(run_dirs: list[Any]) -> str:
    """Markdown table of finished ``brax-rp`` run folders, one row each: the settings that differ
    between runs and the final evaluation (mean over seeds +- 1.96 SE), steady env-steps/s."""
    out = []
    for d in map(pathlib.Path, run_dirs):
        if not (d / "summary.md").exists():
            continue
        cfg = json.loads((d / "config.json").read_text())["config"]
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        final = [r for r in rows if r["env_steps"] == max(r["env_steps"] for r in rows)]
        steady = [r["env_steps_per_s"] for r in rows if not r.get("first_in_process")]
        row = {
            "run": d.name,
            "estimator": cfg["estimator"],
            "objective": cfg["objective"],
            "truncate": cfg["truncate"],
            "lr": cfg["learning_rate"],
            "std": f"{cfg['action_std']:g}{' learned' if cfg.get('learn_std') else ''}",
            "push": f"{cfg['push_prob']:g} x {cfg['push_size']:g}",
            "env_steps": final[0]["env_steps"],
        }
        for key in ("eval_mean_length", "eval_mean", "eval_cvar_0.1", f"eval_max@{cfg['k']}"):
            row[key.removeprefix("eval_")] = _mean_se([r[key] for r in final])
        row["env_steps_per_s"] = f"{np.median(steady) if steady else float('nan'):.3g}"
        out.append(row)
    return markdown_table(out) if out else "no finished runs\n"
