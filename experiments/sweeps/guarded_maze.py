"""The Guarded Maze study: the runs behind reports/guarded-maze/RESULTS.md (issue 25, item 4a).

``ordergrad-jax sweep guarded-maze --keep reports/guarded-maze/runs`` runs group-PG control runs
(``ordergrad-jax run control``, 10 seeds vmapped in one jit per run) on ``GuardedMaze-v0`` and
keeps each run's config.json, summary.md, final_returns.npz and its evaluation rows with the last
chunk's training rows (:func:`final_rows`). The methods: the mean (RLOO), CVaR-PG
at alpha = 0.1 (the deployed level, ``cvar_alpha``), OrderGrad's lower tail at the same level
(``LowerTailMean:0.1`` at K = 10: the expected lowest of 10 returns), and the remedies for the
tail learners' blindness to success that the trainer has: the mean for the first 30% of the
iterations then the tail (``warm_start_*``: a mean-to-tail schedule, an abrupt version of the
paper's soft-risk schedule), and an entropy bonus decaying linearly to 0 (``entropy_*``).

``guarded-maze-sampler`` (same settings, same keep and folder) tests the paper's two remedies in
their simplest forms: a soft-risk schedule (``warm_start_schedule=linear``: the rank weights from
the mean's to the tail's over the first half) and a sampler that meets the guard more often in
training (``train_env_params``), with a pre-stated primary comparison (the report's
``SAMPLER_PRIMARY``); ``guarded-maze-explore``, declared after its negative result, adds a
decaying entropy bonus to the sampler; ``guarded-maze-ablate`` asks why the mean learner under
the sampler misses the safe route that exact Adam ascent finds (the report's ascent table),
``guarded-maze-tabular`` repeats it with the tabular policy of that ascent, and
``guarded-maze-scale`` with 16x the episodes per update or 4x the updates.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from ordergrad_experiments.sweeps.spec import RunSpec, Sweep, register

COMMON = (
    "env=GuardedMaze-v0",
    "num_steps=40",
    "num_groups=4",
    "group_size=20",
    "budget.total=1000000",
    "budget.num_chunks=5",
    "num_seeds=10",
    "eval_episodes=1000",
    "eval_k=10",
    "cvar_alpha=0.1",
    "success_return=-30",
)
"""Every run's settings: the task's 40-step episodes, 4 groups of 20 episodes per iteration, 10^6
env steps per seed in 5 chunks, 10 seeds; the evaluation's CVaR at 0.1 and success = reaching
the target (every return that reaches it is >= -18 - 1; a time-out is <= -40)."""

FOLDER = "reports/guarded-maze/runs"
"""Where every study of the document keeps its runs (the report reads them all)."""
LTM = "objective=LowerTailMean:0.1 k=10"
WARM = "warm_start_objective=Mean warm_start_frac=0.3"
ENT = "entropy_schedule=linear entropy_coef={}"
SOFT = "warm_start_objective=Mean warm_start_frac=0.5 warm_start_schedule=linear"
"""The soft-risk schedule: the rank weights from the mean's to the tail's, linearly over the first
half of the iterations."""
TILT = "train_env_params=guard_prob=0.5"
"""The sampler: training episodes meet the guard with probability 0.5 instead of 0.05 (evaluation
on the task). 0.5 is the guard's frequency among the short route's worst 10% of returns (0.05 of
0.1), the cross-entropy method's target for this condition at alpha = 0.1; under it the short
route's mean return is its CVaR_0.1 on the task (14 - 0.5 * 32 = -2)."""
RLOO = "estimator.name=rloo"
CVAR_PG = "estimator.name=cvar_pg estimator.options=alpha=0.1"
MEAN_TILT = f"{RLOO} {TILT}"
"""The mean learner under the sampler, the subject of the ablation studies."""
TABULAR = "env_params=observe_position=0 hidden= optim.grad_clip=0"
"""The exact ascent's policy (a linear layer on the one-hot cell alone), without clipping."""
G16 = "num_groups=16 budget.total=4000000"
"""4 times the episodes per update, the same number of updates."""


