"""Runs the variance study: each study yields metric rows; figures and a summary follow."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import matplotlib.pyplot as plt
import numpy as np

import ordergrad_jax as og
from ordergrad_experiments.common.progress import sweep
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.variance import plots, studies
from ordergrad_experiments.variance.config import VarianceConfig

Rows = list[dict]


def _grid(batches: int, points: int = 20, start: int = 10) -> np.ndarray:
    return np.unique(np.geomspace(start, batches, points).astype(int))


def _slope(t: np.ndarray, err: np.ndarray) -> float:
    keep = np.isfinite(err) & (err > 0) & (t >= 100)
    return float(np.polyfit(np.log(t[keep]), np.log(err[keep]), 1)[0])


def study_unbiasedness(cfg: VarianceConfig, key: jax.Array) -> Rows:
    """1. Batch estimates averaged over t batches converge to the exact values at rate t^-1/2."""
    r = studies.arm_values("gaussian", cfg.unbiased_arms, cfg.seed)
    logits = studies.bandit_logits(cfg.unbiased_arms, cfg.seed + 1)
    alpha = og.rank_weights(cfg.unbiased_objective, cfg.unbiased_k)
    grid = _grid(cfg.unbiased_batches)
    fn = studies.make_unbiasedness(
        r, logits, cfg.unbiased_n, cfg.unbiased_k, alpha, cfg.unbiased_batches, grid
    )
    errors = jax.lax.map(fn, jax.random.split(key, cfg.unbiased_repeats))  # sequential: memory
    rows = []
    for name, err in errors.items():
        rms = np.sqrt(np.mean(np.asarray(err, np.float64) ** 2, 0))
        rows += [
            {"study": "unbiasedness", "quantity": name, "t": int(t), "error": float(e)}
            for t, e in zip(grid, rms, strict=True)
        ]
        rows.append({"study": "unbiasedness_slope", "quantity": name, "slope": _slope(grid, rms)})
    return rows


def study_lr_vs_exact(cfg: VarianceConfig, key: jax.Array) -> Rows:
    """2. The mean LR gradient converges to jax.grad of the exact objective."""
    weights, valid = studies.stack_weights(cfg.objectives, cfg.lr_k)
    grid = _grid(cfg.lr_batches)
    rows = []
    modes = zip(cfg.lr_modes, jax.random.split(key, len(cfg.lr_modes)), strict=True)
    for mode, mode_key in sweep(modes, "reward modes"):
        r = studies.arm_values(mode, cfg.lr_arms, cfg.seed)
        logits = studies.bandit_logits(cfg.lr_arms, cfg.seed + 1)
        fn = studies.make_lr_vs_exact(
            r, logits, cfg.lr_n, cfg.lr_k, weights[valid], cfg.lr_batches, grid
        )
        rel = np.asarray(fn(mode_key), np.float64)
        for objective, errs in zip(np.asarray(cfg.objectives)[valid], rel, strict=True):
            rows += [
                {
                    "study": "lr_vs_exact",
                    "mode": mode,
                    "objective": str(objective),
                    "t": int(t),
                    "rel_error": float(e),
                }
                for t, e in zip(grid, errs, strict=True)
            ]
    return rows


def _location_rows(
    study: str,
    reward: str,
    dim: int,
    n: int,
    k: int,
    objectives,
    batches: int,
    key: jax.Array,
    **extra,
) -> Rows:
    weights, valid = studies.stack_weights(objectives, k)
    out = studies.make_location_gradients(reward, dim, n, k, weights[valid], batches)(key)
    rows = []
    for i, objective in enumerate(np.asarray(objectives)[valid]):
        gap = float(np.linalg.norm(out["rp"]["mean"][i] - out["lr"]["mean"][i]))
        gap_se = float(np.sqrt((out["rp"]["total_var"][i] + out["lr"]["total_var"][i]) / batches))
        for estimator in ("rp", "lr"):
            rows.append(
                {
                    "study": study,
                    "reward": reward,
                    "dim": dim,
                    "N": n,
                    "K": k,
                    "objective": str(objective),
                    "estimator": estimator,
                    "total_var": float(out[estimator]["total_var"][i]),
                    "snr": float(out[estimator]["snr"][i]),
                    "rp_lr_gap": gap,
                    "gap_se": gap_se,
                    **extra,
                }
            )
    return rows


def study_rp_vs_lr(cfg: VarianceConfig, key: jax.Array) -> Rows:
    """3. RP and LR agree in mean (both unbiased); their variances differ with dimension."""
    rows = []
    cases = [(reward, dim) for reward in cfg.rp_rewards for dim in cfg.rp_dims]
    for (reward, dim), case_key in sweep(
        zip(cases, jax.random.split(key, len(cases)), strict=True), "reward x dim"
    ):
        rows += _location_rows(
            "rp_vs_lr", reward, dim, cfg.rp_n, cfg.rp_k, cfg.objectives, cfg.rp_batches, case_key
        )
    return rows


def study_snr(cfg: VarianceConfig, key: jax.Array) -> Rows:
    """4. tr Var[g] and SNR vs K, N (Gaussian location, RP and LR) and vs arms (bandit, LR)."""
    rows = []
    keys = iter(jax.random.split(key, len(cfg.snr_ks) + len(cfg.snr_ns) + len(cfg.snr_arms)))
    location_sweeps = (
        ("K", cfg.snr_ks, lambda v: (cfg.snr_n_for_k, v)),  # value -> (N, K)
        ("N", cfg.snr_ns, lambda v: (v, cfg.snr_k_for_n)),
    )
    for name, values, sizes in location_sweeps:
        for value in sweep(values, name):
            n, k = sizes(value)
            rows += _location_rows(
                "snr",
                "quadratic_sine",
                cfg.snr_dim,
                n,
                k,
                cfg.objectives,
                cfg.snr_batches,
                next(keys),
                sweep=name,
                value=value,
            )
    weights, valid = studies.stack_weights(cfg.objectives, cfg.snr_bandit_k)
    for arms in sweep(cfg.snr_arms, "arms"):
        r = studies.arm_values("exponential", arms, cfg.seed)
        fn = studies.make_bandit_lr_moments(
            r,
            studies.bandit_logits(arms, cfg.seed + 1),
            cfg.snr_bandit_n,
            cfg.snr_bandit_k,
            weights[valid],
            cfg.snr_batches,
        )
        out = fn(next(keys))
        for i, objective in enumerate(np.asarray(cfg.objectives)[valid]):
            rows.append(
                {
                    "study": "snr",
                    "sweep": "arms",
                    "value": arms,
                    "estimator": "lr",
                    "objective": str(objective),
                    "total_var": float(out["total_var"][i]),
                    "snr": float(out["snr"][i]),
                }
            )
    # vs dimension: the quadratic_sine rows of study 3
    return rows


def study_runtime(cfg: VarianceConfig, key: jax.Array) -> Rows:
    """6. The transform timing of `ordergrad-jax bench transform` (its full or quick settings)."""
    del key
    from ordergrad_experiments.common import timing

    settings = (
        timing.QUICK_TRANSFORM_TIMING if cfg.runtime_quick else timing.TransformTimingConfig()
    )
    return [{"study": "runtime", **row} for row in timing.time_transforms(settings)]


def study_zoo(cfg: VarianceConfig, key: jax.Array) -> Rows:
    """5. OrderGrad vs the estimator zoo: bias and variance for each method's own target."""
    from ordergrad_experiments.variance import zoo

    return zoo.run(cfg, key)


