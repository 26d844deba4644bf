"""The LM sweeps: the runs behind reports/lm/RESULTS.md, one per section (``lm-default``,
``lm-study``, ``lm-length``, ``lm-grid``, ``lm-lr``, ``lm-learning``, ``lm-speed``).

``ordergrad-jax sweep lm-study --jobs 2 --keep reports/lm/study`` makes a section's runs under
``results/lm-study`` and keeps what the document reads: an ``lm-rl`` run cut to ``curve.jsonl``
(:func:`ordergrad_experiments.lm.curate_run`) or copied whole (the grid and lr sections); a
diagnostic (``lm-diagnose``) as its rows appended to the section's file (``starts.jsonl``, ...).
Every run made before 2026-12-02 used XLA:CPU's default learn kernels: :data:`NOFUSE` keeps them
reproducible to the bit (the fused learner, now the default ``learn_cpu_fusions``, gives the same
values to float rounding, which sampling then amplifies). Wall time of each sweep on the
project's 2-core CPU (one job): default ~25 min, study ~65 min (2 jobs), length ~75 min
(2 jobs), grid ~11 min (3 jobs), lr ~3 min, learning ~30 min, speed ~5 min.
"""

from __future__ import annotations

import dataclasses
import functools

import ordergrad_jax as og
from ordergrad_experiments.lm import LMConfig, curate_run
from ordergrad_experiments.sweeps import keep as keeps
from ordergrad_experiments.sweeps.control import sets
from ordergrad_experiments.sweeps.spec import RunSpec, Sweep, register

NOFUSE = "learn_cpu_fusions="
"""XLA:CPU's default learn kernels (the runs made before the fused learner became the default)."""
OLD_START = "sft_steps=1000 sft_smoothing=0"
"""The old SFT start (1000 steps, no label smoothing): the grid, lr and learning sections."""
OLD = f"{OLD_START} sft_cache={{out}}/sft-old {NOFUSE}"
"""The old start from its cache, with the default kernels (the pin the old run scripts repeated)."""
DEFAULT = f"sft_cache={{out}}/sft {NOFUSE}"
"""The default start from its cache, with the default kernels."""


def budget(total: int, num_chunks: int) -> str:
    """The overrides of an lm-rl training budget: ``total`` RL steps in ``num_chunks`` chunks."""
    return f"budget.total={total} budget.num_chunks={num_chunks}"


GRPO = "estimator.name=grpo"
RLOO = "estimator.name=rloo"
TOP2AT4 = "estimator.name=ordergrad k=4 objective=TopM:2"

STUDY_METHODS = {
    "grpo": GRPO,
    "rloo": RLOO,
    "drgrpo": "estimator.name=dr_grpo",
    "maxpo4": "estimator.name=maxpo k=4",
    "top1at4": "estimator.name=ordergrad k=4 objective=TopM:1",
    "top2at4": TOP2AT4,
    "top3at4": "estimator.name=ordergrad k=4 objective=TopM:3",
    "remax8": "estimator.name=ordergrad k=8 objective=ReMax",
    "pkpo4": "estimator.name=pkpo k=4",
    "chen4": "estimator.name=passk_chen k=4",
    "bot2at4": "estimator.name=ordergrad k=4 objective=BotM:2",
}
"""The pass@k study's methods, in table order: id -> overrides."""

GRID_METHODS = {
    "grpo": GRPO,
    "rloo": RLOO,
    "maxpo4": "estimator.name=maxpo k=4",
    "top2at4": TOP2AT4,
    "pass8": "estimator.name=ordergrad k=8 objective=ReMax",
    "bot2at4": "estimator.name=ordergrad k=4 objective=BotM:2",
}
"""The 50-step grid's methods: id -> overrides."""

LENGTH_METHODS = {"grpo": GRPO, "top2at4": TOP2AT4}
LENGTH_ARMS = ((0.2, (0, 1, 2, 3, 4)), (0.5, (0, 1, 2)), (0, (0,)))
"""(length penalty, seeds): the penalty 0.2 on 5 seeds, then 0.5 on 3, and no penalty (the
control, one seed for lack of machine time)."""


def label(method: str) -> str:
    """The display label of a method given by its overrides (``"estimator.name=maxpo k=4"``;
    unset fields as ``lm-rl``'s defaults), from its estimator's spec (``og.estimators``)."""
    est = LMConfig().estimator
    kv = dict(item.split("=", 1) for item in method.split())
    params = {"k": int(kv.get("k", est.k)), "objective": kv.get("objective", est.objective)}
    return og.estimators.spec(kv.get("estimator.name", est.name)).label(**params)


