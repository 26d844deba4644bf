"""The pathwise trainer's policy: a squashed Gaussian whose samples are differentiable.

``u = mu_theta(obs) + sigma * eps``, ``action = center + half_width * tanh(u)``: the action stays
inside the box and is smooth in ``theta`` everywhere (a clipped sample would cut the pathwise
gradient), so one sample serves both estimators: ``jax.grad`` through ``action`` is the RP path,
and ``logp = log N(stop_gradient(u); mu, sigma)`` is the score of the LR path (``u -> action`` is
a bijection that does not depend on ``theta``, so the score of ``u`` is that of the action). The
mean network is the MLP the control trainers use too (``ordergrad_experiments.common.networks``);
it sees ``obs[..., obs_indices] * obs_scale`` (a chosen part of the observation, rescaled to order
one). The deterministic policy of an evaluation is the mean action ``center + half_width *
tanh(mu_theta(obs))`` (the squashed mean of ``u``: the noise set to zero).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ordergrad_experiments.common.networks import MLP


class SquashedGaussianPolicy(nnx.Module):
    """``sample(key, obs [..., obs_dim]) -> (action [..., act_dim], logp [...])``.

    Args:
      obs_dim, act_dim: sizes of the flat observation and action.
      hidden: widths of the mean's tanh MLP.
      low, high: the action box ``[act_dim]``.
      action_std: ``sigma`` (fixed), or the initial ``sigma`` with ``learn_std``.
      learn_std: learn a per-dimension log-std.
      rngs: the initialisation keys.
      obs_indices: the observation entries the mean network sees (``()``: all ``obs_dim``).
      obs_scale: their multipliers, one per seen entry (``()``: ones).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int],
        *,
        low: np.ndarray,
        high: np.ndarray,
        action_std: float,
        learn_std: bool,
        rngs: nnx.Rngs,
        obs_indices: Sequence[int] = (),
        obs_scale: Sequence[float] = (),
    ):
        indices = tuple(obs_indices) or tuple(range(obs_dim))
        if not all(0 <= i < obs_dim for i in indices):
            raise ValueError(f"obs_indices must be in [0, {obs_dim}); got {tuple(obs_indices)}")
        if obs_scale and len(obs_scale) != len(indices):
            raise ValueError(
                f"obs_scale needs one value per seen observation entry ({len(indices)}); got "
                f"{tuple(obs_scale)}"
            )
        self.obs_indices = indices  # static
        self.obs_scale = nnx.Variable(jnp.asarray(obs_scale or (1.0,) * len(indices), jnp.float32))
        self.net = MLP(len(indices), hidden, act_dim, out_scale=0.01, rngs=rngs)
        self.log_std = (
            nnx.Param(jnp.full((act_dim,), np.log(action_std), jnp.float32)) if learn_std else None
        )
        self.fixed_std = float(action_std)
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        self.center = nnx.Variable(jnp.asarray((high + low) / 2, jnp.float32))
        self.half_width = nnx.Variable(jnp.asarray((high - low) / 2, jnp.float32))

    def std(self) -> jax.Array | float:
        """``sigma``: ``exp(log_std)`` ``[act_dim]`` if learned, else the fixed float."""
        return self.fixed_std if self.log_std is None else jnp.exp(self.log_std[...])

    def mean(self, obs: jax.Array) -> jax.Array:
        """``mu_theta(obs)`` ``[..., act_dim]``: the pre-squash mean."""
        # the float of the run (float64 under x64 even where an env observes float32)
        x = jnp.asarray(obs, jnp.result_type(float))[..., np.asarray(self.obs_indices)]
        return self.net(x * self.obs_scale[...].astype(x.dtype))

    def mean_action(self, obs: jax.Array) -> jax.Array:
        """The deterministic action ``center + half_width * tanh(mu_theta(obs))``."""
        return self.center[...] + self.half_width[...] * jnp.tanh(self.mean(obs))

    def deterministic(self, key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """:meth:`mean_action` as a rollout's policy (``logp = 0``; ``key`` unused)."""
        del key
        action = self.mean_action(obs)
        return action, jnp.zeros(action.shape[:-1], action.dtype)

    def sample(self, key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """A reparameterised action and the log-density of its pre-squash ``u`` (a score: the
        sample itself is held fixed in it)."""
        mu = self.mean(obs)
        std = self.std()
        eps = jax.random.normal(key, mu.shape, mu.dtype)
        u = mu + std * eps
        z = (jax.lax.stop_gradient(u) - mu) / std
        logp = jnp.sum(-0.5 * z**2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi), -1)
        return self.center[...] + self.half_width[...] * jnp.tanh(u), logp


def make_policy(
    env: object,
    env_params: object,
    hidden: Sequence[int],
    action_std: float,
    learn_std: bool,
    key: jax.Array,
    obs_indices: Sequence[int] = (),
    obs_scale: Sequence[float] = (),
) -> SquashedGaussianPolicy:
    """The policy for a gymnax-style env with a flat box observation and a box action space
    (``obs_indices``, ``obs_scale``: the part of the observation its mean network sees)."""
    obs_dim = int(np.prod(env.observation_space(env_params).shape))
    space = env.action_space(env_params)
    shape = tuple(space.shape) or (1,)
    low = np.broadcast_to(np.asarray(space.low, np.float64), shape)
    high = np.broadcast_to(np.asarray(space.high, np.float64), shape)
    return SquashedGaussianPolicy(
        obs_dim,
        int(np.prod(shape)),
        hidden,
        low=low,
        high=high,
        action_std=action_std,
        learn_std=learn_std,
        rngs=nnx.Rngs(params=key),
        obs_indices=obs_indices,
        obs_scale=obs_scale,
    )
