"""The ``lm-rl`` experiment: SFT warm start, then group-sampled RL with any og.estimators advantage.

``ordergrad-jax run lm-rl --quick`` runs a tiny end-to-end SFT + RL on CPU; the defaults are the
CPU study size; ``--set checkpoint_dir=...`` loads a real Qwen3 checkpoint (accelerator job).
Training runs ``budget.total`` RL steps in ``budget.num_chunks`` chunks with a checkpoint after each
(``experiments/common/checkpoint.py``): the same ``--run-id`` resumes an interrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ordergrad_experiments.common.checkpoint import Checkpointer, train_in_chunks
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.lm import model as lm_model
from ordergrad_experiments.lm import rl, sft, tasks
from ordergrad_experiments.lm import sharding as lm_sharding
from ordergrad_experiments.lm.config import LMConfig
from ordergrad_experiments.lm.tokenizer import CharTokenizer


def validate(cfg: LMConfig, data_parallel: int) -> None:
    """Raises ValueError naming the offending field."""
    prompts, group = cfg.groups.num_groups, cfg.groups.group_size
    if group < 2:
        raise ValueError(f"group_size must be >= 2; got {group}")
    if prompts % data_parallel or cfg.eval_prompts % data_parallel:
        raise ValueError(
            f"num_groups ({prompts}) and eval_prompts ({cfg.eval_prompts}) "
            f"must be multiples of the data-parallel size {data_parallel} (mesh {cfg.mesh}), "
            "so each prompt's group stays on one shard"
        )
    total, chunks = cfg.budget.total, cfg.budget.num_chunks
    if total < 1 or chunks < 1 or cfg.ppo_epochs < 1:
        raise ValueError("budget.total, budget.num_chunks and ppo_epochs must be >= 1")
    if chunks > total:
        raise ValueError(
            f"budget.num_chunks ({chunks}) must be <= budget.total ({total}; RL steps)"
        )
    if cfg.eval_split not in ("heldout", "validation"):
        raise ValueError(f"eval_split must be 'heldout' or 'validation'; got {cfg.eval_split!r}")
    if cfg.eval_split == "validation" and cfg.task != "carry":
        raise ValueError("eval_split='validation' needs task='carry' (the task with that split)")
    if cfg.num_rl and cfg.task != "carry":
        raise ValueError("num_rl > 0 needs task='carry' (the task with an RL split)")
    if cfg.task == "carry" and cfg.sft_smoothing:
        raise ValueError(
            "task='carry' is the testbed whose start errs where the task is hard; label "
            f"smoothing (sft_smoothing={cfg.sft_smoothing}) would add uniform errors: set "
            "sft_smoothing=0"
        )
    pool = cfg.num_heldout if cfg.eval_split == "heldout" else cfg.num_validation
    if cfg.eval_prompts > pool:
        raise ValueError(
            f"eval_prompts ({cfg.eval_prompts}) must be <= the {cfg.eval_split} split's size "
            f"({pool})"
        )
    if not 0 <= cfg.count_samples <= 255:
        raise ValueError(f"count_samples must be in 0..255 (uint8 counts); got {cfg.count_samples}")
    if any(k < 1 or k > cfg.eval_samples for k in cfg.pass_ks):
        raise ValueError(f"pass_ks {cfg.pass_ks} must lie in 1..eval_samples={cfg.eval_samples}")
    rl.learn_compiler_options(cfg.learn_cpu_fusions)  # names an unknown fusion kind


def build_model(cfg: LMConfig, mesh):
    """``(tokenizer, graphdef, params)``: the tiny Qwen3 or, with ``checkpoint_dir``, a real
    checkpoint through ``experiments/lm/pretrained.py``; params placed with their shardings."""
    fsdp = "fsdp" if "fsdp" in mesh.axis_names else None
    shd = lm_model.sharding_config("model", fsdp)
    if cfg.checkpoint_dir:
        from ordergrad_experiments.lm import pretrained

        model, tok = pretrained.load(cfg.checkpoint_dir, mesh=mesh, shd_config=shd)
    else:
        tok = CharTokenizer()
        model = lm_model.tiny_qwen3(
            cfg.model, tok.vocab_size, jax.random.key(cfg.sft_seed), shd_config=shd
        )
    graphdef, params = lm_model.split(model)
    return tok, graphdef, lm_sharding.shard_params(params, mesh)


def _sft_key(cfg: LMConfig) -> str:
    fields = "digits ops num_train num_heldout task_seed checkpoint_dir"
    fields += " sft_seed sft_steps sft_batch sft_lr"
    settings = {f: getattr(cfg, f) for f in fields.split()}
    for late in ("sft_smoothing", "scratchpad"):  # absent when 0: older caches stay valid
        if getattr(cfg, late):
            settings[late] = getattr(cfg, late)
    if cfg.task != "arithmetic":  # likewise absent for the old task
        settings.update(task=cfg.task, carry_keep=cfg.carry_keep)
        settings["num_validation"] = cfg.num_validation
    # the same keys as when the model sizes were flat fields: old caches stay valid
    blob = json.dumps({**settings, **dataclasses.asdict(cfg.model)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def warm_start(
    cfg: LMConfig,
    graphdef,
    params,
    prompts,
    answers,
    pad_id: int,
    scratchpad: sft.Scratchpad | None = None,
):
    """SFT (``sft_steps`` steps; ``scratchpad``: the long form of the answers), or its cached
    result under ``sft_cache/<settings hash>``.
    Returns ``(params, {"sft_loss_first", "sft_loss_last", "sft_s", "sft_cached"})``."""
    folder = f"{cfg.sft_cache}/{_sft_key(cfg)}" if cfg.sft_cache else None
    if folder and (ckpt := Checkpointer(folder)).latest_step() is not None:
        restored, meta = ckpt.restore(params)
        ckpt.close()
        return restored, {**meta, "sft_cached": True}
    info = {"sft_cached": False, "sft_loss_first": math.nan, "sft_loss_last": math.nan}
    if cfg.sft_steps:
        tx = optax.adam(optax.cosine_decay_schedule(cfg.sft_lr, cfg.sft_steps, 0.1))
        fn = sft.make_sft(
            graphdef,
            tx,
            prompts,
            answers,
            pad_id,
            cfg.sft_batch,
            cfg.sft_steps,
            cfg.sft_smoothing,
            scratchpad,
        )
        tic = time.perf_counter()
        params, _, losses = fn(params, jax.jit(tx.init)(params), jax.random.key(cfg.sft_seed))
        losses = np.asarray(losses)
        info.update(
            sft_loss_first=float(losses[0]),
            sft_loss_last=float(losses[-10:].mean()),
            sft_s=time.perf_counter() - tic,
        )
    if folder:
        ckpt = Checkpointer(folder)
        ckpt.save(cfg.sft_steps, params, {k: v for k, v in info.items() if k != "sft_cached"})
        ckpt.close()
    return params, info


def setup(
    cfg: LMConfig, tok, max_len: int, scratch_ids: tuple[int, int] | None = None
) -> rl.StepSetup:
    """The RL step's static setup: the config and what is derived from it once."""
    return rl.StepSetup(
        config=cfg,
        estimator=cfg.estimator.resolve(cfg.groups.group_size),
        max_len=max_len,
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
        scratch_ids=scratch_ids,
    )


