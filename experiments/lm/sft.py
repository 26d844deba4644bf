"""Supervised warm start: teacher-forced cross-entropy on (prompt, answer) pairs.

It brings the tiny model to a moderate pass@1 so RL has signal and room. Jitted ``lax.scan`` over
steps; batches drawn from the training pool with explicit keys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from experiments.lm import model as lm_model


def sequences(prompts: jax.Array, answers: jax.Array, pad_id: int):
    """``(tokens, valid, target)`` ``[M, Lp + La]``: prompt then answer; ``target`` marks the
    positions whose token is scored (the answer tokens and EOS)."""
    tokens = jnp.concatenate([prompts, answers], 1)
    ans_valid = answers != pad_id
    valid = jnp.concatenate([jnp.ones(prompts.shape, bool), ans_valid], 1)
    target = jnp.concatenate([jnp.zeros(prompts.shape, bool), ans_valid], 1)
    return tokens, valid, target


def make_sft(graphdef, tx, prompts, answers, pad_id: int, batch: int, steps: int):
    """``sft(params, opt_state, key) -> (params, opt_state, losses [steps])``, jitted.

    Args:
      graphdef: the model structure; tx: the optax optimiser.
      prompts, answers: the training pool ``[M, Lp]``, ``[M, La]``.
      pad_id: PAD id; batch: sequences per step; steps: scan length.
    """
    tokens, valid, target = sequences(jnp.asarray(prompts), jnp.asarray(answers), pad_id)

    def loss_fn(params, idx):
        logp, _ = lm_model.token_logprobs(graphdef, params, tokens[idx], valid[idx])
        mask = target[idx][:, 1:]
        return -jnp.sum(jnp.where(mask, logp, 0.0)) / jnp.sum(mask)

    def step(carry, key):
        params, opt_state = carry
        idx = jax.random.randint(key, (batch,), 0, tokens.shape[0])
        loss, grads = jax.value_and_grad(loss_fn)(params, idx)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    @jax.jit
    def sft(params, opt_state, key):
        (params, opt_state), losses = jax.lax.scan(
            step, (params, opt_state), jax.random.split(key, steps)
        )
        return params, opt_state, losses

    return sft
