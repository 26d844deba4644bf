"""The LM learning diagnostics (experiments/lm/diagnose.py): the update rules they compare, the
gradient statistics, and (training) the finding at the quick size: one batch's gradient is
mostly noise, and Adam's first step (its sign) is less aligned with the mean gradient than the
gradient itself."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ordergrad_experiments.common.config import GroupsConfig
from ordergrad_experiments.lm import diagnose
from ordergrad_experiments.lm.config import QUICK


def _params():
    k = iter(jax.random.split(jax.random.key(0), 4))
    return {
        "embedder": {"input_embedding": jax.random.normal(next(k), (5, 3))},
        "final_norm": {"w": jnp.ones(3)},
        "layers": [
            {
                "attn": {"q_proj": {"w": jax.random.normal(next(k), (3, 2))}},
                "mlp": {"up_proj": {"kernel": jax.random.normal(next(k), (3, 4))}},
            }
        ],
    }


def test_groups_of_the_model_paths():
    groups = [diagnose.group_of(path) for path, _ in jax.tree_util.tree_leaves_with_path(_params())]
    assert groups == ["embed", "norm", "attn", "mlp"]


def _step(spec, params, grads):
    tx = diagnose.make_tx(spec)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


def test_frozen_group_does_not_move_and_ngd_steps_a_fixed_length():
    params = _params()
    grads = jax.tree.map(lambda x: jnp.full_like(x, 0.3), params)
    up = _step("adam:lr=1e-3,embed=0", params, grads)
    assert float(jnp.max(jnp.abs(up["embedder"]["input_embedding"]))) == 0.0
    np.testing.assert_allclose(up["layers"][0]["mlp"]["up_proj"]["kernel"], -1e-3, rtol=1e-4)
    up = _step("ngd:lr=0.01,clip=0", params, grads)
    np.testing.assert_allclose(float(optax.global_norm(up)), 0.01, rtol=1e-5)
    up = _step("sgd:lr=0.1,clip=0,norm=2", params, grads)
    np.testing.assert_allclose(up["final_norm"]["w"], -0.06, rtol=1e-5)
    np.testing.assert_allclose(up["embedder"]["input_embedding"], -0.03, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown"):
        diagnose.make_tx("adam:lr=1e-3,beta=0.9")
    with pytest.raises(ValueError, match="unknown rule"):
        diagnose.make_tx("lion:lr=1e-3")


def test_gradient_report_on_known_gradients():
    base = _params()
    same = diagnose.gradient_report([base, base, base])
    assert same["cos_pairs_all"] == pytest.approx(1.0)
    assert same["cos_batch_loo"] == pytest.approx(1.0)
    shares = [same[f"share_batch_{g}"] for g in diagnose.GROUPS]
    assert sum(shares) == pytest.approx(1.0)
    # independent noise around a common signal: the cosine estimates |s|^2 / (|s|^2 + |noise|^2)
    rng = np.random.default_rng(0)
    signal = rng.normal(size=20_000)
    grads = [{"layers": {"mlp": signal + 2.0 * rng.normal(size=signal.size)}} for _ in range(6)]
    rep = diagnose.gradient_report(grads)
    assert rep["cos_pairs_all"] == pytest.approx(1 / 5, abs=0.02)


@pytest.mark.training
def test_one_batch_gradient_is_noise_dominated_and_adam_sign_step_is_less_aligned():
    """The finding (reports/lm/RESULTS.md, "Why RL did not learn"), at the quick size: the
    gradients of two independent batches are far from parallel, and Adam's first step
    ``-lr sign(g)`` points less along the mean gradient than ``g`` itself; the policy's KL
    to the start grows quadratically along the mean gradient (the curvature)."""
    # 300 SFT steps without label smoothing: a start that solves a few problems, as the old
    # default start did (60 steps, or smoothing at this size, leave every reward 0)
    cfg = dataclasses.replace(QUICK, sft_steps=300, sft_smoothing=0.0, groups=GroupsConfig(8, 8))
    bench = diagnose.prepare(cfg)
    assert abs(float(bench.kl_to_sft(bench.params))) < 1e-5
    grads = diagnose.batch_gradients(bench, jax.random.key(1), 4)
    rep = diagnose.gradient_report(grads)
    assert 0.0 < rep["cos_pairs_all"] < 0.8
    assert rep["cos_sign_loo"] < rep["cos_batch_loo"]
    mean = jax.tree.map(lambda *g: -sum(g), *grads)
    mean = jax.tree.map(lambda x: x / optax.global_norm(mean), mean)
    kls = [
        float(bench.kl_to_sft(jax.tree.map(lambda p, u, t=t: p + t * u, bench.params, mean)))
        for t in (0.02, 0.04)
    ]
    assert kls[0] > 0 and 2.0 < kls[1] / kls[0] < 8.0


def test_sharpened_scales_only_the_final_norm():
    params = _params()
    out = diagnose.sharpened(params, 2.0)
    np.testing.assert_allclose(out["final_norm"]["w"], 2.0)
    np.testing.assert_array_equal(
        out["embedder"]["input_embedding"], params["embedder"]["input_embedding"]
    )


@pytest.mark.training
def test_grpo_sharpens_a_start_that_knows_the_answers():
    """The fix (reports/lm/RESULTS.md): from a label-smoothed SFT start, which knows every answer
    but samples a wrong token often (1-digit sums at the quick model size), a few GRPO steps raise
    held-out pass@1 far beyond the evaluation noise, and sharpening the start's logits shows the
    room was there. Paired: one evaluation key; 20 prompts x 16 samples give a binomial standard
    error of about 0.03 on pass@1, and the test asks for +0.15."""
    cfg = dataclasses.replace(
        QUICK,
        digits=1,
        num_train=80,
        num_heldout=20,
        eval_prompts=20,
        eval_samples=16,
        pass_ks=(1, 16),
        sft_steps=400,
        sft_smoothing=0.4,
        groups=GroupsConfig(8, 8),
    )
    cfg = dataclasses.replace(cfg, estimator=dataclasses.replace(cfg.estimator, name="grpo"))
    bench = diagnose.prepare(cfg)
    start = diagnose.evaluate_at(bench, bench.params)["pass@1"]
    sharp = diagnose.evaluate_at(bench, diagnose.sharpened(bench.params, 3.0))["pass@1"]
    assert start < 0.6 and sharp > start + 0.25, (start, sharp)
    rows = diagnose.trial(bench, "adam:lr=1e-3", steps=40, eval_every=40)
    assert rows[-1]["pass@1"] > start + 0.15, (start, rows[-1])


def test_update_rules_and_settings_of_the_header():
    """``opts`` split at each ``RULE:`` (a command-line tuple splits at every comma), and the
    header's ``set``: the ``lm`` part's differences from the defaults as ``--set`` items."""
    from ordergrad_experiments.common.config import apply_overrides

    items = ("adam:lr=1e-4", "embed=0", "sgd:lr=0.01", "ngd:lr=0.003")
    assert diagnose.update_rules(items) == ["adam:lr=1e-4,embed=0", "sgd:lr=0.01", "ngd:lr=0.003"]
    sets = ["estimator.name=grpo", "sft_steps=1000", "sft_smoothing=0", "num_groups=64"]
    sets += ["budget.total=600", "budget.num_chunks=12"]  # the budget's names: dotted
    cfg = apply_overrides(diagnose.DiagnoseConfig(), [*sets, "learn_cpu_fusions=", "mode=trial"])
    assert cfg.mode == "trial" and cfg.lm.groups.num_groups == 64
    assert sorted(diagnose.settings(cfg.lm)) == sorted([*sets, "learn_cpu_fusions="])


@pytest.mark.training  # an end-to-end run: once, in the float32 pass
def test_diagnose_writes_a_run_folder(tmp_path):
    """``run lm-diagnose --quick`` (sharpen): the header row, then one row per scale, in a run
    folder with its config and summary."""
    from ordergrad_experiments.common.runs import Run, RunWriter

    writer = RunWriter("lm-diagnose", tmp_path, "q")
    diagnose.run(diagnose.QUICK, writer, None)
    run = Run(writer.path)
    assert run.finished and run.config["mode"] == "sharpen"
    head, *rows = run.metrics
    assert head["mode"] == "sharpen" and isinstance(head["set"], list) and "pass@1" in head["sft"]
    assert [r["logit_scale"] for r in rows] == list(diagnose.QUICK.scales)
    with pytest.raises(ValueError, match="unknown diagnose mode"):
        diagnose.measure(dataclasses.replace(diagnose.QUICK, mode="nope"), print)
