"""The LM speed benchmark: the lm-rl step's tokens/s, step time and its split, the advantage
transform's share, and the learner's FLOP/s as a fraction of this machine's measured ``jnp.dot``
peak.

    ordergrad-jax bench lm-speed                                   # the default size, 1 device
    ordergrad-jax bench lm-speed --set digits=3                    # the pass@k study's size
    XLA_FLAGS=--xla_force_host_platform_device_count=8 ordergrad-jax bench lm-speed --set mesh=4,2

Runs ``lm.budget.total`` RL steps of :class:`LMSpeedBenchConfig`'s ``lm`` part (the lm-rl
defaults with no SFT, one chunk and a token evaluation: speed does not depend on the start;
``--set`` takes its keys bare or dotted, as ``run lm-rl`` does: ``--set budget.total=3``) and
reports medians over the steps after the first (which compiles). The ``jnp.dot`` peak is measured
in the same process before and after the steps; the larger of the two is the peak (so a machine
that got busier during the run does not flatter the learner's fraction).

With ``profile`` (XLA:CPU only; ``XLA_FLAGS`` must hold ``--xla_cpu_enable_xprof_traceme=true``
when the process starts), the learn phase is also traced alone (``jax.profiler``, one event per
XLA operation) and its operation time split into matrix products (``dot``), YNNPACK library
fusions (``fused``, with the default ``learn_cpu_fusions``), layout copies and transposes
(``copy``/``transpose`` fusions, which move data without arithmetic) and the other fused
element-wise work: :func:`learner_op_split`. The shares are of the summed operation time, which
counts both cores' threads and so exceeds the wall time.

The run folder (``OUT/lm-speed/<run-id>/``): ``config.json`` with the provenance and ``XLA_FLAGS``,
``metrics.jsonl`` with the one result row and the 1/5/15-minute load averages at its end,
``summary.md``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ordergrad_experiments.common.config import BudgetConfig
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.lm import LMConfig, build_model, rl_start, run_rl, task_setup


def dot_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best observed FLOP/s of a jitted ``[n, n] @ [n, n]`` float32 product."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, a).block_until_ready()
    best = np.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        f(a, a).block_until_ready()
        best = min(best, time.perf_counter() - tic)
    return 2 * n**3 / best


def speed_config(**overrides) -> LMConfig:
    """The measured configuration: the lm-rl defaults with no SFT, one chunk and a token
    evaluation (12 RL steps: ``budget=BudgetConfig(12, 1)``), with ``overrides`` (fields)."""
    base = LMConfig(sft_steps=0, budget=BudgetConfig(12, 1), eval_prompts=16, eval_samples=16)
    return dataclasses.replace(base, **overrides)


TRACEME = "--xla_cpu_enable_xprof_traceme=true"
"""The ``XLA_FLAGS`` entry that ``profile`` needs when the process starts."""


@dataclasses.dataclass(frozen=True)
class LMSpeedBenchConfig:
    """What ``bench lm-speed`` measures: ``lm.budget.total`` RL steps of ``lm`` on ``lm.mesh``."""

    lm: LMConfig = dataclasses.field(default_factory=speed_config)
    profile: bool = False
    """Also split the learn phase's operation time (XLA:CPU; module doc)."""


QUICK = LMSpeedBenchConfig(
    lm=speed_config(
        budget=BudgetConfig(3, 1), groups=dataclasses.replace(LMConfig().groups, num_groups=4)
    )
)
"""The smoke size: 3 steps of 4 groups."""


OP_CATEGORIES = ("dot", "fused", "copy", "other")


def op_category(name: str) -> str | None:
    """The category of one XLA:CPU operation's trace event (``None``: not an operation): a
    matrix product (``dot``), a YNNPACK library fusion (``fused``: products with their
    element-wise neighbours, or element-wise chains; ``LMConfig.learn_cpu_fusions``), a layout
    copy or transpose (``copy``) or other (fused) element-wise work."""
    if name.startswith(("$", "ThunkExecutor", "Slinky", "Pjit", "Thread", "Common", "Wait")):
        return None
    if name.startswith("dot"):
        return "dot"
    if name.startswith("ynn_fusion"):  # LMConfig.learn_cpu_fusions
        return "fused"
    if "copy" in name or "transpose" in name:
        return "copy"
    return "other"


