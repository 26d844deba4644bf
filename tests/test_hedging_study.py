"""The deep hedging study (issue 25 item 4b): DeepHedging's evaluation hooks (``envs/hedging.py``:
the distance from the Black-Scholes delta, turnover, the grid), the pathwise trainer's final
measurements (``experiments/pathwise/final.py``: the deterministic policy, the CVaR standard
error, the SNR), the ``hedging`` sweep and a smoke run that writes what ``report hedging`` reads.

References are written here: the textbook delta by ``math.erf``, brute-force means over paths,
the spread of independent batches; Monte Carlo checks use 4 standard errors (fixed seeds)."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ordergrad_envs.hedging import (
    BAND_POSITIONS,
    GRID_MONEYNESS,
    DeepHedging,
    delta_policy,
    hedge_grid,
    hedge_metrics,
)
from ordergrad_envs.rollout import group_rollout
from ordergrad_experiments.pathwise import final as finals

from conftest import FLOAT, X64, assert_close

ENV = DeepHedging()
PARAMS = ENV.default_params
T = PARAMS.max_steps_in_episode
N_PATHS = 4000
ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMAND = str(pathlib.Path(sys.executable).parent / "ordergrad-jax")


def textbook_delta(t: float, spot: float) -> float:
    tau = PARAMS.maturity - t
    d1 = (math.log(spot / PARAMS.strike) + 0.5 * PARAMS.sigma**2 * tau) / (
        PARAMS.sigma * math.sqrt(tau)
    )
    return 0.5 * (1.0 + math.erf(d1 / math.sqrt(2.0)))


def constant(c: float):
    return lambda key, obs: (jnp.full((1,), c, FLOAT), jnp.zeros((), FLOAT))


@jax.jit
def _episodes_of(c: jax.Array, key: jax.Array):
    return group_rollout(ENV, PARAMS, constant(c), key, 1, N_PATHS, T, differentiable=False)


def _delta_episodes(key):
    return jax.jit(lambda k: group_rollout(ENV, PARAMS, delta_policy(PARAMS), k, 1, N_PATHS, T))(
        key
    )


# --- the hooks of envs/hedging.py ----------------------------------------------------------------


def test_the_delta_hedge_is_at_distance_zero_from_the_delta():
    episodes = _delta_episodes(jax.random.key(0))
    m = ENV.evaluation_metrics(PARAMS, episodes)
    assert float(m["delta_rms"]) < 1e-5 and float(m["delta_mean_abs"]) < 1e-5
    assert np.asarray(m["delta_rms_by_step"]).shape == (T,)
    assert_close(
        m["indifference_price_0.1"],
        -np.sort(np.asarray(episodes.returns[0]))[: N_PATHS // 10].mean(),
        scale=10.0,
        rel=1e-5,
    )


def test_a_constant_hedge_distance_brute_force_and_the_closed_form_mean():
    """Positions ``c``: RMS and mean |c - delta| over (path, date) pairs against the textbook
    delta at each visited (t, S); the turnover is the first purchase ``|c|`` and no later step
    trades. The mean of ``delta`` at date t has a closed form (S_0 = K, no drift):
    ``E N(d1(t, S_t)) = N(sigma (T - 2 t) / (2 sqrt(T)))``."""
    c = 0.3
    episodes = _episodes_of(jnp.asarray(c, FLOAT), jax.random.key(1))
    m = hedge_metrics(PARAMS, episodes.obs, episodes.actions[..., 0], episodes.mask)
    obs = np.asarray(episodes.obs[0], np.float64)  # [paths, T, 3]
    dt = PARAMS.maturity / T
    delta = np.vectorize(textbook_delta)(
        np.arange(T)[None, :] * dt, PARAMS.strike * np.exp(obs[..., 1])
    )
    rel = 1e-9 if X64 else 1e-4
    assert_close(m["delta_rms"], np.sqrt(np.mean((c - delta) ** 2)), rel=rel)
    assert_close(m["delta_mean_abs"], np.mean(np.abs(c - delta)), rel=rel)
    assert_close(m["delta_rms_by_step"], np.sqrt(np.mean((c - delta) ** 2, axis=0)), rel=rel)
    assert_close(m["turnover"], c, rel=rel) and float(m["no_trade_fraction"]) == 1.0
    # the mean delta at each date: the closed form within 4 standard errors
    times = np.arange(T) * dt
    cdf = np.vectorize(lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2))))
    want = cdf(PARAMS.sigma * (PARAMS.maturity - 2 * times) / (2 * math.sqrt(PARAMS.maturity)))
    se = delta.std(0, ddof=1) / math.sqrt(N_PATHS)
    assert np.all(np.abs(delta.mean(0) - want) < 4 * se + 1e-12)


def test_turnover_and_no_trade_of_an_alternating_hedge():
    """Positions 0.5, 0.5 + d, 0.5, ...: every later step trades ``d``."""
    d = 0.004  # below the no-trade tolerance 0.01
    positions = 0.5 + d * (np.arange(T) % 2)
    prev = np.concatenate([[0.0], positions[:-1]])
    obs = np.stack([1 - np.arange(T) / T, np.zeros(T), prev], -1)[None]
    m = hedge_metrics(PARAMS, obs, positions[None])
    assert_close(m["turnover"], 0.5 + d * (T - 1), rel=1e-5)
    assert float(m["no_trade_fraction"]) == 1.0
    assert (
        float(hedge_metrics(PARAMS, obs, positions[None], no_trade_tol=d / 2)["no_trade_fraction"])
        == 0.0
    )


def test_hedge_grid_axes_and_a_constant_policy_distance_in_closed_form():
    grids = hedge_grid(PARAMS)
    axes, obs = grids["surface"]
    tau, x = np.asarray(axes["time_fraction"]), np.asarray(axes["log_moneyness"])
    assert obs.shape == (len(tau), len(GRID_MONEYNESS), 3)
    assert_close(x / (PARAMS.sigma * math.sqrt(PARAMS.maturity)), GRID_MONEYNESS, rel=1e-5)
    delta = np.array(
        [
            [textbook_delta(PARAMS.maturity * (1 - a), PARAMS.strike * math.exp(b)) for b in x]
            for a in tau
        ]
    )
    assert_close(obs[..., 2], delta, rel=1e-4)  # on track: the previous position is the delta
    c = 0.4
    rms = float(
        np.sqrt(
            np.mean(
                (
                    c
                    - np.asarray(
                        jax.vmap(delta_policy(PARAMS))(
                            jax.random.split(jax.random.key(0), obs[..., 0].size),
                            obs.reshape(-1, 3),
                        )[0]
                    )
                )
                ** 2
            )
        )
    )
    assert_close(rms, np.sqrt(np.mean((c - delta) ** 2)), rel=1e-4)
    band_axes, band = grids["band"]
    assert band.shape == (len(band_axes["time_fraction"]), len(BAND_POSITIONS), 3)
    assert float(jnp.max(jnp.abs(band[..., 1]))) == 0.0  # at the money


# --- experiments/pathwise/final.py ---------------------------------------------------------------


def test_cvar_influence_standard_error_matches_the_spread_of_batches():
    """The influence-function SE of the plug-in CVaR_0.1 against the std of 200 independent
    batch estimates (Gaussian returns: within 25%, the std of a std of 200 is 5%)."""
    rng = np.random.default_rng(0)
    batches = rng.standard_normal((200, 2000))
    estimates = np.sort(batches, 1)[:, :200].mean(1)
    ses = [np.std(finals.cvar_influence(b), ddof=1) / math.sqrt(b.size) for b in batches]
    assert abs(np.mean(ses) / estimates.std(ddof=1) - 1) < 0.25
    assert_close(finals.cvar_influence(batches[0]).mean(), estimates[0], rel=1e-2, scale=1.0)


def test_final_evaluation_of_initial_policies_beside_the_delta_hedge():
    """In process, without training: the final evaluation of two fresh policies (positions near
    0: the unhedged short call) and of the delta hedge on the same paths."""
    from ordergrad_experiments.common.config import EstimatorConfig, GroupsConfig
    from ordergrad_experiments.pathwise import PathwiseConfig, make_train

    config = PathwiseConfig(
        env="DeepHedging-v0", env_params=(), num_steps=30, hidden=(4,), num_seeds=2,
        estimator=EstimatorConfig(name="ordergrad", objective="CVaR:0.1", k=2),
        groups=GroupsConfig(num_groups=1, group_size=2), final_episodes=N_PATHS,
    )  # fmt: skip
    trainer = make_train(config)
    states = jax.vmap(trainer.init)(jax.vmap(jax.random.key)(jnp.arange(2)))
    final = finals.final_evaluation(config, trainer, states)
    ref, bs = final["reference"], 2.28715
    assert abs(ref["mean"] + bs) < 4 * ref["mean_se"] and ref["delta_rms"] < 1e-5
    assert ref["std"] < 0.5  # the delta hedge at 30 dates (0.356 on 20,000 paths)
    for s in final["seeds"]:  # nearly unhedged: mean -BS price, far wider, priced far higher
        assert abs(s["mean"] + bs) < 4 * s["mean_se"] + 0.05
        assert s["std"] > 5 * ref["std"] and s["cvar_0.1_minus_reference"] < -5.0
        assert 0 < s["cvar_0.1_minus_reference_se"] < 0.5
    grid = finals.policy_grid(config, trainer, states)["grids"]["surface"]
    assert np.asarray(grid["action"]).shape == (2, 7, len(GRID_MONEYNESS))
    assert np.max(np.abs(grid["action"])) < 0.2  # a fresh policy: small positions


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> pathlib.Path:
    """A tiny `ordergrad-jax run brax-rp` on DeepHedging-v0 with the study's outputs on."""
    out = tmp_path_factory.mktemp("hedging")
    sets = (
        "env=DeepHedging-v0 env_params=cost=0.0 num_steps=30 obs_indices=0,1 obs_scale=1,17.4 "
        "estimator.objective=CVaR:0.1 estimator.k=4 num_groups=2 group_size=8 num_seeds=2 "
        "budget.total=960 budget.num_chunks=2 eval_groups=2 hidden=8 action_std=0.01 "
        "final_episodes=2000 snr_repeats=2"
    ).split()
    args = [COMMAND, "run", "brax-rp", "--out", str(out), "--run-id", "smoke"]
    for item in sets:
        args += ["--set", item]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "brax-rp" / "smoke"


