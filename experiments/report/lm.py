"""The tables of ``reports/lm/RESULTS.md``, from the data committed beside it.

* ``grid/``: the 50-step grid of ``experiments/lm/grid.sh`` (6 methods x seeds 0, 1, 2), one
  ``ordergrad-jax run lm-rl`` folder per run (``config.json`` with the provenance,
  ``metrics.jsonl``, ``summary.md``; no checkpoints), and ``sft/``, the one-step run that trained
  the shared SFT start into the cache (its start is the grid's start).
* ``lr/``: the learning-rate runs made before the grid (same folder format).
* ``learning/``: the ``python -m experiments.lm.diagnose`` outputs (``grads.jsonl``,
  ``line.jsonl``, ``sharpen.jsonl``, ``trials-*.jsonl``, ``trial-64x16.jsonl``: a header row with
  ``mode`` then one row per measurement) and three longer lm-rl runs (``config.json`` +
  ``curve.jsonl``, the run's ``metrics.jsonl`` renamed).
* ``speed/lm-speed/``: ``python -m experiments.lm.speed --out`` run folders.

Means over seeds carry the Student t 95% interval (n - 1 df, :mod:`experiments.common.stats`).
"""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import Callable

import numpy as np

from experiments.common import stats
from experiments.common.runs import markdown_table
from experiments.report.provenance import run_record

KS = (1, 2, 4, 8, 16)
SFT = "SFT start"
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
# The grid's comparisons behind "The paper's claims at this scale": (method a, method b, k).
CLAIMS = (
    ("ordergrad TopM:2@4", "grpo", 1),
    ("ordergrad TopM:2@4", "grpo", 8),
    ("ordergrad TopM:2@4", "grpo", 16),
    ("ordergrad TopM:2@4", "maxpo@4", 8),
    ("ordergrad TopM:2@4", "rloo", 8),
    ("maxpo@4", SFT, 8),
    ("ordergrad ReMax@8", SFT, 1),
    ("ordergrad ReMax@8", SFT, 8),
    ("ordergrad BotM:2@4", "rloo", 1),
    ("ordergrad BotM:2@4", "rloo", 16),
)


