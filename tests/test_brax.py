"""brax tasks behind the gymnax interface (envs/brax_env.py) and the pathwise trainer
(experiments/pathwise/): contract, risk variant, gradients vs finite differences, RP and LR
agreeing in expectation, the `brax-rp` run with resume and the `brax-variance` study."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import notebook_helpers as nbh
import numpy as np
import pytest

import ordergrad_envs
import ordergrad_jax as og
from ordergrad_envs.brax_env import BraxEnv, brax_task, make_brax
from ordergrad_experiments.common.config import (
    BudgetConfig,
    EstimatorConfig,
    GroupsConfig,
    apply_overrides,
)
from ordergrad_experiments.pathwise import config as pwc
from ordergrad_experiments.pathwise import train as pwt

TASK = "inverted_pendulum"


B = 2048
"""Batch of every brax step test: one compiled (vmapped) step serves them all."""


@pytest.fixture(scope="module")
def pendulum():
    """brax inverted_pendulum on spring (the fastest backend to compile here), with its
    vmapped, jitted reset/step and brax's own step (each compiled once for the module)."""
    env, _ = make_brax(TASK, backend="spring")
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    raw_step = jax.jit(jax.vmap(env.brax_env.step))
    return env, reset, step, raw_step


def test_registered_and_bad_input():
    assert {"brax/inverted_pendulum", "brax/reacher", "brax/hopper"} <= set(
        ordergrad_envs.registered()
    )
    with pytest.raises(ValueError, match="backend"):
        make_brax(TASK, backend="warp")
    with pytest.raises(ValueError, match="reward"):
        make_brax("reacher", reward="smooth")
    with pytest.raises(ValueError, match="push_prob"):
        make_brax(TASK, push_prob=1.5)
    with pytest.raises(ValueError, match="episode_length"):
        make_brax(TASK, episode_length=0)
    with pytest.raises(ValueError, match="unknown brax task"):
        BraxEnv("no_such_task")
    with pytest.raises(ValueError, match="reward"):
        brax_task("reacher", reward="smooth")
    with pytest.raises(ValueError, match="transition gradients"):
        pwt.make_env(dataclasses.replace(pwc.QUICK, env="CartPole-v1"))
    n = pwc.QUICK.groups.group_size
    with pytest.raises(ValueError, match="k must be"):
        lr_k_n = dataclasses.replace(pwc.QUICK, gradient="lr", estimator=EstimatorConfig(k=n))
        pwt.make_train(lr_k_n)
    with pytest.raises(ValueError, match="gradient must be"):
        pwt.make_train(dataclasses.replace(pwc.QUICK, gradient="score"))
    with pytest.raises(ValueError, match=r"budget\.num_chunks must be >= 1"):
        pwt.make_train(dataclasses.replace(pwc.QUICK, budget=BudgetConfig(512, 0)))


@pytest.mark.parametrize("name", ["rloo", "grpo", "maxpo"])
def test_pathwise_refuses_an_estimator_other_than_ordergrad(name):
    """The pathwise trainer differentiates ``og.lstat``: only ``estimator.name=ordergrad`` (or
    an alias of it) is allowed, and the error says so."""
    config = apply_overrides(pwc.QUICK, (f"estimator.name={name}",))
    with pytest.raises(ValueError, match=r"estimator\.name must be 'ordergrad'"):
        pwc.check(config)
    pwc.check(pwc.QUICK)


def test_pathwise_budget_is_env_steps():
    """``budget.total`` counts environment steps (iterations x num_groups x group_size x
    num_steps): QUICK is 4 iterations in 2 chunks, the default 200 in 10; the bare names of the
    estimator's fields still resolve."""
    quick = pwc.QUICK
    assert quick.budget.iterations(pwc.steps_per_iteration(quick)) == (2, 2)
    default = pwc.PathwiseConfig()
    assert default.budget.iterations(pwc.steps_per_iteration(default)) == (20, 10)
    changed = apply_overrides(quick, ("objective=ReMax", "k=3"))
    assert (changed.estimator.objective, changed.estimator.k) == ("ReMax", 3)


