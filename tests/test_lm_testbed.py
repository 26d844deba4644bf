"""The LM testbed (experiments/lm/testbed.py): the carry task's answers and carry-chain mix, the
common random numbers of the evaluation, pass@k from per-prompt counts, the counts file."""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_jax as og
from ordergrad_experiments.common.config import EstimatorConfig
from ordergrad_experiments.lm import model as lm_model
from ordergrad_experiments.lm import run, sampling, testbed
from ordergrad_experiments.lm.config import QUICK
from ordergrad_experiments.lm.tokenizer import CharTokenizer

TOK = CharTokenizer()
CARRY = dataclasses.replace(QUICK, task="carry", sft_smoothing=0.0, digits=3)
"""The quick preset on the carry task (3 digits; the carry task takes no label smoothing)."""
SIZES = lm_model.TinyQwen3(num_layers=1, embed_dim=32, hidden_dim=64, head_dim=8)


def chain_by_hand(a: int, b: int, digits: int) -> int:
    """Longest run of carrying columns, column by column on the decimal strings."""
    sa, sb = f"{a:0{digits}d}"[::-1], f"{b:0{digits}d}"[::-1]
    carry = run_len = best = 0
    for x, y in zip(sa, sb, strict=True):
        carry = (int(x) + int(y) + carry) // 10
        run_len = run_len + 1 if carry else 0
        best = max(best, run_len)
    return best


def test_carry_chain_matches_column_by_column():
    assert (
        chain_by_hand(49999, 1, 5) == 4
        and chain_by_hand(99999, 1, 5) == 5
        and chain_by_hand(0, 0, 3) == 0
    )
    assert chain_by_hand(95, 5, 2) == 2 and chain_by_hand(5050, 5050, 4) == 1
    rng = np.random.default_rng(0)
    for digits in (1, 3, 5):
        a = rng.integers(0, 10**digits, 400)
        b = rng.integers(0, 10**digits, 400)
        want = [chain_by_hand(int(x), int(y), digits) for x, y in zip(a, b, strict=True)]
        np.testing.assert_array_equal(testbed.carry_chain(a, b, digits), want)


def test_carry_task_answers_splits_and_arrays():
    task = testbed.CarryTask(
        digits=4, num_train=300, num_heldout=100, num_validation=50, seed=2, carry_keep=0.2
    )
    splits = {s: task.problems(s) for s in ("train", "heldout", "validation")}
    assert [len(v) for v in splits.values()] == [300, 100, 50]
    sets = {s: set(v) for s, v in splits.items()}
    assert all(len(sets[s]) == len(splits[s]) for s in sets)  # distinct
    assert not sets["train"] & sets["heldout"] and not sets["train"] & sets["validation"]
    assert not sets["heldout"] & sets["validation"]
    assert splits == {s: dataclasses.replace(task).problems(s) for s in splits}  # deterministic
    assert splits["train"] != dataclasses.replace(task, seed=3).problems("train")
    for a, op, b in splits["heldout"] + splits["train"][:50]:
        assert op == "+" and 0 <= a < 10**4 and 0 <= b < 10**4
        prompt = task.prompt_text(a, op, b)
        assert prompt == f"{a:04d}+{b:04d}=" and task.check(prompt, str(a + b))
        assert not task.check(prompt, str(a + b + 1))
    prompts, answers = task.arrays("validation", TOK)
    for (a, _, b), p, ans in zip(splits["validation"], prompts, answers, strict=True):
        assert TOK.decode(p) == f"{a:04d}+{b:04d}=" and TOK.decode(ans) == str(a + b)
    assert answers.shape[1] == task.answer_len
    for bad in (dict(ops="+-"), dict(carry_keep=0.0), dict(num_validation=-1)):
        with pytest.raises(ValueError):
            testbed.CarryTask(digits=4, num_train=10, num_heldout=10, **bad)
    with pytest.raises(ValueError, match="split"):
        task.problems("test")


