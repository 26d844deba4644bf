"""The figures of one lm-rl run (written into its folder): held-out pass@k and training curves.

Figures across runs (the grid's comparisons, the study's) are the results document's:
:mod:`ordergrad_experiments.report.lm`."""

from __future__ import annotations

import matplotlib.pyplot as plt


def passk_curve(rows: list[dict], ks, ax=None, label: str = ""):
    """Held-out pass@k against k: after SFT (dashed) and after RL (solid)."""
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    sft = next((r for r in rows if r.get("phase") == "sft"), None)
    evals = [r for r in rows if "heldout_pass@1" in r]
    if sft is not None and not label:
        ax.plot(ks, [sft.get(f"pass@{k}") for k in ks], "k--", marker="o", label="after SFT")
    if evals:
        ax.plot(
            ks,
            [evals[-1].get(f"heldout_pass@{k}") for k in ks],
            marker="o",
            label=label or "after RL",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("held-out pass@k")
    ax.legend(fontsize=7)
    return ax


def training_curves(rows: list[dict], axes=None, label: str = ""):
    """Train reward, token entropy and held-out pass@1 against the RL step."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11, 3))
    rl = [r for r in rows if r.get("phase") == "rl"]
    steps = [r["step"] for r in rl]
    axes[0].plot(steps, [r["reward"] for r in rl], label=label)
    axes[0].set_ylabel("train reward")
    axes[1].plot(steps, [r["entropy"] for r in rl], label=label)
    axes[1].set_ylabel("token entropy")
    ev = [r for r in rows if "heldout_pass@1" in r]
    sft = next((r for r in rows if r.get("phase") == "sft"), None)
    xs = ([0] if sft else []) + [r["step"] for r in ev]
    ys = ([sft["pass@1"]] if sft else []) + [r["heldout_pass@1"] for r in ev]
    axes[2].plot(xs, ys, marker="o", label=label)
    axes[2].set_ylabel("held-out pass@1")
    for ax in axes:
        ax.set_xlabel("RL step")
    if label:
        axes[0].legend(fontsize=7)
    return axes


def figures(rows: list[dict], ks) -> dict:
    """``{"passk": fig, "training": fig}`` of one run."""
    fig1, ax = plt.subplots(figsize=(4, 3))
    passk_curve(rows, list(ks), ax)
    fig2, axes = plt.subplots(1, 3, figsize=(11, 3))
    training_curves(rows, axes)
    fig2.tight_layout()
    out = {"passk": fig1, "training": fig2}
    return out
