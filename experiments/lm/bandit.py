"""A per-prompt softmax bandit that predicts the LM's pass@k-vs-pass@1 frontier (issue 24, item 6).

Each prompt ``i`` is a categorical policy over ``1 + wrong`` answers, one of them correct, with
logits ``z_i`` (``[P, 1 + wrong]``, the correct answer in column 0) and success probability
``p_i = softmax(z_i)_0``. The reward is 0/1, so an objective of K draws with rank weights
``alpha`` (maths.md §1) is, per prompt, the exact L-statistic of ``og.exact.orderstats`` on the arms
``r = (1, 0, ..., 0)`` with probabilities ``softmax(z_i)`` (maths.md §3):

    J_i = sum_j alpha_j P(Bin(K, p_i) >= K - j + 1).

Training ascends ``sum_i s_i J_i`` (``s_i`` a per-prompt scale held fixed within a step: 1, or
GRPO's ``1 / sqrt(p_i (1 - p_i))``, the population standard deviation of the 0/1 reward) with the
exact gradient (``jax.grad`` through ``og.exact``), one optax update per step, and records the
population's exact pass@k, ``sum_i w_i (1 - (1 - p_i)^k)``, after every step: the curve
(pass@1, pass@k) is the objective's frontier.

What it is a model of, and what it leaves out: the LM's group sampling noise (the gradient here
is exact), the sharing of parameters between prompts (each prompt has its own logits) and the
gap between training and held-out prompts (a prompt here is trained on and evaluated). Under
plain gradient ascent the frontier of a tabular policy does not depend on the step size (for
small steps: it is the gradient flow's curve) nor on how the wrong mass is split (with it
spread evenly over ``wrong`` answers, ``|grad_z p|^2 = p^2 (1 - p)^2 (1 + 1/wrong)``, one
factor for every prompt); under Adam, whose per-coordinate normalisation removes each prompt's
gradient scale, every objective whose ``J`` rises in ``p`` moves every prompt's logit at the
same speed, so the frontiers of all such objectives coincide.

The start is a :class:`SolveRates`: per-prompt initial success probabilities with weights, from
a zero-inflated Beta distribution (:func:`beta_solve_rates`; :func:`fit_solve_rates` fits it
to a measured pass@k curve, since ``pass@k = 1 - E[(1 - p)^k]``) or from per-prompt success counts
(:func:`solve_rates_from_counts`, what an evaluation with per-prompt counts gives); a share of
prompts may be never solved (p = 0: they stay there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import optimize, special
from scipy import stats as scipy_stats

import ordergrad_jax as og

KS = (1, 2, 4, 8, 16, 32, 64)
"""The pass@k a frontier records."""


@dataclasses.dataclass(frozen=True)
class SolveRates:
    """Initial per-prompt success probabilities: the bandit's start.

    Attributes:
      p: ``[P]`` in (0, 1): prompt ``i``'s probability of a correct answer.
      weights: ``[P]``, non-negative, summing to at most 1: the prompt's share of the
        population. The rest, ``1 - sum(weights)``, are prompts never solved (p = 0): no
        objective's gradient moves them (``dJ/dz = J'(p) p (1 - p) = 0``), so they stay at 0.
      source: what they came from (for a caption).
    """

    p: np.ndarray
    weights: np.ndarray
    source: str

    def __post_init__(self) -> None:
        p, w = np.asarray(self.p, np.float64), np.asarray(self.weights, np.float64)
        if p.ndim != 1 or p.shape != w.shape or p.size == 0:
            raise ValueError(f"p and weights must be [P] of one length; got {p.shape}, {w.shape}")
        if not np.all((p > 0) & (p < 1)):
            raise ValueError("every p must be in (0, 1) (a logit must exist); clip 0 and 1 first")
        if np.any(w < 0) or w.sum() > 1 + 1e-9:
            raise ValueError(f"weights must be non-negative and sum to at most 1; sum {w.sum()}")

    @property
    def never_solved(self) -> float:
        """The share of prompts at p = 0."""
        return float(max(0.0, 1.0 - np.sum(self.weights)))

    def pass_at_k(self, k: int) -> float:
        """The population's exact pass@k, ``sum_i w_i (1 - (1 - p_i)^k)``."""
        return float(np.sum(self.weights * -np.expm1(k * np.log1p(-self.p))))


