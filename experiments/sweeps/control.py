"""The control sweeps: the runs behind reports/control/RESULTS.md (``ordergrad-jax run control``,
seeds vmapped in one jit: 10 per run in ``control-risk``, 5 elsewhere) and its speed benchmark.

``ordergrad-jax sweep control-risk --keep reports/control/riskygrid-10seeds`` keeps every run of
the sweep in that folder; the committed sets split the risk runs by task
(``disturbed-cartpole-10seeds/``: ``dcp10-*``, ``riskygrid-10seeds/``: ``rg10-*``).
"""

from __future__ import annotations

from ordergrad_experiments.sweeps.spec import RunSpec, Sweep, register


def sets(text: str) -> tuple[str, ...]:
    """``"a=1 b=2"`` -> ``("a=1", "b=2")``: a run's ``--set`` overrides written on one line."""
    return tuple(text.split())


def control(run_id: str, *parts: str) -> RunSpec:
    """A run of ``ordergrad-jax run control`` with the overrides of ``parts`` (see :func:`sets`)."""
    return RunSpec(run_id, "control", sets(" ".join(parts)))


PPO_CLASSIC = "algo=ppo lr=2.5e-4 schedule=linear entropy_coef=0.01"
"""PPO as PureJaxRL runs CartPole (the classic and risk sections)."""


def _classic() -> tuple[RunSpec, ...]:
    runs = []
    for env in ("CartPole-v1", "Acrobot-v1"):
        common = f"env={env} num_steps=500 budget.total=1000000 budget.num_chunks=10"
        pg = f"{common} num_groups=4 group_size=8"
        runs += [
            control(f"classic-{env}-og_mean", pg, "objective=Mean k=4"),
            control(f"classic-{env}-og_ltm", pg, "objective=LowerTailMean:0.25 k=4"),
            control(f"classic-{env}-og_median", pg, "objective=Median k=5"),
            control(f"classic-{env}-rloo", pg, "estimator.name=rloo"),
            control(f"classic-{env}-ppo", common, PPO_CLASSIC),
        ]
    env = "Pendulum-v1"
    common = f"env={env} num_steps=200 budget.total=2000000 budget.num_chunks=10"
    pg = f"{common} num_groups=8 group_size=8 lr=1e-3"
    runs += [
        control(f"classic-{env}-og_mean", pg, "objective=Mean k=4"),
        control(f"classic-{env}-og_ltm", pg, "objective=LowerTailMean:0.25 k=4"),
        control(f"classic-{env}-rloo", pg, "estimator.name=rloo"),
        control(
            f"classic-{env}-ppo",
            common,
            "algo=ppo num_envs=16 lr=1e-3 schedule=linear entropy_coef=0.0 gae_lambda=0.95",
            "update_epochs=10",
        ),
    ]
    return tuple(runs)


def _sparse() -> tuple[RunSpec, ...]:
    common = (
        "env=MountainCarContinuous-v0 num_steps=999 budget.total=2000000 budget.num_chunks=10"
        " success_return=50 eval_k=8 init_log_std=0.0"
    )
    pg = f"{common} num_groups=2 group_size=16"
    return (
        control("sparse-og_remax", pg, "objective=ReMax k=8"),
        control("sparse-og_top2", pg, "objective=TopM:2 k=8"),
        control("sparse-rloo", pg, "estimator.name=rloo"),
        control("sparse-ppo", common, "algo=ppo num_envs=16 lr=1e-3 entropy_coef=0.0"),
    )


