"""Ours vs brax's own agents on one brax task, same backend, batch and env-step budget, one process.

Trainers (all on ``brax/<task>``, backend ``backend``, ``num_envs = groups * group_size`` parallel
episodes of ``episode_length`` steps, ``budget`` env steps each):

* ``brax ppo``  -- ``brax.training.agents.ppo.train`` (brax's defaults otherwise);
* ``brax apg``  -- ``brax.training.agents.apg.train`` (analytic policy gradient through the same
  simulator; on inverted_pendulum it is given the smooth reward, since the native constant reward
  has a zero pathwise gradient);
* ``ours rp``   -- :mod:`experiments.control.pathwise` with the mean objective (and optionally an
  order-statistic one), smooth reward on inverted_pendulum;
* ``ours group_pg`` / ``ours ppo`` -- the LR trainers of ``experiments/control`` (RLOO advantage,
  and PPO + GAE), native reward.

Speed: steady env steps per second, compile excluded (brax: its own ``training/sps`` of the last
training epoch; ours: the last of several timed chunks). Final returns: every final policy is
evaluated the same way, ``eval_episodes`` stochastic episodes of ``episode_length`` steps in
``envs.brax_env`` with the task's *native* reward (for inverted_pendulum: steps balanced), as
mean, CVaR_0.1 and median.

    .venv/bin/python -m experiments.control.brax_bench --out results/brax-bench [--quick]
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import tyro

import ordergrad_jax as og
from experiments.common.io import write_json_atomic, write_text_atomic
from experiments.common.runs import markdown_table


@dataclasses.dataclass(frozen=True)
class BraxBenchConfig:
    task: str = "inverted_pendulum"
    backend: str = "spring"
    episode_length: int = 64
    groups: int = 16
    group_size: int = 8
    budget: int = 1_048_576
    """env steps per trainer."""
    chunks: int = 4
    trainers: tuple[str, ...] = ("brax_ppo", "brax_apg", "ours_rp", "ours_group_pg", "ours_ppo")
    rp_objectives: tuple[str, ...] = ("Mean",)
    rp_learn_std: bool = False
    """our RP policy learns its action std (brax APG's policy does); else a fixed 0.3."""
    k: int = 4
    eval_episodes: int = 1024
    seed: int = 0


QUICK = BraxBenchConfig(
    episode_length=16, groups=4, group_size=4, budget=4096, chunks=2, eval_episodes=64
)


def _smooth(task: str) -> bool:
    return task == "inverted_pendulum"


def evaluate(policy_fn: Any, cfg: BraxBenchConfig, key: jax.Array) -> dict[str, float]:
    """Native-reward returns of ``policy_fn(key, obs) -> action`` over ``eval_episodes``
    independent episodes (``envs.rollout.group_rollout``)."""
    from envs.brax_env import make_brax
    from envs.rollout import group_rollout

    env, params = make_brax(cfg.task, backend=cfg.backend, episode_length=cfg.episode_length)

    def policy(k, obs):
        return policy_fn(k, obs), jnp.zeros(())

    run = jax.jit(
        lambda k: group_rollout(env, params, policy, k, cfg.eval_episodes, 1, cfg.episode_length)
    )
    x = run(key).returns[:, 0]
    return {
        "eval_mean": float(og.metrics.mean(x)),
        "eval_cvar_0.1": float(og.metrics.cvar(x, 0.1)),
        "eval_median": float(jnp.median(x)),
    }


def _brax_env(cfg: BraxBenchConfig, smooth: bool):
    from brax import envs as brax_envs
    from brax.envs.base import Wrapper

    env = brax_envs.get_environment(cfg.task, backend=cfg.backend)
    if not smooth:
        return env

    class SmoothReward(Wrapper):
        """inverted_pendulum with the smooth reward of envs.brax_env (reward='smooth')."""

        def step(self, state, action):
            nxt = self.env.step(state, action)
            return nxt.replace(reward=1.0 - (nxt.obs[1] / 0.2) ** 2)

    return SmoothReward(env)


def _brax_agent(name: str, cfg: BraxBenchConfig) -> dict[str, Any]:
    num_envs = cfg.groups * cfg.group_size
    log: list[tuple[float, int, dict]] = []

    def progress(step, metrics):
        log.append((time.perf_counter(), int(step), {k: float(v) for k, v in metrics.items()}))

    tic = time.perf_counter()
    if name == "brax_ppo":
        from brax.training.agents.ppo import train as ppo

        make_policy, params, _ = ppo.train(
            environment=_brax_env(cfg, smooth=False),
            num_timesteps=cfg.budget,
            num_envs=num_envs,
            episode_length=cfg.episode_length,
            batch_size=num_envs,
            num_minibatches=max(1, num_envs // 32),
            unroll_length=min(10, cfg.episode_length),
            num_evals=cfg.chunks + 1,
            learning_rate=3e-4,
            num_eval_envs=num_envs,
            seed=cfg.seed,
            progress_fn=progress,
        )
    else:
        from brax.training.agents.apg import train as apg

        updates = max(cfg.budget // (num_envs * cfg.episode_length), 1)
        make_policy, params, _ = apg.train(
            environment=_brax_env(cfg, smooth=_smooth(cfg.task)),
            episode_length=cfg.episode_length,
            policy_updates=updates,
            horizon_length=cfg.episode_length,
            num_envs=num_envs,
            num_evals=cfg.chunks + 1,
            num_eval_envs=num_envs,
            learning_rate=1e-3,
            seed=cfg.seed,
            progress_fn=progress,
        )
    wall = time.perf_counter() - tic
    sps = [m["training/sps"] for _, _, m in log if "training/sps" in m]
    inference = make_policy(params, deterministic=False)

    def policy_fn(key, obs):
        return inference(obs, jax.random.key_data(key))[0]

    if name == "brax_ppo":
        env_steps = log[-1][1] if log else cfg.budget
    else:  # apg's progress counts policy updates, each num_envs x horizon_length env steps
        env_steps = updates * num_envs * cfg.episode_length
    return {
        "trainer": name,
        "env_steps": env_steps,
        "wall_s": wall,
        "env_steps_per_s": sps[-1] if sps else float("nan"),
        **evaluate(policy_fn, cfg, jax.random.key(cfg.seed + 100)),
    }


def _timed_chunks(chunk_fn: Any, state: Any, n: int) -> tuple[Any, list[float]]:
    """Runs ``state, _ = chunk_fn(state)`` ``n`` times; the final state and each call's seconds
    (the first includes compilation)."""
    times = []
    for _ in range(n):
        tic = time.perf_counter()
        state, _ = jax.block_until_ready(chunk_fn(state))
        times.append(time.perf_counter() - tic)
    return state, times


def _ours_rp(cfg: BraxBenchConfig, objective: str) -> dict[str, Any]:
    from experiments.control import pathwise as pw

    per_iteration = cfg.groups * cfg.group_size * cfg.episode_length
    iterations = max(cfg.budget // per_iteration // cfg.chunks, 1) * cfg.chunks
    pcfg = pw.PathwiseConfig(
        env=f"brax/{cfg.task}",
        backend=cfg.backend,
        reward="smooth" if _smooth(cfg.task) else "native",
        objective=objective,
        k=cfg.k,
        groups=cfg.groups,
        group_size=cfg.group_size,
        horizon=cfg.episode_length,
        iterations=iterations,
        chunk=iterations // cfg.chunks,
        eval_groups=1,
        seed=cfg.seed,
        learn_std=cfg.rp_learn_std,
    )
    tic = time.perf_counter()
    state, chunk_fn, _ = pw.make_train(pcfg)
    state, times = _timed_chunks(chunk_fn, state, cfg.chunks)
    wall = time.perf_counter() - tic
    work = pcfg.chunk * per_iteration + pcfg.eval_groups * cfg.group_size * cfg.episode_length
    params = jax.tree.map(lambda x: x[0], state.params)
    env, env_params = pw.make_env(pcfg)
    space = env.action_space(env_params)
    from flax import nnx

    obs_dim = env.observation_space(env_params).shape[0]
    graphdef = nnx.graphdef(pw.make_policy(pcfg, obs_dim, space.shape[0], nnx.Rngs(0)))
    policy = nnx.merge(graphdef, params)

    def policy_fn(key, obs):
        noise = jax.random.normal(key, space.shape, obs.dtype)
        u = policy(obs) + policy.std(pcfg.action_std) * noise
        return jnp.tanh(u)

    return {
        "trainer": f"ours_rp[{objective}{', learned std' if cfg.rp_learn_std else ''}]",
        "env_steps": iterations * per_iteration,
        "wall_s": wall,
        "env_steps_per_s": work / min(times[1:] or times),
        **evaluate(policy_fn, cfg, jax.random.key(cfg.seed + 100)),
    }


def _ours_lr(name: str, cfg: BraxBenchConfig) -> dict[str, Any]:
    from experiments.control.config import ControlConfig
    from experiments.control.run import make_train

    base = ControlConfig(
        env=f"brax/{cfg.task}",
        env_params=(f"backend={cfg.backend}", f"episode_length={cfg.episode_length}"),
        seed=cfg.seed,
        num_seeds=1,
        num_groups=cfg.groups,
        group_size=cfg.group_size,
        num_steps=cfg.episode_length,
        estimator="rloo",
        total_env_steps=cfg.budget,
        num_chunks=cfg.chunks,
        hidden=(32, 32),
    )
    if name == "ours_ppo":
        base = dataclasses.replace(
            base, algo="ppo", num_envs=cfg.groups * cfg.group_size, ppo_steps=cfg.episode_length
        )
    tic = time.perf_counter()
    trainer = make_train(base)
    state = jax.jit(trainer.init)(jax.random.key(cfg.seed))
    state, times = _timed_chunks(jax.jit(trainer.chunk), state, trainer.num_chunks)
    wall = time.perf_counter() - tic
    steps = trainer.iterations_per_chunk * trainer.steps_per_iteration
    policy = trainer.policy(state)

    def policy_fn(key, obs):
        return policy.sample(key, obs)[0]

    return {
        "trainer": name,
        "env_steps": steps * trainer.num_chunks,
        "wall_s": wall,
        "env_steps_per_s": steps / min(times[1:] or times),
        **evaluate(policy_fn, cfg, jax.random.key(cfg.seed + 100)),
    }


def run_all(cfg: BraxBenchConfig) -> list[dict]:
    """One row per trainer (see the module docstring)."""
    rows = []
    for name in cfg.trainers:
        if name in ("brax_ppo", "brax_apg"):
            rows.append(_brax_agent(name, cfg))
        elif name == "ours_rp":
            rows += [_ours_rp(cfg, objective) for objective in cfg.rp_objectives]
        elif name in ("ours_group_pg", "ours_ppo"):
            rows.append(_ours_lr(name, cfg))
        else:
            raise ValueError(f"unknown trainer {name!r}")
        print(json.dumps(rows[-1]), flush=True)
    for r in rows:
        r.update(
            task=cfg.task, backend=cfg.backend, seed=cfg.seed, num_envs=cfg.groups * cfg.group_size
        )
    return rows


def table(rows: list[dict]) -> str:
    cols = [
        "trainer",
        "env_steps",
        "wall_s",
        "env_steps_per_s",
        "eval_mean",
        "eval_cvar_0.1",
        "eval_median",
    ]
    return markdown_table(rows, cols, floatfmt=".4g")


def main(
    out: pathlib.Path = pathlib.Path("results/brax-bench"),
    quick: bool = False,
    task: str | None = None,
    backend: str | None = None,
    seed: int = 0,
    budget: int | None = None,
    trainers: tuple[str, ...] | None = None,
    rp_learn_std: bool = False,
) -> list[dict]:
    """Runs the trainers; prints a table and JSON; writes ``bench_<task>_<seed>.json``/``.md``."""
    cfg = QUICK if quick else BraxBenchConfig()
    overrides = {"task": task, "backend": backend, "budget": budget, "trainers": trainers}
    cfg = dataclasses.replace(
        cfg, seed=seed, rp_learn_std=rp_learn_std, **{k: v for k, v in overrides.items() if v}
    )
    rows = run_all(cfg)
    text = table(rows)
    print(text)
    result = {"config": dataclasses.asdict(cfg), "device": str(jax.devices()[0]), "rows": rows}
    print(json.dumps(result))
    stem = f"bench_{cfg.task}_{cfg.backend}_seed{cfg.seed}" + ("_learnstd" if rp_learn_std else "")
    write_json_atomic(pathlib.Path(out) / f"{stem}.json", result)
    write_text_atomic(pathlib.Path(out) / f"{stem}.md", text)
    return rows


if __name__ == "__main__":
    tyro.cli(main)
