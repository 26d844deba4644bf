"""Ours vs brax's own agents on one brax task: same backend, batch and env-step budget, one process.

Trainers (all on ``brax/<task>``, backend ``backend``, ``num_groups * group_size`` parallel
episodes of ``num_steps`` steps, ``budget`` env steps each):

* ``brax_ppo`` -- ``brax.training.agents.ppo.train`` (brax's defaults otherwise);
* ``brax_apg`` -- ``brax.training.agents.apg.train`` (analytic policy gradient through the same
  simulator; on inverted_pendulum it gets the smooth reward of ``envs.brax_env``, since the
  native constant reward has a zero pathwise gradient);
* ``ours_rp`` -- the pathwise trainer (:mod:`experiments.pathwise`) with each of
  ``rp_objectives``, smooth reward on inverted_pendulum;
* ``ours_group_pg`` / ``ours_ppo`` -- the LR trainers of ``experiments/control`` (RLOO advantage,
  and PPO + GAE), native reward.

brax's agents run only where brax's training code imports and runs on the installed jax (it
breaks on jax >= 0.10): otherwise their row carries an ``error`` and the bench goes on. The quick
preset runs only our trainers (a CI smoke test).

Speed: steady env steps per second, compile excluded (brax: its own ``training/sps`` of the last
training epoch; ours: the fastest chunk after the first). Final returns: every final policy is
evaluated the same way, ``eval_episodes`` stochastic episodes of ``num_steps`` steps in
``envs.brax_env`` with the task's *native* reward (for inverted_pendulum: steps balanced), as
mean, CVaR_0.1 and median.

Run: ``ordergrad-jax bench brax [--quick] [--out DIR] [--set task=hopper --set budget=524288
--set trainers=ours_rp,brax_apg]``. The run folder (``metrics.jsonl``: one row per trainer run) is
a benchmark of ``reports/brax/RESULTS.md`` section 5 once it lies in ``reports/brax/bench/brax/``
(``ordergrad-jax report brax``; layout in ``experiments/report/brax.py``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import ordergrad_jax as og
from envs.brax_env import SMOOTH_REWARDS, brax_task, make_brax
from envs.rollout import group_rollout
from experiments.common.config import EstimatorConfig, GroupsConfig
from experiments.common.runs import RunWriter, markdown_table


@dataclasses.dataclass(frozen=True)
class BraxBenchConfig:
    task: str = "inverted_pendulum"
    backend: str = "spring"
    num_steps: int = 64
    """Steps per episode (the horizon of every trainer)."""
    groups: GroupsConfig = dataclasses.field(
        default_factory=lambda: GroupsConfig(num_groups=16, group_size=8)
    )
    """``num_groups * group_size`` parallel episodes for every trainer."""
    budget: int = 1_048_576
    """Env steps per trainer."""
    num_chunks: int = 4
    trainers: tuple[str, ...] = ("brax_ppo", "brax_apg", "ours_rp", "ours_group_pg", "ours_ppo")
    rp_objectives: tuple[str, ...] = ("Mean",)
    rp_learn_std: bool = False
    """Our RP policy learns its action std (brax APG's policy does); else a fixed 0.3."""
    k: int = 4
    eval_episodes: int = 1024
    seed: int = 0


QUICK = BraxBenchConfig(
    num_steps=8,
    groups=GroupsConfig(num_groups=2, group_size=4),
    budget=256,
    num_chunks=2,
    trainers=("ours_rp", "ours_group_pg"),
    k=2,
    eval_episodes=16,
)
"""CI size: our RP and group-PG trainers only, tiny sizes (the time is compilation)."""


def _reward(task: str) -> str:
    """The reward our RP trainer and brax's APG train on: smooth where one is defined."""
    return "smooth" if task in SMOOTH_REWARDS else "native"


def evaluate(policy: Callable, config: BraxBenchConfig, key: jax.Array) -> dict[str, float]:
    """Native-reward returns of ``policy(key, obs) -> (action, logp)`` over ``eval_episodes``
    independent episodes (``envs.rollout.group_rollout``)."""
    env, params = make_brax(config.task, backend=config.backend, episode_length=config.num_steps)
    episodes = jax.jit(
        lambda k: group_rollout(
            env, params, policy, k, config.eval_episodes, 1, config.num_steps, differentiable=False
        )
    )(key)
    x = episodes.returns[:, 0]
    return {
        "eval_mean": float(og.metrics.mean(x)),
        "eval_cvar_0.1": float(og.metrics.cvar(x, 0.1)),
        "eval_median": float(jnp.median(x)),
    }


def _eval_key(config: BraxBenchConfig) -> jax.Array:
    return jax.random.key(config.seed + 100)


def _brax_agent(name: str, config: BraxBenchConfig) -> dict[str, Any]:
    """brax's PPO (``brax_ppo``) or APG (``brax_apg``) on the task."""
    num_envs = config.groups.num_groups * config.groups.group_size
    log: list[tuple[float, int, dict]] = []

    def progress(step, metrics):
        log.append((time.perf_counter(), int(step), {k: float(v) for k, v in metrics.items()}))

    tic = time.perf_counter()
    if name == "brax_ppo":
        from brax.training.agents.ppo import train as ppo

        make_policy, params, _ = ppo.train(
            environment=brax_task(config.task, config.backend),
            num_timesteps=config.budget,
            num_envs=num_envs,
            episode_length=config.num_steps,
            batch_size=num_envs,
            num_minibatches=max(1, num_envs // 32),
            unroll_length=min(10, config.num_steps),
            num_evals=config.num_chunks + 1,
            learning_rate=3e-4,
            num_eval_envs=num_envs,
            seed=config.seed,
            progress_fn=progress,
        )
    else:
        from brax.training.agents.apg import train as apg

        updates = max(config.budget // (num_envs * config.num_steps), 1)
        make_policy, params, _ = apg.train(
            environment=brax_task(config.task, config.backend, _reward(config.task)),
            episode_length=config.num_steps,
            policy_updates=updates,
            horizon_length=config.num_steps,
            num_envs=num_envs,
            num_evals=config.num_chunks + 1,
            num_eval_envs=num_envs,
            learning_rate=1e-3,
            seed=config.seed,
            progress_fn=progress,
        )
    wall = time.perf_counter() - tic
    sps = [m["training/sps"] for _, _, m in log if "training/sps" in m]
    inference = make_policy(params, deterministic=False)

    def policy(key, obs):
        return inference(obs, jax.random.key_data(key))[0], jnp.zeros(())

    if name == "brax_ppo":
        env_steps = log[-1][1] if log else config.budget
    else:  # apg's progress counts policy updates, each num_envs x horizon_length env steps
        env_steps = updates * num_envs * config.num_steps
    return {
        "trainer": name,
        "env_steps": env_steps,
        "wall_s": wall,
        "env_steps_per_s": sps[-1] if sps else float("nan"),
        **evaluate(policy, config, _eval_key(config)),
    }


def brax_agent(name: str, config: BraxBenchConfig) -> dict[str, Any]:
    """:func:`_brax_agent`, or a row with the ``error`` when brax's training code fails to import
    or run on this jax (brax's agents break on jax >= 0.10); the bench goes on."""
    try:
        return _brax_agent(name, config)
    except Exception as err:  # third-party code on a jax it may not support
        message = (
            f"brax's own agent {name} failed on jax {jax.__version__}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} "
            "(brax's training code needs a jax it supports; our trainers are unaffected)"
        )
        print(f"ordergrad-jax bench brax: {message}", file=sys.stderr)
        return {"trainer": name, "error": message}


def _timed_chunks(chunk_fn: Any, state: Any, n: int) -> tuple[Any, list[float]]:
    """Runs ``state, _ = chunk_fn(state)`` ``n`` times; the final state and each call's seconds
    (the first includes compilation)."""
    times = []
    for _ in range(n):
        tic = time.perf_counter()
        state, _ = jax.block_until_ready(chunk_fn(state))
        times.append(time.perf_counter() - tic)
    return state, times


def _timed_trainer(trainer: Any, seed: int) -> tuple[Any, dict[str, float]]:
    """Trains one seed chunk by chunk; the final state, the wall time and the steady speed."""
    tic = time.perf_counter()
    state = jax.jit(trainer.init)(jax.random.key(seed))
    state, times = _timed_chunks(jax.jit(trainer.chunk), state, trainer.num_chunks)
    steps = trainer.iterations_per_chunk * trainer.steps_per_iteration
    return state, {
        "env_steps": steps * trainer.num_chunks,
        "wall_s": time.perf_counter() - tic,
        "env_steps_per_s": steps / min(times[1:] or times),
    }


def ours_rp(config: BraxBenchConfig) -> list[dict[str, Any]]:
    """The pathwise trainer, one row per objective of ``rp_objectives``."""
    from experiments.pathwise.config import PathwiseConfig
    from experiments.pathwise.train import make_train

    groups = config.groups
    per_iteration = groups.num_groups * groups.group_size * config.num_steps
    iterations = max(config.budget // per_iteration // config.num_chunks, 1) * config.num_chunks
    rows = []
    for objective in config.rp_objectives:
        pcfg = PathwiseConfig(
            env=f"brax/{config.task}",
            env_params=(f"backend={config.backend}", f"reward={_reward(config.task)}"),
            objective=objective,
            k=config.k,
            groups=groups,
            num_steps=config.num_steps,
            iterations=iterations,
            num_chunks=config.num_chunks,
            seed=config.seed,
            learn_std=config.rp_learn_std,
        )
        trainer = make_train(pcfg)
        state, timing = _timed_trainer(trainer, config.seed)
        std = ", learned std" if config.rp_learn_std else ""
        rows.append(
            {
                "trainer": f"ours_rp[{objective}{std}]",
                **timing,
                **evaluate(trainer.policy(state).sample, config, _eval_key(config)),
            }
        )
    return rows


def ours_lr(name: str, config: BraxBenchConfig) -> dict[str, Any]:
    """The control trainers: group-PG with the RLOO advantage (``ours_group_pg``) or PPO."""
    from experiments.control.config import ControlConfig
    from experiments.control.run import make_train

    control = ControlConfig(
        env=f"brax/{config.task}",
        env_params=(f"backend={config.backend}", f"episode_length={config.num_steps}"),
        seed=config.seed,
        num_seeds=1,
        groups=config.groups,
        num_steps=config.num_steps,
        estimator=EstimatorConfig(name="rloo"),
        total_env_steps=config.budget,
        num_chunks=config.num_chunks,
        hidden=(32, 32),
    )
    if name == "ours_ppo":
        num_envs = config.groups.num_groups * config.groups.group_size
        control = dataclasses.replace(
            control, algo="ppo", num_envs=num_envs, ppo_steps=config.num_steps
        )
    trainer = make_train(control)
    state, timing = _timed_trainer(trainer, config.seed)
    policy = trainer.policy(state)
    return {"trainer": name, **timing, **evaluate(policy.sample, config, _eval_key(config))}


TRAINERS: dict[str, Callable[[BraxBenchConfig], list[dict[str, Any]]]] = {
    "brax_ppo": lambda config: [brax_agent("brax_ppo", config)],
    "brax_apg": lambda config: [brax_agent("brax_apg", config)],
    "ours_rp": ours_rp,
    "ours_group_pg": lambda config: [ours_lr("ours_group_pg", config)],
    "ours_ppo": lambda config: [ours_lr("ours_ppo", config)],
}
"""The trainers the bench knows, by name: ``config -> rows``."""


def run_all(config: BraxBenchConfig) -> list[dict]:
    """One row per trainer (see the module docstring)."""
    unknown = [name for name in config.trainers if name not in TRAINERS]
    if unknown:
        raise ValueError(f"unknown trainer(s) {unknown}; the bench knows {list(TRAINERS)}")
    rows = []
    for name in config.trainers:
        for row in TRAINERS[name](config):
            print(json.dumps(row), flush=True)
            rows.append(row)
    num_envs = config.groups.num_groups * config.groups.group_size
    for r in rows:
        r.update(task=config.task, backend=config.backend, seed=config.seed, num_envs=num_envs)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table of the rows (brax agents that failed show their error)."""
    cols = [
        "trainer",
        "env_steps",
        "wall_s",
        "env_steps_per_s",
        "eval_mean",
        "eval_cvar_0.1",
        "eval_median",
    ]
    if any("error" in r for r in rows):
        cols.append("error")
    return markdown_table(rows, cols, floatfmt=".4g")


def run(config: BraxBenchConfig, writer: RunWriter, progress: Any = None) -> list[dict]:
    """Runs the trainers; prints and writes the table (``summary.md``) and the rows."""
    writer.write_config(config, jax=jax.__version__, device=str(jax.devices()[0]))
    rows = run_all(config)
    text = table(rows)
    print(text)
    writer.log(rows)
    writer.write_summary(
        f"# brax/{config.task} ({config.backend}): ours vs brax's agents, "
        f"{config.budget} env steps each\n\n{text}"
    )
    return rows
