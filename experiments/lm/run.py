"""The ``lm-rl`` experiment: SFT warm start, then group-sampled RL with any og.estimators advantage.

``ordergrad-jax run lm-rl --quick`` runs a tiny end-to-end SFT + RL on CPU; the defaults are the
CPU study size; ``--set checkpoint_dir=...`` loads a real Qwen3 checkpoint (accelerator job).
Training runs in jitted chunks of ``steps_per_chunk`` RL steps with a checkpoint after each
(``experiments/common/checkpoint.py``): the same ``--run-id`` resumes an interrupted run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.common.checkpoint import Checkpointer, train_in_chunks
from experiments.common.runs import RunWriter, markdown_table
from experiments.lm import model as lm_model
from experiments.lm import rl, sft, tasks
from experiments.lm import sharding as lm_sharding
from experiments.lm.config import LMConfig
from experiments.lm.tokenizer import CharTokenizer


def validate(cfg: LMConfig, data_parallel: int) -> None:
    """Raises ValueError naming the offending field."""
    if cfg.group_size < 2:
        raise ValueError(f"group_size must be >= 2; got {cfg.group_size}")
    if cfg.prompts_per_step % data_parallel or cfg.eval_prompts % data_parallel:
        raise ValueError(
            f"prompts_per_step ({cfg.prompts_per_step}) and eval_prompts ({cfg.eval_prompts}) "
            f"must be multiples of the data-parallel size {data_parallel} (mesh {cfg.mesh}), "
            "so each prompt's group stays on one shard"
        )
    if cfg.steps < 1 or cfg.steps_per_chunk < 1 or cfg.ppo_epochs < 1:
        raise ValueError("steps, steps_per_chunk and ppo_epochs must be >= 1")
    if cfg.eval_prompts > cfg.num_heldout:
        raise ValueError(
            f"eval_prompts ({cfg.eval_prompts}) must be <= num_heldout ({cfg.num_heldout})"
        )
    if any(k < 1 or k > cfg.eval_samples for k in cfg.pass_ks):
        raise ValueError(f"pass_ks {cfg.pass_ks} must lie in 1..eval_samples={cfg.eval_samples}")


def build_model(cfg: LMConfig, mesh):
    """``(tokenizer, graphdef, params)``: the tiny Qwen3 or, with ``checkpoint_dir``, a real
    checkpoint through ``experiments/lm/pretrained.py``; params placed with their shardings."""
    fsdp = "fsdp" if "fsdp" in mesh.axis_names else None
    shd = lm_model.sharding_config("model", fsdp)
    if cfg.checkpoint_dir:
        from experiments.lm import pretrained

        model, tok = pretrained.load(cfg.checkpoint_dir, mesh=mesh, shd_config=shd)
    else:
        tok = CharTokenizer()
        sizes = lm_model.TinyQwen3(
            cfg.num_layers,
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.num_heads,
            cfg.num_kv_heads,
            cfg.head_dim,
        )
        model = lm_model.tiny_qwen3(
            sizes, tok.vocab_size, jax.random.key(cfg.sft_seed), shd_config=shd
        )
    graphdef, params = lm_model.split(model)
    return tok, graphdef, lm_sharding.shard_params(params, mesh)


def _sft_key(cfg: LMConfig) -> str:
    fields = (
        "digits ops num_train num_heldout task_seed num_layers embed_dim hidden_dim num_heads "
        "num_kv_heads head_dim checkpoint_dir sft_seed sft_steps sft_batch sft_lr"
    ).split()
    blob = json.dumps({f: getattr(cfg, f) for f in fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def warm_start(cfg: LMConfig, graphdef, params, prompts, answers, pad_id: int):
    """SFT (``sft_steps`` steps), or its cached result under ``sft_cache/<settings hash>``.
    Returns ``(params, {"sft_loss_first", "sft_loss_last", "sft_s", "sft_cached"})``."""
    folder = f"{cfg.sft_cache}/{_sft_key(cfg)}" if cfg.sft_cache else None
    if folder and (ckpt := Checkpointer(folder)).latest_step() is not None:
        restored, meta = ckpt.restore(params)
        ckpt.close()
        return restored, {**meta, "sft_cached": True}
    info = {"sft_cached": False, "sft_loss_first": math.nan, "sft_loss_last": math.nan}
    if cfg.sft_steps:
        tx = optax.adam(optax.cosine_decay_schedule(cfg.sft_lr, cfg.sft_steps, 0.1))
        fn = sft.make_sft(graphdef, tx, prompts, answers, pad_id, cfg.sft_batch, cfg.sft_steps)
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


def settings(cfg: LMConfig, tok, max_len: int, canonical: str) -> rl.Settings:
    return rl.Settings(
        prompts=cfg.prompts_per_step,
        group=cfg.group_size,
        max_len=max_len,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        ppo_epochs=cfg.ppo_epochs,
        clip_eps=cfg.clip_eps,
        kl_coef=cfg.kl_coef,
        length_penalty=cfg.length_penalty,
        scale=rl.gradient_scale(canonical, cfg.k, cfg.group_size),
        eos_id=tok.eos_id,
        pad_id=tok.pad_id,
    )


def run(cfg: LMConfig, writer: RunWriter, progress: Callable | None = None) -> list[dict]:
    """SFT warm start, held-out evaluation, then ``steps`` RL steps in checkpointed chunks."""
    if cfg.multihost:
        jax.distributed.initialize()
    mesh = lm_sharding.make_mesh(cfg.mesh)
    validate(cfg, lm_sharding.data_parallel_size(mesh))
    est_fn, canonical = rl.estimator(cfg.estimator, cfg.k, cfg.objective, cfg.cvar_alpha)
    writer.write_config(
        cfg,
        jax=jax.__version__,
        devices=[str(d) for d in jax.devices()],
        process_count=jax.process_count(),
    )
    tok, graphdef, params = build_model(cfg, mesh)
    task = tasks.ArithmeticTask(cfg.digits, cfg.ops, cfg.num_train, cfg.num_heldout, cfg.task_seed)
    train_p, train_a = task.arrays("train", tok)
    held_p, held_a = task.arrays("heldout", tok)
    held_p, held_a = held_p[: cfg.eval_prompts], held_a[: cfg.eval_prompts]
    s = settings(cfg, tok, max_len=train_a.shape[1] + 1, canonical=canonical)
    evaluate = rl.make_evaluate(graphdef, held_p, held_a, s, cfg.eval_samples, cfg.pass_ks, mesh)
    eval_key = jax.random.key(cfg.seed + 1_000_003)

    resuming = Checkpointer(writer.path / "checkpoints").latest_step() is not None
    rows: list[dict] = []
    if not resuming:
        params, info = warm_start(cfg, graphdef, params, train_p, train_a, tok.pad_id)
        params = lm_sharding.shard_params(params, mesh)
        ev = rl.as_numpy(evaluate(params, jax.random.fold_in(eval_key, 0)))
        rows.append({"phase": "sft", "step": 0, **info, **{k: float(v) for k, v in ev.items()}})
        writer.log(rows)

    param_sh = lm_sharding.shardings_of(params)
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.adam(cfg.lr))
    state = {
        "params": params,
        "opt_state": lm_sharding.init_opt_state(tx, params, mesh),
        "key": jax.random.key(cfg.seed),
        "step": jnp.zeros((), jnp.int32),
    }
    state = lm_sharding.on_mesh(state, mesh)
    if cfg.kl_coef:
        state["ref_params"] = jax.tree.map(jnp.copy, params)
    adv_j = lm_sharding.advantage_step(est_fn, mesh)
    opt_sh = lm_sharding.shardings_of(state["opt_state"])
    sample_j, score_j, learn_j = rl.make_step_fns(
        graphdef, tx, train_p, train_a, s, mesh, param_sh, opt_sh
    )
    seq_len = train_p.shape[1] + s.max_len
    flops_tok = lm_model.flops_per_token(params, seq_len, graphdef_config(graphdef, params))
    batch_tokens = cfg.prompts_per_step * cfg.group_size * seq_len

    def chunk_fn(state):
        state = dict(state)
        out = []
        for _ in range(cfg.steps_per_chunk):
            t0 = time.perf_counter()
            key, k_step = jax.random.split(state["key"])
            rollout = jax.block_until_ready(sample_j(state["params"], k_step))
            t1 = time.perf_counter()
            ref = state.get("ref_params", state["params"])
            scored = jax.block_until_ready(score_j(state["params"], ref, rollout))
            t2 = time.perf_counter()
            adv = jax.block_until_ready(adv_j(scored.rewards))
            t3 = time.perf_counter()
            params, opt_state, lm = learn_j(
                state["params"], state["opt_state"], rollout, adv, scored.old_logp, scored.ref_logp
            )
            jax.block_until_ready(params)
            t4 = time.perf_counter()
            state.update(params=params, opt_state=opt_state, key=key, step=state["step"] + 1)
            gen = float(jnp.sum(rollout.completion_mask))
            row = rl.step_metrics(scored, adv, rl.as_numpy(lm), cfg.pass_ks)
            learn_s = t4 - t3
            row.update(
                phase="rl",
                step=int(state["step"]),
                sample_s=t1 - t0,
                score_s=t2 - t1,
                advantage_s=t3 - t2,
                learn_s=learn_s,
                step_s=t4 - t0,
                tokens_per_s=gen / (t4 - t0),
                completion_tokens=gen,
                learner_flops_per_s=3 * flops_tok * batch_tokens * cfg.ppo_epochs / learn_s,
            )
            out.append(row)
        ev = rl.as_numpy(
            evaluate(state["params"], jax.random.fold_in(eval_key, int(state["step"])))
        )
        out[-1].update({f"heldout_{k}": float(v) for k, v in ev.items()})
        return state, out

    def log_fn(chunk, state, metrics):
        return metrics

    num_chunks = -(-cfg.steps // cfg.steps_per_chunk)
    train_in_chunks(state, chunk_fn, num_chunks, writer, log_fn, progress)
    rows = writer.metrics
    writer.write_summary(summary(cfg, rows))
    try:
        from experiments.lm import plots

        for stem, fig in plots.figures(rows, cfg.pass_ks).items():
            writer.save_figure(fig, stem)
    except Exception as err:  # figures are a convenience; the metrics are written
        print(f"lm-rl: figures skipped ({err})")
    return rows


def graphdef_config(graphdef, params):
    """The tunix ModelConfig of a split model (sizes for the FLOP count)."""
    from flax import nnx

    return nnx.merge(graphdef, params).config


def summary(cfg: LMConfig, rows: list[dict]) -> str:
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
    name = cfg.estimator + (f" K={cfg.k} {cfg.objective}" if cfg.estimator == "ordergrad" else "")
    return (
        f"# lm-rl: {name}, {cfg.steps} steps, P={cfg.prompts_per_step} N={cfg.group_size}\n\n"
        f"Held-out pass@k ({cfg.eval_prompts} prompts x {cfg.eval_samples} samples):\n\n"
        f"{markdown_table(table)}\n\nStep time split (s, steady state):\n\n{timing}\n"
    )


def config_dict(cfg: LMConfig) -> dict:
    return dataclasses.asdict(cfg)
