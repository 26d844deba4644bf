"""The control trainer (experiments/control): group-PG gradient vs a hand computation, GAE vs a
Python loop, smoke runs of group-PG and PPO on CartPole, every estimator name, bad input, and a
SIGKILLed run of the installed command resumed to the uninterrupted result (bitwise on CPU)."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import notebook_helpers as nbh
import numpy as np
import pytest

import ordergrad_jax as og
from ordergrad_experiments.common.config import (
    BudgetConfig,
    EstimatorConfig,
    GroupsConfig,
    OptimConfig,
)
from ordergrad_experiments.common.trainer import global_norm, split_module
from ordergrad_experiments.control import group_pg, networks, ppo
from ordergrad_experiments.control.config import QUICK, ControlConfig
from ordergrad_experiments.control.run import make_train


class _Episodes(NamedTuple):
    obs: jax.Array
    actions: jax.Array
    mask: jax.Array


def _tiny_batch(G=2, N=5, T=4, obs_dim=3, num_actions=3, seed=0):
    k_obs, k_act, k_len, k_ret = jax.random.split(jax.random.key(seed), 4)
    obs = jax.random.normal(k_obs, (G, N, T, obs_dim))
    actions = jax.random.randint(k_act, (G, N, T), 0, num_actions)
    lengths = jax.random.randint(k_len, (G, N), 1, T + 1)
    mask = jnp.arange(T) < lengths[..., None]
    returns = jax.random.normal(k_ret, (G, N))
    info = {"obs_dim": obs_dim, "discrete": True, "num_actions": num_actions}
    module, params = split_module(networks.make_policy(info, (8,), jax.random.key(1)))
    return module, params, _Episodes(obs, actions, mask), returns


@pytest.mark.parametrize("objective", ["LowerTailMean:0.5", "ReMax", "Median"])
def test_group_pg_lr_gradient_is_k_over_n_sum_of_advantage_times_score(objective):
    G, N, K = 2, 5, 3
    module, params, episodes, returns = _tiny_batch(G, N)
    adv = og.lstat_advantage(returns, K, objective)
    scale = EstimatorConfig("ordergrad", objective, K).resolve(N).scale
    assert scale == K

    def loss(p):
        return group_pg.policy_loss(module.merge(p), episodes, adv, None, scale=scale)[0]

    got = jax.grad(loss)(params)

    # By hand: every step's score separately, summed over the valid steps of each episode.
    @jax.jit
    @jax.grad
    def score_fn(p, o, a):
        return module.merge(p).log_prob(o, a)

    want = jax.tree.map(jnp.zeros_like, params)
    for g in range(G):
        for i in range(N):
            for t in range(int(episodes.mask[g, i].sum())):
                score = score_fn(params, episodes.obs[g, i, t], episodes.actions[g, i, t])
                want = jax.tree.map(
                    lambda w, s, g=g, i=i: w + (K / N) * adv[g, i] * s / G, want, score
                )
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(a), -np.asarray(b), rtol=2e-4, atol=1e-6)

    # The PPO-clipped surrogate has the same gradient at ratio 1 (old_logp = current logp).
    old = module.merge(params).log_prob(episodes.obs, episodes.actions)

    def clip_loss(p):
        return group_pg.policy_loss(
            module.merge(p), episodes, adv, old, scale=scale, update="clip"
        )[0]

    for a, b in zip(
        jax.tree.leaves(jax.grad(clip_loss)(params)), jax.tree.leaves(got), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def _gae_loop(r, v, nv, term, done, gamma, lam):
    T = len(r)
    adv = np.zeros(T)
    nxt = 0.0
    for t in reversed(range(T)):
        delta = r[t] + gamma * (0.0 if term[t] else nv[t]) - v[t]
        nxt = delta + (0.0 if done[t] else gamma * lam * nxt)
        adv[t] = nxt
    return adv


def test_gae_matches_a_python_loop():
    rng = np.random.default_rng(0)
    T, E = 37, 3
    r, v, nv = (rng.normal(size=(T, E)) for _ in range(3))
    term = rng.random((T, E)) < 0.1
    done = term | (rng.random((T, E)) < 0.1)
    adv, target = jax.jit(ppo.gae, static_argnums=(5, 6))(
        jnp.asarray(r), jnp.asarray(v), jnp.asarray(nv), term, done, 0.97, 0.9
    )
    for e in range(E):
        want = _gae_loop(r[:, e], v[:, e], nv[:, e], term[:, e], done[:, e], 0.97, 0.9)
        np.testing.assert_allclose(np.asarray(adv[:, e]), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(target), np.asarray(adv) + v, rtol=1e-5, atol=1e-5)


def test_bad_config_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="algo"):
        make_train(dataclasses.replace(QUICK, algo="sac"))
    with pytest.raises(ValueError, match="update"):
        make_train(dataclasses.replace(QUICK, update="trpo"))
    with pytest.raises(ValueError, match="k <= N - 1"):
        make_train(_with(QUICK, k=8, group_size=8))
    with pytest.raises(ValueError, match="unknown estimator"):
        make_train(_with(QUICK, name="ppo"))
    with pytest.raises(ValueError, match="passk_chen needs binary"):
        make_train(_with(QUICK, name="passk_chen"))
    with pytest.raises(ValueError, match="multiple of num_minibatches"):
        make_train(dataclasses.replace(QUICK, algo="ppo", num_envs=3, ppo_steps=5))


def test_an_old_budget_name_is_refused_naming_the_new_one():
    """``--set total_env_steps=...`` (the budget's old name) is a usage error (exit 2) of one
    line that names ``budget.total``; nothing runs."""
    exe = str(pathlib.Path(sys.executable).with_name("ordergrad-jax"))  # this venv's entry point
    cmd = [exe, "run", "control", "--set", "total_env_steps=1000"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "budget.total" in lines[0], proc.stderr[-2000:]


def _with(config: ControlConfig, **fields) -> ControlConfig:
    """``config`` with leaf fields replaced by their bare names (``k=2``, ``lr=1e-2``, ...)."""
    from ordergrad_experiments.common.config import apply_overrides

    items = [
        f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in fields.items()
    ]
    return apply_overrides(config, items)


TINY = _with(
    QUICK, num_groups=2, group_size=4, k=2, num_steps=20, hidden=(8,), **{"budget.total": 320}
)


@pytest.mark.parametrize("name", sorted(og.estimators.available()))
def test_group_pg_gradient_is_c_over_n_sum_for_every_estimator(name):
    """Every registered estimator goes through the config (its params, its spec's gradient
    scale c) into the trainer and the group-PG loss, whose negative gradient equals
    ``(1/G) sum_g (c/N) sum_i a_gi grad log p(episode_gi)`` computed episode by episode."""
    G, N = 2, 5
    options = ("alpha=0.5",) if name == "cvar_pg" else ()
    config = dataclasses.replace(
        TINY, estimator=EstimatorConfig(name, "Mean", 2, options), groups=GroupsConfig(G, N)
    )
    if name == "passk_chen":
        config = dataclasses.replace(config, train_reward="success", success_return=0.0)
    trainer = make_train(config)  # validates and builds; compiles nothing
    assert trainer.steps_per_iteration == G * N * config.num_steps
    module, params, episodes, returns = _tiny_batch(G=G, N=N)
    estimator = config.estimator.resolve(N)
    spec = og.estimators.spec(name)
    c = spec.gradient_scale(N, **config.estimator.params())
    assert estimator.scale == c and estimator.name == spec.name
    rewards = (returns >= 0).astype(returns.dtype) if name == "passk_chen" else returns
    adv = og.estimators.get(name, **config.estimator.params())(rewards)
    np.testing.assert_array_equal(estimator.advantages(rewards), adv)
    got = jax.grad(
        lambda p: group_pg.policy_loss(module.merge(p), episodes, adv, None, scale=estimator.scale)[
            0
        ]
    )(params)

    @jax.jit
    @jax.grad
    def episode_score(p, obs, actions, mask):
        logp = module.merge(p).log_prob(obs, actions)
        return jnp.sum(jnp.where(mask, logp, 0.0))

    want = jax.tree.map(jnp.zeros_like, params)
    for g in range(G):
        for i in range(N):
            score = episode_score(
                params, episodes.obs[g, i], episodes.actions[g, i], episodes.mask[g, i]
            )
            weight = (c / N) * adv[g, i] / G
            want = jax.tree.map(lambda w, s, weight=weight: w + weight * s, want, score)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(a), -np.asarray(b), rtol=2e-4, atol=1e-6)
    assert float(global_norm(got)) > 0


@pytest.mark.training
@pytest.mark.parametrize("algo", ["group_pg", "ppo"])
def test_smoke_run_on_cartpole_learns(algo):
    """A small run on CartPole (one seed): the training return rises well above the random
    policy's (about 22)."""
    if algo == "group_pg":
        config = ControlConfig(
            groups=GroupsConfig(4, 8),
            num_steps=100,
            optim=OptimConfig(lr=1e-2, grad_clip=0.5, adam_eps=1e-5),
            budget=BudgetConfig(128_000, 1),
        )
    else:
        config = ControlConfig(
            algo="ppo",
            optim=OptimConfig(lr=2.5e-3, grad_clip=0.5, adam_eps=1e-5),
            entropy_coef=0.01,
            budget=BudgetConfig(40_000, 1),
        )
    trainer = make_train(config)
    _, metrics = jax.jit(trainer.train)(jax.random.key(0))
    curve = np.asarray(metrics["return_mean"]).reshape(-1)
    first, last = np.nanmean(curve[:3]), np.nanmean(curve[-5:])
    assert first < 40 and last > 2 * first, (first, last)


def _rows(run_dir: pathlib.Path) -> list[dict]:
    timing = {"wall_s", "first_in_process", "env_steps_per_s", "eval_seconds"}
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in timing} for r in rows]


