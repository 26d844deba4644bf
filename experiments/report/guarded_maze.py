"""The tables of ``reports/guarded-maze/RESULTS.md``: the Guarded Maze study (issue 25, item 4a).

Two tables are exact, from ``GuardedMaze-v0``'s default params
(``ordergrad_envs.guarded_maze.route_return_distribution``): the routes' return distributions
and the objectives of a policy that mixes them (:func:`routes_table`, :func:`mixture_table`).
The others are built from the runs of ``ordergrad-jax sweep guarded-maze`` committed in
``reports/guarded-maze/runs/<run-id>/`` (config.json, metrics.jsonl, summary.md): one row per
run with the final policies' evaluation (mean ± Student t 95% interval over the seeds, n - 1 df;
:func:`runs_table`), and the primary comparison, paired by seed (:func:`paired_table`): the
CVaR_0.1 of each tail method's final policies against the mean learner's (RLOO), Holm-corrected
over the family (:data:`FAMILY`).
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable

import numpy as np

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, find_runs, markdown_table

RUNS = "runs"
"""The folder of the committed runs, beside the document."""
ALPHA = 0.1
"""The deployed risk level: CVaR_0.1 (``cvar_alpha`` of the runs, CVaR-PG's alpha)."""
K = 10
"""K of the OrderGrad tail objective trained (``LowerTailMean:0.1`` at K = 10: the lowest of 10)."""
PRIMARY = "cvar_0.1"
"""The primary endpoint: CVaR_0.1 of the final policy's 1000 evaluation returns, per seed."""
BASELINE = "rloo"
FAMILY = ("cvar_pg", "og_ltm", "og_ltm_warm30", "og_ltm_ent10", "og_ltm_warm30_ent10")
"""The methods compared with :data:`BASELINE` on :data:`PRIMARY` (run-id suffixes after ``gm-``):
one family of tests, Holm-corrected."""
SAMPLER_PRIMARY = "og_ltm_soft50_tilt50"
"""The sampler study's pre-stated primary comparison with :data:`BASELINE` (tested alone at 5%):
the lower tail with both of Greenberg et al.'s ideas, a soft-risk schedule and a sampler that
over-samples the guard (``sweep guarded-maze-sampler``)."""
SAMPLER_FAMILY = ("rloo_tilt50", "cvar_pg_tilt50", "og_ltm_tilt50", "og_ltm_soft50")
"""The sampler study's secondary comparisons with :data:`BASELINE`: one Holm family."""
EXPLORE = tuple(
    f"{name}_ent{c}" for c in (1, 3) for name in ("rloo_tilt50", "og_ltm_soft50_tilt50")
)
"""The exploratory runs (``sweep guarded-maze-explore``, declared after the sampler study's
result): the sampler with a decaying entropy bonus; compared with :data:`BASELINE` as one Holm
family, a description, not a test of a stated hypothesis."""
ABLATE = (
    "rloo_tilt50_linear",
    "rloo_tilt50_noclip",
    "rloo_tilt50_linear_noclip",
    "rloo_tilt50_linear_noclip_g16",
)
"""``sweep guarded-maze-ablate``: the mean learner under the sampler with one difference from the
exact Adam ascent removed at a time; compared with :data:`BASELINE` as one Holm family."""
TABULAR = (
    "rloo_tilt50_tabular_noclip",
    "rloo_tilt50_tabular_noclip_g16",
)
"""``sweep guarded-maze-tabular`` (declared after the ablation): the tabular policy of the exact
ascent, no clipping, 80 or 320 episodes per update; compared with :data:`BASELINE`, Holm over
the two."""
SCALE = ("rloo_tilt50_tabular_noclip_g64", "rloo_tilt50_tabular_noclip_x4")
"""``sweep guarded-maze-scale`` (declared after the tabular runs): the same learner with 16 times
the episodes per update (1280, the same 310 updates) or 4 times the updates (1240 of 80
episodes); compared with :data:`BASELINE`, Holm over the two."""
LATER_STUDIES = {
    "guarded-maze-sampler": (SAMPLER_FAMILY, SAMPLER_PRIMARY),
    "guarded-maze-explore": (EXPLORE, None),
    "guarded-maze-ablate": (ABLATE, None),
    "guarded-maze-tabular": (TABULAR, None),
    "guarded-maze-scale": (SCALE, None),
}
"""The paired table of each study after the first, by table id: its Holm family and its primary
comparison (tested alone) where it stated one; built where the study's runs are committed."""
SAFE_CVAR = 8.0
"""A final policy with CVaR_0.1 >= this takes the safe route (CVaR 10). One that takes the short
route in a fraction f of its episodes and the safe one otherwise is charged in 0.05 f of them:
its worst 10% are those and safe returns, CVaR_0.1 = 10 - 14 f (f <= 1), below 8 for f > 1/7;
time-outs lower it further."""
SAFE_RETURN = 10.0
"""The safe route's return (10 steps at -1, +20 at the target)."""
NO_GOAL = 0.5
"""A final policy that reaches the target in fewer than this fraction of its episodes: 'no goal'."""
MIXTURE_Q = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0)


