"""envs: the registry, the group rollout, and the risk-sensitive tasks."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_envs
import ordergrad_jax as og
from ordergrad_envs.rollout import group_rollout


def _coin_policy(key, obs):
    """CartPole: a uniformly random action, logp = log 1/2."""
    del obs
    return jax.random.bernoulli(key).astype(jnp.int32), jnp.log(jnp.asarray(0.5))


def _reference_rollout(env, params, policy, key, G, N, T, share_start):
    """Python-loop reference: the documented key scheme, one episode per slot, stop at done."""
    k_reset, k_steps = jax.random.split(key)
    if share_start:
        reset_keys = [[k] * N for k in jax.random.split(k_reset, G)]
    else:
        reset_keys = jax.random.split(k_reset, (G, N))
    episode_keys = jax.random.split(k_steps, (G, N))
    out = {"returns": np.zeros((G, N)), "length": np.zeros((G, N), int)}
    out["terminated"] = np.zeros((G, N), bool)
    out["mask"] = np.zeros((G, N, T), bool)
    out["sum_logp"] = np.zeros((G, N))
    out["start"] = np.zeros((G, N, *env.obs_shape))

    @jax.jit
    def one_step(step_key, obs, state):  # one env step of the loop below, compiled once
        k_policy, k_env = jax.random.split(step_key)
        action, logp = policy(k_policy, obs)
        obs, state, reward, term, trunc, _ = env.step(k_env, state, action, params)
        return obs, state, reward, term, trunc, logp

    for g in range(G):
        for n in range(N):
            obs, state = env.reset(reset_keys[g][n], params)
            out["start"][g, n] = obs
            for t, step_key in enumerate(jax.random.split(episode_keys[g, n], T)):
                obs, state, reward, term, trunc, logp = one_step(step_key, obs, state)
                out["mask"][g, n, t] = True
                out["returns"][g, n] += float(reward)
                out["sum_logp"][g, n] += float(logp)
                out["length"][g, n] += 1
                if bool(term) or bool(trunc):
                    out["terminated"][g, n] = bool(term)
                    break
    return out


_rollout_jit = jax.jit(group_rollout, static_argnums=(0, 2, 4, 5, 6, 7))
CARTPOLE, _ = ordergrad_envs.make(
    "CartPole-v1"
)  # one env object: the jitted rollouts share compiles
G, N, T = 2, 3, 15


def test_rollout_matches_python_loop():
    share_start = True
    # max 12 steps by the env's limit, T = 15: both truncation and termination occur.
    env, params = ordergrad_envs.with_params(
        CARTPOLE, CARTPOLE.default_params, max_steps_in_episode=12
    )
    key = jax.random.key(3)
    ep = _rollout_jit(env, params, _coin_policy, key, G, N, T, share_start)
    ref = _reference_rollout(env, params, _coin_policy, key, G, N, T, share_start)
    np.testing.assert_array_equal(np.asarray(ep.mask), ref["mask"])
    np.testing.assert_array_equal(np.asarray(ep.length), ref["length"])
    np.testing.assert_array_equal(np.asarray(ep.terminated), ref["terminated"])
    np.testing.assert_allclose(np.asarray(ep.returns), ref["returns"], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ep.sum_logp), ref["sum_logp"], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ep.obs[:, :, 0]), ref["start"], rtol=1e-6)
    # CartPole pays 1 per step: the return is the length; masked steps carry nothing.
    np.testing.assert_array_equal(np.asarray(ep.returns), np.asarray(ep.length))
    assert not np.any(np.asarray(ep.rewards)[~np.asarray(ep.mask)])
    assert not np.any(np.asarray(ep.logp)[~np.asarray(ep.mask)])
    # Both endings occur, and a truncated episode has the env's full length.
    term = np.asarray(ep.terminated)
    assert term.any() and (~term).any()
    assert np.all(np.asarray(ep.length)[~term] == 12)


def test_rollout_iid_starts_follow_the_key_scheme():
    env, params = CARTPOLE, CARTPOLE.default_params
    key = jax.random.key(5)
    ep = _rollout_jit(env, params, _coin_policy, key, G, N, T, False)
    reset_keys = jax.random.split(jax.random.split(key)[0], (G, N))
    want = jax.vmap(jax.vmap(lambda k: env.reset(k, params)[0]))(reset_keys)
    np.testing.assert_allclose(np.asarray(ep.obs[:, :, 0]), np.asarray(want), rtol=1e-6)


def test_rollout_truncated_by_num_steps():
    env, params = ordergrad_envs.with_params(CARTPOLE, CARTPOLE.default_params, x_threshold=1e3)
    params = params.replace(theta_threshold_radians=1e3)  # never terminates: T cuts it short
    ep = _rollout_jit(env, params, _coin_policy, jax.random.key(0), G, N, T, True)
    assert np.all(np.asarray(ep.length) == T) and not np.any(np.asarray(ep.terminated))
    assert np.all(np.asarray(ep.mask))


def test_rollout_deterministic_and_share_start():
    env, params = CARTPOLE, CARTPOLE.default_params
    a = _rollout_jit(env, params, _coin_policy, jax.random.key(7), G, N, T, True)
    b = _rollout_jit(env, params, _coin_policy, jax.random.key(7), G, N, T, True)
    c = _rollout_jit(env, params, _coin_policy, jax.random.key(8), G, N, T, True)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(np.asarray(a.obs), np.asarray(c.obs))
    start = np.asarray(a.obs[:, :, 0])  # [G, N, 4]
    # shared: equal within a group, different across groups; episodes still differ.
    assert np.all(start == start[:, :1])
    assert not np.allclose(start[0], start[1])
    assert not np.all(np.asarray(a.actions) == np.asarray(a.actions)[:, :1])
    iid = np.asarray(_rollout_jit(env, params, _coin_policy, jax.random.key(7), G, N, T, False).obs)
    assert len(np.unique(iid[:, :, 0].reshape(G * N, 4), axis=0)) == G * N


def test_rollout_rejects_bad_sizes():
    env, params = ordergrad_envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="group_size"):
        group_rollout(env, params, _coin_policy, jax.random.key(0), 2, 0, 5)
    with pytest.raises(TypeError, match="num_steps"):
        group_rollout(env, params, _coin_policy, jax.random.key(0), 2, 2, 5.0)


def test_registry_passthrough_and_errors():
    names = ordergrad_envs.registered()
    for name in ("CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0"):
        assert name in names
        env, params = ordergrad_envs.make(name)
        assert type(env) is type(gymnax.make(name)[0])
    env, params = ordergrad_envs.make("Pendulum-v1", max_torque=1.5, max_steps_in_episode=7)
    assert params.max_torque == 1.5 and params.max_steps_in_episode == 7
    with pytest.raises(ValueError, match=r"allowed: .*max_torque"):
        ordergrad_envs.make("Pendulum-v1", max_torq=1.0)
    with pytest.raises(ValueError, match=r"registered: .*CartPole-v1"):
        ordergrad_envs.make("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="already registered"):
        ordergrad_envs.register("CartPole-v1", lambda **kw: gymnax.make("CartPole-v1"))
    with pytest.raises(TypeError, match="callable"):
        ordergrad_envs.register("test/not-callable", 3)


def test_the_anchored_risk_tasks_are_registered():
    """Issue 25's tasks with published anchors: ``make`` builds them with their overrides."""
    from ordergrad_envs.guarded_maze import GuardedMaze
    from ordergrad_envs.hedging import DeepHedging

    env, params = ordergrad_envs.make("GuardedMaze-v0", guard_prob=0.2)
    assert isinstance(env, GuardedMaze) and params.guard_prob == 0.2
    env, params = ordergrad_envs.make("DeepHedging-v0", cost=0.001)
    assert isinstance(env, DeepHedging) and params.cost == 0.001
    assert {"GuardedMaze-v0", "DeepHedging-v0"} <= set(ordergrad_envs.registered())


