"""The LM loop's pieces: tokenizer, task checker, sampling (masks, top-p, KV cache), the
surrogate's gradient for every estimator (the spec's scale c), the RL step alone, config
validation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_jax as og
from ordergrad_experiments.common.config import (
    BudgetConfig,
    EstimatorConfig,
    GroupsConfig,
    OptimConfig,
    apply_overrides,
)
from ordergrad_experiments.lm import model as lm_model
from ordergrad_experiments.lm import rl, run, sampling, tasks
from ordergrad_experiments.lm import sharding as lm_sharding
from ordergrad_experiments.lm.config import QUICK, LMConfig
from ordergrad_experiments.lm.tokenizer import CharTokenizer
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


def _batch(rng, p_, n, lp, lc):
    tokens = jnp.asarray(rng.integers(3, TOK.vocab_size, size=(p_ * n, lp + lc)), jnp.int32)
    lens = rng.integers(1, lc + 1, size=p_ * n)
    cmask = jnp.asarray(np.arange(lc)[None] < lens[:, None])
    valid = jnp.concatenate([jnp.ones((p_ * n, lp), bool), cmask], 1)
    return rl.Rollout(tokens, valid, cmask, tokens[:, :2])


# once, in float32: the model pins float32 parameters and activations, so x64 changes only host
# scalars, and the check is of the scale c (a wrong one is off by a factor of 3 or more)
@pytest.mark.once
@pytest.mark.parametrize("name", sorted(og.estimators.available()))
def test_lm_gradient_is_c_over_n_sum_for_every_estimator(tiny, rng, name):
    """For every registered estimator, one pass of the LM loop's token-level surrogate has the
    gradient ``-(1/P) sum_g (c/N) sum_i a_gi grad log p(y_gi) / Lc`` (sequence log-probs, the
    spec's c), and for OrderGrad that of ``og.lr_loss`` (the K multiplier)."""
    graphdef, params = tiny
    p_, n, lc, k, lp, objective = 2, 6, 5, 3, 4, "TopM:2"
    roll = _batch(rng, p_, n, lp, lc)
    rewards = jnp.asarray(rng.integers(0, 2, size=(p_, n)), DTYPE)
    options = ("alpha=0.5",) if name == "cvar_pg" else ()
    estimator = EstimatorConfig(name, objective, k, options)
    cfg = dataclasses.replace(QUICK, estimator=estimator, groups=GroupsConfig(p_, n))
    setup = run.setup(cfg, TOK, lc)
    c = og.estimators.spec(name).gradient_scale(n, **estimator.params())
    assert setup.estimator.scale == c
    adv = setup.estimator.advantages(rewards)
    np.testing.assert_array_equal(adv, og.estimators.get(name, **estimator.params())(rewards))

    def seq_logp(params):
        logp, _ = lm_model.token_logprobs(graphdef, params, roll.tokens, roll.valid)
        return jnp.sum(jnp.where(roll.completion_mask, logp[:, lp - 1 :], 0), -1).reshape(p_, n)

    old = jax.lax.stop_gradient(
        lm_model.token_logprobs(graphdef, params, roll.tokens, roll.valid)[0][:, lp - 1 :]
    )
    losses = [
        lambda q: rl.surrogate_loss(graphdef, q, roll, adv.reshape(-1), old, old, setup)[0],
        lambda q: -jnp.sum((c / n) * adv * seq_logp(q)) / (p_ * lc),
    ]
    if name == "ordergrad":
        losses.append(lambda q: og.lr_loss(seq_logp(q), rewards, k, objective) / lc)
    got, *refs = jax.jit(lambda q: [jax.grad(f)(q) for f in losses])(params)
    for ref in refs:
        for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
            # tunix's Qwen3 keeps parts of its forward in float32 even under x64, so the two
            # routes agree to ~1e-5 there; a wrong scale would be off by a factor of 3 or more.
            np.testing.assert_allclose(g, r, rtol=1e-4 if X64 else 2e-3, atol=1e-8 if X64 else 2e-6)


def test_unknown_estimator_is_refused():
    with pytest.raises(ValueError, match="unknown estimator"):
        run.setup(dataclasses.replace(QUICK, estimator=EstimatorConfig("ppo")), TOK, 4)


def _plain(tree) -> list[np.ndarray]:
    """The leaves of ``tree`` as NumPy arrays (typed PRNG keys as their key data)."""

    def leaf(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(x))
        return np.asarray(x)

    return [leaf(x) for x in jax.tree.leaves(tree)]


@pytest.mark.once  # state bookkeeping and determinism: the dtype changes neither
def test_train_step_alone(tiny):
    """``rl.train_step`` on a tiny config, without ``run``: two steps advance the typed state
    (step, key, params), return finite metrics, and the step is a pure function of the state
    (the same state in gives the same state and metrics out)."""
    graphdef, params = tiny
    cfg = dataclasses.replace(
        QUICK,
        groups=GroupsConfig(2, 4),
        estimator=EstimatorConfig("rloo"),
        length_penalty=0.5,  # rewards differ within groups, so the step learns
        kl_coef=0.1,
        optim=OptimConfig(lr=1e-2, grad_clip=1.0),
    )
    task = tasks.ArithmeticTask(digits=1, num_train=32, num_heldout=4)
    prompts, answers = task.arrays("train", TOK)
    mesh = lm_sharding.make_mesh((1, 1), jax.devices()[:1])
    setup = run.setup(cfg, TOK, max_len=answers.shape[1] + 1)
    tx = cfg.optim.make(cfg.budget.total)
    own = lm_sharding.shard_params(jax.tree.map(jnp.copy, params), mesh)  # learn donates it
    state = run.initial_state(cfg, own, tx, mesh)
    assert isinstance(state, rl.RLState) and state.ref_params is not None
    phases = rl.make_phases(graphdef, tx, prompts, answers, setup, mesh, None, None)
    copy = jax.tree.map(jnp.copy, state)
    first, metrics = rl.train_step(phases, state, ks=(1, 2))
    again, metrics_again = rl.train_step(phases, copy, ks=(1, 2))
    assert int(first.step) == 1
    plain = _plain((first, metrics)), _plain((again, metrics_again))
    for a, b in zip(*plain, strict=True):
        np.testing.assert_array_equal(a, b)
    second, metrics = rl.train_step(phases, first, ks=(1, 2))
    assert int(second.step) == 2
    assert not np.array_equal(jax.random.key_data(second.key), jax.random.key_data(first.key))
    moved = [
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(second.params), jax.tree.leaves(params), strict=True)
    ]
    assert max(moved) > 0
    want = {"reward", "correct", "entropy", "adv_std", "loss", "grad_norm", "kl", "clip_frac"}
    assert want | {"train_pass@1", "train_pass@2", "completion_tokens"} <= set(metrics)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert float(metrics["kl"]) > 0  # the second step's policy differs from the reference


