"""``DeepHedging-v0`` (envs/hedging.py): the closed forms against the textbook, the simulator's
means against the Black-Scholes price within Monte Carlo error, the cost accounting, the gymnax
contract and the pathwise gradient against finite differences and the telescoped closed form.

Tolerances: Monte Carlo checks are 4 standard errors of the sample (fixed seeds); exact identities
are float rounding (``conftest.tol``)."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_envs
from ordergrad_envs.hedging import (
    DeepHedging,
    EnvParams,
    black_scholes_delta,
    black_scholes_price,
    delta_policy,
    indifference_price,
)
from ordergrad_envs.rollout import group_rollout

from conftest import FLOAT, X64, assert_close

ENV = DeepHedging()
PARAMS = ENV.default_params
N_PATHS = 20_000
GROUPS, GROUP_SIZE = 4, 256  # the gradient tests' group_rollout


def textbook_call(s: float, k: float, sigma: float, r: float, tau: float) -> tuple[float, float]:
    """(price, delta) of a European call by the Black-Scholes formula, in float64 via math.erf."""
    cdf = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    d1 = (math.log(s / k) + (r + 0.5 * sigma**2) * tau) / (sigma * math.sqrt(tau))
    d2 = d1 - sigma * math.sqrt(tau)
    return s * cdf(d1) - k * math.exp(-r * tau) * cdf(d2), cdf(d1)


def no_hedge(params: EnvParams):
    del params
    return lambda key, obs: (jnp.zeros((1,), FLOAT), jnp.zeros((), FLOAT))


@functools.partial(jax.jit, static_argnames=("make_policy", "n", "steps"))
def rollout(make_policy, params: EnvParams, key: jax.Array, n: int, steps: int):
    """``n`` episodes of ``steps`` steps with ``make_policy(params)``, through ``ENV.step``.

    Returns:
      ``(returns [n], obs [n, T, 3] (seen before each action), actions [n, T], final obs [n, 3]
      (the state after the last step, before gymnax's auto-reset), terminated [n, T],
      truncated [n, T])``.
    """
    policy = make_policy(params)

    def episode(key):
        obs0, state0 = ENV.reset(key, params)

        def step(carry, key):
            obs, state = carry
            k_policy, k_env = jax.random.split(key)
            action, _ = policy(k_policy, obs)
            next_obs, state, reward, term, trunc, info = ENV.step(k_env, state, action, params)
            record = (obs, action[0], reward, term, trunc, info["final_observation"])
            return (next_obs, state), record

        _, (obs, actions, rewards, term, trunc, final) = jax.lax.scan(
            step, (obs0, state0), jax.random.split(key, steps)
        )
        return rewards.sum(), obs, actions, final[-1], term, trunc

    return jax.vmap(episode)(jax.random.split(key, n))


def mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, np.float64)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


# --- closed forms -------------------------------------------------------------------------------


def test_black_scholes_price_anchor_is_2_287():
    p = PARAMS
    want, _ = textbook_call(p.s0, p.strike, p.sigma, p.rate, p.maturity)
    got = float(black_scholes_price(p))
    assert round(want, 3) == 2.287  # the anchor, by the textbook formula
    assert round(got, 3) == 2.287
    assert_close(got, want, scale=want)


@pytest.mark.parametrize(
    "over, t, spot",
    [
        ({}, 0.0, 100.0),
        ({"sigma": 0.35, "rate": 0.05}, 0.03, 108.0),
        ({"strike": 95.0}, 0.07, 91.0),
    ],
)
def test_black_scholes_price_and_delta_match_the_textbook(over, t, spot):
    p = PARAMS.replace(**over)
    price, delta = textbook_call(spot, p.strike, p.sigma, p.rate, p.maturity - t)
    assert_close(black_scholes_price(p, t, spot), price, scale=price)
    assert_close(black_scholes_delta(p, t, spot), delta)
    # delta is the price's derivative in the spot
    grad = jax.grad(lambda s: black_scholes_price(p, t, s))(jnp.asarray(spot, FLOAT))
    assert_close(grad, delta, rel=1e-4 if not X64 else None)


def test_delta_at_maturity_is_the_exercise_indicator():
    got = black_scholes_delta(PARAMS, PARAMS.maturity, jnp.array([90.0, 110.0]))
    np.testing.assert_array_equal(np.asarray(got), [0.0, 1.0])


# --- the gymnax contract --------------------------------------------------------------------


def test_step_contract_spaces_and_episode_length():
    p = PARAMS
    T = p.max_steps_in_episode
    obs, state = ENV.reset(jax.random.key(0), p)
    assert obs.shape == (3,) and obs.dtype == FLOAT
    np.testing.assert_allclose(np.asarray(obs), [1.0, 0.0, 0.0])
    assert ENV.observation_space(p).shape == (3,) and ENV.observation_space(p).contains(obs)
    space = ENV.action_space(p)
    assert space.shape == (1,) and (float(space.low), float(space.high)) == (-2.0, 2.0)
    assert ENV.supports_transition_gradients and ENV.name == "DeepHedging-v0"

    for k, key in enumerate(jax.random.split(jax.random.key(1), T)):
        out = ENV.step(key, state, jnp.array([5.0]), p)  # clipped to max_position
        assert len(out) == 6
        obs, state, reward, terminated, truncated, info = out
        assert obs.shape == (3,) and reward.shape == () and reward.dtype == FLOAT
        assert not bool(truncated)
        assert bool(terminated) == (k == T - 1)
        assert {"discount", "cost", "spot", "terminated", "truncated"} <= set(info)
        if k < T - 1:
            assert_close(obs[0], 1.0 - (k + 1) / T)
            assert float(obs[2]) == 2.0 and float(state.position) == 2.0
    # gymnax auto-resets after maturity; the final observation is the one at maturity
    np.testing.assert_allclose(np.asarray(obs), [1.0, 0.0, 0.0])
    assert float(info["final_observation"][0]) == pytest.approx(0.0, abs=1e-6)


def test_jit_and_vmap_over_keys_match_single_episodes():
    key, T = jax.random.key(2), PARAMS.max_steps_in_episode
    batched = rollout(delta_policy, PARAMS, key, N_PATHS, T)[0]  # jit(vmap(scan))
    policy = delta_policy(PARAMS)
    for i, episode_key in enumerate(jax.random.split(key, N_PATHS)[:1]):  # eager, step by step
        obs, state = ENV.reset(episode_key, PARAMS)
        total = 0.0
        for step_key in jax.random.split(episode_key, T):
            k_policy, k_env = jax.random.split(step_key)
            action, _ = policy(k_policy, obs)
            obs, state, reward, *_ = ENV.step(k_env, state, action, PARAMS)
            total += float(reward)
        assert_close(batched[i], total, scale=10.0)


def test_class_factory_and_params_are_leaves():
    env, params = ordergrad_envs._class_factory(DeepHedging)(cost=0.001, max_steps_in_episode=60)
    assert isinstance(env, DeepHedging) and params.cost == 0.001
    assert params.max_steps_in_episode == 60
    with pytest.raises(ValueError, match="allowed"):
        ordergrad_envs._class_factory(DeepHedging)(volatility=0.3)
    prices = jax.vmap(lambda s: black_scholes_price(PARAMS.replace(sigma=s)))(jnp.array([0.1, 0.2]))
    assert prices.shape == (2,) and float(prices[0]) < float(prices[1])


# --- the simulator against Black-Scholes ----------------------------------------------------


@pytest.mark.parametrize("over", [{}, {"sigma": 0.3, "rate": 0.05, "drift": 0.05}])
def test_unhedged_mean_return_is_minus_the_black_scholes_price(over):
    p = PARAMS.replace(**over)
    returns, *_ = rollout(no_hedge, p, jax.random.key(3), N_PATHS, p.max_steps_in_episode)
    price, _ = textbook_call(p.s0, p.strike, p.sigma, p.rate, p.maturity)
    mean, se = mean_se(returns)
    assert abs(mean + price) < 4 * se, (mean, price, se)


def test_log_spot_at_maturity_is_gaussian_with_the_gbm_moments():
    p = PARAMS.replace(drift=0.5)  # a visible drift
    _, _, _, final, *_ = rollout(no_hedge, p, jax.random.key(4), N_PATHS, p.max_steps_in_episode)
    log_return = np.asarray(final[:, 1], np.float64)  # log(S_T / K), K = S_0
    mean, se = mean_se(log_return)
    assert abs(mean - (p.drift - 0.5 * p.sigma**2) * p.maturity) < 4 * se
    std, want = log_return.std(ddof=1), p.sigma * math.sqrt(p.maturity)
    assert abs(std - want) < 4 * want / math.sqrt(2 * N_PATHS)  # the normal's SE of a std


def test_delta_hedge_replicates_the_call():
    p = PARAMS
    price, _ = textbook_call(p.s0, p.strike, p.sigma, p.rate, p.maturity)
    naked, *_ = rollout(no_hedge, p, jax.random.key(5), N_PATHS, 30)
    hedged, *_ = rollout(delta_policy, p, jax.random.key(5), N_PATHS, 30)
    p120 = p.replace(max_steps_in_episode=120)
    fine, *_ = rollout(delta_policy, p120, jax.random.key(6), N_PATHS, 120)
    mean, se = mean_se(hedged)
    assert abs(mean + price) < 4 * se, (mean, price, se)
    std30, std120 = float(np.std(hedged)), float(np.std(fine))
    assert std30 < 0.25 * float(np.std(naked))
    # discrete-hedging error ~ 1/sqrt(steps): 4x the steps halves the std (loose bound)
    assert 0.4 < std120 / std30 < 0.6, std120 / std30


def test_cost_lowers_the_return_by_the_traded_value():
    p0, p1 = PARAMS, PARAMS.replace(cost=0.001)
    key, T = jax.random.key(7), PARAMS.max_steps_in_episode
    free, obs, actions, final, *_ = rollout(delta_policy, p0, key, N_PATHS, T)
    costly, _, actions1, *_ = rollout(delta_policy, p1, key, N_PATHS, T)
    np.testing.assert_array_equal(np.asarray(actions), np.asarray(actions1))  # same hedge
    spot = np.asarray(p0.strike * jnp.exp(obs[..., 1]), np.float64)  # S_0 .. S_{T-1}
    spot_T = np.asarray(p0.strike * jnp.exp(final[:, 1]), np.float64)
    a = np.asarray(actions, np.float64)
    traded = np.abs(np.diff(a, axis=1, prepend=0.0)) * spot
    want = p1.cost * (traded.sum(1) + np.abs(a[:, -1]) * spot_T)  # rebalancing + unwinding
    assert float(want.min()) > 0.0
    assert_close(
        np.asarray(free) - np.asarray(costly), want, scale=10.0, rel=1e-4 if not X64 else 1e-8
    )


def test_indifference_price_is_minus_the_lower_tail_mean():
    returns, *_ = rollout(delta_policy, PARAMS, jax.random.key(8), N_PATHS, 30)
    r = np.sort(np.asarray(returns, np.float64))
    tail = N_PATHS // 10
    assert_close(indifference_price(returns, 0.1), -r[:tail].mean(), scale=10.0, rel=1e-5)
    assert_close(indifference_price(returns, 1.0), -r.mean(), scale=10.0, rel=1e-5)
    price = indifference_price(returns, 0.1)
    assert abs(float(indifference_price(returns + price, 0.1))) < 1e-4  # CVaR(p + R) = 0


# --- the pathwise gradient ------------------------------------------------------------------


def _mean_return(env, params, make_policy, theta, key):
    """The mean return of GROUPS x GROUP_SIZE episodes of ``make_policy(theta)``, through the
    trainers' ``group_rollout`` (differentiable through the env where it allows)."""
    T = params.max_steps_in_episode
    episodes = group_rollout(env, params, make_policy(theta), key, GROUPS, GROUP_SIZE, T)
    return episodes.returns.mean(), episodes


def constant(theta):
    return lambda key, obs: (jnp.broadcast_to(theta, (1,)), jnp.zeros((), FLOAT))


def test_pathwise_gradient_of_a_constant_hedge():
    """``a_k = theta`` with costs and a drift: ``R = theta (S_T - S_0) - cost theta (S_0 + S_T) -
    (S_T - K)^+`` (the first trade and the unwinding; theta > 0), so ``d E[R] / d theta =
    S_0 (e^{mu T} (1 - cost) - (1 + cost))``; the mean return is linear in theta, so the central
    difference is exact up to rounding."""
    env, p = ENV.with_transition_gradients(), PARAMS.replace(drift=0.5, cost=0.001)
    key, theta, eps = jax.random.key(9), jnp.asarray(0.7, FLOAT), 0.2
    value_and_grad = jax.jit(
        jax.value_and_grad(lambda th: _mean_return(env, p, constant, th, key)[0])
    )
    (_, grad), (up, _), (down, _) = (value_and_grad(theta + d) for d in (0.0, eps, -eps))
    assert np.isfinite(float(grad))
    fd = (float(up) - float(down)) / (2 * eps)
    assert_close(grad, fd, scale=10.0, rel=1e-8 if X64 else 1e-3)
    growth = math.exp(p.drift * p.maturity)
    sd = p.s0 * growth * math.sqrt(math.exp(p.sigma**2 * p.maturity) - 1.0)  # of S_T
    want = p.s0 * (growth * (1.0 - p.cost) - (1.0 + p.cost))
    se = (1.0 - p.cost) * sd / math.sqrt(GROUPS * GROUP_SIZE)
    assert abs(float(grad) - want) < 4 * se, (float(grad), want, se)


def test_the_carried_position_is_differentiable_only_when_enabled():
    """Step 2's cost ``cost |a_2 - a_1| S_1`` depends on ``a_1`` through the state: gymnax's
    ``with_transition_gradients()`` keeps that path, the default env stops it."""
    p = PARAMS.replace(cost=0.01)
    keys = jax.random.split(jax.random.key(10), 2)

    def second_reward(env, a1):
        _, state = env.reset(keys[0], p)
        _, state, *_ = env.step(keys[0], state, a1[None], p)
        return env.step(keys[1], state, jnp.array([0.9], FLOAT), p)[2], state.spot

    a1 = jnp.asarray(0.4, FLOAT)
    _, spot1 = second_reward(ENV, a1)
    enabled = jax.grad(lambda a: second_reward(ENV.with_transition_gradients(), a)[0])(a1)
    assert_close(enabled, p.cost * float(spot1), scale=10.0)  # d/da1 of -cost (0.9 - a1) S_1
    assert float(jax.grad(lambda a: second_reward(ENV, a)[0])(a1)) == 0.0
