"""The LM loop's pieces: tokenizer, task checker, sampling (masks, top-p, KV cache), the
surrogate's gradient scale (K multiplier), config validation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_jax as og
from experiments.lm import model as lm_model
from experiments.lm import rl, run, sampling, tasks
from experiments.lm.config import QUICK
from experiments.lm.tokenizer import CharTokenizer
from tests.conftest import X64

TOK = CharTokenizer()
SIZES = lm_model.TinyQwen3(num_layers=1, embed_dim=32, hidden_dim=64, head_dim=8)
DTYPE = jnp.float64 if X64 else jnp.float32


@pytest.fixture(scope="module")
def tiny():
    model = lm_model.tiny_qwen3(SIZES, TOK.vocab_size, jax.random.key(0), dtype=DTYPE)
    return lm_model.split(model)


def test_tokenizer_round_trip_and_specials():
    text = "12+345=(6*7)-8, 9"
    ids = TOK.encode(text, bos=True, eos=True)
    assert ids[0] == TOK.bos_id and ids[-1] == TOK.eos_id
    assert TOK.decode(ids) == text
    assert TOK.decode([*TOK.encode("42", eos=True), *TOK.encode("99")]) == "42"  # stops at EOS
    assert TOK.decode([TOK.pad_id, *TOK.encode("7"), TOK.pad_id]) == "7"
    assert TOK.vocab_size % TOK.pad_vocab_to == 0 and TOK.vocab_size >= 3 + len(TOK.chars)
    with pytest.raises(ValueError, match="not in the alphabet"):
        TOK.encode("1a")


def test_task_splits_are_disjoint_and_deterministic():
    task = tasks.ArithmeticTask(digits=2, ops="+-", num_train=500, num_heldout=100, seed=3)
    train, held = task.problems("train"), task.problems("heldout")
    assert len(set(train)) == 500 and len(set(held)) == 100
    assert not set(train) & set(held)
    assert train == tasks.ArithmeticTask(2, "+-", 500, 100, 3).problems("train")
    assert train != tasks.ArithmeticTask(2, "+-", 500, 100, 4).problems("train")
    with pytest.raises(ValueError, match="digits"):
        tasks.ArithmeticTask(digits=0)
    with pytest.raises(ValueError, match="distinct problems"):
        tasks.ArithmeticTask(digits=1, num_train=100, num_heldout=1)


def test_device_reward_matches_host_checker(rng):
    task = tasks.ArithmeticTask(digits=2, ops="+-*", num_train=300, num_heldout=10)
    prompts, answers = task.arrays("train", TOK)
    lc = answers.shape[1] + 1
    texts, comps = [], []
    for i, (a, op, b) in enumerate(task.problems("train")):
        true = str(eval(f"{a}{op}{b}"))
        kind = i % 4
        text = {0: true, 1: true + "0", 2: true[:-1], 3: str(int(true) + rng.integers(1, 9))}[kind]
        ids = TOK.encode(text, eos=True)[:lc]
        comps.append(ids + [TOK.pad_id] * (lc - len(ids)))
        texts.append(TOK.decode(ids))
    got = np.asarray(tasks.correct(jnp.asarray(comps), jnp.asarray(answers), TOK.pad_id))
    prompt_texts = [TOK.decode(p) for p in prompts]
    want = [task.check(p, t) for p, t in zip(prompt_texts, texts, strict=True)]
    np.testing.assert_array_equal(got, np.asarray(want, np.float32))
    assert 0.2 < got.mean() < 0.3  # the kind-0 quarter (kind 2 of a 1-digit answer is "")
    # Length penalty: -lp * tokens / Lc on top of correctness.
    mask = jnp.asarray(comps) != TOK.pad_id
    r = tasks.reward(jnp.asarray(comps), mask, jnp.asarray(answers), TOK.pad_id, 0.5)
    np.testing.assert_allclose(r, got - 0.5 * np.asarray(mask).sum(-1) / lc, rtol=1e-6)


def test_top_p_filter_brute_force(rng):
    logits = jnp.asarray(rng.normal(size=(5, 7)) * 2, DTYPE)
    for p in (0.1, 0.5, 0.9, 0.999):
        got = np.isfinite(np.asarray(sampling.top_p_filter(logits, p)))
        probs = np.asarray(jax.nn.softmax(logits, -1), np.float64)
        for row, keep in zip(probs, got, strict=True):
            order = np.argsort(-row)
            mass, want = 0.0, np.zeros(7, bool)
            for j in order:  # add tokens until the nucleus reaches p
                want[j] = True
                mass += row[j]
                if mass >= p:
                    break
            np.testing.assert_array_equal(keep, want)


def test_sampling_masks_eos_and_kv_cache_matches_full_forward(tiny):
    graphdef, params = tiny
    task = tasks.ArithmeticTask(digits=2, num_train=64, num_heldout=8)
    prompts, _ = task.arrays("train", TOK)
    prompts = jnp.asarray(prompts[:6])
    # Left-pad two rows further to exercise the prompt mask and positions.
    prompts = jnp.concatenate([jnp.full((6, 2), TOK.pad_id, prompts.dtype), prompts], 1)
    prompts = prompts.at[:3, :2].set(jnp.asarray(TOK.encode("11"), prompts.dtype))
    valid = prompts != TOK.pad_id
    lc = 12
    fn = jax.jit(
        lambda p, k: sampling.sample(
            graphdef,
            p,
            k,
            prompts,
            valid,
            max_len=lc,
            eos_id=TOK.eos_id,
            pad_id=TOK.pad_id,
            temperature=0.8,
        )
    )
    out = fn(params, jax.random.key(1))
    toks, mask = np.asarray(out.tokens), np.asarray(out.mask)
    for row, m in zip(toks, mask, strict=True):
        eos = np.flatnonzero(row == TOK.eos_id)
        end = eos[0] + 1 if eos.size else lc
        assert m[:end].all() and not m[end:].any()
        assert (row[end:] == TOK.pad_id).all()
    assert mask.sum() < mask.size  # some row stopped early (an untrained model emits EOS often)
    full = jnp.concatenate([prompts, out.tokens], 1)
    logp, _ = lm_model.token_logprobs(
        graphdef, params, full, jnp.concatenate([valid, out.mask], 1), temperature=0.8
    )
    logp = np.asarray(logp[:, prompts.shape[1] - 1 :])
    tol = 1e-10 if X64 else 2e-5
    np.testing.assert_allclose(np.where(mask, logp, 0), np.asarray(out.logp), atol=tol)


def test_surrogate_gradient_has_the_k_multiplier(tiny, rng):
    """One pass of the token-level surrogate has the gradient of og.lr_loss (the K/N scale)
    on sequence log-probabilities, divided by the constant Lc; RLOO gets 1/N."""
    graphdef, params = tiny
    p_, n, lc, k, lp, objective = 2, 6, 5, 3, 4, "TopM:2"
    tokens = jnp.asarray(rng.integers(3, TOK.vocab_size, size=(p_ * n, lp + lc)), jnp.int32)
    lens = rng.integers(1, lc + 1, size=p_ * n)
    cmask = jnp.asarray(np.arange(lc)[None] < lens[:, None])
    valid = jnp.concatenate([jnp.ones((p_ * n, lp), bool), cmask], 1)
    rewards = jnp.asarray(rng.integers(0, 2, size=(p_, n)), DTYPE)
    roll = rl.Rollout(tokens, valid, cmask, tokens[:, :2])

    def seq_logp(params):
        logp, _ = lm_model.token_logprobs(graphdef, params, tokens, valid)
        return jnp.sum(jnp.where(cmask, logp[:, lp - 1 :], 0), -1).reshape(p_, n)

    old = jax.lax.stop_gradient(
        lm_model.token_logprobs(graphdef, params, tokens, valid)[0][:, lp - 1 :]
    )

    def settings(scale):
        return rl.Settings(p_, n, lc, 1.0, 1.0, 1, 0.2, 0.0, 0.0, scale, TOK.eos_id, TOK.pad_id)

    og_fn, og_name = rl.estimator("ordergrad", k, objective, 0.25)
    rloo_fn, rloo_name = rl.estimator("rloo", k, objective, 0.25)
    assert rl.gradient_scale(og_name, k, n) == k and rl.gradient_scale(rloo_name, k, n) == 1
    s_og, s_rloo = settings(float(k)), settings(1.0)
    a_og, a_rloo = og_fn(rewards), rloo_fn(rewards)

    def scalar(i):
        return lambda q: [
            rl.surrogate_loss(graphdef, q, roll, a_og.reshape(-1), old, old, s_og)[0],
            og.lr_loss(seq_logp(q), rewards, k, objective) / lc,
            rl.surrogate_loss(graphdef, q, roll, a_rloo.reshape(-1), old, old, s_rloo)[0],
            -jnp.mean(jnp.sum(a_rloo * seq_logp(q), -1)) / (n * lc),
        ][i]

    out = jax.jit(lambda q: [jax.grad(scalar(i))(q) for i in range(4)])(params)
    for got, ref in ((out[0], out[1]), (out[2], out[3])):
        for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
            # tunix's Qwen3 keeps parts of its forward in float32 even under x64, so the two
            # routes agree to ~1e-5 there; a wrong K scale would be off by a factor of 3.
            np.testing.assert_allclose(g, r, rtol=1e-4 if X64 else 2e-3, atol=1e-8 if X64 else 2e-6)


def test_gradient_scales_and_estimator_names():
    assert rl.gradient_scale("ordergrad", 4, 16) == 4
    assert rl.gradient_scale("maxpo", 8, 16) == 8
    assert rl.gradient_scale("grpo", 4, 16) == 1
    assert rl.gradient_scale("pkpo", 4, 16) == 16
    for name in ("grpo", "rloo", "dr_grpo", "maxpo", "pkpo", "ordergrad", "cvar_pg"):
        fn, _ = rl.estimator(name, 4, "TopM:2", 0.25)
        assert fn(jnp.ones((2, 8))).shape == (2, 8)
    with pytest.raises(ValueError, match="unknown estimator"):
        rl.estimator("ppo", 4, "TopM:2", 0.25)


def test_config_validation():
    run.validate(QUICK, 1)
    with pytest.raises(ValueError, match="multiples of the data-parallel size"):
        run.validate(dataclasses.replace(QUICK, prompts_per_step=3), 2)
    with pytest.raises(ValueError, match="pass_ks"):
        run.validate(dataclasses.replace(QUICK, pass_ks=(1, 64)), 1)
    with pytest.raises(ValueError, match="group_size"):
        run.validate(dataclasses.replace(QUICK, group_size=1), 1)
