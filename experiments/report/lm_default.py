"""The tables and figure of ``reports/lm/RESULTS.md``'s section on the default setting (the loop
that learns), from the data in ``reports/lm/default/``:

* ``starts.jsonl``: ``python -m experiments.lm.diagnose sharpen`` on three SFT starts (a header
  row with ``mode``, ``set`` and the start's evaluation ``sft``, then one row per logit scale).
* ``old-start-levers.jsonl``: ``diagnose trial`` runs from the earlier start (1000 SFT steps, no
  smoothing) with other group shapes, PPO epochs and REINFORCE (the self-distillation control);
  the REINFORCE run at Adam 1e-4 was stopped after its step-50 evaluation.
* ``trial-smoothed-start.jsonl``: ``diagnose trial`` (GRPO, Adam 1e-4) from the default start;
  its counterpart from the earlier start is ``reports/lm/learning/trials-300steps.jsonl``.
* ``<run-id>/``: ``ordergrad-jax run lm-rl`` runs curated by :func:`curate` (``config.json``
  with the provenance, ``summary.md``, ``curve.jsonl``: the metric rows cut to :data:`KEEP`).
  Runs named ``<method>-s<seed>`` form the 3-seed comparison; ``long-*`` are longer runs.

``python -m experiments.report.lm_default curate SRC DST [--every N]`` copies a run folder that
way (the long runs with ``--every 10``);
``python -m experiments.report.lm_default figures`` redraws ``reports/lm/figures/default.png``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import shutil
import sys
from collections.abc import Callable

import numpy as np

from experiments.common import stats
from experiments.common.io import write_text_atomic
from experiments.common.runs import markdown_table

KEEP = (
    "phase", "step", "reward", "entropy", "grad_norm", "kl", "completion_tokens", "step_s",
    "sample_s", "score_s", "advantage_s", "learn_s", "tokens_per_s", "learner_flops_per_s",
    "sft_steps", "sft_s", "sft_cached", "sft_loss_first", "sft_loss_last", "length",
)  # fmt: skip
"""Metric keys kept per row (plus every held-out evaluation ``pass@k`` / ``heldout_*``)."""
METHODS = ("grpo", "rloo", "top2at4")
LABELS = {"grpo": "GRPO", "rloo": "RLOO", "top2at4": "OrderGrad TopM:2@4"}
GAIN = 0.25
"""Issue 14's goal: held-out pass@1 at least this much above the SFT start."""


