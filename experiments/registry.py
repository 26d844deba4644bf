"""The experiments and benchmarks the `ordergrad-jax` command runs (``run NAME``, ``bench NAME``):
a name -> a typed config, its quick preset and ``run(config, writer, progress)``.

Each entry names where its pieces live (``"module:attribute"``); the module is imported only when
the entry is used, so a missing optional package affects only the entries that need it.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A runnable experiment or benchmark: a typed config, its quick preset and ``run(config,
    writer, progress) -> metric rows``."""

    name: str
    description: str
    config: Callable[[], Any]
    quick: Any
    run: Callable[..., list[dict]]


@dataclasses.dataclass(frozen=True)
class Entry:
    """Where an experiment's pieces live: ``module`` and its attributes (config class, quick
    preset, run function)."""

    description: str
    module: str
    config: str
    quick: str = "QUICK"
    run: str = "run"
    requires: tuple[str, ...] = ()
    """Packages the run imports only when it starts (not at module import), checked at lookup so
    that ``list`` and ``run`` say which extra is missing before any work."""


_EXPERIMENTS: dict[str, Entry] = {
    "variance": Entry(
        "estimator studies: unbiasedness, LR/RP vs exact, variance, SNR, the zoo, runtime",
        "ordergrad_experiments.variance.run",
        "ordergrad_experiments.variance.config:VarianceConfig",
        "ordergrad_experiments.variance.config:QUICK",
    ),
    "control": Entry(
        "gymnax control: group policy gradients with any estimator (OrderGrad objectives) vs PPO",
        "ordergrad_experiments.control.run",
        "ordergrad_experiments.control.config:ControlConfig",
        "ordergrad_experiments.control.config:QUICK",
        requires=("gymnax",),  # ordergrad_envs, imported by make_train
    ),
    "control-gradients": Entry(
        "gradient SNR and alignment of group-PG objectives at the policies of a learner's run",
        "ordergrad_experiments.control.gradients",
        "GradientsConfig",
        requires=("gymnax",),  # ordergrad_envs, imported by make_train
    ),
    "lm-rl": Entry(
        "LM RL fine-tuning (tiny Qwen3, arithmetic task): SFT + group RL with any estimator",
        "ordergrad_experiments.lm.run",
        "ordergrad_experiments.lm.config:LMConfig",
        "ordergrad_experiments.lm.config:QUICK",
    ),
    "brax-rp": Entry(
        "pathwise (RP) order-statistic gradients through brax/gymnax dynamics (or LR)",
        "ordergrad_experiments.pathwise.run",
        "ordergrad_experiments.pathwise.config:PathwiseConfig",
        "ordergrad_experiments.pathwise.config:QUICK",
    ),
    "brax-variance": Entry(
        "RP vs LR gradient variance and SNR at equal sample budget on brax tasks",
        "ordergrad_experiments.pathwise.variance",
        "RPVarianceConfig",
    ),
    "lm-diagnose": Entry(
        "LM diagnostics from one SFT start: gradient SNR, line search, sharpening, trials, forms",
        "ordergrad_experiments.lm.diagnose",
        "DiagnoseConfig",
    ),
    "return-table": Entry(
        "return distributions of the risk-sensitive tasks under hand-written policies",
        "ordergrad_experiments.control.return_table",
        "ReturnTableConfig",
    ),
}

_BENCHES: dict[str, Entry] = {
    "transform": Entry(
        "the OrderGrad advantage transform against the sort floor (and GRPO)",
        "ordergrad_experiments.bench.transform",
        "TransformBenchConfig",
    ),
    "control": Entry(
        "env steps/s on CartPole: group-PG OrderGrad vs RLOO vs PPO, one process",
        "ordergrad_experiments.bench.control",
        "ControlBenchConfig",
        requires=("gymnax",),
    ),
    "brax": Entry(
        "our RP and LR trainers vs brax's own PPO and APG on one brax task (speed and returns)",
        "ordergrad_experiments.bench.brax",
        "BraxBenchConfig",
    ),
    "accelerator": Entry(
        "this machine's devices: matmul peak, transform, control env-steps/s, LM step, brax",
        "ordergrad_experiments.bench.accelerator",
        "AcceleratorBenchConfig",
    ),
    "lm-speed": Entry(
        "the lm-rl step: tokens/s, time split, learner FLOP/s vs the dot peak (--set profile=True)",
        "ordergrad_experiments.bench.lm_speed",
        "LMSpeedBenchConfig",
    ),
}


