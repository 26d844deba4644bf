"""Group-sampled RL fine-tuning: P prompts x N completions per step, any og.estimators advantage.

:func:`train_step` ``(phases, state) -> (state, metrics)`` is one RL step on a typed state
(:class:`RLState`: params, optimiser state, PRNG key, step, reference params). Its phases are
separate jitted programs (:func:`make_phases`; so the host can time them, :func:`timed`; the state
flows on device):

1. **sample** ``P`` training prompts and ``N`` completions each (KV cache, ``sampling.py``);
2. **score**: reward (exact answer, optional length penalty) and the behaviour/reference
   log-probabilities;
3. **advantage**: the estimator's reward -> advantage transform on ``[P, N]`` groups (per shard);
4. **learn**: ``ppo_epochs`` passes of the token-level surrogate

   ``loss = c / (P N Lc) sum_{i,t} -min(rho_it A_i, clip(rho_it, 1 +- eps) A_i) + beta KL_it``

   (``og.estimators.clipped_surrogate``) where ``rho_it`` is the ratio to the behaviour policy
   (1 on the first pass, so one pass is the plain LR estimator ``-(c/N) sum_i A_i grad log
   p(y_i)`` per group, divided by the constant ``Lc``) and ``c`` the estimator's gradient scale
   from its spec (``og.estimators.spec(name).gradient_scale``: ``K`` for OrderGrad and MaxPO,
   ``N`` for PKPO and CVaR-PG, 1 for the mean-baseline family; ``docs/maths.md``). KL is the k3
   estimate to the reference policy. On XLA:CPU the learn phase is compiled
   with YNNPACK library fusions (``LMConfig.learn_cpu_fusions``, :func:`learn_compiler_options`).

Rows are prompt-major (each group contiguous) and sharded over the data axes; see
``sharding.py``.

**Data per process**: the step's prompt indices are drawn on device from the state's key
(replicated, so every process knows them); each process then gathers from the host pool only the
rows of its own devices and the global batch is assembled from those blocks
(:func:`sharding.rows_from_host`, ``jax.make_array_from_callback``); the held-out prompts of
:func:`make_evaluate` likewise, once. With one process this is the whole batch; the values are
the same either way. (The SFT warm start still samples its batches on device from the whole
pool, which every process holds.)
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ordergrad_jax as og
from ordergrad_experiments.common.config import ResolvedEstimator
from ordergrad_experiments.lm import model as lm_model
from ordergrad_experiments.lm import sampling, tasks
from ordergrad_experiments.lm import sharding as lm_sharding
from ordergrad_experiments.lm.config import LMConfig


class Rollout(NamedTuple):
    """One step's batch, rows prompt-major: ``B = P * N`` sequences."""

    tokens: jax.Array  # [B, Lp + Lc]
    valid: jax.Array  # [B, Lp + Lc]
    completion_mask: jax.Array  # [B, Lc]
    answers: jax.Array  # [B, La]


class Scored(NamedTuple):
    rewards: jax.Array  # [P, N]
    correct: jax.Array  # [P, N]
    old_logp: jax.Array  # [B, Lc]
    ref_logp: jax.Array  # [B, Lc]
    entropy: jax.Array  # scalar, mean over completion tokens


@dataclasses.dataclass(frozen=True)
class StepSetup:
    """What the RL step reads: the config and the values derived from it once (static)."""

    config: LMConfig
    estimator: ResolvedEstimator
    """The resolved estimator (advantage function and gradient scale ``c``)."""
    max_len: int
    """Completion tokens sampled per sequence (``Lc``)."""
    eos_id: int
    pad_id: int
    scratch_ids: tuple[int, int] | None = None
    """The scratchpad's ``(open_id, close_id)`` when answers may follow one (``tasks.correct``)."""

    @property
    def prompts(self) -> int:
        return self.config.groups.num_groups

    @property
    def group(self) -> int:
        return self.config.groups.group_size

    def sample(self, graphdef, params, key, prompts, *, top_p: float | None = None):
        """Completions of ``prompts`` ``[B, Lp]`` (padded with ``pad_id``) under this setup's
        length, special tokens and temperature; ``top_p`` defaults to the config's."""
        return sampling.sample(
            graphdef,
            params,
            key,
            prompts,
            prompts != self.pad_id,
            max_len=self.max_len,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            temperature=self.config.temperature,
            top_p=self.config.top_p if top_p is None else top_p,
        )


class RLState(NamedTuple):
    """The state of the RL loop (a pytree: checkpointed whole after every chunk)."""

    params: Any
    opt_state: Any
    key: jax.Array
    step: jax.Array
    ref_params: Any = None
    """The reference (SFT) policy of the KL term; ``None`` without KL."""


