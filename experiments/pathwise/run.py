"""``ordergrad-jax run brax-rp``: seeds vmapped in one jit, chunked and checkpointed training
(``train_in_chunks``: a killed run resumes with the same ``--run-id``), an evaluation of
``eval_groups * group_size`` episodes after every chunk, a summary table; optionally the final
policies' deterministic evaluation (``final.json``), their actions on the env's grid
(``policy_grid.json``) and the RP/LR gradient SNR (``snr.json``): :mod:`.final`."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og
from ordergrad_experiments.common import stats
from ordergrad_experiments.common.checkpoint import train_in_chunks
from ordergrad_experiments.common.io import write_json_atomic, write_text_atomic
from ordergrad_experiments.common.runs import Run, RunWriter
from ordergrad_experiments.pathwise import final as finals
from ordergrad_experiments.pathwise.config import PathwiseConfig
from ordergrad_experiments.pathwise.train import evaluate, make_train


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
    k, objective = config.estimator.k, config.estimator.objective
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
                **evaluation_row(metrics["eval_returns"][i], k, objective),
                "env_steps_per_s": work / seconds,
            }
            for i, seed in enumerate(seeds)
        ]

    chunk_fn = jax.jit(jax.vmap(chunk_and_evaluate))
    state = train_in_chunks(init, chunk_fn, trainer.num_chunks, writer, log_fn, progress)
    final = None
    outputs = {}
    if config.final_episodes:
        final = outputs[FINAL] = finals.final_evaluation(config, trainer, state)
        outputs[GRID] = finals.policy_grid(config, trainer, state)
    if config.snr_repeats:
        outputs[SNR] = finals.gradient_snr(config, trainer, init, state)
    for name, data in outputs.items():
        if data is not None and writer.primary:
            write_json_atomic(writer.path / name, data)
    rows = writer.metrics
    writer.write_summary(summary(writer.config, rows, final))
    return rows


FINAL, GRID, SNR = "final.json", "policy_grid.json", "snr.json"
"""The files of :mod:`.final`'s measurements in the run folder."""


def mean_se(values: list[float]) -> str:
    """``"mean ± half"``: the Student t 95% interval over seeds, n - 1 df
    (``ordergrad_experiments.common.stats.mean_ci_cell``; ``"mean (1 seed)"`` for one seed)."""
    return stats.mean_ci_cell(values)


def summary(config: dict[str, Any], rows: list[dict], deterministic: dict | None = None) -> str:
    """Markdown: the final evaluation (mean over seeds ± Student t 95% CI, n - 1 df), the env
    steps per seed, the steady env-steps/s (median over the chunks that were not the first of
    their process) and the wall seconds of all chunks (compilation and evaluations included;
    every session of a resumed run).

    A function of the run folder's data alone, so :func:`rewrite_summary` rebuilds it offline.

    Args:
      config: ``config.json``'s ``config`` (any version: :func:`run_settings`).
      rows: the ``metrics.jsonl`` rows, one per chunk and seed (with ``chunk`` and ``wall_s``).
      deterministic: ``final.json`` (the deterministic evaluation), if the run made one: its
        statistics too, and the reference policy's.
    """
    if not rows:
        return "# brax-rp\n\nno rows\n"
    settings, shape = run_settings(config), run_shape(config)
    last_chunk = max(r["chunk"] for r in rows)
    final = [r for r in rows if r["chunk"] == last_chunk]
    last = final[-1]
    steady = [r["env_steps_per_s"] for r in rows if not r.get("first_in_process")]
    chunk_seconds = {r["chunk"]: r["wall_s"] for r in rows}
    keys = [k for k in last if k.startswith("eval_")]
    params = f" ({', '.join(shape['env_params'])})" if shape["env_params"] else ""
    lines = [
        f"# brax-rp: {settings['env']}{params}, gradient={settings['gradient']}, "
        f"objective={settings['objective']}, K={settings['k']}, G={shape['num_groups']}, "
        f"N={shape['group_size']}, num_steps={shape['num_steps']}, "
        f"truncate={settings['truncate']}, lr={settings['lr']:g}, std={settings['std']}, "
        f"seeds={len(final)}",
        "",
        "| metric (mean over seeds ± Student t 95% CI, n - 1 df) | value |",
        "|---|---|",
        *[f"| {k} | {mean_se([r[k] for r in final])} |" for k in keys],
        f"| env_steps (per seed) | {last['env_steps']} |",
        f"| steady env_steps_per_s | {np.median(steady) if steady else float('nan'):.4g} |",
        f"| wall_s (all chunks) | {sum(chunk_seconds.values()):.1f} |",
        "",
    ]
    if deterministic:
        seeds, ref = deterministic["seeds"], deterministic.get("reference") or {}
        names = [k for k, v in seeds[0].items() if k != "seed" and isinstance(v, float)]
        lines += [
            f"Deterministic (mean-action) policy, {deterministic['episodes']} common episodes"
            + (" (reference: the env's reference policy, same episodes)" if ref else ""),
            "",
            "| statistic (mean over seeds ± Student t 95% CI) | policy | reference |",
            "|---|---|---|",
            *[
                f"| {k} | {mean_se([r[k] for r in seeds])} | "
                f"{format(ref[k], '.4g') if isinstance(ref.get(k), float) else ''} |"
                for k in names
            ],
            "",
        ]
    return "\n".join(lines)


