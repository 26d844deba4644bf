"""envs: the registry, the group rollout, and the risk-sensitive tasks."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.rollout import group_rollout


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
    for g in range(G):
        for n in range(N):
            obs, state = env.reset(reset_keys[g][n], params)
            out["start"][g, n] = obs
            for t, step_key in enumerate(jax.random.split(episode_keys[g, n], T)):
                k_policy, k_env = jax.random.split(step_key)
                action, logp = policy(k_policy, obs)
                obs, state, reward, term, trunc, _ = env.step(k_env, state, action, params)
                out["mask"][g, n, t] = True
                out["returns"][g, n] += float(reward)
                out["sum_logp"][g, n] += float(logp)
                out["length"][g, n] += 1
                if bool(term) or bool(trunc):
                    out["terminated"][g, n] = bool(term)
                    break
    return out


_rollout_jit = jax.jit(group_rollout, static_argnums=(0, 2, 4, 5, 6, 7))
CARTPOLE, _ = envs.make("CartPole-v1")  # one env object: the jitted rollouts share compiles
G, N, T = 3, 4, 15


@pytest.mark.parametrize("share_start", [True, False])
def test_rollout_matches_python_loop(share_start):
    # max 12 steps by the env's limit, T = 15: both truncation and termination occur.
    env, params = envs.with_params(CARTPOLE, CARTPOLE.default_params, max_steps_in_episode=12)
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


def test_rollout_truncated_by_num_steps():
    env, params = envs.with_params(CARTPOLE, CARTPOLE.default_params, x_threshold=1e3)
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
    env, params = envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="group_size"):
        group_rollout(env, params, _coin_policy, jax.random.key(0), 2, 0, 5)
    with pytest.raises(TypeError, match="num_steps"):
        group_rollout(env, params, _coin_policy, jax.random.key(0), 2, 2, 5.0)


def test_registry_passthrough_and_errors():
    names = envs.registered()
    for name in ("CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0"):
        assert name in names
        env, params = envs.make(name)
        assert type(env) is type(gymnax.make(name)[0])
    env, params = envs.make("Pendulum-v1", max_torque=1.5, max_steps_in_episode=7)
    assert params.max_torque == 1.5 and params.max_steps_in_episode == 7
    with pytest.raises(ValueError, match=r"allowed: .*max_torque"):
        envs.make("Pendulum-v1", max_torq=1.0)
    with pytest.raises(ValueError, match=r"registered: .*CartPole-v1"):
        envs.make("NoSuchEnv-v0")
    with pytest.raises(ValueError, match="already registered"):
        envs.register("CartPole-v1", lambda **kw: gymnax.make("CartPole-v1"))
    with pytest.raises(TypeError, match="callable"):
        envs.register("test/not-callable", 3)
