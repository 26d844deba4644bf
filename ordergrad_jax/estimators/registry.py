"""The estimator registry: each estimator is registered once, with its metadata beside it.

A consumer looks an estimator up by name and reads what it needs from its :class:`EstimatorSpec`
(maths.md §5): the advantage function, the names of its parameters, the gradient scale ``c`` of
the paper's convention ``g = (c/N) sum_i a_i grad log p(x_i)``, whether the advantages of a
full group sum to zero, whether it needs binary 0/1 rewards, and its display label for given
parameters (``"MaxPO@4"``). It keeps no table of its own.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import string
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import jax
from jax.typing import ArrayLike

from ordergrad_jax import _checks

__all__ = ["EstimatorSpec", "available", "get", "register", "spec"]

AdvantageFn = Callable[..., jax.Array]
ScaleFn = Callable[..., float]
LabelFn = Callable[..., str]
TargetFn = Callable[..., jax.Array]
F = TypeVar("F", bound=AdvantageFn)


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """A registered estimator: its advantage function and what a trainer needs to know about it.

    Attributes:
      name: the canonical name (lower case), e.g. ``"ordergrad"``.
      fn: ``fn(rewards (..., N), mask=None, **params) -> advantages (..., N)``.
      params: the names of its keyword parameters, e.g. ``("k", "objective", "method")``.
      zero_sum: whether the advantages of a full group sum to zero (for every parameter value).
      description: one line, as :func:`available` lists it.
      aliases: other accepted spellings (normalised: lower case, ``_`` for ``-``, ``.``, space).
      defaults: the parameters that have a default, with it (read from ``fn``'s signature).
      binary_rewards: whether it needs binary 0/1 rewards (pass@k-Chen): a trainer must feed it
        success indicators, and a study runs it on 0/1 rewards only.

    :meth:`label` and :meth:`short_label` name the estimator with given parameters (tables,
    legends); :meth:`gradient_scale` gives ``c``; :meth:`bind` checks the parameters;
    :meth:`target` and :meth:`target_label` estimate and name the objective it ascends (what a
    study reports as the trained statistic beside the deployed ones).
    """

    name: str
    fn: AdvantageFn
    params: tuple[str, ...]
    zero_sum: bool
    description: str = ""
    aliases: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    binary_rewards: bool = False
    scale: float | ScaleFn = dataclasses.field(default=1.0, repr=False)
    validate: Callable[..., dict[str, Any]] | None = dataclasses.field(default=None, repr=False)
    label_format: str | LabelFn | None = dataclasses.field(default=None, repr=False)
    target_fn: TargetFn | None = dataclasses.field(default=None, repr=False)
    target_format: str | LabelFn | None = dataclasses.field(default=None, repr=False)

    def bind(self, **params: Any) -> dict[str, Any]:
        """All of the estimator's parameters, checked, with defaults filled in.

        Raises:
          ValueError: an unknown or missing parameter, or a bad value; the message lists the
            parameters the estimator takes.
        """
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise ValueError(f"unknown parameter(s) {names}; {self._usage()}")
        missing = [p for p in self.params if p not in params and p not in self.defaults]
        if missing:
            names = ", ".join(map(repr, missing))
            raise ValueError(f"missing parameter(s) {names}; {self._usage()}")
        bound = {p: params[p] if p in params else self.defaults[p] for p in self.params}
        if self.validate is not None:
            bound = dict(self.validate(**bound))
        return bound

    def gradient_scale(self, n: int, **params: Any) -> float:
        """The factor ``c`` of the paper's per-group gradient ``g = (c/N) sum_i a_i grad log p_i``.

        Args:
          n: N, the group size (a Python int >= 1).
          **params: the estimator's parameters (as for :func:`get`; defaults filled in).

        Returns:
          ``c`` as a Python float: K for ordergrad and maxpo; 1 for reinforce, rloo, grpo and
          dr_grpo; N for pkpo and cvar_pg; ``kN/(N-k)`` for passk_chen with ``normalize=False``
          and 1 with ``normalize=True`` (maths.md §5).
        """
        n = _checks.static_int(n, f"{self.name}: gradient_scale: n")
        bound = self.bind(**params)
        value = self.scale(n, **bound) if callable(self.scale) else self.scale
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: the gradient scale for N={n}, {bound} is not finite")
        return value

    def label(self, **params: Any) -> str:
        """The display label of the estimator with ``params``: ``"GRPO"``, ``"MaxPO@4"``,
        ``"OrderGrad TopM:2@4"``, ``"Chen pass@4"``, ``"CVaR-PG alpha=0.25"``.

        Registered beside the estimator (``register(..., label=...)``); the default is the name
        as registered, then `` {objective}`` and ``@{k}`` where the estimator takes them.

        Args:
          **params: the estimator's parameters (checked and completed as by :meth:`bind`).
            Names it does not take are ignored, so a run config's estimator part can be passed
            whole (``spec.label(**config["estimator"])``; an ``options`` list in it is not
            parsed).

        Returns:
          The label, a one-line string.
        """
        bound = self.bind(**{p: v for p, v in params.items() if p in self.params})
        fmt = self.label_format or _default_label(self.name, self.params)
        text = fmt(**bound) if callable(fmt) else fmt.format(**bound)
        if not isinstance(text, str) or not text or "\n" in text:
            raise ValueError(f"{self.name}: its label must be a one-line string; got {text!r}")
        return text

    def target(self, returns: ArrayLike, **params: Any) -> jax.Array:
        """The objective the estimator ascends, estimated from i.i.d. returns of one policy.

        OrderGrad's is its L-statistic ``J = sum_j alpha_j E[R_(j:K)]`` (the U-statistic
        :func:`ordergrad_jax.metrics.lstat_at_k`), RLOO's the mean, MaxPO's max@k, CVaR-PG's
        CVaR_alpha (plug-in), as registered beside each estimator (``register(...,
        target=...)``). A study evaluates it on a final policy's evaluation returns, so that the
        statistic a method trained on is reported beside the deployed ones.

        Args:
          returns: ``(..., E)`` i.i.d. returns (binary 0/1 for a ``binary_rewards`` estimator).
          **params: the estimator's parameters (checked and completed as by :meth:`bind`; names
            it does not take are ignored, as in :meth:`label`).

        Returns:
          ``(...)``.

        Raises:
          ValueError: the estimator registers no target, or a bad parameter.
        """
        if self.target_fn is None:
            raise ValueError(
                f"estimator {self.name!r} registers no target objective "
                "(register(..., target=fn, target_label=...))"
            )
        bound = self.bind(**{p: v for p, v in params.items() if p in self.params})
        return self.target_fn(returns, **bound)

    def target_label(self, **params: Any) -> str:
        """The name of the objective :meth:`target` estimates: ``"mean"``,
        ``"LowerTailMean:0.1@10"``, ``"max@4"``, ``"pass@4"``, ``"CVaR_0.1"`` (parameters as for
        :meth:`label`).

        Raises:
          ValueError: the estimator registers no target, or a bad parameter.
        """
        if self.target_format is None:
            raise ValueError(f"estimator {self.name!r} registers no target objective")
        bound = self.bind(**{p: v for p, v in params.items() if p in self.params})
        fmt = self.target_format
        text = fmt(**bound) if callable(fmt) else fmt.format(**bound)
        if not isinstance(text, str) or not text or "\n" in text:
            raise ValueError(f"{self.name}: its target label must be a one-line string")
        return text

    def short_label(self, **params: Any) -> str:
        """The label built from the canonical name: ``"grpo"``, ``"maxpo@4"``,
        ``"ordergrad TopM:2@4"`` (the method column of run tables; the same for every spec).

        ``name``, then `` {objective}`` and ``@{k}`` where the estimator takes them. Only those
        two of ``params`` are read (others, and names it does not take, are ignored).

        Raises:
          ValueError: the estimator takes ``objective`` or ``k`` and ``params`` has no value
            for it (nor a default).
        """
        fields = [p for p in ("objective", "k") if p in self.params]
        values = {p: params.get(p, self.defaults.get(p)) for p in fields}
        missing = [p for p, v in values.items() if v is None]
        if missing:
            names = ", ".join(map(repr, missing))
            raise ValueError(f"missing parameter(s) {names}; {self._usage()}")
        return _default_label(self.name, self.params).format(**values)

    def _usage(self) -> str:
        if not self.params:
            return f"estimator {self.name!r} takes no parameters"
        parts = [f"{p}={self.defaults[p]!r}" if p in self.defaults else p for p in self.params]
        return f"estimator {self.name!r} takes {', '.join(parts)} (no default = required)"


_REGISTRY: dict[str, EstimatorSpec] = {}
_ALIASES: dict[str, str] = {}  # normalised alias -> canonical name


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(".", "_").replace(" ", "_")


def _default_label(name: str, params: tuple[str, ...]) -> str:
    """``name``, then `` {objective}`` and ``@{k}`` where ``params`` has them (a format string)."""
    text = name.strip().replace("{", "{{").replace("}", "}}")
    text += " {objective}" if "objective" in params else ""
    return text + ("@{k}" if "k" in params else "")


def _check_label(name: str, label: Any, params: tuple[str, ...]) -> None:
    """``label`` is None, a callable, or a format string whose fields are parameters."""
    if label is None or callable(label):
        return
    if not isinstance(label, str) or not label.strip():
        raise TypeError(
            f"register({name!r}): label must be a format string such as 'MyPG@{{k}}' or a "
            f"callable label(**params) -> str; got {label!r}"
        )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(label) if f is not None]
    except ValueError as err:
        raise ValueError(
            f"register({name!r}): label {label!r} is not a format string: {err}"
        ) from None
    unknown = [f for f in fields if not f or f.split(".")[0].split("[")[0] not in params]
    if unknown:
        raise ValueError(
            f"register({name!r}): label {label!r} names {unknown}; its fields must be "
            f"parameters of the estimator {list(params)}"
        )


def _keyword_params(fn: AdvantageFn, name: str, params: tuple[str, ...]) -> dict[str, Any]:
    """The defaults of ``params`` in ``fn``'s signature; checks that ``fn`` takes exactly them."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust the declaration
        return {}
    kinds = {p.name: p for p in sig.parameters.values()}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in kinds.values())
    keyword = {p.name: p for p in kinds.values() if p.kind == p.KEYWORD_ONLY}
    absent = [p for p in params if p not in keyword and not takes_any]
    if absent:
        raise ValueError(
            f"register({name!r}): params {absent} are not keyword-only parameters of fn "
            f"(fn(rewards, mask=None, *, {', '.join(params)}))"
        )
    undeclared = [p for p, v in keyword.items() if p not in params and v.default is v.empty]
    if undeclared:
        raise ValueError(
            f"register({name!r}): fn requires the keyword parameter(s) {undeclared}; list them "
            f"in params"
        )
    return {
        p: keyword[p].default
        for p in params
        if p in keyword and keyword[p].default is not keyword[p].empty
    }