def _jsonl(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sig(x: float, digits: int = 2) -> str:
    """``digits`` significant digits, trailing zeros kept (``0.050``, ``2.0``, ``0.00010``)."""
    if x == 0:
        return "0"
    decimals = digits - 1 - int(np.floor(np.log10(abs(x))))
    return f"{x:.{max(decimals, 0)}f}"


# --- the grid -----------------------------------------------------------------------------------


def method_label(config: dict) -> str:
    """``grpo``, ``rloo``, ``maxpo@4``, ``ordergrad TopM:2@4``: a run's method from its config."""
    est = config["estimator"]
    if est["name"] == "ordergrad":
        return f"ordergrad {est['objective']}@{est['k']}"
    if est["name"] in ("maxpo", "pkpo", "passk_chen"):
        return f"{est['name']}@{est['k']}"
    return est["name"]


def grid_runs(folder: pathlib.Path) -> dict[str, list[tuple[int, list[dict]]]]:
    """``{method: [(seed, rows), ...]}`` of the finished grid runs (``summary.md`` present), the
    SFT-cache run left out; methods sorted by name, seeds in order."""
    out: dict[str, list[tuple[int, list[dict]]]] = {}
    for summary in sorted((folder / "grid").glob("*/summary.md")):
        config = json.loads((summary.parent / "config.json").read_text())["config"]
        if summary.parent.name == "sft":
            continue
        out.setdefault(method_label(config), []).append(
            (config["seed"], _jsonl(summary.parent / "metrics.jsonl"))
        )
    return {m: sorted(out[m], key=lambda r: r[0]) for m in sorted(out)}


def _final(rows: list[dict]) -> dict:
    return [r for r in rows if "heldout_pass@1" in r][-1]


def _sft_evals(runs: dict[str, list[tuple[int, list[dict]]]]) -> dict[int, dict]:
    """``{seed: the SFT start's evaluation with that seed's key}`` (equal in every method's run
    of the seed; checked)."""
    evals: dict[int, dict] = {}
    for seeded in runs.values():
        for seed, rows in seeded:
            sft = next(r for r in rows if r.get("phase") == "sft")
            values = {k: sft[f"pass@{k}"] for k in KS}
            if evals.setdefault(seed, values) != values:
                raise ValueError(f"seed {seed}: the runs evaluated different SFT starts")
    return dict(sorted(evals.items()))


def grid_values(folder: pathlib.Path) -> dict[str, dict[int, np.ndarray]]:
    """``{method: {k: [final held-out pass@k per seed]}}``, and the SFT start's evaluations
    under :data:`SFT` (one per seed's evaluation key)."""
    runs = grid_runs(folder)
    sft = _sft_evals(runs)
    out = {SFT: {k: np.array([v[k] for v in sft.values()]) for k in KS}}
    for method, seeded in runs.items():
        out[method] = {
            k: np.array([_final(rows)[f"heldout_pass@{k}"] for _, rows in seeded]) for k in KS
        }
    return out


def grid_table(folder: pathlib.Path) -> str:
    """Held-out pass@k after the runs' last step: per method the mean ± Student t 95% interval
    over seeds, the seeds, and the mean token entropy of the sampled completions at the first
    and last RL step. The SFT row: the same checkpoint evaluated with each seed's key."""
    runs = grid_runs(folder)
    values = grid_values(folder)
    rows = []
    for method, by_k in values.items():
        row = {"method": method, "seeds": len(by_k[1])}
        row.update({f"pass@{k}": stats.mean_ci_cell(by_k[k], ".3f", ".3f") for k in KS})
        if method == SFT:
            row["entropy first→last"] = "-"
        else:
            ent = [
                [r["entropy"] for r in rows if r.get("phase") == "rl"] for _, rows in runs[method]
            ]
            first, last = np.mean([e[0] for e in ent]), np.mean([e[-1] for e in ent])
            row["entropy first→last"] = f"{first:.3f} → {last:.3f}"
        rows.append(row)
    return markdown_table(rows)


def claims_table(folder: pathlib.Path) -> str:
    """The comparisons of :data:`CLAIMS`: means, the difference with its Welch 95% interval, the
    Welch p-value, and the paired-by-seed p-value (a method's seed-s run shares the SFT start and
    the evaluation key with every other method's seed-s run; against the SFT start, the pairs
    are the start's and the run's evaluations with that seed's key)."""
    values = grid_values(folder)
    rows = []
    for a, b, k in CLAIMS:
        x, y = values[a][k], values[b][k]
        welch = stats.welch_test(x, y)
        paired = stats.paired_test(x, y)
        rows.append(
            {
                "a": a,
                "b": b,
                "k": k,
                "pass@k a": f"{x.mean():.3f}",
                "pass@k b": f"{y.mean():.3f}",
                "a - b [Welch 95% CI]": f"{welch.difference:+.3f} "
                f"[{welch.interval.low:+.3f}, {welch.interval.high:+.3f}]",
                "Welch df": f"{welch.df:.1f}",
                "Welch p": stats.format_p(welch.p_value),
                "paired p (2 df)": stats.format_p(paired.p_value),
                "n": f"{x.size} vs {y.size}",
            }
        )
    return markdown_table(rows)


def runs_table(folder: pathlib.Path, sub: str) -> str:
    """Provenance of every run folder under ``folder / sub`` (:func:`run_record`), and the first
    row: the whole set from the earliest start to the last end."""
    dirs = sorted(d for d in (folder / sub).glob("*/") if (d / "summary.md").exists())
    records = [run_record(d) for d in dirs]
    provs = [json.loads((d / "config.json").read_text())["provenance"] for d in dirs]
    start = min(datetime.datetime.fromisoformat(p["start_utc"]) for p in provs)
    end = max(datetime.datetime.fromisoformat(p["end_utc"]) for p in provs)
    whole = {key: "" for key in records[0]}
    whole.update(
        run=f"all {len(dirs)}",
        **{"start (UTC)": start.strftime("%Y-%m-%d %H:%M:%S")},
        **{"wall s": f"{(end - start).total_seconds():.0f}"},
    )
    return markdown_table([whole, *records])


# --- learning rate before the grid --------------------------------------------------------------


def lr_table(folder: pathlib.Path) -> str:
    """Each ``lr/`` run, then the grid's GRPO and RLOO seed-0 runs (lr 1e-4): method, Adam lr,
    steps, held-out pass@1 at the SFT start and after each evaluation (step: value), and the mean
    training reward of its first and last 10 steps."""
    rows = []
    at_1e4 = [folder / "grid" / f"{m}-s0" / "summary.md" for m in ("grpo", "rloo")]
    at_1e4 = [path for path in at_1e4 if path.exists()]
    for summary in [*sorted((folder / "lr").glob("*/summary.md")), *at_1e4]:
        config = json.loads((summary.parent / "config.json").read_text())["config"]
        metrics = _jsonl(summary.parent / "metrics.jsonl")
        sft = next(r for r in metrics if r.get("phase") == "sft")
        evals = [r for r in metrics if "heldout_pass@1" in r]
        rewards = [r["reward"] for r in metrics if r.get("phase") == "rl"]
        rows.append(
            {
                "run": f"{summary.parent.parent.name}/{summary.parent.name}",
                "method": method_label(config),
                "Adam lr": f"{config['optim']['lr']:.0e}".replace("e-0", "e-"),
                "steps": config["steps"],
                "held-out pass@1: SFT, then at steps": f"{sft['pass@1']:.3f}; "
                + ", ".join(f"{r['step']}: {r['heldout_pass@1']:.3f}" for r in evals),
                "train reward, steps 1-10 → last 10": f"{np.mean(rewards[:10]):.3f} → "
                f"{np.mean(rewards[-10:]):.3f}",
            }
        )
    return markdown_table(rows)


# --- why RL did not learn -----------------------------------------------------------------------


def grads_table(folder: pathlib.Path) -> str:
    """``learning/grads.jsonl``: per parameter group its size, its share of one batch's and of
    the 16 batches' mean gradient's squared norm, and the mean cosine between batches."""
    g = _jsonl(folder / "learning" / "grads.jsonl")[1]
    rows = [
        {
            "group": name,
            "params": f"{g[f'size_{key}']:,}",
            "share of a batch's \\|g\\|²": f"{g[f'share_batch_{key}']:.2f}",
            "share of the mean's \\|g\\|²": f"{g[f'share_mean_{key}']:.2f}",
            "cos between batches": _sig(g[f"cos_pairs_{key}"]),
        }
        for key, name in GROUPS
    ]
    rows.append(
        {
            "group": "all",
            "params": f"{g['size_all']:,}",
            "share of a batch's \\|g\\|²": "1",
            "share of the mean's \\|g\\|²": "1",
            "cos between batches": _sig(g["cos_pairs_all"], 3),
        }
    )
    return markdown_table(rows)


def line_table(folder: pathlib.Path) -> str:
    """``learning/line.jsonl``: held-out pass@1 at distance t along each direction, and the KL
    to the SFT policy at t = 0.015 / 0.05 / 0.15 (two significant digits)."""
    rows = _jsonl(folder / "learning" / "line.jsonl")[2:]
    at = {(r["direction"], r["t"]): r for r in rows}
    out = []
    for key, name in DIRECTIONS.items():
        row = {"direction": name}
        for t in (-0.05, -0.015, 0.015, 0.05):
            row[f"t = {t:+g}"] = f"{at[(key, t)]['pass@1']:.3f}"
        row["KL at t = 0.015 / 0.05 / 0.15"] = " / ".join(
            _sig(at[(key, t)]["kl_to_sft"]) for t in (0.015, 0.05, 0.15)
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
    for r in _jsonl(path):
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
    trials = [t for name in files for t in _trials(folder / "learning" / name)]
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
    """``learning/sharpen.jsonl``: the final RMSNorm scale multiplied by s (every logit by s)."""
    rows = _jsonl(folder / "learning" / "sharpen.jsonl")
    sft = rows[0]["sft"]
    out = [{"logit scale": "1 (SFT)", "pass@1": f"{sft['pass@1']:.3f}",
            "pass@16": f"{sft['pass@16']:.3f}", "KL to SFT": "0"}]  # fmt: skip
    for r in rows[1:]:
        out.append(
            {
                "logit scale": f"{r['logit_scale']:g}",
                "pass@1": f"{r['pass@1']:.3f}",
                "pass@16": f"{r['pass@16']:.3f}",
                "KL to SFT": _sig(r["kl_to_sft"]),
            }
        )
    return markdown_table(out)


def _curve(folder: pathlib.Path, run: str) -> list[dict]:
    return _jsonl(folder / "learning" / run / "curve.jsonl")


def curve_table(folder: pathlib.Path, run: str = "grpo-lr2e-5-1200") -> str:
    """A run's held-out pass@1 and pass@16 at the SFT start and at each evaluation."""
    rows = _curve(folder, run)
    sft = next(r for r in rows if r.get("phase") == "sft")
    evals = [r for r in rows if "heldout_pass@1" in r]
    out = []
    for k in (1, 16):
        row = {"step": f"pass@{k}", "0 (SFT)": f"{sft[f'pass@{k}']:.3f}"}
        row.update({str(r["step"]): f"{r[f'heldout_pass@{k}']:.3f}" for r in evals})
        out.append(row)
    return markdown_table(out)


def blocks_table(folder: pathlib.Path, run: str = "grpo-lr2e-5-1200", block: int = 200) -> str:
    """A run's training reward and token entropy, means over blocks of ``block`` steps."""
    rl = [r for r in _curve(folder, run) if r.get("phase") == "rl"]
    out = []
    for start in range(0, len(rl), block):
        part = rl[start : start + block]
        out.append(
            {
                "steps": f"{part[0]['step']}-{part[-1]['step']}",
                "train reward": f"{np.mean([r['reward'] for r in part]):.3f}",
                "token entropy": f"{np.mean([r['entropy'] for r in part]):.3f}",
            }
        )
    return markdown_table(out)


COMPARE = (
    ("GRPO", "grpo-lr2e-5-1200"),
    ("OrderGrad TopM:2@4", "top2at4-lr2e-5-600"),
    ("RLOO", "rloo-lr2e-5-600"),
)


def compare_table(folder: pathlib.Path, steps: int = 600) -> str:
    """Held-out pass@1 of the three runs at each evaluation up to ``steps``, pass@16 there."""
    out = []
    for name, run in COMPARE:
        evals = [r for r in _curve(folder, run) if "heldout_pass@1" in r and r["step"] <= steps]
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
    for _, run in COMPARE:
        run_dir = folder / "learning" / run
        rl = [r for r in _curve(folder, run) if r.get("phase") == "rl"]
        record = run_record(run_dir)
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


# --- speed ---------------------------------------------------------------------------------------


def speed_table(folder: pathlib.Path) -> str:
    """Each ``speed/lm-speed/`` run: devices (mesh), the load average at its start and end, the
    median step time and its split, completion tokens/s, the advantage's share of the step, the
    learner's FLOP/s and the ``jnp.dot`` peak in the same process (right after; in newer runs
    the larger of one before and one after) and, where profiled, the learn phase's operation
    time split into matrix products, layout copies and other element-wise work."""
    out = []
    for summary in sorted((folder / "speed" / "lm-speed").glob("*/summary.md")):
        run_dir = summary.parent
        prov = json.loads((run_dir / "config.json").read_text())["provenance"]
        r = _jsonl(run_dir / "metrics.jsonl")[0]
        out.append(
            {
                "run": run_dir.name,
                "devices (mesh)": f"{r['devices']} ({','.join(map(str, r['mesh']))})",
                "task": f"{r['config'].get('digits', 2)}-digit",
                "load at start / end (1 min)": f"{prov['load_avg_start'][0]:.1f} / "
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
                "learner op time: dot / YNN fused / copy / other": _op_share(r),
            }
        )
    return markdown_table(out)


def _op_share(row: dict) -> str:
    """The learn phase's operation-time shares (``speed --profile``), or "not profiled"."""
    share = row.get("learner_op_share")
    if share is None:
        return "not profiled"
    cats = ("dot", "fused", "copy", "other")  # speed.OP_CATEGORIES
    return " / ".join(f"{100 * share.get(k, 0.0):.0f}%" for k in cats)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """Every table of ``reports/lm/RESULTS.md`` by id (``folder``: ``reports/lm``); the tables of
    ``grid/``, ``lr/`` and ``speed/`` only where that folder exists (a table marked in the
    document without its data is then an error of ``report``)."""
    out: dict[str, Callable[[], str]] = {
        "lm-grads": lambda: grads_table(folder),
        "lm-line": lambda: line_table(folder),
        "lm-trials-300": lambda: trials_table(
            folder, ("trials-300steps.jsonl", "trial-64x16.jsonl")
        ),
        "lm-trials-60": lambda: trials_table(folder, ("trials-60steps.jsonl",)),
        "lm-sharpen": lambda: sharpen_table(folder),
        "lm-grpo-1200": lambda: curve_table(folder),
        "lm-grpo-1200-blocks": lambda: blocks_table(folder),
        "lm-600": lambda: compare_table(folder),
        "lm-curve-runs": lambda: curve_runs_table(folder),
    }
    if (folder / "grid").is_dir():
        out["lm-grid"] = lambda: grid_table(folder)
        out["lm-grid-claims"] = lambda: claims_table(folder)
        out["lm-grid-runs"] = lambda: runs_table(folder, "grid")
    if (folder / "lr").is_dir():
        out["lm-lr"] = lambda: lr_table(folder)
        out["lm-lr-runs"] = lambda: runs_table(folder, "lr")
    if (folder / "speed").is_dir():
        out["lm-speed"] = lambda: speed_table(folder)
    if (folder / "default").is_dir():
        from experiments.report import lm_default

        out.update(lm_default.builders(folder))
        out["default-run-list"] = lambda: runs_table(folder, "default")
    if (folder / "study").is_dir():
        from experiments.report import lm_study

        out.update(lm_study.builders(folder))
    if (folder / "length").is_dir():
        from experiments.report import lm_length

        out.update(lm_length.builders(folder))
    return out