def learner_op_split(cfg: LMConfig, repeats: int = 5) -> dict[str, float]:
    """Seconds per learn phase spent in each :func:`op_category`, from a ``jax.profiler`` trace
    of ``repeats`` learn phases of ``cfg`` (after one that compiles). Needs
    :data:`TRACEME` in ``XLA_FLAGS`` before JAX starts."""
    import collections
    import gzip
    import pathlib

    from ordergrad_experiments.lm import make_mesh

    mesh = make_mesh(cfg.mesh)
    tok, graphdef, params = build_model(cfg, mesh)
    state, phases = rl_start(cfg, graphdef, params, task_setup(cfg, tok), mesh)
    rollout = phases.sample(state.params, jax.random.key(0))
    scored = phases.score(state.params, state.ref_params, rollout)
    adv = phases.advantage(scored.rewards)
    p, o = state.params, state.opt_state

    def learn(p, o):
        p, o, _ = phases.learn(p, o, rollout, adv, scored.old_logp, scored.ref_logp)
        return jax.block_until_ready((p, o))

    p, o = learn(p, o)
    with tempfile.TemporaryDirectory() as logdir:
        jax.profiler.start_trace(logdir, create_perfetto_trace=True)
        for _ in range(repeats):
            p, o = learn(p, o)
        jax.profiler.stop_trace()
        (trace,) = pathlib.Path(logdir).rglob("*perfetto_trace.json.gz")
        events = json.load(gzip.open(trace))
    events = events["traceEvents"] if isinstance(events, dict) else events
    split: dict[str, float] = collections.Counter()
    for e in events:
        cat = op_category(e.get("name", "")) if e.get("ph") == "X" else None
        if cat is not None:
            split[cat] += e.get("dur", 0.0) * 1e-6 / repeats
    return {k: split.get(k, 0.0) for k in OP_CATEGORIES}


def measure(cfg: LMConfig) -> dict:
    """Medians of ``cfg.budget.total`` RL steps of ``cfg`` (the first left out; see
    :func:`speed_config`), their time split and the learner's share of the ``jnp.dot`` peak
    (module doc)."""
    peak_before = dot_peak()
    with tempfile.TemporaryDirectory() as out:
        rows = run_rl(cfg, RunWriter("lm-speed", out))
    rl = [r for r in rows if r.get("phase") == "rl"][1:]
    keys = ("sample_s", "score_s", "advantage_s", "learn_s", "step_s", "tokens_per_s")
    med = {k: float(np.median([r[k] for r in rl])) for k in (*keys, "learner_flops_per_s")}
    peak_after = dot_peak()
    peak = max(peak_before, peak_after)
    return {
        "mesh": list(cfg.mesh),
        "devices": jax.device_count(),
        **med,
        "advantage_share": med["advantage_s"] / med["step_s"],
        "dot_peak_flops": peak,
        "dot_peak_before_flops": peak_before,
        "dot_peak_after_flops": peak_after,
        "learner_peak_fraction": med["learner_flops_per_s"] / peak,
        "config": {
            "digits": cfg.digits,
            **dataclasses.asdict(cfg.groups),
            **{k: getattr(cfg.model, k) for k in ("num_layers", "embed_dim", "hidden_dim")},
            "learn_cpu_fusions": [f for f in cfg.learn_cpu_fusions if f],
        },
    }


def run(config: LMSpeedBenchConfig, writer: RunWriter, progress: Any = None) -> list[dict]:
    """``ordergrad-jax bench lm-speed``: measures ``config.lm`` and writes the result row (with
    the load averages at its end) and its table."""
    from ordergrad_experiments.common.provenance import load_average

    del progress
    flags = os.environ.get("XLA_FLAGS", "")
    if config.profile and TRACEME not in flags.split():
        raise ValueError(
            f"profile=True needs XLA_FLAGS={TRACEME} (with any other flags) when the process "
            "starts: set it in the environment"
        )
    writer.write_config(config, xla_flags=flags)
    result = measure(config.lm)
    if config.profile:
        split = learner_op_split(config.lm)
        total = sum(split.values())
        result["learner_op_s"] = split
        result["learner_op_share"] = {k: v / total for k, v in split.items()}
    print(json.dumps(result, indent=1))
    writer.log({**result, "load_avg_end": load_average()})
    flat = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
    writer.write_summary(markdown_table([flat]) + "\n")
    return writer.metrics