@pytest.mark.training
def test_sigkilled_run_resumes_to_the_uninterrupted_metrics(tmp_path):
    """The installed command, killed with SIGKILL after its first checkpoint, run again with the
    same --run-id: its metrics (train rows and the final evaluation) equal an uninterrupted run's,
    bitwise on CPU (same programs on the same restored state and keys)."""
    exe = str(pathlib.Path(sys.executable).with_name("ordergrad-jax"))  # this venv's entry point
    sets = ["num_groups=4", "group_size=8", "num_steps=100", "budget.total=96000"]
    sets += ["budget.num_chunks=6", "eval_episodes=1000"]
    base = [exe, "run", "control", "--quick", "--out", str(tmp_path)]
    base += [x for s in sets for x in ("--set", s)]
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    killed = [*base, "--run-id", "killed"]
    ckpt = tmp_path / "control" / "killed" / "checkpoints"
    proc = subprocess.Popen(killed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists() and any(p.name.isdigit() for p in ckpt.iterdir()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = max(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
    assert done < 6, "the run finished before the kill; make its chunks longer"
    assert not (ckpt.parent / "summary.md").exists()
    for run_id in ("killed", "whole"):
        cmd = [*base, "--run-id", run_id]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert (tmp_path / "control" / run_id / "summary.md").exists(), proc.stderr[-4000:]
    resumed, whole = _rows(ckpt.parent), _rows(tmp_path / "control" / "whole")
    assert [r["kind"] for r in whole].count("eval") == QUICK.num_seeds
    assert resumed == whole


def test_notebook_is_paired():
    nbh.assert_paired("control")


@pytest.mark.training
def test_notebook_executes_at_the_quick_size(tmp_path, monkeypatch):
    env = {"ORDERGRAD_NOTEBOOK_OUT": str(tmp_path), "ORDERGRAD_RESULTS": None}
    notebook = nbh.execute("control", tmp_path, monkeypatch, env, timeout=600)
    images = nbh.image_count(notebook)
    assert images == 2, f"expected a learning-curve and a histogram figure, got {images}"
    assert len(list((tmp_path / "control").glob("*/summary.md"))) == 1


def test_warm_start_switches_the_rank_weights_at_the_given_iteration():
    """advantage_fn with warm_start_frac=0.25 over 8 iterations: iterations 0-1 give the warm
    objective's OrderGrad advantages, 2-7 the target's (each checked against og.estimators),
    and the two differ on these rewards; bad schedules are refused."""
    from ordergrad_experiments.control.group_pg import advantage_fn

    config = _with(ControlConfig(), objective="LowerTailMean:0.5", k=2, group_size=5)
    config = dataclasses.replace(config, warm_start_frac=0.25)
    estimator = config.estimator.resolve(5)
    adv = advantage_fn(config, estimator, 8)
    rewards = jnp.asarray([[0.0, 1.0, 5.0, 2.0, 9.0], [3.0, 3.0, 1.0, 0.0, 4.0]])
    mean = og.estimators.get("ordergrad", k=2, objective="Mean")(rewards)
    tail = og.estimators.get("ordergrad", k=2, objective="LowerTailMean:0.5")(rewards)
    assert not np.allclose(mean, tail)
    for it in range(8):
        want = mean if it < 2 else tail
        np.testing.assert_allclose(adv(jnp.asarray(it), rewards), want, rtol=1e-6)
    from ordergrad_experiments.control.run import label

    assert label(config) == "ordergrad[LowerTailMean:0.5,K=2,after Mean for 0.25]"
    with pytest.raises(ValueError, match="warm_start_frac must be in"):
        advantage_fn(dataclasses.replace(config, warm_start_frac=1.5), estimator, 8)
    with pytest.raises(ValueError, match="needs estimator=ordergrad"):
        rloo = _with(config, name="rloo")
        advantage_fn(rloo, rloo.estimator.resolve(5), 8)


def test_linear_warm_start_blends_the_rank_weights():
    """warm_start_schedule="linear" with warm_start_frac=0.5 over 8 iterations (S = 4): the
    advantages at iteration t are OrderGrad's with the rank weights
    ``(1 - l) alpha_Mean + l alpha_LowerTailMean:0.5``, ``l = min(t / 4, 1)``, each computed
    by og.lstat_advantage from the blended weight vector (brute-force-tested transform); the
    label says so; an unknown schedule is refused."""
    from ordergrad_experiments.common.config import apply_overrides
    from ordergrad_experiments.control.group_pg import advantage_fn
    from ordergrad_experiments.control.run import label

    config = _with(ControlConfig(), objective="LowerTailMean:0.5", k=2, group_size=5)
    config = apply_overrides(config, ["warm_start_frac=0.5", "warm_start_schedule=linear"])
    adv = advantage_fn(config, config.estimator.resolve(5), 8)
    rewards = jnp.asarray([[0.0, 1.0, 5.0, 2.0, 9.0], [3.0, 3.0, 1.0, 0.0, 4.0]])
    mean, tail = og.rank_weights("Mean", 2), og.rank_weights("LowerTailMean:0.5", 2)
    for it, lam in [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0), (7, 1.0)]:
        weights = jnp.asarray((1 - lam) * mean + lam * tail, jnp.float32)
        want = jax.vmap(lambda r, w=weights: og.lstat_advantage(r, 2, w))(rewards)
        np.testing.assert_allclose(adv(jnp.asarray(it), rewards), want, rtol=1e-5, atol=1e-6)
    assert label(config) == "ordergrad[LowerTailMean:0.5,K=2,from Mean linearly over 0.5]"
    with pytest.raises(ValueError, match="warm_start_schedule must be 'step' or 'linear'"):
        advantage_fn(dataclasses.replace(config, warm_start_schedule="cosine"), None, 8)


@pytest.mark.once  # which params the rollouts get: the dtype does not change it
def test_train_env_params_tilt_the_training_episodes_only():
    """train_env_params on GuardedMaze-v0: with guard_prob=1 every training episode of a policy
    that walks the short route is charged the guard's cost (the returns of the trainer's
    rollout params), while the trainer's task params (evaluation) keep the task's guard_prob;
    the label names the tilt; an override that changes the spaces is refused."""
    from ordergrad_envs import guarded_maze
    from ordergrad_envs.rollout import group_rollout
    from ordergrad_experiments.control import common
    from ordergrad_experiments.control.run import label

    config = dataclasses.replace(
        ControlConfig(), env="GuardedMaze-v0", env_params=("guard_cost=30",),
        train_env_params=("guard_prob=1.0",), num_steps=40,
    )  # fmt: skip
    env, task = common.make_env(config)
    train = common.train_env_params(config, env, task)
    assert float(task.guard_prob) == 0.05 and float(train.guard_prob) == 1.0
    assert float(train.guard_cost) == 30.0  # the task's own overrides stay under the tilt
    assert (
        common.train_env_params(dataclasses.replace(config, train_env_params=()), env, task) is task
    )
    short = guarded_maze.route_policy(task, "short")
    returns = {
        name: group_rollout(env, p, short, jax.random.key(0), 2, 8, 40).returns
        for name, p in (("task", task), ("train", train))
    }
    np.testing.assert_allclose(returns["train"], 14.0 - 30.0)
    assert float(jnp.min(returns["task"])) >= 14.0 - 30.0
    assert label(config) == "ordergrad[Mean,K=4,trained on guard_prob=1.0]"
    # the trainer's rollouts use them: with the task's guard never there and the tilt's always,
    # some of 16 random-policy training episodes are charged 1000; its task is untilted
    tilted = dataclasses.replace(
        config, env_params=("guard_prob=0", "guard_cost=1000"), groups=GroupsConfig(2, 8),
        budget=BudgetConfig(640, 1),
    )  # fmt: skip
    trainer = make_train(tilted)
    assert float(trainer.env_params.guard_prob) == 0.0
    _, metrics = jax.jit(trainer.chunk)(trainer.init(jax.random.key(0)))
    assert float(metrics["return_min"][0]) < -900
    grid = dataclasses.replace(
        config, env="RiskyGrid-v0", env_params=(), train_env_params=("width=9",)
    )
    env, task = common.make_env(grid)
    with pytest.raises(ValueError, match="change the observation or action space"):
        common.train_env_params(grid, env, task)


def test_linear_entropy_schedule_decays_the_bonus_to_zero_and_enters_the_gradient():
    """entropy_schedule="linear" over 5 iterations: coefficients c, 3c/4, c/2, c/4, 0; the
    policy gradient with the scheduled coefficient equals the one with that constant coefficient
    (and differs from the unscheduled one); "constant" keeps the Python float; the key is a
    --set key; bad names and PPO are refused."""
    from ordergrad_experiments.common.config import apply_overrides
    from ordergrad_experiments.control.group_pg import entropy_coef_fn

    config = apply_overrides(ControlConfig(), ["entropy_coef=2.0", "entropy_schedule=linear"])
    assert config.entropy_schedule == "linear"
    coef = entropy_coef_fn(config, 5)
    got = [float(coef(jnp.asarray(it))) for it in range(5)]
    np.testing.assert_allclose(got, [2.0, 1.5, 1.0, 0.5, 0.0], rtol=1e-6, atol=1e-7)
    assert entropy_coef_fn(dataclasses.replace(config, entropy_schedule="constant"), 5)(3) == 2.0

    module, params, episodes, returns = _tiny_batch()
    adv = og.lstat_advantage(returns, 2, "Mean")

    def grad(c):
        def loss(p):
            pol = module.merge(p)
            return group_pg.policy_loss(pol, episodes, adv, None, scale=2, entropy_coef=c)[0]

        return jax.tree.leaves(jax.grad(loss)(params))

    scheduled, constant, full = grad(coef(jnp.asarray(2))), grad(1.0), grad(2.0)
    for a, b in zip(scheduled, constant, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not all(np.allclose(a, b) for a, b in zip(scheduled, full, strict=True))
    with pytest.raises(ValueError, match="entropy_schedule must be"):
        entropy_coef_fn(dataclasses.replace(config, entropy_schedule="cosine"), 5)
    with pytest.raises(ValueError, match="group_pg option"):
        make_train(dataclasses.replace(config, algo="ppo"))
    from ordergrad_experiments.control.run import label

    assert label(config) == "ordergrad[Mean,K=4,entropy 2 linear]"
    success = dataclasses.replace(config, train_reward="success", success_return=1.0)
    assert label(success) == "ordergrad[Mean,K=4,on success,entropy 2 linear]"


def test_route_mixture_objectives_match_brute_force():
    """The exact order-statistic expectations of the RiskyGrid route-mixture table against an
    enumeration of every ordered sample, and CVaR against its definition on a fine grid."""
    import itertools

    from ordergrad_envs.guarded_maze import discrete_mean_cvar
    from ordergrad_experiments.report import control as report

    values, probs = np.array([-40.0, 14.0, 18.0]), np.array([0.05, 0.25, 0.7])
    for k, m in [(1, 1), (3, 1), (4, 2), (5, 3)]:
        want = sum(
            np.prod(probs[list(idx)]) * np.mean(np.sort(values[list(idx)])[:m])
            for idx in itertools.product(range(3), repeat=k)
        )
        assert report.bottom_mean(values, probs, k, m) == pytest.approx(want, rel=1e-12)
    grid = np.repeat(values, (probs * 10_000).round().astype(int))  # 10,000 equal atoms
    for alpha in (0.02, 0.1, 0.25, 1.0):
        want = np.sort(grid)[: round(alpha * grid.size)].mean()
        got = discrete_mean_cvar(values, probs, alpha)[1]
        assert got == pytest.approx(want, rel=1e-9)


def test_report_table_and_figures_across_control_runs(tmp_path):
    """report.control.table: one row per finished run (mean ± Student t 95% interval over the
    seeds, the last chunk's diagnostics, the speed row); env_figures: curves and, where a run
    holds its final returns (npz, or the older json), return histograms, one pair per env."""
    from scipy import stats as scipy_stats

    from ordergrad_experiments.common.runs import find_runs
    from ordergrad_experiments.report import control as report

    for name, method, values, finished in (
        ("a", "rloo", (1.0, 3.0), True),
        ("b", "ppo", (2.0, 2.0), True),
        ("c", "ppo", (0.0, 0.0), False),
    ):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"config": {"env": "CartPole-v1"}}))
        rows = [
            {"kind": "train", "method": method, "seed": s, "env_steps": n, "return_mean": v * n}
            | {"entropy": 0.5}
            for n in (10, 20)
            for s, v in enumerate(values)
        ]
        rows += [
            {"kind": "eval", "method": method, "seed": s, "episodes": 4, "mean": v, "std": 1.0}
            for s, v in enumerate(values)
        ]
        rows.append({"kind": "speed", "env_steps_per_s": 123.0})
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if finished:
            (d / "summary.md").write_text("# done\n")
    (tmp_path / "a" / "final_returns.json").write_text(
        json.dumps({"method": "rloo", "returns": [[1.0, 2.0], [3.0, 4.0]]})
    )
    runs = find_runs(tmp_path, finished=None)
    lines = report.table(runs).strip().splitlines()
    assert lines[0] == "| env | method | seeds | env_steps | mean | entropy | env_steps_per_s |"
    half = scipy_stats.t.ppf(0.975, 1) * np.std([1.0, 3.0], ddof=1) / np.sqrt(2)
    assert lines[2].startswith(f"| CartPole-v1 | rloo | 2 | 20 | 2 ± {half:.2g} | 0.5 | 123 |")
    assert len(lines) == 4  # the unfinished run is left out
    figures = report.env_figures(runs)
    assert sorted(figures) == ["CartPole-v1_curves", "CartPole-v1_returns"]
    assert figures["CartPole-v1_curves"].axes[0].get_title() == "CartPole-v1"
    assert report.final_returns(runs[1]) == {}
    from ordergrad_experiments.common.io import write_npz_atomic

    write_npz_atomic(
        tmp_path / "b" / "final_returns.npz",
        method=np.asarray("ppo"),
        returns=np.asarray([[5.0, 6.0, 7.0]], np.float32),
    )
    (got,) = report.final_returns(runs[1]).items()
    assert got[0] == "ppo" and got[1].tolist() == [[5.0, 6.0, 7.0]]