def _jsonl(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _keep(row: dict) -> dict:
    """The row cut to :data:`KEEP` and the evaluations (the SFT row whole), floats to 6
    significant digits."""
    return {
        k: float(f"{v:.6g}") if isinstance(v, float) else v
        for k, v in row.items()
        if k in KEEP or k.startswith(("pass@", "heldout_")) or row["phase"] == "sft"
    }


def curate(src: pathlib.Path, dst: pathlib.Path, every: int = 1) -> None:
    """Copies run folder ``src`` to ``dst``: ``config.json``, ``summary.md`` and the metric rows
    cut by :func:`_keep` as ``curve.jsonl`` (no checkpoints, no figures); with ``every > 1``
    only every ``every``-th RL step's row, besides the SFT row and the evaluation rows."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "summary.md"):
        shutil.copyfile(src / name, dst / name)
    rows = [
        _keep(r)
        for r in _jsonl(src / "metrics.jsonl")
        if r["phase"] != "rl" or r["step"] % every == 0 or "heldout_pass@1" in r
    ]
    write_text_atomic(dst / "curve.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


# --- the starts -----------------------------------------------------------------------------


def _start_label(settings: list[str]) -> str:
    kv = dict(s.split("=", 1) for s in settings)
    steps, smooth = kv.get("sft_steps", "1000"), kv.get("sft_smoothing", "0")
    return f"{steps} steps, smoothing {smooth}"


def starts_table(folder: pathlib.Path) -> str:
    """One row per SFT start: held-out pass@1 and pass@16 at temperature 1, and pass@1 with every
    logit multiplied by 2, 3 and 10 (10: about greedy decoding)."""
    rows, current = [], None
    for r in _jsonl(folder / "starts.jsonl"):
        if "mode" in r:
            current = {
                "SFT start": _start_label(r["set"]),
                "pass@1": f"{r['sft']['pass@1']:.3f}",
                "pass@16": f"{r['sft']['pass@16']:.3f}",
            }
            rows.append(current)
        else:
            assert current is not None
            current[f"pass@1, logits x{r['logit_scale']:g}"] = f"{r['pass@1']:.3f}"
    return markdown_table(rows)


def _trial_rows(path: pathlib.Path, opt: str) -> list[dict]:
    return [r for r in _jsonl(path) if r.get("opt") == opt]


def _trials(path: pathlib.Path) -> list[tuple[list[str], str, list[dict]]]:
    """``[(settings, update rule, evaluation rows)]`` of a ``diagnose trial`` output."""
    out: list[tuple[list[str], str, list[dict]]] = []
    settings: list[str] = []
    for r in _jsonl(path):
        if "mode" in r:
            settings = [s for s in r["set"] if not s.startswith("sft_cache=")]
        elif not out or out[-1][1] != r["opt"] or out[-1][0] is not settings:
            out.append((settings, r["opt"], [r]))
        else:
            out[-1][2].append(r)
    return out


def levers_table(folder: pathlib.Path) -> str:
    """The other levers from the earlier start: held-out pass@1 (one fixed evaluation key) at
    every evaluated step, and the KL to the start at the last one."""
    rows = []
    for settings, opt, trial in _trials(folder / "old-start-levers.jsonl"):
        row = {"settings": " ".join(settings), "update": opt}
        row.update({f"step {r['step']}": f"{r['pass@1']:.3f}" for r in trial})
        row["KL at the last step"] = f"{trial[-1]['kl_to_sft']:.3f}"
        rows.append(row)
    steps = sorted({k for r in rows for k in r if k.startswith("step ")}, key=lambda k: int(k[5:]))
    cols = ["settings", "update", *steps, "KL at the last step"]
    return markdown_table([{c: r.get(c, "-") for c in cols} for r in rows])


def start_trials_table(folder: pathlib.Path) -> str:
    """GRPO with Adam 1e-4 (16 x 16 per step) from each start: held-out pass@1 every 50 steps
    (one fixed evaluation key per start) and the KL to the start at the end."""
    sources = (
        ("1000 steps, smoothing 0", folder.parent / "learning" / "trials-300steps.jsonl"),
        ("2000 steps, smoothing 0.3", folder / "trial-smoothed-start.jsonl"),
    )
    rows = []
    for label, path in sources:
        trial = _trial_rows(path, "adam:lr=1e-4")
        row = {"SFT start": label}
        row.update({f"step {r['step']}": f"{r['pass@1']:.3f}" for r in trial})
        row["KL to start at the end"] = f"{trial[-1]['kl_to_sft']:.3f}"
        rows.append(row)
    return markdown_table(rows)


# --- the 3-seed runs ------------------------------------------------------------------------


def runs(
    folder: pathlib.Path, methods: dict[str, str] = LABELS
) -> dict[str, dict[int, pathlib.Path]]:
    """``{method: {seed: run folder}}`` of the finished runs ``<method>-s<seed>`` in ``folder``
    whose method is a key of ``methods``, in its order (the default runs, the study's and the
    length comparison's)."""
    out: dict[str, dict[int, pathlib.Path]] = {}
    for d in sorted(folder.glob("*-s*/")):
        method, _, seed = d.name.rpartition("-s")
        if method in methods and seed.isdigit() and (d / "summary.md").exists():
            out.setdefault(method, {})[int(seed)] = d
    return {m: out[m] for m in methods if m in out}


def _evals(run: pathlib.Path) -> list[tuple[int, dict]]:
    """``[(step, {pass@k: value, "length": ...})]``: the SFT evaluation (step 0), then every
    held-out one (each with what the evaluation measured: pass@k, the mean completion length
    and, on the scratchpad task, the share of completions opening a scratchpad)."""
    out = []
    for r in _jsonl(run / "curve.jsonl"):
        if r["phase"] == "sft":
            evaluated = {k: v for k, v in r.items() if k.startswith("pass@")}
            evaluated.update({k: r[k] for k in ("length", "scratchpad") if k in r})
            out.append((0, evaluated))
        elif "heldout_pass@1" in r:
            out.append((r["step"], {k[8:]: v for k, v in r.items() if k.startswith("heldout_")}))
    return out


def _wall_s(run: pathlib.Path) -> float:
    prov = json.loads((run / "config.json").read_text())["provenance"]
    end = datetime.datetime.fromisoformat(prov["end_utc"])
    return (end - datetime.datetime.fromisoformat(prov["start_utc"])).total_seconds()


def _first_step_with_gain(evals: list[tuple[int, dict]]) -> int | None:
    start = evals[0][1]["pass@1"]
    return next((s for s, e in evals if e["pass@1"] >= start + GAIN), None)


def default_table(folder: pathlib.Path) -> str:
    """Per method (one row, seeds paired by the shared SFT start and evaluation keys): held-out
    pass@1 and pass@16 at the start and after the last step (mean and Student t 95% interval
    over the seeds), the smallest gain of any seed, the latest first evaluation step at which a
    seed had gained :data:`GAIN`, and the longest run's wall time (SFT included)."""
    rows = []
    for method, seeds in runs(folder).items():
        evals = [_evals(seeds[s]) for s in sorted(seeds)]
        start = np.array([e[0][1]["pass@1"] for e in evals])
        end = np.array([e[-1][1]["pass@1"] for e in evals])
        reached = [_first_step_with_gain(e) for e in evals]
        rows.append(
            {
                "method": LABELS[method],
                "seeds": len(evals),
                "pass@1 start": stats.mean_ci_cell(start, ".3f", ".3f"),
                f"pass@1 after {evals[0][-1][0]} steps": stats.mean_ci_cell(end, ".3f", ".3f"),
                "gain": stats.mean_ci_cell(end - start, ".3f", ".3f"),
                "smallest gain": f"{np.min(end - start):.3f}",
                f"+{GAIN} by step (all seeds)": (
                    "not reached" if None in reached else str(max(r for r in reached if r))
                ),
                "pass@16 start": stats.mean_ci_cell(
                    [e[0][1]["pass@16"] for e in evals], ".3f", ".3f"
                ),
                "pass@16 end": stats.mean_ci_cell(
                    [e[-1][1]["pass@16"] for e in evals], ".3f", ".3f"
                ),
                "longest run (min)": f"{max(_wall_s(seeds[s]) for s in seeds) / 60:.1f}",
            }
        )
    return markdown_table(sorted(rows, key=lambda r: list(LABELS.values()).index(r["method"])))


def curves_table(folder: pathlib.Path, k: int = 1) -> str:
    """Mean held-out pass@k over seeds at every evaluation step, one row per method."""
    rows = []
    for method, seeds in runs(folder).items():
        evals = [_evals(seeds[s]) for s in sorted(seeds)]
        row = {"method": LABELS[method]}
        for i, (step, _) in enumerate(evals[0]):
            row[f"step {step}"] = f"{np.mean([e[i][1][f'pass@{k}'] for e in evals]):.3f}"
        rows.append(row)
    return markdown_table(sorted(rows, key=lambda r: list(LABELS.values()).index(r["method"])))


def paired_table(folder: pathlib.Path, base: str = "grpo") -> str:
    """Each method's final held-out pass@1 and pass@16 minus ``base``'s, paired by seed: mean
    difference, Student t 95% interval and two-sided p (n = the shared seeds)."""
    all_runs = runs(folder)
    rows = []
    for method in (m for m in METHODS if m != base and m in all_runs):
        seeds = sorted(set(all_runs[method]) & set(all_runs[base]))
        row = {"method - " + LABELS[base]: LABELS[method], "seeds": len(seeds)}
        for k in (1, 16):
            a = [_evals(all_runs[method][s])[-1][1][f"pass@{k}"] for s in seeds]
            b = [_evals(all_runs[base][s])[-1][1][f"pass@{k}"] for s in seeds]
            test = stats.paired_test(a, b)
            row[f"pass@{k} difference"] = stats.mean_ci_cell(np.subtract(a, b), ".3f", ".3f")
            row[f"pass@{k} p"] = stats.format_p(test.p_value)
        rows.append(row)
    return markdown_table(rows)


def fused_table(folder: pathlib.Path) -> str:
    """The default runs again with the fused learner (``<method>-fused-s<seed>``: XLA:CPU's
    YNNPACK fusions, ``learn_cpu_fusions``) against the same seeds with XLA's default kernels:
    final held-out pass@1 of each (mean, Student t 95% interval), their paired difference and
    two-sided p, the smallest gain over the start of a fused seed and the latest step by which
    every fused seed had gained :data:`GAIN`."""
    plain = runs(folder)
    fused = runs(folder, {f"{m}-fused": LABELS[m] for m in METHODS})
    rows = []
    for method in (m for m in METHODS if f"{m}-fused" in fused and m in plain):
        seeds = sorted(set(fused[f"{method}-fused"]) & set(plain[method]))
        ev_f = [_evals(fused[f"{method}-fused"][s]) for s in seeds]
        a = [e[-1][1]["pass@1"] for e in ev_f]
        b = [_evals(plain[method][s])[-1][1]["pass@1"] for s in seeds]
        reached = [_first_step_with_gain(e) for e in ev_f]
        gains = [e[-1][1]["pass@1"] - e[0][1]["pass@1"] for e in ev_f]
        rows.append(
            {
                "method": LABELS[method],
                "seeds": len(seeds),
                f"pass@1 after {ev_f[0][-1][0]} steps, fused": stats.mean_ci_cell(a, ".3f", ".3f"),
                "XLA default kernels": stats.mean_ci_cell(b, ".3f", ".3f"),
                "fused - default": stats.mean_ci_cell(np.subtract(a, b), ".3f", ".3f"),
                "p": stats.format_p(stats.paired_test(a, b).p_value),
                "smallest gain (fused)": f"{min(gains):.3f}",
                f"+{GAIN} by step (all fused seeds)": (
                    "not reached" if None in reached else str(max(r for r in reached if r))
                ),
            }
        )
    return markdown_table(rows)


def long_table(folder: pathlib.Path) -> str:
    """The longer runs: held-out pass@1 / pass@16 at every evaluation, and the token entropy of
    the training samples at that step."""
    rows = []
    for run in sorted(folder.glob("long-*/")):
        curve = _jsonl(run / "curve.jsonl")
        by_step = {r["step"]: r for r in curve if r["phase"] == "rl"}
        for step, e in _evals(run):
            rows.append(
                {
                    "run": run.name,
                    "step": step,
                    "pass@1": f"{e['pass@1']:.3f}",
                    "pass@16": f"{e['pass@16']:.3f}",
                    "entropy": f"{by_step[step]['entropy']:.3f}" if step in by_step else "-",
                }
            )
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """``{table id: build}`` for the default-setting section (``folder``: ``reports/lm``)."""
    d = folder / "default"
    return {
        "default-starts": lambda: starts_table(d),
        "default-start-trials": lambda: start_trials_table(d),
        "default-old-levers": lambda: levers_table(d),
        "default-runs": lambda: default_table(d),
        "default-curve-pass1": lambda: curves_table(d, 1),
        "default-curve-pass16": lambda: curves_table(d, 16),
        "default-paired": lambda: paired_table(d),
        "default-fused": lambda: fused_table(d),
        "default-long": lambda: long_table(d),
    }


def draw_figure(folder: pathlib.Path):
    """Held-out pass@1 (left) and pass@16 (right) against RL steps: each seed thin, the mean
    over seeds thick, one colour per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (method, seeds) in enumerate(runs(folder).items()):
        curves = [_evals(seeds[s]) for s in sorted(seeds)]
        steps = [s for s, _ in curves[0]]
        for ax, k in zip(axes, (1, 16), strict=True):
            vals = np.array([[e[f"pass@{k}"] for _, e in c] for c in curves])
            for v in vals:
                ax.plot(steps, v, color=f"C{i}", lw=0.6, alpha=0.5)
            ax.plot(steps, vals.mean(0), color=f"C{i}", lw=2, label=LABELS[method])
    for ax, k in zip(axes, (1, 16), strict=True):
        ax.set_xlabel("RL step (16 prompts x 16 samples each)")
        ax.set_ylabel(f"held-out pass@{k}")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.report.lm_default")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("curate", help="copy a run folder's small files (curve.jsonl)")
    c.add_argument("src", type=pathlib.Path)
    c.add_argument("dst", type=pathlib.Path)
    c.add_argument("--every", type=int, default=1, help="keep every N-th RL step's row")
    f = sub.add_parser("figures", help="redraw reports/lm/figures/default.png")
    f.add_argument("--root", type=pathlib.Path, default=None)
    args = ap.parse_args(argv)
    if args.cmd == "curate":
        curate(args.src, args.dst, args.every)
        return 0
    from experiments.report import repo_root

    lm = repo_root(args.root) / "reports" / "lm"
    fig = draw_figure(lm / "default")
    (lm / "figures").mkdir(exist_ok=True)
    fig.savefig(lm / "figures" / "default.png", dpi=110, metadata={"Software": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