@pytest.mark.training  # an end-to-end run (compiles training, evaluation and both gradients)
def test_smoke_run_writes_the_files_the_report_reads(smoke_run):
    names = {p.name for p in smoke_run.iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.md", "final.json"} <= names
    assert {"policy_grid.json", "snr.json"} <= names
    final = json.loads((smoke_run / "final.json").read_text())
    assert final["episodes"] == 2000 and [s["seed"] for s in final["seeds"]] == [0, 1]
    ref = final["reference"]
    # the delta hedge on the common paths: mean P&L = -BS price within 4 SE, distance 0
    assert abs(ref["mean"] + 2.28715) < 4 * ref["mean_se"]
    assert ref["delta_rms"] < 1e-5 and ref["indifference_price_0.1"] == pytest.approx(
        -ref["cvar_0.1"]
    )
    for s in final["seeds"]:  # any hedge without costs: mean P&L = -BS price (martingale gains)
        assert abs(s["mean"] + 2.28715) < 4 * s["mean_se"] + 0.02
        assert s["cvar_0.1_minus_reference"] == pytest.approx(s["cvar_0.1"] - ref["cvar_0.1"])
    grid = json.loads((smoke_run / "policy_grid.json").read_text())["grids"]
    assert np.asarray(grid["surface"]["action"]).shape == (2, 7, len(GRID_MONEYNESS))
    snr = json.loads((smoke_run / "snr.json").read_text())
    assert {(r["point"], r["gradient"]) for r in snr} == {
        (p, g) for p in ("initial", "final") for g in ("rp", "lr")
    }
    assert "Deterministic (mean-action) policy" in (smoke_run / "summary.md").read_text()


@pytest.mark.training
def test_report_tables_build_from_a_run_folder(smoke_run, tmp_path):
    """The report's builders read a folder laid out as the sweep keeps it."""
    import shutil

    from ordergrad_experiments.report import hedging

    shutil.copytree(smoke_run, tmp_path / "runs" / "rp")
    tables = {name: build() for name, build in hedging.builders(tmp_path).items()}
    assert "delta hedge, 30 dates" in tables["anchors"] and "2.2871" in tables["anchors"]
    assert "| rp |" in tables["results"] and "SNR RP" in tables["snr"]
    assert "date k" in tables["surface"]


def test_the_deterministic_policy_is_the_noise_free_sample():
    from flax import nnx

    from ordergrad_experiments.pathwise.networks import SquashedGaussianPolicy

    policy = SquashedGaussianPolicy(
        3, 1, (8,), low=np.array([-2.0]), high=np.array([2.0]), action_std=1e-9,
        learn_std=False, rngs=nnx.Rngs(0), obs_indices=(0, 1), obs_scale=(1.0, 10.0),
    )  # fmt: skip
    obs = jnp.asarray([[0.5, 0.01, 0.3], [0.5, 0.01, -1.0]], FLOAT)
    action, logp = policy.deterministic(None, obs)
    assert_close(action, policy.sample(jax.random.key(0), obs)[0], rel=1e-6)
    assert_close(action[0], action[1]) and float(jnp.abs(logp).max()) == 0.0  # position unseen


def test_sweep_declares_runs_the_cli_accepts():
    out = subprocess.run(
        [COMMAND, "sweep", "hedging", "--dry-run"], capture_output=True, text=True, check=True
    ).stdout.split()
    from ordergrad_experiments import cli, registry, sweeps

    sweep = sweeps.get("hedging")
    assert out == [spec.id for spec in sweep.runs]
    config = registry.get("brax-rp").config()
    for spec in sweep.runs:
        resolved = cli.apply_overrides(config, sweep.overrides(spec, "OUT"))
        assert resolved.env == "DeepHedging-v0" and resolved.num_steps == 30
        assert resolved.final_episodes > 0 and spec.id in sweep.labels
