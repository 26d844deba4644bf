"""brax tasks behind the gymnax 1.0 interface: ``ordergrad_envs.make("brax/<name>", backend=...)``.

A :class:`BraxEnv` wraps one ``brax.envs`` task (any backend: ``spring``, ``positional``,
``generalized``, ``mjx``) as a gymnax ``Environment``: ``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`` with
auto-reset, ``action_space(params)`` / ``observation_space(params)`` and ``num_actions``, so the
group rollout and the trainers of ``experiments/control`` drive it like any gymnax task.

Differences from a plain brax task, all documented here:

* **Auto-reset to the episode's own start state.** brax's ``reset`` runs forward kinematics, which
  costs about one step; rather than running it on every step (gymnax's default), the state keeps
  the episode's first brax state and a finished episode restarts from it (brax's
  ``AutoResetWrapper`` does the same). The N episodes of a group that were reset from one key
  share their start state.
* **Actions in [-1, 1]** (brax's convention; the task scales them to its actuator range). The
  wrapper clips them, so a policy that wants gradients everywhere should squash (``tanh``).
* **Risk variant: heavy-tailed actuation noise.** Each step, with probability ``push_prob`` the
  actuators receive an extra push ``push_size * N(0, I)`` (in action units, clipped to the
  actuator range), on top of always-on Gaussian noise of scale ``noise_scale``. Both are leaves of
  :class:`BraxParams`, so a sweep over them is a ``vmap``. With the defaults (0) the task is brax's.
* **Optional smooth reward** (``reward="smooth"``; ``inverted_pendulum`` only): brax's
  inverted pendulum pays a constant 1 per step until the pole falls, so its pathwise (RP)
  gradient is identically zero; the smooth reward ``1 - (theta / 0.2)^2`` (0 at the termination
  angle) keeps the task and gives the dynamics something to differentiate. The other tasks'
  rewards are already smooth in the state.

Gradients flow through ``step`` (brax is differentiable); ``jax.grad`` through a rollout works on
the ``generalized`` and ``spring`` backends (tested), not through ``mjx`` here.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

BRAX_TASKS = ("inverted_pendulum", "inverted_double_pendulum", "reacher", "hopper", "ant")
"""The brax tasks registered as ``brax/<name>`` (any task of ``brax.envs`` can be wrapped)."""

BACKENDS = ("spring", "positional", "generalized", "mjx")
REWARDS = ("native", "smooth")


def _pendulum_smooth_reward(obs: jax.Array) -> jax.Array:
    """``1 - (theta / 0.2)^2``: 1 upright, 0 at the termination angle (``obs[1]`` is theta)."""
    return 1.0 - (obs[1] / 0.2) ** 2


SMOOTH_REWARDS = {"inverted_pendulum": _pendulum_smooth_reward}
"""``reward="smooth"``: task -> ``reward(next_obs)``, the one definition of each smooth reward
(used by :class:`BraxEnv` and, for brax's own trainers, by :func:`brax_task`)."""


def _check_reward(name: str, reward: str) -> None:
    if reward not in REWARDS:
        raise ValueError(f"reward must be one of {REWARDS}; got {reward!r}")
    if reward == "smooth" and name not in SMOOTH_REWARDS:
        raise ValueError(
            f"reward='smooth' is defined for {tuple(SMOOTH_REWARDS)}; {name!r} has a smooth "
            "native reward already: use reward='native'"
        )


def brax_task(name: str, backend: str = "spring", reward: str = "native", **brax_kwargs: Any):
    """brax's own environment (``brax.envs.Env``, for brax's trainers) with the reward variant.

    Args:
      name: brax task name, with or without the ``brax/`` prefix.
      backend: physics pipeline (see :data:`BACKENDS`).
      reward: ``"native"`` or ``"smooth"`` (see the module docstring).
      **brax_kwargs: passed to ``brax.envs.get_environment``.
    """
    from brax import envs as brax_envs
    from brax.envs.base import Wrapper

    name = name.removeprefix("brax/")
    if backend not in BACKENDS:
        raise ValueError(f"brax backend must be one of {BACKENDS}; got {backend!r}")
    _check_reward(name, reward)
    try:
        env = brax_envs.get_environment(name, backend=backend, **brax_kwargs)
    except KeyError as err:
        raise ValueError(f"unknown brax task {name!r}; brax has {sorted(brax_envs._envs)}") from err
    if reward == "native":
        return env
    smooth = SMOOTH_REWARDS[name]

    class SmoothReward(Wrapper):
        """The task with the smooth reward of :data:`SMOOTH_REWARDS`."""

        def step(self, state, action):
            nxt = self.env.step(state, action)
            return nxt.replace(reward=jnp.asarray(smooth(nxt.obs), nxt.obs.dtype))

    return SmoothReward(env)


@struct.dataclass
class BraxParams(environment.EnvParams):
    """Parameters of a wrapped brax task (leaves: a sweep over them is a ``vmap``).

    Attributes:
      max_steps_in_episode: episode length (truncation); brax's own default is 1000.
      noise_scale: std of Gaussian actuation noise added every step (action units).
      push_prob: per-step probability of a push (the risk variant).
      push_size: std of a push, ``push_size * N(0, I)`` in action units.
    """

    max_steps_in_episode: int = 1000
    noise_scale: float = 0.0
    push_prob: float = 0.0
    push_size: float = 0.0


@struct.dataclass
class BraxEnvState(environment.EnvState):
    """``brax``: the brax ``State`` now; ``first``: the episode's start state (for auto-reset);
    ``time``: steps taken in this episode."""

    brax: Any
    first: Any
    time: jax.Array


class BraxEnv(environment.Environment):
    """A brax task as a gymnax ``Environment`` (see the module docstring).

    Args:
      name: a ``brax.envs`` task name (``inverted_pendulum``, ``reacher``, ``hopper``, ...).
      backend: ``spring`` (fastest on CPU), ``positional``, ``generalized`` or ``mjx``.
      reward: ``"native"`` (brax's reward) or ``"smooth"`` (see the module docstring).
      **brax_kwargs: passed to ``brax.envs.get_environment`` (e.g. ``n_frames``).
    """

    _supports_transition_gradients = True
    _transition_gradients_enabled = True

    def __init__(
        self, name: str, backend: str = "spring", reward: str = "native", **brax_kwargs: Any
    ):
        _check_reward(name, reward)
        self.brax_env = brax_task(name, backend=backend, **brax_kwargs)
        self._smooth = SMOOTH_REWARDS[name] if reward == "smooth" else None
        self.task, self.backend, self.reward = name, backend, reward
        self._obs_size = int(self.brax_env.observation_size)
        self._act_size = int(self.brax_env.action_size)

    @property
    def name(self) -> str:
        return f"brax/{self.task}"

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    @property
    def num_actions(self) -> int:
        """The action dimension (continuous)."""
        return self._act_size

    @property
    def dt(self) -> float:
        """Seconds of simulated time per step."""
        return float(self.brax_env.dt)

    def action_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self._act_size,), jnp.float32)

    def observation_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)

    def reset_env(self, key: jax.Array, params: BraxParams) -> tuple[jax.Array, BraxEnvState]:
        """A fresh episode from brax's initial-state distribution; obs ``(obs_dim,)``."""
        first = self.brax_env.reset(_raw_key(key))
        state = BraxEnvState(brax=first, first=first, time=jnp.zeros((), jnp.int32))
        return first.obs, state

    def step_env(
        self, key: jax.Array, state: BraxEnvState, action: jax.Array, params: BraxParams
    ) -> tuple[jax.Array, BraxEnvState, jax.Array, jax.Array, dict[str, Any]]:
        """One step without reset: ``(obs, state, reward, terminated, info)``.

        Args:
          key: draws the actuation noise and pushes.
          state: the current state.
          action: ``(num_actions,)`` in [-1, 1] (clipped).
          params: :class:`BraxParams`.
        """
        action = jnp.asarray(action, state.brax.obs.dtype).reshape(self._act_size)
        # Without noise (brax's task) no random numbers are drawn: the predicate is unbatched
        # when params are shared by a vmap, so the cond stays a branch (~5% of an RP step).
        disturbed = (params.noise_scale > 0) | (params.push_prob > 0)
        action, pushed = jax.lax.cond(
            disturbed,
            _disturb,
            lambda key, action, params: (action, jnp.zeros((), bool)),
            key,
            action,
            params,
        )
        applied = jnp.clip(action, -1.0, 1.0)
        nxt = self.brax_env.step(state.brax, applied)
        dtype = state.brax.obs.dtype
        # some tasks return Python floats; keep the carry's types fixed for lax.scan
        nxt = nxt.replace(reward=jnp.asarray(nxt.reward, dtype), done=jnp.asarray(nxt.done, dtype))
        reward = nxt.reward if self._smooth is None else self._smooth(nxt.obs)
        terminated = nxt.done > 0.5
        new = BraxEnvState(brax=nxt, first=state.first, time=state.time + 1)
        return nxt.obs, new, reward, terminated, {"pushed": pushed}

    @functools.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: BraxEnvState,
        action: jax.Array,
        params: BraxParams | None = None,
    ) -> tuple[jax.Array, BraxEnvState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """gymnax 1.0 ``step``: ``(obs, state, reward, terminated, truncated, info)``.

        A finished episode (terminated or truncated) restarts from its own start state
        (``state.first``); ``info["final_observation"]`` is the observation before the reset.
        """
        params = self.default_params if params is None else params
        obs_st, state_st, reward, terminated, info = self.step_env(key, state, action, params)
        truncated = state_st.time >= params.max_steps_in_episode
        done = jnp.logical_or(terminated, truncated)
        restart = BraxEnvState(brax=state.first, first=state.first, time=jnp.zeros_like(state.time))
        new = jax.tree.map(lambda r, s: jnp.where(done, r, s), restart, state_st)
        obs = jnp.where(done, state.first.obs, obs_st)
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": obs_st,
        }
        return obs, new, reward, terminated, truncated, info

    def is_terminal(self, state: BraxEnvState, params: BraxParams) -> jax.Array:
        return jnp.logical_or(state.brax.done > 0.5, state.time >= params.max_steps_in_episode)


