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
# # OrderGrad variance study
#
# This notebook reproduces the estimator studies of the OrderGrad paper with `ordergrad_jax`.
# It runs the quick configuration of `ordergrad-jax run variance` (about a minute on a laptop
# CPU), or loads an existing results folder: set `ORDERGRAD_RESULTS` to a run folder such as
# `results/variance/<run-id>` made by the full study (`ordergrad-jax run variance`) on a GPU/TPU.
# `ORDERGRAD_SET="snr_batches=2000 zoo_batches=2000"` changes the quick configuration as the
# command's `--set key=value` does (space-separated).

# %%
import os
import pathlib
import tempfile

from IPython.display import Markdown, display

from ordergrad_experiments import registry
from ordergrad_experiments.common.config import apply_overrides
from ordergrad_experiments.common.runs import Run, RunWriter
from ordergrad_experiments.variance import plots

results = os.environ.get("ORDERGRAD_RESULTS")
if results:
    run_dir = pathlib.Path(results)
else:
    experiment = registry.get("variance")
    out = os.environ.get("ORDERGRAD_NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="ordergrad-")
    writer = RunWriter("variance", out)
    overrides = os.environ.get("ORDERGRAD_SET", "").split()
    experiment.run(apply_overrides(experiment.quick, overrides), writer)
    run_dir = writer.path
rows = Run(run_dir).metrics
print(f"{len(rows)} metric rows from {run_dir}")

# %% [markdown]
# ## 1. Unbiasedness
# Batch order statistics, include-one values, rank advantages and L-advantages, averaged over
# t batches, converge to the exact known-(r, p) values. On log-log axes the error falls with
# slope -1/2, the Monte Carlo rate of an unbiased estimator (a biased one would flatten out).

# %%
plots.unbiasedness(rows)
# %% [markdown]
# ## 2. LR gradient vs the exact gradient
# The mean of t OrderGrad LR gradients on a softmax bandit approaches `jax.grad` of the exact
# objective for every objective and reward profile: the relative error keeps falling as t grows.

# %%
plots.lr_vs_exact(rows)
# %% [markdown]
# ## 3. RP vs LR on the Gaussian location model
# Both estimators are unbiased for the same gradient (their means agree within Monte Carlo
# error; see the summary table below); their variance differs and grows with the dimension.
# The pathwise (RP) gradient is usually the lower-variance one on smooth rewards.

# %%
plots.rp_vs_lr(rows)
# %% [markdown]
# ## 4. Signal-to-noise ratio
# SNR = |E g|^2 / tr Var[g] against K (at N = 64), N (at K = 4), the number of bandit arms and the
# dimension. Objectives that put weight on a single extreme rank (ReMax) have the lowest SNR and
# lose most as K grows; trimmed and lower-tail means stay close to the mean's SNR. More samples
# per group (N) raise the SNR of every objective.

# %%
plots.snr(rows)
# %% [markdown]
# ## 5. OrderGrad vs the estimator zoo
# Each method's gradient on its own target: unbiased methods (OrderGrad, RLOO, MaxPO, PKPO's
# unbiased variants) have near-zero relative bias; GRPO's std-normalisation is biased for the
# mean.

# %%
if any(r["study"] == "zoo" for r in rows):
    plots.zoo(rows)

# %% [markdown]
# ## 6. Runtime
# The OrderGrad transform against the floor any rank transform pays (sort + scatter) and GRPO.

# %%
plots.runtime(rows)
# %% [markdown]
# ## The numbers

# %%
display(Markdown((run_dir / "summary.md").read_text()))