class Phases(NamedTuple):
    """The jitted programs of one RL step (:func:`make_phases`)."""

    sample: Callable[..., Rollout]
    """``(params, key) -> Rollout``."""
    score: Callable[..., Scored]
    """``(params, ref_params, rollout) -> Scored``."""
    advantage: Callable[[jax.Array], jax.Array]
    """``rewards [P, N] -> advantages [P, N]``."""
    learn: Callable[..., tuple[Any, Any, dict]]
    """``(params, opt_state, rollout, advantages, old_logp, ref_logp) -> (params, opt_state,
    metrics)``."""


def surrogate_loss(
    graphdef, params, rollout: Rollout, advantages, old_logp, ref_logp, s: StepSetup
) -> tuple[jax.Array, dict]:
    """The token-level surrogate (module docstring) and its diagnostics.

    Args:
      advantages: ``[B]`` per-sequence advantages (row order of ``rollout``).
      old_logp, ref_logp: ``[B, Lc]`` behaviour and reference log-probs of the completion tokens.
    """
    lp = rollout.tokens.shape[1] - s.max_len
    cfg = s.config
    logp_all, _ = lm_model.token_logprobs(
        graphdef, params, rollout.tokens, rollout.valid, cfg.temperature
    )
    logp = logp_all[:, lp - 1 :]
    mask = rollout.completion_mask
    a = advantages[:, None].astype(logp.dtype)
    pg = -og.estimators.clipped_surrogate(logp, old_logp, a, cfg.clip_eps)
    delta = ref_logp - logp
    kl = jnp.exp(delta) - delta - 1
    per_token = pg + cfg.kl_coef * kl if cfg.kl_coef else pg
    denom = mask.shape[0] * mask.shape[1]
    loss = s.estimator.scale * jnp.sum(jnp.where(mask, per_token, 0.0)) / denom
    ntok = jnp.maximum(jnp.sum(mask), 1)
    ratio = jnp.exp(logp - old_logp)
    aux = {
        "kl": jnp.sum(jnp.where(mask, kl, 0.0)) / ntok,
        "clip_frac": jnp.sum(mask & (jnp.abs(ratio - 1) > cfg.clip_eps)) / ntok,
    }
    return loss, aux


CPU_FUSIONS = ("dot", "eltwise", "reduce")
"""The YNNPACK fusion kinds XLA:CPU offers (``LIBRARY_FUSION_TYPE_<KIND>``)."""


@functools.cache
def learn_compiler_options(fusions: tuple[str, ...]) -> dict[str, str] | None:
    """The learn phase's XLA compile options: on the CPU backend, YNNPACK library ``fusions``
    (``LMConfig.learn_cpu_fusions``); ``None`` (XLA's defaults) on other backends, for no
    fusions, with ``jax_enable_x64`` (jaxlib 0.9.2's YNNPACK fusions crash the process on
    float64 products), or when this jaxlib rejects the option (then with a warning).

    Raises ``ValueError`` for a kind outside :data:`CPU_FUSIONS`."""
    fusions = tuple(f.strip().lower() for f in fusions if f.strip())
    unknown = sorted(set(fusions) - set(CPU_FUSIONS))
    if unknown:
        raise ValueError(f"learn_cpu_fusions: unknown {unknown}; allowed: {list(CPU_FUSIONS)}")
    if not fusions or jax.default_backend() != "cpu" or jax.config.jax_enable_x64:
        return None
    value = ",".join(f"LIBRARY_FUSION_TYPE_{f.upper()}" for f in fusions)
    options = {"xla_cpu_experimental_ynn_fusion_type": value}
    try:  # an XLA that lacks the option (or the kind) says so when compiling
        jax.jit(lambda x: x + 1).lower(jnp.zeros(())).compile(compiler_options=options)
    except (jax.errors.JaxRuntimeError, ValueError) as err:
        msg = f"XLA:CPU fusions {fusions} unavailable, using XLA's defaults: {err}"
        warnings.warn(msg, stacklevel=2)
        return None
    return options


