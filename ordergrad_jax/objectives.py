"""Rank-weight vectors: which L-statistic of K i.i.d. rewards the policy optimises.

An objective is a weight vector ``alpha`` of length ``k`` on the *ascending* order statistics of K
i.i.d. rewards (``alpha[0]`` weights the minimum, ``alpha[-1]`` the maximum), so that
``J = sum_j alpha_j E[R_(j:K)]`` (maths.md §1, §4).

Three ways to name one:

* a preset string, ``"Name"``, ``"Name:p"`` or ``"Name:lo:hi"`` (case-insensitive), e.g.
  ``"ReMax"``, ``"TopM:2"``, ``"CVaR:0.1"``; :func:`available_objectives` lists them;
* an :class:`Objective` (what :func:`get_objective` returns), or a preset a user added with
  :func:`register_objective`;
* any array of length ``k`` (ascending), which may be a traced JAX array.

Weights of presets are computed on the host in NumPy float64 and cached.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special

from ordergrad_jax import _checks

__all__ = [
    "Objective",
    "ObjectiveLike",
    "available_objectives",
    "get_objective",
    "rank_weights",
    "register_objective",
]

WeightFn = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class _Preset:
    fn: WeightFn
    usage: str
    n_params: tuple[int, int]  # (min, max) number of ':'-separated parameters


_REGISTRY: dict[str, _Preset] = {}
_ALIASES: dict[str, str] = {}  # lower-case spelling -> lower-case canonical name
_CANONICAL: dict[str, str] = {}  # lower-case canonical name -> display name


@dataclasses.dataclass(frozen=True)
class Objective:
    """A named rank-weight vector: a preset (or registered) name plus its parameters.

    Attributes:
      name: the canonical preset name, e.g. ``"TopM"``.
      params: the parsed parameters, e.g. ``(2,)``.
    """

    name: str
    params: tuple[float | int, ...] = ()

    def weights(self, k: int) -> np.ndarray:
        """Ascending float64 weights of length ``k`` (read-only, cached)."""
        return _preset_weights(self.name.lower(), self.params, _checks.check_k(k))

    def __str__(self) -> str:
        return ":".join(
            [self.name, *(repr(p) if isinstance(p, float) else str(p) for p in self.params)]
        )


ObjectiveLike = str | Objective | np.ndarray | Any


def register_objective(
    name: str,
    fn: WeightFn,
    *,
    aliases: tuple[str, ...] = (),
    usage: str | None = None,
    n_params: tuple[int, int] | None = None,
    overwrite: bool = False,
) -> None:
    """Adds a preset, so that every estimator accepts ``"name"`` / ``"name:p1:p2"``.

    Args:
      name: the preset name (matched case-insensitively).
      fn: ``fn(k, *params) -> weights``: ``k`` is the int subset size and ``params`` the numbers
        after the colons (an ``int`` where the text is an integer, else a ``float``). It returns
        ``k`` ascending weights (index 0 weights the minimum); raise ``ValueError`` for bad
        parameters.
      aliases: other spellings of the same preset.
      usage: how to write it, for error messages (default ``name`` plus ``:p`` per parameter).
      n_params: (min, max) number of parameters; inferred from ``fn``'s signature by default.
      overwrite: allow replacing an existing name.

    Example:
      >>> register_objective("Top2Minus", lambda k: np.r_[np.zeros(k - 2), [-1.0, 2.0]])
      >>> rank_weights("top2minus", 4)
      array([ 0.,  0., -1.,  2.])
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"objective name must be a non-empty string without ':'; got {name!r}")
    if not callable(fn):
        raise TypeError(f"register_objective({name!r}, fn): fn must be callable, got {fn!r}")
    if n_params is None:
        n_params = _count_params(fn)
    keys = [name.lower(), *(a.lower() for a in aliases)]
    taken = [key for key in keys if key in _REGISTRY or key in _ALIASES]
    if taken and not overwrite:
        raise ValueError(f"objective name(s) {taken} already registered; pass overwrite=True")
    canonical = name.lower()
    for key in keys:
        _ALIASES.pop(key, None)
        _REGISTRY.pop(key, None)
    if usage is None:
        usage = name + "".join(f":p{i + 1}" for i in range(n_params[1]))
    _REGISTRY[canonical] = _Preset(fn=fn, usage=usage, n_params=n_params)
    _CANONICAL[canonical] = name
    for alias in keys[1:]:
        _ALIASES[alias] = canonical
    _preset_weights.cache_clear()