def _lowest_of_k(x: np.ndarray, k: int) -> float:
    """Brute force: the mean over every k-subset of ``x`` of its lowest value."""
    import itertools

    return float(np.mean([min(x[list(s)]) for s in itertools.combinations(range(x.size), k)]))


def test_eval_rows_report_the_objective_each_run_trained():
    """``evaluate.trained_objective``: OrderGrad's L-statistic at its K (the lowest of k by
    enumeration), RLOO's mean, CVaR-PG's tail mean, PPO's mean, a success-ranked run's statistic
    of the 0/1 successes, and nothing for a user's estimator without a registered target."""
    from ordergrad_experiments.control import evaluate

    returns = np.random.default_rng(0).normal(10.0, 3.0, size=(2, 12)).astype(np.float32)
    x = returns.astype(np.float64)

    def trained(**changes):
        return evaluate.trained_objective(dataclasses.replace(QUICK, **changes), returns)

    label, got = trained(estimator=EstimatorConfig(objective="LowerTailMean:0.25", k=4))
    assert label == "LowerTailMean:0.25@4"
    np.testing.assert_allclose(got, [_lowest_of_k(row, 4) for row in x], rtol=1e-5)
    label, got = trained(estimator=EstimatorConfig(name="rloo"))
    assert label == "mean"
    np.testing.assert_allclose(got, x.mean(-1), rtol=1e-5)
    label, got = trained(estimator=EstimatorConfig(name="cvar_pg", options=("alpha=0.25",)))
    assert label == "CVaR_0.25"
    np.testing.assert_allclose(got, np.sort(x, -1)[:, :3].mean(-1), rtol=1e-5)
    label, got = trained(algo="ppo")
    assert label == "mean"
    np.testing.assert_allclose(got, x.mean(-1), rtol=1e-5)
    label, got = trained(
        estimator=EstimatorConfig(objective="ReMax", k=3),
        train_reward="success",
        success_return=12.0,
    )
    success = (x >= 12.0).astype(np.float64)
    want = [np.mean([max(r[list(s)]) for s in _subsets(12, 3)]) for r in success]
    assert label == "ReMax@3 of success"
    np.testing.assert_allclose(got, want, rtol=1e-5)
    name = "test_control_no_target"
    og.estimators.register(name, lambda r, mask=None: r, params=(), gradient_scale=1.0,
                           zero_sum=False)  # fmt: skip
    try:
        assert trained(estimator=EstimatorConfig(name=name)) is None
    finally:
        from ordergrad_jax.estimators import registry

        registry._REGISTRY.pop(name)  # test-only cleanup (no public unregister)


