"""The accelerator check: what this machine's devices do with ordergrad-jax, in one run.

``ordergrad-jax bench accelerator [--quick] [--out DIR]`` runs with whatever jax and devices the
machine has and writes one run folder (``config.json`` with the provenance: device kind and
count, jax/jaxlib and package versions, git commit, UTC times; ``metrics.jsonl``, one row per
measurement with its ``part``; ``summary.md``, a table per part):

* ``matmul``: the measured matmul peak, FLOP/s of a jitted ``[n, n] @ [n, n]`` in bfloat16 and
  float32 (the denominators of the LM part);
* ``transform``: the transform bench (:mod:`experiments.bench.transform`) at the README's shapes;
* ``control``: group-PG (OrderGrad, RLOO) and PPO env-steps/s on CartPole at 2048 parallel
  episodes (PureJaxRL's regime; :mod:`experiments.bench.control`);
* ``lm``: the LM loop's step time, tokens/s and learner FLOP/s
  (:mod:`experiments.bench.lm_speed`), as a fraction of the bf16 and f32 matmul peaks, at the
  CPU study size and at a larger model (d = 1024, 8 layers; the loop computes in float32 at the
  task's sequence length);
* ``brax``: group-PG and RP env-steps/s on brax hopper (:mod:`experiments.bench.brax`).

A part whose packages are missing on the machine (gymnax for ``control``, brax, tunix for ``lm``)
gives one row with the import ``error``, and the run goes on.

``--quick`` is the CPU smoke size (CI): small matmuls and shapes, 64 episodes, the LM study size
with a few steps, no brax.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench import control, transform
from experiments.common.config import GroupsConfig
from experiments.common.runs import RunWriter, markdown_table

LM_SIZES = {
    "study": {},
    "large": {"num_layers": 8, "embed_dim": 1024, "hidden_dim": 3072, "num_heads": 16,
              "num_kv_heads": 8, "head_dim": 64},
}  # fmt: skip
"""``model`` overrides of each LM size (``study``: the CPU study's ``TinyQwen3``)."""


@dataclasses.dataclass(frozen=True)
class AcceleratorBenchConfig:
    parts: tuple[str, ...] = ("matmul", "transform", "control", "lm", "brax")
    matmul_n: int = 8192
    repeats: int = 5
    """Timing rounds (best kept) of the matmul, transform and control parts."""
    transform_shapes: tuple[tuple[int, int, int], ...] = transform.FULL_SHAPES
    control_groups: GroupsConfig = dataclasses.field(
        default_factory=lambda: GroupsConfig(num_groups=256, group_size=8)
    )
    """group-PG: ``num_groups * group_size`` parallel episodes (2048)."""
    control_num_steps: int = 500
    ppo_num_envs: int = 2048
    control_steps_per_chunk: int = 8_192_000
    lm_sizes: tuple[str, ...] = ("study", "large")
    lm_steps: int = 8
    brax_task: str = "hopper"
    brax_groups: GroupsConfig = dataclasses.field(
        default_factory=lambda: GroupsConfig(num_groups=256, group_size=8)
    )
    brax_num_steps: int = 64
    brax_budget: int = 4_194_304


QUICK = AcceleratorBenchConfig(
    parts=("matmul", "transform", "control", "lm"),
    matmul_n=256,
    repeats=2,
    transform_shapes=((64, 16, 4), (4, 1024, 64)),
    control_groups=GroupsConfig(num_groups=8, group_size=8),
    control_num_steps=100,
    ppo_num_envs=64,
    control_steps_per_chunk=25_600,
    lm_sizes=("study",),
    lm_steps=3,
)
"""CPU smoke size (CI)."""


def matmul_peak(n: int, dtype: Any, repeats: int) -> float:
    """Best observed FLOP/s of a jitted ``[n, n] @ [n, n]`` product in ``dtype``."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    f = jax.jit(lambda x, y: x @ y)
    jax.block_until_ready(f(a, a))
    best = np.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        jax.block_until_ready(f(a, a))
        best = min(best, time.perf_counter() - tic)
    return 2 * n**3 / best


def matmul_rows(config: AcceleratorBenchConfig, peaks: dict[str, float]) -> list[dict]:
    """The bf16 and f32 peaks (also stored in ``peaks`` for the LM part)."""
    n = config.matmul_n
    for name, dtype in (("bfloat16", jnp.bfloat16), ("float32", jnp.float32)):
        peaks[name] = matmul_peak(n, dtype, config.repeats)
    return [{"dtype": name, "n": n, "flops_per_s": flops} for name, flops in peaks.items()]


def transform_rows(config: AcceleratorBenchConfig, peaks: dict[str, float]) -> list[dict]:
    bench = transform.TransformBenchConfig(
        shapes=config.transform_shapes, repeats=config.repeats, number=max(config.repeats, 3)
    )
    return transform.run_shapes(bench)


def control_rows(config: AcceleratorBenchConfig, peaks: dict[str, float]) -> list[dict]:
    bench = control.ControlBenchConfig(
        steps_per_chunk=config.control_steps_per_chunk,
        repeats=config.repeats,
        groups=config.control_groups,
        num_steps=config.control_num_steps,
        ppo_num_envs=config.ppo_num_envs,
    )
    groups = config.control_groups
    return [
        {**row, "parallel_episodes": groups.num_groups * groups.group_size}
        if row["trainer"].startswith("group_pg")
        else {**row, "parallel_episodes": config.ppo_num_envs}
        for row in control.measure(control.cases(bench), bench.repeats)
    ]


def lm_rows(config: AcceleratorBenchConfig, peaks: dict[str, float]) -> list[dict]:
    """Step time, tokens/s, learner FLOP/s of each LM size, and its fraction of each peak."""
    from experiments.bench import lm_speed

    if not peaks:
        matmul_rows(config, peaks)
    from experiments.lm.config import TinyQwen3

    rows = []
    for size in config.lm_sizes:
        model = dataclasses.replace(TinyQwen3(), **LM_SIZES[size])
        result = lm_speed.measure(lm_speed.speed_config(steps=config.lm_steps, model=model))
        row = {"size": size, **result}
        for dtype, peak in peaks.items():
            row[f"learner_fraction_of_{dtype}_peak"] = result["learner_flops_per_s"] / peak
        rows.append(row)
    return rows


def brax_rows(config: AcceleratorBenchConfig, peaks: dict[str, float]) -> list[dict]:
    from experiments.bench import brax

    bench = brax.BraxBenchConfig(
        task=config.brax_task,
        num_steps=config.brax_num_steps,
        groups=config.brax_groups,
        budget=config.brax_budget,
        num_chunks=3,
        eval_episodes=64,
    )
    return [*brax.ours_rp(bench), brax.ours_lr("ours_group_pg", bench)]


PART_ROWS = {
    "matmul": matmul_rows,
    "transform": transform_rows,
    "control": control_rows,
    "lm": lm_rows,
    "brax": brax_rows,
}
"""Each part: ``(config, peaks) -> rows`` (``peaks``: the matmul FLOP/s by dtype, shared)."""


def run(config: AcceleratorBenchConfig, writer: RunWriter, progress: Any = None) -> list[dict]:
    """Runs the parts of ``config.parts`` in order; writes every row and a table per part."""
    unknown = sorted(set(config.parts) - set(PART_ROWS))
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; the accelerator bench has {list(PART_ROWS)}")
    writer.write_config(config, jax=jax.__version__, device=str(jax.devices()[0]))
    sections = [
        f"# Accelerator check: {jax.device_count()} x {jax.devices()[0].device_kind} "
        f"({jax.default_backend()}), jax {jax.__version__}",
    ]
    peaks: dict[str, float] = {}
    parts = progress(config.parts) if progress else config.parts
    for part in parts:
        tic = time.perf_counter()
        try:
            rows = [{"part": part, **row} for row in PART_ROWS[part](config, peaks)]
        except ImportError as err:  # e.g. no gymnax or brax on this machine: say so, go on
            rows = [{"part": part, "error": f"{type(err).__name__}: {err}"}]
        writer.log(rows)
        flat = [{k: v for k, v in r.items() if not isinstance(v, dict | list)} for r in rows]
        seconds = time.perf_counter() - tic
        sections.append(f"## {part} ({seconds:.0f} s)\n\n{markdown_table(flat, floatfmt='.4g')}")
        print(sections[-1], flush=True)
    writer.write_summary("\n\n".join(sections))
    return writer.metrics