def test_rl_split_is_disjoint_and_leaves_the_other_splits_as_they_were():
    kw = dict(digits=3, num_train=300, num_heldout=100, num_validation=50, seed=4, carry_keep=0.2)
    base, task = testbed.CarryTask(**kw), testbed.CarryTask(**kw, num_rl=400)
    names = ("train", "heldout", "validation")
    assert {s: task.problems(s) for s in names} == {s: base.problems(s) for s in names}
    rl = task.problems("rl")
    assert len(rl) == len(set(rl)) == 400 and not base.problems("rl")
    for s in names:
        assert not set(rl) & set(task.problems(s)), s
    with pytest.raises(ValueError, match="num_rl"):
        testbed.CarryTask(**{**kw, "num_rl": -1})


def test_carry_chain_mix_of_the_splits():
    """Train: the uniform chain distribution reweighted by keep ** max(0, L - 1); held-out and
    RL: uniform. Each within 4.5 standard errors per chain length."""
    digits, keep = 3, 0.3
    task = testbed.CarryTask(
        digits=digits, num_train=4000, num_heldout=4000, carry_keep=keep, num_rl=4000
    )
    grid = np.arange(10**digits)
    every = testbed.carry_chain(grid[:, None], grid[None, :], digits).ravel()
    uniform = np.bincount(every, minlength=digits + 1) / every.size
    weighted = uniform * keep ** np.maximum(np.arange(digits + 1) - 1, 0)
    splits = (("train", weighted / weighted.sum()), ("heldout", uniform), ("rl", uniform))
    for split, want in splits:
        chains = task.chains(split)
        got = np.bincount(chains, minlength=digits + 1) / chains.size
        se = np.sqrt(want * (1 - want) / chains.size) + 1e-3
        assert np.all(np.abs(got - want) < 4.5 * se), (split, got, want)


@pytest.mark.parametrize("samples", [1, 6, 9])
def test_pass_at_k_from_counts_is_the_subset_average(samples):
    for c in range(samples + 1):
        draws = np.array([1] * c + [0] * (samples - c))
        for k in range(1, samples + 1):
            subsets = list(itertools.combinations(draws, k))
            want = np.mean([max(s) for s in subsets])
            np.testing.assert_allclose(testbed.pass_at_k(np.array([c]), samples, k), [want])
    with pytest.raises(ValueError, match="k must be"):
        testbed.pass_at_k(np.array([0]), samples, samples + 1)
    with pytest.raises(ValueError, match="counts"):
        testbed.pass_at_k(np.array([samples + 1]), samples, 1)


def test_pass_at_k_from_counts_matches_og_metrics():
    rng = np.random.default_rng(1)
    ok = (rng.random((64, 128)) < rng.random((64, 1)) ** 3).astype(np.float32)
    counts = ok.sum(-1).astype(np.uint8)
    for k in (1, 16, 64, 128):
        want = np.asarray(og.metrics.pass_at_k(jnp.asarray(ok), k))
        np.testing.assert_allclose(testbed.pass_at_k(counts, 128, k), want, atol=2e-5)


def test_start_stats_and_histogram():
    counts = np.array([0, 0, 1, 3, 4, 32, 63, 64, 64, 10], np.uint8)
    stats = testbed.start_stats(counts, 64, np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 0]), (1, 64))
    rates = counts / 64
    assert stats["pass@1"] == pytest.approx(rates.mean())
    assert stats["pass@64"] == pytest.approx(np.mean(counts > 0))
    assert stats["hard"] == pytest.approx(0.2)  # 1/64, 3/64 are < 0.05; 4/64 is not
    assert stats["never"] == 0.2 and stats["always"] == 0.2 and stats["greedy"] == 0.4
    hist = {r["bin"]: r["share"] for r in testbed.rate_histogram(rates)}
    assert sum(hist.values()) == pytest.approx(1.0)
    assert hist["0"] == 0.2 and hist["(0, 0.05)"] == pytest.approx(0.2) and hist["1"] == 0.2
    by_chain = testbed.solve_rate_by_chain(counts, 64, np.array([0] * 5 + [2] * 5))
    assert [r["prompts"] for r in by_chain] == [5, 5]
    assert by_chain[1]["rate"] == pytest.approx(rates[5:].mean())