def _disturb(key: jax.Array, action: jax.Array, params: BraxParams) -> tuple[jax.Array, jax.Array]:
    """``(action + noise + push, pushed)``: always-on noise ``noise_scale * N(0, I)`` and, with
    probability ``push_prob``, a push ``push_size * N(0, I)`` (action units, before the clip)."""
    k_noise, k_push, k_size = jax.random.split(key, 3)
    noise = params.noise_scale * jax.random.normal(k_noise, action.shape, action.dtype)
    pushed = jax.random.bernoulli(k_push, params.push_prob)
    size = jnp.where(pushed, params.push_size, 0.0).astype(action.dtype)
    push = size * jax.random.normal(k_size, action.shape, action.dtype)
    return action + noise + push, pushed


def _raw_key(key: jax.Array) -> jax.Array:
    """brax's resets take legacy uint32 keys; accept typed keys too."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def make_brax(
    name: str,
    backend: str = "spring",
    reward: str = "native",
    episode_length: int = 1000,
    noise_scale: float = 0.0,
    push_prob: float = 0.0,
    push_size: float = 0.0,
    **brax_kwargs: Any,
) -> tuple[BraxEnv, BraxParams]:
    """``(env, params)`` for ``brax/<name>``; the ``ordergrad_envs.make`` factory of every brax
    task.

    Args:
      name: brax task name, with or without the ``brax/`` prefix.
      backend: physics pipeline (see :data:`BACKENDS`).
      reward: ``"native"`` or ``"smooth"`` (inverted_pendulum).
      episode_length: ``max_steps_in_episode`` (>= 1).
      noise_scale, push_prob, push_size: the risk variant (see :class:`BraxParams`).
      **brax_kwargs: passed to ``brax.envs.get_environment``.
    """
    name = name.removeprefix("brax/")
    if int(episode_length) < 1:
        raise ValueError(f"episode_length must be >= 1; got {episode_length}")
    if not 0.0 <= float(push_prob) <= 1.0:
        raise ValueError(f"push_prob must be in [0, 1]; got {push_prob}")
    if float(noise_scale) < 0 or float(push_size) < 0:
        raise ValueError(f"noise_scale and push_size must be >= 0; got {noise_scale}, {push_size}")
    env = BraxEnv(name, backend=backend, reward=reward, **brax_kwargs)
    params = BraxParams(
        max_steps_in_episode=int(episode_length),
        noise_scale=float(noise_scale),
        push_prob=float(push_prob),
        push_size=float(push_size),
    )
    return env, params


def register_brax_tasks(register: Any) -> None:
    """Registers ``brax/<task>`` for each of :data:`BRAX_TASKS` with ``register(name, factory)``
    (``ordergrad_envs.register``); brax is imported only when a task is made."""
    for task in BRAX_TASKS:
        register(f"brax/{task}", functools.partial(make_brax, task))