# --- RiskyGrid-v0 ---------------------------------------------------------------------------

GRID, GRID_PARAMS = ordergrad_envs.make("RiskyGrid-v0")


@jax.jit
def _grid_episodes(params, route_row, key):
    """2000 episodes of the hand-written route along ``route_row`` (traced: one compile)."""
    from ordergrad_envs.risky_grid import route_policy

    return group_rollout(GRID, params, route_policy(params, route_row), key, 1, 2000, 30)


def _grid_returns(params, route_row, key):
    return _grid_episodes(params, jnp.int32(route_row), key)


def test_grid_routes_closed_form_without_wind():
    p = GRID_PARAMS.replace(wind_prob=0.0)
    W, H = p.width, p.height
    goal = p.goal_reward + p.progress_reward * (W - 1)  # the shaping telescopes
    ledge = _grid_returns(p, 1, jax.random.key(0))
    safe = _grid_returns(p, H - 1, jax.random.key(0))
    for ep, steps in ((ledge, W + 1), (safe, W + 2 * H - 3)):
        np.testing.assert_array_equal(np.asarray(ep.length), steps)
        np.testing.assert_allclose(np.asarray(ep.returns), goal + steps * p.step_reward)
        assert np.all(np.asarray(ep.terminated))
        obs = np.asarray(ep.obs)
        assert np.all(obs.sum(-1)[np.asarray(ep.mask)] == 1)  # one-hot of a cell in the grid


