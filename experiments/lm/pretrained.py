"""Load a real Qwen3 checkpoint (a local Hugging Face folder) into tunix's Qwen3 class.

The folder is what ``huggingface-cli download Qwen/Qwen3-0.6B --local-dir DIR`` writes (download it
beforehand; nothing here touches the network):

- ``config.json``: the architecture (``model_type`` ``qwen3``; ``qwen3_moe`` also maps);
- ``*.safetensors``: the weights with Hugging Face names (``model.layers.0.self_attn.q_proj.weight``
  ...), read by tunix's ``create_model_from_safe_tensors``, optionally straight onto a mesh;
- ``tokenizer.json``: read with the ``tokenizers`` package; ``tokenizer_config.json`` and
  ``generation_config.json`` (optional) name the pad and EOS tokens.

The model is the same class as the tiny CPU model of ``experiments/lm/model.py``
(``tunix.models.qwen3.model.Qwen3``), so the sampler, the learner and the sharding rules serve both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import tokenizers
from flax import nnx
from tunix.models.qwen3 import model as qwen3
from tunix.models.qwen3 import params as qwen3_params

from ordergrad_experiments.lm import model as lm_model

_SUPPORTED_MODEL_TYPES = ("qwen3", "qwen3_moe")
TUNIX_QWEN3_ROPE_THETA = 1_000_000.0  # what tunix 0.1.7's Qwen3 attention rotates with


@dataclasses.dataclass(frozen=True)
class PretrainedTokenizer:
    """A ``tokenizers.Tokenizer`` with the interface of the loop's ``CharTokenizer``.

    Attributes:
      hf: the ``tokenizers.Tokenizer`` read from ``tokenizer.json``.
      pad_id, bos_id, eos_id: special ids (see :func:`load_tokenizer` for where they come from).
      eos_ids: every id that ends a completion (``generation_config.json`` may list several).
      vocab_size: the tokenizer's vocabulary size (the model's embedding may be larger).
    """

    hf: tokenizers.Tokenizer
    pad_id: int
    bos_id: int
    eos_id: int
    eos_ids: tuple[int, ...]

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``text`` (no special tokens added unless ``bos``/``eos``)."""
        ids = self.hf.encode(text, add_special_tokens=False).ids
        return [self.bos_id] * bos + list(ids) + [self.eos_id] * eos

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first EOS; special tokens (pad included) are dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i in self.eos_ids:
                break
            out.append(i)
        return self.hf.decode(out, skip_special_tokens=True)


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: a checkpoint folder needs config.json, *.safetensors and "
            "tokenizer.json (a local copy of the Hugging Face repository; download it first, "
            "e.g. `huggingface-cli download Qwen/Qwen3-0.6B --local-dir DIR`)"
        )
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def _checkpoint_folder(checkpoint_dir: str | Path) -> Path:
    folder = Path(checkpoint_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint_dir {str(checkpoint_dir)!r} is not a directory")
    return folder


def model_config_from_hf(
    hf_config: dict[str, Any],
    *,
    dtype: Any = jnp.float32,
    shd_config: qwen3.ShardingConfig | None = None,
) -> qwen3.ModelConfig:
    """tunix's Qwen3 ``ModelConfig`` from the fields of a Hugging Face ``config.json``.

    Args:
      hf_config: the parsed ``config.json``.
      dtype: parameter and activation dtype (``jnp.float32``; ``jnp.bfloat16`` on accelerators).
      shd_config: tunix sharding rules; default ``ordergrad_experiments.lm.model.sharding_config()``
        (tensor parallel on the ``model`` mesh axis, batch on ``data``).

    Raises:
      ValueError: a model type other than qwen3/qwen3_moe, a missing field, or a feature tunix's
        Qwen3 does not implement (RoPE scaling, a RoPE base other than 1e6, e.g. the 2507 4B
        models' 5e6, attention biases, dense layers in a MoE).
    """
    model_type = hf_config.get("model_type")
    if model_type not in _SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"config.json has model_type={model_type!r}; supported: {_SUPPORTED_MODEL_TYPES} "
            "(tunix's Qwen3 class)"
        )
    if hf_config.get("rope_scaling"):
        raise ValueError(
            f"config.json sets rope_scaling={hf_config['rope_scaling']!r}; tunix's Qwen3 "
            "implements plain RoPE only (rope_scaling null)"
        )
    if hf_config.get("attention_bias"):
        raise ValueError("config.json sets attention_bias=true; tunix's Qwen3 has no biases")
    rope_theta = float(hf_config.get("rope_theta", TUNIX_QWEN3_ROPE_THETA))
    if rope_theta != TUNIX_QWEN3_ROPE_THETA:
        # tunix 0.1.7's Qwen3 attention calls apply_rope without the config's rope_theta, so it
        # always rotates with 1e6; a checkpoint trained with another base would load silently
        # with wrong logits at every position > 0.
        raise ValueError(
            f"config.json has rope_theta={rope_theta:g}; tunix 0.1.7's Qwen3 always uses "
            f"{TUNIX_QWEN3_ROPE_THETA:g} (its attention ignores ModelConfig.rope_theta), so "
            "this checkpoint would load with wrong logits"
        )
    required = (
        "num_hidden_layers",
        "vocab_size",
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
    )
    missing = [f for f in required if f not in hf_config]
    if missing:
        raise ValueError(f"config.json lacks {missing}; a Qwen3 config has {list(required)}")
    num_heads = int(hf_config["num_attention_heads"])
    embed_dim = int(hf_config["hidden_size"])
    head_dim = int(hf_config.get("head_dim") or embed_dim // num_heads)
    num_experts = hf_config.get("num_experts") or None
    if num_experts:
        if hf_config.get("mlp_only_layers") or hf_config.get("decoder_sparse_step", 1) != 1:
            raise ValueError("MoE configs with dense layers (mlp_only_layers) are not supported")
        hidden_dim = int(hf_config["moe_intermediate_size"])
    else:
        hidden_dim = int(hf_config["intermediate_size"])
    return qwen3.ModelConfig(
        num_layers=int(hf_config["num_hidden_layers"]),
        vocab_size=int(hf_config["vocab_size"]),
        embed_dim=embed_dim,
        hidden_dim=hidden_dim,
        num_heads=num_heads,
        head_dim=head_dim,
        num_kv_heads=int(hf_config["num_key_value_heads"]),
        rope_theta=int(rope_theta),
        norm_eps=float(hf_config.get("rms_norm_eps", 1e-6)),
        use_tied_embedding=bool(hf_config.get("tie_word_embeddings", False)),
        num_experts=int(num_experts) if num_experts else None,
        num_experts_per_tok=(int(hf_config["num_experts_per_tok"]) if num_experts else None),
        shd_config=shd_config or lm_model.sharding_config(),
        dtype=dtype,
        param_dtype=dtype,
    )


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def _token_id(hf: tokenizers.Tokenizer, token: Any) -> int | None:
    if isinstance(token, dict):  # {"content": "<|endoftext|>", ...} in older tokenizer configs
        token = token.get("content")
    return None if token is None else hf.token_to_id(token)


def load_tokenizer(checkpoint_dir: str | Path) -> PretrainedTokenizer:
    """The checkpoint's tokenizer (``tokenizer.json``) and its special ids.

    EOS: ``generation_config.json``'s ``eos_token_id`` (all of them end a completion; the first is
    ``eos_id``), else ``config.json``'s, else ``tokenizer_config.json``'s ``eos_token``. PAD:
    ``tokenizer_config.json``'s ``pad_token``, else ``config.json``'s ``pad_token_id``, else EOS.
    BOS: ``tokenizer_config.json``'s ``bos_token``, else ``config.json``'s ``bos_token_id``, else
    EOS (Qwen adds no BOS; ``encode`` only adds it when asked).

    Raises:
      FileNotFoundError: ``tokenizer.json`` (or the folder) is missing.
      ValueError: no EOS id can be found.
    """
    folder = _checkpoint_folder(checkpoint_dir)
    hf = tokenizers.Tokenizer.from_file(str(_require(folder, "tokenizer.json")))
    cfg = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    tok_cfg = (
        _read_json(folder / "tokenizer_config.json")
        if (folder / "tokenizer_config.json").is_file()
        else {}
    )
    gen = (
        _read_json(folder / "generation_config.json")
        if (folder / "generation_config.json").is_file()
        else {}
    )
    eos_ids: list[int] = []
    for value in (gen.get("eos_token_id"), cfg.get("eos_token_id")):
        for i in value if isinstance(value, list) else [value]:
            if i is not None and int(i) not in eos_ids:
                eos_ids.append(int(i))
    tok_eos = _token_id(hf, tok_cfg.get("eos_token"))
    if tok_eos is not None and tok_eos not in eos_ids:
        eos_ids.append(tok_eos)
    if not eos_ids:
        raise ValueError(
            f"no EOS token id in {folder} (looked at generation_config.json and config.json "
            "eos_token_id, tokenizer_config.json eos_token)"
        )
    eos_id = eos_ids[0]
    pad_id = _token_id(hf, tok_cfg.get("pad_token"))
    if pad_id is None:
        pad_id = _first_id(cfg.get("pad_token_id"))
    bos_id = _token_id(hf, tok_cfg.get("bos_token"))
    if bos_id is None:
        bos_id = _first_id(cfg.get("bos_token_id"))
    return PretrainedTokenizer(
        hf=hf,
        pad_id=eos_id if pad_id is None else pad_id,
        bos_id=eos_id if bos_id is None else bos_id,
        eos_id=eos_id,
        eos_ids=tuple(eos_ids),
    )


def load_pretrained(
    checkpoint_dir: str | Path,
    mesh: jax.sharding.Mesh | None = None,
    dtype: Any = jnp.float32,
    *,
    shd_config: qwen3.ShardingConfig | None = None,
) -> tuple[nnx.Module, PretrainedTokenizer, qwen3.ModelConfig]:
    """``(model, tokenizer, model_config)`` from a local Hugging Face Qwen3 folder.

    Args:
      checkpoint_dir: the folder (``config.json``, ``*.safetensors``, ``tokenizer.json``).
      mesh: optional device mesh; the weights are placed on it by ``shd_config``'s rules as they
        are read (no full copy on one device).
      dtype: parameter and activation dtype (``jnp.float32`` default; ``jnp.bfloat16`` halves
        memory on accelerators).
      shd_config: tunix sharding rules (default
        ``ordergrad_experiments.lm.model.sharding_config()``; its axis names must be the mesh's).

    Returns:
      ``model``: a ``tunix.models.qwen3.model.Qwen3`` (``model(tokens [B, L], positions [B, L],
      cache, attention_mask [B, L, L]) -> (logits [B, L, V], cache)``); ``tokenizer``: a
      :class:`PretrainedTokenizer`; ``model_config``: its ``qwen3.ModelConfig``.

    Raises:
      FileNotFoundError: the folder, ``config.json``, ``tokenizer.json`` or every
        ``*.safetensors`` file is missing.
      ValueError: an unsupported ``config.json`` (see :func:`model_config_from_hf`).
    """
    folder = _checkpoint_folder(checkpoint_dir)
    hf_config = _read_json(_require(folder, "config.json"))
    _require(folder, "tokenizer.json")
    if not any(folder.glob("*.safetensors")):
        raise FileNotFoundError(
            f"no *.safetensors file in {folder}: a checkpoint folder needs config.json, "
            "*.safetensors and tokenizer.json"
        )
    config = model_config_from_hf(hf_config, dtype=dtype, shd_config=shd_config)
    tokenizer = load_tokenizer(folder)
    model = qwen3_params.create_model_from_safe_tensors(str(folder), config, mesh=mesh, dtype=dtype)
    return model, tokenizer, config


def load(
    checkpoint_dir: str | Path,
    mesh: jax.sharding.Mesh | None = None,
    dtype: Any = jnp.float32,
    *,
    shd_config: qwen3.ShardingConfig | None = None,
) -> tuple[nnx.Module, PretrainedTokenizer]:
    """``(model, tokenizer)``: :func:`load_pretrained` without the config (the RL entry point's
    form; the config is ``model.config``)."""
    model, tokenizer, _ = load_pretrained(checkpoint_dir, mesh, dtype, shd_config=shd_config)
    return model, tokenizer
