"""The scratchpad task (answers at two lengths): the scratchpad's column sums, the device checker
against the host checker on every completion kind, and the SFT mixture of the two forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ordergrad_experiments.lm import model as lm_model
from ordergrad_experiments.lm import sft, tasks
from ordergrad_experiments.lm.tokenizer import CharTokenizer

TOK = CharTokenizer()


def test_scratchpad_text_is_the_column_sums_with_carries():
    task = tasks.ArithmeticTask(digits=3, num_train=10, num_heldout=10, scratchpad=True)
    assert task.scratch_text(456, "+", 789) == "(15,14,12)"  # 6+9, 5+8+1, 4+7+1
    assert task.scratch_text(123, "+", 456) == "(9,7,5)"
    assert task.scratch_text(5, "+", 95) == "(10,10,1)"
    assert task.scratch_len == 10 and task.completion_len == 15
    # Brute force over all 2-digit sums: the last digits of the column sums, then the final
    # carry, spell the sum; no scratchpad is longer than scratch_len.
    task2 = tasks.ArithmeticTask(digits=2, num_train=10, num_heldout=10, scratchpad=True)
    for a in range(100):
        for b in range(100):
            text = task2.scratch_text(a, "+", b)
            sums = [int(x) for x in text[1:-1].split(",")]
            digits = "".join(str(s % 10) for s in reversed(sums))
            assert int(str(sums[-1] // 10) + digits) == a + b
            assert len(text) <= task2.scratch_len
    with pytest.raises(ValueError, match="ops='\\+' only"):
        tasks.ArithmeticTask(digits=2, ops="+-", scratchpad=True)
    with pytest.raises(ValueError, match="needs scratchpad=True"):
        tasks.ArithmeticTask(digits=2).scratch_answers("train", TOK)


def test_device_checker_skips_the_scratchpad_like_the_host_checker(rng):
    task = tasks.ArithmeticTask(digits=3, num_train=400, num_heldout=10, scratchpad=True)
    prompts, answers = task.arrays("train", TOK)
    lc = task.completion_len + 1
    texts, comps = [], []
    for i, (a, op, b) in enumerate(task.problems("train")):
        true, pad = str(a + b), task.scratch_text(a, op, b)
        wrong = str(a + b + int(rng.integers(1, 9)))
        kind = i % 8
        text = {
            0: true,
            1: pad + true,
            2: "(1,2)" + true,  # a wrong scratchpad is not checked
            3: pad + wrong,
            4: pad[:-1] + true,  # never closed: the answer must start the completion
            5: "()" + true,
            6: true + pad,  # a scratchpad after the answer is extra text
            7: "1" + pad + true,  # not a leading scratchpad
        }[kind]
        ids = TOK.encode(text, eos=True)[:lc]
        comps.append(ids + [TOK.pad_id] * (lc - len(ids)))
        texts.append(TOK.decode(ids))
    ids = task.scratch_ids(TOK)
    got = np.asarray(tasks.correct(jnp.asarray(comps), jnp.asarray(answers), TOK.pad_id, ids))
    prompt_texts = [TOK.decode(p) for p in prompts]
    want = [task.check(p, t) for p, t in zip(prompt_texts, texts, strict=True)]
    np.testing.assert_array_equal(got, np.asarray(want, np.float32))
    kinds = np.arange(len(comps)) % 8
    np.testing.assert_array_equal(got[np.isin(kinds, (0, 1, 2, 5))], 1.0)
    np.testing.assert_array_equal(got[np.isin(kinds, (3, 4, 6, 7))], 0.0)
    # Without the scratchpad only the short form counts (the other tasks are unchanged).
    plain = np.asarray(tasks.correct(jnp.asarray(comps), jnp.asarray(answers), TOK.pad_id))
    np.testing.assert_array_equal(plain, (kinds == 0).astype(np.float32))
    # An answer cut off by the completion's end is wrong, not read out of bounds.
    short = jnp.asarray(comps)[:, : answers.shape[1] + 2]
    cut = np.asarray(tasks.correct(short, jnp.asarray(answers), TOK.pad_id, ids))
    assert not cut[kinds == 1].any() and cut[kinds == 0].all()


def test_scratch_answers_and_after_close():
    task = tasks.ArithmeticTask(digits=2, num_train=50, num_heldout=5, scratchpad=True)
    long_a = task.scratch_answers("train", TOK)
    assert long_a.shape == (50, task.completion_len)
    for row, (a, op, b) in zip(long_a, task.problems("train"), strict=True):
        assert TOK.decode(row) == task.scratch_text(a, op, b) + str(a + b)
    close = task.scratch_ids(TOK)[1]
    after = np.asarray(sft.after_close(jnp.asarray(long_a), close))
    for row, mask in zip(long_a, after, strict=True):
        k = list(row).index(close)
        np.testing.assert_array_equal(mask, np.arange(len(row)) > k)
    plain = jnp.asarray(task.arrays("train", TOK)[1])
    assert np.asarray(sft.after_close(plain, close)).all()  # no bracket: every position


@pytest.mark.once  # a short training run: CI runs training once, in float32
def test_sft_learns_both_forms_in_the_given_proportion():
    """A 1-layer model trained on a 30% scratchpad mixture opens a scratchpad about 30% of the
    time at its first completion token (what the length study's start relies on)."""
    task = tasks.ArithmeticTask(digits=1, num_train=90, num_heldout=10, scratchpad=True)
    prompts, answers = task.arrays("train", TOK)
    long_a = task.scratch_answers("train", TOK)
    sizes = lm_model.TinyQwen3(num_layers=1, embed_dim=32, hidden_dim=64, head_dim=8)
    graphdef, params = lm_model.split(lm_model.tiny_qwen3(sizes, TOK.vocab_size, jax.random.key(0)))
    tx = optax.adam(3e-3)
    open_id, close_id = task.scratch_ids(TOK)
    fn = sft.make_sft(
        graphdef, tx, prompts, answers, TOK.pad_id, 64, 300, 0.0,
        sft.Scratchpad(long_a, 0.3, close_id),
    )  # fmt: skip
    params, _, losses = fn(params, tx.init(params), jax.random.key(1))
    assert float(losses[-20:].mean()) < float(losses[:20].mean())
    logits = lm_model.logits(graphdef, params, jnp.asarray(prompts), jnp.asarray(prompts) != 0)
    p_open = np.asarray(jax.nn.softmax(logits[:, -1], -1))[:, open_id]
    # The mixture's log-loss optimum is 0.3 at every prompt; 300 steps of batch 64 see about
    # 5760 first-token targets, so the mean is within a few standard errors of 0.3.
    assert abs(p_open.mean() - 0.3) < 0.06


@pytest.mark.training  # an SFT warm start and two diagnose setups: run once, in float32
def test_diagnose_forms_split_the_evaluation_exactly():
    """``diagnose forms`` splits the held-out evaluation's samples (same key) by form: the shares
    sum to 1 and the share-weighted solve rates and lengths give back pass@1 and the length."""
    import dataclasses

    from ordergrad_experiments.lm import diagnose
    from ordergrad_experiments.lm.config import QUICK
    from ordergrad_experiments.lm.forms import form_stats

    cfg = dataclasses.replace(QUICK, scratchpad=0.5, sft_steps=40)
    bench = diagnose.prepare(cfg)
    rows = form_stats(bench, bench.params, jax.random.fold_in(bench.eval_key, 0))
    assert [r["form"] for r in rows] == ["direct", "scratchpad"]
    share = np.array([r["share"] for r in rows])
    assert share.sum() == pytest.approx(1.0) and (share > 0).all()
    ev = bench.sft_row
    weighted = sum(r["share"] * r["correct"] for r in rows)
    assert weighted == pytest.approx(ev["pass@1"], abs=1e-6)
    assert sum(r["share"] * r["length"] for r in rows) == pytest.approx(ev["length"], rel=1e-6)
    assert ev["scratchpad"] == pytest.approx(share[1], abs=1e-6)
    plain = diagnose.prepare(dataclasses.replace(QUICK, sft_steps=1))
    with pytest.raises(ValueError, match="scratchpad task"):
        form_stats(plain, plain.params, jax.random.key(0))
