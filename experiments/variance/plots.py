"""Figures of the variance study, drawn from one run's metric rows (``Run(path).metrics`` of
:mod:`ordergrad_experiments.common.runs`): the run draws them, and ``ordergrad-jax report variance
--figures`` redraws the document's from the committed run."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

Rows = list[dict]


_COLORS: dict[str, str] = {}


def _color(objective: str) -> str:
    """One colour per objective across panels and estimators (in order of first use)."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return _COLORS.setdefault(objective, cycle[len(_COLORS) % len(cycle)])


def _panels(count: int, width: float, title: str):
    """A row of ``count`` (at least one) axes, ``width`` inches each, under a title."""
    fig, axes = plt.subplots(1, max(count, 1), figsize=(width * max(count, 1), 3.8), squeeze=False)
    fig.suptitle(title)
    return fig, axes[0]


def _select(rows: Rows, study: str, **where) -> Rows:
    return [r for r in rows if r["study"] == study and all(r.get(k) == v for k, v in where.items())]


def _series(rows: Rows, key: str, x: str, y: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    groups: dict[str, list] = defaultdict(list)
    for r in rows:
        groups[r[key]].append((r[x], r[y]))
    return {
        name: tuple(np.asarray(v) for v in zip(*sorted(pts), strict=True))
        for name, pts in groups.items()
    }


def unbiasedness(rows: Rows):
    """Error of batch averages vs exact values against the number of batches (log-log)."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    series = _series(_select(rows, "unbiasedness"), "quantity", "t", "error")
    for name, (t, err) in series.items():
        ax.loglog(t, err, marker=".", label=name)
    if series:
        t, err = next(iter(series.values()))
        ax.loglog(t, err[0] * np.sqrt(t[0] / t), "k--", lw=1, label="slope -1/2")
    ax.set(
        xlabel="batches t",
        ylabel="|batch average - exact|",
        title="Batch estimates are unbiased for the exact values",
    )
    ax.legend(fontsize=8)
    return fig


def lr_vs_exact(rows: Rows):
    """Relative error of the mean LR gradient vs the exact gradient, one panel per reward mode."""
    sel = _select(rows, "lr_vs_exact")
    modes = sorted({r["mode"] for r in sel})
    fig, axes = _panels(
        len(modes), 4.5, "LR gradient (mean of t batches) vs jax.grad of the exact objective"
    )
    for ax, mode in zip(axes, modes, strict=False):
        for objective, (t, err) in _series(
            _select(sel, "lr_vs_exact", mode=mode), "objective", "t", "rel_error"
        ).items():
            ax.loglog(t, err, color=_color(objective), label=objective)
        ax.set(xlabel="batches t", ylabel="relative gradient error", title=f"{mode} rewards")
        ax.legend(fontsize=7)
    return fig


def rp_vs_lr(rows: Rows):
    """tr Var of RP and LR gradients vs dimension, per reward (Gaussian location)."""
    sel = _select(rows, "rp_vs_lr")
    rewards = sorted({r["reward"] for r in sel})
    fig, axes = _panels(len(rewards), 5, "RP (solid) vs LR (dashed) gradient variance")
    for ax, reward in zip(axes, rewards, strict=False):
        for estimator, style in (("rp", "-"), ("lr", "--")):
            part = [r for r in sel if r["reward"] == reward and r["estimator"] == estimator]
            for objective, (dim, var) in _series(part, "objective", "dim", "total_var").items():
                ax.semilogy(
                    dim,
                    var,
                    style,
                    marker="o",
                    color=_color(objective),
                    label=f"{estimator.upper()} {objective}",
                )
        ax.set(xlabel="dimension", ylabel="tr Var[g]", title=f"{reward} reward")
        ax.legend(fontsize=6, ncol=2)
    return fig


SNR_XLABELS = {
    "K": "K (objective's sample size; Gaussian location, N fixed)",
    "N": "N (group size; Gaussian location, K fixed)",
    "arms": "number of arms (softmax bandit, LR)",
    "dimension": "dimension d (Gaussian location)",
}


def snr(rows: Rows):
    """SNR against K, N, number of arms and dimension, per objective and estimator."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    panels = [
        ("K", _select(rows, "snr", sweep="K"), "value"),
        ("N", _select(rows, "snr", sweep="N"), "value"),
        ("arms", _select(rows, "snr", sweep="arms"), "value"),
        ("dimension", _select(rows, "rp_vs_lr", reward="quadratic_sine"), "dim"),
    ]
    for ax, (label, part, x) in zip(axes, panels, strict=True):
        for estimator, style in (("rp", "-"), ("lr", "--")):
            sub = [r for r in part if r["estimator"] == estimator]
            for objective, (xs, ys) in _series(sub, "objective", x, "snr").items():
                ax.plot(
                    xs,
                    ys,
                    style,
                    marker="o",
                    color=_color(objective),
                    label=f"{estimator.upper()} {objective}",
                )
        ax.set(xlabel=SNR_XLABELS[label], ylabel="SNR = |E g|^2 / tr Var[g]", yscale="log")
        if label in ("N", "arms"):
            ax.set_xscale("log", base=2)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle("Signal-to-noise ratio of OrderGrad gradients (RP solid, LR dashed)")
    return fig