def _subsets(n: int, k: int) -> list[tuple[int, ...]]:
    import itertools

    return list(itertools.combinations(range(n), k))


def test_powered_tables_are_computed_from_the_committed_returns(tmp_path):
    """The pre-stated tests of a powered set (report.control.POWERED): per-seed statistics of the
    committed final returns (CVaR_0.1 as the mean of the worst 10 of 100 by sorting, the worst
    of 10 by its order-statistic weights C(E - m, 9) / C(E, 10)), paired t tests as scipy
    computes them, Holm over the secondary family only."""
    from scipy import stats as scipy_stats

    from ordergrad_experiments.common import stats
    from ordergrad_experiments.common.io import write_npz_atomic
    from ordergrad_experiments.report import control as report
    from ordergrad_experiments.report import returns as report_returns

    name = report.DCP48
    rng = np.random.default_rng(1)
    seeds, episodes = 3, 100
    returns = {}
    for i, arm in enumerate(("og_cvar10", "rloo", "cvar_pg", "ppo")):
        d = tmp_path / name / f"dcp48-{arm}"
        d.mkdir(parents=True)
        returns[arm] = rng.normal(100 + 5 * i, 30, size=(seeds, episodes)).astype(np.float32)
        write_npz_atomic(d / "final_returns.npz", method=np.asarray(arm), returns=returns[arm])
        (d / "config.json").write_text(json.dumps({"config": {"env": "DisturbedCartPole-v0"}}))
        rows = [
            {"kind": "eval", "method": arm, "seed": s, "trained_objective": "mean", "trained": s}
            for s in range(seeds)
        ]
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / "summary.md").write_text("# done\n")
    x = {arm: np.sort(r.astype(np.float64), -1) for arm, r in returns.items()}
    cvar = {arm: v[:, :10].mean(-1) for arm, v in x.items()}
    # E[min of 10] from 100 draws: sum_m x_(m) C(100 - m, 9) / C(100, 10)
    from math import comb

    weights = np.asarray([comb(episodes - m, 9) / comb(episodes, 10) for m in range(1, 101)])
    tail = {arm: v @ weights for arm, v in x.items()}
    table = report_returns.powered_tests_table(tmp_path, name, report.POWERED[name]).splitlines()
    assert table[0].startswith("| test | A - B | statistic | pairs | mean A - B |")
    primary = table[2].split(" | ")
    want = cvar["og_cvar10"] - cvar["rloo"]
    assert primary[1:4] == ["og_cvar10 - rloo", "cvar_0.1", "3"]
    assert primary[4] == f"{want.mean():.3g}"
    p = scipy_stats.ttest_rel(cvar["og_cvar10"], cvar["rloo"]).pvalue
    assert primary[6] == stats.format_p(p) and primary[7] == "(alone)"
    secondary = [
        (tail["og_cvar10"], tail["rloo"]),
        (cvar["og_cvar10"], cvar["ppo"]),
    ]
    ps = [scipy_stats.ttest_rel(a, b).pvalue for a, b in secondary]
    rows = {r.split(" | ")[2]: r.split(" | ") for r in table[3:]}
    assert rows["LowerTailMean:0.1@10"][4] == f"{(tail['og_cvar10'] - tail['rloo']).mean():.3g}"
    assert len(table) == 2 + 6
    all_p = []
    for a, b, stat in report.POWERED[name].secondary:
        f = {"mean": lambda v: v.mean(-1), "cvar_0.1": lambda v: v[:, :10].mean(-1)}
        f[report.TAIL10] = lambda v: v @ weights
        all_p.append(scipy_stats.ttest_rel(f[stat](x[a]), f[stat](x[b])).pvalue)
    assert ps[0] == pytest.approx(all_p[1]) and ps[1] == pytest.approx(all_p[3])
    holm = [stats.format_p(q) for q in stats.holm(all_p)]
    assert [r.split(" | ")[7] for r in table[3:]] == holm
    runs = report_returns.powered_runs_table(tmp_path, name, report.POWERED[name]).splitlines()
    assert "| trained_objective | trained | mean | cvar_0.1 | LowerTailMean:0.1@10 |" in runs[0]
    assert len(runs) == 2 + 4


