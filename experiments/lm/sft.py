"""Supervised warm start: teacher-forced cross-entropy on (prompt, answer) pairs.

It brings the tiny model to a moderate pass@1 so RL has signal and room. Jitted ``lax.scan`` over
steps; batches drawn from the training pool with explicit keys.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ordergrad_experiments.lm import model as lm_model


def sequences(prompts: jax.Array, answers: jax.Array, pad_id: int):
    """``(tokens, valid, target)`` ``[M, Lp + La]``: prompt then answer; ``target`` marks the
    positions whose token is scored (the answer tokens and EOS)."""
    tokens = jnp.concatenate([prompts, answers], 1)
    ans_valid = answers != pad_id
    valid = jnp.concatenate([jnp.ones(prompts.shape, bool), ans_valid], 1)
    target = jnp.concatenate([jnp.zeros(prompts.shape, bool), ans_valid], 1)
    return tokens, valid, target


class Scratchpad(NamedTuple):
    """The long form of the SFT targets (``tasks.ArithmeticTask.scratch_answers``).

    Each batch row is written in the long form with probability ``fraction``; label smoothing
    then applies only to the tokens after the scratchpad (the answer and EOS): the start knows
    its column sums exactly and samples the result as noisily as the short form does."""

    answers: jax.Array
    """``[M, Ls]`` scratchpad, answer, EOS, then PAD (``Ls`` >= the short answers' width)."""
    fraction: float
    close_id: int
    """The scratchpad's closing token (smoothing starts after it)."""


def after_close(answers: jax.Array, close_id: int) -> jax.Array:
    """``[M, La]`` bool: the positions after the first ``close_id`` of each row (every
    position when a row has none)."""
    is_close = answers == close_id
    seen = jnp.cumsum(is_close, -1) > 0
    return jnp.where(jnp.any(is_close, -1, keepdims=True), seen & ~is_close, True)


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
    graphdef,
    tx,
    prompts,
    answers,
    pad_id: int,
    batch: int,
    steps: int,
    smoothing: float = 0.0,
    scratchpad: Scratchpad | None = None,
):
    """``sft(params, opt_state, key) -> (params, opt_state, losses [steps])``, jitted.

    Args:
      graphdef: the model structure; tx: the optax optimiser.
      prompts, answers: the training pool ``[M, Lp]``, ``[M, La]``.
      pad_id: PAD id; batch: sequences per step; steps: scan length.
      smoothing: label smoothing of the answer tokens (:func:`smoothed_nll`).
      scratchpad: the long form of the answers and how often to use it (:class:`Scratchpad`);
        ``None``: every target is ``answers``.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"sft_smoothing must be in [0, 1); got {smoothing}")
    prompts, answers = jnp.asarray(prompts), jnp.asarray(answers)
    if scratchpad is not None:
        if not 0.0 <= scratchpad.fraction <= 1.0:
            raise ValueError(f"scratchpad fraction must be in [0, 1]; got {scratchpad.fraction}")
        long_answers = jnp.asarray(scratchpad.answers)
        pad = ((0, 0), (0, long_answers.shape[1] - answers.shape[1]))
        answers = jnp.pad(answers, pad, constant_values=pad_id)  # the same width as the long
        long_seq = sequences(prompts, long_answers, pad_id)
        no_smooth = jnp.zeros(prompts.shape, bool)  # prompt positions are not scored
        long_smooth = jnp.concatenate(
            [no_smooth, after_close(long_answers, scratchpad.close_id)], 1
        )
    tokens, valid, target = sequences(prompts, answers, pad_id)

    def loss_fn(params, idx, use_long):
        toks, val, tgt = tokens[idx], valid[idx], target[idx]
        if scratchpad is not None:  # rows drawn in the long form
            pick = use_long[:, None]
            toks, val, tgt = (
                jnp.where(pick, x[idx], y) for x, y in zip(long_seq, (toks, val, tgt), strict=True)
            )
        lg = lm_model.logits(graphdef, params, toks, val)[:, :-1]
        per_token = smoothed_nll(lg, toks[:, 1:], smoothing)
        if scratchpad is not None:  # smoothing after the scratchpad only
            smooth = jnp.where(pick, long_smooth[idx], True)[:, 1:]
            per_token = jnp.where(smooth, per_token, smoothed_nll(lg, toks[:, 1:], 0.0))
        mask = tgt[:, 1:]
        return jnp.sum(jnp.where(mask, per_token, 0.0)) / jnp.sum(mask)

    def step(carry, key):
        params, opt_state = carry
        idx = jax.random.randint(key, (batch,), 0, tokens.shape[0])
        use_long = None
        if scratchpad is not None:
            k_form = jax.random.fold_in(key, 1)
            use_long = jax.random.bernoulli(k_form, scratchpad.fraction, (batch,))
        loss, grads = jax.value_and_grad(loss_fn)(params, idx, use_long)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    @jax.jit
    def sft(params, opt_state, key):
        (params, opt_state), losses = jax.lax.scan(
            step, (params, opt_state), jax.random.split(key, steps)
        )
        return params, opt_state, losses

    return sft