def beta_pass_at_k(a: float, b: float, k: np.ndarray | int, zero: float = 0.0) -> np.ndarray:
    """pass@k of prompts whose success probability is 0 with probability ``zero`` and else
    Beta(a, b): ``(1 - zero) (1 - E[(1 - p)^k]) = (1 - zero) (1 - B(a, b + k) / B(a, b))``."""
    k = np.asarray(k, np.float64)
    return (1 - zero) * -np.expm1(special.betaln(a, b + k) - special.betaln(a, b))


def fit_beta(
    ks: Sequence[int], pass_k: Sequence[float], zero_inflated: bool = True
) -> tuple[float, float, float]:
    """``(a, b, zero)``: the zero-inflated Beta whose pass@k curve (:func:`beta_pass_at_k`) is
    closest, in least squares over ``ks``, to the measured ``pass_k`` (e.g. a start's held-out
    pass@1..pass@32). pass@1 and pass@2 fix the first two moments; the large k see the mass near
    p = 0, which a share ``zero`` of never-solved prompts takes (``zero = 0`` unless
    ``zero_inflated``; it needs at least 3 values of k)."""
    ks_, y = np.asarray(ks, np.float64), np.asarray(pass_k, np.float64)
    if ks_.shape != y.shape or ks_.size < 2 + zero_inflated or not np.all((y > 0) & (y < 1)):
        raise ValueError(f"need >= 3 pass@k values in (0, 1), one per k; got {ks_}, {y}")

    def unpack(x: np.ndarray) -> tuple[float, float, float]:
        return float(np.exp(x[0])), float(np.exp(x[1])), float(special.expit(x[2]))

    def residual(x: np.ndarray) -> np.ndarray:
        a, b, zero = unpack(x)
        return beta_pass_at_k(a, b, ks_, zero if zero_inflated else 0.0) - y

    x0 = np.array([0.0, np.log(1 / y[0] - 1), -4.0])
    fit = optimize.least_squares(residual, x0=x0, method="lm")
    a, b, zero = unpack(fit.x)
    return a, b, zero if zero_inflated else 0.0


def beta_solve_rates(a: float, b: float, prompts: int = 256, zero: float = 0.0) -> SolveRates:
    """``prompts`` equally weighted prompts at the Beta(a, b) quantiles of the midpoints
    ``(i + 1/2) / prompts`` (a deterministic sample of the distribution), sharing ``1 - zero``
    of the population; the other ``zero`` are never solved."""
    if not 0 <= zero < 1:
        raise ValueError(f"zero must be in [0, 1), got {zero}")
    q = (np.arange(prompts) + 0.5) / prompts
    p = np.clip(scipy_stats.beta.ppf(q, a, b), 1e-9, 1 - 1e-9)
    source = f"Beta({a:.3g}, {b:.3g})" + (f", {zero:.3g} never solved" if zero else "")
    return SolveRates(p, np.full(prompts, (1 - zero) / prompts), source)


def fit_solve_rates(ks: Sequence[int], pass_k: Sequence[float], prompts: int = 256) -> SolveRates:
    """:func:`beta_solve_rates` of the zero-inflated Beta fitted (:func:`fit_beta`) to a measured
    pass@k curve: the start of a population whose per-prompt counts were not kept."""
    a, b, zero = fit_beta(ks, pass_k)
    return beta_solve_rates(a, b, prompts, zero)