def expected_lowest(values: np.ndarray, probs: np.ndarray, k: int) -> float:
    """``E[min of k i.i.d. draws]`` of a discrete distribution (host, float64).

    ``E[min] = sum_j v_(j) [S_(j-1)^k - S_(j)^k]`` over the sorted outcomes, ``S_(j) = P(X >
    v_(j))`` (``S_(0) = 1``): the expectation of OrderGrad's ``LowerTailMean:1/k`` at K = k.

    Args:
      values: ``[m]`` outcomes; probs: ``[m]`` their probabilities (summing to 1).
      k: the number of draws, >= 1.

    Raises:
      ValueError: ``k < 1`` or shapes that differ.
    """
    values, probs = np.asarray(values, np.float64), np.asarray(probs, np.float64)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    if values.shape != probs.shape or values.ndim != 1:
        raise ValueError(f"values and probs must be [m]; got {values.shape}, {probs.shape}")
    order = np.argsort(values, kind="stable")
    v, p = values[order], probs[order]
    survival = np.clip(1.0 - np.cumsum(p), 0.0, 1.0)  # P(X > v_(j))
    before = np.concatenate([[1.0], survival[:-1]])
    return float(np.sum(v * (before**k - survival**k)))


def _routes() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import ordergrad_envs
    from ordergrad_envs.guarded_maze import route_return_distribution

    _, params = ordergrad_envs.make("GuardedMaze-v0")
    return {route: route_return_distribution(params, route) for route in ("short", "safe")}


def routes_table() -> str:
    """The two hand-written routes (default params): their outcomes, mean, CVaR_0.1 and the
    expected lowest of K = 10 returns, with the policy that never arrives (a time-out)."""
    from ordergrad_envs.guarded_maze import discrete_mean_cvar

    rows = []
    dists = {**_routes(), "never arrives (time-out, zone avoided)": (np.array([-40.0]), np.ones(1))}
    for route, (values, probs) in dists.items():
        keep = probs > 0
        mean, cvar = discrete_mean_cvar(values[keep], probs[keep], ALPHA)
        outcomes = ", ".join(
            f"{v:g} w.p. {q:g}" for v, q in zip(values[keep], probs[keep], strict=True)
        )
        rows.append(
            {
                "route": route,
                "returns": outcomes,
                "mean": f"{mean:.2f}",
                "cvar_0.1": f"{cvar:.2f}",
                f"E[lowest of {K}]": f"{expected_lowest(values[keep], probs[keep], K):.2f}",
            }
        )
    return markdown_table(rows)


