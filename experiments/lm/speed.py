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


def measure(
    mesh: tuple[int, ...], steps: int = 12, sets: tuple[str, ...] = (), **overrides
) -> dict:
    """Medians of ``steps`` RL steps (the first left out) of the default config with
    ``overrides`` (fields) and ``sets`` (``key=value`` as for ``--set``), their time split and
    the learner's share of the ``jnp.dot`` peak (module doc)."""
    cfg = LMConfig(
        mesh=mesh,
        sft_steps=0,
        steps=steps,
        num_chunks=1,
        eval_prompts=16,
        eval_samples=16,
        **overrides,
    )
    cfg = apply_overrides(cfg, sets)
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
    args = parser.parse_args(argv)
    mesh = tuple(int(x) for x in args.mesh.split(","))
    writer = RunWriter("lm-speed", args.out, args.run_id) if args.out else None
    if writer is not None:
        writer.write_config(
            {"mesh": list(mesh), "steps": args.steps, "set": args.sets},
            xla_flags=os.environ.get("XLA_FLAGS", ""),
        )
    result = measure(mesh, args.steps, tuple(args.sets))
    print(json.dumps(result, indent=1))
    if writer is not None:
        writer.log({**result, "load_avg_end": load_average()})
        flat = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
        writer.write_summary(markdown_table([flat]) + "\n")
    return result


if __name__ == "__main__":
    main()
