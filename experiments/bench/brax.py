"""Ours vs brax's own agents on one brax task: same backend, batch and env-step budget, one process.

Trainers (all on ``brax/<task>``, backend ``backend``, ``num_groups * group_size`` parallel
episodes of ``num_steps`` steps, ``budget.total`` env steps each in ``budget.num_chunks`` chunks):

* ``brax_ppo`` -- ``brax.training.agents.ppo.train`` (brax's defaults otherwise);
* ``brax_apg`` -- ``brax.training.agents.apg.train`` (analytic policy gradient through the same
  simulator; on inverted_pendulum it gets the smooth reward of ``ordergrad_envs.brax_env``, since
  the native constant reward has a zero pathwise gradient);
* ``ours_rp`` -- the pathwise trainer (:mod:`ordergrad_experiments.pathwise`, its settings ``rp``)
  with each of ``rp_objectives``, smooth reward on inverted_pendulum;
* ``ours_group_pg`` / ``ours_ppo`` -- the LR trainers of ``experiments/control`` (their settings
  ``control``: RLOO advantage, and PPO + GAE), native reward.

The bench embeds the configs of the trainers it times (``rp``: a ``PathwiseConfig``, ``control``:
a ``ControlConfig``; ``--set rp.learn_std=True``, ``--set rp.estimator.k=2``,
``--set control.optim.lr=1e-3``) and sets their ``env``, ``env_params``, ``groups``,
``num_steps``, ``budget``, ``seed`` and ``num_seeds`` (1) from its own shared fields, so every
trainer runs on the same task, batch and budget: those fields of ``rp`` and ``control`` are
ignored (``rp.estimator.objective`` too: ``rp_objectives`` gives one run per objective).

brax's agents run only where brax's training code imports and runs on the installed jax (it
breaks on jax >= 0.10): otherwise their row carries an ``error`` and the bench goes on. The quick
preset runs only our trainers (a CI smoke test).

Speed: steady env steps per second, compile excluded (brax: its own ``training/sps`` of the last
training epoch; ours: the fastest chunk after the first). Final returns: every final policy is
evaluated the same way, ``eval_episodes`` stochastic episodes of ``num_steps`` steps in
``ordergrad_envs.brax_env`` with the task's *native* reward (for inverted_pendulum: steps balanced),
as mean, CVaR_0.1 and median.

Run: ``ordergrad-jax bench brax [--quick] [--out DIR] [--set task=hopper --set budget.total=524288
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
from ordergrad_envs.brax_env import SMOOTH_REWARDS, brax_task, make_brax
from ordergrad_envs.rollout import group_rollout
from ordergrad_experiments.common.config import BudgetConfig, EstimatorConfig, GroupsConfig
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.control import ControlConfig
from ordergrad_experiments.pathwise import PathwiseConfig


@dataclasses.dataclass(frozen=True)
class BraxBenchConfig:
    """The settings every trainer shares, and each of our trainers' own (``rp``, ``control``;
    the bench sets their shared fields: see the module docstring)."""

    task: str = "inverted_pendulum"
    backend: str = "spring"
    num_steps: int = 64
    """Steps per episode (the horizon of every trainer)."""
    groups: GroupsConfig = dataclasses.field(
        default_factory=lambda: GroupsConfig(num_groups=16, group_size=8)
    )
    """``num_groups * group_size`` parallel episodes for every trainer."""
    budget: BudgetConfig = dataclasses.field(
        default_factory=lambda: BudgetConfig(total=1_048_576, num_chunks=4)
    )
    """``budget.total``: env steps per trainer (ours round it down to whole iterations, at least
    one per chunk), in ``budget.num_chunks`` chunks (brax's agents: ``num_chunks + 1``
    evaluations)."""
    trainers: tuple[str, ...] = ("brax_ppo", "brax_apg", "ours_rp", "ours_group_pg", "ours_ppo")
    rp_objectives: tuple[str, ...] = ("Mean",)
    """One ``ours_rp`` run per objective (its ``rp.estimator.objective``)."""
    eval_episodes: int = 1024
    seed: int = 0
    rp: PathwiseConfig = dataclasses.field(default_factory=PathwiseConfig)
    """The RP trainer's own settings (``rp.estimator.k``; ``rp.learn_std``: our RP policy learns
    its action std, as brax APG's does, else a fixed ``rp.action_std``)."""
    control: ControlConfig = dataclasses.field(
        default_factory=lambda: ControlConfig(
            estimator=EstimatorConfig(name="rloo"), hidden=(32, 32)
        )
    )
    """The group-PG / PPO trainers' own settings (``ours_ppo`` sets ``algo=ppo``, ``num_envs``
    and ``ppo_steps`` from the shared batch)."""


