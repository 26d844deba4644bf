"""The tables of ``reports/hedging/RESULTS.md``, built from the data committed beside it.

``runs/<run-id>/`` holds the runs of ``ordergrad-jax sweep hedging --keep reports/hedging/runs``
(``experiments/sweeps/hedging.py``): runs of ``ordergrad-jax run brax-rp`` on ``DeepHedging-v0``
with ``config.json``, ``metrics.jsonl`` (the stochastic policy's evaluation after each chunk, one
row per seed), ``final.json`` (the deterministic policies and the delta hedge on common paths:
:mod:`ordergrad_experiments.pathwise.final`), ``policy_grid.json`` (their hedge on a (t, S) grid)
and, where measured, ``snr.json`` (the RP and LR gradient SNR). Every interval over seeds is the
Student t 95% interval with n - 1 df (:mod:`ordergrad_experiments.common.stats`); the Monte Carlo
standard errors of the prices are the influence-function ones of ``final.json``.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import Run, find_runs, markdown_table

RUNS = "runs"
PRICE = "indifference_price_0.1"
COST_FREE = ("rp", "rp-std0.05", "lr", "lr-lr0.01", "rp-position")


def runs(folder: pathlib.Path) -> dict[str, Run]:
    """The finished runs of ``folder / runs`` by id, in the sweep's order (then by name)."""
    from ordergrad_experiments.sweeps import get

    where = folder / RUNS
    found = {run.name: run for run in find_runs(where)} if where.is_dir() else {}
    order = [spec.id for spec in get("hedging").runs]
    return dict(sorted(found.items(), key=lambda kv: (kv[0] not in order, _index(order, kv[0]))))


def _index(order: list[str], name: str) -> Any:
    return order.index(name) if name in order else name


def _label(name: str) -> str:
    from ordergrad_experiments.sweeps import get

    return get("hedging").labels.get(name, name)


def _cell(values: list[float], fmt: str = ".3f") -> str:
    return stats.mean_ci_cell(values, fmt, ".2g")


def _env_params(run: Run) -> dict[str, float]:
    import ordergrad_envs

    return ordergrad_envs.parse_params(run.config["env_params"])


def black_scholes_anchor() -> float:
    """The task's call price by the Black-Scholes formula (``ordergrad_envs.hedging``)."""
    from ordergrad_envs.hedging import EnvParams, black_scholes_price

    return float(black_scholes_price(EnvParams()))


def anchors_table(folder: pathlib.Path) -> str:
    """The anchors: the Black-Scholes price, and the delta hedge at 30 dates (deterministic, on
    the common evaluation paths of each cost setting): mean P&L, its std, the ``CVaR_0.1``
    indifference price, each with its Monte Carlo standard error."""
    rows, seen = [], set()
    bs = black_scholes_anchor()
    rows.append(
        {
            "anchor": "Black-Scholes price (closed form; continuous hedging)",
            "cost": "0",
            "paths": "-",
            "mean P&L": f"{-bs:.4f}",
            "std P&L": "0",
            "CVaR_0.1 price": f"{bs:.4f}",
        }
    )
    for name, run in runs(folder).items():
        final = run.json("final.json")
        ref, cost = final["reference"], _env_params(run).get("cost", 0.0)
        key = (cost, final["episodes"])
        if ref is None or key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "anchor": f"delta hedge, 30 dates (paths of run {name})",
                "cost": f"{cost:g}",
                "paths": str(final["episodes"]),
                "mean P&L": f"{ref['mean']:.4f} ± {ref['mean_se']:.4f} (SE)",
                "std P&L": f"{ref['std']:.4f}",
                "CVaR_0.1 price": f"{ref[PRICE]:.4f} ± {ref['cvar_0.1_se']:.4f} (SE)",
            }
        )
    return markdown_table(rows)