def _risk() -> tuple[RunSpec, ...]:
    pg = "num_groups=4 group_size=16"
    ltm = "objective=LowerTailMean:0.25 k=8"
    runs = []
    for prefix, env, steps in (
        ("dcp10", "DisturbedCartPole-v0", 200),
        ("rg10", "RiskyGrid-v0", 30),
    ):
        common = (
            f"env={env} num_steps={steps} budget.total=1000000 budget.num_chunks=10 num_seeds=10"
        )
        runs += [
            control(f"{prefix}-og_ltm", common, pg, ltm),
            control(f"{prefix}-og_botm", common, pg, "objective=BotM:1 k=4"),
            control(f"{prefix}-rloo", common, pg, "estimator.name=rloo"),
            control(
                f"{prefix}-cvar_pg",
                common,
                pg,
                "estimator.name=cvar_pg estimator.options=alpha=0.25",
            ),
            control(f"{prefix}-ppo", common, PPO_CLASSIC),
        ]
    # the levers tried on lower-tail OrderGrad (issue 16 section 4): the mean objective for the
    # first fraction of training (warm), an entropy bonus decaying linearly to 0 (ent)
    rg = f"{common} {pg} {ltm}"
    warm = "warm_start_objective=Mean warm_start_frac={}"
    ent = "entropy_schedule=linear entropy_coef={}"
    runs += [
        control("rg10-og_ltm_warm30", rg, warm.format(0.3)),
        control("rg10-og_ltm_warm10", rg, warm.format(0.1)),
        control("rg10-og_ltm_warm05_ent5", rg, ent.format(5.0), warm.format(0.05)),
        *(
            control(f"rg10-og_ltm_warm30_ent{c}", rg, warm.format(0.3), ent.format(f"{c}.0"))
            for c in (1, 5, 30)
        ),
        *(control(f"rg10-og_ltm_ent{c}", rg, ent.format(f"{c}.0")) for c in (1, 10, 30)),
        control(
            "rg10-og_ltm_n64_warm30_ent5",
            common,
            ltm,
            warm.format(0.3),
            ent.format(5.0),
            "num_groups=1 group_size=64",
        ),
        control("rg10-og_ltm_success", rg, "train_reward=success success_return=10"),
    ]
    return tuple(runs)


DCP48_ARMS = {
    "rloo": "estimator.name=rloo",
    "og_cvar10": "objective=LowerTailMean:0.1 k=10",
    "cvar_pg": "estimator.name=cvar_pg estimator.options=alpha=0.1",
    "ppo": PPO_CLASSIC,
}
"""The powered DisturbedCartPole study's arms (issue 25): the mean (RLOO), the lower tail matched
to the deployed CVaR_0.1 (the worst 1 of K = 10, ``LowerTailMean:0.1@10``), CVaR-PG at alpha 0.1,
and PPO."""


def _risk_powered() -> tuple[RunSpec, ...]:
    common = (
        "env=DisturbedCartPole-v0 num_steps=200 budget.total=1000000 budget.num_chunks=10"
        " num_seeds=48"
    )
    pg = "num_groups=4 group_size=16"
    runs = [
        control(f"dcp48-{arm}", common, "" if arm == "ppo" else pg, arm_sets)
        for arm, arm_sets in DCP48_ARMS.items()
    ]
    # the gradients of RLOO (Mean@1) and of the worst of 10 along both learners' runs (3 seeds;
    # the learner's keys resolve into control-gradients' control.*)
    tail = "LowerTailMean:0.1@10"
    probes = f"probes=Mean@1,{tail},{tail}/32,{tail}/64 target={tail} batches=32 at_chunks=1,4,10"
    learner = common.replace("num_seeds=48", "num_seeds=3")
    runs += [
        RunSpec(
            f"dcp48-grads-{arm}", "control-gradients", sets(f"{learner} {pg} {arm_sets} {probes}")
        )
        for arm, arm_sets in DCP48_ARMS.items()
        if arm in ("rloo", "og_cvar10")
    ]
    return tuple(runs)


CLASSIC = register(
    Sweep(
        "control-classic",
        "CartPole, Acrobot, Pendulum: order-statistic objectives learn like PPO (section 3)",
        _classic(),
        documents=("reports/control/classic",),
    )
)
SPARSE = register(
    Sweep(
        "control-sparse",
        "MountainCarContinuous: best-of-K and TopM vs the mean (section 2)",
        _sparse(),
        documents=("reports/control/sparse",),
    )
)
RISK = register(
    Sweep(
        "control-risk",
        "DisturbedCartPole and RiskyGrid, 10 seeds per method: tail objectives vs the mean, and "
        "the levers on lower-tail OrderGrad (section 1)",
        _risk(),
        documents=(
            "reports/control/disturbed-cartpole-10seeds",
            "reports/control/riskygrid-10seeds",
        ),
    )
)
SPEED = register(
    Sweep(
        "control-speed",
        "env steps/s on CartPole, one process: group-PG OrderGrad vs RLOO vs PPO (section 4)",
        (RunSpec("speed-cartpole", "bench:control"),),
        documents=("reports/control/speed",),
    )
)
RISK_POWERED = register(
    Sweep(
        "control-dcp48",
        "DisturbedCartPole, 48 seeds per arm: the matched lower tail vs RLOO, CVaR-PG and PPO on "
        "CVaR_0.1, the primary endpoint stated before the runs (section 1)",
        _risk_powered(),
        documents=("reports/control/disturbed-cartpole-48seeds",),
    )
)
