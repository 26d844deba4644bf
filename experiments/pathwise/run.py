"""``ordergrad-jax run brax-rp``: seeds vmapped in one jit, chunked and checkpointed training
(``train_in_chunks``: a killed run resumes with the same ``--run-id``), an evaluation of
``eval_groups * group_size`` episodes after every chunk, a summary table."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og
from experiments.common import stats
from experiments.common.checkpoint import train_in_chunks
from experiments.common.runs import RunWriter, markdown_table
from experiments.pathwise.config import PathwiseConfig
from experiments.pathwise.train import evaluate, make_train


def evaluation_row(returns: Any, k: int, objective: Any) -> dict[str, float]:
    """Deployment metrics of ``[groups, N]`` returns: mean, CVaR_0.1, median, max@K, the
    objective at K (per-group U-statistics averaged), and the number of episodes."""
    x = jnp.asarray(returns)
    flat = x.reshape(-1)
    return {
        "eval_mean": float(og.metrics.mean(flat)),
        "eval_cvar_0.1": float(og.metrics.cvar(flat, 0.1)),
        "eval_median": float(jnp.median(flat)),
        f"eval_max@{k}": float(jnp.mean(og.metrics.max_at_k(x, k))),
        "eval_objective": float(jnp.mean(og.metrics.lstat_at_k(x, k, objective))),
        "eval_episodes": int(flat.size),
    }


def run(config: PathwiseConfig, writer: RunWriter, progress: Callable | None = None) -> list[dict]:
    """Trains with checkpoint/resume, logging one row per chunk and seed; writes the final
    evaluation as the summary."""
    writer.write_config(config, jax=jax.__version__, device=str(jax.devices()[0]))
    trainer = make_train(config)
    seeds = config.seed + np.arange(config.num_seeds)
    init = jax.jit(jax.vmap(trainer.init))(jax.vmap(jax.random.key)(jnp.asarray(seeds)))

    def chunk_and_evaluate(state):
        state, metrics = trainer.chunk(state)
        key, k_eval = jax.random.split(state.key)
        episodes = evaluate(config, trainer, state, k_eval)
        metrics = {**metrics, "eval_returns": episodes.returns, "eval_length": episodes.length}
        return state._replace(key=key), metrics

    groups = config.groups
    per_chunk = trainer.iterations_per_chunk * trainer.steps_per_iteration
    eval_steps = config.eval_groups * groups.group_size * config.num_steps

    def log_fn(chunk: int, state: Any, metrics: dict, seconds: float) -> list[dict]:
        iterations = (chunk + 1) * trainer.iterations_per_chunk
        work = config.num_seeds * (per_chunk + eval_steps)
        return [
            {
                "seed": int(seed),
                "iteration": iterations,
                "env_steps": iterations * trainer.steps_per_iteration,
                "train_mean": float(metrics["train_mean"][i, -1]),
                "train_objective": float(metrics["train_objective"][i, -1]),
                "grad_norm": float(np.mean(metrics["grad_norm"][i])),
                "eval_mean_length": float(np.mean(metrics["eval_length"][i])),
                **evaluation_row(metrics["eval_returns"][i], config.k, config.objective),
                "env_steps_per_s": work / seconds,
            }
            for i, seed in enumerate(seeds)
        ]

    tic = time.perf_counter()
    chunk_fn = jax.jit(jax.vmap(chunk_and_evaluate))
    train_in_chunks(init, chunk_fn, trainer.num_chunks, writer, log_fn, progress)
    rows = writer.metrics
    writer.write_summary(summary(config, rows, time.perf_counter() - tic))
    return rows


def mean_se(values: list[float]) -> str:
    """``"mean ± half"``: the Student t 95% interval over seeds, n - 1 df
    (``experiments.common.stats.mean_ci_cell``; ``"mean (1 seed)"`` for one seed)."""
    return stats.mean_ci_cell(values)


def summary(config: PathwiseConfig, rows: list[dict], wall_s: float) -> str:
    """Markdown: the final evaluation and the steady env-steps/s (chunks after the first)."""
    if not rows:
        return "# brax-rp\n\nno rows\n"
    last_chunk = max(r["chunk"] for r in rows)
    final = [r for r in rows if r["chunk"] == last_chunk]
    last = final[-1]
    steady = [r["env_steps_per_s"] for r in rows if not r.get("first_in_process")]
    keys = [k for k in last if k.startswith("eval_")]
    groups = config.groups
    params = f" ({', '.join(config.env_params)})" if config.env_params else ""
    lines = [
        f"# brax-rp: {config.env}{params}, gradient={config.gradient}, "
        f"objective={config.objective}, K={config.k}, G={groups.num_groups}, "
        f"N={groups.group_size}, num_steps={config.num_steps}, seeds={len(final)}",
        "",
        "| metric (mean over seeds ± Student t 95% CI, n - 1 df) | value |",
        "|---|---|",
        *[f"| {k} | {mean_se([r[k] for r in final])} |" for k in keys],
        f"| env_steps (per seed) | {last['env_steps']} |",
        f"| steady env_steps_per_s | {np.median(steady) if steady else float('nan'):.4g} |",
        f"| wall_s (this process) | {wall_s:.1f} |",
        "",
    ]
    return "\n".join(lines)


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a ``brax-rp`` run from its ``config.json`` ``config``: ``env``,
    ``backend``, ``gradient``, ``objective``, ``truncate``, ``lr``, ``std`` (a label),
    ``push_prob``, ``push_size``. Reads the configs written before the shared config parts too
    (the curated runs in ``reports/brax``: ``estimator``, ``learning_rate``, ``push_prob`` ...)."""
    if "gradient" in config:
        params = dict(item.split("=", 1) for item in config["env_params"])
        gradient, lr = config["gradient"], config["optim"]["lr"]
    else:
        params = {key: config[key] for key in ("backend", "push_prob", "push_size")}
        gradient, lr = config["estimator"], config["learning_rate"]
    return {
        "env": config["env"],
        "backend": params.get("backend", "spring" if config["env"].startswith("brax/") else ""),
        "gradient": gradient,
        "objective": config["objective"],
        "truncate": config["truncate"],
        "lr": lr,
        "std": f"{config['action_std']:g}{' learned' if config.get('learn_std') else ''}",
        "push_prob": float(params.get("push_prob", 0)),
        "push_size": float(params.get("push_size", 0)),
    }


