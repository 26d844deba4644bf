"""``DeepHedging-v0``: hedge a short at-the-money call on a Black-Scholes stock (Buehler et al.).

The agent has sold one European call (strike ``strike``, maturity ``maturity`` years) and trades
the stock at ``N = max_steps_in_episode`` equally spaced dates ``t_k = k dt``, ``dt = maturity /
N``, ``k = 0 .. N - 1``. All money is discounted to time 0 by the bank account ``D_k = exp(-rate
t_k)`` (``rate = 0`` by default, so ``D = 1``).

* **Action**: the new hedge position ``a`` (shares held over ``[t_k, t_{k+1})``), shape ``[1]``,
  clipped to ``[min_position, max_position]``.
* **Dynamics** (geometric Brownian motion, reparameterised): ``S_{k+1} = S_k exp((drift -
  sigma^2 / 2) dt + sigma sqrt(dt) z_k)``, ``z_k ~ N(0, 1)`` drawn from the step key. The path
  does not depend on the actions, so every reward is a differentiable function of them
  (``supports_transition_gradients``; the RP trainer calls ``with_transition_gradients()``).
* **Reward** of step k (new position ``a_k``, old position ``a_{k-1}``, ``a_{-1} = 0``):
  ``a_k (D_{k+1} S_{k+1} - D_k S_k) - cost |a_k - a_{k-1}| D_k S_k`` (the trading gain less the
  proportional cost), and on the last step (``k = N - 1``) also the call's payoff
  ``-D_N max(S_N - strike, 0)`` and the cost of unwinding the final position,
  ``-cost |a_{N-1}| D_N S_N`` (the option is cash-settled and the hedge is sold at maturity).
* **Episode**: starts at ``S_0 = s0`` with no position; terminates after exactly N steps
  (``terminated`` True at maturity, never ``truncated``: the horizon is the contract's).
* **Observation** ``[3]``: ``(time to maturity as a fraction of maturity, log(S / strike),
  current position)``: ``(1 - k / N, log(S_k / strike), a_{k-1})``, float32 (float64 under
  ``JAX_ENABLE_X64``, as every task here).

A rollout must run all N steps (e.g. the pathwise trainer's ``num_steps = max_steps_in_episode``):
a shorter one never reaches the payoff.

So the episode return ``R`` is the discounted terminal P&L of the hedged short call *excluding
the premium*. Pricing convention (:func:`indifference_price`): the seller who receives a premium
``p`` ends with ``p + R``; for an objective ``J`` that is translation-equivariant (``J(R + c) =
J(R) + c``: the mean, ``CVaR_q`` and every L-statistic whose rank weights sum to one) the price
``p`` that makes the hedged position acceptable, ``J(p + R) = 0``, is ``p = -J(R)``. With the
convex risk measure ``rho = -CVaR_q`` this is ``p = rho(R)``; at the best hedge it is Buehler et
al.'s ``pi(-Z)``, and their indifference price ``pi(-Z) - pi(0)`` equals it when ``drift = rate``
(then no strategy without the claim beats doing nothing, ``pi(0) = 0``; otherwise subtract the
best ``rho`` of trading alone). The best hedge maximises ``J`` and so minimises the price. With
``drift = rate`` and ``cost = 0`` every strategy has ``E[R] = -`` the Black-Scholes price (the
gains are martingale increments), so the mean (``q = 1``) prices at :func:`black_scholes_price`
and any ``q < 1`` prices above it; the hedge changes the spread of ``R``, not its mean.

Defaults (the issue's anchor): ``s0 = strike = 100``, ``sigma = 0.2``, ``rate = drift = 0``,
``maturity = 30 / 365``, 30 steps, ``cost = 0``, positions in ``[-2, 2]``; the call costs 2.287.
:func:`delta_policy` hedges with the Black-Scholes delta (the anchor a learned hedge is compared
with; with ``cost = 0`` its hedging error shrinks like ``1 / sqrt(N)``).

References:
  Buehler, Gonon, Teichmann, Wood, "Deep hedging", Quantitative Finance 19(8), 2019 (the
  indifference price under a convex risk measure; the CVaR hedging experiments).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces
from jax.scipy.stats import norm

import ordergrad_jax as og


@struct.dataclass
class EnvState(environment.EnvState):
    """``time``: steps taken (k); ``spot``: ``S_k``; ``position``: ``a_{k-1}`` (shares held)."""

    spot: jax.Array
    position: jax.Array
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Every field is a leaf (a sweep over ``cost`` or ``sigma`` is a ``vmap``).

    Attributes:
      s0: the stock's price at time 0.
      strike: the call's strike K.
      sigma: the stock's volatility (per sqrt(year)).
      rate: the interest rate r (per year, continuous); money is discounted by ``exp(-r t)``.
      drift: the stock's drift mu (per year) under the simulated measure; ``drift = rate`` is the
        risk-neutral measure (the Black-Scholes price is then the mean discounted payoff).
      maturity: T in years.
      cost: proportional transaction cost (a fraction of the traded value).
      min_position, max_position: the bounds the action is clipped to (shares).
      max_steps_in_episode: N, the number of rebalancing dates (the episode's length).
    """

    s0: float = 100.0
    strike: float = 100.0
    sigma: float = 0.2
    rate: float = 0.0
    drift: float = 0.0
    maturity: float = 30.0 / 365.0
    cost: float = 0.0
    min_position: float = -2.0
    max_position: float = 2.0
    max_steps_in_episode: int = 30