STUDIES: dict[str, Callable[[VarianceConfig, jax.Array], Rows]] = {
    "unbiasedness": study_unbiasedness,
    "lr_vs_exact": study_lr_vs_exact,
    "rp_vs_lr": study_rp_vs_lr,
    "snr": study_snr,
    "zoo": study_zoo,
    "runtime": study_runtime,
}


def run(cfg: VarianceConfig, writer: RunWriter, progress: Callable = iter) -> Rows:
    """Runs the configured studies, logging rows as each finishes; then figures and summary."""
    unknown = sorted(set(cfg.studies) - set(STUDIES))
    if unknown:
        raise ValueError(f"unknown studies {unknown}; available: {list(STUDIES)}")
    writer.write_config(cfg, jax=jax.__version__, device=str(jax.devices()[0]))
    keys = jax.random.split(jax.random.key(cfg.seed), len(cfg.studies))
    for name, key in progress(list(zip(cfg.studies, keys, strict=True))):
        writer.log(STUDIES[name](cfg, key))
    for stem, fig in plots.all_figures(writer.metrics).items():
        writer.save_figure(fig, stem)
        plt.close(fig)
    writer.write_summary(summary(cfg, writer.metrics))
    return writer.metrics


def summary(cfg: VarianceConfig, rows: Rows) -> str:
    """The markdown summary: the tables behind the figures' headline numbers."""
    lr = [r for r in rows if r["study"] == "lr_vs_exact"]
    t_max = max((r["t"] for r in lr), default=0)
    zoo = [r for r in rows if r["study"] == "zoo"]
    sections = [  # (title, rows, columns)
        (
            "## 1. Unbiasedness: log-log slope of error vs batches (expect -0.5)",
            [r for r in rows if r["study"] == "unbiasedness_slope"],
            ["quantity", "slope"],
        ),
        (
            f"## 2. LR vs exact gradient: relative error after {t_max} batches",
            [r for r in lr if r["t"] == t_max],
            ["mode", "objective", "rel_error"],
        ),
        (
            "## 3. RP vs LR (Gaussian location): gap of means (vs its standard error) and tr Var",
            [r for r in rows if r["study"] == "rp_vs_lr"],
            ["reward", "dim", "objective", "estimator", "total_var", "snr", "rp_lr_gap", "gap_se"],
        ),
        (
            "## 4. Variance and SNR sweeps",
            [r for r in rows if r["study"] == "snr"],
            ["sweep", "value", "objective", "estimator", "total_var", "snr"],
        ),
        (
            "## 5. Estimator zoo (each method on its own target)",
            zoo,
            [c for c in zoo[0] if c != "study"] if zoo else [],
        ),
        (
            "## 6. Runtime (microseconds per call, float32)",
            [r for r in rows if r["study"] == "runtime"],
            [
                "groups",
                "N",
                "K",
                "floor_us",
                "grpo_us",
                "ordergrad_us",
                "path",
                "ordergrad_over_floor",
            ],
        ),
    ]
    out = ["# Variance study", "", f"Config: `{dataclasses.asdict(cfg)}`", ""]
    for title, section_rows, columns in sections:
        if section_rows:
            out += [title, "", markdown_table(section_rows, columns)]
    return "\n".join(out)