def runs_table(run_dirs: list[Any]) -> str:
    """Markdown table of finished ``brax-rp`` run folders, one row each: the settings that differ
    between runs and the final evaluation (mean over seeds ± Student t 95% CI, n - 1 df), steady
    env-steps/s."""
    out = []
    for d in map(pathlib.Path, run_dirs):
        if not (d / "summary.md").exists():
            continue
        config = json.loads((d / "config.json").read_text())["config"]
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        final = [r for r in rows if r["env_steps"] == max(r["env_steps"] for r in rows)]
        steady = [r["env_steps_per_s"] for r in rows if not r.get("first_in_process")]
        settings = run_settings(config)
        row = {"run": d.name}
        row |= {key: settings[key] for key in ("gradient", "objective", "truncate", "lr", "std")}
        row["push"] = f"{settings['push_prob']:g} x {settings['push_size']:g}"
        row["seeds"] = len(final)
        row["env_steps"] = final[0]["env_steps"]
        for key in ("eval_mean_length", "eval_mean", "eval_cvar_0.1", f"eval_max@{config['k']}"):
            row[key.removeprefix("eval_")] = mean_se([r[key] for r in final])
        row["env_steps_per_s"] = f"{np.median(steady) if steady else float('nan'):.3g}"
        out.append(row)
    return markdown_table(out) if out else "no finished runs\n"