@overload
def register(
    name: str,
    fn: None = None,
    *,
    params: tuple[str, ...],
    gradient_scale: float | ScaleFn,
    zero_sum: bool,
    binary_rewards: bool = False,
    label: str | LabelFn | None = None,
    aliases: tuple[str, ...] = (),
    description: str = "",
    validate: Callable[..., dict[str, Any]] | None = None,
    target: TargetFn | None = None,
    target_label: str | LabelFn | None = None,
) -> Callable[[F], F]: ...


@overload
def register(
    name: str,
    fn: F,
    *,
    params: tuple[str, ...],
    gradient_scale: float | ScaleFn,
    zero_sum: bool,
    binary_rewards: bool = False,
    label: str | LabelFn | None = None,
    aliases: tuple[str, ...] = (),
    description: str = "",
    validate: Callable[..., dict[str, Any]] | None = None,
    target: TargetFn | None = None,
    target_label: str | LabelFn | None = None,
) -> F: ...


def register(
    name: str,
    fn: F | None = None,
    *,
    params: tuple[str, ...],
    gradient_scale: float | ScaleFn,
    zero_sum: bool,
    binary_rewards: bool = False,
    label: str | LabelFn | None = None,
    aliases: tuple[str, ...] = (),
    description: str = "",
    validate: Callable[..., dict[str, Any]] | None = None,
    target: TargetFn | None = None,
    target_label: str | LabelFn | None = None,
) -> F | Callable[[F], F]:
    """Registers an advantage estimator under ``name``; used as a decorator when ``fn`` is None.

    Once registered, :func:`get`, :func:`spec` and :func:`available` know it, and so does every
    trainer that looks estimators up by name.

    Args:
      name: the canonical name (matched case-insensitively; ``-``, ``.``, space read as ``_``).
      fn: ``fn(rewards (..., N), mask=None, *, **params) -> advantages (..., N)``, pure, on the
        last axis.
      params: the names of ``fn``'s keyword-only parameters (defaults are read from ``fn``).
      gradient_scale: ``c`` in ``g = (c/N) sum_i a_i grad log p(x_i)``: a float, or
        ``scale(n, **params) -> float`` called with the group size and all bound parameters.
      zero_sum: whether the advantages of a full group sum to zero.
      binary_rewards: whether it needs binary 0/1 rewards (default False). A trainer then
        refuses other rewards, and the variance zoo runs it on its 0/1-reward bandit only.
      label: its display label for given parameters (:meth:`EstimatorSpec.label`): a format
        string of its parameters (``"MaxPO@{k}"``), or ``label(**params) -> str`` called with
        all bound parameters. Default: ``name``, then `` {objective}`` and ``@{k}`` where it
        takes them (``"my_pg@4"``).
      aliases: other names for it.
      description: one line for :func:`available`.
      validate: optional ``validate(**params) -> params``, run by :func:`get` on the bound
        parameters (raise ``ValueError`` for a bad value; return the checked values).
      target: optional ``target(returns (..., E), **params) -> (...)``: an estimate, from i.i.d.
        returns, of the objective whose gradient the estimator estimates
        (:meth:`EstimatorSpec.target`); give ``target_label`` with it.
      target_label: the target's name, a format string of the parameters (``"max@{k}"``) or a
        callable (:meth:`EstimatorSpec.target_label`).

    Returns:
      ``fn`` (so that the decorator leaves the function as it is).

    Raises:
      ValueError: the name or an alias is taken, ``params`` does not match ``fn``, or
        ``label`` names a field that is not a parameter.

    Example:
      >>> @register("centred", params=(), gradient_scale=1.0, zero_sum=True, label="Centred")
      ... def centred(rewards, mask=None):
      ...     return rewards - rewards.mean(-1, keepdims=True)
    """
    if fn is None:
        return lambda f: register(
            name,
            f,
            params=params,
            gradient_scale=gradient_scale,
            zero_sum=zero_sum,
            binary_rewards=binary_rewards,
            label=label,
            aliases=aliases,
            description=description,
            validate=validate,
            target=target,
            target_label=target_label,
        )
    if not isinstance(name, str) or not _normalise(name):
        raise ValueError(f"estimator name must be a non-empty string; got {name!r}")
    if not callable(fn):
        raise TypeError(f"register({name!r}, fn): fn must be callable; got {fn!r}")
    if isinstance(params, str) or not all(isinstance(p, str) for p in params):
        raise TypeError(f"register({name!r}): params must be a tuple of names; got {params!r}")
    if not (callable(gradient_scale) or isinstance(gradient_scale, int | float)):
        raise TypeError(
            f"register({name!r}): gradient_scale must be a float or a callable "
            f"scale(n, **params); got {gradient_scale!r}"
        )
    if not isinstance(binary_rewards, bool):
        raise TypeError(
            f"register({name!r}): binary_rewards must be True or False; got {binary_rewards!r}"
        )
    params = tuple(params)
    _check_label(name, label, params)
    if (target is None) != (target_label is None):
        raise ValueError(f"register({name!r}): give target and target_label together")
    if target is not None and not callable(target):
        raise TypeError(f"register({name!r}): target must be callable; got {target!r}")
    _check_label(name, target_label, params)
    key = _normalise(name)
    keys = [key, *(_normalise(a) for a in aliases)]
    taken = [k for k in keys if k in _REGISTRY or k in _ALIASES]
    if taken:
        raise ValueError(f"estimator name(s) {taken} already registered")
    defaults = _keyword_params(fn, name, params)
    _REGISTRY[key] = EstimatorSpec(
        name=key,
        fn=fn,
        params=params,
        zero_sum=bool(zero_sum),
        description=description,
        aliases=tuple(keys[1:]),
        defaults=defaults,
        binary_rewards=binary_rewards,
        scale=gradient_scale,
        validate=validate,
        label_format=_default_label(name, params) if label is None else label,
        target_fn=target,
        target_format=target_label,
    )
    for alias in keys[1:]:
        _ALIASES[alias] = key
    return fn


