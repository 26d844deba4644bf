"""Figures of an lm-rl run (or several): held-out pass@k curves and training curves."""

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


def label(config: dict) -> str:
    """A method's name from its run config: ``grpo``, ``maxpo@4``, ``ordergrad TopM:2@4``.

    Reads the nested ``estimator`` part, or the flat fields of runs made before it."""
    est = config["estimator"]
    if not isinstance(est, dict):
        est = {"name": est, "objective": config.get("objective"), "k": config.get("k")}
    name = est["name"]
    if name == "ordergrad":
        return f"ordergrad {est['objective']}@{est['k']}"
    if name in ("maxpo", "pkpo", "passk_chen"):
        return f"{name}@{est['k']}"
    return name


def load_runs(folder) -> list[tuple[str, dict, list[dict]]]:
    """``[(label, config, rows), ...]`` of the finished runs (``summary.md`` present) under
    ``folder`` (searched recursively), sorted by label and seed. A run's rows are its
    ``metrics.jsonl``, or the ``curve.jsonl`` of a curated copy (``reports/lm/``)."""
    import json
    import pathlib

    runs = []
    for summary in sorted(pathlib.Path(folder).rglob("summary.md")):
        path = summary.parent
        config = json.loads((path / "config.json").read_text())["config"]
        data = path / "metrics.jsonl"
        data = data if data.exists() else path / "curve.jsonl"
        rows = [json.loads(line) for line in data.read_text().splitlines()]
        runs.append((label(config), config, rows))
    return sorted(runs, key=lambda r: (r[0], r[1]["seed"]))


def final_eval(rows: list[dict]) -> dict:
    return [r for r in rows if "heldout_pass@1" in r][-1]


def results_table(runs, ks) -> list[dict]:
    """Per method: held-out pass@k after RL (mean ± Student t 95% CI over seeds, n - 1 df), the
    SFT start, and the token entropy at the first and last RL step."""
    import numpy as np

    from experiments.common import stats

    out = []
    sft = next(r for r in runs[0][2] if r.get("phase") == "sft")
    out.append(
        {
            "method": "SFT start",
            "seeds": 1,
            **{f"pass@{k}": f"{sft[f'pass@{k}']:.3f}" for k in ks},
            "entropy first→last": "-",
        }
    )
    for name in dict.fromkeys(r[0] for r in runs):
        group = [rows for lab, _, rows in runs if lab == name]
        row = {"method": name, "seeds": len(group)}
        for k in ks:
            v = np.array([final_eval(rows)[f"heldout_pass@{k}"] for rows in group])
            row[f"pass@{k}"] = stats.mean_ci_cell(v, ".3f", ".3f")
        ent = [[r["entropy"] for r in rows if r.get("phase") == "rl"] for rows in group]
        row["entropy first→last"] = (
            f"{np.mean([e[0] for e in ent]):.3f} → {np.mean([e[-1] for e in ent]):.3f}"
        )
        out.append(row)
    return out


def compare_figures(runs, ks) -> dict:
    """Held-out pass@k curves (mean over seeds) and training curves (seed 0) of every method."""
    import numpy as np

    fig1, ax = plt.subplots(figsize=(5, 3.5))
    sft = next(r for r in runs[0][2] if r.get("phase") == "sft")
    ax.plot(ks, [sft[f"pass@{k}"] for k in ks], "k--", marker=".", label="SFT start")
    fig2, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for name in dict.fromkeys(r[0] for r in runs):
        group = [rows for lab, _, rows in runs if lab == name]
        mean = [np.mean([final_eval(rows)[f"heldout_pass@{k}"] for rows in group]) for k in ks]
        ax.plot(ks, mean, marker="o", label=name)
        training_curves(group[0], axes, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("held-out pass@k")
    ax.legend(fontsize=7)
    fig2.tight_layout()
    return {"passk_compare": fig1, "training_compare": fig2}