def available_objectives() -> dict[str, str]:
    """Maps each preset's usage (e.g. ``"TopM:m"``) to its aliases (comma-separated)."""
    out = {}
    for canonical, preset in _REGISTRY.items():
        aliases = sorted(a for a, c in _ALIASES.items() if c == canonical)
        out[preset.usage] = ", ".join(aliases)
    return out


def get_objective(spec: str | Objective) -> Objective:
    """Parses a preset string such as ``"CVaR:0.1"`` into an :class:`Objective`.

    Raises:
      ValueError: for an unknown name (the message lists the known ones) or the wrong number of
        parameters, or parameters that are not numbers.
    """
    if isinstance(spec, Objective):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"objective must be a preset string or Objective, got {type(spec).__name__}"
        )
    parts = [p.strip() for p in spec.strip().split(":")]
    key = parts[0].lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        known = ", ".join(available_objectives())
        raise ValueError(
            f"unknown objective preset {spec!r}; known presets: {known} "
            "(names are case-insensitive), or pass a length-k weight array"
        )
    preset = _REGISTRY[key]
    raw = parts[1:]
    lo, hi = preset.n_params
    if not lo <= len(raw) <= hi:
        raise ValueError(
            f"objective {spec!r} takes {lo if lo == hi else f'{lo} to {hi}'} "
            f"parameter(s); write it as {preset.usage!r}"
        )
    params = tuple(_parse_number(p, spec, preset.usage) for p in raw)
    return Objective(_CANONICAL[key], params)


def rank_weights(objective: ObjectiveLike, k: int) -> np.ndarray:
    """The ascending weight vector ``alpha`` (length ``k``) of an objective (maths.md §4).

    Args:
      objective: a preset string, an :class:`Objective`, or a concrete array of ``k`` ascending
        weights (for traced weights use the estimator functions directly).
      k: the subset size K, a Python int >= 1.

    Returns:
      float64 NumPy array of shape ``(k,)``; ``[0]`` weights the minimum.
    """
    k = _checks.check_k(k)
    if isinstance(objective, (str, Objective)):
        return get_objective(objective).weights(k)
    weights = np.asarray(objective, dtype=np.float64)
    return check_weight_shape(weights, k)


def check_weight_shape(weights: Any, k: int) -> Any:
    """Raises unless ``weights`` is a vector of length ``k``; returns it."""
    if np.ndim(weights) != 1 or np.shape(weights)[0] != k:
        raise ValueError(
            f"objective weights must have shape ({k},) for k={k} (ascending: index 0 "
            f"weights the minimum); got shape {np.shape(weights)}"
        )
    return weights


# ----------------------------------------------------------------------------------------------
# Parsing helpers.


def _parse_number(text: str, spec: str, usage: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"objective {spec!r}: parameter {text!r} is not a number; write it as {usage!r}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"objective {spec!r}: parameter {text!r} must be finite")
    return value


def _count_params(fn: WeightFn) -> tuple[int, int]:
    import inspect

    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1:]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return (0, 8)
    required = sum(p.default is p.empty for p in params)
    return (required, len(params))


@functools.lru_cache(maxsize=4096)
def _preset_weights(key: str, params: tuple, k: int) -> np.ndarray:
    key = _ALIASES.get(key, key)
    preset = _REGISTRY[key]
    spec = ":".join([_CANONICAL[key], *map(str, params)])
    try:
        weights = np.asarray(preset.fn(k, *params), dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"objective {spec!r} with k={k}: {err}; usage {preset.usage!r}") from None
    if weights.shape != (k,):
        raise ValueError(
            f"objective {spec!r} returned weights of shape {weights.shape}, expected ({k},)"
        )
    weights.setflags(write=False)
    return weights


def _whole_number(value: Any, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return value


def _frac_param(value: float, what: str, *, open_low: bool = False) -> float:
    value = float(value)
    if not (0.0 < value <= 1.0 if open_low else 0.0 <= value <= 1.0):
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"{what} must lie in {interval}, got {value!r}")
    return value


def _floor(v: float) -> int:
    return math.floor(v + _checks.ROUND_TOL)


def _ceil(v: float) -> int:
    return math.ceil(v - _checks.ROUND_TOL)


