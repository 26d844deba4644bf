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
# # LM RL fine-tuning with OrderGrad: pass@k and training curves
#
# Reads a folder of `lm-rl` runs (`ordergrad-jax run lm-rl ...`, one run folder each, e.g. the
# grid of `ordergrad-jax sweep lm-grid` under `results/lm-grid/lm-rl`, or a curated folder such as
# `reports/lm/study`): set `ORDERGRAD_LM_RESULTS` to it. Without it, the notebook runs the quick
# configuration (a tiny SFT + RL on CPU, well under a minute) into a temporary folder. The last
# section draws the pass@k study from the data committed in `reports/lm/study/`.

# %%
import os
import pathlib
import tempfile

from IPython.display import Markdown, display

from ordergrad_experiments import registry
from ordergrad_experiments.common.runs import RunWriter
from ordergrad_experiments.report import repo_root
from ordergrad_experiments.report.lm import grid, length, study
from ordergrad_experiments.report.lm.runs import method_runs, start

results = os.environ.get("ORDERGRAD_LM_RESULTS")
if results:
    folder = pathlib.Path(results)
else:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="ordergrad-lm-"))
    experiment = registry.get("lm-rl")
    experiment.run(experiment.quick, RunWriter("lm-rl", folder))
runs = method_runs(folder)
first = start(next(iter(runs.values()))[0])
ks = [k for k in (1, 2, 4, 8, 16, 32) if f"pass@{k}" in first]
print(f"{sum(map(len, runs.values()))} runs from {folder}: {list(runs)}")

# %% [markdown]
# ## Held-out pass@k after RL (mean ± Student t 95% interval over seeds)

# %%
display(Markdown(grid.grid_table(folder, ks)))

# %% [markdown]
# ## pass@k curves and training curves
# Left: held-out pass@k against k for each method (the dashed line is the SFT start). Below:
# train reward, token entropy and held-out pass@1 over RL steps (the first seed of each method).

# %%
figs = grid.compare_figures(folder, ks)
display(figs["lm_passk_compare"])
display(figs["lm_training_compare"])

# %% [markdown]
# ## The pass@k study (committed data)
# `ordergrad-jax sweep lm-study`: 3-digit addition, 11 methods x 5 seeds from one SFT start,
# held-out pass@k on 1024 prompts x 32 samples with the same evaluation keys for every method of a
# seed (reports/lm/RESULTS.md). Left: pass@k against k; right: each method minus GRPO, paired by
# seed.

# %%
study_runs = repo_root() / "reports" / "lm" / "study"
if study.runs(study_runs):
    display(Markdown(study.passk_table(study_runs)))
    display(study.draw_figure(study_runs))
else:
    print(f"no study runs in {study_runs}")

# %% [markdown]
# ## Length: OrderGrad TopM:2@4 vs GRPO with a length penalty (committed data)
# `ordergrad-jax sweep lm-length`: 3-digit addition whose answer may follow a column-sum scratchpad
# (4-5 or 11-15 tokens), reward = correct - penalty x tokens / 16 with penalty 0.2 (solid), 0.5
# (dashed) or none (dotted). Held-out pass@1 (left) and mean completion length (right) over RL
# steps; thin lines are single seeds (reports/lm/RESULTS.md, "Length").

# %%
length_runs = repo_root() / "reports" / "lm" / "length"
if length.runs(length_runs):
    display(Markdown(length.final_table(length_runs)))
    display(length.draw_figure(length_runs))
else:
    print(f"no length runs in {length_runs}")