def test_grid_wind_one_falls_at_first_exposed_step():
    p = GRID_PARAMS.replace(wind_prob=1.0)
    ep = _grid_returns(p, 1, jax.random.key(0))
    # up, right off the start column, then the gust into (0, 2): two step rewards, the hazard,
    # and the shaping telescopes to the distance gained, 6 - 4.
    np.testing.assert_allclose(
        np.asarray(ep.returns), 2 * p.step_reward + 2 * p.progress_reward + p.hazard_reward
    )
    np.testing.assert_array_equal(np.asarray(ep.length), 3)
    assert np.all(np.asarray(ep.terminated))


def test_grid_step_contract_jit_vmap_and_truncation():
    p = GRID_PARAMS
    obs, state = GRID.reset(jax.random.key(0), p)
    assert obs.shape == GRID.observation_space(p).shape == (p.height * p.width,)
    # right from the start: the railing blocks the chasm, the agent stays, not terminated.
    out = GRID.step(jax.random.key(1), state, 1, p)
    assert len(out) == 6 and not bool(out[3]) and not bool(out[4])
    assert float(out[2]) == p.step_reward and int(out[1].col) == 0 and int(out[1].time) == 1
    # a gust (wind 1) on an exposed cell: terminated with the hazard, auto-reset to the start.
    on_ledge = state.replace(row=jnp.array(1), col=jnp.array(3))
    out = GRID.step(jax.random.key(1), on_ledge, 3, p.replace(wind_prob=1.0))
    assert bool(out[3]) and not bool(out[4]) and bool(out[5]["fell"])
    assert float(out[2]) == p.hazard_reward + p.progress_reward * (-1 + 1)  # left, then down
    assert int(out[1].row) == 0 and int(out[1].col) == 0 and int(out[1].time) == 0
    # vmap over keys equals single calls; the same key gives the same step.
    exposed = state.replace(row=jnp.array(1), col=jnp.array(2))
    keys = jax.random.split(jax.random.key(2), 64)
    batched = jax.vmap(GRID.step, in_axes=(0, None, None, None))(
        keys, exposed, 1, p.replace(wind_prob=0.5)
    )
    singles = [float(GRID.step(k, exposed, 1, p.replace(wind_prob=0.5))[2]) for k in keys[:8]]
    np.testing.assert_allclose(np.asarray(batched[2])[:8], singles)
    fell = np.asarray(batched[3])
    assert 0 < fell.sum() < 64  # both outcomes at wind 0.5 (P(all equal) = 2^-63)
    # staying put (down at the start) at the last step: truncated, not terminated.
    last = state.replace(time=p.max_steps_in_episode - 1)
    out = GRID.step(jax.random.key(3), last, 2, p)
    assert bool(out[4]) and not bool(out[3]) and float(out[2]) == p.step_reward


def test_grid_ledge_has_higher_mean_and_lower_cvar():
    ledge = np.asarray(_grid_returns(GRID_PARAMS, 1, jax.random.key(11)).returns[0])
    safe = np.asarray(
        _grid_returns(GRID_PARAMS, GRID_PARAMS.height - 1, jax.random.key(12)).returns[0]
    )
    n = ledge.size
    W = GRID_PARAMS.width
    # fall rate vs the closed form 1 - (1 - p)^(W - 2), 4 binomial SEs.
    q = 1 - (1 - GRID_PARAMS.wind_prob) ** (W - 2)
    fell = np.mean(ledge < 0)
    assert abs(fell - q) < 4 * np.sqrt(q * (1 - q) / n)
    se = ledge.std() / np.sqrt(n) + safe.std() / np.sqrt(n)
    assert ledge.mean() - safe.mean() > 4 * se
    cvar = lambda r: float(og.metrics.cvar(jnp.asarray(r), 0.1))  # noqa: E731
    se_cvar = (ledge.std() + safe.std()) / np.sqrt(0.1 * n)
    assert cvar(safe) - cvar(ledge) > 4 * se_cvar