@pytest.mark.once  # config names: the dtype does not change them
def test_old_set_names_of_brax_rp_name_the_new_ones(tmp_path):
    """`--set iterations=10` (and `num_chunks`'s old sibling names) through the installed entry
    point: exit 2 with one line naming budget.total, no traceback."""
    import os
    import subprocess
    import sys

    entry = pathlib.Path(sys.executable).with_name("ordergrad-jax")
    args = [str(entry), "run", "brax-rp", "--quick", "--out", str(tmp_path)]
    env = {**os.environ, "ORDERGRAD_JAX_CACHE": "0"}
    proc = subprocess.run(
        [*args, "--set", "iterations=10"], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "'iterations' was renamed" in err and "budget.total" in err
    assert not (tmp_path / "brax-rp").exists() or not any((tmp_path / "brax-rp").iterdir())
    with pytest.raises(ValueError, match=r"was renamed: use budget\.total"):
        apply_overrides(pwc.QUICK, ("iterations=10",))


def test_step_contract_matches_brax_and_auto_resets(pendulum):
    """With no noise the wrapper's step is brax's step of the clipped action; after
    ``episode_length`` steps the episode is truncated and restarts from its own start state;
    the same keys give the same steps."""
    env, reset, step, raw_step = pendulum
    _, params = make_brax(TASK, backend="spring", episode_length=3)
    assert env.num_actions == 1 and env.observation_space(params).shape == (4,)
    obs0, state = reset(jax.random.split(jax.random.key(0), B), params)
    raw = state.brax
    action = jnp.linspace(-1.5, 1.5, B)[:, None]  # beyond [-1, 1] too: clipped
    keys = jax.random.split(jax.random.key(1), (3, B))
    outs = []
    for t in range(3):
        obs, state, reward, term, trunc, info = step(keys[t], state, action, params)
        raw = raw_step(raw, jnp.clip(action, -1, 1))
        np.testing.assert_allclose(info["final_observation"], raw.obs, rtol=1e-5, atol=1e-5)
        assert np.all(np.asarray(reward) == 1.0) and not np.any(term)
        assert np.all(np.asarray(trunc) == (t == 2))
        outs.append(obs)
    np.testing.assert_array_equal(outs[2], obs0)  # restarted at the episode's start
    _, state = reset(jax.random.split(jax.random.key(0), B), params)
    again = step(keys[0], state, action, params)[0]
    np.testing.assert_array_equal(again, outs[0])


def test_push_frequency_and_size(pendulum):
    """``pushed`` is Bernoulli(push_prob) per step (binomial 5-sigma band), and pushes move the
    applied action: from one start with zero policy action only pushed steps differ."""
    _, reset, step, _ = pendulum
    _, params = make_brax(TASK, backend="spring", push_prob=0.2, push_size=1.0)
    starts = jnp.broadcast_to(jax.random.key(2), (B,))
    _, state = reset(starts, params)
    obs, _, _, _, _, info = step(
        jax.random.split(jax.random.key(3), B), state, jnp.zeros((B, 1)), params
    )
    pushed = np.asarray(info["pushed"])
    assert abs(pushed.mean() - 0.2) < 5 * np.sqrt(0.2 * 0.8 / B)
    cart_velocity = np.asarray(obs[:, 2])
    assert np.ptp(cart_velocity[~pushed]) == 0.0  # same start, no push: the same step
    assert np.ptp(cart_velocity[pushed]) > 0.0


def _linear_cfg(num_groups=3, objective="Mean", **kw):
    base = dict(
        env="Pendulum-v1",
        groups=GroupsConfig(num_groups=num_groups, group_size=4),
        num_steps=6,
        hidden=(),
        action_std=0.5,
    )
    config = dataclasses.replace(pwc.QUICK, **{**base, **kw})
    return dataclasses.replace(config, estimator=EstimatorConfig(objective=objective, k=2))


def _grad_setup(cfg, seed=0):
    env, params = pwt.make_env(cfg)
    module, init_params = pwt.policy_module(cfg, env, params)
    theta = init_params(jax.random.key(seed))
    theta = jax.tree.map(lambda x: x + 0.3, theta)  # away from the small-init output layer
    return env, params, module, theta


@pytest.mark.parametrize("learn_std", [False, True])
def test_rp_gradient_matches_finite_differences(learn_std):
    """The RP gradient of ``mean_g lstat(R)`` (same key: a deterministic function of theta)
    against central differences along a random direction (gymnax Pendulum, differentiable);
    with ``learn_std`` the direction moves the log-std too."""
    cfg = _linear_cfg(objective="LowerTailMean:0.5", learn_std=learn_std)
    env, params, module, theta = _grad_setup(cfg)
    key = jax.random.key(3)
    grad = jax.jit(pwt.make_objective_grad(cfg, env, params, module, "rp"))
    g, _ = grad(theta, key)

    @jax.jit
    def value(t):
        policy = module.merge(t)
        episodes = pwt.rollout(cfg, policy, env, params, key, cfg.groups.num_groups, True)
        return jnp.mean(og.lstat(episodes.returns, cfg.estimator.k, cfg.estimator.objective))

    leaves, treedef = jax.tree.flatten(theta)
    direction = jax.tree.unflatten(
        treedef,
        [
            jax.random.normal(k, x.shape, x.dtype)
            for k, x in zip(jax.random.split(jax.random.key(4), len(leaves)), leaves, strict=True)
        ],
    )
    x64 = jnp.zeros(()).dtype == jnp.float64
    h = 1e-5 if x64 else 1e-2
    plus = value(jax.tree.map(lambda a, d: a + h * d, theta, direction))
    minus = value(jax.tree.map(lambda a, d: a - h * d, theta, direction))
    fd = (plus - minus) / (2 * h)
    directional = sum(
        jnp.vdot(a, d) for a, d in zip(jax.tree.leaves(g), jax.tree.leaves(direction), strict=True)
    )
    np.testing.assert_allclose(directional, fd, rtol=1e-4 if x64 else 3e-2, atol=1e-3)


@pytest.mark.parametrize("learn_std", [False, True])
def test_rp_and_lr_estimate_the_same_gradient(learn_std):
    """On Pendulum (no termination, tanh actions inside the torque range) RP and LR are both
    unbiased for grad J: their means over S independent estimates agree within 4.5 standard
    errors of the difference, coordinate by coordinate (a linear policy: 4 coordinates, and the
    log-std with ``learn_std``, whose LR gradient comes through the score, RP's through eps)."""
    cfg = _linear_cfg(objective="LowerTailMean:0.5", num_groups=4, learn_std=learn_std)
    env, params, module, theta = _grad_setup(cfg)
    s = 256
    keys = jax.random.split(jax.random.key(5), s)
    flat = {}
    for est in ("rp", "lr"):
        grad = pwt.make_objective_grad(cfg, env, params, module, est)
        g = jax.jit(jax.vmap(lambda k, grad=grad: grad(theta, k)[0]))(keys)
        flat[est] = np.concatenate([np.asarray(x).reshape(s, -1) for x in jax.tree.leaves(g)], 1)
    diff = flat["rp"].mean(0) - flat["lr"].mean(0)
    se = np.sqrt(flat["rp"].var(0, ddof=1) / s + flat["lr"].var(0, ddof=1) / s)
    assert np.all(np.abs(diff) < 4.5 * se), (diff, se)
    # and the RP estimate has the lower variance here (the point of the pathwise estimator)
    assert flat["rp"].var(0).sum() < flat["lr"].var(0).sum()


def test_pathwise_make_train_is_a_common_trainer():
    """``make_train`` returns the shared ``ordergrad_experiments.common.trainer.Trainer`` (as the
    control trainers do): the whole run of one seed is ``train(key)`` under one jit, metrics
    ``[chunks, iterations]``; the policy of the final state samples actions inside the env's box."""
    from ordergrad_experiments.common.trainer import Trainer

    cfg = dataclasses.replace(pwc.QUICK, gradient="lr")
    trainer = pwt.make_train(cfg)
    assert isinstance(trainer, Trainer)
    iterations = cfg.budget.total // (4 * 4 * cfg.num_steps)
    per_chunk = iterations // cfg.budget.num_chunks
    assert (trainer.iterations_per_chunk, trainer.num_chunks) == (per_chunk, cfg.budget.num_chunks)
    assert trainer.steps_per_iteration == 4 * 4 * cfg.num_steps
    state, metrics = jax.jit(trainer.train)(jax.random.key(0))
    assert metrics["grad_norm"].shape == (cfg.budget.num_chunks, per_chunk)
    assert np.all(np.isfinite(np.asarray(metrics["train_mean"])))
    assert int(state.iteration) == iterations == 4
    policy = trainer.policy(state)
    action, logp = policy.sample(jax.random.key(1), jnp.ones((3,)))
    assert action.shape == (1,) and np.all(np.abs(np.asarray(action)) <= 2.0)
    assert logp.shape == ()


@pytest.mark.training
def test_brax_rp_quick_run_and_resume(tmp_path):
    """`ordergrad-jax run brax-rp --quick` (RP through gymnax Pendulum; the brax gradient is
    checked below): rows per chunk and seed with finite metrics; the same --run-id again resumes
    the finished run without new rows."""
    from ordergrad_experiments.cli import run

    quick = pwc.QUICK
    path = run("brax-rp", quick=True, out=tmp_path, run_id="r1")
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == quick.budget.num_chunks * quick.num_seeds
    assert {r["seed"] for r in rows} == {0, 1}
    assert rows[-1]["env_steps"] == quick.budget.total == 4 * 4 * 4 * quick.num_steps
    assert rows[-1]["iteration"] == 4
    for key in ("eval_mean", "eval_cvar_0.1", "grad_norm", "env_steps_per_s"):
        assert np.isfinite(rows[-1][key])
    # Pendulum pays between -16.3 (upside down at full speed and torque) and 0 per step
    assert -16.3 * quick.num_steps < rows[-1]["eval_mean"] < 0
    assert (path / "summary.md").exists()
    again = run("brax-rp", quick=True, out=tmp_path, run_id="r1")
    rows_again = [json.loads(x) for x in (again / "metrics.jsonl").read_text().splitlines()]
    assert rows_again == rows


@pytest.mark.training
@pytest.mark.parametrize("algo", ["group_pg", "ppo"])
def test_control_trainers_run_on_a_brax_task_with_pushes(tmp_path, algo):
    """The installed `ordergrad-jax run control` on brax/inverted_pendulum (spring, the push
    variant) exits 0 and writes train rows, one eval row per seed and the speed row; every
    evaluation return is a number of steps balanced in [1, T] (the native reward pays 1 per
    step). (Resume is tested on gymnax in tests/test_control.py; a brax compile costs ~30 s.)"""
    import os
    import subprocess
    import sys

    entry = pathlib.Path(sys.executable).with_name("ordergrad-jax")
    t = 16
    args = [
        str(entry), "run", "control", "--out", str(tmp_path), "--run-id", algo,
        "--set", "env=brax/inverted_pendulum",
        "--set", f"env_params=backend=spring,episode_length={t},push_prob=0.2,push_size=1.0",
        "--set", f"algo={algo}", "--set", f"num_steps={t}", "--set", f"ppo_steps={t}",
        "--set", "num_groups=2", "--set", "group_size=4",
        "--set", "estimator.objective=LowerTailMean:0.5", "--set", "estimator.k=2",
        "--set", "update=clip", "--set", "budget.total=1024",
        "--set", "budget.num_chunks=2", "--set", "num_seeds=2", "--set", "eval_episodes=16",
        "--set", "eval_k=4",
    ]  # fmt: skip
    env = {**os.environ, "ORDERGRAD_JAX_CACHE": "0"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (tmp_path / "control" / algo / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("train") == 2 * 2 and kinds.count("eval") == 2 and "speed" in kinds
    with np.load(tmp_path / "control" / algo / "final_returns.npz") as data:
        returns = data["returns"]
    assert returns.shape == (2, 16)
    assert np.all((returns >= 1) & (returns <= t)), returns


@pytest.mark.training
def test_brax_gradient_through_spring_matches_finite_differences():
    """``jax.grad`` through 5 steps of brax's spring pipeline (smooth reward) vs central
    differences along a random direction of a linear policy's weights."""
    env, params = make_brax(TASK, backend="spring", reward="smooth", episode_length=100)
    obs0, state0 = env.reset(jax.random.key(0), params)
    keys = jax.random.split(jax.random.key(1), 5)

    def ret(theta):
        def body(carry, k):
            obs, state = carry
            obs, state, r, *_ = env.step(k, state, jnp.tanh(theta @ obs)[None], params)
            return (obs, state), r

        return jax.lax.scan(body, (obs0, state0), keys)[1].sum()

    theta = jnp.array([0.1, 0.5, 0.1, 0.1], obs0.dtype)
    d = jax.random.normal(jax.random.key(2), (4,), obs0.dtype)
    g = jax.jit(jax.grad(ret))(theta)
    f = jax.jit(ret)
    h = 1e-2
    fd = (f(theta + h * d) - f(theta - h * d)) / (2 * h)
    np.testing.assert_allclose(jnp.vdot(g, d), fd, rtol=5e-2, atol=1e-3)


def test_notebook_is_paired():
    nbh.assert_paired("brax", code_only=True)


@pytest.mark.training
def test_notebook_executes(tmp_path, monkeypatch):
    """notebooks/brax.ipynb runs headless on the committed results (figures drawn)."""
    env = {"ORDERGRAD_NOTEBOOK_OUT": str(tmp_path), "ORDERGRAD_BRAX_RESULTS": None}
    notebook = nbh.execute("brax", nbh.NOTEBOOKS, monkeypatch, env, timeout=600)
    images = nbh.image_count(notebook)
    assert images >= 2


def test_brax_agent_that_fails_to_import_is_a_row_with_the_error(monkeypatch, capsys):
    """brax's own agents break on some jax versions: the bench reports it in the row and on
    stderr, and goes on (no traceback)."""
    import sys

    from ordergrad_experiments.bench import brax as brax_bench

    monkeypatch.setitem(sys.modules, "brax.training.agents.ppo", None)  # import fails
    row = brax_bench.brax_agent("brax_ppo", brax_bench.QUICK)
    assert row["trainer"] == "brax_ppo" and "ModuleNotFoundError" in row["error"]
    assert jax.__version__ in row["error"] and "brax_ppo failed" in capsys.readouterr().err
    assert "| error |" in brax_bench.table([row])
