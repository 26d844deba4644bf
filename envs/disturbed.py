"""``DisturbedCartPole-v0``: a continuous CartPole paid to work near the track's end, pushed.

gymnax's CartPole with three changes (subclassed; the physics, thresholds and termination are
gymnax's):

* **Continuous force**: the action is ``u`` in ``[-1, 1]`` (shape ``[1]``, clipped), the force
  ``force_mag * u``.
* **Rare large pushes**: before each step, with probability ``push_prob`` the cart receives a
  velocity impulse of ``push_size`` m/s in a random direction.
* **Position-dependent pay**: each step pays ``1 + position_reward * x / x_threshold``, so a
  cart kept at the right end of the track earns up to ``1 + position_reward`` per step, but a
  push towards the end can carry it over the edge (``|x| > x_threshold`` terminates, and the
  rest of the episode's pay is lost).

So the trade-off is the margin: a controller that holds the cart near the edge has the higher
mean return; one that keeps a margin against the pushes has the better lower tail. With the
defaults (200 steps, ``push_prob = 0.005``, ``push_size = 1.0``, ``position_reward = 1.0``),
the hand-written controller :func:`hold_policy` holding ``x = 2.0`` has a mean return about 25
higher than holding ``x = 0.8``, and a CVaR_0.1 about 55 lower (table in ``envs/README.md``).
Pushes of 1 m/s rarely topple the pole of a balanced cart; near the edge they carry it over.
Observation: gymnax's ``[x, x_dot, theta, theta_dot]``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces
from gymnax.environments.classic_control import cartpole


@struct.dataclass
class EnvParams(cartpole.EnvParams):
    push_prob: float = 0.005
    push_size: float = 1.0
    position_reward: float = 1.0
    max_steps_in_episode: int = 200


class DisturbedCartPole(cartpole.CartPole):
    """Continuous-force CartPole with rare velocity pushes and pay for working near the end."""

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(
        self, key: jax.Array, state: cartpole.EnvState, action: Any, params: EnvParams
    ) -> tuple[jax.Array, cartpole.EnvState, jax.Array, jax.Array, dict[str, Any]]:
        k_push, k_sign = jax.random.split(key)
        push = jax.random.bernoulli(k_push, params.push_prob)
        sign = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)
        state = state.replace(x_dot=state.x_dot + jnp.where(push, sign * params.push_size, 0.0))
        u = jnp.clip(jnp.reshape(jnp.asarray(action), ()), -1.0, 1.0)
        # gymnax's force is force_mag * (2 a - 1): a = (u + 1) / 2 gives force_mag * u.
        obs, state, reward, done, info = super().step_env(key, state, (u + 1.0) / 2.0, params)
        pay = 1.0 + params.position_reward * jnp.clip(state.x / params.x_threshold, -1.0, 1.0)
        reward = jnp.asarray(reward * pay, jnp.result_type(float))
        return obs, state, reward, done, {**info, "pushed": push}

    @property
    def name(self) -> str:
        return "DisturbedCartPole-v0"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)


def hold_policy(target_x: float, gains: tuple[float, float, float, float] = (0.5, 1.0, 20.0, 3.0)):
    """A hand-written linear controller that balances the pole holding the cart at ``target_x``.

    ``u = clip(k_x (x - target_x) + k_v x_dot + k_theta theta + k_omega theta_dot, -1, 1) / 10``
    scaled to the action range (force = 10 u).

    Returns:
      ``policy(key, obs) -> (action [1], logp)`` with ``logp = 0`` (deterministic).
    """
    kx, kv, kt, kw = gains

    def policy(key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        del key
        x, v, theta, omega = obs[0], obs[1], obs[2], obs[3]
        force = kx * (x - target_x) + kv * v + kt * theta + kw * omega
        return jnp.clip(force / 10.0, -1.0, 1.0)[None], jnp.zeros((), jnp.result_type(float))

    return policy