def mixture_table() -> str:
    """Exact objectives of the policy that takes the safe route with probability ``q`` at the
    start and the short one otherwise: the mean, CVaR_0.1 and the expected lowest of 10 returns
    (``LowerTailMean:0.1`` at K = 10). Both tail objectives dip below both routes for small
    ``q``: the short route is a local optimum of each."""
    from ordergrad_envs.guarded_maze import discrete_mean_cvar

    routes = _routes()
    rows = []
    for q in MIXTURE_Q:
        values = np.concatenate([routes["short"][0], routes["safe"][0]])
        probs = np.concatenate([(1 - q) * routes["short"][1], q * routes["safe"][1]])
        mean, cvar = discrete_mean_cvar(values, probs, ALPHA)
        rows.append(
            {
                "P(safe)": f"{q:g}",
                "mean": f"{mean:.2f}",
                "cvar_0.1": f"{cvar:.2f}",
                f"E[lowest of {K}]": f"{expected_lowest(values, probs, K):.2f}",
            }
        )
    return markdown_table(rows)


def start_table() -> str:
    """The outcomes of an episode of the uniformly random policy (the learners' start), exact
    (``uniform_policy_outcomes``, default params): how often it reaches the target avoiding the
    guarded zone, through it, or times out; and the ratio of the two arrivals."""
    import ordergrad_envs
    from ordergrad_envs.guarded_maze import uniform_policy_outcomes

    _, params = ordergrad_envs.make("GuardedMaze-v0")
    outcomes = uniform_policy_outcomes(params)
    rows = [{"outcome": name, "probability": f"{q:.4f}"} for name, q in outcomes.items()]
    ratio = outcomes["arrives through the zone"] / outcomes["arrives avoiding the zone"]
    rows.append({"outcome": "arrivals through / avoiding the zone", "probability": f"{ratio:.1f}"})
    return markdown_table(rows)


ASCENT_STEPS = (100, 310, 1240)
"""Where the exact ascent is read: the learners make 310 updates (10^6 env steps of 80 episodes of
40 steps), the ``x4`` arm 1240."""
ASCENT = {
    "gradient ascent, step 0.1": ("sgd", 0.1, False),
    "Adam 3e-3 (the learners')": ("adam", 3e-3, False),
    "Adam 3e-3, + a bias shared by the cells": ("adam", 3e-3, True),
}
"""The ascents: optimiser, step, and whether the logits are ``z[cell] + b`` with one bias ``b
[4]`` for all cells (the learners' linear layer on the one-hot cell) rather than ``z[cell]``."""


def exact_ascent(guard_prob: float, optimiser: str, lr: float, bias: bool = False) -> np.ndarray:
    """``[max(ASCENT_STEPS), 3]``: P(arrive avoiding the zone), P(arrive through it) and the
    expected return after each update of ``optimiser`` (``"sgd"`` or ``"adam"``, step ``lr``)
    ascending the exact expected return (``tabular_outcomes``, float64) of the tabular softmax
    policy (logits ``z[cell]``, plus one shared ``b`` where ``bias``) from the uniform one (all
    zero), on the task with ``guard_prob``."""
    import jax
    import jax.numpy as jnp
    import optax

    import ordergrad_envs
    from ordergrad_envs.guarded_maze import OUTCOMES, parse_layout, tabular_outcomes

    _, params = ordergrad_envs.make("GuardedMaze-v0", guard_prob=guard_prob)
    opt = {"sgd": optax.sgd, "adam": optax.adam}[optimiser](lr)

    def outcomes(w):
        return tabular_outcomes(w["z"] + w["b"] if bias else w["z"], params)

    def update(carry, _):
        w, state = carry
        grad = jax.grad(lambda w: outcomes(w)["return"])(w)
        u, state = opt.update(jax.tree.map(jnp.negative, grad), state, w)
        w = optax.apply_updates(w, u)
        out = outcomes(w)
        return (w, state), jnp.stack([out[OUTCOMES[0]], out[OUTCOMES[1]], out["return"]])

    with jax.enable_x64(True):
        w0 = {"z": jnp.zeros((parse_layout(params.layout).free.size, 4), jnp.float64)}
        if bias:
            w0["b"] = jnp.zeros(4, jnp.float64)
        run = jax.jit(lambda w: jax.lax.scan(update, (w, opt.init(w)), None, max(ASCENT_STEPS)))
        return np.asarray(run(w0)[1], np.float64)