def initial_state(cfg: LMConfig, params, tx, mesh) -> rl.RLState:
    """The RL state at step 0 on ``mesh`` (a copy of ``params`` as the KL reference)."""
    state = rl.RLState(
        params=params,
        opt_state=lm_sharding.init_opt_state(tx, params, mesh),
        key=jax.random.key(cfg.seed),
        step=jnp.zeros((), jnp.int32),
    )
    state = lm_sharding.on_mesh(state, mesh)
    if cfg.kl_coef:
        state = state._replace(ref_params=jax.tree.map(jnp.copy, params))
    return state


class TaskSetup(NamedTuple):
    """The task's arrays and the RL step's setup, derived once from the config."""

    task: tasks.ArithmeticTask
    train: tuple[np.ndarray, np.ndarray]
    """The SFT pool: prompts ``[M, Lp]``, answers ``[M, La]``."""
    rl: tuple[np.ndarray, np.ndarray]
    """RL's prompt pool: the carry task's ``rl`` split where ``num_rl > 0``, else the SFT pool."""
    heldout: tuple[np.ndarray, np.ndarray]
    """The first ``eval_prompts`` prompts and answers of ``eval_split`` (held-out by default)."""
    step: rl.StepSetup
    scratchpad: sft.Scratchpad | None
    """The SFT targets' long form on the scratchpad task, else ``None``."""


