"""The brax sweeps: the runs behind reports/brax/RESULTS.md (the spring backend): the control
trainers on brax tasks (``brax``), the pathwise trainer against LR (``brax-rp``), the gradient
variance study (``brax-variance``) and the benchmark against brax's own trainers
(``brax-bench``)."""

from __future__ import annotations

from ordergrad_experiments.sweeps.control import control, sets
from ordergrad_experiments.sweeps.spec import RunSpec, Sweep, register

BRAX_TASKS = (
    ("inverted_pendulum", 128, 1_000_000),
    ("reacher", 100, 3_000_000),
    ("hopper", 200, 3_000_000),
    ("hopper-push", 200, 3_000_000),
)
"""(task, episode length, env steps per seed); ``-push``: the task with random pushes."""


def _common(name: str) -> str:
    """The task, episode and budget overrides of a ``brax`` sweep run on task ``name`` (one of
    :data:`BRAX_TASKS`; ``-push``: with pushes)."""
    length, steps = next((n, s) for t, n, s in BRAX_TASKS if t == name)
    task = name.removesuffix("-push")
    ep = f"backend=spring,episode_length={length}"
    if name.endswith("-push"):
        ep += ",push_prob=0.1,push_size=2.0"
    return (
        f"env=brax/{task} env_params={ep} num_steps={length} budget.total={steps}"
        " budget.num_chunks=10 eval_k=4"
    )


def group_pg(name: str) -> str:
    """The ``brax`` sweep's group-PG settings on task ``name`` of :data:`BRAX_TASKS` (8 x 8
    episodes per iteration, K = 4, lr 3e-3, clipped updates), as overrides; the objective is the
    caller's."""
    return f"{_common(name)} num_groups=8 group_size=8 lr=3e-3 update=clip estimator.k=4"


def _brax() -> tuple[RunSpec, ...]:
    runs = []
    for name, length, _ in BRAX_TASKS:
        task = name.removesuffix("-push")
        common, pg = _common(name), group_pg(name)
        runs += [
            control(f"brax-{name}-og_mean", pg, "estimator.objective=Mean"),
            control(f"brax-{name}-og_ltm", pg, "estimator.objective=LowerTailMean:0.25"),
        ]
        if task == "hopper":  # the objective schedule is reported on hopper only
            runs.append(
                control(
                    f"brax-{name}-og_ltm_warm",
                    pg,
                    "estimator.objective=LowerTailMean:0.25 warm_start_frac=0.5"
                    " warm_start_objective=Mean",
                )
            )
        runs += [
            control(f"brax-{name}-og_remax", pg, "estimator.objective=ReMax"),
            control(
                f"brax-{name}-ppo",
                common,
                f"algo=ppo num_envs=16 ppo_steps={length} lr=3e-4 update_epochs=4",
            ),
        ]
    return tuple(runs)


def hopper_push_learner() -> str:
    """The ``brax`` sweep's group-PG settings on hopper-push (:func:`_brax`), as overrides."""
    return group_pg("hopper-push")


TAIL4 = "LowerTailMean:0.25@4"
"""The lower-tail objective of the ``brax`` sweep's tail learner: the worst of K = 4."""


def _hopper_tail() -> tuple[RunSpec, ...]:
    """Why the lower-tail learner ends below the Mean learner on E[worst of 4] on hopper-push
    (issue 25): the gradients of both objectives at the policies along each learner's run; both
    learners again with this code (5 seeds; their final returns and trained statistics kept);
    the tail learner with half and double the step size and with groups of 16 and 32 (the same
    64 episodes per iteration)."""
    learner = hopper_push_learner()
    ltm = "estimator.objective=LowerTailMean:0.25"
    probes = f"Mean@4,{TAIL4},{TAIL4}/16,{TAIL4}/32"
    gradients = f"probes={probes} target={TAIL4} batches=32 at_chunks=1,4,10"

    def grads(run_id: str, objective: str) -> RunSpec:  # the learner's keys resolve into control.
        return RunSpec(
            run_id, "control-gradients", sets(f"{learner} {objective} num_seeds=3 {gradients}")
        )

    return (
        grads("ht-grads-og_mean", "estimator.objective=Mean"),
        grads("ht-grads-og_ltm", ltm),
        control("ht-og_mean", learner, "estimator.objective=Mean"),
        control("ht-og_ltm", learner, ltm),
        control("ht-og_ltm_lr1.5e-3", learner, ltm, "lr=1.5e-3"),
        control("ht-og_ltm_lr6e-3", learner, ltm, "lr=6e-3"),
        control("ht-og_ltm_n16", learner, ltm, "num_groups=4 group_size=16"),
        control("ht-og_ltm_n32", learner, ltm, "num_groups=2 group_size=32"),
    )


HOPPER_POWERED_SEEDS = 63
"""Seeds per arm of ``brax-hopper-63seeds``: the 80% power count of section 6's plug-in power
analysis (Welch, 5%) for the lower-tail learner's CVaR_0.1 gain over the Mean learner on hopper
(+15.1 with seed SDs 24.8 and 34.4 at 5 seeds)."""