def test_counts_file_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    counts = testbed.Counts(
        rng.integers(0, 129, (6, 512)).astype(np.uint8), np.arange(6) * 50, np.arange(512), 128
    )
    path = testbed.write_counts(tmp_path / "counts.npz", counts)
    back = testbed.read_counts(path)
    assert back.samples == 128 and back.counts.dtype == np.uint8
    for got, want in zip(back[:3], counts[:3], strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="uint8"):
        testbed.write_counts(tmp_path / "x.npz", counts._replace(counts=counts.counts * 1.0))
    with pytest.raises(ValueError, match="exceeds"):
        testbed.write_counts(tmp_path / "x.npz", counts._replace(samples=10))
    with pytest.raises(ValueError, match="len"):
        testbed.write_counts(tmp_path / "x.npz", counts._replace(steps=np.arange(5)))


@pytest.fixture(scope="module")
def tiny():
    model = lm_model.tiny_qwen3(SIZES, TOK.vocab_size, jax.random.key(0))
    return lm_model.split(model)


@pytest.mark.once  # key bookkeeping: the dtype does not change which keys a row gets
def test_row_keys_give_batch_independent_samples(tiny):
    """Common random numbers: a row's completion depends on its own key only."""
    graphdef, params = tiny
    prompts = jnp.asarray(np.random.default_rng(3).integers(3, 13, (6, 5)), jnp.int32)
    keys = testbed.row_keys(7, jnp.arange(3), 2)
    kw = dict(max_len=6, eos_id=TOK.eos_id, pad_id=TOK.pad_id)
    full = sampling.sample(graphdef, params, keys, prompts, prompts > 0, **kw)
    perm = np.array([3, 0, 5, 1, 4, 2])  # the same rows in another order (one compiled shape)
    moved = sampling.sample(graphdef, params, keys[perm], prompts[perm], prompts[perm] > 0, **kw)
    np.testing.assert_array_equal(full.tokens[perm], moved.tokens)
    other = sampling.sample(
        graphdef, params, testbed.row_keys(8, jnp.arange(3), 2), prompts, prompts > 0, **kw
    )
    assert not np.array_equal(full.tokens, other.tokens)  # the checkpoint enters the key
    assert testbed.row_keys(7, jnp.arange(3), 2).shape == (6,)


@pytest.mark.once  # key bookkeeping: the dtype does not change which keys a row gets
def test_counts_are_common_across_methods_and_seeds(tiny):
    """The key of completion j of prompt i at checkpoint t is a function of (t, i, j) only:
    scored against the completions the keys of j = 0 give, every prompt counts at least one
    success at t (and none at another t), whatever the method, the RL seed or which prompts
    are counted together."""
    graphdef, params = tiny
    cfg = dataclasses.replace(CARRY, num_train=200, num_heldout=24, eval_prompts=24)
    counts = {}
    for name, seed in (("ordergrad", 0), ("grpo", 5)):
        c = dataclasses.replace(cfg, seed=seed, estimator=EstimatorConfig(name=name))
        ts = run.task_setup(c, TOK)
        assert isinstance(ts.task, testbed.CarryTask)
        prompts = ts.heldout[0]
        first = ts.step.sample(graphdef, params, testbed.row_keys(3, jnp.arange(24), 1), prompts)
        count = testbed.make_count(
            graphdef, prompts, np.asarray(first.tokens), ts.step, samples=40, rows_per_call=400
        )
        counts[name] = count(params, 3)
    np.testing.assert_array_equal(counts["ordergrad"], counts["grpo"])
    assert counts["grpo"].dtype == np.uint8 and counts["grpo"].shape == (24,)
    assert np.all(counts["grpo"] >= 1)
    np.testing.assert_array_equal(count(params, 3, [4, 9, 15]), counts["grpo"][[4, 9, 15]])
    assert np.all(count(params, 4) < counts["grpo"])
    with pytest.raises(ValueError, match="task"):
        run.task_setup(dataclasses.replace(cfg, task="countdown"), TOK)


