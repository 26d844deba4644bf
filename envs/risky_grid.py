"""``RiskyGrid-v0``: a windy ledge along a chasm (short, risky) or a sheltered detour (long, safe).

The grid has ``height`` rows (row 0 at the bottom) and ``width`` columns. The agent starts at
``(0, 0)``; the goal is ``(0, width - 1)``; the cells between them on row 0 are a chasm. Rows
``1 .. height - 2`` over the chasm (columns ``1 .. width - 2``) are *exposed*: every step that
starts on an exposed cell is hit, with probability ``wind_prob``, by a gust that throws the agent
into the chasm. The top row is sheltered. Actions: 0 up, 1 right, 2 down, 3 left (a move into
the outer wall stays put).

A railing blocks walking into the chasm (the move stays put), so only the wind throws the agent
in. Rewards: ``step_reward`` per step, plus ``goal_reward`` on the step that reaches the goal
(termination); a gust pays ``hazard_reward`` instead and terminates; every step also pays
``progress_reward`` times the decrease of the Manhattan distance to the goal (a potential-based
shaping: over an episode it sums to ``progress_reward * (width - 1 - final distance)``, the same
for every route to the goal; it makes the task learnable from a random start). Truncation after
``max_steps_in_episode`` steps. (Without the railing a random policy walks into the chasm in
most episodes, and a lower-tail objective, which then sees only falls, can settle on the sure
immediate fall: a trap we observed.)

Two routes (with the defaults: width 7, height 4, wind 0.008, rewards -1 / +20 / -40 / +1):

* the *ledge* route along row 1: 8 steps, return ``-8 + 20 + 6 = 18``, but 5 exposed steps,
  so it falls with probability ``1 - (1 - wind_prob)^5`` (3.9 %) for a return of about -40;
* the *sheltered* route along the top row: 12 steps, return 14, deterministic.

The ledge has the higher mean (about 15.7 vs 14) and the much worse lower tail (CVaR_0.1 about
-5 vs 14): the mean-optimal policy is not the CVaR_0.1-optimal one. A route along a middle
row is as exposed as the ledge and longer, so it is dominated. ``envs/README.md`` has the
measured table. Observation: the one-hot of the agent's cell, ``[height * width]`` floats.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
_MOVES = jnp.array([[1, 0], [0, 1], [-1, 0], [0, -1]], jnp.int32)  # (d_row, d_col)


@struct.dataclass
class EnvState(environment.EnvState):
    row: jax.Array
    col: jax.Array
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Sizes are static (they set the observation shape); the rest are leaves (``vmap``-able)."""

    wind_prob: float = 0.008
    step_reward: float = -1.0
    goal_reward: float = 20.0
    hazard_reward: float = -40.0
    progress_reward: float = 1.0
    max_steps_in_episode: int = 30
    width: int = struct.field(pytree_node=False, default=7)
    height: int = struct.field(pytree_node=False, default=4)


def _distance(row: jax.Array, col: jax.Array, width: int) -> jax.Array:
    """Manhattan distance to the goal ``(0, width - 1)``: the shaping potential."""
    return (width - 1 - col) + row


class RiskyGrid(environment.Environment[EnvState, EnvParams]):
    """The windy-ledge gridworld (see the module docstring); gymnax 1.0 ``step`` contract."""

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(
        self, key: jax.Array, state: EnvState, action: Any, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        W, H = params.width, params.height
        exposed = (state.row >= 1) & (state.row <= H - 2) & (state.col >= 1) & (state.col <= W - 2)
        gust = exposed & jax.random.bernoulli(key, params.wind_prob)
        move = _MOVES[jnp.clip(jnp.asarray(action, jnp.int32).reshape(()), 0, 3)]
        row = jnp.clip(state.row + move[0], 0, H - 1)
        col = jnp.clip(state.col + move[1], 0, W - 1)
        # A railing: walking into the chasm is blocked (the move stays put); only gusts throw.
        railing = (row == 0) & (col >= 1) & (col <= W - 2)
        row = jnp.where(railing, state.row, row)
        col = jnp.where(railing, state.col, col)
        goal = ~gust & (row == 0) & (col == W - 1)
        row = jnp.where(gust, 0, row)
        time = state.time + 1
        reward = jnp.where(
            gust,
            params.hazard_reward,
            params.step_reward + jnp.where(goal, params.goal_reward, 0.0),
        )
        reward = reward + params.progress_reward * (
            _distance(state.row, state.col, W) - _distance(row, col, W)
        )
        state = EnvState(row=row, col=col, time=time)
        terminated = gust | goal
        return (
            self.get_obs(state, params),
            state,
            jnp.asarray(reward, jnp.result_type(float)),
            terminated,
            {"discount": 1.0 - terminated.astype(jnp.result_type(float)), "fell": gust},
        )

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        del key  # the start is fixed
        state = EnvState(row=jnp.array(0, jnp.int32), col=jnp.array(0, jnp.int32), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        cell = state.row * params.width + state.col
        return jax.nn.one_hot(cell, params.height * params.width, dtype=jnp.result_type(float))

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return (state.row == 0) & (state.col >= 1)  # the chasm or the goal

    @property
    def name(self) -> str:
        return "RiskyGrid-v0"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (params.height * params.width,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        return spaces.Dict(
            {
                "row": spaces.Discrete(params.height),
                "col": spaces.Discrete(params.width),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def route_policy(env_params: EnvParams, route_row: int):
    """A hand-written deterministic policy that walks along row ``route_row`` (int or traced).

    Up the first column to ``route_row``, right along it to the last column, down to the goal
    (back up if a cell below ``route_row`` is reached elsewhere). ``route_row=1`` is the ledge,
    ``route_row=height - 1`` the sheltered route.

    Returns:
      ``policy(key, obs) -> (action, logp)`` with ``logp = 0`` (deterministic).
    """
    if isinstance(route_row, int) and not 1 <= route_row <= env_params.height - 1:
        raise ValueError(f"route_row must be in [1, {env_params.height - 1}]; got {route_row}")
    W = env_params.width

    def policy(key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        del key
        cell = jnp.argmax(obs)
        row, col = cell // W, cell % W
        action = jnp.where(
            col == W - 1,
            DOWN,
            jnp.where(row < route_row, UP, jnp.where(row > route_row, DOWN, RIGHT)),
        )
        return action.astype(jnp.int32), jnp.zeros((), jnp.result_type(float))

    return policy
