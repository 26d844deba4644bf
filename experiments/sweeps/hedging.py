"""The deep hedging sweep: the runs behind reports/hedging/RESULTS.md (issue 25, item 4b).

``DeepHedging-v0`` (``envs/hedging.py``: a short at-the-money call, Black-Scholes, 30 dates)
trained by the pathwise trainer (``ordergrad-jax run brax-rp``) on ``CVaR:0.1`` at K = 20 of the
terminal P&L, by RP and by LR, 5 seeds vmapped per run; each run ends with the deterministic
evaluation of its policies beside the delta hedge on 20,000 common paths (``final.json``), their
hedge on a (t, S) grid (``policy_grid.json``) and, for the cost-free runs, the RP and LR gradient
SNR at the initial and final policies (``snr.json``).

``ordergrad-jax sweep hedging --keep reports/hedging/runs`` makes and keeps them.
"""

from __future__ import annotations

from ordergrad_experiments.sweeps.control import sets
from ordergrad_experiments.sweeps.spec import RunSpec, Sweep, register

SIZES = {"num_groups": 4, "group_size": 32, "num_steps": 30}
"""The batch of every run: 4 groups x 32 episodes of the 30 rebalancing dates per iteration."""
ITERATIONS = 1000


def budget(iterations: int = ITERATIONS, num_chunks: int = 10) -> str:
    """``budget.total`` (env steps per seed) of ``iterations`` iterations of :data:`SIZES`."""
    steps = iterations * SIZES["num_groups"] * SIZES["group_size"] * SIZES["num_steps"]
    return f"budget.total={steps} budget.num_chunks={num_chunks}"


PINS = sets(
    "env=DeepHedging-v0 estimator.objective=CVaR:0.1 estimator.k=20 num_seeds=5 eval_groups=32"
    " final_episodes=20000 schedule=linear hidden=32,32 "
    + " ".join(f"{k}={v}" for k, v in SIZES.items())
    + " "
    + budget()
)
"""Shared by every run: the objective (the mean of the 2 lowest of K = 20 P&Ls, an L-statistic
near CVaR_0.1), 5 seeds, Adam with a linear decay, a (32, 32) tanh MLP."""

TIME_PRICE = "env_params=cost=0.0 obs_indices=0,1 obs_scale=1,17.4"
"""The cost-free hedge sees (time to maturity, log(S / K) / (sigma sqrt(T)))."""
WITH_POSITION = "obs_indices=0,1,2 obs_scale=1,17.4,1"
"""... and its current position too (a no-trade band needs it)."""


def _run(run_id: str, *parts: str) -> RunSpec:
    return RunSpec(run_id, "brax-rp", sets(" ".join(parts)))


def _runs() -> tuple[RunSpec, ...]:
    snr = "snr_repeats=32"
    return (
        _run("rp", TIME_PRICE, "gradient=rp action_std=0.01 lr=1e-2", snr),
        _run("rp-std0.05", TIME_PRICE, "gradient=rp action_std=0.05 lr=1e-2", snr),
        _run("lr", TIME_PRICE, "gradient=lr action_std=0.05 lr=2e-3", snr),
        _run("lr-lr0.01", TIME_PRICE, "gradient=lr action_std=0.05 lr=1e-2"),
        _run("rp-position", "env_params=cost=0.0", WITH_POSITION, "action_std=0.01 lr=1e-2"),
        _run("rp-cost0.005", "env_params=cost=0.005", WITH_POSITION, "action_std=0.01 lr=1e-2"),
    )


HEDGING = register(
    Sweep(
        "hedging",
        "deep hedging (DeepHedging-v0): RP and LR on CVaR of the P&L, the delta-hedge anchor, "
        "gradient SNR, a proportional cost",
        _runs(),
        pins=PINS,
        labels={
            "rp": "RP, std 0.01",
            "rp-std0.05": "RP, std 0.05",
            "lr": "LR, std 0.05, lr 2e-3",
            "lr-lr0.01": "LR, std 0.05, lr 1e-2",
            "rp-position": "RP, sees its position",
            "rp-cost0.005": "RP, cost 0.005, sees its position",
        },
        documents=("reports/hedging/runs",),
    )
)