def task_setup(cfg: LMConfig, tok) -> TaskSetup:
    """The task of ``cfg`` (with the scratchpad where ``cfg.scratchpad > 0``: completions long
    enough for it, its brackets for the checker, the long SFT targets), its arrays and the RL
    step's setup."""
    if cfg.task == "carry":
        from ordergrad_experiments.lm.testbed import CarryTask

        task = CarryTask(
            cfg.digits, cfg.ops, cfg.num_train, cfg.num_heldout, cfg.task_seed,
            carry_keep=cfg.carry_keep, num_validation=cfg.num_validation, num_rl=cfg.num_rl,
        )  # fmt: skip
    elif cfg.task == "arithmetic":
        task = tasks.ArithmeticTask(
            cfg.digits, cfg.ops, cfg.num_train, cfg.num_heldout, cfg.task_seed, cfg.scratchpad > 0
        )
    else:
        raise ValueError(f"task must be 'arithmetic' or 'carry'; got {cfg.task!r}")
    train = task.arrays("train", tok)
    rl_pool = task.arrays("rl", tok) if cfg.num_rl else train
    held_p, held_a = task.arrays(cfg.eval_split, tok)
    held = (held_p[: cfg.eval_prompts], held_a[: cfg.eval_prompts])
    if not task.scratchpad:
        return TaskSetup(task, train, rl_pool, held, setup(cfg, tok, train[1].shape[1] + 1), None)
    scratch_ids = task.scratch_ids(tok)
    long_a = task.scratch_answers("train", tok)
    scratchpad = sft.Scratchpad(long_a, cfg.scratchpad, scratch_ids[1])
    step = setup(cfg, tok, long_a.shape[1] + 1, scratch_ids)
    return TaskSetup(task, train, rl_pool, held, step, scratchpad)


def rl_start(cfg: LMConfig, graphdef, params, ts: TaskSetup, mesh) -> tuple[rl.RLState, rl.Phases]:
    """The RL state starting from ``params`` (:func:`initial_state`, Adam over ``budget.total x
    ppo_epochs`` updates) and the step's jitted phases on ``mesh`` (:func:`rl.make_phases`)."""
    tx = cfg.optim.make(cfg.budget.total * cfg.ppo_epochs)
    state = initial_state(cfg, params, tx, mesh)
    phases = rl.make_phases(
        graphdef,
        tx,
        *ts.rl,
        ts.step,
        mesh,
        lm_sharding.shardings_of(state.params),
        lm_sharding.shardings_of(state.opt_state),
    )
    return state, phases


def learner_flops(cfg: LMConfig, graphdef, params, seq_len: int) -> float:
    """FLOPs of one learn phase (``3 x`` forward FLOPs per token x tokens x ``ppo_epochs``)."""
    flops_tok = lm_model.flops_per_token(params, seq_len, graphdef_config(graphdef, params))
    batch_tokens = cfg.groups.num_groups * cfg.groups.group_size * seq_len
    return 3 * flops_tok * batch_tokens * cfg.ppo_epochs