class MissingExtra(ValueError):
    """An experiment needs a package of an extra that is not installed (exit status 1)."""


# The extra that provides each optional top-level package the experiments import.
_EXTRAS = {"tunix": "lm", "gymnax": "envs", "brax": "envs", "mujoco": "envs", "flax": "experiments"}
# What an extra asks of jax, where that is narrower than the library's range (pyproject.toml).
_EXTRA_LIMITS = {"envs": "gymnax 1.0.1 needs jax < 0.12"}


def _attribute(default_module: str, path: str) -> Any:
    """``"module:name"`` (or a bare ``name`` of ``default_module``) -> the object."""
    module, _, name = path.rpartition(":")
    return getattr(importlib.import_module(module or default_module), name)


def _load(kind: str, name: str, entry: Entry) -> Experiment:
    try:
        for package in entry.requires:
            if importlib.util.find_spec(package) is None:
                raise ModuleNotFoundError(f"No module named {package!r}", name=package)
        return Experiment(
            name,
            entry.description,
            _attribute(entry.module, entry.config),
            _attribute(entry.module, entry.quick),
            _attribute(entry.module, entry.run),
        )
    except ModuleNotFoundError as err:
        missing = missing_extra(err, f"{kind} {name!r}")
        if missing is None:
            raise
        raise missing from err


def missing_extra(err: ModuleNotFoundError, what: str) -> MissingExtra | None:
    """The :class:`MissingExtra` of ``err`` (``what`` needs a package of an extra), or ``None``
    when the missing module belongs to no extra (then it is a bug, not a missing install)."""
    package = (err.name or "").split(".")[0]
    if package not in _EXTRAS:
        return None
    extra = _EXTRAS[package]
    return MissingExtra(
        f"{what} needs {package!r}, which is not installed: pip install "
        f'"ordergrad-jax[{extra}]" (in a checkout: pip install -e ".[{extra}]")' + _limit(extra)
    )


def _limit(extra: str) -> str:
    """``"; <what the extra needs of jax>"`` for an extra that narrows the library's jax range,
    else ``""``."""
    return f"; {_EXTRA_LIMITS[extra]}" if extra in _EXTRA_LIMITS else ""


def _lookup(kind: str, table: dict[str, Entry], name: str) -> Experiment:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; available: {', '.join(table)}")
    return _load(kind, name, table[name])


def register(name: str, entry: Entry, bench: bool = False) -> None:
    """Adds an experiment (or, with ``bench``, a benchmark) for ``run NAME`` / ``bench NAME``: a
    plugin module (``ORDERGRAD_JAX_PLUGINS``) calls it on import. ``ValueError`` if the name is
    taken."""
    table = _BENCHES if bench else _EXPERIMENTS
    if name in table and table[name] != entry:
        raise ValueError(f"{'benchmark' if bench else 'experiment'} {name!r} is already registered")
    table[name] = entry


def names() -> list[str]:
    """The registered experiment names."""
    return list(_EXPERIMENTS)


def get(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` lists the known ones, and
    :class:`MissingExtra` says which extra to install when its packages are missing."""
    return _lookup("experiment", _EXPERIMENTS, name)


def bench_names() -> list[str]:
    """The registered benchmark names."""
    return list(_BENCHES)


def describe_bench(name: str) -> str:
    """The one-line description of a benchmark (its modules are not imported)."""
    return _BENCHES[name].description


def get_bench(name: str) -> Experiment:
    """The benchmark called ``name`` (its ``run(config, writer, progress) -> rows``);
    ``ValueError`` lists the known ones."""
    return _lookup("benchmark", _BENCHES, name)
