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
# This notebook draws the brax results of `experiments/control/RESULTS_brax.md` from a results
# folder: by default the copy committed in `experiments/control/brax_results/` (set
# `ORDERGRAD_BRAX_RESULTS` to another folder with the same layout). Its layout:
#
# * `variance/rows.json`: `python -m experiments.control.brax_variance --out .../variance`
# * `runs/<run-id>/{config.json,metrics.jsonl}`: `ordergrad-jax run brax-rp --out ... --run-id ...`
# * `bench/*.json`: `python -m experiments.control.brax_bench --out .../bench`
#
# A missing part is skipped; with no results at all the notebook runs `brax-rp --quick`.

# %%
import json
import os
import pathlib
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from experiments.control import brax_bench, brax_variance

root = pathlib.Path(
    os.environ.get("ORDERGRAD_BRAX_RESULTS")
    or pathlib.Path(brax_variance.__file__).resolve().parent / "brax_results"
)
print("results:", root)

# %% [markdown]
# ## 1. RP vs LR: gradient variance and SNR at equal sample budget
#
# The same policy, the same objective, `repeats` independent estimates from G x N episodes each.

# %%
variance = root / "variance" / "rows.json"
if variance.exists():
    rows = json.loads(variance.read_text())["rows"]
    fig = brax_variance.figure(rows)
    plt.show()
    display(Markdown(brax_variance.table(rows)))
else:
    print("no variance study in", root)

# %% [markdown]
# ## 2. Learning curves of the pathwise trainer (and LR from the same rollouts)
#
# Mean over seeds with a 95% band (1.96 standard errors) of the evaluation episodes' mean return
# and CVaR_0.1, against env steps.

# %%
runs = sorted((root / "runs").glob("*/metrics.jsonl")) if (root / "runs").exists() else []
if not runs:
    from experiments import registry
    from experiments.common.runs import RunWriter

    out = os.environ.get("ORDERGRAD_NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="ordergrad-")
    experiment = registry.get("brax-rp")
    writer = RunWriter("brax-rp", out)
    experiment.run(experiment.quick, writer)
    runs = [writer.path / "metrics.jsonl"]


def curves(path: pathlib.Path) -> tuple[str, dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    cfg = json.loads((path.parent / "config.json").read_text())["config"]
    label = f"{cfg['estimator']} {cfg['objective']}"
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


fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for path in runs:
    label, data = curves(path)
    for ax, metric in zip(axes, ("eval_mean", "eval_cvar_0.1", "eval_mean_length"), strict=True):
        x, m, h = data[metric]
        ax.plot(x, m, label=label)
        ax.fill_between(x, m - h, m + h, alpha=0.2)
        ax.set_title(metric)
        ax.set_xlabel("env steps (per seed)")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Against brax's own agents (same task, backend, batch and budget)

# %%
bench = sorted((root / "bench").glob("*.json")) if (root / "bench").exists() else []
for path in bench:
    result = json.loads(path.read_text())
    display(
        Markdown(f"**{path.stem}** ({result['device']})\n\n" + brax_bench.table(result["rows"]))
    )
if not bench:
    print("no benchmark in", root)
