"""The `ordergrad-jax` command: list and run experiments, benchmarks and the demo."""

from __future__ import annotations

import dataclasses
import pathlib
import typing
from typing import Annotated, Literal

import tyro


def demo(k: int = 4) -> None:
    """Print a table of objectives and their OrderGrad advantages on a sample group."""
    from experiments import demo as demo_module

    demo_module.main(k=k)


def bench(
    name: tyro.conf.Positional[Literal["transform", "control"]],
    quick: bool = False,
    out: Annotated[pathlib.Path, tyro.conf.arg(help="folder for the JSON")] = pathlib.Path(
        "results/bench"
    ),
) -> None:
    """Run a runtime benchmark: print its table and write JSON under OUT."""
    if name == "control":
        from experiments.control import bench as control_bench

        control_bench.main(
            control_bench.QUICK if quick else control_bench.ControlBenchConfig(), out
        )
        return
    from experiments.bench import transform

    transform.main(transform.QUICK if quick else transform.TransformBenchConfig(), out)


def list_experiments() -> None:
    """List the experiments `run` knows, with their config fields."""
    from experiments import registry

    for name in registry.names():
        exp = registry.get(name)
        fields = ", ".join(f.name for f in dataclasses.fields(exp.config))
        print(f"{name}: {exp.description}\n  --set keys: {fields}")


def apply_overrides(config, overrides: typing.Sequence[str]):
    """Returns ``config`` with ``key=value`` overrides parsed by the field types (tuples as
    comma-separated values), e.g. ``("seed=3", "objectives=ReMax,Median")``."""
    if not overrides:
        return config
    fields = {f.name for f in dataclasses.fields(config)}
    args = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(
                f"--set takes key=value with a key among {sorted(fields)}; got {item!r}"
            )
        args += [f"--{key}", *(value.split(",") if "," in value else [value])]
    return tyro.cli(type(config), default=config, args=args, config=(tyro.conf.FlagConversionOff,))


def run(
    name: tyro.conf.Positional[str],
    quick: bool = False,
    seed: int | None = None,
    out: pathlib.Path = pathlib.Path("results"),
    set: Annotated[
        tuple[str, ...],
        tyro.conf.UseAppendAction,
        tyro.conf.arg(help="a config override key=value (repeat the flag)"),
    ] = (),
    run_id: str | None = None,
) -> pathlib.Path:
    """Run an experiment; results go to OUT/NAME/<run-id>/ (config, metrics, figures, summary)."""
    from tqdm import tqdm

    from experiments import registry
    from experiments.common.runs import RunWriter

    exp = registry.get(name)
    config = exp.quick if quick else exp.config()
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    config = apply_overrides(config, set)
    writer = RunWriter(name, out, run_id)
    exp.run(config, writer, lambda items: tqdm(items, desc=name, unit="study"))
    print(f"results in {writer.path}")
    return writer.path


def main(args: typing.Sequence[str] | None = None) -> typing.Any:
    """Entry point of the console script; returns what the subcommand returns."""
    return tyro.extras.subcommand_cli_from_dict(
        {"list": list_experiments, "run": run, "bench": bench, "demo": demo},
        description="ordergrad-jax: OrderGrad estimators, experiments and benchmarks",
        args=args,
    )


if __name__ == "__main__":
    main()
