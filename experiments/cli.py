"""The `ordergrad-jax` command."""

from __future__ import annotations

import pathlib
from typing import Annotated, Literal

import tyro


def demo(k: int = 4) -> None:
    """Print a table of objectives and their OrderGrad advantages on a sample group."""
    from experiments import demo as demo_module

    demo_module.main(k=k)


def bench(
    name: tyro.conf.Positional[Literal["transform"]],
    quick: bool = False,
    out: Annotated[pathlib.Path, tyro.conf.arg(help="folder for the JSON")] = pathlib.Path(
        "results/bench"),
) -> None:
    """Run a runtime benchmark: print its table and write JSON under OUT."""
    from experiments.bench import transform

    transform.main(transform.QUICK if quick else transform.TransformBenchConfig(), out)


def main() -> None:
    """Entry point of the console script."""
    tyro.extras.subcommand_cli_from_dict({"demo": demo, "bench": bench},
                                         description="ordergrad-jax: OrderGrad estimators")


if __name__ == "__main__":
    main()
