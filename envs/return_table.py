"""The return distributions of the risk-sensitive tasks under hand-written policies (markdown).

``python -m envs.return_table [--episodes 10000] [--seed 0]`` samples ``--episodes`` i.i.d.
episodes (``group_rollout`` with one group, independent starts) per policy and prints a markdown
table per task: mean (+- standard error), CVaR_0.1 (``og.metrics.cvar``, +- bootstrap standard
error), median, the fraction of episodes that ended by termination, and the mean length. The
tables in ``envs/README.md`` are its output.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import envs
import ordergrad_jax as og
from envs.disturbed import hold_policy
from envs.risky_grid import route_policy
from envs.rollout import group_rollout


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


TASKS = ("RiskyGrid-v0", "DisturbedCartPole-v0")


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


def task_table(name: str, episodes: int, seed: int) -> str:
    """The markdown table of task ``name`` (default params)."""
    env, params = envs.make(name)
    T = int(params.max_steps_in_episode)
    rng = np.random.default_rng(seed)
    lines = [
        f"**{name}** ({episodes} episodes per policy, default params)",
        "",
        "| policy | mean | CVaR_0.1 | median | terminated | mean length |",
        "|---|---|---|---|---|---|",
    ]
    for i, (label, policy, p) in enumerate(policies(name, env, params)):
        key = jax.random.fold_in(jax.random.key(seed), i)
        ep = group_rollout(env, p, policy, key, 1, episodes, T, share_start=False)
        r = np.asarray(ep.returns[0], np.float64)
        s = summarize(r, rng)
        lines.append(
            f"| {label} | {s['mean']:.2f} +- {s['mean_se']:.2f} | {s['cvar']:.2f} +- "
            f"{s['cvar_se']:.2f} | {s['median']:.2f} | {np.mean(ep.terminated):.3f} | "
            f"{np.mean(ep.length):.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", choices=TASKS, action="append", help="default: all")
    args = parser.parse_args(argv)
    if args.episodes < 10:
        parser.error(f"--episodes must be >= 10; got {args.episodes}")
    for name in args.task or TASKS:
        print(task_table(name, args.episodes, args.seed))
        print()


if __name__ == "__main__":
    main()