# --- DisturbedCartPole-v0 -------------------------------------------------------------------

CART, CART_PARAMS = ordergrad_envs.make("DisturbedCartPole-v0")


def test_cart_without_pushes_is_gymnax_cartpole_with_continuous_force():
    p = CART_PARAMS.replace(push_prob=0.0, position_reward=0.0)
    gp = CARTPOLE.default_params
    _, state = CART.reset(jax.random.key(0), p)
    _, gstate = CARTPOLE.reset(jax.random.key(0), gp)
    for t, key in enumerate(jax.random.split(jax.random.key(1), 12)):
        u = 1.0 if t % 3 else -1.0
        obs, state, r, term, _, _ = CART.step(key, state, jnp.array([u]), p)
        gobs, gstate, gr, gterm, _, _ = CARTPOLE.step(key, gstate, int(u > 0), gp)
        np.testing.assert_allclose(np.asarray(obs), np.asarray(gobs), rtol=1e-5, atol=1e-6)
        assert float(r) == pytest.approx(float(gr)) and bool(term) == bool(gterm)


def test_cart_push_and_pay():
    p = CART_PARAMS
    _, state = CART.reset(jax.random.key(0), p)
    key = jax.random.key(3)
    calm, _, r_calm, *_ = CART.step_env(key, state, jnp.array([0.3]), p.replace(push_prob=0.0))
    push, _, _, _, info = CART.step_env(key, state, jnp.array([0.3]), p.replace(push_prob=1.0))
    assert bool(info["pushed"])
    # the impulse adds +-push_size to x_dot (x moves by tau * push), nothing else.
    dv = float(push[1] - calm[1])
    assert abs(abs(dv) - p.push_size) < 1e-5
    assert float(push[0] - calm[0]) == pytest.approx(p.tau * dv, abs=1e-6)
    np.testing.assert_allclose(np.asarray(push[2:]), np.asarray(calm[2:]), atol=1e-6)
    want = 1.0 + p.position_reward * float(calm[0]) / p.x_threshold
    assert float(r_calm) == pytest.approx(want, rel=1e-5)
    assert CART.action_space(p).shape == (1,)


def test_cart_edge_has_higher_mean_and_lower_cvar():
    from ordergrad_envs.disturbed import hold_policy

    n = 1500
    T = CART_PARAMS.max_steps_in_episode

    @jax.jit
    def returns(target, key):  # target traced: one compile
        return group_rollout(CART, CART_PARAMS, hold_policy(target), key, 1, n, T, False).returns[0]

    edge = np.asarray(returns(2.0, jax.random.key(21)))
    margin = np.asarray(returns(0.8, jax.random.key(22)))
    se = (edge.std() + margin.std()) / np.sqrt(n)
    assert edge.mean() - margin.mean() > 4 * se
    cvar = lambda r: float(og.metrics.cvar(jnp.asarray(r), 0.1))  # noqa: E731
    se_cvar = (edge.std() + margin.std()) / np.sqrt(0.1 * n)
    assert cvar(margin) - cvar(edge) > 4 * se_cvar


def test_return_table_summary_and_policies():
    from ordergrad_experiments.control import return_table

    r = np.arange(1.0, 101.0)  # CVaR_0.1 of 1..100: the mean of the 10 smallest
    s = return_table.summarize(r, np.random.default_rng(0), boot=20)
    assert s["mean"] == pytest.approx(50.5) and s["median"] == pytest.approx(50.5)
    assert s["cvar"] == pytest.approx(5.5, rel=1e-5)
    assert s["mean_se"] == pytest.approx(r.std(ddof=1) / 10)
    labels = [label for label, *_ in return_table.policies("RiskyGrid-v0", GRID, GRID_PARAMS)]
    assert labels[0] == "ledge (row 1)" and len(labels) == 4
    with pytest.raises(ValueError, match="no hand-written policies"):
        return_table.policies("CartPole-v1", CARTPOLE, CARTPOLE.default_params)


