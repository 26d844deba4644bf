"""The accelerator check: what this machine's devices do with ordergrad-jax, in one run.

``ordergrad-jax bench accelerator [--quick] [--out DIR]`` runs with whatever jax and devices the
machine has and writes one run folder (``config.json`` with the provenance: device kind and
count, jax/jaxlib and package versions, git commit, UTC times; ``metrics.jsonl``, one row per
measurement with its ``part``; ``summary.md``, a table per part):

* ``matmul``: the measured matmul peak, FLOP/s of a jitted ``[n, n] @ [n, n]`` in bfloat16 and
  float32 (the denominators of the LM part);
* ``transform``: the transform bench (:mod:`ordergrad_experiments.bench.transform`) at the README's
  shapes;
* ``control``: group-PG (OrderGrad, RLOO) and PPO env-steps/s on CartPole at 2048 parallel
  episodes (PureJaxRL's regime; :mod:`ordergrad_experiments.bench.control`);
* ``lm``: the LM loop's step time, tokens/s and learner FLOP/s
  (:mod:`ordergrad_experiments.bench.lm_speed`), as a fraction of the bf16 and f32 matmul peaks, at
  the CPU study size and at a larger model (d = 1024, 8 layers; the loop computes in float32 at the
  task's sequence length);
* ``brax``: group-PG and RP env-steps/s on brax hopper (:mod:`ordergrad_experiments.bench.brax`).

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

from ordergrad_experiments.bench import control, transform
from ordergrad_experiments.common.config import BudgetConfig, GroupsConfig
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.control import ControlConfig
from ordergrad_experiments.lm import LMConfig

LM_SIZES = {
    "study": {},
    "large": {"num_layers": 8, "embed_dim": 1024, "hidden_dim": 3072, "num_heads": 16,
              "num_kv_heads": 8, "head_dim": 64},
}  # fmt: skip
"""``model`` overrides of each LM size (``study``: the CPU study's ``TinyQwen3``)."""


def _default_control() -> ControlConfig:
    """The timed control run: the control bench's (OrderGrad lower tail, K=4, CartPole, one
    seed) at 2048 parallel episodes (group-PG: 256 groups x 8; PPO: 2048 envs), 8.192M env
    steps in one chunk."""
    return dataclasses.replace(
        control.ControlBenchConfig().control,
        groups=GroupsConfig(num_groups=256, group_size=8),
        num_steps=500,
        num_envs=2048,
        budget=BudgetConfig(8_192_000, 1),
    )


def _default_lm() -> LMConfig | None:
    """The LM speed bench's measured config
    (:func:`ordergrad_experiments.bench.lm_speed.speed_config`) with 8 RL steps; ``lm_rows``
    replaces its ``model`` by each size of :data:`LM_SIZES`. None where the LM packages (tunix) are
    missing: the lm part then reports the import error."""
    try:
        from ordergrad_experiments.bench import lm_speed
    except ImportError:
        return None
    base = lm_speed.speed_config()
    return dataclasses.replace(base, budget=dataclasses.replace(base.budget, total=8))


def _default_brax() -> Any:
    """The brax bench's config (:class:`ordergrad_experiments.bench.brax.BraxBenchConfig`) on
    hopper: 256 x 8 episodes of 64 steps, 4.19M env steps in 3 chunks, 64 evaluation episodes. None
    where its packages (flax, gymnax) are missing: the brax part then reports the import error."""
    try:
        from ordergrad_experiments.bench.brax import BraxBenchConfig
    except ImportError:
        return None
    return BraxBenchConfig(
        task="hopper",
        num_steps=64,
        groups=GroupsConfig(num_groups=256, group_size=8),
        budget=BudgetConfig(4_194_304, 3),
        eval_episodes=64,
    )


@dataclasses.dataclass(frozen=True)
class AcceleratorBenchConfig:
    parts: tuple[str, ...] = ("matmul", "transform", "control", "lm", "brax")
    matmul_n: int = 8192
    repeats: int = 5
    """Timing rounds (best kept) of the matmul, transform and control parts."""
    transform_shapes: tuple[tuple[int, int, int], ...] = transform.FULL_SHAPES
    control: ControlConfig = dataclasses.field(default_factory=_default_control)
    """The control part's trainer config (the OrderGrad case of
    :mod:`ordergrad_experiments.bench.control`; group-PG runs ``groups.num_groups *
    groups.group_size`` parallel episodes, PPO ``num_envs``; ``budget.total`` env steps timed per
    trainer, in one chunk)."""
    lm_sizes: tuple[str, ...] = ("study", "large")
    lm: LMConfig | None = dataclasses.field(default_factory=_default_lm)
    """The LM part's config (``budget.total`` RL steps); each size replaces its ``model``."""
    brax: Any = dataclasses.field(default_factory=_default_brax)
    """The brax part's :class:`ordergrad_experiments.bench.brax.BraxBenchConfig` (our RP trainers
    and group-PG on ``brax.task``); typed ``Any`` so that this module imports without brax's
    packages."""


def _quick_lm() -> LMConfig | None:
    """:func:`_default_lm` with 3 RL steps."""
    lm = _default_lm()
    return lm and dataclasses.replace(lm, budget=dataclasses.replace(lm.budget, total=3))


QUICK = AcceleratorBenchConfig(
    parts=("matmul", "transform", "control", "lm"),
    matmul_n=256,
    repeats=2,
    transform_shapes=((64, 16, 4), (4, 1024, 64)),
    control=dataclasses.replace(
        _default_control(),
        groups=GroupsConfig(num_groups=8, group_size=8),
        num_steps=100,
        num_envs=64,
        budget=BudgetConfig(25_600, 1),
    ),
    lm_sizes=("study",),
    lm=_quick_lm(),
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
    bench = control.ControlBenchConfig(control=config.control, repeats=config.repeats)
    groups = config.control.groups
    return [
        {**row, "parallel_episodes": groups.num_groups * groups.group_size}
        if row["trainer"].startswith("group_pg")
        else {**row, "parallel_episodes": config.control.num_envs}
        for row in control.measure(control.cases(bench), bench.repeats)
    ]


def lm_rows(config: AcceleratorBenchConfig, peaks: dict[str, float]) -> list[dict]:
    """Step time, tokens/s, learner FLOP/s of each LM size, and its fraction of each peak."""
    from ordergrad_experiments.bench import lm_speed

    if not peaks:
        matmul_rows(config, peaks)
    rows = []
    for size in config.lm_sizes:
        model = dataclasses.replace(config.lm.model, **LM_SIZES[size])
        result = lm_speed.measure(dataclasses.replace(config.lm, model=model))
        row = {"size": size, **result}
        for dtype, peak in peaks.items():
            row[f"learner_fraction_of_{dtype}_peak"] = result["learner_flops_per_s"] / peak
        rows.append(row)
    return rows


def brax_rows(config: AcceleratorBenchConfig, peaks: dict[str, float]) -> list[dict]:
    from ordergrad_experiments.bench import brax

    return [*brax.ours_rp(config.brax), brax.ours_lr("ours_group_pg", config.brax)]


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