def labels(methods: dict[str, str]) -> dict[str, str]:
    """Method id -> label, in the methods' (table) order."""
    return {m: label(overrides) for m, overrides in methods.items()}


DEFAULT_METHODS = {"grpo": GRPO, "rloo": RLOO, "top2at4": ""}
"""The default setting's methods (``top2at4``: the default estimator)."""
LENGTH_LABELS = {
    f"{m}-lp{lp}": f"{label(o)}, {f'penalty {lp}' if lp else 'no penalty'}"
    for lp in (0.2, 0, 0.5)  # the table's order
    for m, o in LENGTH_METHODS.items()
}
"""The length comparison's arms (run-id prefix) -> label, in table order."""


def lm_rl(run_id: str, *parts: str, seed: int | None = None, **fields) -> RunSpec:
    """A run of ``ordergrad-jax run lm-rl`` with the overrides of ``parts``."""
    return RunSpec(run_id, "lm-rl", sets(" ".join(parts)), seed=seed, **fields)


def diagnose(run_id: str, file: str, *parts: str, stage: int = 1) -> RunSpec:
    """An ``lm-diagnose`` run whose rows ``--keep`` appends to ``file`` (several runs may share
    one file, in the sweep's order)."""
    return RunSpec(
        run_id,
        "lm-diagnose",
        sets(" ".join(parts)),
        stage=stage,
        keep=keeps.append_rows,
        kept_as=file,
    )


AS_WRITTEN = keeps.files("config.json", "metrics.jsonl", "summary.md")
"""Keeps a run's files as written (the grid's and the learning-rate runs' tables read them)."""


def curated(every: int = 1):
    """Keeps an lm-rl run cut to ``curve.jsonl`` (every ``every``-th RL step)."""
    return functools.partial(curate_run, every=every)


def _default() -> tuple[RunSpec, ...]:
    scales = "mode=sharpen scales=2,3,10"
    trial = "mode=trial trial_steps=200 eval_every=50"
    levers = [
        ("levers-64x4", "num_groups=64 group_size=4 opts=adam:lr=2e-5,adam:lr=6e-5"),
        ("levers-32x8", "num_groups=32 group_size=8 opts=adam:lr=2e-5"),
        ("levers-ppo4", "ppo_epochs=4 opts=adam:lr=2e-5"),
    ]
    runs = [  # the three SFT starts first, each filling its own cache (stage 0)
        diagnose("starts-old", "starts.jsonl", scales, GRPO, OLD, stage=0),
        diagnose("starts-default", "starts.jsonl", scales, GRPO, DEFAULT, stage=0),
        diagnose(
            "starts-clean",
            "starts.jsonl",
            scales,
            GRPO,
            f"sft_steps=2000 sft_smoothing=0 sft_cache={{out}}/sft-clean {NOFUSE}",
            stage=0,
        ),
        diagnose(
            "trial-smoothed-start",
            "trial-smoothed-start.jsonl",
            "mode=trial opts=adam:lr=1e-4 trial_steps=300 eval_every=50",
            GRPO,
            DEFAULT,
        ),
        *(diagnose(i, "old-start-levers.jsonl", trial, GRPO, OLD, lever) for i, lever in levers),
        # (the committed REINFORCE control at 1e-4 was stopped after its step-50 evaluation)
        diagnose(
            "levers-reinforce",
            "old-start-levers.jsonl",
            trial,
            "estimator.name=reinforce",
            OLD,
            "num_groups=64 group_size=4 opts=adam:lr=3e-4,adam:lr=1e-4",
        ),
    ]
    kw = {"stage": 1, "keep": curated()}
    for seed in (0, 1, 2):
        runs += [
            lm_rl(f"grpo-s{seed}", DEFAULT, GRPO, seed=seed, **kw),
            lm_rl(f"top2at4-s{seed}", DEFAULT, seed=seed, **kw),
            lm_rl(f"rloo-s{seed}", DEFAULT, RLOO, seed=seed, **kw),
        ]
    runs.append(
        lm_rl(
            "long-grpo-1500",
            DEFAULT,
            GRPO,
            budget(1500, 15),
            seed=0,
            stage=1,
            keep=curated(10),
        )
    )
    for seed in (0, 1, 2):  # the fused learner (the default learn_cpu_fusions)
        runs += [
            lm_rl(f"grpo-fused-s{seed}", "sft_cache={out}/sft", GRPO, seed=seed, **kw),
            lm_rl(f"top2at4-fused-s{seed}", "sft_cache={out}/sft", seed=seed, **kw),
            lm_rl(f"rloo-fused-s{seed}", "sft_cache={out}/sft", RLOO, seed=seed, **kw),
        ]
    return tuple(runs)


