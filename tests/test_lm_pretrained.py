"""experiments/lm/pretrained.py: a tiny random Hugging Face Qwen3 folder, written here, loads into
tunix's Qwen3 with the logits of an independent NumPy forward pass of the same weights (Hugging
Face's Qwen3 conventions), and its tokenizer round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tunix", reason="needs the lm extra")
# tunix 0.1.7 reads nnx variables with the deprecated `.value`; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*'.value' access is now deprecated:DeprecationWarning"
)
tokenizers = pytest.importorskip("tokenizers")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

import jax.numpy as jnp  # noqa: E402

from ordergrad_experiments.lm import pretrained  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "12+34=46",
    "what is 7*8? 56",
    "The quick brown fox jumps over the lazy dog.",
    "order statistics of K samples",
] * 5
TINY = dict(
    num_hidden_layers=2,
    vocab_size=320,  # > the tokenizer's vocabulary, as in real Qwen checkpoints
    hidden_size=32,
    intermediate_size=48,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,  # != hidden_size / heads, as in Qwen3
    rope_theta=1_000_000,  # tunix 0.1.7 Qwen3 always uses 1e6 (see pretrained.py)
    rms_norm_eps=1e-6,
)


def _tokenizer() -> tokenizers.Tokenizer:
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=290,
        special_tokens=SPECIALS,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def _random_weights(cfg: dict, tied: bool, seed: int) -> dict[str, np.ndarray]:
    """Hugging Face parameter names and [out, in] layouts; norms random (not ones) so that a
    w vs (1 + w) mix-up would show."""
    rng = np.random.default_rng(seed)
    d, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    h, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]

    def normal(*shape, scale=None):
        scale = 1.0 / np.sqrt(shape[-1]) if scale is None else scale
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(n):
        return (1.0 + 0.3 * rng.standard_normal(n)).astype(np.float32)

    w = {"model.embed_tokens.weight": normal(v, d, scale=0.5), "model.norm.weight": norm(d)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = normal(h * hd, d)
        w[p + "self_attn.k_proj.weight"] = normal(kv * hd, d)
        w[p + "self_attn.v_proj.weight"] = normal(kv * hd, d)
        w[p + "self_attn.o_proj.weight"] = normal(d, h * hd)
        w[p + "self_attn.q_norm.weight"] = norm(hd)
        w[p + "self_attn.k_norm.weight"] = norm(hd)
        w[p + "mlp.gate_proj.weight"] = normal(f, d)
        w[p + "mlp.up_proj.weight"] = normal(f, d)
        w[p + "mlp.down_proj.weight"] = normal(d, f)
        w[p + "input_layernorm.weight"] = norm(d)
        w[p + "post_attention_layernorm.weight"] = norm(d)
    if not tied:
        w["lm_head.weight"] = normal(v, d)
    return w


def _write_checkpoint(folder, tied: bool, seed: int = 0, shards: int = 2) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer()
    tok.save(str(folder / "tokenizer.json"))
    im_end, eot = tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")
    cfg = dict(
        TINY,
        model_type="qwen3",
        architectures=["Qwen3ForCausalLM"],
        tie_word_embeddings=tied,
        rope_scaling=None,
        attention_bias=False,
        bos_token_id=eot,
        eos_token_id=im_end,
    )
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"pad_token": "<|endoftext|>", "eos_token": "<|im_end|>", "bos_token": None})
    )
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [im_end, eot]}))
    weights = _random_weights(cfg, tied, seed)
    names = sorted(weights)
    for s in range(shards):  # sharded like real checkpoints: model-0000s-of-0000n.safetensors
        part = {n: weights[n] for n in names[s::shards]}
        safetensors_numpy.save_file(
            part, str(folder / f"model-{s + 1:05d}-of-{shards:05d}.safetensors")
        )
    return {"config": cfg, "weights": weights, "tokenizer": tok}


def _reference_logits(cfg: dict, w: dict, tokens: np.ndarray) -> np.ndarray:
    """Qwen3's forward pass as Hugging Face's modeling_qwen3 defines it, in float64 NumPy."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    eps, hd = cfg["rms_norm_eps"], cfg["head_dim"]
    h, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def rms(x, g):
        return g * x / np.sqrt(np.mean(x**2, -1, keepdims=True) + eps)

    b, length = tokens.shape
    inv_freq = 1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd)
    angles = np.arange(length)[:, None] * inv_freq[None]  # [L, hd/2]
    cos, sin = np.cos(np.concatenate([angles] * 2, -1)), np.sin(np.concatenate([angles] * 2, -1))

    def rope(x):  # x [B, L, heads, hd]; rotate_half convention
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        rotated = np.concatenate([-x2, x1], -1)
        return x * cos[None, :, None] + rotated * sin[None, :, None]

    causal = np.tril(np.ones((length, length), bool))
    x = w["model.embed_tokens.weight"][tokens]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        y = rms(x, w[p + "input_layernorm.weight"])
        q = (y @ w[p + "self_attn.q_proj.weight"].T).reshape(b, length, h, hd)
        k = (y @ w[p + "self_attn.k_proj.weight"].T).reshape(b, length, kv, hd)
        v = (y @ w[p + "self_attn.v_proj.weight"].T).reshape(b, length, kv, hd)
        q = rope(rms(q, w[p + "self_attn.q_norm.weight"]))
        k = rope(rms(k, w[p + "self_attn.k_norm.weight"]))
        k, v = np.repeat(k, h // kv, axis=2), np.repeat(v, h // kv, axis=2)
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(hd)
        scores = np.where(causal, scores, -np.inf)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        attn = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, length, h * hd)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T
        y = rms(x, w[p + "post_attention_layernorm.weight"])
        gate = y @ w[p + "mlp.gate_proj.weight"].T
        mlp = (gate / (1 + np.exp(-gate))) * (y @ w[p + "mlp.up_proj.weight"].T)
        x = x + mlp @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


