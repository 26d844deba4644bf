"""Speed of the lm-rl step: tokens/s, step time and its split, the advantage transform's share,
and the learner's FLOP/s as a fraction of this machine's measured ``jnp.dot`` peak.

    python -m experiments.lm.speed --mesh 1,1
    python -m experiments.lm.speed --mesh 1,1 --set digits=3     # the pass@k study's size
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m experiments.lm.speed --mesh 4,2

Runs ``steps`` RL steps of the default configuration, or of it with ``--set key=value``
overrides (no SFT: speed does not depend on it), and reports medians over the steps after the
first (which compiles). The ``jnp.dot`` peak is measured in the same process before and after the
steps; the larger of the two is the peak (so a machine that got busier during the run does not
flatter the learner's fraction).

With ``--profile`` (XLA:CPU only), the learn phase is also traced alone (``jax.profiler``, one
event per XLA operation) and its operation time split into matrix products (``dot``), YNNPACK
library fusions (``fused``, with the default ``learn_cpu_fusions``), layout copies and transposes
(``copy``/``transpose`` fusions, which move data without arithmetic) and the other fused
element-wise work: :func:`learner_op_split`. The shares are of the summed
operation time, which counts both cores' threads and so exceeds the wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common.config import apply_overrides
from experiments.common.runs import RunWriter
from experiments.lm import run
from experiments.lm.config import LMConfig


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


def speed_config(
    mesh: tuple[int, ...], steps: int, sets: tuple[str, ...] = (), **overrides
) -> LMConfig:
    """The measured configuration: the default one (or with ``overrides`` and ``sets``) on
    ``mesh`` for ``steps`` RL steps in one chunk, no SFT and a token evaluation."""
    cfg = LMConfig(
        mesh=mesh,
        sft_steps=0,
        steps=steps,
        num_chunks=1,
        eval_prompts=16,
        eval_samples=16,
        **overrides,
    )
    return apply_overrides(cfg, sets)


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
    ``--xla_cpu_enable_xprof_traceme=true`` in ``XLA_FLAGS`` before JAX starts (``main`` sets
    it)."""
    import collections
    import gzip
    import pathlib

    from experiments.lm import sharding as lm_sharding

    mesh = lm_sharding.make_mesh(cfg.mesh)
    tok, graphdef, params = run.build_model(cfg, mesh)
    state, phases = run.rl_start(cfg, graphdef, params, run.task_setup(cfg, tok), mesh)
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


def measure(
    mesh: tuple[int, ...], steps: int = 12, sets: tuple[str, ...] = (), **overrides
) -> dict:
    """Medians of ``steps`` RL steps (the first left out) of the default config with
    ``overrides`` (fields) and ``sets`` (``key=value`` as for ``--set``), their time split and
    the learner's share of the ``jnp.dot`` peak (module doc)."""
    cfg = speed_config(mesh, steps, sets, **overrides)
    peak_before = dot_peak()
    with tempfile.TemporaryDirectory() as out:
        rows = run.run(cfg, RunWriter("lm-speed", out))
    rl = [r for r in rows if r.get("phase") == "rl"][1:]
    med = {
        k: float(np.median([r[k] for r in rl]))
        for k in (
            "sample_s",
            "score_s",
            "advantage_s",
            "learn_s",
            "step_s",
            "tokens_per_s",
            "learner_flops_per_s",
        )
    }
    peak_after = dot_peak()
    peak = max(peak_before, peak_after)
    return {
        "mesh": list(mesh),
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


def main(argv: list[str] | None = None) -> dict:
    """Measures one mesh and prints the result; with ``--out``, also writes it as a run folder
    ``OUT/lm-speed/RUN_ID`` (``config.json`` with the provenance, ``metrics.jsonl`` with the one
    result row and the 1/5/15-minute load averages at its end, ``summary.md``)."""
    import os

    from experiments.common.provenance import load_average
    from experiments.common.runs import markdown_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default="1,1")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", default="", help="write a run folder under OUT/lm-speed/")
    parser.add_argument("--run-id", default=None)
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], help="LMConfig override key=value"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also split the learn phase's op time (XLA:CPU)"
    )
    args = parser.parse_args(argv)
    if args.profile:  # before the backend starts
        flag = "--xla_cpu_enable_xprof_traceme=true"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    mesh = tuple(int(x) for x in args.mesh.split(","))
    writer = RunWriter("lm-speed", args.out, args.run_id) if args.out else None
    if writer is not None:
        writer.write_config(
            {"mesh": list(mesh), "steps": args.steps, "set": args.sets},
            xla_flags=os.environ.get("XLA_FLAGS", ""),
        )
    result = measure(mesh, args.steps, tuple(args.sets))
    if args.profile:
        split = learner_op_split(speed_config(mesh, args.steps, tuple(args.sets)))
        total = sum(split.values())
        result["learner_op_s"] = split
        result["learner_op_share"] = {k: v / total for k, v in split.items()}
    print(json.dumps(result, indent=1))
    if writer is not None:
        writer.log({**result, "load_avg_end": load_average()})
        flat = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
        writer.write_summary(markdown_table([flat]) + "\n")
    return result


if __name__ == "__main__":
    main()