def _xla_fuses_by_default() -> bool:
    """Whether this jaxlib's XLA:CPU compiles a matmul into a YNNPACK fusion with no options."""
    f = jax.jit(lambda a, b: jnp.tanh(a @ b))
    x = jnp.ones((64, 64), jnp.float32)
    return "__ynn_fusion" in f.lower(x, x).compile().as_text()


def test_learn_cpu_fusions_change_the_kernels_not_the_values(tiny):
    """The learn phase compiled with XLA:CPU's YNNPACK fusions (the default on CPU) runs fused
    kernels and gives the loss, gradient norm and updated parameters of XLA's default kernels
    (to float tolerance); without fusions it is compiled with no options (XLA's defaults, which
    fuse too from jaxlib 0.11)."""
    if X64:  # off under x64 (jaxlib 0.9.2's YNNPACK fusions crash on float64 products)
        assert rl.learn_compiler_options(("dot", "eltwise")) is None
        return
    graphdef, params = tiny
    cfg = dataclasses.replace(
        QUICK, groups=GroupsConfig(2, 8), length_penalty=0.5, ppo_epochs=2, kl_coef=0.1
    )
    task = tasks.ArithmeticTask(digits=1, num_train=32, num_heldout=4)
    prompts, answers = task.arrays("train", TOK)
    mesh = lm_sharding.make_mesh((1, 1), jax.devices()[:1])
    tx = cfg.optim.make(cfg.budget.total)
    outs, texts = [], []
    for fusions in (("dot", "eltwise"), ()):
        c = dataclasses.replace(cfg, learn_cpu_fusions=fusions)
        setup = run.setup(c, TOK, max_len=answers.shape[1] + 1)
        state = run.initial_state(c, jax.tree.map(jnp.copy, params), tx, mesh)
        phases = rl.make_phases(graphdef, tx, prompts, answers, setup, mesh, None, None)
        rollout = phases.sample(state.params, jax.random.key(1))
        scored = phases.score(state.params, state.ref_params, rollout)
        args = (rollout, phases.advantage(scored.rewards), scored.old_logp, scored.ref_logp)
        texts.append(phases.learn.lower(state.params, state.opt_state, *args).compile().as_text())
        outs.append(_plain(phases.learn(state.params, state.opt_state, *args)))
    options = rl.learn_compiler_options(("dot", "eltwise"))
    if jax.default_backend() == "cpu" and options is not None:
        assert "__ynn_fusion" in texts[0]
        if not _xla_fuses_by_default():  # jaxlib 0.9-0.10; from 0.11 XLA:CPU fuses by default
            assert "__ynn_fusion" not in texts[1]
    assert rl.learn_compiler_options(()) is None
    for fused, plain in zip(*outs, strict=True):
        np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-6)