def _lr() -> tuple[RunSpec, ...]:
    runs = []
    for est in ("grpo", "rloo"):
        runs += [
            lm_rl(f"{est}-lr1e-3", OLD, f"estimator.name={est} lr=1e-3", budget(80, 8)),
            lm_rl(f"{est}-lr3e-4", OLD, f"estimator.name={est} lr=3e-4", budget(60, 6)),
        ]
    # the first run fills the old start's cache before the others read it
    return tuple(dataclasses.replace(r, seed=0, stage=int(i > 0)) for i, r in enumerate(runs))


def _learning() -> tuple[RunSpec, ...]:
    g = f"{GRPO} {OLD}"
    trial = "mode=trial"
    return (
        diagnose("grads", "grads.jsonl", "mode=grads batches=16", g, stage=0),
        diagnose("line", "line.jsonl", "mode=line batches=16 distances=0.015,0.05,0.15", g),
        diagnose("sharpen", "sharpen.jsonl", "mode=sharpen scales=1.25,1.5,2,3", OLD),
        diagnose(
            "trials-300steps",
            "trials-300steps.jsonl",
            trial,
            g,
            "opts=adam:lr=1e-4,adam:lr=2e-5,ngd:lr=0.003 trial_steps=300 eval_every=50",
        ),
        diagnose(
            "trial-64x16",
            "trial-64x16.jsonl",
            trial,
            g,
            "num_groups=64 opts=adam:lr=1e-4 trial_steps=150 eval_every=50",
        ),
        diagnose(
            "trials-60steps",
            "trials-60steps.jsonl",
            trial,
            g,
            "opts=adam:lr=1e-4,embed=0,sgd:lr=0.01,ngd:lr=0.003,adam:lr=2e-5",
            "trial_steps=60 eval_every=30",
        ),
        lm_rl("grpo-lr2e-5-1200", g, "lr=2e-5", budget(1200, 12), seed=0, stage=1),
        lm_rl("top2at4-lr2e-5-600", OLD, "lr=2e-5", budget(600, 6), seed=0, stage=1),
        lm_rl("rloo-lr2e-5-600", OLD, RLOO, "lr=2e-5", budget(600, 6), seed=0, stage=1),
    )


def _speed() -> tuple[RunSpec, ...]:
    """The step-time split on 1 device and on 8 simulated devices (4 x 2 mesh) at the default
    size; at the pass@k study's size (3-digit addition) three repeats on 1 device, then 2
    devices (one per core, data parallel) and 8 (4 x 2); each also splits the learn phase's
    operation time (profile); then 3 repeats on 1 device without the learn phase's YNNPACK
    fusions (XLA:CPU's default kernels). One at a time (a stage each): they are timings."""
    cases = [
        (1, "1,1", "1dev-1x1", ""),
        (8, "4,2", "8dev-4x2", ""),
        *((1, "1,1", f"study-1dev-r{r}", "digits=3") for r in (1, 2, 3)),
        (2, "2,1", "study-2dev-2x1", "digits=3"),
        (8, "4,2", "study-8dev-4x2", "digits=3"),
        *((1, "1,1", f"study-1dev-nofusion-r{r}", f"digits=3 {NOFUSE}") for r in (1, 2, 3)),
    ]
    return tuple(
        RunSpec(
            run_id,
            "bench:lm-speed",
            sets(f"mesh={mesh} {extra}"),
            env={
                "XLA_FLAGS": f"--xla_force_host_platform_device_count={n} "
                "--xla_cpu_enable_xprof_traceme=true"
            },
            stage=stage,
        )
        for stage, (n, mesh, run_id, extra) in enumerate(cases)
    )