def test_gradient_statistics_against_known_signal_and_noise():
    """control.gradients.gradient_statistics on gradients drawn around known means: the debiased
    SNR |mu|^2 / (P sigma^2) within its Monte Carlo error, alignment and cosine about 1 for a
    probe that estimates the target's gradient, about 0 for one orthogonal to it."""
    from ordergrad_experiments.control.gradients import gradient_statistics

    rng = np.random.default_rng(0)
    b, p, sigma = 400, 50, 0.5
    mu = np.zeros(p)
    mu[0] = 3.0
    ortho = np.zeros(p)
    ortho[1] = 3.0
    grads = {
        "target": mu + sigma * rng.normal(size=(b, p)),
        "same": mu + sigma * rng.normal(size=(b, p)),
        "ortho": ortho + sigma * rng.normal(size=(b, p)),
    }
    got = gradient_statistics(grads, "target")
    want_snr = 9.0 / (p * sigma**2)  # 0.72
    # tr Var is estimated from b draws: relative SE about sqrt(2 / (b p)); the signal's about
    # 2 sigma / (3 sqrt(b)); 4 SE of both
    tol = 4 * want_snr * (np.sqrt(2 / (b * p)) + 2 * sigma / (3 * np.sqrt(b)))
    for name in ("target", "same", "ortho"):
        assert abs(got[name]["snr"] - want_snr) < tol, (name, got[name]["snr"])
    # one draw's cosine with mu: 3 / sqrt(9 + P sigma^2) ~ 0.51 (the half-mean's noise is small)
    cos = 3.0 / np.sqrt(9.0 + p * sigma**2)
    for name in ("target", "same"):
        assert abs(got[name]["alignment"] - cos) < 4 * got[name]["alignment_se"] + 0.03
        assert got[name]["cos_target"] > 0.99
    assert abs(got["ortho"]["alignment"]) < 4 * got["ortho"]["alignment_se"] + 0.03
    assert abs(got["ortho"]["cos_target"]) < 0.05


