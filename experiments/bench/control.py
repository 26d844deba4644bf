"""Training speed on CartPole in one process: env steps per second of the group-PG trainer with
the OrderGrad advantage vs the same trainer with the RLOO advantage (goal >= 0.95x), and vs our
PPO (by default PureJaxRL's CartPole setting: 4 envs x 128 steps). Compile excluded: each
trainer's chunk is compiled ahead, run once to warm up, then timed (best of ``repeats``).

Run: ``ordergrad-jax bench control [--quick] [--out DIR]``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax

from experiments.common.config import EstimatorConfig, GroupsConfig
from experiments.common.runs import RunWriter, markdown_table
from experiments.control.config import ControlConfig


@dataclasses.dataclass(frozen=True)
class ControlBenchConfig:
    env: str = "CartPole-v1"
    steps_per_chunk: int = 500_000
    """Env steps timed per measurement (per trainer)."""
    repeats: int = 3
    objective: str = "LowerTailMean:0.25"
    k: int = 4
    groups: GroupsConfig = dataclasses.field(
        default_factory=lambda: GroupsConfig(num_groups=4, group_size=8)
    )
    num_steps: int = 500
    ppo_num_envs: int = 4
    ppo_steps: int = 128


QUICK = ControlBenchConfig(steps_per_chunk=64_000, repeats=2)


def cases(config: ControlBenchConfig) -> dict[str, ControlConfig]:
    """The three trainers, by name."""
    base = ControlConfig(
        env=config.env,
        num_seeds=1,
        groups=config.groups,
        num_steps=config.num_steps,
        estimator=EstimatorConfig(name="ordergrad", objective=config.objective, k=config.k),
        total_env_steps=config.steps_per_chunk,
        num_chunks=1,
    )
    ppo_optim = dataclasses.replace(base.optim, lr=2.5e-4)
    return {
        f"group_pg ordergrad {config.objective} K={config.k}": base,
        "group_pg rloo": dataclasses.replace(base, estimator=EstimatorConfig(name="rloo")),
        f"ppo ({config.ppo_num_envs} envs x {config.ppo_steps} steps)": dataclasses.replace(
            base,
            algo="ppo",
            num_envs=config.ppo_num_envs,
            ppo_steps=config.ppo_steps,
            optim=ppo_optim,
            entropy_coef=0.01,
        ),
    }


def _compiled(config: ControlConfig):
    """``(chunk, state, env steps per chunk, compile seconds)``, warmed up."""
    from experiments.control.run import make_train

    trainer = make_train(config)
    state = jax.jit(trainer.init)(jax.random.key(0))
    tic = time.perf_counter()
    chunk = jax.jit(trainer.chunk).lower(state).compile()
    compile_s = time.perf_counter() - tic
    state, _ = jax.block_until_ready(chunk(state))  # warm-up
    return chunk, state, trainer.iterations_per_chunk * trainer.steps_per_iteration, compile_s


def measure(configs: dict[str, ControlConfig], repeats: int) -> list[dict]:
    """Steady env steps per second of each trainer's chunk (compiled ahead, warmed up); the
    trainers are timed in turn, ``repeats`` rounds, best time each, so that a load change on a
    shared machine hits them alike."""
    compiled = {name: _compiled(config) for name, config in configs.items()}
    best = dict.fromkeys(configs, float("inf"))
    for _ in range(repeats):
        for name, (chunk, state, _, _) in compiled.items():
            tic = time.perf_counter()
            jax.block_until_ready(chunk(state))
            best[name] = min(best[name], time.perf_counter() - tic)
    return [
        {
            "trainer": name,
            "env_steps": steps,
            "seconds": best[name],
            "env_steps_per_s": steps / best[name],
            "compile_s": compile_s,
        }
        for name, (_, _, steps, compile_s) in compiled.items()
    ]


def run(config: ControlBenchConfig, writer: RunWriter, progress: Any = None) -> list[dict]:
    """Measures the trainers; prints and writes the table (``summary.md``) and the rows."""
    writer.write_config(config, jax=jax.__version__, device=str(jax.devices()[0]))
    rows = measure(cases(config), config.repeats)
    og_rate, rloo_rate, ppo_rate = (r["env_steps_per_s"] for r in rows)
    for r in rows:
        r["vs_rloo"] = r["env_steps_per_s"] / rloo_rate
    columns = ["trainer", "env_steps", "seconds", "env_steps_per_s", "vs_rloo", "compile_s"]
    text = (
        markdown_table(rows, columns)
        + f"\nordergrad / rloo = {og_rate / rloo_rate:.3f} (goal >= 0.95); "
        f"ordergrad / ppo = {og_rate / ppo_rate:.3f}\n"
    )
    print(text)
    writer.log(rows)
    writer.write_summary(f"# Training speed: {config.env}, one process\n\n{text}")
    return rows
