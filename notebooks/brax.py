# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # OrderGrad on brax: pathwise (RP) and likelihood-ratio (LR) order-statistic gradients
#
# This notebook draws the brax results of `reports/brax/RESULTS.md` from a results folder: by
# default the copy committed in `reports/brax/` of the repository (found above the working
# directory, or set `ORDERGRAD_ROOT`); set `ORDERGRAD_BRAX_RESULTS` to another folder with the
# same layout. Its layout:
#
# * `brax-variance/<run-id>/` or (older) `variance/rows.json`: the rows of
#   `ordergrad-jax run brax-variance`
# * `control/<run-id>/`: `ordergrad-jax sweep brax --out OUT` (the group-PG and PPO
#   trainers of `ordergrad-jax run control`; copy `OUT/control/brax-*` here)
# * `brax-rp/<run-id>/{config.json,metrics.jsonl}`: `ordergrad-jax sweep brax-rp`
#   (`ordergrad-jax run brax-rp --out ... --run-id ...`)
# * `bench/brax/<run-id>/` or (older) `bench/*.json`: `ordergrad-jax bench brax --out ...` runs
#
# A missing part is skipped; with no RP runs at all the notebook runs `brax-rp --quick`.

# %%
import os
import pathlib
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ordergrad_experiments.bench import brax as brax_bench
from ordergrad_experiments.common.runs import Run, find_runs
from ordergrad_experiments.control import evaluate, plots
from ordergrad_experiments.pathwise import run as pathwise
from ordergrad_experiments.pathwise import variance as brax_variance
from ordergrad_experiments.report import brax as report_brax
from ordergrad_experiments.report import control as report_control


def repo_root() -> pathlib.Path:
    """$ORDERGRAD_ROOT, else the first folder at or above the working directory with reports/."""
    if os.environ.get("ORDERGRAD_ROOT"):
        return pathlib.Path(os.environ["ORDERGRAD_ROOT"])
    here = pathlib.Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "reports").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(f"no repository root above {here}: set ORDERGRAD_ROOT")


root = pathlib.Path(os.environ.get("ORDERGRAD_BRAX_RESULTS") or repo_root() / "reports" / "brax")
print("results:", root)

# %% [markdown]
# ## 1. RP vs LR: gradient variance and SNR at equal sample budget
#
# The same policy, the same objective, `repeats` independent estimates from G x N episodes each.

# %%
rows = report_brax.variance_rows(root)  # a brax-variance run folder, or the older rows.json
if rows:
    fig = brax_variance.figure(rows)
    plt.show()
    display(Markdown(brax_variance.table(rows)))
else:
    print("no variance study in", root)

# %% [markdown]
# ## 2. The LR trainers on brax: order-statistic objectives vs the mean vs PPO
#
# Group-PG with the OrderGrad advantage (PPO-clipped update) for the Mean, LowerTailMean:0.25 and
# ReMax objectives (K = 4), and PPO + GAE, on each task. Left: training return against env steps
# (mean over seeds, band: range of seeds). Right: the final policies' deployment statistics
# (mean over seeds, 95% Student-t interval), each from 1,000 evaluation episodes per seed.

# %%
control = find_runs(root / "control") if (root / "control").is_dir() else []
if control:
    display(Markdown(report_control.table(control)))
    tasks: dict[str, list[Run]] = {}
    for run in control:
        tasks.setdefault(run.name.rsplit("-", 1)[0], []).append(run)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(13, 3.8 * len(tasks)), squeeze=False)
    for (task, task_runs), (ax_curve, ax_bar) in zip(tasks.items(), axes, strict=True):
        rows = [r for run in task_runs for r in run.metrics]
        plots.learning_curves(rows, ax=ax_curve)
        ax_curve.set_title(task)
        evals = [r for r in rows if r.get("kind") == "eval"]
        methods = list(dict.fromkeys(r["method"] for r in evals))
        stats = ["mean", "cvar_0.1", "max_at_4"]
        x = np.arange(len(methods))
        for i, stat in enumerate(stats):
            cis = [
                evaluate.mean_ci(np.array([r[stat] for r in evals if r["method"] == m]))
                for m in methods
            ]
            ax_bar.bar(
                x + (i - 1) * 0.27, [c[0] for c in cis], 0.27, yerr=[c[1] for c in cis], label=stat
            )
        ax_bar.set_xticks(x, methods, rotation=15, fontsize=7)
        ax_bar.set_ylabel("evaluation return")
        ax_bar.set_title(f"{task}: final policies")
        ax_bar.legend(fontsize=8)
    fig.tight_layout()
    plt.show()
else:
    print("no control runs in", root)

# %% [markdown]
# ## 3. Learning curves of the pathwise trainer (and LR from the same rollouts)
#
# Mean over seeds with a 95% band (1.96 standard errors) of the evaluation episodes' mean return
# and CVaR_0.1, against env steps.

# %%
runs = find_runs(root / "brax-rp", finished=None) if (root / "brax-rp").is_dir() else []
if not runs:
    from ordergrad_experiments import registry
    from ordergrad_experiments.common.runs import RunWriter

    out = os.environ.get("ORDERGRAD_NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="ordergrad-")
    experiment = registry.get("brax-rp")
    writer = RunWriter("brax-rp", out)
    experiment.run(experiment.quick, writer)
    runs = [Run(writer.path)]


display(Markdown(report_brax.rp_runs_table(runs)))


def curves(run: Run) -> tuple[str, dict]:
    rows = run.metrics
    cfg = pathwise.run_settings(run.config)
    label = f"{cfg['gradient']} {cfg['objective']}"
    steps = sorted({r["env_steps"] for r in rows})
    out = {}
    for metric in ("eval_mean", "eval_cvar_0.1", "eval_mean_length"):
        by_step = [np.array([r[metric] for r in rows if r["env_steps"] == s]) for s in steps]
        mean = np.array([x.mean() for x in by_step])
        half = np.array(
            [1.96 * x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else 0.0 for x in by_step]
        )
        out[metric] = (np.array(steps), mean, half)
    return label, out


by_task: dict[str, list[Run]] = {}
for run in runs:
    cfg = pathwise.run_settings(run.config)
    push = f", push {cfg['push_prob']:g} x {cfg['push_size']:g}" if cfg["push_prob"] else ""
    by_task.setdefault(f"{cfg['env']} ({cfg['backend']}{push})", []).append(run)
metrics = ("eval_mean", "eval_cvar_0.1", "eval_mean_length")
fig, axes = plt.subplots(len(by_task), 3, figsize=(14, 3.6 * len(by_task)), squeeze=False)
for (task, task_runs), row in zip(by_task.items(), axes, strict=True):
    for run in task_runs:
        label, data = curves(run)
        for ax, metric in zip(row, metrics, strict=True):
            x, m, h = data[metric]
            ax.plot(x, m, label=label)
            ax.fill_between(x, m - h, m + h, alpha=0.2)
            ax.set_title(f"{task}: {metric}", fontsize=9)
            ax.set_xlabel("env steps (per seed)")
            ax.set_ylabel(metric.replace("eval_", "evaluation "))
    row[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Against brax's own agents (same task, backend, batch and budget)

# %%
bench = report_brax.bench_runs(root) if (root / "bench").exists() else []
for name, bench_rows in bench:  # bench/brax/<run-id>/ run folders and older bench/*.json files
    display(Markdown(f"**{name}**\n\n" + brax_bench.table(bench_rows)))
if not bench:
    print("no benchmark in", root)