def test_control_gradients_refuses_bad_probes():
    from ordergrad_experiments.control.gradients import GradientsConfig, Probe, _check

    assert Probe.parse("LowerTailMean:0.25@4/16", 8) == Probe(
        "LowerTailMean:0.25@4/16", "LowerTailMean:0.25", 4, 16
    )
    for bad, match in (
        ("Mean", "OBJECTIVE@K"),
        ("Mean@x", "OBJECTIVE@K"),
        ("Mean@8", "needs 1 <= K < N"),
        ("Nope@2", "Nope"),
    ):
        with pytest.raises(ValueError, match=match):
            Probe.parse(bad, 8)
    base = GradientsConfig(control=QUICK)
    for changes, match in (
        ({"control": dataclasses.replace(QUICK, algo="ppo")}, "group_pg learner"),
        ({"batches": 3}, "even"),
        ({"target": "TopM:2@4"}, "must be one of probes"),
        ({"probes": ("Mean@2/6", "LowerTailMean:0.25@4")}, "do not divide"),
        ({"at_chunks": (2, 0)}, "ascending"),
        ({"probes": ("Mean@4", "Mean@4")}, "must differ"),
    ):
        with pytest.raises(ValueError, match=match):
            _check(dataclasses.replace(base, **changes))


@pytest.mark.training
def test_control_gradients_quick_run_writes_its_rows(tmp_path):
    """``ordergrad-jax run control-gradients --quick`` (the installed command): exit 0, one
    policy row per probed chunk and seed, one probe row per probe there, the summary table."""
    exe = str(pathlib.Path(sys.executable).with_name("ordergrad-jax"))
    cmd = [exe, "run", "control-gradients", "--quick", "--out", str(tmp_path), "--run-id", "g"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "control-gradients" / "g"
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    policies = [r for r in rows if r["kind"] == "policy"]
    probes = [r for r in rows if r["kind"] == "probe"]
    assert [r["chunk"] for r in policies] == [0, 2]
    assert len(probes) == 2 * 3 and all(np.isfinite(r["snr"]) for r in probes)
    assert all(r["target"] <= r["mean"] for r in policies)  # the worst of 4 <= the mean
    assert "| learner | chunk |" in (folder / "summary.md").read_text()


def test_crossover_batches_equalise_the_predicted_alignments():
    """control.gradients: at the crossover batch multiple the target's own estimate and the other
    probe's are predicted to align equally well, beyond it the target's better; the isotropic
    model gives the Monte Carlo cosine of test_gradient_statistics_against_known_signal_and_noise
    (3 / sqrt(9 + P sigma^2) for SNR 9 / (P sigma^2))."""
    from ordergrad_experiments.control.gradients import crossover_batches, predicted_alignment

    assert predicted_alignment(9.0 / (50 * 0.25), 1.0) == pytest.approx(3.0 / np.sqrt(9.0 + 12.5))
    s_t, s_p, c = 0.1, 0.8, 0.9
    m = crossover_batches(s_t, s_p, c)
    assert m > 1
    assert predicted_alignment(s_t, 1.0, m) == pytest.approx(predicted_alignment(s_p, c, m))
    assert predicted_alignment(s_t, 1.0, 2 * m) > predicted_alignment(s_p, c, 2 * m)
    assert predicted_alignment(s_t, 1.0, m / 2) < predicted_alignment(s_p, c, m / 2)
    assert crossover_batches(1.0, 0.1, 0.9) == 1.0  # the target's own is better already
    assert crossover_batches(0.1, 0.8, 1.0) == float("inf")
    assert np.isnan(crossover_batches(-0.1, 0.8, 0.5)) and np.isnan(predicted_alignment(0.0, 1.0))
