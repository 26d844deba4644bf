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


def smoothed_nll(logits: jax.Array, targets: jax.Array, smoothing: float) -> jax.Array:
    """Cross-entropy ``[...]`` of ``logits [..., V]`` against ``(1 - smoothing) * onehot(targets)
    + smoothing * uniform(V)`` (label smoothing; ``smoothing=0``: the negative log-likelihood).

    Its minimiser puts ``1 - smoothing * (V - 1) / V`` on the target token and the rest evenly on
    the others: a model that knows every answer but samples a wrong token at each position
    with that probability."""
    logz = jax.nn.log_softmax(logits, -1)
    nll = -jnp.take_along_axis(logz, targets[..., None], -1)[..., 0]
    if not smoothing:
        return nll
    return (1.0 - smoothing) * nll - smoothing * jnp.mean(logz, -1)


def make_sft(
    graphdef, tx, prompts, answers, pad_id: int, batch: int, steps: int, smoothing: float = 0.0
):
    """``sft(params, opt_state, key) -> (params, opt_state, losses [steps])``, jitted.

    Args:
      graphdef: the model structure; tx: the optax optimiser.
      prompts, answers: the training pool ``[M, Lp]``, ``[M, La]``.
      pad_id: PAD id; batch: sequences per step; steps: scan length.
      smoothing: label smoothing of the answer tokens (:func:`smoothed_nll`).
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"sft_smoothing must be in [0, 1); got {smoothing}")
    tokens, valid, target = sequences(jnp.asarray(prompts), jnp.asarray(answers), pad_id)

    def loss_fn(params, idx):
        lg = lm_model.logits(graphdef, params, tokens[idx], valid[idx])[:, :-1]
        per_token = smoothed_nll(lg, tokens[idx][:, 1:], smoothing)
        mask = target[idx][:, 1:]
        return jnp.sum(jnp.where(mask, per_token, 0.0)) / jnp.sum(mask)

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
