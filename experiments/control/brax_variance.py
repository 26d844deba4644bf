"""RP vs LR gradient variance and SNR at equal sample budget on brax tasks (a figure + a table).

For one policy (a fresh MLP of :mod:`experiments.control.pathwise`, seed ``seed``) and each
objective, ``repeats`` independent gradient estimates of the same objective
``J = sum_j alpha_j E[R_(j:K)]`` with each estimator from the same budget (``groups x
group_size`` episodes of ``horizon`` steps): RP through the simulator and LR through the sampled
actions. Reported: ``tr Var`` (og.metrics.total_variance), the debiased SNR
(og.metrics.snr(debias=True)), the norm of the mean, the cosine between the two mean gradients,
and a bias check (the largest |mean_RP - mean_LR| coordinate in standard errors).

    .venv/bin/python -m experiments.control.brax_variance --out results/brax-variance

Objectives share one compile per (task, estimator): the rank weights are a traced argument.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from flax import nnx

import ordergrad_jax as og
from experiments.common.io import atomic_temp_path, write_json_atomic, write_text_atomic
from experiments.common.runs import markdown_table
from experiments.control import pathwise as pw


@dataclasses.dataclass(frozen=True)
class BraxVarianceConfig:
    """Sizes of the study; QUICK is the CI size."""

    tasks: tuple[str, ...] = ("brax/inverted_pendulum", "brax/reacher", "brax/hopper")
    backend: str = "spring"
    objectives: tuple[str, ...] = ("Mean", "LowerTailMean:0.25", "ReMax")
    k: int = 4
    groups: int = 8
    group_size: int = 8
    horizon: int = 32
    action_std: float = 0.3
    hidden: tuple[int, ...] = (32, 32)
    repeats: int = 128
    seed: int = 0


QUICK = BraxVarianceConfig(
    tasks=("brax/inverted_pendulum",),
    objectives=("Mean", "ReMax"),
    k=2,
    groups=2,
    group_size=4,
    horizon=4,
    hidden=(8,),
    repeats=8,
)


def _flat(g: object, s: int) -> np.ndarray:
    return np.concatenate([np.asarray(x).reshape(s, -1) for x in jax.tree.leaves(g)], axis=1)


def study(cfg: BraxVarianceConfig) -> list[dict]:
    """One row per (task, objective, estimator); see the module docstring."""
    rows = []
    for task in cfg.tasks:
        pcfg = pw.PathwiseConfig(
            env=task,
            backend=cfg.backend,
            reward="smooth" if task.endswith("inverted_pendulum") else "native",
            k=cfg.k,
            groups=cfg.groups,
            group_size=cfg.group_size,
            horizon=cfg.horizon,
            action_std=cfg.action_std,
            hidden=cfg.hidden,
        )
        env, env_params = pw.make_env(pcfg)
        obs_dim = int(np.prod(env.observation_space(env_params).shape))
        act_dim = int(np.prod(env.action_space(env_params).shape))
        policy = pw.Policy(obs_dim, act_dim, cfg.hidden, rngs=nnx.Rngs(params=cfg.seed))
        graphdef, theta = nnx.split(policy, nnx.Param)
        keys = jax.random.split(jax.random.key(cfg.seed + 1), cfg.repeats)
        samples = {}
        for est in ("rp", "lr"):
            grad = pw.make_objective_grad(pcfg, env, env_params, graphdef, est)

            @jax.jit
            def estimates(theta, keys, alpha, grad=grad):
                g, aux = jax.vmap(lambda key: grad(theta, key, alpha))(keys)
                return g, aux["returns"], aux["length"]

            for objective in cfg.objectives:
                alpha = jnp.asarray(og.rank_weights(objective, cfg.k), jnp.result_type(float))
                tic = time.perf_counter()
                g, returns, length = estimates(theta, keys, alpha)
                jax.block_until_ready(g)
                seconds = time.perf_counter() - tic
                flat = _flat(g, cfg.repeats)
                samples[est, objective] = flat
                rows.append(
                    {
                        "task": task,
                        "backend": cfg.backend,
                        "objective": objective,
                        "estimator": est,
                        "episodes_per_estimate": cfg.groups * cfg.group_size,
                        "horizon": cfg.horizon,
                        "repeats": cfg.repeats,
                        "total_variance": float(og.metrics.total_variance(flat)),
                        "snr": float(og.metrics.snr(flat, debias=True)),
                        "mean_norm": float(np.linalg.norm(flat.mean(0))),
                        "return_mean": float(np.mean(returns)),
                        "terminated_fraction": float(np.mean(np.asarray(length) < cfg.horizon)),
                        "seconds_incl_compile": seconds,
                    }
                )
        for objective in cfg.objectives:
            rp, lr = samples["rp", objective], samples["lr", objective]
            diff = rp.mean(0) - lr.mean(0)
            se = np.sqrt(rp.var(0, ddof=1) / len(rp) + lr.var(0, ddof=1) / len(lr))
            cos = float(
                rp.mean(0) @ lr.mean(0) / (np.linalg.norm(rp.mean(0)) * np.linalg.norm(lr.mean(0)))
            )
            for row in rows[-2 * len(cfg.objectives) :]:
                if row["objective"] == objective:
                    row["cosine_rp_lr"] = cos
                    row["max_diff_in_se"] = float(np.max(np.abs(diff) / np.maximum(se, 1e-30)))
                    row["variance_ratio_lr_over_rp"] = float(
                        og.metrics.total_variance(lr) / og.metrics.total_variance(rp)
                    )
    return rows


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
            for shift, est in ((-0.2, "rp"), (0.2, "lr")):
                vals = [
                    next(
                        r[metric]
                        for r in rows
                        if r["task"] == task and r["objective"] == o and r["estimator"] == est
                    )
                    for o in objectives
                ]
                ax.bar(x + shift, np.maximum(vals, 1e-12), width=0.4, label=est.upper())
            ax.set_yscale("log")
            ax.set_xticks(x, objectives, rotation=20, fontsize=8)
            ax.set_ylabel(label)
            ax.set_title(f"{task} ({rows[0]['backend']})", fontsize=9)
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def table(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    cols = [
        "task",
        "objective",
        "estimator",
        "total_variance",
        "snr",
        "mean_norm",
        "cosine_rp_lr",
        "max_diff_in_se",
        "variance_ratio_lr_over_rp",
        "terminated_fraction",
    ]
    return markdown_table(rows, cols, floatfmt=".3g")


def main(
    out: pathlib.Path = pathlib.Path("results/brax-variance"), quick: bool = False
) -> list[dict]:
    """Runs the study and writes ``rows.json``, ``table.md`` and ``rp_vs_lr.png`` under ``out``."""
    cfg = QUICK if quick else BraxVarianceConfig()
    rows = study(cfg)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "rows.json", {"config": dataclasses.asdict(cfg), "rows": rows})
    text = table(rows)
    write_text_atomic(out / "table.md", text)
    import matplotlib

    matplotlib.use("Agg")
    fig = figure(rows)
    fd, tmp = atomic_temp_path(out / "rp_vs_lr.png", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    os.replace(tmp, out / "rp_vs_lr.png")
    print(text)
    print(json.dumps({"out": str(out)}))
    return rows


if __name__ == "__main__":
    tyro.cli(main)