def spec(name: str) -> EstimatorSpec:
    """The :class:`EstimatorSpec` of a registered estimator (aliases accepted).

    Raises:
      ValueError: ``name`` is not registered; the message lists the names.
    """
    if not isinstance(name, str):
        raise ValueError(
            f"estimator name must be a string; got {name!r}. Available: {', '.join(_REGISTRY)}"
        )
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown estimator {name!r}; available: {', '.join(_REGISTRY)} "
            f"(aliases: {', '.join(sorted(_ALIASES))})"
        )
    return _REGISTRY[key]


def available() -> dict[str, str]:
    """The estimator names that :func:`get` accepts, each with a one-line description."""
    return {name: entry.description for name, entry in _REGISTRY.items()}


def get(name: str, **params: Any) -> AdvantageFn:
    """The advantage function of a named estimator: ``fn(rewards (..., N), mask=None) -> (..., N)``.

    Every estimator works on the last axis (leading axes are independent groups), is pure and
    jit/vmap friendly (its params are static), and takes an optional bool ``mask`` (True =
    valid; masked entries take no part whatever their value, NaN included, and get 0).

    Args:
      name: one of :func:`available` (case-insensitive; ``-`` and ``.`` read as ``_``, e.g.
        ``"Dr.GRPO"``, ``"CVaR-PG"``).
      **params: the estimator's keyword parameters (its spec's ``params``), checked here:
        ``ordergrad``: ``k``, ``objective`` (``method="auto"``); ``grpo``: ``eps=1e-6``;
        ``pkpo``: ``k``, ``variant="s_loo_minus_one"``; ``maxpo``: ``k``;
        ``passk_chen``: ``k`` (``normalize=True``); ``cvar_pg``: ``alpha``;
        ``reinforce``, ``rloo``, ``dr_grpo``: none.

    Returns:
      The bound function; its docstring is the estimator's (formula, gradient scale, whether it
      sums to zero over a group, reference).

    Raises:
      ValueError: unknown name, unknown or missing parameter, or a bad parameter value; the
        message lists what is allowed.
    """
    entry = spec(name)
    bound = entry.bind(**params)
    fn = entry.fn

    def estimator(rewards: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
        return fn(rewards, mask, **bound)

    label = f"{entry.name}({', '.join(f'{p}={v!r}' for p, v in bound.items())})"
    estimator.__name__ = estimator.__qualname__ = entry.name
    estimator.__doc__ = f"{label}: {entry.description}.\n\n{fn.__doc__}"
    return estimator