def solve_rates_from_counts(
    successes: Sequence[int], samples: int | Sequence[int], clip: float = 0.5
) -> SolveRates:
    """Per-prompt solve rates from ``successes[i]`` correct of ``samples`` (one number, or one
    per prompt), equally weighted: the plug-in ``c / n``, with the prompt's binomial noise. A
    prompt never solved gets ``clip / n`` (``clip = 0``: it is left at p = 0, the never-solved
    share of :class:`SolveRates`); one always solved gets ``1 - max(clip, 0.5) / n``."""
    c = np.asarray(successes, np.float64)
    n = np.broadcast_to(np.asarray(samples, np.float64), c.shape)
    if c.ndim != 1 or c.size == 0 or np.any(c < 0) or np.any(c > n) or np.any(n <= 0):
        raise ValueError("successes must be [P] counts in [0, samples]")
    keep = c > 0 if clip == 0 else np.ones(c.shape, bool)
    p = np.clip(c / n, clip / n, 1 - max(clip, 0.5) / n)[keep]
    return SolveRates(p, np.full(p.size, 1.0 / c.size), f"{c.size} prompts' counts")


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the bandit ascends: the L-statistic ``objective`` of ``k`` draws (an ``og``
    preset or weights), with GRPO's per-prompt scale ``1 / sqrt(p (1 - p))`` where ``std``."""

    label: str
    objective: Any
    k: int
    std: bool = False


OBJECTIVES = {
    "mean": Objective("mean (RLOO, Dr.GRPO; = pass@1)", "Mean", 1),
    "grpo": Objective("mean / std (GRPO)", "Mean", 1, std=True),
    "top1at4": Objective("TopM:1@4 = max@4 (MaxPO@4)", "TopM:1", 4),
    "top2at4": Objective("TopM:2@4", "TopM:2", 4),
    "top3at4": Objective("TopM:3@4", "TopM:3", 4),
    "remax8": Objective("ReMax@8 = pass@8", "ReMax", 8),
    "bot2at4": Objective("BotM:2@4", "BotM:2", 4),
}
"""The LM study's objectives by its run-name prefix (``experiments/sweeps/lm.py``); PKPO@4 and
Chen pass@4 target max@4 (``top1at4``)."""


def initial_logits(rates: SolveRates, wrong: int = 1) -> np.ndarray:
    """``[P, 1 + wrong]`` logits with ``softmax(z_i)_0 = p_i`` and the wrong mass spread evenly."""
    if wrong < 1:
        raise ValueError(f"need at least one wrong answer, got {wrong}")
    p = np.asarray(rates.p, np.float64)[:, None]
    return np.concatenate([np.log(p), np.repeat(np.log((1 - p) / wrong), wrong, 1)], 1)


def prompt_objective(logits: jax.Array, k: int, alpha: jax.Array) -> jax.Array:
    """``J_i = alpha . E[R_(1:k), ..., R_(k:k)]`` of every prompt, ``[P]``: the exact order
    statistics of ``k`` draws (``og.exact.orderstats``; maths.md §3) contracted with the
    ascending rank weights ``alpha [k]`` (traced, so one compilation serves every objective of a
    ``k``), differentiable in ``logits [P, A]`` (column 0 the correct answer)."""
    r = jnp.zeros_like(logits).at[:, 0].set(1.0)
    return og.exact.orderstats(r, jax.nn.softmax(logits, -1), k) @ alpha


def scaled_objective(logits: jax.Array, k: int, alpha: jax.Array, std: jax.Array) -> jax.Array:
    """``sum_i s_i J_i``, what one step ascends: ``s_i = 1 / sqrt(p_i (1 - p_i))`` (held fixed
    within the step) where ``std`` is 1, ``s_i = 1`` where it is 0."""
    j = prompt_objective(logits, k, alpha)
    p = jax.lax.stop_gradient(jax.nn.softmax(logits, -1)[:, 0])
    return jnp.sum(j * jnp.where(std > 0, 1 / jnp.sqrt(p * (1 - p)), 1.0))


def pass_at_k(logits: jax.Array, weights: jax.Array, ks: Sequence[int] = KS) -> jax.Array:
    """The population's exact pass@k for each of ``ks``: ``[len(ks)]`` (prompts at p = 0 count
    0)."""
    log_fail = jax.nn.logsumexp(logits[:, 1:], -1) - jax.nn.logsumexp(logits, -1)  # log(1 - p)
    k = jnp.asarray(ks, logits.dtype)
    return weights @ -jnp.expm1(log_fail[:, None] * k)