def _float(x: jax.typing.ArrayLike) -> jax.Array:
    return jnp.asarray(x, jnp.result_type(float))


def _dt(params: EnvParams) -> jax.Array:
    return _float(params.maturity) / params.max_steps_in_episode


class DeepHedging(environment.Environment[EnvState, EnvParams]):
    """Hedging a short call on a Black-Scholes stock (see the module docstring); gymnax 1.0
    ``step`` contract, differentiable transitions."""

    _supports_transition_gradients = True

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(
        self, key: jax.Array, state: EnvState, action: Any, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        dtype = jnp.result_type(float)
        new = jnp.clip(
            jnp.reshape(_float(action), ()), params.min_position, params.max_position
        ).astype(dtype)
        dt = _dt(params)
        z = jax.random.normal(key, (), dtype)
        spot = state.spot * jnp.exp(
            (params.drift - 0.5 * params.sigma**2) * dt + params.sigma * jnp.sqrt(dt) * z
        )
        time = state.time + 1
        disc, next_disc = jnp.exp(-params.rate * dt * state.time), jnp.exp(-params.rate * dt * time)
        trade_cost = params.cost * jnp.abs(new - state.position) * disc * state.spot
        gain = new * (next_disc * spot - disc * state.spot)
        terminated = time >= params.max_steps_in_episode
        payoff = next_disc * jnp.maximum(spot - params.strike, 0.0)
        unwind_cost = params.cost * jnp.abs(new) * next_disc * spot
        paid = trade_cost + jnp.where(terminated, unwind_cost, 0.0)
        reward = gain - paid - jnp.where(terminated, payoff, 0.0)
        state = EnvState(spot=spot, position=new, time=time)
        obs, state = self._apply_transition_gradient_policy(self.get_obs(state, params), state)
        info = {
            "discount": 1.0 - terminated.astype(dtype),
            "cost": paid.astype(dtype),
            "spot": spot,
        }
        return obs, state, reward.astype(dtype), terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        del key  # the start is fixed
        state = EnvState(spot=_float(params.s0), position=_float(0.0), time=jnp.array(0, jnp.int32))
        return self.get_obs(state, params), state

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        to_maturity = 1.0 - _float(state.time) / params.max_steps_in_episode
        moneyness = jnp.log(state.spot / params.strike)
        return jnp.stack([to_maturity, moneyness, state.position]).astype(jnp.result_type(float))

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.asarray(state.time >= params.max_steps_in_episode)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        del state, params  # maturity terminates the episode; there is no separate time limit
        return jnp.array(False)

    @property
    def name(self) -> str:
        return "DeepHedging-v0"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        return spaces.Box(params.min_position, params.max_position, (1,), jnp.float32)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        low = jnp.array([0.0, -jnp.inf, params.min_position], jnp.float32)
        high = jnp.array([1.0, jnp.inf, params.max_position], jnp.float32)
        return spaces.Box(low, high, (3,), jnp.float32)

    # --- the hooks a trainer's final evaluation finds on the env (experiments/pathwise/final.py)

    def reference_policy(self, params: EnvParams):
        """The anchor a learned hedge is compared with: :func:`delta_policy`."""
        return delta_policy(params)

    def evaluation_metrics(self, params: EnvParams, episodes: Any) -> dict[str, jax.Array]:
        """:func:`hedge_metrics` of the episodes' observations and actions, and the ``CVaR_0.1``
        :func:`indifference_price` of their returns (``episodes``: an
        ``ordergrad_envs.rollout.Episodes``, leading dims ``[..., N]``)."""
        metrics = hedge_metrics(params, episodes.obs, episodes.actions[..., 0], episodes.mask)
        flat = episodes.returns.reshape(-1)
        return {"indifference_price_0.1": indifference_price(flat, 0.1), **metrics}

    def policy_grid(self, params: EnvParams) -> dict[str, tuple[dict[str, jax.Array], jax.Array]]:
        """:func:`hedge_grid`: observations on which to draw a policy."""
        return hedge_grid(params)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        return spaces.Dict(
            {
                "spot": spaces.Box(0.0, jnp.inf, (), jnp.float32),
                "position": spaces.Box(params.min_position, params.max_position, (), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode + 1),
            }
        )


def _d1(params: EnvParams, tau: jax.Array, spot: jax.Array) -> jax.Array:
    vol = params.sigma * jnp.sqrt(tau)
    return (jnp.log(spot / params.strike) + (params.rate + 0.5 * params.sigma**2) * tau) / vol


def black_scholes_price(
    params: EnvParams, t: jax.typing.ArrayLike = 0.0, spot: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """The Black-Scholes price of the call at time ``t`` (years, ``t < maturity``), in money of
    time ``t``: ``S N(d1) - K exp(-r tau) N(d2)``, ``tau = maturity - t``, ``d1 = (log(S / K) +
    (r + sigma^2 / 2) tau) / (sigma sqrt(tau))``, ``d2 = d1 - sigma sqrt(tau)``.

    Args:
      params: the task's params (``strike``, ``sigma``, ``rate``, ``maturity``).
      t: time ``[...]`` in years since the start.
      spot: the stock's price ``[...]``; ``None``: ``params.s0``.

    Returns:
      ``broadcast(t, spot)``; at the defaults, 2.287 (the price of the task's short call).
    """
    spot = _float(params.s0 if spot is None else spot)
    tau = _float(params.maturity) - _float(t)
    d1 = _d1(params, tau, spot)
    d2 = d1 - params.sigma * jnp.sqrt(tau)
    return spot * norm.cdf(d1) - params.strike * jnp.exp(-params.rate * tau) * norm.cdf(d2)


def black_scholes_delta(
    params: EnvParams, t: jax.typing.ArrayLike, spot: jax.typing.ArrayLike
) -> jax.Array:
    """The call's Black-Scholes delta ``N(d1)`` at time ``t`` (years) and price ``spot``: the
    shares that replicate it (the discounted gains of holding them match the discounted price's
    change). At or after maturity, ``1{spot > strike}``.

    Args:
      params: the task's params.
      t: time ``[...]`` in years since the start.
      spot: the stock's price ``[...]``.

    Returns:
      ``broadcast(t, spot)``, in ``[0, 1]``.
    """
    spot = _float(spot)
    tau = _float(params.maturity) - _float(t)
    live = tau > 0
    d1 = _d1(params, jnp.where(live, tau, 1.0), spot)
    return jnp.where(live, norm.cdf(d1), (spot > params.strike).astype(spot.dtype))


def delta_policy(params: EnvParams):
    """The Black-Scholes delta hedge as a policy of the observation: ``a = clip(N(d1))`` at the
    time ``t = maturity (1 - obs[0])`` and price ``S = strike exp(obs[1])`` (the position
    ``obs[2]`` is ignored).

    Returns:
      ``policy(key, obs [3]) -> (action [1], logp)`` with ``logp = 0`` (deterministic), the
      ``ordergrad_envs.rollout.Policy`` signature.
    """

    def policy(key: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        del key
        t = params.maturity * (1.0 - obs[0])
        spot = params.strike * jnp.exp(obs[1])
        delta = black_scholes_delta(params, t, spot)
        action = jnp.clip(delta, params.min_position, params.max_position)
        return action[None], jnp.zeros((), jnp.result_type(float))

    return policy


def indifference_price(returns: jax.typing.ArrayLike, q: jax.typing.ArrayLike) -> jax.Array:
    """The ``CVaR_q`` indifference price of the short call from sampled episode returns:
    ``p = -CVaR_q(R)``, the premium ``p`` with ``CVaR_q(p + R) = 0`` (see the module docstring).

    ``CVaR_q`` is the plug-in lower-tail mean :func:`ordergrad_jax.metrics.cvar` (higher return
    is better; ``q = 1`` is the mean, so ``p = -mean(R)``). For a trainer's L-statistic objective
    ``J`` with weights summing to one (e.g. ``CVaR:q``), the price is ``-J`` likewise.

    Args:
      returns: episode returns ``[..., N]`` (the P&L excluding the premium).
      q: tail fraction in ``(0, 1]``.

    Returns:
      ``[...]``.
    """
    return -og.metrics.cvar(returns, q)


NO_TRADE_TOL = 0.01
"""A step "does not trade" when the position moves by less than this many shares (the delta hedge
moves about 0.07 shares a step at the money at the defaults)."""


def _delta_of_obs(params: EnvParams, obs: jax.Array) -> jax.Array:
    """The Black-Scholes delta at the time and price an observation ``[..., 3]`` shows."""
    t = params.maturity * (1.0 - obs[..., 0])
    return black_scholes_delta(params, t, params.strike * jnp.exp(obs[..., 1]))


def hedge_metrics(
    params: EnvParams,
    obs: jax.typing.ArrayLike,
    positions: jax.typing.ArrayLike,
    mask: jax.typing.ArrayLike | None = None,
    no_trade_tol: float = NO_TRADE_TOL,
) -> dict[str, jax.Array]:
    """How a hedge's positions compare with the Black-Scholes delta along simulated paths.

    The distance is weighted by where the paths go: every (path, date) pair counts once. The
    price paths do not depend on the hedge, so this weighting (the GBM's law of ``(t_k, S_k)``,
    uniform over the dates) is the same for every policy; and since the P&L of two hedges
    differs by ``sum_k (a_k - b_k) (S_{k+1} - S_k)`` (martingale increments without costs),
    ``sigma S_0 sqrt(T) * delta_rms`` approximates the std of the P&L difference from the delta
    hedge (up to the variation of ``S``).

    Args:
      params: the task's params.
      obs: observations ``[..., T, 3]`` seen before each action (time to maturity fraction,
        log-moneyness, previous position).
      positions: the positions taken ``[..., T]``.
      mask: ``[..., T]`` bool, the episodes' steps (``None``: all).
      no_trade_tol: a step with ``|a_k - a_{k-1}| < no_trade_tol`` counts as not trading.

    Returns:
      ``delta_rms`` and ``delta_mean_abs`` (over all masked pairs), ``delta_rms_by_step`` ``[T]``
      (over the paths at each date), ``turnover`` (mean over paths of ``sum_k |a_k - a_{k-1}|``,
      ``a_{-1} = 0``: the shares traded before the unwinding) and ``no_trade_fraction`` (of the
      steps ``k >= 1``).
    """
    obs, positions = _float(obs), _float(positions)
    if obs.shape[-1] != 3 or obs.shape[:-1] != positions.shape:
        raise ValueError(
            f"need obs [..., T, 3] and positions [..., T]; got {obs.shape} and {positions.shape}"
        )
    m = jnp.ones(positions.shape, bool) if mask is None else jnp.asarray(mask, bool)
    w = m.astype(positions.dtype)
    diff = positions - _delta_of_obs(params, obs)
    lead = tuple(range(diff.ndim - 1))
    traded = jnp.abs(positions - obs[..., 2])
    later = w.at[..., 0].set(0.0)
    return {
        "delta_rms": jnp.sqrt(jnp.sum(w * diff**2) / jnp.sum(w)),
        "delta_mean_abs": jnp.sum(w * jnp.abs(diff)) / jnp.sum(w),
        "delta_rms_by_step": jnp.sqrt(
            jnp.sum(w * diff**2, axis=lead) / jnp.maximum(jnp.sum(w, axis=lead), 1.0)
        ),
        "turnover": jnp.mean(jnp.sum(w * traded, -1)),
        "no_trade_fraction": jnp.sum(later * (traded < no_trade_tol)) / jnp.sum(later),
    }


GRID_STEPS = (0, 5, 10, 15, 20, 25, 29)
"""The dates ``k`` (of the default 30) of :func:`hedge_grid`'s surface."""
GRID_MONEYNESS = tuple(float(z) for z in np.linspace(-2.0, 2.0, 17))
"""Its log-moneyness, in units of ``sigma sqrt(maturity)`` (the terminal log-price's std)."""
BAND_STEPS = (10, 20)
"""The dates of its no-trade band slices (at the money)."""
BAND_POSITIONS = tuple(float(a) for a in np.linspace(0.0, 1.0, 21))
"""Their previous positions (shares)."""


def hedge_grid(params: EnvParams) -> dict[str, tuple[dict[str, jax.Array], jax.Array]]:
    """Observations on which to draw a hedging policy, by name: ``(axes, obs [..., 3])``.

    * ``surface``: the dates :data:`GRID_STEPS` (scaled to ``max_steps_in_episode``) x the
      log-moneyness :data:`GRID_MONEYNESS` (``log(S / K)`` in units of ``sigma sqrt(maturity)``),
      the previous position being the delta there (a hedge on track); axes ``time_fraction``
      (``1 - k / N``, the observation's) and ``log_moneyness``.
    * ``band``: at the money, the dates :data:`BAND_STEPS` x the previous positions
      :data:`BAND_POSITIONS`; axes ``time_fraction`` and ``position``. A policy with a no-trade
      band keeps its position (action = position) inside the band and trades to its edge outside.
    """
    n = params.max_steps_in_episode
    scale = params.sigma * jnp.sqrt(_float(params.maturity))

    def fractions(steps):
        ks = sorted({min(round(k * n / 30), n - 1) for k in steps})
        return 1.0 - _float(np.asarray(ks)) / n

    tau = fractions(GRID_STEPS)
    x = _float(np.asarray(GRID_MONEYNESS)) * scale
    tt, xx = jnp.meshgrid(tau, x, indexing="ij")
    on_track = _delta_of_obs(params, jnp.stack([tt, xx, jnp.zeros_like(tt)], -1))
    surface = jnp.stack([tt, xx, on_track], -1)
    band_tau, pos = fractions(BAND_STEPS), _float(np.asarray(BAND_POSITIONS))
    bt, bp = jnp.meshgrid(band_tau, pos, indexing="ij")
    band = jnp.stack([bt, jnp.zeros_like(bt), bp], -1)
    return {
        "surface": ({"time_fraction": tau, "log_moneyness": x}, surface),
        "band": ({"time_fraction": band_tau, "position": pos}, band),
    }
