"""``GuardedMaze-v0``: the Guarded Maze of Greenberg et al. (2022), a short guarded route or a long
safe one.

The task (Greenberg, Chow, Ghavamzadeh, Mannor, "Efficient Risk-Averse Reinforcement Learning",
NeurIPS 2022, arXiv:2205.05138, the maze benchmark of its experiments): an agent walks a maze
from a start to a target; the shortest route crosses a *guarded zone* where, rarely, a guard
charges a large cost; a longer route around it is safe. The mean-optimal policy takes the short
route (the cost is rare), the CVaR-optimal one the long route (the cost is the whole lower tail).
It is the paper's example of *blindness to success*: from a random start most episodes never
reach the target, so the worst alpha-fraction of episodes, all a CVaR policy gradient looks at,
are time-outs that say nothing of either route.

The maze (``layout``, one string per row, row 0 at the top; the grid's edges are walls)::

    .......      S start, T target, # wall, ! guarded zone, . floor
    .#####.
    S.!!!.T

Actions: 0 up, 1 right, 2 down, 3 left; a move into a wall or off the grid stays put. Rewards:
``step_reward`` per step, plus ``goal_reward`` on the step that reaches the target (terminated);
the first step of an episode that enters the guarded zone draws the guard: with probability
``guard_prob`` it charges ``guard_cost`` (the reward of that step is lowered by it; the episode
goes on). Truncation after ``max_steps_in_episode`` steps. Observation: ``[2 + H * W]`` float32,
the agent's normalised ``(row / (H - 1), col / (W - 1))`` then the one-hot of its cell; with
``observe_position=0``, ``[H * W]``, the one-hot alone (a linear policy on it is a tabular one).

Two routes (with the defaults: guard 0.05, cost 32, rewards -1 / +20, 40 steps):

* the *short* route along the bottom row: 6 steps, return ``20 - 6 = 14``, or ``14 - 32 = -18``
  with probability 0.05: mean 12.4, CVaR_0.1 ``0.5 * -18 + 0.5 * 14 = -2``;
* the *safe* route over the top row: 10 steps, return 10, deterministic (mean = CVaR = 10).

So the short route is mean-optimal (+2.4) and the safe route CVaR_0.1-optimal (+12); a policy
that never reaches the target returns -40. The CVaR is convex in a mixture of distributions, and
here it dips: a policy that takes the safe route with probability ``q <= 0.05`` and the short one
otherwise has CVaR_0.1 ``= -2 - 24 q``, below both routes, so each route is a local optimum of
CVaR_0.1. ``route_policy`` gives both hand-written routes and ``route_return_distribution``
their exact return distributions.

Source and choices. What we could read of the paper fixes the mechanism above and no number:
its abstract and the start of its introduction (ar5iv.labs.arxiv.org/html/2205.05138; the
NeurIPS 2022 proceedings page: standard risk-averse PG "completely fails" in some of its
scenarios) and the README of the authors' repository (github.com/ido90/CeSoR: risk-neutral PG,
"standard risk-averse GCVaR" and CeSoR compared on the maze and two other benchmarks; the failure
is *blindness to success*). The maze section and the appendix (the layout, the reward,
the guard's probability and cost distribution, the horizon, the paper's alpha and its numbers)
were not readable here (issue 25, item 4a, searched twice). So **the map and every number are
ours**, chosen to keep that mechanism and to be small:

* a grid maze with four moves and no action noise (deterministic routes, exact distributions);
* the guard is drawn once per episode, at the first entry into the zone, so a route's return is
  two-point (the short-route return, lowered by the cost with the guard probability) however
  many zone cells it crosses; it is drawn with the step key, not at reset, because
  ``group_rollout`` resets the episodes of a group with one key, so a guard drawn at reset
  would be shared by the whole group;
* the guard is not observed (the agent sees only where it is) and its cost is fixed;
* ``guard_prob = 0.05 < alpha = 0.1`` puts the charged episodes inside the CVaR_0.1 tail, and
  with ``d = 4`` extra steps on the safe route, ``guard_prob * guard_cost = 1.6 < d < 16 =
  guard_prob * guard_cost / alpha``: the condition for the mean and the CVaR_0.1 to prefer
  different routes;
* the observation is the normalised position plus the one-hot cell, so an MLP can tell the
  cells apart (as in ``RiskyGrid-v0``); no reward shaping, so the blindness to success is there
  from a random start (a uniformly random policy reaches the target in about 20 % of its
  40-step episodes, so the worst 10 % are all time-outs).
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # (d_row, d_col); row 0 is the top row
ROUTES = ("short", "safe")

DEFAULT_LAYOUT = (
    ".......",
    ".#####.",
    "S.!!!.T",
)


@struct.dataclass
class EnvState(environment.EnvState):
    row: jax.Array
    col: jax.Array
    guard_drawn: jax.Array  # bool: the guard was drawn this episode (the zone was entered)
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    """The layout is static (it sets the shapes); the numbers are leaves (``vmap``-able)."""

    guard_prob: float = 0.05
    guard_cost: float = 32.0
    step_reward: float = -1.0
    goal_reward: float = 20.0
    max_steps_in_episode: int = 40
    layout: tuple[str, ...] = struct.field(pytree_node=False, default=DEFAULT_LAYOUT)
    observe_position: int = struct.field(pytree_node=False, default=1)
    """1: the observation starts with the normalised position; 0: the one-hot cell alone."""


class Maze(NamedTuple):
    """The parsed layout (host NumPy): ``free``, ``guarded`` are ``[H, W]`` bool."""

    free: np.ndarray
    guarded: np.ndarray
    start: tuple[int, int]
    target: tuple[int, int]


@functools.lru_cache(maxsize=32)
def parse_layout(layout: tuple[str, ...]) -> Maze:
    """Parses ``layout`` (rows of ``S T # ! .``, row 0 at the top).

    Raises:
      ValueError: rows of unequal length, another character, or not exactly one S and one T.
    """
    if not layout or len({len(row) for row in layout}) != 1 or not layout[0]:
        raise ValueError(f"layout must be non-empty rows of one length; got {layout!r}")
    grid = np.array([list(row) for row in layout])
    bad = sorted(set(grid.ravel()) - set("ST#!."))
    if bad:
        raise ValueError(f"layout characters are S T # ! .; got {bad}")
    for mark in "ST":
        if (grid == mark).sum() != 1:
            raise ValueError(f"layout needs exactly one {mark!r}; got {(grid == mark).sum()}")
    start, target = (tuple(int(i) for i in np.argwhere(grid == m)[0]) for m in "ST")
    return Maze(free=grid != "#", guarded=grid == "!", start=start, target=target)


class GuardedMaze(environment.Environment[EnvState, EnvParams]):
    """The Guarded Maze (see the module docstring); gymnax 1.0 ``step`` contract."""

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(
        self, key: jax.Array, state: EnvState, action: Any, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        maze = parse_layout(params.layout)
        H, W = maze.free.shape
        action = jnp.clip(jnp.asarray(action, jnp.int32).reshape(()), 0, 3)
        move = jnp.asarray(_MOVES, jnp.int32)[action]
        row = jnp.clip(state.row + move[0], 0, H - 1)
        col = jnp.clip(state.col + move[1], 0, W - 1)
        blocked = ~jnp.asarray(maze.free)[row, col]
        row = jnp.where(blocked, state.row, row)
        col = jnp.where(blocked, state.col, col)
        enters = jnp.asarray(maze.guarded)[row, col] & ~state.guard_drawn
        charged = enters & jax.random.bernoulli(key, params.guard_prob)
        goal = (row == maze.target[0]) & (col == maze.target[1])
        dtype = jnp.result_type(float)
        reward = (
            jnp.asarray(params.step_reward, dtype)
            + jnp.where(goal, params.goal_reward, 0.0)
            - jnp.where(charged, params.guard_cost, 0.0)
        )
        state = EnvState(
            row=row, col=col, guard_drawn=state.guard_drawn | enters, time=state.time + 1
        )
        return (
            self.get_obs(state, params),
            state,
            reward.astype(dtype),
            goal,
            {"discount": 1.0 - goal.astype(dtype), "guard_charged": charged},
        )

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        del key  # the start is fixed; the guard is drawn when the zone is entered
        r, c = parse_layout(params.layout).start
        state = EnvState(
            row=jnp.array(r, jnp.int32),
            col=jnp.array(c, jnp.int32),
            guard_drawn=jnp.array(False),
            time=0,
        )
        return self.get_obs(state, params), state

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key=None) -> jax.Array:
        """``[2 + H * W]`` float32: ``(row / (H - 1), col / (W - 1))``, then the cell's one-hot
        (``[H * W]``, the one-hot alone, with ``observe_position=0``)."""
        params = self.default_params if params is None else params
        H, W = parse_layout(params.layout).free.shape
        cell = jax.nn.one_hot(state.row * W + state.col, H * W, dtype=jnp.float32)
        if not params.observe_position:
            return cell
        position = jnp.stack([state.row / max(H - 1, 1), state.col / max(W - 1, 1)])
        return jnp.concatenate([position.astype(jnp.float32), cell])

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        target = parse_layout(params.layout).target
        return (state.row == target[0]) & (state.col == target[1])

    @property
    def name(self) -> str:
        return "GuardedMaze-v0"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        H, W = parse_layout(params.layout).free.shape
        return spaces.Box(0.0, 1.0, (2 * bool(params.observe_position) + H * W,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        H, W = parse_layout(params.layout).free.shape
        return spaces.Dict(
            {
                "row": spaces.Discrete(H),
                "col": spaces.Discrete(W),
                "guard_drawn": spaces.Discrete(2),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def _distances(maze: Maze, avoid_guard: bool) -> np.ndarray:
    """``[H, W]`` moves from each cell to the target (breadth-first; -1: cut off)."""
    H, W = maze.free.shape
    open_ = maze.free & ~maze.guarded if avoid_guard else maze.free
    dist = np.full((H, W), -1, np.int64)
    dist[maze.target] = 0
    queue = deque([maze.target])
    while queue:
        r, c = queue.popleft()
        for dr, dc in _MOVES:
            nr, nc = r + dr, c + dc
            if 0 <= nr < H and 0 <= nc < W and open_[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


def route_actions(env_params: EnvParams, route: str) -> np.ndarray:
    """``[H * W]`` int32: the action of the hand-written ``route`` in each cell.

    ``"short"``: a shortest route to the target (through the guarded zone with the default
    layout); ``"safe"``: a shortest route that never enters the guarded zone. In each cell the
    first action (in the order up, right, down, left) that moves one step closer to the target;
    cells from which the route cannot reach it get 0.

    Raises:
      ValueError: an unknown ``route``, or the start cannot reach the target on it.
    """
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}; got {route!r}")
    maze = parse_layout(env_params.layout)
    dist = _distances(maze, avoid_guard=route == "safe")
    if dist[maze.start] < 0:
        raise ValueError(f"the {route} route cannot reach the target from the start")
    H, W = dist.shape
    actions = np.zeros((H, W), np.int32)
    for r, c in np.argwhere(dist > 0):
        for a, (dr, dc) in enumerate(_MOVES):
            nr, nc = r + dr, c + dc
            if 0 <= nr < H and 0 <= nc < W and dist[nr, nc] == dist[r, c] - 1:
                actions[r, c] = a
                break
    return actions.reshape(H * W)


def route_policy(env_params: EnvParams, route: str):
    """A hand-written deterministic policy that follows ``route`` (``"short"`` or ``"safe"``).

    Returns:
      ``policy(key, obs) -> (action, logp)`` with ``logp = 0``; it reads the cell from the
      one-hot part of ``obs`` (its last ``H * W`` entries).
    """
    table = jnp.asarray(route_actions(env_params, route))

    def policy(key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        del key
        return table[jnp.argmax(obs[-table.shape[0] :])], jnp.zeros((), jnp.result_type(float))

    return policy


def route_return_distribution(env_params: EnvParams, route: str) -> tuple[np.ndarray, np.ndarray]:
    """The exact return distribution of ``route_policy(env_params, route)`` (host, float64).

    The route is deterministic: ``L`` steps to the target (``L <= max_steps_in_episode``, else
    it is truncated after ``max_steps_in_episode`` steps with no goal reward); it enters the
    guarded zone or not. Its return is ``R0 = steps * step_reward + goal_reward * reached``,
    lowered by ``guard_cost`` with probability ``guard_prob`` if it enters the zone.

    Args:
      env_params: concrete (not traced) params.
      route: ``"short"`` or ``"safe"``.

    Returns:
      ``(returns [2], probs [2])``: ``returns = (R0 - guard_cost * enters, R0)``,
      ``probs = (guard_prob * enters, 1 - guard_prob * enters)``.
    """
    maze = parse_layout(env_params.layout)
    H, W = maze.free.shape
    actions = route_actions(env_params, route).reshape(H, W)
    (r, c), steps, enters = maze.start, 0, False
    while (r, c) != maze.target and steps < env_params.max_steps_in_episode:
        dr, dc = _MOVES[actions[r, c]]
        r, c, steps = r + dr, c + dc, steps + 1
        enters = enters or bool(maze.guarded[r, c])
    reached = (r, c) == maze.target
    r0 = steps * float(env_params.step_reward) + reached * float(env_params.goal_reward)
    p = float(env_params.guard_prob) * enters
    returns = np.array([r0 - float(env_params.guard_cost) * enters, r0], np.float64)
    return returns, np.array([p, 1.0 - p], np.float64)


OUTCOMES = ("arrives avoiding the zone", "arrives through the zone", "times out")


def uniform_policy_outcomes(env_params: EnvParams) -> dict[str, float]:
    """Exact probabilities of an episode's outcome under the uniformly random policy (each of the
    four actions with probability 1/4 at every step; host floats, computed in float64): it
    reaches the target without entering the guarded zone, reaches it after entering the zone, or
    is truncated after ``max_steps_in_episode`` steps. The learners' start: their policy is near
    uniform at initialisation.

    :func:`tabular_outcomes` at zero logits (its forward recursion over (cell, zone entered) with
    the step rule of :class:`GuardedMaze`).

    Returns:
      ``{outcome: probability}`` over :data:`OUTCOMES`, summing to 1.
    """
    cells = parse_layout(env_params.layout).free.size
    with jax.enable_x64(True):
        out = tabular_outcomes(jnp.zeros((cells, 4), jnp.float64), env_params)
        return {name: float(out[name]) for name in OUTCOMES}


def _transitions(maze: Maze) -> np.ndarray:
    """``[H * W, 4]`` int: the cell each action leads to from each cell (walls and edges stay)."""
    H, W = maze.free.shape
    out = np.zeros((H * W, 4), np.int64)
    for r in range(H):
        for c in range(W):
            for a, (dr, dc) in enumerate(_MOVES):
                nr, nc = r + dr, c + dc
                ok = 0 <= nr < H and 0 <= nc < W and maze.free[nr, nc]
                out[r * W + c, a] = nr * W + nc if ok else r * W + c
    return out


def tabular_outcomes(logits: jax.Array, env_params: EnvParams) -> dict[str, jax.Array]:
    """Exact episode statistics of the tabular softmax policy ``softmax(logits[cell])``,
    differentiable in ``logits [H * W, 4]`` (a policy that sees only its cell, as the
    environment's one-hot observation allows): the probabilities of :data:`OUTCOMES`, the
    probability that the episode enters the guarded zone, the expected number of steps, and the
    expected return ``step_reward * steps + goal_reward * P(arrive) - guard_cost * guard_prob *
    P(enter)`` (the guard is drawn once, at the first entry).

    The same forward recursion over (cell, zone entered) as :func:`uniform_policy_outcomes`, in
    ``jnp`` (``max_steps_in_episode`` unrolled by ``lax.scan``; ``env_params`` concrete).

    Returns:
      ``{outcome: [], "enters": [], "steps": [], "return": []}``.
    """
    maze = parse_layout(env_params.layout)
    H, W = maze.free.shape
    nxt = jnp.asarray(_transitions(maze))  # [C, 4]
    guarded = jnp.asarray(maze.guarded.reshape(-1))
    target = maze.target[0] * W + maze.target[1]
    pi = jax.nn.softmax(logits, -1)  # [C, 4]
    start = maze.start[0] * W + maze.start[1]
    mass = jnp.zeros((2, H * W), pi.dtype).at[int(bool(maze.guarded[maze.start])), start].set(1.0)

    def step(mass, _):
        flow = mass[:, :, None] * pi[None]  # [2, C, 4]
        to_free = (
            jnp.zeros_like(mass)
            .at[0]
            .add(  # stays out of the zone
                jnp.zeros(H * W, pi.dtype).at[nxt].add(flow[0] * ~guarded[nxt])
            )
        )
        into = jnp.zeros(H * W, pi.dtype).at[nxt].add(flow[0] * guarded[nxt])  # first entry
        entered = jnp.zeros(H * W, pi.dtype).at[nxt].add(flow[1]) + into
        new = to_free.at[1].add(entered)
        arrived = new[:, target]
        return new.at[:, target].set(0.0), (arrived, into.sum(), mass.sum())

    mass, (arrived, into, running) = jax.lax.scan(
        step, mass, None, length=int(env_params.max_steps_in_episode)
    )
    avoid, through = arrived[:, 0].sum(), arrived[:, 1].sum()
    enters = into.sum() + float(bool(maze.guarded[maze.start]))
    steps = running.sum()
    ret = (
        env_params.step_reward * steps
        + env_params.goal_reward * (avoid + through)
        - env_params.guard_cost * env_params.guard_prob * enters
    )
    outcomes = dict(zip(OUTCOMES, (avoid, through, mass.sum()), strict=True))
    return {**outcomes, "enters": enters, "steps": steps, "return": ret}


def discrete_mean_cvar(returns: np.ndarray, probs: np.ndarray, alpha: float) -> tuple[float, float]:
    """``(mean, CVaR_alpha)`` of a discrete return distribution (host, float64); also the
    route-mixture table of the control report (RiskyGrid's routes).

    ``CVaR_alpha = (1 / alpha) * integral_0^alpha F^{-1}(u) du``, the mean of the worst
    ``alpha`` of the probability mass (the lower tail: returns are rewards).

    Args:
      returns: ``[K]`` outcomes.
      probs: ``[K]`` their probabilities (summing to 1).
      alpha: in ``(0, 1]``.

    Raises:
      ValueError: ``alpha`` outside ``(0, 1]`` or shapes that differ.
    """
    returns, probs = np.asarray(returns, np.float64), np.asarray(probs, np.float64)
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1]; got {alpha}")
    if returns.shape != probs.shape or returns.ndim != 1:
        raise ValueError(f"returns and probs must be [K]; got {returns.shape}, {probs.shape}")
    order = np.argsort(returns, kind="stable")
    x, p = returns[order], probs[order]
    mass_before = np.concatenate([[0.0], np.cumsum(p)[:-1]])
    in_tail = np.clip(alpha - mass_before, 0.0, p)  # the mass of each outcome below alpha
    return float(x @ p), float(x @ in_tail / alpha)