QUICK = BraxBenchConfig(
    num_steps=8,
    groups=GroupsConfig(num_groups=2, group_size=4),
    budget=BudgetConfig(total=256, num_chunks=2),
    trainers=("ours_rp", "ours_group_pg"),
    eval_episodes=16,
    rp=PathwiseConfig(estimator=EstimatorConfig(name="ordergrad", objective="Mean", k=2)),
)
"""CI size: our RP and group-PG trainers only, tiny sizes (the time is compilation)."""


def _reward(task: str) -> str:
    """The reward our RP trainer and brax's APG train on: smooth where one is defined."""
    return "smooth" if task in SMOOTH_REWARDS else "native"


def evaluate(policy: Callable, config: BraxBenchConfig, key: jax.Array) -> dict[str, float]:
    """Native-reward returns of ``policy(key, obs) -> (action, logp)`` over ``eval_episodes``
    independent episodes (``ordergrad_envs.rollout.group_rollout``)."""
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
            num_timesteps=config.budget.total,
            num_envs=num_envs,
            episode_length=config.num_steps,
            batch_size=num_envs,
            num_minibatches=max(1, num_envs // 32),
            unroll_length=min(10, config.num_steps),
            num_evals=config.budget.num_chunks + 1,
            learning_rate=3e-4,
            num_eval_envs=num_envs,
            seed=config.seed,
            progress_fn=progress,
        )
    else:
        from brax.training.agents.apg import train as apg

        updates = max(config.budget.total // (num_envs * config.num_steps), 1)
        make_policy, params, _ = apg.train(
            environment=brax_task(config.task, config.backend, _reward(config.task)),
            episode_length=config.num_steps,
            policy_updates=updates,
            horizon_length=config.num_steps,
            num_envs=num_envs,
            num_evals=config.budget.num_chunks + 1,
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
        env_steps = log[-1][1] if log else config.budget.total
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


def rp_config(config: BraxBenchConfig, objective: str) -> PathwiseConfig:
    """``config.rp`` with the shared fields set: the task (smooth reward where one is defined),
    the batch, the budget, the seed (one seed), and ``objective``."""
    return dataclasses.replace(
        config.rp,
        env=f"brax/{config.task}",
        env_params=(f"backend={config.backend}", f"reward={_reward(config.task)}"),
        estimator=dataclasses.replace(config.rp.estimator, objective=objective),
        groups=config.groups,
        num_steps=config.num_steps,
        budget=config.budget,
        seed=config.seed,
        num_seeds=1,
    )


def control_config(name: str, config: BraxBenchConfig) -> ControlConfig:
    """``config.control`` with the shared fields set (the task with its native reward, the
    batch, the budget, the seed, one seed); ``ours_ppo``: PPO over the same parallel episodes."""
    control = dataclasses.replace(
        config.control,
        env=f"brax/{config.task}",
        env_params=(f"backend={config.backend}", f"episode_length={config.num_steps}"),
        seed=config.seed,
        num_seeds=1,
        groups=config.groups,
        num_steps=config.num_steps,
        budget=config.budget,
    )
    if name == "ours_ppo":
        num_envs = config.groups.num_groups * config.groups.group_size
        control = dataclasses.replace(
            control, algo="ppo", num_envs=num_envs, ppo_steps=config.num_steps
        )
    return control


def ours_rp(config: BraxBenchConfig) -> list[dict[str, Any]]:
    """The pathwise trainer (:func:`rp_config`), one row per objective of ``rp_objectives``."""
    from ordergrad_experiments.pathwise import make_train

    rows = []
    for objective in config.rp_objectives:
        trainer = make_train(rp_config(config, objective))
        state, timing = _timed_trainer(trainer, config.seed)
        std = ", learned std" if config.rp.learn_std else ""
        rows.append(
            {
                "trainer": f"ours_rp[{objective}{std}]",
                **timing,
                **evaluate(trainer.policy(state).sample, config, _eval_key(config)),
            }
        )
    return rows


def ours_lr(name: str, config: BraxBenchConfig) -> dict[str, Any]:
    """The control trainers (:func:`control_config`): group-PG with the RLOO advantage
    (``ours_group_pg``) or PPO (``ours_ppo``)."""
    from ordergrad_experiments.control import make_train

    trainer = make_train(control_config(name, config))
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
        f"{config.budget.total} env steps each\n\n{text}"
    )
    return rows