def results_table(folder: pathlib.Path) -> str:
    """One row per run: the deterministic final policies (mean over seeds ± Student t 95% CI):
    the ``CVaR_0.1`` price, its paired difference from the delta hedge on the same paths (and the
    mean over seeds of that difference's Monte Carlo SE), the mean and std of the P&L, the
    distance from the delta along the paths (RMS, mean absolute), the std of the P&L difference
    from the delta hedge, turnover and the no-trade fraction (|trade| < 0.01 shares)."""
    rows = []
    for name, run in runs(folder).items():
        seeds = run.json("final.json")["seeds"]
        col = lambda key, seeds=seeds: [s[key] for s in seeds]  # noqa: E731
        rows.append(
            {
                "run": name,
                "method": _label(name),
                "cost": f"{_env_params(run).get('cost', 0.0):g}",
                "seeds": len(seeds),
                "price": _cell(col(PRICE)),
                "price - delta's": _cell([-d for d in col("cvar_0.1_minus_reference")]),
                "its MC SE": f"{np.mean(col('cvar_0.1_minus_reference_se')):.3f}",
                "mean P&L": _cell(col("mean")),
                "std P&L": _cell(col("std")),
                "RMS from delta": _cell(col("delta_rms")),
                "mean abs from delta": _cell(col("delta_mean_abs")),
                "std of P&L - delta's": _cell(col("std_of_difference_from_reference")),
                "turnover": _cell(col("turnover"), ".2f"),
                "no-trade fraction": _cell(col("no_trade_fraction"), ".2f"),
            }
        )
    return markdown_table(rows)


def reference_row_table(folder: pathlib.Path) -> str:
    """The delta hedge's own hedge statistics on each run's evaluation paths (the same columns as
    :func:`results_table` where they apply): turnover and no-trade fraction."""
    rows = []
    for name, run in runs(folder).items():
        ref = run.json("final.json")["reference"]
        rows.append(
            {
                "paths of run": name,
                "cost": f"{_env_params(run).get('cost', 0.0):g}",
                "price": f"{ref[PRICE]:.3f}",
                "turnover": f"{ref['turnover']:.2f}",
                "no-trade fraction": f"{ref['no_trade_fraction']:.2f}",
            }
        )
    return markdown_table(rows)


def curves_table(folder: pathlib.Path) -> str:
    """Learning curves: after each chunk, the stochastic policy's ``CVaR_0.1`` price
    (``-eval_cvar_0.1``, exploration noise included, ``eval_episodes`` episodes per seed), mean
    over seeds; columns in iterations."""
    rows, iterations = [], set()
    for name, run in runs(folder).items():
        row: dict[str, Any] = {"run": name}
        for it in sorted({r["iteration"] for r in run.metrics}):
            at = [-r["eval_cvar_0.1"] for r in run.metrics if r["iteration"] == it]
            row[str(it)] = f"{np.mean(at):.2f}"
            iterations.add(it)
        rows.append(row)
    return markdown_table(rows, ["run", *map(str, sorted(iterations))])


def snr_table(folder: pathlib.Path) -> str:
    """The RP and LR gradient estimates of the same objective from the same batch size at the
    same parameters (each run's initial and final policies, per seed): the debiased SNR
    (``||mean||^2 / tr Var`` less its noise, so it can fall below 0; mean over seeds ± Student t
    95% CI), ``tr Var`` of each (geometric mean over seeds: they span decades) and their ratio
    LR / RP (geometric mean of the per-seed ratios)."""
    rows = []
    for name, run in runs(folder).items():
        if not (run.path / "snr.json").exists():
            continue
        data = run.json("snr.json")
        for point in ("initial", "final"):
            at = {
                g: sorted(
                    (r for r in data if r["point"] == point and r["gradient"] == g),
                    key=lambda r: r["seed"],
                )
                for g in ("rp", "lr")
            }
            if not at["rp"] or not at["lr"]:
                continue
            var = {g: np.array([r["total_variance"] for r in at[g]]) for g in at}
            rows.append(
                {
                    "policy": f"{name}, {point}",
                    "action std": f"{run.config['action_std']:g}",
                    "seeds": len(at["rp"]),
                    "estimates": at["rp"][0]["repeats"],
                    "episodes each": at["rp"][0]["episodes_per_estimate"],
                    "SNR RP": _cell([r["snr"] for r in at["rp"]], ".3g"),
                    "SNR LR": _cell([r["snr"] for r in at["lr"]], ".2g"),
                    "tr Var RP": f"{np.exp(np.log(var['rp']).mean()):.3g}",
                    "tr Var LR": f"{np.exp(np.log(var['lr']).mean()):.3g}",
                    "tr Var LR / RP": f"{np.exp(np.log(var['lr'] / var['rp']).mean()):.3g}",
                }
            )
    return markdown_table(rows)