def zoo(rows: Rows):
    """Relative bias and normalised variance of each method on its own target, per bandit."""
    sel = _select(rows, "zoo")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    labels = [f"{r['method']} [{r['bandit']}]" for r in sel]
    colors = [_color(r["target"]) for r in sel]
    axes[0].bar(
        labels, [r["rel_bias"] for r in sel], yerr=[4 * r["bias_se"] for r in sel], color=colors
    )
    axes[0].set(ylabel="|E g - grad J| / |grad J|", title="relative bias (bars: 4 s.e.)")
    axes[1].bar(labels, [r["rel_var"] for r in sel], color=colors)
    axes[1].set(ylabel="tr Var[g] / |grad J|^2", title="normalised variance", yscale="log")
    for ax in axes:
        ax.tick_params(axis="x", rotation=75, labelsize=6)
        ax.set_xlabel("method [bandit]")
    targets = list(dict.fromkeys(r["target"] for r in sel))
    handles = [Patch(color=_color(target), label=target) for target in targets]
    axes[1].legend(handles=handles, title="target (colour)", fontsize=7, title_fontsize=7)
    fig.suptitle("OrderGrad vs the estimator zoo, each on its own target")
    return fig


def runtime(rows: Rows):
    """Bar chart of the transform benchmark (microseconds per call)."""
    sel = _select(rows, "runtime")
    fig, ax = plt.subplots(figsize=(7, 3.8))
    labels = [f"{r['groups']}x{r['N']}\nK={r['K']}" for r in sel]
    x = np.arange(len(sel))
    for i, (key, name) in enumerate(
        (("grpo_us", "GRPO"), ("floor_us", "sort floor"), ("ordergrad_us", "OrderGrad"))
    ):
        ax.bar(x + (i - 1) * 0.27, [r[key] for r in sel], 0.27, label=name)
    ax.set(
        xticks=x,
        xticklabels=labels,
        ylabel="microseconds per call",
        yscale="log",
        title="Rank transform runtime (float32, jitted)",
    )
    ax.legend(fontsize=8)
    return fig


FIGURES = {
    "unbiasedness": unbiasedness,
    "lr_vs_exact": lr_vs_exact,
    "rp_vs_lr": rp_vs_lr,
    "snr": snr,
    "zoo": zoo,
    "runtime": runtime,
}


def all_figures(rows: Rows) -> dict:
    """Every figure whose study has rows: ``{stem: matplotlib Figure}``."""
    studies = {r["study"] for r in rows}
    return {
        stem: fn(rows)
        for stem, fn in FIGURES.items()
        if stem in studies or (stem == "snr" and "snr" in studies)
    }