def _hopper_powered() -> tuple[RunSpec, ...]:
    """The nominal-hopper pair of the ``brax`` sweep (the Mean learner and the lower-tail learner,
    group-PG with the OrderGrad advantage) at :data:`HOPPER_POWERED_SEEDS` seeds, vmapped in one
    process per arm (issue 25, item 3)."""
    pg = f"{group_pg('hopper')} num_seeds={HOPPER_POWERED_SEEDS}"
    return (
        control("hp-og_mean", pg, "estimator.objective=Mean"),
        control("hp-og_ltm", pg, "estimator.objective=LowerTailMean:0.25"),
    )


def rp(run_id: str, *parts: str) -> RunSpec:
    """A run of ``ordergrad-jax run brax-rp`` (the sweep's pins first)."""
    return RunSpec(run_id, "brax-rp", sets(" ".join(parts)))


RP_SIZES = {"num_groups": 16, "group_size": 8, "num_steps": 64}
"""The batch of every ``brax-rp`` run (the sweep's pins): 16 start states x 8 rollouts of 64
steps per iteration."""


def rp_budget(iterations: int, num_chunks: int) -> str:
    """The ``--set`` budget of a ``brax-rp`` run of ``iterations`` iterations of the pinned batch
    (:data:`RP_SIZES`) in ``num_chunks`` chunks: ``budget.total`` in environment steps."""
    steps = iterations * RP_SIZES["num_groups"] * RP_SIZES["group_size"] * RP_SIZES["num_steps"]
    return f"budget.total={steps} budget.num_chunks={num_chunks}"


def _brax_rp() -> tuple[RunSpec, ...]:
    ip = rp_budget(120, 6)
    push = "env_params=reward=smooth,push_prob=0.2,push_size=2.0"
    ltm = "estimator.objective=LowerTailMean:0.25"
    runs = [
        rp("ip-spring-rp-Mean", ip),
        rp("ip-spring-rp-LowerTailMean_0_25", ip, ltm),
        rp("ip-spring-lr-Mean", ip, "gradient=lr"),
        rp("ip-spring-lr-LowerTailMean_0_25", ip, "gradient=lr", ltm),
        rp("ip-spring-push-rp-Mean", ip, push),
        rp("ip-spring-push-rp-LowerTailMean_0_25", ip, push, ltm),
    ]
    for task in ("reacher", "hopper"):
        t = f"env=brax/{task} env_params=backend=spring {rp_budget(60, 3)}"
        runs += [
            rp(f"{task}-spring-lr-Mean", t, "gradient=lr"),
            rp(f"{task}-spring-rp-Mean", t),
            rp(f"{task}-spring-rp-trunc16-Mean", t, "truncate=16 lr=1e-3"),
        ]
    reacher = (
        f"env=brax/reacher env_params=backend=spring {rp_budget(60, 3)} truncate=16 learn_std=True"
    )
    runs += [
        rp("reacher-spring-rp-trunc16-learnstd-Mean", reacher, "lr=1e-3"),
        rp("reacher-spring-rp-trunc16-std0.1-Mean", reacher, "action_std=0.1"),
    ]
    return tuple(runs)


BRAX = register(
    Sweep(
        "brax",
        "brax (spring): the control trainers, order-statistic objectives vs the mean vs PPO "
        "(section 2)",
        _brax(),
        documents=("reports/brax/control",),
    )
)
BRAX_RP = register(
    Sweep(
        "brax-rp",
        "brax (spring): the pathwise trainer (RP) and LR on the same rollouts, 3 seeds vmapped "
        "(section 3)",
        _brax_rp(),
        pins=sets(
            "num_seeds=3 eval_groups=128 " + " ".join(f"{k}={v}" for k, v in RP_SIZES.items())
        ),
        documents=("reports/brax/brax-rp",),
    )
)
BRAX_VARIANCE = register(
    Sweep(
        "brax-variance",
        "brax: RP vs LR gradient variance and SNR at equal sample budget (section 4; the "
        "committed study is reports/brax/variance/rows.json, written before run folders)",
        (RunSpec("variance", "brax-variance"),),
    )
)
BRAX_BENCH = register(
    Sweep(
        "brax-bench",
        "brax: our RP and LR trainers vs brax's PPO and APG, one process each (section 5; the "
        "committed benchmarks are reports/brax/bench/*.json, written before run folders)",
        tuple(
            RunSpec(task, "bench:brax", sets(f"task={task}"))
            for task in ("inverted_pendulum", "reacher", "hopper")
        ),
        pins=sets("budget.total=524288 trainers=ours_rp,brax_apg,ours_group_pg,brax_ppo,ours_ppo"),
    )
)
HOPPER_TAIL = register(
    Sweep(
        "brax-hopper-tail",
        "brax hopper-push: why the lower-tail learner ends below the Mean learner on E[worst of "
        "4]: gradient SNR and alignment along both runs, step size, group size (section 2)",
        _hopper_tail(),
        documents=("reports/brax/hopper-tail",),
    )
)
HOPPER_POWERED = register(
    Sweep(
        "brax-hopper-63seeds",
        "brax hopper: the lower-tail learner vs the Mean learner at 63 seeds per arm, the primary "
        "endpoint (CVaR_0.1) stated before the runs (section 2)",
        _hopper_powered(),
        documents=("reports/brax/hopper-63seeds",),
    )
)