def final_rows(run, dest: pathlib.Path) -> None:
    """The keep of this sweep: ``config.json``, ``summary.md``, ``final_returns.npz`` and a
    ``metrics.jsonl`` of the evaluation and speed rows and the last chunk's training rows (the
    earlier chunks' training rows, 4/5 of the file, are left out: reports/ has a size budget)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "summary.md", "final_returns.npz"):
        if (run.path / name).exists():
            shutil.copyfile(run.path / name, dest / name)
    train = run.rows("train")
    last = max((row["env_steps"] for row in train), default=None)
    rows = [r for r in run.metrics if r.get("kind") != "train" or r["env_steps"] == last]
    (dest / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _study(name: str, description: str, runs: tuple[RunSpec, ...]) -> Sweep:
    """One study of the document: ``runs`` with the shared settings (:data:`COMMON`), kept by
    :func:`final_rows` in the one folder every study of it writes to (:data:`FOLDER`)."""
    return register(
        Sweep(name, description, runs, pins=COMMON, keep=final_rows, documents=(FOLDER,))
    )


def _run(run_id: str, *parts: str) -> RunSpec:
    return RunSpec(f"gm-{run_id}", "control", tuple(" ".join(parts).split()))


def _runs() -> tuple[RunSpec, ...]:
    return (
        _run("rloo", RLOO),
        _run("cvar_pg", CVAR_PG),
        _run("og_ltm", LTM),
        _run("og_ltm_warm30", LTM, WARM),
        _run("og_ltm_ent10", LTM, ENT.format("10.0")),
        _run("og_ltm_warm30_ent10", LTM, WARM, ENT.format("10.0")),
    )


def _sampler_runs() -> tuple[RunSpec, ...]:
    return (
        _run("og_ltm_soft50_tilt50", LTM, SOFT, TILT),
        _run("og_ltm_soft50", LTM, SOFT),
        _run("og_ltm_tilt50", LTM, TILT),
        _run("cvar_pg_tilt50", CVAR_PG, TILT),
        _run("rloo_tilt50", MEAN_TILT),
    )


GUARDED_MAZE_SAMPLER = _study(
    "guarded-maze-sampler",
    "GuardedMaze-v0, 10 seeds per method: Greenberg et al.'s two remedies, a soft-risk "
    "schedule and a sampler that over-samples the guard, on the lower tail, CVaR-PG and the "
    "mean (reports/guarded-maze)",
    _sampler_runs(),
)


def _explore_runs() -> tuple[RunSpec, ...]:
    return tuple(
        _run(f"{name}_ent{c:g}", *parts, ENT.format(c))
        for c in (1.0, 3.0)
        for name, parts in (
            ("rloo_tilt50", (MEAN_TILT,)),
            ("og_ltm_soft50_tilt50", (LTM, SOFT, TILT)),
        )
    )


GUARDED_MAZE_EXPLORE = _study(
    "guarded-maze-explore",
    "GuardedMaze-v0, 10 seeds per method, exploratory (declared after the sampler study's "
    "negative result): the sampler with a decaying entropy bonus of 1 or 3, on the mean and "
    "on the lower tail with the soft risk (reports/guarded-maze)",
    _explore_runs(),
)


def _ablate_runs() -> tuple[RunSpec, ...]:
    return (
        _run("rloo_tilt50_linear", MEAN_TILT, "hidden="),
        _run("rloo_tilt50_noclip", MEAN_TILT, "optim.grad_clip=0"),
        _run("rloo_tilt50_linear_noclip", MEAN_TILT, "hidden= optim.grad_clip=0"),
        _run("rloo_tilt50_linear_noclip_g16", MEAN_TILT, "hidden= optim.grad_clip=0", G16),
    )


GUARDED_MAZE_ABLATE = _study(
    "guarded-maze-ablate",
    "GuardedMaze-v0, 10 seeds per method: the mean under the sampler, one difference from the "
    "exact Adam ascent at a time (a linear policy on the one-hot cell, no gradient clipping, "
    "4x the episodes per update; reports/guarded-maze)",
    _ablate_runs(),
)


def _tabular_runs() -> tuple[RunSpec, ...]:
    return (
        _run("rloo_tilt50_tabular_noclip", MEAN_TILT, TABULAR),
        _run("rloo_tilt50_tabular_noclip_g16", MEAN_TILT, TABULAR, G16),
    )


GUARDED_MAZE_TABULAR = _study(
    "guarded-maze-tabular",
    "GuardedMaze-v0, 10 seeds per method: the mean under the sampler with a tabular policy "
    "(a linear policy on the one-hot cell alone) and no clipping, as the exact Adam ascent, "
    "at 80 and 320 episodes per update (reports/guarded-maze)",
    _tabular_runs(),
)


def _scale_runs() -> tuple[RunSpec, ...]:
    return (
        _run(
            "rloo_tilt50_tabular_noclip_g64",
            MEAN_TILT,
            TABULAR,
            "num_groups=64 budget.total=16000000",
        ),
        _run("rloo_tilt50_tabular_noclip_x4", MEAN_TILT, TABULAR, "budget.total=4000000"),
    )


GUARDED_MAZE_SCALE = _study(
    "guarded-maze-scale",
    "GuardedMaze-v0, 10 seeds per method: the tabular mean learner under the sampler with 16x "
    "the episodes per update (310 updates) or 4x the updates (80 episodes each; "
    "reports/guarded-maze)",
    _scale_runs(),
)

GUARDED_MAZE = _study(
    "guarded-maze",
    "GuardedMaze-v0, 10 seeds per method: the mean, CVaR-PG, lower-tail OrderGrad and its "
    "mean-to-tail and entropy remedies (reports/guarded-maze)",
    _runs(),
)
