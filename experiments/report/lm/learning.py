"""Why RL did not learn at first: the tables of ``reports/lm/learning/``.

* ``grads.jsonl``, ``line.jsonl``, ``sharpen.jsonl``, ``trials-*.jsonl``, ``trial-64x16.jsonl``:
  ``diagnose`` outputs (a header row with ``mode``, then one row per measurement), read with
  :func:`ordergrad_experiments.common.runs.read_jsonl` (they are not run folders).
* ``grpo-lr2e-5-1200``, ``top2at4-lr2e-5-600``, ``rloo-lr2e-5-600``: three longer lm-rl runs
  (``config.json`` + ``curve.jsonl``; no summary), read as
  :class:`~ordergrad_experiments.common.runs.Run`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ordergrad_experiments.common.runs import Run, markdown_table, read_jsonl
from ordergrad_experiments.report.provenance import run_record

GROUPS = (
    ("embed", "tied embedding / head"),
    ("attn", "attention"),
    ("mlp", "MLP"),
    ("norm", "RMSNorm scales"),
)
DIRECTIONS = {
    "mean_grad": "mean gradient of 16 batches (4,096 samples)",
    "mean_grad_embed": "its embedding part only",
    "mean_grad_not_embed": "its non-embedding part",
    "adam_first_step": "Adam's first step (sign of one batch gradient)",
    "random": "random",
}
COMPARE = (
    ("GRPO", "grpo-lr2e-5-1200"),
    ("OrderGrad TopM:2@4", "top2at4-lr2e-5-600"),
    ("RLOO", "rloo-lr2e-5-600"),
)


def sig(x: float, digits: int = 2) -> str:
    """``digits`` significant digits, trailing zeros kept (``0.050``, ``2.0``, ``0.00010``)."""
    if x == 0:
        return "0"
    decimals = digits - 1 - int(np.floor(np.log10(abs(x))))
    return f"{x:.{max(decimals, 0)}f}"


def grads_table(folder: pathlib.Path) -> str:
    """``grads.jsonl``: per parameter group its size, its share of one batch's and of the 16
    batches' mean gradient's squared norm, and the mean cosine between batches."""
    g = read_jsonl(folder / "grads.jsonl")[1]
    rows = [
        {
            "group": name,
            "params": f"{g[f'size_{key}']:,}",
            "share of a batch's \\|g\\|²": f"{g[f'share_batch_{key}']:.2f}",
            "share of the mean's \\|g\\|²": f"{g[f'share_mean_{key}']:.2f}",
            "cos between batches": sig(g[f"cos_pairs_{key}"]),
        }
        for key, name in GROUPS
    ]
    rows.append(
        {
            "group": "all",
            "params": f"{g['size_all']:,}",
            "share of a batch's \\|g\\|²": "1",
            "share of the mean's \\|g\\|²": "1",
            "cos between batches": sig(g["cos_pairs_all"], 3),
        }
    )
    return markdown_table(rows)


def line_table(folder: pathlib.Path) -> str:
    """``line.jsonl``: held-out pass@1 at distance t along each direction, and the KL to the SFT
    policy at t = 0.015 / 0.05 / 0.15 (two significant digits)."""
    at = {(r["direction"], r["t"]): r for r in read_jsonl(folder / "line.jsonl")[2:]}
    out = []
    for key, name in DIRECTIONS.items():
        row = {"direction": name}
        for t in (-0.05, -0.015, 0.015, 0.05):
            row[f"t = {t:+g}"] = f"{at[(key, t)]['pass@1']:.3f}"
        row["KL at t = 0.015 / 0.05 / 0.15"] = " / ".join(
            sig(at[(key, t)]["kl_to_sft"]) for t in (0.015, 0.05, 0.15)
        )
        out.append(row)
    return markdown_table(out)


def _opt_name(opt: str) -> str:
    rule, _, args = opt.partition(":")
    options = dict(a.split("=") for a in args.split(",") if a)
    lr = options.pop("lr")
    name = {
        "adam": f"Adam {lr}",
        "sgd": f"SGD {lr} after the clip",
        "ngd": f"fixed-length step {lr} along the clipped gradient",
    }[rule]
    if options.get("embed") == "0":
        name += ", tied embedding/head frozen"
    return name


def _trials(path: pathlib.Path) -> list[tuple[str, int, list[dict]]]:
    """``[(update rule, P, [rows after step 0])]`` of a ``diagnose trial`` file (several
    headers may be concatenated)."""
    out: list[tuple[str, int, list[dict]]] = []
    groups = 16
    for r in read_jsonl(path):
        if "mode" in r:
            sets = dict(s.split("=", 1) for s in r["set"])
            groups = int(sets.get("num_groups", 16))
        elif r["step"] == 0:
            out.append((r["opt"], groups, []))
        else:
            out[-1][2].append(r)
    return out


def trials_table(folder: pathlib.Path, files: tuple[str, ...]) -> str:
    """The ``diagnose trial`` runs of ``files``: held-out pass@1 at each evaluation step (``-``
    where a run stopped earlier) and the mean over its evaluations, the range of the KL to the
    SFT policy, and the training reward of the steps since the previous evaluation, at the last
    one."""
    trials = [t for name in files for t in _trials(folder / name)]
    steps = sorted({r["step"] for _, _, rows in trials for r in rows})
    out = []
    for opt, groups, rows in trials:
        at = {r["step"]: r["pass@1"] for r in rows}
        kl = [r["kl_to_sft"] for r in rows]
        row = {"update rule": _opt_name(opt), "P x N": f"{groups} x 16"}
        row.update({f"pass@1 at {s}": f"{at[s]:.3f}" if s in at else "-" for s in steps})
        row["mean"] = f"{np.mean(list(at.values())):.3f}"
        row["KL to SFT (min-max)"] = f"{min(kl):.3f}-{max(kl):.3f}"
        row["train reward at the last evaluation"] = f"{rows[-1]['train_reward']:.3f}"
        out.append(row)
    return markdown_table(out)


def sharpen_table(folder: pathlib.Path) -> str:
    """``sharpen.jsonl``: the final RMSNorm scale multiplied by s (every logit by s)."""
    rows = read_jsonl(folder / "sharpen.jsonl")
    sft = rows[0]["sft"]
    out = [{"logit scale": "1 (SFT)", "pass@1": f"{sft['pass@1']:.3f}",
            "pass@16": f"{sft['pass@16']:.3f}", "KL to SFT": "0"}]  # fmt: skip
    for r in rows[1:]:
        out.append(
            {
                "logit scale": f"{r['logit_scale']:g}",
                "pass@1": f"{r['pass@1']:.3f}",
                "pass@16": f"{r['pass@16']:.3f}",
                "KL to SFT": sig(r["kl_to_sft"]),
            }
        )
    return markdown_table(out)


def curve_table(folder: pathlib.Path, run: str = "grpo-lr2e-5-1200") -> str:
    """A run's held-out pass@1 and pass@16 at the SFT start and at each evaluation."""
    r = Run(folder / run)
    sft = r.rows("sft")[0]
    out = []
    for k in (1, 16):
        row = {"step": f"pass@{k}", "0 (SFT)": f"{sft[f'pass@{k}']:.3f}"}
        row.update({str(e["step"]): f"{e[f'heldout_pass@{k}']:.3f}" for e in r.evaluations})
        out.append(row)
    return markdown_table(out)