def _grid(run: Run, name: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    grid = run.json("policy_grid.json")["grids"][name]
    axes = {k: np.asarray(v) for k, v in grid["axes"].items()}
    return axes, np.asarray(grid["action"]), np.asarray(grid["reference_action"])


def _band_grids(
    folder: pathlib.Path,
) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    """The ``band`` grids (:func:`_grid`) of the committed runs that see their position."""
    found = runs(folder)
    names = [name for name in ("rp-position", "rp-cost0.005") if name in found]
    return {name: _grid(found[name], "band") for name in names}


def _step(time_fraction: float, n: int = 30) -> int:
    return round((1.0 - time_fraction) * n)


def surface_table(folder: pathlib.Path, name: str = "rp") -> str:
    """The learned hedge minus the Black-Scholes delta on the (t, S) grid (mean over seeds; the
    grid of ``envs/hedging.py``'s ``hedge_grid``), the delta itself in brackets; rows: the date
    k; columns: log(S / K) in units of sigma sqrt(T) (every second grid point)."""
    runs_ = runs(folder)
    if name not in runs_:
        return "(no run)\n"
    axes, action, ref = _grid(runs_[name], "surface")
    diff = action.mean(0) - ref
    z = np.asarray(axes["log_moneyness"]) / (0.2 * math.sqrt(30 / 365))
    cols = list(range(0, len(z), 2))
    rows = []
    for i, tau in enumerate(axes["time_fraction"]):
        row = {"date k": str(_step(tau))}
        for j in cols:
            row[f"{z[j]:+.1f}"] = f"{diff[i, j]:+.3f} ({ref[i, j]:.2f})"
        rows.append(row)
    return markdown_table(rows)


def by_step_table(folder: pathlib.Path) -> str:
    """The RMS distance from the delta along the paths at each date (mean over seeds), at every
    fifth date and the last, for the cost-free runs."""
    rows = []
    for name, run in runs(folder).items():
        if name not in COST_FREE:
            continue
        per = np.asarray([s["delta_rms_by_step"] for s in run.json("final.json")["seeds"]])
        n = per.shape[1]
        steps = [*range(0, n, 5), n - 1]
        rows.append({"run": name, **{f"k={k}": f"{per[:, k].mean():.3f}" for k in steps}})
    return markdown_table(rows)


def band_table(folder: pathlib.Path) -> str:
    """At the money, the trade ``action - position`` as a function of the position held (mean
    over seeds), for the runs that see their position: a no-trade band is where it is ~0 over an
    interval of positions around the delta (in brackets: the delta there)."""
    rows = []
    for name, (axes, action, ref) in _band_grids(folder).items():
        trade = action.mean(0) - axes["position"][None, :]
        for i, tau in enumerate(axes["time_fraction"]):
            row = {"run": name, "date k": f"{_step(tau)} (delta {ref[i, 0]:.2f})"}
            for j in range(0, len(axes["position"]), 2):
                row[f"{axes['position'][j]:.1f}"] = f"{trade[i, j]:+.2f}"
            rows.append(row)
    return markdown_table(rows)


def no_trade_width(folder: pathlib.Path, tol: float = 0.01) -> str:
    """The width of the position interval with ``|action - position| < tol`` at the money, per
    seed (from the band grid, a linear interpolation between its points), mean ± Student t CI."""
    rows = []
    for name, (axes, action, _) in _band_grids(folder).items():
        pos = axes["position"]
        fine = np.linspace(pos[0], pos[-1], 1001)
        for i, tau in enumerate(axes["time_fraction"]):
            widths = [
                float(np.mean(np.abs(np.interp(fine, pos, a[i]) - fine) < tol) * (pos[-1] - pos[0]))
                for a in action
            ]
            rows.append(
                {
                    "run": name,
                    "date k": str(_step(tau)),
                    f"no-trade width (trade under {tol:g} shares), shares": _cell(widths),
                }
            )
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """Every table of the document by id."""
    return {
        "anchors": lambda: anchors_table(folder),
        "results": lambda: results_table(folder),
        "reference": lambda: reference_row_table(folder),
        "curves": lambda: curves_table(folder),
        "snr": lambda: snr_table(folder),
        "surface": lambda: surface_table(folder),
        "by-step": lambda: by_step_table(folder),
        "band": lambda: band_table(folder),
        "band-width": lambda: no_trade_width(folder),
    }
