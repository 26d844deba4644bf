"""A finished lm-rl run cut to what ``reports/lm/`` keeps of it (``curve.jsonl``).

The results document's tables and figures are rebuilt from these small copies: ``config.json``
(with the provenance), ``summary.md`` and ``counts.npz`` (the per-prompt counts, where the run
wrote them) as the run wrote them, and the metric rows cut to :data:`KEEP` and the evaluations
(no checkpoints, no figures).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from typing import Any

from ordergrad_experiments.common.io import write_text_atomic
from ordergrad_experiments.common.runs import Run

KEEP = (
    "phase", "step", "reward", "entropy", "grad_norm", "kl", "completion_tokens", "step_s",
    "sample_s", "score_s", "advantage_s", "learn_s", "tokens_per_s", "learner_flops_per_s",
    "sft_steps", "sft_s", "sft_cached", "sft_loss_first", "sft_loss_last", "length",
)  # fmt: skip
"""Metric keys kept per row (plus every held-out evaluation ``pass@k`` / ``heldout_*``)."""


def keep_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row cut to :data:`KEEP` and the evaluations (the SFT row whole), floats to 6
    significant digits."""
    return {
        k: float(f"{v:.6g}") if isinstance(v, float) else v
        for k, v in row.items()
        if k in KEEP or k.startswith(("pass@", "heldout_")) or row["phase"] == "sft"
    }


def curate(run: Run, dest: str | os.PathLike, every: int = 1) -> pathlib.Path:
    """Copies ``run`` to the folder ``dest``: ``config.json``, ``summary.md`` and its metric
    rows cut by :func:`keep_row` as ``curve.jsonl``; with ``every > 1`` only every
    ``every``-th RL step's row is kept, besides the SFT row and the evaluation rows.

    Args:
      run: a finished lm-rl run (``summary.md`` written).
      dest: the curated copy's folder (created; files in it are overwritten).
      every: keep every ``every``-th RL step's row (>= 1).

    Returns:
      ``dest`` as a path.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if not run.finished:
        raise ValueError(f"{run.path}: not finished (no summary.md); nothing to curate")
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "summary.md"):
        shutil.copyfile(run.path / name, dest / name)
    if (run.path / "counts.npz").exists():  # the per-prompt counts (count_samples > 0)
        shutil.copyfile(run.path / "counts.npz", dest / "counts.npz")
    rows = [
        keep_row(r)
        for r in run.metrics
        if r["phase"] != "rl" or r["step"] % every == 0 or "heldout_pass@1" in r
    ]
    write_text_atomic(dest / "curve.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return dest
