"""GuardedMaze-v0 (``envs/guarded_maze.py``): routes, the guard, the step contract.

Expected numbers are derived here from the default maze (3 x 7; start (2, 0), target (2, 6), the
guarded zone (2, 2..4), walls (1, 1..5)) and the default params (guard 0.05, cost 32, rewards
-1 / +20, 40 steps), never read from the code under test:

* the short route: 6 moves right along row 2 -> return 6 * -1 + 20 = 14, or 14 - 32 = -18;
* the safe route: 2 up, 6 right, 2 down = 10 moves -> return 10 * -1 + 20 = 10.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ordergrad_envs import _class_factory
from ordergrad_envs.guarded_maze import (
    DOWN,
    LEFT,
    OUTCOMES,
    RIGHT,
    UP,
    GuardedMaze,
    discrete_mean_cvar,
    route_actions,
    route_policy,
    route_return_distribution,
    tabular_outcomes,
    uniform_policy_outcomes,
)
from ordergrad_envs.rollout import group_rollout

ENV = GuardedMaze()
PARAMS = ENV.default_params
H, W = 3, 7
SHORT_STEPS, SAFE_STEPS = 6, 2 + 6 + 2
SHORT_RETURN = SHORT_STEPS * -1.0 + 20.0  # 14
SAFE_RETURN = SAFE_STEPS * -1.0 + 20.0  # 10
GUARD_P, GUARD_COST = 0.05, 32.0


def test_defaults_are_the_numbers_the_tests_derive_from():
    assert (PARAMS.guard_prob, PARAMS.guard_cost) == (GUARD_P, GUARD_COST)
    assert (PARAMS.step_reward, PARAMS.goal_reward, PARAMS.max_steps_in_episode) == (-1, 20, 40)
    assert PARAMS.layout == (".......", ".#####.", "S.!!!.T")


N = 20_000  # episodes per rollout; one size, so one compile per route


@functools.partial(jax.jit, static_argnames="route")
def _episodes(params, route: str, key):
    """``N`` episodes of the hand-written ``route`` (the params are traced: no recompile)."""
    return group_rollout(ENV, params, route_policy(params, route), key, 1, N, 40)


def test_short_route_reaches_the_target_in_six_steps_without_a_guard():
    ep = _episodes(PARAMS.replace(guard_prob=0.0), "short", jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(ep.length), SHORT_STEPS)
    np.testing.assert_allclose(np.asarray(ep.returns), SHORT_RETURN)
    assert np.all(np.asarray(ep.terminated))
    # the cells visited: along row 2 from column 0 (one-hot after the 2 position entries).
    cells = np.argmax(np.asarray(ep.obs)[0, 0, :SHORT_STEPS, 2:], -1)
    np.testing.assert_array_equal(cells, 2 * W + np.arange(SHORT_STEPS))


def test_guard_charges_once_per_episode_with_probability_one():
    ep = _episodes(PARAMS.replace(guard_prob=1.0), "short", jax.random.key(1))
    # three zone cells crossed, one charge.
    np.testing.assert_allclose(np.asarray(ep.returns), SHORT_RETURN - GUARD_COST)


def test_guard_frequency_matches_its_probability():
    returns = np.asarray(_episodes(PARAMS, "short", jax.random.key(2)).returns[0])
    charged = np.isclose(returns, SHORT_RETURN - GUARD_COST)
    assert np.all(charged | np.isclose(returns, SHORT_RETURN))  # the only two outcomes
    se = np.sqrt(GUARD_P * (1 - GUARD_P) / N)
    assert abs(charged.mean() - GUARD_P) < 4 * se
    mean = (1 - GUARD_P) * SHORT_RETURN + GUARD_P * (SHORT_RETURN - GUARD_COST)  # 12.4
    assert abs(returns.mean() - mean) < 4 * returns.std() / np.sqrt(N)


def test_safe_route_never_meets_the_guard():
    ep = _episodes(PARAMS.replace(guard_prob=1.0), "safe", jax.random.key(3))
    np.testing.assert_array_equal(np.asarray(ep.length), SAFE_STEPS)
    np.testing.assert_allclose(np.asarray(ep.returns), SAFE_RETURN)
    assert np.all(np.asarray(ep.terminated))


def test_route_distributions_match_the_hand_derived_ones():
    returns, probs = route_return_distribution(PARAMS, "short")
    np.testing.assert_allclose(returns, [SHORT_RETURN - GUARD_COST, SHORT_RETURN])
    np.testing.assert_allclose(probs, [GUARD_P, 1 - GUARD_P])
    returns, probs = route_return_distribution(PARAMS, "safe")
    np.testing.assert_allclose(returns, [SAFE_RETURN, SAFE_RETURN])
    np.testing.assert_allclose(probs, [0.0, 1.0])
    # time limits shorter than the route: truncated, no goal reward; after 1 step the agent is
    # at (2, 1), before the zone; after 2 at (2, 2), in it.
    returns, probs = route_return_distribution(PARAMS.replace(max_steps_in_episode=1), "short")
    np.testing.assert_allclose(returns, [-1.0, -1.0])
    np.testing.assert_allclose(probs, [0.0, 1.0])
    returns, probs = route_return_distribution(PARAMS.replace(max_steps_in_episode=2), "short")
    np.testing.assert_allclose(returns, [-2.0 - GUARD_COST, -2.0])
    np.testing.assert_allclose(probs, [GUARD_P, 1 - GUARD_P])


def test_mean_prefers_the_short_route_and_cvar_the_safe_one():
    alpha = 0.1
    # by hand: the worst 10 % of the short route is half charged (5 %), half not (5 %).
    short_mean = (1 - GUARD_P) * SHORT_RETURN + GUARD_P * (SHORT_RETURN - GUARD_COST)
    short_cvar = (GUARD_P * (SHORT_RETURN - GUARD_COST) + (alpha - GUARD_P) * SHORT_RETURN) / alpha
    assert (short_mean, short_cvar) == pytest.approx((12.4, -2.0))
    got_short = discrete_mean_cvar(*route_return_distribution(PARAMS, "short"), alpha)
    got_safe = discrete_mean_cvar(*route_return_distribution(PARAMS, "safe"), alpha)
    assert got_short == pytest.approx((short_mean, short_cvar))
    assert got_safe == pytest.approx((SAFE_RETURN, SAFE_RETURN))
    assert got_short[0] > got_safe[0] and got_safe[1] > got_short[1]


def test_mixing_the_routes_at_the_start_lowers_the_cvar():
    # safe with probability q, else short: {-18: 0.05 (1 - q), 14: 0.95 (1 - q), 10: q}; for
    # q <= 0.05 the worst 10 % holds all the -18 and 10 mass, the rest of it 14s.
    alpha, q = 0.1, 0.02
    tail = [(SHORT_RETURN - GUARD_COST, GUARD_P * (1 - q)), (SAFE_RETURN, q)]
    rest = alpha - sum(m for _, m in tail)
    by_hand = (sum(x * m for x, m in tail) + rest * SHORT_RETURN) / alpha
    assert by_hand == pytest.approx(-2.0 - 24.0 * q)  # the module docstring's line
    mixture = (
        [SHORT_RETURN - GUARD_COST, SHORT_RETURN, SAFE_RETURN],
        [GUARD_P * (1 - q), (1 - GUARD_P) * (1 - q), q],
    )
    _, cvar = discrete_mean_cvar(*map(np.array, mixture), alpha)
    assert cvar == pytest.approx(by_hand) and cvar < -2.0 < SAFE_RETURN  # below both routes


@pytest.mark.parametrize("alpha", [0.03, 0.05, 0.1, 0.5, 1.0])
def test_discrete_cvar_against_equal_atoms(alpha):
    # brute force: 1000 equally likely atoms, the mean of the worst alpha * 1000.
    returns, probs = np.array([3.0, -1.0, 7.0]), np.array([0.25, 0.035, 0.715])
    atoms = np.sort(np.repeat(returns, np.round(probs * 1000).astype(int)))
    mean, cvar = discrete_mean_cvar(returns, probs, alpha)
    assert mean == pytest.approx(atoms.mean())
    assert cvar == pytest.approx(atoms[: round(alpha * 1000)].mean())
    with pytest.raises(ValueError, match="alpha"):
        discrete_mean_cvar(returns, probs, 0.0)


def test_spaces_reset_and_observation():
    obs, state = ENV.reset(jax.random.key(0), PARAMS)
    assert ENV.observation_space(PARAMS).shape == obs.shape == (2 + H * W,)
    assert obs.dtype == jnp.float32 and ENV.action_space(PARAMS).n == ENV.num_actions == 4
    np.testing.assert_allclose(np.asarray(obs[:2]), [1.0, 0.0])  # row 2 / 2, col 0 / 6
    assert int(np.argmax(obs[2:])) == 2 * W and float(obs[2:].sum()) == 1.0
    assert (int(state.row), int(state.col), int(state.time)) == (2, 0, 0)
    assert ENV.name == "GuardedMaze-v0"


def _at(row: int, col: int, **fields):
    _, state = ENV.reset(jax.random.key(0), PARAMS)
    return state.replace(row=jnp.array(row, jnp.int32), col=jnp.array(col, jnp.int32), **fields)


@pytest.mark.parametrize(
    "row, col, action",
    [(2, 0, LEFT), (2, 0, DOWN), (0, 0, UP), (2, 1, UP), (0, 3, DOWN), (1, 6, LEFT), (0, 6, RIGHT)],
)
def test_moves_into_walls_or_edges_stay_put(row, col, action):
    obs, state, reward, terminated, truncated, _ = ENV.step(
        jax.random.key(0), _at(row, col), action, PARAMS
    )
    assert (int(state.row), int(state.col), int(state.time)) == (row, col, 1)
    assert float(reward) == -1.0 and not bool(terminated) and not bool(truncated)
    assert int(np.argmax(obs[2:])) == row * W + col


def test_step_contract_goal_auto_reset_and_truncation():
    out = ENV.step(jax.random.key(0), _at(2, 5), RIGHT, PARAMS)
    assert len(out) == 6
    obs, state, reward, terminated, truncated, info = out
    assert bool(terminated) and not bool(truncated) and float(reward) == -1.0 + 20.0
    # gymnax auto-reset: the state and observation are the start's; the final one is the goal's.
    assert (int(state.row), int(state.col), int(state.time)) == (2, 0, 0)
    assert not bool(state.guard_drawn) and int(np.argmax(obs[2:])) == 2 * W
    assert int(np.argmax(info["final_observation"][2:])) == 2 * W + 6
    # the last step, not at the target: truncated, not terminated, auto-reset.
    last = _at(0, 3, time=PARAMS.max_steps_in_episode - 1)
    _, state, reward, terminated, truncated, _ = ENV.step(jax.random.key(0), last, RIGHT, PARAMS)
    assert bool(truncated) and not bool(terminated) and float(reward) == -1.0
    assert (int(state.row), int(state.col), int(state.time)) == (2, 0, 0)


def test_guard_is_drawn_only_on_the_first_entry():
    p = PARAMS.replace(guard_prob=1.0)
    out = ENV.step(jax.random.key(0), _at(2, 1), RIGHT, p)
    assert float(out[2]) == -1.0 - GUARD_COST and bool(out[5]["guard_charged"])
    assert bool(out[1].guard_drawn)
    out = ENV.step(jax.random.key(0), out[1], RIGHT, p)  # the next zone cell: already drawn
    assert float(out[2]) == -1.0 and not bool(out[5]["guard_charged"])


def test_jit_and_vmap_over_keys_and_params():
    # one jitted vmap over keys and over a leaf of the params (the guard's probability: a sweep
    # without a recompile per value): 254 steps at 0.5, then one at 0 and one at 1.
    keys = jax.random.split(jax.random.key(4), 256)
    probs = jnp.concatenate([jnp.full((254,), 0.5), jnp.array([0.0, 1.0])])
    start = _at(2, 1)
    step = jax.jit(jax.vmap(lambda k, q: ENV.step(k, start, RIGHT, PARAMS.replace(guard_prob=q))))
    batched = step(keys, probs)
    p = PARAMS.replace(guard_prob=0.5)
    singles = [float(ENV.step(k, start, RIGHT, p)[2]) for k in keys[:8]]
    np.testing.assert_allclose(np.asarray(batched[2])[:8], singles)
    charged = np.asarray(batched[5]["guard_charged"])
    assert 0 < charged[:254].sum() < 254  # both outcomes at 0.5 (P(all equal) = 2^-253)
    np.testing.assert_array_equal(charged[254:], [False, True])
    np.testing.assert_allclose(np.asarray(batched[2]), np.where(charged, -1.0 - GUARD_COST, -1.0))


def test_registry_factory_and_layout_errors():
    env, params = _class_factory(GuardedMaze)(guard_prob=0.1, max_steps_in_episode=30)
    assert isinstance(env, GuardedMaze) and (params.guard_prob, params.max_steps_in_episode) == (
        0.1,
        30,
    )
    with pytest.raises(ValueError, match="unknown parameter"):
        _class_factory(GuardedMaze)(wind_prob=0.1)
    with pytest.raises(ValueError, match="route"):
        route_policy(PARAMS, "ledge")
    for layout, match in (
        (("S.T", ".."), "one length"),
        (("S.x.T",), "characters"),
        (("S...",), "exactly one 'T'"),
        (("S#T",), "cannot reach"),
    ):
        with pytest.raises(ValueError, match=match):
            route_return_distribution(PARAMS.replace(layout=layout), "short")


@pytest.mark.parametrize("steps", [6, 10])
def test_uniform_policy_outcomes_match_every_action_sequence(steps):
    """Brute force: all 4^steps action sequences of ``steps``-step episodes, walked with the
    env's own ``step_env`` (frozen once at the target), each with probability 4^-steps, give
    the recursion's outcome probabilities exactly (at 10 steps the zone-free arrival is the one
    safe path, 4^-10; at 6 only the short route arrives)."""
    p = PARAMS.replace(max_steps_in_episode=steps)
    seqs = np.stack(np.meshgrid(*[np.arange(4)] * steps, indexing="ij"), -1).reshape(-1, steps)

    def walk(actions):
        _, state = ENV.reset_env(jax.random.key(0), p)

        def step(carry, a):
            state, done = carry
            _, nxt, _, goal, _ = ENV.step_env(jax.random.key(0), state, a, p)
            state = jax.tree.map(lambda x, y: jnp.where(done, x, y), state, nxt)
            return (state, done | goal), None

        (state, done), _ = jax.lax.scan(step, (state, jnp.array(False)), actions)
        return done, state.guard_drawn

    done, entered = jax.jit(jax.vmap(walk))(jnp.asarray(seqs, jnp.int32))
    done, entered = np.asarray(done), np.asarray(entered)
    counts = [np.sum(done & ~entered), np.sum(done & entered), np.sum(~done)]
    got = uniform_policy_outcomes(p)
    for outcome, count in zip(OUTCOMES, counts, strict=True):
        assert got[outcome] == pytest.approx(count / 4.0**steps, abs=1e-15), outcome
    if steps == 10:
        assert counts[0] == 1  # the safe route, step for step
    else:
        assert counts[0] == 0 and counts[1] == 1  # only the short route arrives in 6 steps


def test_tabular_outcomes_of_the_routes_the_uniform_policy_and_their_gradient():
    """The differentiable recursion: at zero logits it is uniform_policy_outcomes (which calls
    it, and which the test above brute-forces over every action sequence); a policy that follows
    a route (logits 60 on its action) has that route's exact mean return, steps and zone entry;
    the gradient of the expected return at random logits matches central finite differences
    (float64)."""
    with jax.enable_x64(True):
        uniform = tabular_outcomes(jnp.zeros((H * W, 4), jnp.float64), PARAMS)
        for outcome, q in uniform_policy_outcomes(PARAMS).items():
            assert float(uniform[outcome]) == pytest.approx(q, abs=1e-12)
        for route, steps, enters in (("short", SHORT_STEPS, 1.0), ("safe", SAFE_STEPS, 0.0)):
            logits = 60.0 * jax.nn.one_hot(route_actions(PARAMS, route), 4, dtype=jnp.float64)
            out = tabular_outcomes(logits, PARAMS)
            values, probs = route_return_distribution(PARAMS, route)
            assert float(out["return"]) == pytest.approx(values @ probs, abs=1e-9)
            assert float(out["steps"]) == pytest.approx(steps, abs=1e-9)
            assert float(out["enters"]) == pytest.approx(enters, abs=1e-9)
        z = jax.random.normal(jax.random.key(1), (H * W, 4), jnp.float64)
        f = jax.jit(lambda z: tabular_outcomes(z, PARAMS)["return"])
        grad = np.asarray(jax.grad(f)(z))
        eps = 1e-5
        for i, a in [(0, 1), (0, 0), (7, 1), (13, 2), (19, 3)]:
            e = jnp.zeros_like(z).at[i, a].set(eps)
            fd = (float(f(z + e)) - float(f(z - e))) / (2 * eps)
            assert grad[i, a] == pytest.approx(fd, rel=1e-6, abs=1e-8), (i, a)


def test_observation_without_the_position_is_the_one_hot_cell():
    """observe_position=0: the observation is the [H * W] one-hot of the cell (so a linear
    policy on it is tabular), the space says so, and the routes' policies still walk them."""
    p = PARAMS.replace(observe_position=0)
    obs, _ = ENV.reset(jax.random.key(0), p)
    assert obs.shape == (H * W,) == ENV.observation_space(p).shape
    np.testing.assert_array_equal(obs, np.eye(H * W)[2 * W + 0])  # the start, bottom left
    for route, want in (("short", SHORT_RETURN), ("safe", SAFE_RETURN)):
        out = group_rollout(
            ENV, p.replace(guard_prob=0.0), route_policy(p, route), jax.random.key(0), 1, 2, 40
        )
        np.testing.assert_allclose(out.returns, want)