def ascent_table() -> str:
    """Exact ascent of the expected return by a tabular softmax policy from the uniform one, on
    the task (guard 0.05) and under the sampler (guard 0.5; there also with a bias shared by the
    cells): the probability of arriving around the zone (the safe route's way) after each of
    :data:`ASCENT_STEPS` updates, and of arriving through it and the expected return (on the
    training task) after the last."""
    rows = []
    for task, q in (("the task (0.05)", 0.05), ("the sampler (0.5)", 0.5)):
        for name, (optimiser, lr, bias) in ASCENT.items():
            if bias and q != 0.5:
                continue
            curve = exact_ascent(q, optimiser, lr, bias)
            row = {"guard probability": task, "ascent": name}
            row |= {f"P(around) at {t}": f"{curve[t - 1, 0]:.3f}" for t in ASCENT_STEPS}
            row |= {f"E[return] at {t}": f"{curve[t - 1, 2]:.2f}" for t in ASCENT_STEPS[1:]}
            rows.append(row)
    return markdown_table(rows)


def classify(row: dict) -> str:
    """The route of one seed's final policy from its evaluation row: ``"safe"`` (CVaR_0.1 >=
    :data:`SAFE_CVAR`), ``"no goal"`` (success rate < :data:`NO_GOAL`), else ``"short"`` (the
    short route, or a mixture that crosses the zone often enough to be charged in the tail)."""
    if float(row[PRIMARY]) >= SAFE_CVAR:
        return "safe"
    if float(row["success_rate"]) < NO_GOAL:
        return "no goal"
    return "short"


def _runs(folder: pathlib.Path) -> dict[str, Run]:
    """``{run-id suffix after 'gm-': run}`` of the committed runs."""
    path = folder / RUNS
    runs = find_runs(path, finished=None) if path.is_dir() else []
    return {run.name.split("-", 1)[-1]: run for run in runs}


def _share_of_safe_returns(run: Run) -> str:
    """Mean ± t 95% CI over the seeds of the share of the final policy's evaluation returns equal
    to the safe route's (10; a short route with 4 extra steps and no guard also returns 10, so
    an upper bound of the safe route's share), from the run's ``final_returns.npz``; ``-``
    where it is not committed."""
    from ordergrad_experiments.report.returns import final_returns

    (returns,) = final_returns(run).values() or [None]
    if returns is None:
        return "-"
    return stats.mean_ci_cell(np.mean(np.abs(returns - SAFE_RETURN) < 1e-4, axis=-1))


def runs_table(folder: pathlib.Path) -> str:
    """One row per committed run: method, seeds, the final policies' mean, CVaR_0.1, success
    rate, share of returns equal to the safe route's (mean ± t 95% CI over the seeds) and how
    many seeds end on each route (:func:`classify`)."""
    rows = []
    for run in _runs(folder).values():
        evals = run.rows("eval")
        routes = [classify(r) for r in evals]
        cfg = run.config
        warm = f"{cfg['warm_start_frac']:g}"
        if cfg["warm_start_frac"] and cfg.get("warm_start_schedule", "step") == "linear":
            warm += " (linear)"
        rows.append(
            {
                "run": run.name,
                "method": evals[0]["method"],
                "training task": " ".join(cfg.get("train_env_params", ())) or "the task",
                "warm start": warm,
                "entropy": (
                    f"{run.config['entropy_coef']:g} ({run.config['entropy_schedule']})"
                    if run.config["entropy_coef"]
                    else "0"
                ),
                "seeds": len(evals),
                "mean": stats.mean_ci_cell([r["mean"] for r in evals]),
                "cvar_0.1": stats.mean_ci_cell([r[PRIMARY] for r in evals]),
                "success_rate": stats.mean_ci_cell([r["success_rate"] for r in evals]),
                "returns of 10": _share_of_safe_returns(run),
                "safe / short / no goal": "/".join(
                    str(routes.count(c)) for c in ("safe", "short", "no goal")
                ),
            }
        )
    return markdown_table(rows)


