"""The experiments and benchmarks the `ordergrad-jax` command runs (``run NAME``, ``bench NAME``):
a name -> a typed config, its quick preset and ``run(config, writer, progress)``."""

from __future__ import annotations

import dataclasses
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


def _variance() -> Experiment:
    from experiments.variance import config, run

    return Experiment(
        "variance",
        "estimator studies: unbiasedness, LR/RP vs exact, variance, SNR, the zoo, runtime",
        config.VarianceConfig,
        config.QUICK,
        run.run,
    )


def _lm_rl() -> Experiment:
    from experiments.lm import config, run

    return Experiment(
        "lm-rl",
        "LM RL fine-tuning (tiny Qwen3, arithmetic task): SFT + group RL with any estimator",
        config.LMConfig,
        config.QUICK,
        run.run,
    )


def _control() -> Experiment:
    from experiments.control import config, run

    return Experiment(
        "control",
        "gymnax control: group policy gradients with any estimator (OrderGrad objectives) vs PPO",
        config.ControlConfig,
        config.QUICK,
        run.run,
    )


_FACTORIES: dict[str, Callable[[], Experiment]] = {"variance": _variance, "control": _control}
_FACTORIES["lm-rl"] = _lm_rl


def _brax_rp() -> Experiment:
    from experiments.pathwise import config, run

    return Experiment(
        "brax-rp",
        "pathwise (RP) order-statistic gradients through brax/gymnax dynamics (or LR)",
        config.PathwiseConfig,
        config.QUICK,
        run.run,
    )


def _brax_variance() -> Experiment:
    from experiments.pathwise import variance

    return Experiment(
        "brax-variance",
        "RP vs LR gradient variance and SNR at equal sample budget on brax tasks",
        variance.RPVarianceConfig,
        variance.QUICK,
        variance.run,
    )


_FACTORIES["brax-rp"] = _brax_rp
_FACTORIES["brax-variance"] = _brax_variance


def names() -> list[str]:
    """The registered experiment names."""
    return list(_FACTORIES)


class MissingExtra(ValueError):
    """An experiment needs a package of an extra that is not installed (exit status 1)."""


# The extra that provides each optional top-level package the experiments import.
_EXTRAS = {"tunix": "lm", "gymnax": "envs", "brax": "envs", "mujoco": "envs", "flax": "experiments"}


def _load(kind: str, name: str, factory: Callable[[], Experiment]) -> Experiment:
    try:
        return factory()
    except ModuleNotFoundError as err:
        package = (err.name or "").split(".")[0]
        if package not in _EXTRAS:
            raise
        raise MissingExtra(
            f"{kind} {name!r} needs {package!r}, which is not installed: "
            f'pip install -e ".[{_EXTRAS[package]}]"'
        ) from err


def get(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` lists the known ones, and
    :class:`MissingExtra` says which extra to install when its packages are missing."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(_FACTORIES)}")
    return _load("experiment", name, _FACTORIES[name])


def _bench_transform() -> Experiment:
    from experiments.bench import transform

    return Experiment(
        "transform",
        "the OrderGrad advantage transform against the sort floor (and GRPO)",
        transform.TransformBenchConfig,
        transform.QUICK,
        transform.run,
    )


def _bench_control() -> Experiment:
    from experiments.bench import control

    return Experiment(
        "control",
        "env steps/s on CartPole: group-PG OrderGrad vs RLOO vs PPO, one process",
        control.ControlBenchConfig,
        control.QUICK,
        control.run,
    )


def _bench_brax() -> Experiment:
    from experiments.bench import brax

    return Experiment(
        "brax",
        "our RP and LR trainers vs brax's own PPO and APG on one brax task (speed and returns)",
        brax.BraxBenchConfig,
        brax.QUICK,
        brax.run,
    )


def _bench_accelerator() -> Experiment:
    from experiments.bench import accelerator

    return Experiment(
        "accelerator",
        "this machine's devices: matmul peak, transform, control env-steps/s, LM step, brax",
        accelerator.AcceleratorBenchConfig,
        accelerator.QUICK,
        accelerator.run,
    )


_BENCHES: dict[str, Callable[[], Experiment]] = {
    "transform": _bench_transform,
    "control": _bench_control,
    "brax": _bench_brax,
    "accelerator": _bench_accelerator,
}


def bench_names() -> list[str]:
    """The registered benchmark names."""
    return list(_BENCHES)


def get_bench(name: str) -> Experiment:
    """The benchmark called ``name`` (its ``run(config, writer, progress) -> rows``);
    ``ValueError`` lists the known ones."""
    if name not in _BENCHES:
        raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(_BENCHES)}")
    return _load("benchmark", name, _BENCHES[name])
