"""RP vs LR gradient variance and SNR at equal sample budget (``ordergrad-jax run brax-variance``).

For one policy (a fresh one of :mod:`ordergrad_experiments.pathwise.networks`, seed ``seed``) and
each objective, ``repeats`` independent gradient estimates of the same objective
``J = sum_j alpha_j E[R_(j:K)]`` with each gradient from the same budget (``num_groups x
group_size`` episodes of ``num_steps`` steps): RP through the simulator and LR through the sampled
actions. Reported: ``tr Var`` (og.metrics.total_variance), the debiased SNR
(og.metrics.snr(debias=True)), the norm of the mean, the cosine between the two mean gradients,
and a bias check (the largest |mean_RP - mean_LR| coordinate in standard errors).

Objectives share one compile per (task, gradient): the rank weights are a traced argument.
Writes ``metrics.jsonl`` (one row per task, objective and gradient), ``summary.md`` (the table)
and the figure ``rp_vs_lr.png``/``.pdf``: one run is one study, so its table and figure are the
run's own. ``ordergrad-jax report brax [--figures]`` builds section 4 of
``reports/brax/RESULTS.md`` (and redraws its figure) from the rows of such a run folder in
``reports/brax/brax-variance/`` (layout in ``experiments/report/brax.py``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og
from ordergrad_envs.brax_env import SMOOTH_REWARDS
from ordergrad_experiments.common.config import EstimatorConfig, GroupsConfig
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.pathwise import train
from ordergrad_experiments.pathwise.config import GRADIENTS, PathwiseConfig


@dataclasses.dataclass(frozen=True)
class RPVarianceConfig:
    """Sizes of the study; QUICK is the CI size."""

    tasks: tuple[str, ...] = ("brax/inverted_pendulum", "brax/reacher", "brax/hopper")
    backend: str = "spring"
    """brax backend (inverted_pendulum gets the smooth reward: its native one has no RP grad)."""
    objectives: tuple[str, ...] = ("Mean", "LowerTailMean:0.25", "ReMax")
    """The ordergrad objectives compared (one row each per task and gradient); a study of
    several objectives, so not one ``EstimatorConfig``."""
    k: int = 4
    """``K`` of every objective."""
    groups: GroupsConfig = dataclasses.field(
        default_factory=lambda: GroupsConfig(num_groups=8, group_size=8)
    )
    num_steps: int = 32
    action_std: float = 0.3
    hidden: tuple[int, ...] = (32, 32)
    repeats: int = 128
    seed: int = 0


QUICK = RPVarianceConfig(
    tasks=("brax/inverted_pendulum",),
    objectives=("Mean", "ReMax"),
    k=2,
    groups=GroupsConfig(num_groups=2, group_size=4),
    num_steps=4,
    hidden=(8,),
    repeats=8,
)


def _flat(g: object, s: int) -> np.ndarray:
    return np.concatenate([np.asarray(x).reshape(s, -1) for x in jax.tree.leaves(g)], axis=1)


def pathwise_config(config: RPVarianceConfig, task: str) -> PathwiseConfig:
    """The trainer settings whose gradient estimates the study compares on ``task``."""
    env_params = (f"backend={config.backend}",) if task.startswith("brax/") else ()
    if task.removeprefix("brax/") in SMOOTH_REWARDS:
        env_params += ("reward=smooth",)
    return PathwiseConfig(
        env=task,
        env_params=env_params,
        estimator=EstimatorConfig(name="ordergrad", k=config.k),
        groups=config.groups,
        num_steps=config.num_steps,
        action_std=config.action_std,
        hidden=config.hidden,
    )


def study(config: RPVarianceConfig, progress: Callable | None = None) -> list[dict]:
    """One row per (task, objective, gradient); see the module docstring."""
    rows = []
    tasks = progress(config.tasks) if progress else config.tasks
    for task in tasks:
        pcfg = pathwise_config(config, task)
        env, env_params = train.make_env(pcfg)
        module, init_params = train.policy_module(pcfg, env, env_params)
        theta = init_params(jax.random.key(config.seed))
        keys = jax.random.split(jax.random.key(config.seed + 1), config.repeats)
        samples = {}
        for gradient in GRADIENTS:
            grad = train.make_objective_grad(pcfg, env, env_params, module, gradient)

            @jax.jit
            def estimates(theta, keys, alpha, grad=grad):
                g, aux = jax.vmap(lambda key: grad(theta, key, alpha))(keys)
                return g, aux["returns"], aux["length"]

            for objective in config.objectives:
                alpha = jnp.asarray(og.rank_weights(objective, config.k), jnp.result_type(float))
                tic = time.perf_counter()
                g, returns, length = jax.block_until_ready(estimates(theta, keys, alpha))
                seconds = time.perf_counter() - tic
                flat = _flat(g, config.repeats)
                samples[gradient, objective] = flat
                rows.append(
                    {
                        "task": task,
                        "backend": config.backend,
                        "objective": objective,
                        "gradient": gradient,
                        "episodes_per_estimate": pcfg.groups.num_groups * pcfg.groups.group_size,
                        "num_steps": config.num_steps,
                        "repeats": config.repeats,
                        "total_variance": float(og.metrics.total_variance(flat)),
                        "snr": float(og.metrics.snr(flat, debias=True)),
                        "mean_norm": float(np.linalg.norm(flat.mean(0))),
                        "return_mean": float(np.mean(returns)),
                        "terminated_fraction": float(
                            np.mean(np.asarray(length) < config.num_steps)
                        ),
                        "seconds_incl_compile": seconds,
                    }
                )
        for objective in config.objectives:
            rp, lr = samples["rp", objective], samples["lr", objective]
            diff = rp.mean(0) - lr.mean(0)
            se = np.sqrt(rp.var(0, ddof=1) / len(rp) + lr.var(0, ddof=1) / len(lr))
            cos = float(
                rp.mean(0) @ lr.mean(0) / (np.linalg.norm(rp.mean(0)) * np.linalg.norm(lr.mean(0)))
            )
            for row in rows[-2 * len(config.objectives) :]:
                if row["objective"] == objective:
                    row["cosine_rp_lr"] = cos
                    row["max_diff_in_se"] = float(np.max(np.abs(diff) / np.maximum(se, 1e-30)))
                    row["variance_ratio_lr_over_rp"] = float(
                        og.metrics.total_variance(lr) / og.metrics.total_variance(rp)
                    )
    return rows


def _gradient(row: dict) -> str:
    """The row's gradient (rows written before the rename call it ``estimator``)."""
    return row.get("gradient", row.get("estimator"))


