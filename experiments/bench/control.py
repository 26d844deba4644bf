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

from ordergrad_experiments.common.config import BudgetConfig, EstimatorConfig, GroupsConfig
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.control import ControlConfig


def _default_control() -> ControlConfig:
    """The timed group-PG run: CartPole, one seed, 4 x 8 episodes of at most 500 steps, the
    OrderGrad lower-tail advantage, 500k env steps in one chunk (PPO keeps the config's
    4 envs x 128 steps)."""
    return ControlConfig(
        env="CartPole-v1",
        num_seeds=1,
        groups=GroupsConfig(num_groups=4, group_size=8),
        num_steps=500,
        estimator=EstimatorConfig(name="ordergrad", objective="LowerTailMean:0.25", k=4),
        budget=BudgetConfig(500_000, 1),
    )


@dataclasses.dataclass(frozen=True)
class ControlBenchConfig:
    control: ControlConfig = dataclasses.field(default_factory=_default_control)
    """The trainer config timed (the OrderGrad case; the RLOO and PPO cases are built from it):
    ``control.budget.total`` env steps are timed per measurement (per trainer), in one chunk
    (``control.budget.num_chunks`` should stay 1)."""
    repeats: int = 3


QUICK = ControlBenchConfig(
    control=dataclasses.replace(_default_control(), budget=BudgetConfig(64_000, 1)), repeats=2
)


def cases(config: ControlBenchConfig) -> dict[str, ControlConfig]:
    """The three trainers, by name: ``config.control`` (OrderGrad), the same with the RLOO
    advantage, and PPO (lr 2.5e-4, entropy 0.01) on ``control.num_envs`` x ``control.ppo_steps``."""
    base = config.control
    est = base.estimator
    ppo_optim = dataclasses.replace(base.optim, lr=2.5e-4)
    return {
        f"group_pg ordergrad {est.objective} K={est.k}": base,
        "group_pg rloo": dataclasses.replace(base, estimator=EstimatorConfig(name="rloo")),
        f"ppo ({base.num_envs} envs x {base.ppo_steps} steps)": dataclasses.replace(
            base, algo="ppo", optim=ppo_optim, entropy_coef=0.01
        ),
    }


def _compiled(config: ControlConfig):
    """``(chunk, state, env steps per chunk, compile seconds)``, warmed up."""
    from ordergrad_experiments.control import make_train

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
    writer.write_summary(f"# Training speed: {config.control.env}, one process\n\n{text}")
    return rows