def rewrite_summary(run_dir: str | pathlib.Path) -> pathlib.Path:
    """Rewrites the ``summary.md`` of a finished ``brax-rp`` run folder from its ``config.json``
    and ``metrics.jsonl`` (:func:`summary`), e.g. after the summary's format changed.

    Raises:
      FileNotFoundError: the folder has no ``summary.md``: an unfinished run, which a summary
        would mark as finished.
    """
    run = Run(run_dir)
    path = run.path / "summary.md"
    if not run.finished:
        raise FileNotFoundError(f"{path}: not a finished run (no summary.md); nothing rewritten")
    final = run.json(FINAL) if (run.path / FINAL).exists() else None
    return write_text_atomic(path, summary(run.config, run.metrics, final))


def run_shape(config: dict[str, Any]) -> dict[str, Any]:
    """The env params and batch shape of a ``brax-rp`` run from its ``config.json`` ``config``:
    ``env_params`` (``name=value`` strings), ``num_groups``, ``group_size``, ``num_steps``. Reads
    the configs written before the shared config parts too (``groups`` an int, ``horizon``, the
    env params as fields)."""
    if isinstance(config["groups"], dict):
        return {
            "env_params": tuple(config["env_params"]),
            "num_groups": config["groups"]["num_groups"],
            "group_size": config["groups"]["group_size"],
            "num_steps": config["num_steps"],
        }
    env_fields = ("backend", "reward", "noise_scale", "push_prob", "push_size")
    return {
        "env_params": tuple(f"{key}={config[key]}" for key in env_fields if key in config),
        "num_groups": config["groups"],
        "group_size": config["group_size"],
        "num_steps": config["horizon"],
    }


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a ``brax-rp`` run from its ``config.json`` ``config``: ``env``,
    ``backend``, ``gradient``, ``objective``, ``k``, ``truncate``, ``lr``, ``std`` (a label),
    ``push_prob``, ``push_size``. Reads the configs of every version: ``estimator.objective``
    and ``estimator.k`` (an ``EstimatorConfig``), top-level ``objective`` and ``k`` before it, and
    those written before the shared config parts (the curated runs in ``reports/brax``:
    ``estimator`` the gradient, ``learning_rate``, ``push_prob`` ...)."""
    estimator = config.get("estimator")
    if isinstance(estimator, dict):
        objective, k = estimator["objective"], estimator["k"]
    else:
        objective, k = config["objective"], config["k"]
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
        "objective": objective,
        "k": k,
        "truncate": config["truncate"],
        "lr": lr,
        "std": f"{config['action_std']:g}{' learned' if config.get('learn_std') else ''}",
        "push_prob": float(params.get("push_prob", 0)),
        "push_size": float(params.get("push_size", 0)),
    }
