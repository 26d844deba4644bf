"""The experiments the `ordergrad-jax` command can run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A runnable experiment: a typed config, its quick preset and ``run(config, writer,
    progress) -> metric rows``."""

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
    from experiments.control import pathwise

    return Experiment(
        "brax-rp",
        "pathwise (RP) order-statistic gradients through brax/gymnax dynamics (or LR)",
        pathwise.PathwiseConfig,
        pathwise.QUICK,
        pathwise.run,
    )


_FACTORIES["brax-rp"] = _brax_rp


def names() -> list[str]:
    """The registered experiment names."""
    return list(_FACTORIES)


def get(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` lists the known ones."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(_FACTORIES)}")
    return _FACTORIES[name]()