def _sft_and_runs(methods: dict[str, str], seeds_of, keep_sft: bool, keep) -> list[RunSpec]:
    """The SFT start alone first (``sft``, one RL step, filling the shared cache: stage 0),
    then each method x seed (stage 1)."""
    runs = [lm_rl("sft", budget(1, 1), keep=keep_sft)]
    for seed, prefix, extra in seeds_of:
        for m, overrides in methods.items():
            runs.append(
                lm_rl(f"{m}{prefix}-s{seed}", overrides, extra, seed=seed, stage=1, keep=keep)
            )
    return runs


STUDY_TASK = (
    "digits=3 num_heldout=1024 eval_prompts=1024 eval_samples=32 pass_ks=1,2,4,8,16,32"
    f" {budget(300, 3)} sft_cache={{out}}/sft {NOFUSE}"
)
LENGTH_TASK = (
    "digits=3 scratchpad=0.5 num_heldout=1024 eval_prompts=1024 eval_samples=8 pass_ks=1,2,4,8"
    f" {budget(300, 6)} sft_cache={{out}}/sft {NOFUSE}"
)
GRID_SETTINGS = f"{OLD_START} lr=1e-4 {budget(50, 2)} {NOFUSE} sft_cache={{out}}/sft"


def _length() -> tuple[RunSpec, ...]:
    arms = [(s, f"-lp{lp}", f"length_penalty={lp}") for lp, seeds in LENGTH_ARMS for s in seeds]
    runs = _sft_and_runs(LENGTH_METHODS, arms, False, curated(25))
    # then each run's final held-out completions split by form (direct or scratchpad first)
    folders = ",".join(f"{{out}}/lm-rl/{r.id}" for r in sorted(runs[1:], key=lambda r: r.id))
    forms = RunSpec(
        "forms", "lm-diagnose", ("mode=forms", f"runs={folders}"), stage=2, keep=keeps.write_rows
    )
    return (*runs, dataclasses.replace(forms, kept_as="forms.jsonl"))


DEFAULT_SWEEP = register(
    Sweep(
        "lm-default",
        "the default setting: the SFT starts, the controlled trial, the old start's levers, "
        "GRPO/RLOO/TopM:2@4 x 3 seeds with XLA's default kernels and with the fused learner, a "
        "1,500-step run",
        _default(),
        labels=labels(DEFAULT_METHODS),
        documents=("reports/lm/default",),
    )
)
STUDY = register(
    Sweep(
        "lm-study",
        "the pass@k study: 11 methods x 5 seeds x 300 steps on 3-digit addition from one SFT "
        "start (run with --jobs 2)",
        tuple(_sft_and_runs(STUDY_METHODS, [(s, "", "") for s in range(5)], False, curated(25))),
        pins=sets(STUDY_TASK),
        labels=labels(STUDY_METHODS),
        documents=("reports/lm/study",),
    )
)
LENGTH = register(
    Sweep(
        "lm-length",
        "the length comparison: GRPO vs TopM:2@4 with a length penalty on the scratchpad task, "
        "then the completions' forms (run with --jobs 2)",
        _length(),
        pins=sets(LENGTH_TASK),
        labels=LENGTH_LABELS,
        documents=("reports/lm/length",),
    )
)
GRID = register(
    Sweep(
        "lm-grid",
        "the 50-step grid: 6 methods x 3 seeds from the old SFT start (run with --jobs 3)",
        tuple(
            _sft_and_runs(
                GRID_METHODS,
                [(s, "", "") for s in range(3)],
                True,
                AS_WRITTEN,
            )
        ),
        pins=sets(GRID_SETTINGS),
        labels=labels(GRID_METHODS),
        keep=AS_WRITTEN,
        documents=("reports/lm/grid",),
    )
)
LR = register(
    Sweep(
        "lm-lr",
        "learning rate before the grid: GRPO and RLOO at Adam 1e-3 and 3e-4 from the old start",
        _lr(),
        keep=AS_WRITTEN,
        documents=("reports/lm/lr",),
    )
)
LEARNING = register(
    Sweep(
        "lm-learning",
        "why RL did not learn from the old start: the diagnostics and three longer runs",
        _learning(),
        keep=curated(),
        documents=("reports/lm/learning",),
    )
)
SPEED = register(
    Sweep(
        "lm-speed",
        "the LM step's speed: time split, tokens/s, learner FLOP/s vs the dot peak, 1/2/8 "
        "devices, with and without the YNNPACK learn fusions (bench lm-speed)",
        _speed(),
        pins=sets("profile=True"),
        documents=("reports/lm/speed/lm-speed",),
    )
)