@pytest.mark.training
def test_per_row_draws_follow_the_softmax(tiny):
    """The first token drawn with per-row keys has the model's distribution (chi-square-free
    check: each token's frequency within 5 standard errors of its probability)."""
    graphdef, params = tiny
    n = 2000
    prompts = jnp.full((n, 4), 5, jnp.int32)
    keys = jax.random.split(jax.random.key(11), n)
    out = sampling.sample(
        graphdef, params, keys, prompts, prompts > 0, max_len=1, eos_id=-1, pad_id=TOK.pad_id
    )
    logits = lm_model.logits(graphdef, params, prompts[:1], prompts[:1] > 0)[0, -1]
    probs = np.asarray(jax.nn.softmax(logits))
    freq = np.bincount(np.asarray(out.tokens[:, 0]), minlength=probs.size) / n
    se = np.sqrt(probs * (1 - probs) / n) + 1e-3
    assert np.all(np.abs(freq - probs) < 5 * se)
    assert math.isclose(freq.sum(), 1.0)


def test_append_counts_replaces_a_rerun_step(tmp_path):
    path, ids = tmp_path / "counts.npz", np.arange(5)
    testbed.append_counts(path, 0, np.array([1, 2, 3, 4, 5]), ids, 8)
    testbed.append_counts(path, 20, np.array([0, 0, 1, 1, 8]), ids, 8)
    testbed.append_counts(path, 10, np.array([7, 7, 7, 7, 7]), ids, 8)
    got = testbed.append_counts(path, 20, np.array([2, 2, 2, 2, 2]), ids, 8)  # a rerun chunk
    back = testbed.read_counts(path)
    np.testing.assert_array_equal(back.steps, [0, 10, 20])
    np.testing.assert_array_equal(back.counts[:, 0], [1, 7, 2])
    np.testing.assert_array_equal(got.counts, back.counts)
    with pytest.raises(ValueError, match="other prompts"):
        testbed.append_counts(path, 30, np.zeros(5), ids, 16)


@pytest.mark.training
def test_lm_rl_writes_counts_at_every_checkpoint(tmp_path):
    """A quick carry-task run (RL on the uniform RL split) with counts: one row at the start
    and one per chunk."""
    from ordergrad_experiments.common.runs import RunWriter

    cfg = dataclasses.replace(CARRY, count_samples=16, num_rl=200)
    writer = RunWriter("lm-rl", root=tmp_path, run_id="r")
    run.run(cfg, writer)
    back = testbed.read_counts(writer.path / "counts.npz")
    np.testing.assert_array_equal(back.steps, [0, 2, 4])
    assert back.counts.shape == (3, cfg.eval_prompts) and back.samples == 16
    assert back.counts.max() <= 16


def test_validation_split_for_step_sizes():
    cfg = dataclasses.replace(CARRY, num_heldout=40, num_validation=32, eval_prompts=32)
    held = run.task_setup(cfg, TOK).heldout[0]
    val = run.task_setup(dataclasses.replace(cfg, eval_split="validation"), TOK).heldout[0]
    want, _ = run.task_setup(cfg, TOK).task.arrays("validation", TOK)
    np.testing.assert_array_equal(val, want[:32])
    assert not {tuple(r) for r in held} & {tuple(r) for r in val}
    run.validate(dataclasses.replace(cfg, eval_split="validation"), 1)
    ts = run.task_setup(dataclasses.replace(cfg, num_rl=48), TOK)
    np.testing.assert_array_equal(ts.rl[0], ts.task.arrays("rl", TOK)[0])
    assert ts.rl[0].shape[0] == 48
    plain = run.task_setup(cfg, TOK)  # no RL split: RL samples the SFT pool
    np.testing.assert_array_equal(plain.rl[0], plain.train[0])
    for bad, match in (
        (dict(eval_split="validation", eval_prompts=40), "validation split's size"),
        (dict(eval_split="test"), "eval_split"),
        (dict(task="arithmetic", eval_split="validation"), "needs task='carry'"),
        (dict(count_samples=256), "count_samples"),
        (dict(sft_smoothing=0.3), "set sft_smoothing=0"),
        (dict(task="arithmetic", num_rl=8, sft_smoothing=0.3), "num_rl > 0 needs task='carry'"),
    ):
        with pytest.raises(ValueError, match=match):
            run.validate(dataclasses.replace(cfg, **bad), 1)
