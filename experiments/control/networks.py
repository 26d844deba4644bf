"""flax nnx MLP policies and value networks; the action space comes from the environment.

A policy maps one observation (or a batch, leading axes) to a distribution over actions:
``log_prob(obs, action)``, ``sample(key, obs) -> (action, logp)`` and ``entropy(obs)``.
Discrete spaces get a categorical policy; boxes a Gaussian whose samples the environment clips
to its bounds (gymnax's Pendulum and MountainCarContinuous clip), so ``logp`` is the exact
log-density of the unclipped action that is stored and re-scored in the update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ordergrad_experiments.common.networks import MLP


class CategoricalPolicy(nnx.Module):
    """Softmax policy over ``num_actions`` discrete actions; actions are int32 scalars."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: Sequence[int], *, rngs: nnx.Rngs):
        self.net = MLP(obs_dim, hidden, num_actions, out_scale=0.01, rngs=rngs)

    def logits(self, obs: jax.Array) -> jax.Array:
        return jax.nn.log_softmax(self.net(obs))

    def log_prob(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """``[..., obs_dim], [...] -> [...]``."""
        logits = self.logits(obs)
        return jnp.take_along_axis(logits, action[..., None].astype(jnp.int32), -1)[..., 0]

    def sample(self, key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = self.logits(obs)
        action = jax.random.categorical(key, logits)
        return action, jnp.take_along_axis(logits, action[..., None], -1)[..., 0]

    def entropy(self, obs: jax.Array) -> jax.Array:
        logits = self.logits(obs)
        return -jnp.sum(jnp.exp(logits) * logits, -1)


class GaussianPolicy(nnx.Module):
    """Diagonal Gaussian with a state-independent log std; ``mean = scale * tanh(net(obs))``.

    ``scale`` is the half-width of the action box, so the mean stays inside the bounds; the
    environment clips the sample.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        *,
        scale: np.ndarray,
        init_log_std: float,
        rngs: nnx.Rngs,
    ):
        self.net = MLP(obs_dim, hidden, action_dim, out_scale=0.01, rngs=rngs)
        self.log_std = nnx.Param(jnp.full((action_dim,), init_log_std, jnp.float32))
        self.scale = nnx.Variable(jnp.asarray(scale, jnp.float32))

    def _moments(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = self.scale[...] * jnp.tanh(self.net(obs))
        return mean, jnp.broadcast_to(self.log_std[...], mean.shape).astype(mean.dtype)

    def log_prob(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        """``[..., obs_dim], [..., action_dim] -> [...]``."""
        mean, log_std = self._moments(obs)
        z = (action - mean) * jnp.exp(-log_std)
        return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), -1)

    def sample(self, key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_std = self._moments(obs)
        eps = jax.random.normal(key, mean.shape, mean.dtype)
        action = mean + jnp.exp(log_std) * eps
        logp = jnp.sum(-0.5 * eps**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), -1)
        return action, logp

    def entropy(self, obs: jax.Array) -> jax.Array:
        _, log_std = self._moments(obs)
        return jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e), -1)


class ValueNet(nnx.Module):
    """State value ``[..., obs_dim] -> [...]`` (the PPO critic)."""

    def __init__(self, obs_dim: int, hidden: Sequence[int], *, rngs: nnx.Rngs):
        self.net = MLP(obs_dim, hidden, 1, out_scale=1.0, rngs=rngs)

    def __call__(self, obs: jax.Array) -> jax.Array:
        return self.net(obs)[..., 0]


def space_info(env: Any, env_params: Any) -> dict[str, Any]:
    """Observation size and action space of a gymnax-style env, as plain Python/NumPy values."""
    from gymnax.environments import spaces

    obs_shape = env.observation_space(env_params).shape
    if len(obs_shape) != 1:
        raise ValueError(f"flat observations needed (MLP policies); got shape {obs_shape}")
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        return {"obs_dim": int(obs_shape[0]), "discrete": True, "num_actions": int(space.n)}
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(np.asarray(space.low, np.float64), space.shape or (1,))
        high = np.broadcast_to(np.asarray(space.high, np.float64), space.shape or (1,))
        return {
            "obs_dim": int(obs_shape[0]),
            "discrete": False,
            "action_shape": tuple(space.shape),
            "scale": (high - low) / 2,
        }
    raise ValueError(f"action space {type(space).__name__} not supported (Discrete or Box)")


def make_policy(
    info: dict[str, Any], hidden: Sequence[int], key: jax.Array, init_log_std: float = -0.5
) -> nnx.Module:
    """The policy for an env's spaces (see :func:`space_info`), initialised from ``key``."""
    rngs = nnx.Rngs(params=key)
    if info["discrete"]:
        return CategoricalPolicy(info["obs_dim"], info["num_actions"], hidden, rngs=rngs)
    dim = int(np.prod(info["action_shape"])) if info["action_shape"] else 1
    return GaussianPolicy(
        info["obs_dim"], dim, hidden, scale=info["scale"], init_log_std=init_log_std, rngs=rngs
    )
