"""The return distributions of the risk-sensitive control tasks under hand-written policies.

``ordergrad-jax run return-table [--quick] [--seed 0] [--set episodes=10000] [--set tasks=...]
[--out results] [--run-id ID]`` samples ``episodes`` i.i.d. episodes (``group_rollout`` with one
group, independent starts) per policy and prints a markdown table per task: mean (+- standard
error), CVaR_0.1 (``og.metrics.cvar``, +- bootstrap standard error), median, the fraction of
episodes that ended by termination, and the mean length. Its run folder
``OUT/return-table/<run-id>/`` holds ``config.json`` (the settings and the provenance: commit,
package versions, UTC start and end, load average), ``metrics.jsonl`` (one row per task and
policy) and ``summary.md`` (the tables). The tables of ``envs/README.md`` are built from the run
committed in ``reports/envs/`` by ``ordergrad-jax report envs``, with :func:`task_table`.
(A study of the envs, so it lives here and ``envs/`` imports nothing from ``experiments/``.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_envs
import ordergrad_jax as og
from ordergrad_envs.disturbed import hold_policy
from ordergrad_envs.risky_grid import route_policy
from ordergrad_envs.rollout import group_rollout
from ordergrad_experiments.common.runs import RunWriter

TASKS = ("RiskyGrid-v0", "DisturbedCartPole-v0")


@dataclasses.dataclass(frozen=True)
class ReturnTableConfig:
    """Settings of a return-table run (default params of every task)."""

    episodes: int = 10000
    """I.i.d. episodes per policy."""
    seed: int = 0
    tasks: tuple[str, ...] = TASKS
    bootstrap: int = 200
    """Bootstrap resamples for the standard error of CVaR_0.1."""


QUICK = ReturnTableConfig(episodes=200, bootstrap=20)
"""A smoke size (seconds on a CPU)."""


def _uniform_discrete(num_actions: int) -> Callable:
    def policy(key, obs):
        del obs
        return jax.random.randint(key, (), 0, num_actions), jnp.asarray(-np.log(num_actions))

    return policy


def policies(name: str, env, params) -> list[tuple[str, Callable, object]]:
    """``[(label, policy, params)]``: the hand-written policies of task ``name``."""
    if name == "RiskyGrid-v0":
        H = params.height
        return [
            ("ledge (row 1)", route_policy(params, 1), params),
            ("middle (row 2)", route_policy(params, 2), params),
            (f"sheltered (row {H - 1})", route_policy(params, H - 1), params),
            ("uniform random", _uniform_discrete(env.num_actions), params),
        ]
    if name == "DisturbedCartPole-v0":
        calm = params.replace(push_prob=0.0)
        return [
            ("hold x = 0", hold_policy(0.0), params),
            ("hold x = 0.8", hold_policy(0.8), params),
            ("hold x = 1.4", hold_policy(1.4), params),
            ("hold x = 2.0", hold_policy(2.0), params),
            ("hold x = 0.8, no pushes", hold_policy(0.8), calm),
            ("hold x = 2.0, no pushes", hold_policy(2.0), calm),
        ]
    raise ValueError(f"no hand-written policies for {name!r}")


def summarize(returns: np.ndarray, rng: np.random.Generator, boot: int = 200) -> dict:
    """Mean, CVaR_0.1, median of ``returns`` ``[n]`` with standard errors."""
    n = returns.size
    cvar = float(og.metrics.cvar(jnp.asarray(returns), 0.1))
    idx = rng.integers(0, n, size=(boot, n))
    boot_cvar = np.asarray(og.metrics.cvar(jnp.asarray(returns[idx]), 0.1))
    return {
        "mean": float(returns.mean()),
        "mean_se": float(returns.std(ddof=1) / np.sqrt(n)),
        "cvar": cvar,
        "cvar_se": float(boot_cvar.std(ddof=1)),
        "median": float(np.median(returns)),
    }


def task_rows(name: str, episodes: int, seed: int, boot: int = 200) -> list[dict]:
    """One row per hand-written policy of task ``name`` (default params): ``task``, ``policy``,
    ``episodes``, :func:`summarize`'s statistics, ``terminated`` (fraction) and ``mean_length``."""
    env, params = ordergrad_envs.make(name)
    T = int(params.max_steps_in_episode)
    rng = np.random.default_rng(seed)
    rows = []
    for i, (label, policy, p) in enumerate(policies(name, env, params)):
        key = jax.random.fold_in(jax.random.key(seed), i)
        ep = group_rollout(env, p, policy, key, 1, episodes, T, share_start=False)
        r = np.asarray(ep.returns[0], np.float64)
        rows.append(
            {
                "task": name,
                "policy": label,
                "episodes": episodes,
                **summarize(r, rng, boot),
                "terminated": float(np.mean(ep.terminated)),
                "mean_length": float(np.mean(ep.length)),
            }
        )
    return rows


def task_table(rows: list[dict]) -> str:
    """The markdown table of one task's rows (:func:`task_rows`)."""
    lines = [
        "| policy | mean | CVaR_0.1 | median | terminated | mean length |",
        "|---|---|---|---|---|---|",
    ]
    for s in rows:
        lines.append(
            f"| {s['policy']} | {s['mean']:.2f} +- {s['mean_se']:.2f} | {s['cvar']:.2f} +- "
            f"{s['cvar_se']:.2f} | {s['median']:.2f} | {s['terminated']:.3f} | "
            f"{s['mean_length']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def check(config: ReturnTableConfig) -> None:
    """``ValueError`` naming what is wrong: too few episodes, too few resamples, a task without
    hand-written policies."""
    if config.episodes < 10:
        raise ValueError(f"episodes must be >= 10; got {config.episodes}")
    if config.bootstrap < 2:
        raise ValueError(f"bootstrap must be >= 2; got {config.bootstrap}")
    unknown = [name for name in config.tasks if name not in TASKS]
    if unknown or not config.tasks:
        raise ValueError(f"tasks must be among {list(TASKS)}; got {list(config.tasks)}")


def run(
    config: ReturnTableConfig, writer: RunWriter, progress: Callable | None = None
) -> list[dict]:
    """Every task's rows, logged through ``writer``:
    config with provenance first, the rows as each task finishes, the tables last."""
    check(config)
    writer.write_config(config)
    rows, summary = [], []
    for name in (progress or iter)(list(config.tasks)):
        task = task_rows(name, config.episodes, config.seed, config.bootstrap)
        writer.log(task)
        rows += task
        summary.append(f"**{name}** ({config.episodes} episodes per policy, default params)")
        summary.append(task_table(task))
        print(summary[-2] + "\n\n" + summary[-1])
    writer.write_summary("\n".join(summary))
    return rows