@pytest.mark.once  # the loaded model is float32 and the tolerance the same under x64
@pytest.mark.parametrize("tied", [True, False])
def test_loaded_logits_match_reference_forward(tmp_path, tied):
    ckpt = _write_checkpoint(tmp_path / "ckpt", tied=tied, seed=int(tied))
    model, tok, config = pretrained.load_pretrained(tmp_path / "ckpt")
    assert (config.num_layers, config.embed_dim, config.hidden_dim) == (2, 32, 48)
    assert (config.num_heads, config.num_kv_heads, config.head_dim) == (4, 2, 16)
    assert config.use_tied_embedding is tied and config.vocab_size == 320

    rows = [tok.encode("12+34=46 what"), tok.encode("The lazy dog jumps.")]
    assert min(map(len, rows)) >= 6
    tokens = np.array([r[:6] for r in rows])
    b, length = tokens.shape
    positions = np.broadcast_to(np.arange(length), (b, length))
    mask = np.broadcast_to(np.tril(np.ones((length, length), bool)), (b, length, length))
    logits, _ = model(jnp.asarray(tokens), jnp.asarray(positions), None, jnp.asarray(mask))
    ref = _reference_logits(ckpt["config"], ckpt["weights"], tokens)
    assert logits.shape == (b, length, 320)
    np.testing.assert_allclose(np.asarray(logits, np.float64), ref, rtol=2e-4, atol=2e-4)


@pytest.mark.once  # placement on the mesh: the dtype does not change it
def test_load_onto_a_mesh(tmp_path):
    """With a mesh, the weights are placed by the sharding rules of experiments/lm/model.py
    (tensor parallel on ``model``) and the logits are unchanged."""
    import jax
    from jax.sharding import PartitionSpec as P

    _write_checkpoint(tmp_path / "ckpt", tied=True, shards=1)
    mesh = jax.make_mesh((1, 1), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    plain, tok, _ = pretrained.load_pretrained(tmp_path / "ckpt")
    sharded, _ = pretrained.load(tmp_path / "ckpt", mesh=mesh)
    q = sharded.layers[0].attn.q_proj.w[...]
    assert q.sharding.mesh.axis_names == ("data", "model")
    assert q.sharding.spec == P(None, "model", None)
    tokens = jnp.asarray([tok.encode("12+34=46")[:5]])
    pos = jnp.arange(5)[None]
    mask = jnp.tril(jnp.ones((5, 5), bool))[None]
    np.testing.assert_allclose(
        np.asarray(sharded(tokens, pos, None, mask)[0]),
        np.asarray(plain(tokens, pos, None, mask)[0]),
        rtol=1e-6,
        atol=1e-6,
    )


def test_tokenizer_round_trip_and_special_ids(tmp_path):
    ckpt = _write_checkpoint(tmp_path / "ckpt", tied=True, shards=1)
    tok = pretrained.load_tokenizer(tmp_path / "ckpt")
    hf = ckpt["tokenizer"]
    im_end, eot = hf.token_to_id("<|im_end|>"), hf.token_to_id("<|endoftext|>")
    assert tok.eos_id == im_end and tok.eos_ids == (im_end, eot)
    assert tok.pad_id == eot and tok.bos_id == eot  # bos_token null -> config.json's id
    assert tok.vocab_size == hf.get_vocab_size()
    for text in ["12+34=46", "what is 7*8? 56", "unseen text: é ß 漢字 \n tabs\t"]:
        ids = tok.encode(text)
        assert ids == hf.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids) == text
        assert tok.decode([*ids, im_end, *tok.encode("after eos")]) == text
        assert tok.encode(text, bos=True, eos=True) == [eot, *ids, im_end]


def test_missing_files_and_bad_config_raise(tmp_path):
    _write_checkpoint(tmp_path / "ckpt", tied=True, shards=1)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        pretrained.load_pretrained(tmp_path / "nope")
    for name in ["tokenizer.json", "model-00001-of-00001.safetensors", "config.json"]:
        (tmp_path / "ckpt" / name).unlink()
        with pytest.raises(FileNotFoundError, match=r"config.json, \*.safetensors and tokenizer"):
            pretrained.load_pretrained(tmp_path / "ckpt")
    cfg = dict(TINY, model_type="llama")
    with pytest.raises(ValueError, match="model_type='llama'"):
        pretrained.model_config_from_hf(cfg)
    with pytest.raises(ValueError, match="rope_scaling"):
        pretrained.model_config_from_hf(dict(TINY, model_type="qwen3", rope_scaling={"f": 2}))
    with pytest.raises(ValueError, match="rope_theta=10000"):
        pretrained.model_config_from_hf(dict(TINY, model_type="qwen3", rope_theta=10000))
    with pytest.raises(ValueError, match="lacks"):
        pretrained.model_config_from_hf({"model_type": "qwen3", "vocab_size": 8})
