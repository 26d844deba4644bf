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
# # Control benchmark: order-statistic policy gradients on gymnax tasks
#
# Episodic group policy gradients where each episode's advantage comes from any estimator of
# `og.estimators` (OrderGrad with any L-statistic objective and K, RLOO, CVaR-PG, ...), beside
# PPO. This notebook either loads results (set `ORDERGRAD_RESULTS` to one run folder such as
# `results/control/<run-id>`, or to a folder of run folders such as `results/control`, e.g. the
# runs of `ordergrad-jax sweep control-risk` in `results/control-risk/control`), or runs the quick
# configuration of `ordergrad-jax run control` (OrderGrad's lower-tail objective on CartPole;
# seconds).

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ordergrad_experiments import registry
from ordergrad_experiments.common.config import apply_overrides
from ordergrad_experiments.common.runs import Run, RunWriter, find_runs
from ordergrad_experiments.report import control as report

results = os.environ.get("ORDERGRAD_RESULTS")
if results:
    runs = find_runs(results)  # one run folder, or a folder of run folders
else:
    experiment = registry.get("control")
    out = os.environ.get("ORDERGRAD_NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="ordergrad-")
    runs = []
    for name, overrides in {"og-ltm": ["objective=LowerTailMean:0.25", "k=4"]}.items():
        writer = RunWriter("control", out, f"notebook-{name}")
        experiment.run(apply_overrides(experiment.quick, overrides), writer)
        runs.append(Run(writer.path))
runs = [run for run in runs if run.finished]
print(f"{len(runs)} finished runs:", *[run.name for run in runs], sep="\n  ")

# %% [markdown]
# ## Final policies
# Each final policy is evaluated on `eval_episodes` (>= 1000) fresh episodes: the mean return,
# the lower tail (CVaR_0.1: the mean of the worst 10%), the median, the minimum, max@K (the
# expected best of K tries) and, with a success threshold, the success rate and pass@K. Entries
# are the mean over seeds ± the half-width of a 95% Student-t interval. The last columns are
# training diagnostics of the final chunk (policy entropy, advantage std, fraction of zero
# advantages) and the steady training speed (env steps per second over all seeds).

# %%
display(Markdown(report.table(runs)))

# %% [markdown]
# ## Learning curves
# Mean training return of the sampled episodes against env steps per seed (line: mean over
# seeds; band: the range of seeds), one panel per task.

# %%
for fig in report.env_figures(runs, which=("curves",)).values():  # one figure per env
    display(fig)
    plt.close(fig)

# %% [markdown]
# ## Return distributions of the final policies
# Histograms of the evaluation returns (all seeds pooled) on a log count axis, so the rare bad
# episodes of the lower tail stay visible; the dashed lines mark each method's CVaR_0.1.

# %%
for fig in report.env_figures(runs, which=("returns",)).values():
    display(fig)
    plt.close(fig)
for run in runs:
    for method, values in report.final_returns(run).items():
        q = np.quantile(np.ravel(values), [0.01, 0.1, 0.5, 0.9])
        print(f"{run.config['env']} {method}: quantiles 1/10/50/90% = {np.round(q, 2)}")