def blocks_table(folder: pathlib.Path, run: str = "grpo-lr2e-5-1200", block: int = 200) -> str:
    """A run's training reward and token entropy, means over blocks of ``block`` steps."""
    rl = Run(folder / run).rows("rl")
    out = []
    for begin in range(0, len(rl), block):
        part = rl[begin : begin + block]
        out.append(
            {
                "steps": f"{part[0]['step']}-{part[-1]['step']}",
                "train reward": f"{np.mean([r['reward'] for r in part]):.3f}",
                "token entropy": f"{np.mean([r['entropy'] for r in part]):.3f}",
            }
        )
    return markdown_table(out)


def compare_table(folder: pathlib.Path, steps: int = 600) -> str:
    """Held-out pass@1 of the three runs at each evaluation up to ``steps``, pass@16 there."""
    out = []
    for name, run in COMPARE:
        evals = [r for r in Run(folder / run).evaluations if r["step"] <= steps]
        out.append(
            {
                "method": name,
                "pass@1 at steps " + " / ".join(str(r["step"]) for r in evals): " / ".join(
                    f"{r['heldout_pass@1']:.3f}" for r in evals
                ),
                f"pass@16 at {steps}": f"{evals[-1]['heldout_pass@16']:.3f}",
            }
        )
    return markdown_table(out)


def curve_runs_table(folder: pathlib.Path) -> str:
    """The three longer runs: provenance (whole command), RL steps, the sum and median of the
    in-run step times (first step: compilation)."""
    out = []
    for _, name in COMPARE:
        run = Run(folder / name)
        rl = run.rows("rl")
        record = run_record(run.path)
        out.append(
            {
                "run": record["run"],
                "RL steps": len(rl),
                "start (UTC)": record["start (UTC)"],
                "wall s (command)": record["wall s"],
                "sum of step s": f"{sum(r['step_s'] for r in rl):.0f}",
                "median step s": f"{np.median([r['step_s'] for r in rl]):.3f}",
                "load at start (1, 5, 15 min)": record["load at start (1, 5, 15 min)"],
                "commit": record["commit"],
            }
        )
    return markdown_table(out)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """``{table id: build}`` of the section (``folder``: ``reports/lm``)."""
    d = folder / "learning"
    out: dict[str, Callable[[], Any]] = {
        "lm-grads": lambda: grads_table(d),
        "lm-line": lambda: line_table(d),
        "lm-trials-300": lambda: trials_table(d, ("trials-300steps.jsonl", "trial-64x16.jsonl")),
        "lm-trials-60": lambda: trials_table(d, ("trials-60steps.jsonl",)),
        "lm-sharpen": lambda: sharpen_table(d),
        "lm-grpo-1200": lambda: curve_table(d),
        "lm-grpo-1200-blocks": lambda: blocks_table(d),
        "lm-600": lambda: compare_table(d),
        "lm-curve-runs": lambda: curve_runs_table(d),
    }
    return out