def _uniform(k: int, lo: int, hi: int) -> np.ndarray:
    """1/(hi-lo) on ascending positions [lo, hi) (0-based)."""
    w = np.zeros(k)
    w[lo:hi] = 1.0 / (hi - lo)
    return w


def _one_hot(k: int, index: int) -> np.ndarray:
    w = np.zeros(k)
    w[index] = 1.0
    return w


# ----------------------------------------------------------------------------------------------
# The presets of maths.md §4. Each returns ascending weights of length k.


def _mean(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


def _remax(k: int) -> np.ndarray:
    return _one_hot(k, k - 1)


def _remin(k: int) -> np.ndarray:
    return _one_hot(k, 0)


def _rank(k: int, r: int) -> np.ndarray:
    r = _whole_number(r, "rank r")
    if not 1 <= r <= k:
        raise ValueError(f"rank r must satisfy 1 <= r <= k (1 = maximum), got r={r}")
    return _one_hot(k, k - r)


def _m_param(k: int, m: Any) -> int:
    m = _whole_number(m, "m")
    if not 1 <= m <= k:
        raise ValueError(f"m must satisfy 1 <= m <= k, got m={m}")
    return m


def _top_m(k: int, m: int) -> np.ndarray:
    m = _m_param(k, m)
    return _uniform(k, k - m, k)


def _bot_m(k: int, m: int) -> np.ndarray:
    m = _m_param(k, m)
    return _uniform(k, 0, m)


def _top_bot(k: int, m: int) -> np.ndarray:
    m = _m_param(k, m)
    return 0.5 * _uniform(k, 0, m) + 0.5 * _uniform(k, k - m, k)


def _trim_m(k: int, m: int) -> np.ndarray:
    m = _whole_number(m, "m")
    if m < 0 or 2 * m >= k:
        raise ValueError(f"trimming m from each side needs 0 <= m and 2m < k, got m={m}")
    return _uniform(k, m, k - m)


def _winsorized_m(k: int, m: int) -> np.ndarray:
    m = _whole_number(m, "m")
    if m < 0 or 2 * m >= k:
        raise ValueError(f"winsorizing m on each side needs 0 <= m and 2m < k, got m={m}")
    w = np.full(k, 1.0 / k)
    w[:m] = 0.0
    w[k - m :] = 0.0
    w[m] += m / k
    w[k - m - 1] += m / k
    return w


def _tail_count(k: int, q: float) -> int:
    q = _frac_param(q, "tail fraction q", open_low=True)
    return max(1, _ceil(q * k))


def _upper_tail_mean(k: int, q: float) -> np.ndarray:
    return _uniform(k, k - _tail_count(k, q), k)


def _lower_tail_mean(k: int, q: float) -> np.ndarray:
    return _uniform(k, 0, _tail_count(k, q))


def _frac_range(k: int, lo: float, hi: float) -> tuple[int, int]:
    lo = _frac_param(lo, "lo")
    hi = _frac_param(hi, "hi")
    start, stop = _floor(lo * k), min(k, _ceil(hi * k))
    if start >= stop:
        raise ValueError(
            f"the position range [floor(lo k), ceil(hi k)) = [{start}, {stop}) is "
            f"empty; need lo < hi (got lo={lo}, hi={hi})"
        )
    return start, stop


def _range_lower_tail_mean(k: int, lo: float, hi: float) -> np.ndarray:
    start, stop = _frac_range(k, lo, hi)
    return _uniform(k, start, stop)


def _range_upper_tail_mean(k: int, lo: float, hi: float) -> np.ndarray:
    start, stop = _frac_range(k, lo, hi)
    return _uniform(k, k - stop, k - start)


def _median(k: int) -> np.ndarray:
    w = np.zeros(k)
    w[(k - 1) // 2] += 0.5
    w[k // 2] += 0.5
    return w


def _quantile_weights(k: int, q: float, c: float) -> np.ndarray:
    """Linear interpolation at plotting position q (K + 1 - 2c) + c, clamped to [1, K]."""
    q = _frac_param(q, "quantile level q")
    pos = q * (k + 1 - 2 * c) + c
    pos = min(max(pos, 1.0), float(k))
    lower = _floor(pos)
    frac = pos - lower
    if abs(frac) < _checks.ROUND_TOL or lower >= k:
        return _one_hot(k, min(lower, k) - 1)
    w = np.zeros(k)
    w[lower - 1] = 1.0 - frac
    w[lower] = frac
    return w


def _quantile(c: float, top: bool) -> WeightFn:
    def fn(k: int, q: float) -> np.ndarray:
        q = _frac_param(q, "quantile level q")
        return _quantile_weights(k, 1.0 - q if top else q, c)

    return fn


def _harrell_davis(k: int, q: float) -> np.ndarray:
    q = _frac_param(q, "quantile level q")
    if q == 0.0:
        return _one_hot(k, 0)
    if q == 1.0:
        return _one_hot(k, k - 1)
    a, b = (k + 1) * q, (k + 1) * (1 - q)
    cdf = special.betainc(a, b, np.arange(k + 1) / k)
    return np.diff(cdf)


def _gmd(k: int) -> np.ndarray:
    if k < 2:
        raise ValueError("the Gini mean difference needs k >= 2")
    j = np.arange(1, k + 1)
    return 2.0 * (2 * j - k - 1) / (k * (k - 1))


def _l_moment(k: int, r: int) -> np.ndarray:
    """Unbiased sample L-moment weights (Hosking 1990, eq. 2.3 with PWMs b_s).

    ``l_r = sum_{s=0}^{r-1} p*_{r-1,s} b_s`` with ``p*_{r,s} = (-1)^{r-s} C(r,s) C(r+s,s)`` and
    ``b_s = (1/K) sum_j C(j-1,s)/C(K-1,s) x_(j:K)``, so that E[l_r] = lambda_r.
    """
    r = _whole_number(r, "L-moment order r")
    if not 1 <= r <= k:
        raise ValueError(f"L-moment order r must satisfy 1 <= r <= k, got r={r}")
    j = np.arange(1, k + 1)
    w = np.zeros(k)
    for s in range(r):  # r is a small static order, not data
        p_star = (
            (-1) ** (r - 1 - s)
            * special.comb(r - 1, s, exact=True)
            * special.comb(r - 1 + s, s, exact=True)
        )
        w += p_star * special.comb(j - 1, s) / special.comb(k - 1, s) / k
    return w


def _register_builtins() -> None:
    reg = register_objective
    reg("Mean", _mean)
    reg("ReMax", _remax, aliases=("Max", "BestOfK"))
    reg("ReMin", _remin, aliases=("Min",))
    reg("Rank", _rank, usage="Rank:r")
    reg("TopM", _top_m, usage="TopM:m")
    reg("BotM", _bot_m, usage="BotM:m")
    reg("TopBot", _top_bot, aliases=("MidrangeM",), usage="TopBot:m")
    reg("TrimM", _trim_m, aliases=("TrimmedM", "TrimMeanM"), usage="TrimM:m")
    reg("WinsorizedM", _winsorized_m, aliases=("WindosrizedM",), usage="WinsorizedM:m")
    reg("UpperTailMean", _upper_tail_mean, usage="UpperTailMean:q")
    reg("LowerTailMean", _lower_tail_mean, aliases=("CVaR",), usage="LowerTailMean:q")
    reg("RangeLowerTailMean", _range_lower_tail_mean, usage="RangeLowerTailMean:lo:hi")
    reg("RangeUpperTailMean", _range_upper_tail_mean, usage="RangeUpperTailMean:lo:hi")
    reg("TrimmedMeanFrac", _range_lower_tail_mean, usage="TrimmedMeanFrac:lo:hi")
    reg("Median", _median)
    for suffix, c in (("", 0.5), ("Weibull", 0.0), ("Blom", 0.375)):
        aliases = ("VaR", "QuantileHazen") if suffix == "" else ()
        reg(
            f"Quantile{suffix}",
            _quantile(c, top=False),
            aliases=aliases,
            usage=f"Quantile{suffix}:q",
            n_params=(1, 1),
        )
        top_aliases = ("TopQuantileHazen",) if suffix == "" else ()
        reg(
            f"TopQuantile{suffix}",
            _quantile(c, top=True),
            aliases=top_aliases,
            usage=f"TopQuantile{suffix}:q",
            n_params=(1, 1),
        )
    reg("HarrellDavis", _harrell_davis, aliases=("HarrelDavis",), usage="HarrellDavis:q")
    reg("GMD", _gmd, aliases=("GiniMeanDifference",))
    reg("LMoment", _l_moment, usage="LMoment:r")


_register_builtins()
