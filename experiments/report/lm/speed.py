"""The step-time split of ``reports/lm/speed/lm-speed/``: one ``lm-speed`` run folder per
measurement (its one metric row: devices and mesh, the median step time and its split, tokens/s,
the learner's FLOP/s against the ``jnp.dot`` peak and, where profiled, the op-time split)."""

from __future__ import annotations

import pathlib
from typing import Any

from ordergrad_experiments.bench.lm_speed import OP_CATEGORIES
from ordergrad_experiments.common.runs import find_runs, markdown_table


def speed_table(folder: pathlib.Path) -> str:
    """Each run of ``folder`` (``reports/lm/speed/lm-speed``): devices (mesh), the load average
    at its start and end, the median step time and its split, completion tokens/s, the
    advantage's share of the step, the learner's FLOP/s and the ``jnp.dot`` peak in the same
    process (right after; in newer runs the larger of one before and one after) and, where
    profiled, the learn phase's operation time split into matrix products, layout copies and
    other element-wise work."""
    out = []
    for run in find_runs(folder):
        r = run.metrics[0]
        out.append(
            {
                "run": run.name,
                "devices (mesh)": f"{r['devices']} ({','.join(map(str, r['mesh']))})",
                "task": f"{r['config'].get('digits', 2)}-digit",
                "load at start / end (1 min)": f"{run.provenance['load_avg_start'][0]:.1f} / "
                f"{r['load_avg_end'][0]:.1f}",
                "step s": f"{r['step_s']:.3f}",
                "sample s": f"{r['sample_s']:.3f}",
                "score s": f"{r['score_s']:.3f}",
                "advantage ms": f"{1e3 * r['advantage_s']:.2f}",
                "learn s": f"{r['learn_s']:.3f}",
                "completion tokens/s": f"{r['tokens_per_s']:.0f}",
                "advantage share": f"{100 * r['advantage_share']:.3f}%",
                "learner GFLOP/s": f"{r['learner_flops_per_s'] / 1e9:.2f}",
                "dot peak GFLOP/s": f"{r['dot_peak_flops'] / 1e9:.1f}",
                "learner / peak": f"{100 * r['learner_peak_fraction']:.0f}%",
                "learner op time: dot / YNN fused / copy / other": op_share(r),
            }
        )
    return markdown_table(out)


def op_share(row: dict[str, Any]) -> str:
    """The learn phase's operation-time shares (``bench lm-speed --set profile=True``, in the
    benchmark's :data:`~ordergrad_experiments.bench.lm_speed.OP_CATEGORIES`), or "not profiled"."""
    share = row.get("learner_op_share")
    if share is None:
        return "not profiled"
    return " / ".join(f"{100 * share.get(k, 0.0):.0f}%" for k in OP_CATEGORIES)