def sft_row(
    cfg: LMConfig,
    graphdef,
    params,
    task_arrays,
    pad_id: int,
    evaluate,
    eval_key,
    mesh,
    scratchpad: sft.Scratchpad | None = None,
):
    """The SFT warm start (or its cache) and its held-out evaluation: ``(params, row)``."""
    train_p, train_a = task_arrays
    params, info = warm_start(cfg, graphdef, params, train_p, train_a, pad_id, scratchpad)
    params = lm_sharding.shard_params(params, mesh)
    ev = rl.as_numpy(evaluate(params, jax.random.fold_in(eval_key, 0)))
    return params, {"phase": "sft", "step": 0, **info, **{k: float(v) for k, v in ev.items()}}


def make_chunk(cfg: LMConfig, phases: rl.Phases, evaluate, eval_key, flops: float):
    """``chunk(state) -> (state, rows)``: the RL steps up to the chunk's end (chunk ``c`` ends
    at step ``(c + 1) * budget.total // budget.num_chunks``), one metric row per step with its
    time split, and a held-out evaluation after the chunk's last step."""
    total, chunks = cfg.budget.total, cfg.budget.num_chunks
    ends = [(c + 1) * total // chunks for c in range(chunks)]
    seconds: dict[str, float] = {}
    step = functools.partial(rl.train_step, rl.timed(phases, seconds), ks=cfg.pass_ks)

    def chunk(state: rl.RLState):
        rows = []
        end = next(e for e in ends if e > int(state.step))
        while int(state.step) < end:
            state, metrics = step(state)
            row = {k: float(v) for k, v in metrics.items()}
            gen = row["completion_tokens"]
            row.update(
                phase="rl",
                step=int(state.step),
                **{k: seconds[k] for k in ("sample_s", "score_s", "advantage_s", "learn_s")},
                step_s=seconds["step_s"],
                tokens_per_s=gen / seconds["step_s"],
                learner_flops_per_s=flops / seconds["learn_s"],
            )
            rows.append(row)
        ev = rl.as_numpy(evaluate(state.params, jax.random.fold_in(eval_key, int(state.step))))
        rows[-1].update({f"heldout_{k}": float(v) for k, v in ev.items()})
        return state, rows

    return chunk


def run(cfg: LMConfig, writer: RunWriter, progress: Callable | None = None) -> list[dict]:
    """SFT warm start, held-out evaluation, then ``budget.total`` RL steps in checkpointed chunks.

    On several processes (``cfg.cluster``, joined by the CLI before any JAX call) every process
    runs this same function on its own devices: the mesh spans all of them, each process builds
    only its rows of every batch (``rl`` module doc), orbax writes the checkpoints together and
    only process 0 writes files (``writer.primary``)."""
    if cfg.cluster.enabled and not jax.distributed.is_initialized():
        raise ValueError(
            "cluster settings given but no JAX cluster joined: call "
            "ordergrad_experiments.common.cluster.start(cfg.cluster) before any other JAX call "
            "(ordergrad-jax run does)"
        )
    mesh = lm_sharding.make_mesh(cfg.mesh)
    validate(cfg, lm_sharding.data_parallel_size(mesh))
    writer.write_config(
        cfg,
        jax=jax.__version__,
        devices=[str(d) for d in jax.devices()],
        process_count=jax.process_count(),
    )
    tok, graphdef, params = build_model(cfg, mesh)
    ts = task_setup(cfg, tok)
    s = ts.step
    evaluate = rl.make_evaluate(graphdef, *ts.heldout, s, cfg.eval_samples, cfg.pass_ks, mesh)
    eval_key = jax.random.key(cfg.seed + 1_000_003)

    ckpt = Checkpointer(writer.path / "checkpoints")
    resuming = ckpt.latest_step() is not None
    ckpt.close()
    if not resuming:
        params, row = sft_row(
            cfg, graphdef, params, ts.train, tok.pad_id, evaluate, eval_key, mesh, ts.scratchpad
        )
        writer.log([row])

    record = counts_recorder(cfg, graphdef, ts, writer)
    if not resuming:
        record(0, params)
    state, phases = rl_start(cfg, graphdef, params, ts, mesh)
    flops = learner_flops(cfg, graphdef, state.params, ts.train[0].shape[1] + s.max_len)
    chunk = make_chunk(cfg, phases, evaluate, eval_key, flops)

    def log(c, st, rows):
        record(int(st.step), st.params)
        return rows

    train_in_chunks(state, chunk, cfg.budget.num_chunks, writer, log, progress)
    rows = writer.metrics
    writer.write_summary(summary(cfg, rows, s.estimator.label()))
    write_figures(cfg, writer, rows)
    return rows


def counts_recorder(cfg: LMConfig, graphdef, ts: TaskSetup, writer: RunWriter):
    """``record(step, params)``: with ``count_samples`` > 0, the held-out per-prompt counts at
    ``step`` appended to ``counts.npz`` (``testbed.py``); else nothing."""
    if not cfg.count_samples:
        return lambda step, params: None
    if jax.process_count() > 1:
        raise ValueError("count_samples > 0 is implemented for one process only")
    from ordergrad_experiments.lm import testbed

    count = testbed.make_count(graphdef, *ts.heldout, ts.step, cfg.count_samples)
    ids = np.arange(ts.heldout[0].shape[0])

    def record(step: int, params) -> None:
        counts = count(params, step)
        if writer.primary:
            testbed.append_counts(writer.path / "counts.npz", step, counts, ids, cfg.count_samples)

    return record


def write_figures(cfg: LMConfig, writer: RunWriter, rows: list[dict]) -> None:
    try:
        from ordergrad_experiments.lm import plots

        for stem, fig in plots.figures(rows, cfg.pass_ks).items():
            writer.save_figure(fig, stem)
    except Exception as err:  # figures are a convenience; the metrics are written
        print(f"lm-rl: figures skipped ({err})")


def graphdef_config(graphdef, params):
    """The tunix ModelConfig of a split model (sizes for the FLOP count)."""
    from flax import nnx

    return nnx.merge(graphdef, params).config


def summary(cfg: LMConfig, rows: list[dict], method: str) -> str:
    """Markdown: held-out pass@k after SFT and after RL, and the step-time split."""
    first = next(r for r in rows if r.get("phase") == "sft")
    evals = [r for r in rows if "heldout_pass@1" in r]
    last = evals[-1] if evals else {}
    ks = [k for k in cfg.pass_ks if k <= cfg.eval_samples]
    table = [
        {"when": "after SFT", **{f"pass@{k}": first.get(f"pass@{k}") for k in ks}},
        {"when": "after RL", **{f"pass@{k}": last.get(f"heldout_pass@{k}") for k in ks}},
    ]
    rl_rows = [r for r in rows if r.get("phase") == "rl" and not r.get("first_in_process")]
    timing = ""
    if rl_rows:
        mean = {
            k: float(np.mean([r[k] for r in rl_rows]))
            for k in ("sample_s", "score_s", "advantage_s", "learn_s", "step_s", "tokens_per_s")
        }
        timing = markdown_table([mean])
    p, n = cfg.groups.num_groups, cfg.groups.group_size
    return (
        f"# lm-rl: {method}, {cfg.budget.total} steps, P={p} N={n}\n\n"
        f"Held-out pass@k ({cfg.eval_prompts} prompts x {cfg.eval_samples} samples):\n\n"
        f"{markdown_table(table)}\n\nStep time split (s, steady state):\n\n{timing}\n"
    )


def config_dict(cfg: LMConfig) -> dict:
    return dataclasses.asdict(cfg)