def figure(rows: list[dict]):
    """tr Var and SNR of RP vs LR per task and objective (log scale)."""
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    objectives = list(dict.fromkeys(r["objective"] for r in rows))
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.5 * len(tasks), 6), squeeze=False)
    x = np.arange(len(objectives))
    for j, task in enumerate(tasks):
        for i, (metric, label) in enumerate((("total_variance", "tr Var"), ("snr", "SNR"))):
            ax = axes[i, j]
            for shift, gradient in ((-0.2, "rp"), (0.2, "lr")):
                vals = [
                    next(
                        r[metric]
                        for r in rows
                        if r["task"] == task and r["objective"] == o and _gradient(r) == gradient
                    )
                    for o in objectives
                ]
                ax.bar(x + shift, np.maximum(vals, 1e-12), width=0.4, label=gradient.upper())
            ax.set_yscale("log")
            ax.set_xticks(x, objectives, rotation=20, fontsize=8)
            ax.set_ylabel(label)
            ax.set_title(f"{task} ({rows[0]['backend']})", fontsize=9)
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def table(rows: list[dict]) -> str:
    """The study's table, one row per (task, objective, gradient): the run's ``summary.md``, and
    section 4 of ``reports/brax/RESULTS.md`` for the committed study (``ordergrad-jax report
    brax`` shows the study's own table, so the two agree by construction)."""
    cols = [
        "task",
        "objective",
        "gradient",
        "total_variance",
        "snr",
        "mean_norm",
        "cosine_rp_lr",
        "max_diff_in_se",
        "variance_ratio_lr_over_rp",
        "terminated_fraction",
    ]
    return markdown_table([{**r, "gradient": _gradient(r)} for r in rows], cols, floatfmt=".3g")


def run(config: RPVarianceConfig, writer: RunWriter, progress: Callable | None = None) -> list:
    """Runs the study; writes the rows, the table (``summary.md``) and the figure."""
    import matplotlib.pyplot as plt

    writer.write_config(config, jax=jax.__version__, device=str(jax.devices()[0]))
    rows = study(config, progress)
    writer.log(rows)
    fig = figure(rows)
    writer.save_figure(fig, "rp_vs_lr")
    plt.close(fig)
    writer.write_summary(f"# RP vs LR gradient variance\n\n{table(rows)}")
    return rows