@pytest.mark.training  # an end-to-end run: once, in the float32 pass
def test_return_table_is_a_registered_run(tmp_path, capsys):
    """`ordergrad-jax run return-table` writes one run folder: the config, one row per policy,
    the task's table as its summary; bad settings exit 1 naming the field."""
    from ordergrad_experiments import cli
    from ordergrad_experiments.common.runs import Run
    from ordergrad_experiments.control.return_table import task_table

    args = ["run", "return-table", "--out", str(tmp_path), "--run-id", "t"]
    sets = ["--set", "episodes=20", "--set", "bootstrap=5", "--set", "tasks=RiskyGrid-v0"]
    assert cli.main([*args, *sets]) == 0
    run = Run(tmp_path / "return-table" / "t")
    assert run.config["episodes"] == 20 and run.config["tasks"] == ["RiskyGrid-v0"]
    rows = run.metrics
    assert rows[0]["policy"] == "ledge (row 1)" and len(rows) == 4
    assert task_table(rows) in (run.path / "summary.md").read_text()
    assert cli.main(["run", "return-table", "--out", str(tmp_path), "--set", "episodes=5"]) == 1
    assert "episodes must be >= 10" in capsys.readouterr().err


def test_rollout_pathwise_gradient_matches_finite_difference():
    # gymnax Pendulum with transition gradients: d(mean return)/d(gain) flows through the scan.
    env, params = ordergrad_envs.make("Pendulum-v1")
    env = env.with_transition_gradients()

    def mean_return(gain):
        def policy(key, obs):
            return jnp.clip(-gain * obs[2:3], -2.0, 2.0), jnp.zeros(())

        return group_rollout(env, params, policy, jax.random.key(0), 1, 2, 10).returns.mean()

    eps = 1e-2

    @jax.jit
    def grad_and_fd(gain):  # one compile for both
        sides = jax.vmap(mean_return)(jnp.stack([gain + eps, gain - eps]))
        return jax.grad(mean_return)(gain), (sides[0] - sides[1]) / (2 * eps)

    grad, fd = grad_and_fd(0.5)
    assert abs(float(grad)) > 0.1
    np.testing.assert_allclose(float(grad), float(fd), rtol=2e-2)


def _pendulum_gain_rollout(gain, **kw):
    """Pendulum with transition gradients, the policy ``u = -gain * thdot``, and a stand-in
    log-density ``-(u - gain)^2`` (to check which outputs carry gradients)."""
    env, params = ordergrad_envs.make("Pendulum-v1")
    env = env.with_transition_gradients()

    def policy(key, obs):
        u = -gain * obs[2:3]
        return u, -jnp.sum((u - gain) ** 2)

    return group_rollout(env, params, policy, jax.random.key(0), 1, 2, 10, **kw)


def test_rollout_not_differentiable_keeps_only_logp_gradients():
    """``differentiable=False``: the returns are constants of the policy (the LR setting), the
    log-probabilities keep their gradient, and the forward values are unchanged."""
    full = _pendulum_gain_rollout(0.5)
    stopped = _pendulum_gain_rollout(0.5, differentiable=False)
    np.testing.assert_array_equal(stopped.returns, full.returns)

    def returns(g):
        return _pendulum_gain_rollout(g, differentiable=False).returns.sum()

    def logp(g):
        return _pendulum_gain_rollout(g, differentiable=False).sum_logp.sum()

    assert float(jax.grad(returns)(0.5)) == 0.0
    assert abs(float(jax.grad(logp)(0.5))) > 0.0


def test_rollout_truncation_stops_the_state_gradient():
    """``truncate >= num_steps`` is the full gradient; ``truncate=1`` stops the state every
    step, so only each step's own action moves its reward: Pendulum pays ``-0.001 u^2`` for the
    torque (clipped to [-2, 2]), so ``d/dgain = sum_t 0.002 u_t thdot_t`` over unclipped steps."""

    def mean_return(g, truncate):
        return _pendulum_gain_rollout(g, truncate=truncate).returns.mean()

    full = jax.grad(mean_return)(0.5, 0)
    np.testing.assert_allclose(jax.grad(mean_return)(0.5, 10), full, rtol=1e-6)
    one = jax.grad(mean_return)(0.5, 1)
    ep = _pendulum_gain_rollout(0.5)
    u, thdot = np.asarray(ep.actions[..., 0]), np.asarray(ep.obs[..., 2])
    expected = np.mean(np.sum(0.002 * u * thdot * (np.abs(u) < 2), -1))
    np.testing.assert_allclose(one, expected, rtol=1e-4, atol=1e-9)
    assert abs(float(full - one)) > 10 * abs(float(one))
    with pytest.raises(ValueError, match="truncate"):
        _pendulum_gain_rollout(0.5, truncate=-1)