def paired_table(
    folder: pathlib.Path, family: tuple[str, ...] = FAMILY, primary: str | None = None
) -> str:
    """CVaR_0.1 of each run of ``family`` (and of ``primary``, first, where given) minus RLOO's,
    paired by seed (the same initial parameters and keys): the mean difference with its t 95%
    interval (n - 1 df), the two-sided paired t test's p, Holm's adjusted p over ``family``
    (``primary`` is tested alone: its Holm cell says so), the seeds on which the method is ahead
    and the seeds whose final policy takes the safe route.

    Raises:
      ValueError: a run of the family or the baseline is not committed, or seeds differ.
    """
    runs = _runs(folder)
    names = (primary, *family) if primary else family
    missing = sorted({BASELINE, *names} - set(runs))
    if missing:
        raise ValueError(f"no committed run(s) {missing} for the paired table")
    base = {r["seed"]: float(r[PRIMARY]) for r in runs[BASELINE].rows("eval")}
    results = []
    for name in names:
        evals = runs[name].rows("eval")
        x = {r["seed"]: float(r[PRIMARY]) for r in evals}
        if sorted(x) != sorted(base):
            raise ValueError(f"{name} and {BASELINE} have different seeds")
        seeds = sorted(x)
        xs, ys = [x[s] for s in seeds], [base[s] for s in seeds]
        results.append((name, evals, xs, ys, stats.paired_test(xs, ys)))
    tested = results[1:] if primary else results
    adjusted = stats.holm([t.p_value for *_, t in tested])
    holm = ["primary, alone"] * (len(results) - len(tested))
    holm += [stats.format_p(p) for p in adjusted]
    rows = []
    for (name, evals, xs, ys, test), p_holm in zip(results, holm, strict=True):
        wins = sum(u > v for u, v in zip(xs, ys, strict=True))
        rows.append(
            {
                "A": runs[name].name,
                "B": runs[BASELINE].name,
                "pairs": len(xs),
                "mean A - B": f"{test.difference:.3g}",
                "95% CI (t, n - 1 df)": f"{test.interval.low:.3g} to {test.interval.high:.3g}",
                "paired t p": stats.format_p(test.p_value),
                "Holm p": p_holm,
                "seeds with A > B": f"{wins} of {len(xs)}",
                "A's seeds on the safe route": (
                    f"{sum(classify(r) == 'safe' for r in evals)} of {len(evals)}"
                ),
            }
        )
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """The document's tables by id: the exact ``guarded-maze-routes``, ``guarded-maze-mixture``,
    ``guarded-maze-start`` and ``guarded-maze-ascent``; where runs are committed,
    ``guarded-maze-runs`` and ``guarded-maze-paired``; ``guarded-maze-sampler``,
    ``guarded-maze-explore``, ``guarded-maze-ablate``, ``guarded-maze-tabular`` and
    ``guarded-maze-scale`` where those studies' runs are."""
    out: dict[str, Callable[[], str]] = {
        "guarded-maze-routes": routes_table,
        "guarded-maze-mixture": mixture_table,
        "guarded-maze-start": start_table,
        "guarded-maze-ascent": ascent_table,
    }
    runs = _runs(folder)
    if runs:
        out["guarded-maze-runs"] = lambda: runs_table(folder)
        out["guarded-maze-paired"] = lambda: paired_table(folder)
    for table, (family, primary) in LATER_STUDIES.items():
        if (primary or family[0]) in runs:
            out[table] = functools.partial(paired_table, folder, family, primary)
    return out