def make_phases(
    graphdef, tx, pool_prompts, pool_answers, s: StepSetup, mesh, param_sh, opt_sh=None
) -> Phases:
    """The jitted phases of an RL step (see the module doc): sample, score, the advantage
    transform (per-shard, :func:`sharding.advantage_step`) and learn.

    Args:
      graphdef: the model structure; tx: the optax optimiser.
      pool_prompts, pool_answers: the training pool ``[M, Lp]``, ``[M, La]``.
      s: the step setup; mesh: the device mesh.
      param_sh, opt_sh: the parameter and optimiser-state shardings (``None``: inferred).
    """
    pool_prompts = np.asarray(pool_prompts)
    pool_answers = np.asarray(pool_answers)
    rows = lm_sharding.batch_sharding(mesh, 2)
    rep = lm_sharding.replicated(mesh)
    b = s.prompts * s.group

    def draw_fn(key):
        k_idx, k_sample = jax.random.split(key)
        return jax.random.randint(k_idx, (s.prompts,), 0, pool_prompts.shape[0]), k_sample

    def sample_fn(params, k_sample, prompts, answers):
        valid = prompts != s.pad_id
        out = s.sample(graphdef, params, k_sample, prompts)
        tokens = jnp.concatenate([prompts, out.tokens], 1)
        valid = jnp.concatenate([valid, out.mask], 1)
        return Rollout(tokens, valid, out.mask, answers)

    def score_fn(params, ref_params, rollout: Rollout):
        lp = rollout.tokens.shape[1] - s.max_len
        comp = rollout.tokens[:, lp:]
        correct = tasks.correct(comp, rollout.answers, s.pad_id, s.scratch_ids)
        rewards = tasks.reward(
            comp,
            rollout.completion_mask,
            rollout.answers,
            s.pad_id,
            s.config.length_penalty,
            s.scratch_ids,
        )
        logp, ent = lm_model.token_logprobs(
            graphdef, params, rollout.tokens, rollout.valid, s.config.temperature
        )
        old = logp[:, lp - 1 :]
        mask = rollout.completion_mask
        entropy = jnp.sum(jnp.where(mask, ent[:, lp - 1 :], 0)) / jnp.maximum(jnp.sum(mask), 1)
        if s.config.kl_coef:
            ref, _ = lm_model.token_logprobs(
                graphdef, ref_params, rollout.tokens, rollout.valid, s.config.temperature
            )
            ref = ref[:, lp - 1 :]
        else:
            ref = old
        shape = (s.prompts, s.group)
        return Scored(rewards.reshape(shape), correct.reshape(shape), old, ref, entropy)

    def learn_fn(params, opt_state, rollout, advantages, old_logp, ref_logp):
        adv = advantages.reshape(b)

        def epoch(carry, _):
            params, opt_state = carry
            (loss, aux), grads = jax.value_and_grad(surrogate_loss, argnums=1, has_aux=True)(
                graphdef, params, rollout, adv, old_logp, ref_logp, s
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state), {"loss": loss, "grad_norm": optax.global_norm(grads), **aux}

        (params, opt_state), m = jax.lax.scan(
            epoch, (params, opt_state), length=s.config.ppo_epochs
        )
        return params, opt_state, jax.tree.map(lambda x: x[-1], m)

    roll_sh = Rollout(rows, rows, rows, rows)
    draw_j = jax.jit(draw_fn, in_shardings=rep, out_shardings=(rep, rep))
    sample_j = jax.jit(sample_fn, in_shardings=(param_sh, rep, rows, rows), out_shardings=roll_sh)

    def sample(params, key) -> Rollout:
        # The indices are replicated: every process reads them and builds only its own rows.
        idx, k_sample = draw_j(key)
        prompt_of_row = np.asarray(idx)[np.arange(b) // s.group]
        prompts = lm_sharding.rows_from_host(
            (b, pool_prompts.shape[1]), mesh, lambda r: pool_prompts[prompt_of_row[r]]
        )
        answers = lm_sharding.rows_from_host(
            (b, pool_answers.shape[1]), mesh, lambda r: pool_answers[prompt_of_row[r]]
        )
        return sample_j(params, k_sample, prompts, answers)

    score_j = jax.jit(score_fn)
    learn_j = jax.jit(
        learn_fn,
        in_shardings=(param_sh, opt_sh, roll_sh, rows, rows, rows),
        out_shardings=(param_sh, opt_sh, rep),
        donate_argnums=(0, 1),
        compiler_options=learn_compiler_options(s.config.learn_cpu_fusions),
    )
    advantage_j = lm_sharding.advantage_step(s.estimator.advantages, mesh)
    return Phases(sample, score_j, advantage_j, learn_j)


def train_step(
    phases: Phases, state: RLState, ks: tuple[int, ...] = ()
) -> tuple[RLState, dict[str, jax.Array]]:
    """One RL step: sample, score, advantage, learn. Pure in ``state`` (the PRNG key is carried
    in it, split once per step); returns the new state and the step's metrics (device scalars,
    :func:`step_metrics`, with the training pass@k for each k of ``ks`` up to N)."""
    key, k_step = jax.random.split(state.key)
    rollout = phases.sample(state.params, k_step)
    ref = state.params if state.ref_params is None else state.ref_params
    scored = phases.score(state.params, ref, rollout)
    advantages = phases.advantage(scored.rewards)
    params, opt_state, learned = phases.learn(
        state.params, state.opt_state, rollout, advantages, scored.old_logp, scored.ref_logp
    )
    new = RLState(params, opt_state, key, state.step + 1, state.ref_params)
    return new, _step_metrics_jit(rollout, scored, advantages, learned, ks)


def timed(phases: Phases, seconds: dict[str, float]) -> Phases:
    """``phases`` that wait for their results and record their wall times in ``seconds``
    (``sample_s``, ``score_s``, ``advantage_s``, ``learn_s``; ``step_s`` from the start of
    ``sample`` to the end of ``learn``)."""

    def wrap(name: str, fn: Callable) -> Callable:
        def call(*args):
            tic = time.perf_counter()
            out = jax.block_until_ready(fn(*args))
            toc = time.perf_counter()
            seconds[f"{name}_s"] = toc - tic
            if name == "sample":
                seconds["start"] = tic
            if name == "learn":
                seconds["step_s"] = toc - seconds["start"]
            return out

        return call

    return Phases(*(wrap(name, fn) for name, fn in zip(Phases._fields, phases, strict=True)))


def make_evaluate(graphdef, prompts, answers, s: StepSetup, samples: int, ks, mesh):
    """``evaluate(params, key) -> {"pass@k": float}`` on held-out ``prompts`` with ``samples``
    completions each (unbiased pass@k, og.metrics.pass_at_k), plus the mean completion length
    (and, on the scratchpad task, the share of completions that open a scratchpad).

    The ``E * samples`` rows are built once, each process only its own
    (:func:`sharding.rows_from_host`); pass@k and the length are means over all of them (every
    process's samples), computed inside the jitted program."""
    prompts = np.asarray(prompts)
    answers = np.asarray(answers)
    num = prompts.shape[0] * samples
    ks = tuple(k for k in ks if k <= samples)
    rep_prompts = lm_sharding.rows_from_host(
        (num, prompts.shape[1]), mesh, lambda r: prompts[r // samples]
    )
    rep_answers = lm_sharding.rows_from_host(
        (num, answers.shape[1]), mesh, lambda r: answers[r // samples]
    )

    @jax.jit
    def evaluate_fn(params, key, rep_prompts, rep_answers):
        out = s.sample(graphdef, params, key, rep_prompts)
        ok = tasks.correct(out.tokens, rep_answers, s.pad_id, s.scratch_ids)
        ok = ok.reshape(prompts.shape[0], samples)
        res = {f"pass@{k}": jnp.mean(og.metrics.pass_at_k(ok, k)) for k in ks}
        res["length"] = jnp.mean(jnp.sum(out.mask, -1))
        if s.scratch_ids is not None:  # the share of completions that open a scratchpad
            res["scratchpad"] = jnp.mean(out.tokens[:, 0] == s.scratch_ids[0])
        return res

    def evaluate(params, key):
        return evaluate_fn(params, key, rep_prompts, rep_answers)

    return evaluate


def step_metrics(
    rollout: Rollout,
    scored: Scored,
    advantages: jax.Array,
    learned: dict[str, jax.Array],
    ks: tuple[int, ...] = (),
) -> dict[str, jax.Array]:
    """Scalars of one RL step: reward, correctness, entropy, advantage statistics, the learner's
    metrics, the training pass@k for each k of ``ks`` up to N, and the completion tokens."""
    n = scored.correct.shape[-1]
    out = {
        "reward": jnp.mean(scored.rewards),
        "correct": jnp.mean(scored.correct),
        "entropy": scored.entropy,
        "adv_mean": jnp.mean(advantages),
        "adv_std": jnp.std(advantages),
        "adv_absmax": jnp.max(jnp.abs(advantages)),
        **learned,
    }
    for k in ks:
        if k <= n:
            out[f"train_pass@{k}"] = jnp.mean(og.metrics.pass_at_k(scored.correct, k))
    out["completion_tokens"] = jnp.sum(rollout.completion_mask)
    return out


# One program over the global arrays (on several processes an eager op could not read them).
_step_metrics_jit = jax.jit(step_metrics, static_argnums=4)


def as_numpy(tree):
    return jax.tree.map(lambda x: np.asarray(x), tree)
