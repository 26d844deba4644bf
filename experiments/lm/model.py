"""The policy network: tunix's flax nnx Qwen3 (a tiny config on CPU, real checkpoints elsewhere).

One model class serves both ends. :func:`tiny_qwen3` builds a small random Qwen3 for the
character-level task; ``pretrained.py`` loads a real Qwen3 folder into the same class. Everything
downstream uses the functional interface below on ``(graphdef, params)`` so that parameters are a
plain pytree (``nnx.State``) that optax, the checkpointer and ``jax.jit`` shardings handle:

- :func:`token_logprobs`: per-token log-probabilities (and entropies) of given sequences, one
  full forward pass with a causal + key-padding mask (the learner and the scorer);
- ``sampling.py`` drives the same model with its KV cache.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from tunix.models.qwen3 import model as qwen3

from ordergrad_experiments.lm.config import TinyQwen3  # the sizes are a part of LMConfig

# tunix's Qwen3 activation constraints (``shard``) are skipped on CPU; we constrain the batch
# ourselves in the jitted steps (sharding.py).


def sharding_config(model_axis: str | None = "model", fsdp_axis: str | None = None):
    """tunix's Qwen3 ``ShardingConfig`` with our mesh axis names.

    Tensor parallelism on ``model_axis``: attention heads (q/k/v ``D,N,H`` on N, o ``N,H,D`` on
    N), MLP hidden (``gate/up`` ``D,F`` on F, ``down`` ``F,D`` on F), vocab of the embedding.
    ``fsdp_axis`` (optional) additionally shards the embedding dimension of the weights.
    Activations: batch on ``data``.
    """
    tp, fs = model_axis, fsdp_axis
    return qwen3.ShardingConfig(
        emb_vd=(tp, fs),
        emb_dv=(fs, tp),
        q_weight_dnh=(fs, tp, None),
        kv_weight_dnh=(fs, tp, None),
        o_weight_nhd=(tp, None, fs),
        ffw_weight_df=(fs, tp),
        ffw_weight_fd=(tp, fs),
        rms_norm_weight=(None,),
        act_btd=("data", None, None),
        act_btf=("data", None, tp),
        act_btnh=("data", None, tp, None),
        exp_weight_edf=(fs, None, tp),
        exp_weight_efd=(fs, tp, None),
    )


def tiny_qwen3(
    sizes: TinyQwen3,
    vocab_size: int,
    key: jax.Array,
    *,
    shd_config=None,
    dtype=jnp.float32,
) -> nnx.Module:
    """A random tiny Qwen3 (tied embeddings). tunix initialises the MLP weights to zero (they
    are meant to be overwritten by a checkpoint), which would leave the MLPs dead under
    training from scratch; they get a scaled normal init here instead."""
    cfg = qwen3.ModelConfig(
        num_layers=sizes.num_layers,
        vocab_size=vocab_size,
        embed_dim=sizes.embed_dim,
        hidden_dim=sizes.hidden_dim,
        num_heads=sizes.num_heads,
        head_dim=sizes.head_dim,
        num_kv_heads=sizes.num_kv_heads,
        # tunix 0.1.7's attention always applies RoPE with theta 1e6 (it ignores this field);
        # state the value it uses.
        rope_theta=1_000_000,
        norm_eps=1e-6,
        use_tied_embedding=True,
        shd_config=shd_config or sharding_config(),
        dtype=dtype,
        param_dtype=dtype,
    )
    k_model, k_mlp = jax.random.split(key)
    model = qwen3.Qwen3(cfg, rngs=nnx.Rngs(params=k_model))
    mlp_keys = iter(jax.random.split(k_mlp, 3 * sizes.num_layers))
    for layer in model.layers:
        for lin in (layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj):
            fan_in = lin.kernel.value.shape[0]
            w = jax.random.normal(next(mlp_keys), lin.kernel.value.shape, dtype) / fan_in**0.5
            lin.kernel.value = w
    # Embedding std 1 with tied output weights gives huge initial logits; use 1/sqrt(D).
    emb = model.embedder.input_embedding
    emb.value = emb.value / sizes.embed_dim**0.5
    return model


def split(model: nnx.Module):
    """``(graphdef, params)``: the static structure and the parameter pytree."""
    return nnx.split(model)


def positions_and_mask(valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Positions (``cumsum(valid) - 1``, so left padding is skipped) and the causal attention
    mask ``[B, L, L]`` that also hides padded keys."""
    pos = jnp.maximum(jnp.cumsum(valid.astype(jnp.int32), -1) - 1, 0)
    length = valid.shape[-1]
    causal = jnp.tril(jnp.ones((length, length), bool))
    return pos, causal[None] & valid[:, None, :].astype(bool)


def logits(graphdef, params, tokens: jax.Array, valid: jax.Array) -> jax.Array:
    """Next-token logits ``[B, L, V]`` (float32) of ``tokens [B, L]`` with ``valid [B, L]``."""
    model = nnx.merge(graphdef, params)
    pos, mask = positions_and_mask(valid)
    out, _ = model(tokens, pos, None, mask)
    return out


def token_logprobs(
    graphdef, params, tokens: jax.Array, valid: jax.Array, temperature: float = 1.0
) -> tuple[jax.Array, jax.Array]:
    """Log-probabilities of ``tokens[:, 1:]`` given their prefixes, and the entropies there.

    Args:
      graphdef, params: the model (see :func:`split`).
      tokens: ``[B, L]`` int ids (prompt then completion).
      valid: ``[B, L]`` bool, False on padding.
      temperature: the logits are divided by it (match the sampler's for PPO ratios).

    Returns:
      ``(logp, entropy)``, each ``[B, L - 1]`` float32; position t scores ``tokens[:, t + 1]``.
    """
    lg = logits(graphdef, params, tokens, valid)[:, :-1] / temperature
    logz = jax.nn.log_softmax(lg, -1)
    logp = jnp.take_along_axis(logz, tokens[:, 1:, None], -1)[..., 0]
    entropy = -jnp.sum(jnp.exp(logz) * logz, -1)
    return logp, entropy


def count_params(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))


def flops_per_token(params, seq_len: int, sizes_or_model) -> float:
    """Approximate forward FLOPs per token: ``2 * params + 2 * layers * L * heads * head_dim``
    (matmuls; the attention term uses the full causal length for the score and value
    products). A training step costs about 3x this."""
    cfg = sizes_or_model.config if hasattr(sizes_or_model, "config") else sizes_or_model
    attn = 2 * 2 * cfg.num_layers * seq_len * cfg.num_heads * cfg.head_dim
    return 2.0 * count_params(params) + attn