def make_train(
    rates: SolveRates,
    k: int,
    optimiser: optax.GradientTransformation,
    steps: int,
    wrong: int = 1,
    ks: Sequence[int] = KS,
) -> Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """``train(alpha [k], std []) -> (logits [P, 1 + wrong], curve [steps + 1, len(ks)])``:
    ``steps`` updates of ``optimiser`` along the exact gradient of :func:`scaled_objective`
    from the start ``rates``, under one ``jit`` with ``lax.scan``; ``curve[t]`` is pass@k after
    ``t`` steps (row 0: the start). Deterministic (exact gradients, no sampling), so it takes no
    key; ``vmap`` it over a stack of objectives of one ``k``."""
    z0 = jnp.asarray(initial_logits(rates, wrong), jnp.result_type(float))
    w = jnp.asarray(rates.weights, z0.dtype)
    grad = jax.grad(scaled_objective)

    def train(alpha: jax.Array, std: jax.Array) -> tuple[jax.Array, jax.Array]:
        def step(carry, _):
            z, state = carry
            updates, state = optimiser.update(-grad(z, k, alpha, std), state, z)
            z = optax.apply_updates(z, updates)
            return (z, state), pass_at_k(z, w, ks)

        (z, _), curve = jax.lax.scan(step, (z0, optimiser.init(z0)), None, length=steps)
        return z, jnp.concatenate([pass_at_k(z0, w, ks)[None], curve])

    return jax.jit(train)


def frontiers(
    rates: SolveRates,
    objectives: dict[str, Objective] | None = None,
    optimiser: optax.GradientTransformation | None = None,
    steps: int = 4000,
    wrong: int = 1,
    ks: Sequence[int] = KS,
) -> dict[str, np.ndarray]:
    """``{name: curve [steps + 1, len(ks)]}`` of each objective (default: :data:`OBJECTIVES`)
    trained from ``rates`` with ``optimiser`` (default: :func:`gradient_flow`), as host float64
    arrays; one compilation per ``k``, the objectives of a ``k`` ``vmap``-ped."""
    objectives = OBJECTIVES if objectives is None else objectives
    optimiser = gradient_flow(steps) if optimiser is None else optimiser
    out = {}
    for k in sorted({o.k for o in objectives.values()}):
        names = [n for n, o in objectives.items() if o.k == k]
        alpha = jnp.asarray(np.stack([og.rank_weights(objectives[n].objective, k) for n in names]))
        std = jnp.asarray([float(objectives[n].std) for n in names], alpha.dtype)
        _, curves = jax.vmap(make_train(rates, k, optimiser, steps, wrong, ks))(alpha, std)
        out.update(zip(names, np.asarray(curves, np.float64), strict=True))
    return {n: out[n] for n in objectives}


def gradient_flow(
    steps: int, first: float = 0.02, last: float = 5.0
) -> optax.GradientTransformation:
    """Plain gradient ascent whose step grows geometrically from ``first`` to ``last`` over
    ``steps``: the gradients shrink as the prompts saturate, so a growing step keeps each
    update small while the run covers the whole path. The path of a gradient ascent with small
    steps is the gradient flow's, whatever the schedule (a change of time), so the frontier does
    not depend on it (checked by ``tests/test_lm_bandit.py``)."""
    return optax.sgd(optax.exponential_decay(first, steps, last / first))


def frontier(curve: np.ndarray, level: float | np.ndarray, ks: Sequence[int] = KS) -> np.ndarray:
    """pass@k at pass@1 = ``level`` along a recorded ``curve [T, len(ks)]`` (column 0 pass@1,
    rising along the curve): linear interpolation between the recorded steps, NaN outside the
    curve's pass@1 range. Returns ``[..., len(ks)]``."""
    c = np.asarray(curve, np.float64)
    if next(iter(ks)) != 1 or np.any(np.diff(c[:, 0]) < -1e-9):
        raise ValueError("the curve's first column must be pass@1, non-decreasing along it")
    x = np.atleast_1d(np.asarray(level, np.float64))
    out = np.stack([np.interp(x, c[:, 0], c[:, j], left=np.nan, right=np.nan)
                    for j in range(c.shape[1])], -1)  # fmt: skip
    return out.reshape(*np.shape(level), c.shape[1])
