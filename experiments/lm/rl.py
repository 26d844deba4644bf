"""Group-sampled RL fine-tuning: P prompts x N completions per step, any og.estimators advantage.

One RL step is three jitted programs (so the host can time them; the state flows on device):

1. **sample** ``P`` training prompts and ``N`` completions each (KV cache, ``sampling.py``);
2. **score**: reward (exact answer, optional length penalty), the reward -> advantage transform of
   the chosen estimator on ``[P, N]`` groups (timed on its own), and the behaviour/reference
   log-probabilities;
3. **learn**: ``ppo_epochs`` passes of the token-level surrogate

   ``loss = c / (P N Lc) sum_{i,t} -min(rho_it A_i, clip(rho_it, 1 +- eps) A_i) + beta KL_it``

   where ``rho_it`` is the ratio to the behaviour policy (1 on the first pass, so one pass is the
   plain LR estimator ``-(c/N) sum_i A_i grad log p(y_i)`` per group, divided by the constant
   ``Lc``) and ``c`` the estimator's gradient scale: ``K`` for OrderGrad and MaxPO (the K
   multiplier: ``g = (K/N) sum_i a_i grad log p_i`` is unbiased for ``grad J``, see
   ``docs/maths.md``, LR estimator), ``N`` for PKPO and CVaR-PG, ``kN/(N-k)`` for
   passk_chen, 1 for the mean-baseline family. KL is the k3 estimate to the reference policy.

Rows are prompt-major (each group contiguous) and sharded over the data axes; see
``sharding.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import ordergrad_jax as og
from experiments.lm import model as lm_model
from experiments.lm import sampling, tasks
from experiments.lm import sharding as lm_sharding

K_PARAMS = ("ordergrad", "maxpo", "pkpo", "passk_chen")


def estimator(name: str, k: int, objective: str, cvar_alpha: float):
    """``(fn, canonical_name)``: ``fn(rewards [..., N]) -> advantages`` of ``og.estimators``."""
    canonical = og.estimators._canonical_name(name)
    params: dict[str, Any] = {}
    if canonical in K_PARAMS:
        params["k"] = k
    if canonical == "ordergrad":
        params["objective"] = objective
    if canonical == "cvar_pg":
        params["alpha"] = cvar_alpha
    return og.estimators.get(canonical, **params), canonical


def gradient_scale(canonical: str, k: int, n: int) -> float:
    """``c`` with ``g = (c/N) sum_i a_i grad log p_i`` the estimator's gradient (its docstring's
    "gradient scale")."""
    if canonical in ("ordergrad", "maxpo"):
        return float(k)
    if canonical in ("pkpo", "cvar_pg"):
        return float(n)
    if canonical == "passk_chen":
        return k * n / (n - k)
    return 1.0


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
class Settings:
    """The static settings of the RL step (from ``LMConfig``)."""

    prompts: int
    group: int
    max_len: int
    temperature: float
    top_p: float
    ppo_epochs: int
    clip_eps: float
    kl_coef: float
    length_penalty: float
    scale: float
    eos_id: int
    pad_id: int


def surrogate_loss(
    graphdef, params, rollout: Rollout, advantages, old_logp, ref_logp, s: Settings
) -> tuple[jax.Array, dict]:
    """The token-level surrogate (module docstring) and its diagnostics.

    Args:
      advantages: ``[B]`` per-sequence advantages (row order of ``rollout``).
      old_logp, ref_logp: ``[B, Lc]`` behaviour and reference log-probs of the completion tokens.
    """
    lp = rollout.tokens.shape[1] - s.max_len
    logp_all, _ = lm_model.token_logprobs(
        graphdef, params, rollout.tokens, rollout.valid, s.temperature
    )
    logp = logp_all[:, lp - 1 :]
    mask = rollout.completion_mask
    a = advantages[:, None].astype(logp.dtype)
    ratio = jnp.exp(logp - old_logp)
    clipped = jnp.clip(ratio, 1 - s.clip_eps, 1 + s.clip_eps)
    pg = -jnp.minimum(ratio * a, clipped * a)
    delta = ref_logp - logp
    kl = jnp.exp(delta) - delta - 1
    per_token = pg + s.kl_coef * kl if s.kl_coef else pg
    denom = mask.shape[0] * mask.shape[1]
    loss = s.scale * jnp.sum(jnp.where(mask, per_token, 0.0)) / denom
    ntok = jnp.maximum(jnp.sum(mask), 1)
    aux = {
        "kl": jnp.sum(jnp.where(mask, kl, 0.0)) / ntok,
        "clip_frac": jnp.sum(mask & (jnp.abs(ratio - 1) > s.clip_eps)) / ntok,
    }
    return loss, aux


def make_step_fns(
    graphdef, tx, pool_prompts, pool_answers, s: Settings, mesh, param_sh, opt_sh=None
):
    """The three jitted phases of an RL step plus the advantage transform (see module doc).

    Returns:
      ``(sample_fn, score_fn, learn_fn)``; ``param_sh``/``opt_sh`` are the parameter and
      optimiser-state shardings (``None``: inferred):
      ``sample_fn(params, key) -> Rollout``;
      ``score_fn(params, ref_params, rollout) -> Scored``;
      ``learn_fn(params, opt_state, rollout, advantages [P, N], old_logp, ref_logp) ->
      (params, opt_state, metrics)``.
    """
    pool_prompts = jnp.asarray(pool_prompts)
    pool_answers = jnp.asarray(pool_answers)
    rows = lm_sharding.batch_sharding(mesh, 2)
    rep = lm_sharding.replicated(mesh)
    b = s.prompts * s.group

    def sample_fn(params, key):
        k_idx, k_sample = jax.random.split(key)
        idx = jax.random.randint(k_idx, (s.prompts,), 0, pool_prompts.shape[0])
        prompts = sampling.repeat_prompts(pool_prompts[idx], s.group)
        answers = sampling.repeat_prompts(pool_answers[idx], s.group)
        prompts = jax.lax.with_sharding_constraint(prompts, rows)
        valid = prompts != s.pad_id
        out = sampling.sample(
            graphdef,
            params,
            k_sample,
            prompts,
            valid,
            max_len=s.max_len,
            eos_id=s.eos_id,
            pad_id=s.pad_id,
            temperature=s.temperature,
            top_p=s.top_p,
        )
        tokens = jnp.concatenate([prompts, out.tokens], 1)
        valid = jnp.concatenate([valid, out.mask], 1)
        return Rollout(tokens, valid, out.mask, answers)

    def score_fn(params, ref_params, rollout: Rollout):
        lp = rollout.tokens.shape[1] - s.max_len
        comp = rollout.tokens[:, lp:]
        correct = tasks.correct(comp, rollout.answers, s.pad_id)
        rewards = tasks.reward(
            comp, rollout.completion_mask, rollout.answers, s.pad_id, s.length_penalty
        )
        logp, ent = lm_model.token_logprobs(
            graphdef, params, rollout.tokens, rollout.valid, s.temperature
        )
        old = logp[:, lp - 1 :]
        mask = rollout.completion_mask
        entropy = jnp.sum(jnp.where(mask, ent[:, lp - 1 :], 0)) / jnp.maximum(jnp.sum(mask), 1)
        if s.kl_coef:
            ref, _ = lm_model.token_logprobs(
                graphdef, ref_params, rollout.tokens, rollout.valid, s.temperature
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

        (params, opt_state), m = jax.lax.scan(epoch, (params, opt_state), length=s.ppo_epochs)
        return params, opt_state, jax.tree.map(lambda x: x[-1], m)

    roll_sh = Rollout(rows, rows, rows, rows)
    sample_j = jax.jit(sample_fn, in_shardings=(param_sh, rep), out_shardings=roll_sh)
    score_j = jax.jit(score_fn)
    learn_j = jax.jit(
        learn_fn,
        in_shardings=(param_sh, opt_sh, roll_sh, rows, rows, rows),
        out_shardings=(param_sh, opt_sh, rep),
        donate_argnums=(0, 1),
    )
    return sample_j, score_j, learn_j


def make_evaluate(graphdef, prompts, answers, s: Settings, samples: int, ks, mesh):
    """``evaluate(params, key) -> {"pass@k": float}`` on held-out ``prompts`` with ``samples``
    completions each (unbiased pass@k, og.metrics.pass_at_k), plus the mean completion length."""
    prompts = jnp.asarray(prompts)
    answers = jnp.asarray(answers)
    rows = lm_sharding.batch_sharding(mesh, 2)
    ks = tuple(k for k in ks if k <= samples)

    @jax.jit
    def evaluate(params, key):
        rep_prompts = jax.lax.with_sharding_constraint(
            sampling.repeat_prompts(prompts, samples), rows
        )
        out = sampling.sample(
            graphdef,
            params,
            key,
            rep_prompts,
            rep_prompts != s.pad_id,
            max_len=s.max_len,
            eos_id=s.eos_id,
            pad_id=s.pad_id,
            temperature=s.temperature,
            top_p=s.top_p,
        )
        ok = tasks.correct(out.tokens, sampling.repeat_prompts(answers, samples), s.pad_id)
        ok = ok.reshape(prompts.shape[0], samples)
        res = {f"pass@{k}": jnp.mean(og.metrics.pass_at_k(ok, k)) for k in ks}
        res["length"] = jnp.mean(jnp.sum(out.mask, -1))
        return res

    return evaluate


def step_metrics(scored: Scored, advantages, learn_metrics, ks) -> dict[str, float]:
    """Host-side scalars of one RL step."""
    n = scored.correct.shape[-1]
    out = {
        "reward": float(jnp.mean(scored.rewards)),
        "correct": float(jnp.mean(scored.correct)),
        "entropy": float(scored.entropy),
        "adv_mean": float(jnp.mean(advantages)),
        "adv_std": float(jnp.std(advantages)),
        "adv_absmax": float(jnp.max(jnp.abs(advantages))),
        **{k: float(v) for k, v in learn_metrics.items()},
    }
    for k in ks:
        if k <= n:
            out[f"train_pass@{k}"] = float(jnp.mean(og.metrics.pass_at_k(scored.correct, k)))
    return out


def as_numpy(tree):
    return jax.tree.map(lambda x: np.asarray(x), tree)
