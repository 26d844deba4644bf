"""Runs the control benchmark: seeds vmapped in one jit, chunked and checkpointed training
(``train_in_chunks``: a killed run resumes with the same ``--run-id``), then >= 1000 evaluation
episodes per final policy, figures and a summary table."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.checkpoint import train_in_chunks
from ordergrad_experiments.common.io import write_npz_atomic
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.common.trainer import Trainer
from ordergrad_experiments.control import evaluate, plots
from ordergrad_experiments.control.config import ControlConfig

Rows = list[dict]

FINAL_RETURNS = "final_returns.npz"
"""The run folder's every final evaluation return: ``numpy.load`` gives ``returns [seeds,
episodes]`` (float32) and ``method`` (its label)."""
NOT_STATISTICS = ("kind", "method", "seed", "episodes", "trained_objective")
"""The keys of an ``eval`` row that are not per-seed statistics."""


def make_train(config: ControlConfig) -> Trainer:
    """The trainer of ``config.algo``: ``trainer.init(key)``, ``trainer.chunk(state)`` and the
    whole run ``trainer.train(key) -> (state, metrics)`` (jit it; ``vmap`` it over seeds)."""
    if config.algo == "group_pg":
        from ordergrad_experiments.control.group_pg import make_group_pg

        return make_group_pg(config)
    if config.algo == "ppo":
        from ordergrad_experiments.control.ppo import make_ppo

        return make_ppo(config)
    raise ValueError(f"algo must be 'group_pg' or 'ppo'; got {config.algo!r}")


def label(config: ControlConfig) -> str:
    """A short name of the method: ``ppo``, ``ordergrad[LowerTailMean:0.25,K=4]``, ``rloo``..."""
    if config.algo == "ppo":
        return "ppo"
    estimator = config.estimator.resolve(config.groups.group_size)
    extra = []
    if config.warm_start_frac > 0:
        frac, warm = config.warm_start_frac, config.warm_start_objective
        if config.warm_start_schedule == "linear":
            extra.append(f"from {warm} linearly over {frac:g}")
        else:
            extra.append(f"after {warm} for {frac:g}")
    if config.train_env_params:
        extra.append("trained on " + " ".join(config.train_env_params))
    if config.train_reward != "return":
        extra.append(f"on {config.train_reward}")
    if config.entropy_coef > 0:
        schedule = " linear" if config.entropy_schedule == "linear" else ""
        extra.append(f"entropy {config.entropy_coef:g}{schedule}")
    suffix = "+clip" if config.update == "clip" else ""
    return estimator.label(*extra) + suffix


def _check(config: ControlConfig) -> None:
    if config.num_seeds < 1:
        raise ValueError(f"num_seeds must be >= 1; got {config.num_seeds}")
    if config.eval_episodes < 1:
        raise ValueError(f"eval_episodes must be >= 1; got {config.eval_episodes}")
    if not 1 <= config.eval_k <= config.eval_episodes:
        raise ValueError(f"eval_k must be in [1, eval_episodes]; got {config.eval_k}")


def run(config: ControlConfig, writer: RunWriter, progress: Callable | None = None) -> Rows:
    """Trains ``num_seeds`` seeds, evaluates the final policies; writes metrics, figures, summary.

    ``metrics.jsonl`` rows: ``kind="train"`` (one per seed and chunk: ``env_steps``, the chunk's
    mean training return and diagnostics, ``env_steps_per_s`` of the chunk over all seeds,
    compile excluded), ``kind="eval"`` (one per seed: the deployment statistics of
    ``eval_episodes`` episodes, and ``trained``, the statistic the update ascends, named by
    ``trained_objective``: :func:`evaluate.trained_objective`), ``kind="speed"`` (the steady
    rate). Every evaluation return goes to :data:`FINAL_RETURNS`.
    """
    _check(config)
    writer.write_config(config, jax=jax.__version__, device=str(jax.devices()[0]))
    trainer = make_train(config)
    method = label(config)
    key_train, key_eval = jax.random.split(jax.random.key(config.seed))
    init_state = jax.jit(jax.vmap(trainer.init))(jax.random.split(key_train, config.num_seeds))
    # Compile ahead so that every chunk's wall time is steady-state stepping.
    chunk_fn = jax.jit(jax.vmap(trainer.chunk)).lower(init_state).compile()
    steps_per_chunk = trainer.iterations_per_chunk * trainer.steps_per_iteration

    def log_fn(chunk: int, state: Any, metrics: dict, seconds: float) -> Rows:
        rate = steps_per_chunk * config.num_seeds / seconds
        means = {k: np.nanmean(np.asarray(v, np.float64), axis=1) for k, v in metrics.items()}
        last = np.asarray(metrics["return_mean"], np.float64)[:, -1]
        return [
            {
                "kind": "train",
                "method": method,
                "seed": s,
                "iteration": (chunk + 1) * trainer.iterations_per_chunk,
                "env_steps": (chunk + 1) * steps_per_chunk,
                **{name: float(v[s]) for name, v in means.items()},
                "return_last": float(last[s]),
                "env_steps_per_s": rate,
            }
            for s in range(config.num_seeds)
        ]

    state = train_in_chunks(
        init_state, chunk_fn, trainer.num_chunks, writer, log_fn, progress=progress
    )
    tic = time.perf_counter()
    returns = np.asarray(
        jax.jit(
            jax.vmap(
                lambda st, key: evaluate.episode_returns(
                    trainer.policy(st),
                    trainer.env,
                    trainer.env_params,
                    key,
                    config.eval_episodes,
                    config.num_steps,
                )
            )
        )(state, jax.random.split(key_eval, config.num_seeds))
    )
    eval_seconds = time.perf_counter() - tic
    target = evaluate.trained_objective(config, returns)
    rows = [
        {
            "kind": "eval",
            "method": method,
            "seed": s,
            "episodes": config.eval_episodes,
            **evaluate.return_stats(
                returns[s],
                k=config.eval_k,
                cvar_alpha=config.cvar_alpha,
                success_return=config.success_return,
            ),
            **({} if target is None else {"trained_objective": target[0], "trained": target[1][s]}),
        }
        for s in range(config.num_seeds)
    ]
    steady = [r["env_steps_per_s"] for r in writer.metrics if r.get("kind") == "train"]
    rows.append(
        {
            "kind": "speed",
            "method": method,
            "env_steps_per_s": float(np.median(steady)) if steady else float("nan"),
            "eval_seconds": eval_seconds,
        }
    )
    writer.log(rows)
    if writer.primary:
        write_npz_atomic(
            writer.path / FINAL_RETURNS,
            method=np.asarray(method),
            returns=returns.astype(np.float32),
        )
    for stem, fig in plots.all_figures(writer.metrics, {method: returns}).items():
        writer.save_figure(fig, stem)
        plt.close(fig)
    writer.write_summary(summary(config, writer.metrics))
    return writer.metrics


def eval_table(rows: Rows) -> Rows:
    """One row per method: every evaluation statistic as mean ± the half-width of its Student t
    95% interval over seeds (``stats.mean_ci_cell``, n - 1 df; "(1 seed)" for one seed)."""
    evals = [r for r in rows if r.get("kind") == "eval"]
    skip = set(NOT_STATISTICS)
    out = []
    for method in dict.fromkeys(r["method"] for r in evals):
        mine = [r for r in evals if r["method"] == method]
        row: dict[str, Any] = {"method": method, "seeds": len(mine)}
        for stat in [c for c in mine[0] if c not in skip]:
            row[stat] = stats.mean_ci_cell([r[stat] for r in mine])
        out.append(row)
    return out


def summary(config: ControlConfig, rows: Rows) -> str:
    """The markdown summary: the final evaluation table and the steady training speed."""
    speed = [r for r in rows if r.get("kind") == "speed"]
    table = eval_table(rows)
    train = [r for r in rows if r.get("kind") == "train"]
    steps = max((r["env_steps"] for r in train), default=0)
    lines = [
        f"# Control: {config.env}, {table[0]['method'] if table else config.algo}",
        "",
        f"Config: `{dataclasses.asdict(config)}`",
        "",
        f"## Final policies: {config.eval_episodes} evaluation episodes per seed "
        f"(mean ± 95% CI over {config.num_seeds} seeds; {steps} env steps per seed)",
        "",
        markdown_table(table),
        "## Speed (training, all seeds, compile excluded)",
        "",
        markdown_table(speed, ["method", "env_steps_per_s", "eval_seconds"], floatfmt=".4g"),
    ]
    return "\n".join(lines)