def test_config_validation():
    run.validate(QUICK, 1)
    with pytest.raises(ValueError, match="learn_cpu_fusions"):
        run.validate(dataclasses.replace(QUICK, learn_cpu_fusions=("matmul",)), 1)
    with pytest.raises(ValueError, match="allowed"):
        rl.learn_compiler_options(("dot", "matmul"))
    with pytest.raises(ValueError, match="multiples of the data-parallel size"):
        run.validate(dataclasses.replace(QUICK, groups=GroupsConfig(3, 8)), 2)
    with pytest.raises(ValueError, match="pass_ks"):
        run.validate(dataclasses.replace(QUICK, pass_ks=(1, 64)), 1)
    with pytest.raises(ValueError, match=r"budget\.num_chunks \(5\) must be <= budget\.total"):
        run.validate(dataclasses.replace(QUICK, budget=BudgetConfig(4, 5)), 1)
    with pytest.raises(ValueError, match=r"budget\.total, budget\.num_chunks"):
        run.validate(dataclasses.replace(QUICK, budget=BudgetConfig(0, 1)), 1)
    with pytest.raises(ValueError, match="group_size"):
        run.validate(dataclasses.replace(QUICK, groups=GroupsConfig(4, 1)), 1)


def test_budget_is_the_one_name_of_the_training_budget():
    """The RL steps are ``budget.total`` (default 300 in 6 chunks, quick 4 in 2); ``--set
    budget.total=``/``budget.num_chunks=`` set them (``num_chunks`` bare too), and the old name
    ``steps`` is refused in one line that names ``budget.total``."""
    assert LMConfig().budget == BudgetConfig(total=300, num_chunks=6)
    assert QUICK.budget == BudgetConfig(total=4, num_chunks=2)
    cfg = apply_overrides(LMConfig(), ["budget.total=10", "num_chunks=2"])
    assert cfg.budget == BudgetConfig(total=10, num_chunks=2)
    with pytest.raises(ValueError, match=r"'steps' was renamed: use budget\.total") as err:
        apply_overrides(LMConfig(), ["steps=10"])
    assert "\n" not in str(err.value)
    assert apply_overrides(LMConfig(), ["sft_steps=10"]).sft_steps == 10


def test_smoothed_nll_is_cross_entropy_against_the_smoothed_target(rng):
    """sft.smoothed_nll equals -sum_v q_v log softmax(z)_v with q = (1-e) onehot + e/V, written
    out by hand in float64; e = 0 is the plain NLL; out-of-range smoothing is refused."""
    from ordergrad_experiments.lm import sft

    z = rng.normal(size=(3, 5, 7))
    t = rng.integers(0, 7, size=(3, 5))
    logz = z - np.log(np.exp(z).sum(-1, keepdims=True))
    for e in (0.0, 0.3):
        q = np.full(z.shape, e / 7) + (1 - e) * np.eye(7)[t]
        want = -(q * logz).sum(-1)
        got = sft.smoothed_nll(jnp.asarray(z, jnp.float32), jnp.asarray(t), e)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="sft_smoothing must be in"):
        pool = np.zeros((2, 3), np.int32)
        sft.make_sft(None, None, pool, pool, pad_id=0, batch=2, steps=1, smoothing=1.0)


def test_smoothed_nll_minimiser_is_the_smoothed_target():
    """Gradient descent on the logits of one position converges to p(target) = 1 - e (V-1)/V,
    the value the SFT docstring promises (so pass@1 of a fully trained smoothed model is
    about that to the power of the answer length)."""
    from ordergrad_experiments.lm import sft

    e, v = 0.3, 24
    z = jnp.zeros(v)
    grad = jax.jit(jax.grad(lambda z: sft.smoothed_nll(z, jnp.asarray(3), e)))
    for _ in range(3000):
        z = z - 1.0 * grad(z)
    p = np.asarray(jax.nn.softmax(z))
    np.testing.assert_allclose(p[3], 1 - e * (v - 1) / v, atol=1e-4)
