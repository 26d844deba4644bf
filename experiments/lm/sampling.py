"""Jitted sampling with a KV cache: N completions per prompt, temperature, top-p, EOS masks.

Our own loop (``lax.scan`` over positions) around tunix's Qwen3 forward with its KV cache, so it
runs inside the jitted RL step, under ``jax.jit`` shardings, with static shapes. (tunix's
``Sampler`` is a host-driven object with its own tokenizer handling and cache management; the RL
step needs sampling as a pure function of ``(params, key, prompts)``.)

Layout: prompts are left-padded to a common length ``Lp`` (``prompt_valid`` False on padding;
synthetic prompts need none), completions have a static maximum length ``Lc``. Once a row emits
EOS every later token is PAD and its mask is False; the EOS itself is kept (mask True), so the
policy learns to stop.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx


class Samples(NamedTuple):
    """Sampled completions ``[B, Lc]``: ids (PAD after EOS), mask (True up to and including
    EOS), and the sampler's log-probability of each token (temperature applied)."""

    tokens: jax.Array
    mask: jax.Array
    logp: jax.Array


def top_p_filter(logits: jax.Array, top_p: float) -> jax.Array:
    """Logits ``[..., V]`` with tokens outside the top-p nucleus set to -inf (the smallest set
    of most likely tokens whose probability reaches ``top_p``; the top token is always kept)."""
    if top_p >= 1.0:
        return logits
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(sorted_logits, -1)
    keep = (jnp.cumsum(probs, -1) - probs) < top_p
    threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), -1, keepdims=True)
    return jnp.where(logits >= threshold, logits, -jnp.inf)


def _draw(key, logits, temperature: float, top_p: float):
    if temperature == 0.0:
        tok = jnp.argmax(logits, -1)
        return tok, jnp.zeros(tok.shape, logits.dtype)
    scaled = logits / temperature
    logz = jax.nn.log_softmax(scaled, -1)
    filtered = top_p_filter(scaled, top_p)
    if key.ndim:  # one key per row
        tok = jax.vmap(lambda k, x: jax.random.categorical(k, x, axis=-1))(key, filtered)
    else:
        tok = jax.random.categorical(key, filtered, axis=-1)
    return tok, jnp.take_along_axis(logz, tok[..., None], -1)[..., 0]


def _default_int_indices(cache):
    """The cache with its ``end_index`` leaves in the default integer dtype.

    tunix 0.1.7 makes them int32 but builds its cache-update offsets from Python ints, which are
    int64 under ``JAX_ENABLE_X64=1``; ``lax.dynamic_update_slice`` then refuses the mixed index
    types. Using the default integer type keeps all of them equal in both modes.
    """
    default = jnp.asarray(0).dtype

    def cast(path, leaf):
        name = getattr(path[-1], "key", None)
        return leaf.astype(default) if name == "end_index" else leaf

    return jax.tree_util.tree_map_with_path(cast, cache)


def sample(
    graphdef,
    params,
    key: jax.Array,
    prompts: jax.Array,
    prompt_valid: jax.Array,
    *,
    max_len: int,
    eos_id: int,
    pad_id: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> Samples:
    """Samples one completion per row of ``prompts``.

    Args:
      graphdef, params: the model (``model.split``).
      key: a typed PRNG key, or ``[B]`` keys, one per row (a row's draws then depend on its
        own key only, not on the batch: common random numbers across batches).
      prompts: ``[B, Lp]`` int ids, left-padded.
      prompt_valid: ``[B, Lp]`` bool, False on padding.
      max_len: ``Lc``, the static completion length (EOS included).
      eos_id, pad_id: token ids.
      temperature: softmax temperature (static; 0 = greedy).
      top_p: nucleus mass (static; 1 = off).

    Returns:
      :class:`Samples` with ``[B, Lc]`` fields.
    """
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1; got {temperature}, {top_p}")
    model = nnx.merge(graphdef, params)
    b, lp = prompts.shape
    size = lp + max_len
    dtype = model.config.dtype
    cache = _default_int_indices(model.init_cache(b, size, dtype))
    slot = jnp.arange(size)
    prompt_valid = prompt_valid.astype(bool)
    slot_valid = jnp.concatenate([prompt_valid, jnp.ones((b, max_len), bool)], 1)
    pos = jnp.maximum(jnp.cumsum(prompt_valid.astype(jnp.int32), -1) - 1, 0)
    mask = (slot[None, None, :] <= jnp.arange(lp)[None, :, None]) & slot_valid[:, None, :]
    logits, cache = model(prompts, pos, cache, mask)
    length = jnp.sum(prompt_valid, -1)

    def step(carry, t):
        cache, last, done, key = carry
        if key.ndim:  # per-row keys: position t's draw of row r uses fold_in(key[r], t)
            sub = jax.vmap(jax.random.fold_in, (0, None))(key, t)
        else:
            key, sub = jax.random.split(key)
        tok, logp = _draw(sub, last, temperature, top_p)
        tok = jnp.where(done, pad_id, tok).astype(prompts.dtype)
        valid = ~done
        done = done | (tok == eos_id)
        m = (slot[None, None, :] <= lp + t) & slot_valid[:, None, :]
        out, cache = model(tok[:, None], (length + t)[:, None], cache, m)
        return (cache, out[:, -1], done, key), (tok, valid, jnp.where(valid, logp, 0.0))

    init = (cache, logits[:, -1], jnp.zeros((b,), bool), key)
    _, (toks, valid, logp) = jax.lax.scan(step, init, jnp.arange(max_len))
    return Samples(toks.T, valid.T, logp.T)


def repeat_prompts(prompts: jax.Array, n: int) -> jax.Array:
    """``[P, ...] -> [P * N, ...]``, each prompt's N copies contiguous (one group per prompt)."""
    return jnp.repeat(prompts, n, axis=0)
