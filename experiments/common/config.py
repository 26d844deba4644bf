"""Config parts every trainer shares, and ``--set`` overrides of (nested) config fields.

A trainer's config is a frozen dataclass that holds these parts as fields (``optim``,
``groups``, ``estimator``, ``budget``) next to its own fields, so one concept has one name
everywhere: ``optim.lr``, ``optim.grad_clip``, ``groups.num_groups``, ``estimator.name``,
``budget.total``, ``budget.num_chunks``, ...

``--set`` takes a dotted path (``--set optim.lr=1e-3``) or, where it is unambiguous, the bare
field name (``--set lr=1e-3``): see :func:`apply_overrides`.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import typing
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """The optimiser: Adam with a global-norm gradient clip and a learning-rate schedule."""

    lr: float = 3e-3
    grad_clip: float = 0.5
    """Clip the gradient to this global L2 norm (``0``: no clipping)."""
    schedule: str = "constant"
    """``constant`` or ``linear`` (decays to 0 over the run)."""
    adam_eps: float = 1e-8
    """Adam's epsilon (the control trainers use 1e-5, as PureJaxRL's PPO)."""

    def make(self, total_updates: int):
        """The optax transformation: ``clip_by_global_norm`` (if ``grad_clip > 0``) then Adam
        with the schedule over ``total_updates`` updates."""
        import optax

        if self.schedule not in ("constant", "linear"):
            raise ValueError(
                f"optim.schedule must be 'constant' or 'linear'; got {self.schedule!r}"
            )
        lr: Any = self.lr
        if self.schedule == "linear":
            lr = optax.linear_schedule(self.lr, 0.0, max(int(total_updates), 1))
        parts = [optax.clip_by_global_norm(self.grad_clip)] if self.grad_clip > 0 else []
        return optax.chain(*parts, optax.adam(lr, eps=self.adam_eps))


@dataclasses.dataclass(frozen=True)
class GroupsConfig:
    """Group sampling: ``num_groups`` groups (prompts, start states) x ``group_size`` samples."""

    num_groups: int = 8
    group_size: int = 8


@dataclasses.dataclass(frozen=True)
class EstimatorConfig:
    """An estimator of ``og.estimators`` and its parameters.

    ``name`` is any registered name or alias; ``objective`` and ``k`` feed the estimators whose
    spec lists them (ordergrad: both; maxpo, pkpo, passk_chen: ``k``); ``options`` holds any
    other parameter of the spec as ``name=value`` (``alpha=0.1`` for cvar_pg, ``variant=s_loo``
    for pkpo, ``normalize=False`` for passk_chen, ``eps=1e-6`` for grpo).
    """

    name: str = "ordergrad"
    objective: str = "Mean"
    k: int = 4
    options: tuple[str, ...] = ()

    def spec(self):
        """The registered ``og.estimators`` spec of ``name``."""
        import ordergrad_jax as og

        return og.estimators.spec(self.name)

    def params(self) -> dict[str, Any]:
        """The keyword parameters of the estimator: those its spec lists, from ``objective``,
        ``k`` and ``options`` (values parsed as Python literals where they are one)."""
        spec = self.spec()
        given: dict[str, Any] = {"objective": self.objective, "k": self.k}
        for item in self.options:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"estimator.options takes name=value items; got {item!r}")
            if key not in spec.params:
                raise ValueError(
                    f"estimator {spec.name!r} takes the parameters {list(spec.params)}; "
                    f"got option {key!r}"
                )
            given[key] = _literal(value)
        return {key: given[key] for key in spec.params if key in given}

    def resolve(self, group_size: int) -> ResolvedEstimator:
        """The estimator for groups of ``group_size``, resolved once from its spec: canonical
        name, parameters, advantage function and gradient scale ``c`` (paper convention).
        Raises ``ValueError`` for an unknown name, a bad parameter or a group size it cannot
        take (here, not inside a jitted step)."""
        import ordergrad_jax as og

        spec, params = self.spec(), self.params()
        fn = og.estimators.get(spec.name, **params)
        fn(np.zeros((group_size,), np.float32))
        scale = float(spec.gradient_scale(group_size, **params))
        return ResolvedEstimator(spec.name, params, scale, fn)


@dataclasses.dataclass(frozen=True)
class ResolvedEstimator:
    """An :class:`EstimatorConfig` resolved for one group size (computed once, passed down).

    The per-group gradient estimate is ``g = (scale/N) sum_i a_i grad log p(x_i)`` with
    ``a = advantages(rewards [..., N])`` (the paper's convention, ``docs/maths.md``).
    """

    name: str
    """The canonical (registered) name."""
    params: dict[str, Any]
    """The estimator's keyword parameters."""
    scale: float
    """``c``: the estimator's gradient scale at this group size."""
    advantages: Callable[..., Any]
    """``(rewards [..., N], mask=None) -> advantages [..., N]``."""

    def label(self, *extra: str) -> str:
        """A short name: ``ordergrad[Mean,K=4]``, ``cvar_pg[alpha=0.1]``, ``rloo``; ``extra``
        parts go inside the brackets after the parameters."""
        parts = [str(self.params["objective"])] if "objective" in self.params else []
        parts += [
            f"{'K' if p == 'k' else p}={v}" for p, v in self.params.items() if p != "objective"
        ]
        parts += extra
        return f"{self.name}[{','.join(parts)}]" if parts else self.name


@dataclasses.dataclass(frozen=True)
class BudgetConfig:
    """The training budget: ``total`` in the trainer's unit, run in ``num_chunks`` jitted chunks
    with a checkpoint (and, where the trainer evaluates as it goes, an evaluation) after each.

    The unit is the trainer's: environment steps for the control and pathwise trainers (all
    seeds' samples count once: the budget of one seed), RL steps (updates) for ``lm-rl``.
    """

    total: int
    num_chunks: int = 10

    def iterations(self, steps_per_iteration: int) -> tuple[int, int]:
        """``(iterations_per_chunk, num_chunks)`` of a trainer whose iteration takes
        ``steps_per_iteration`` of the budget's unit: ``total // steps_per_iteration``
        iterations rounded down to a multiple of ``num_chunks``, at least one per chunk.
        Raises ``ValueError`` for a non-positive size."""
        if self.num_chunks < 1 or steps_per_iteration < 1:
            raise ValueError(
                f"budget.num_chunks and the steps per iteration must be >= 1; got "
                f"{self.num_chunks} and {steps_per_iteration}"
            )
        total = max(self.total // steps_per_iteration, self.num_chunks)
        return max(total // self.num_chunks, 1), self.num_chunks


RENAMED: dict[str, str] = {
    "total_env_steps": "budget.total (environment steps)",
    "iterations": (
        "budget.total (environment steps: iterations x num_groups x group_size x num_steps)"
    ),
    "steps": "budget.total (RL steps)",
    "steps_per_chunk": "control.budget.total (environment steps)",
    "control_steps_per_chunk": "control.budget.total (environment steps)",
    "budget": "budget.total",
    "brax_budget": "brax.budget.total",
    "rp_learn_std": "rp.learn_std",
    "control_groups": "control.groups.num_groups and control.groups.group_size",
    "control_num_steps": "control.num_steps",
    "ppo_num_envs": "control.num_envs",
    "lm_steps": "lm.budget.total (RL steps)",
    "objective": "estimator.objective",
    "k": "estimator.k",
}
"""``--set`` names of earlier versions -> what replaced them (one vocabulary: the budget is
``budget.total`` everywhere). :func:`resolve_key` names the replacement when an old name is no
longer a field of the config."""


def _literal(text: str) -> Any:
    """``text`` as a Python literal (number, bool, None) where it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def leaf_paths(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf field of a (nested) dataclass config: ``{"optim.lr": type, "seed": type}``."""
    paths: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            paths.update(leaf_paths(value, f"{prefix}{field.name}."))
        else:
            paths[f"{prefix}{field.name}"] = field.type
    return paths


def resolve_key(config: Any, key: str) -> str:
    """The dotted path of ``key``: itself if it is a path, else the one leaf whose path ends with
    it (``num_groups``, or ``estimator.name`` in a config that nests the part one level deeper).

    Raises ``ValueError`` naming the allowed keys when ``key`` is unknown or ambiguous, and the
    new name when ``key`` is a name of :data:`RENAMED` that is no longer a field.
    """
    paths = leaf_paths(config)
    if key in paths:
        return key
    matches = [path for path in paths if path.endswith("." + key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"--set key {key!r} is ambiguous: use one of {sorted(matches)}")
    if key in RENAMED:
        raise ValueError(f"--set key {key!r} was renamed: use {RENAMED[key]}")
    raise ValueError(f"--set takes key=value with a key among {sorted(paths)}; got {key!r}")


_BOOLS = {"true": "True", "yes": "True", "1": "True", "false": "False", "no": "False", "0": "False"}


def _set_leaf(config: Any, path: list[str], value: str, item: str) -> Any:
    """``config`` with the leaf at ``path`` parsed from ``value`` by its field type (tyro)."""
    import tyro

    head, *rest = path
    if rest:
        inner = _set_leaf(getattr(config, head), rest, value, item)
        return dataclasses.replace(config, **{head: inner})
    if isinstance(getattr(config, head), bool):  # true/false/yes/no/1/0, any case
        value = _BOOLS.get(value.strip().lower(), value)
    args = [f"--{head}", *(value.split(",") if "," in value else [value])]
    if value == "" and isinstance(getattr(config, head), tuple):  # key= : the empty tuple
        args = [f"--{head}"]
    try:  # one override at a time, so that a parse error names its key
        with contextlib.redirect_stderr(io.StringIO()):
            return tyro.cli(
                type(config), default=config, args=args, config=(tyro.conf.FlagConversionOff,)
            )
    except SystemExit as err:
        types = {f.name: f.type for f in dataclasses.fields(config)}
        raise ValueError(
            f"--set {item!r}: {value!r} is not a valid {head} (type {types[head]})"
        ) from err


def apply_overrides(config: Any, overrides: typing.Sequence[str]) -> Any:
    """``config`` with ``key=value`` overrides parsed by the field types (tuples as
    comma-separated values, ``key=`` the empty tuple), e.g. ``("seed=3", "optim.lr=1e-3",
    "objective=ReMax", "hidden=")``.

    ``key`` is a dotted path into nested config parts or a bare field name that names exactly
    one leaf. Raises ``ValueError`` (one line) for an unknown, ambiguous or ill-typed override.
    """
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes key=value; got {item!r}")
        path = resolve_key(config, key)
        config = _set_leaf(config, path.split("."), value, item)
    return config
