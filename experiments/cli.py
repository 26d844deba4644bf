"""The `ordergrad-jax` command: list and run experiments, benchmarks and the demo."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
import typing
from typing import Annotated

import tyro

from ordergrad_experiments.common.config import apply_overrides, leaf_paths


def demo(k: int = 4) -> None:
    """Print a table of objectives and their OrderGrad advantages on a sample group."""
    from ordergrad_experiments import demo as demo_module

    enable_compilation_cache()
    demo_module.main(k=k)


SetFlags = Annotated[
    tuple[str, ...],
    tyro.conf.UseAppendAction,
    tyro.conf.arg(help="a config override key=value (repeat the flag)"),
]


def _configured(kind: str, name: str, quick: bool, overrides, seed: int | None = None):
    """The registry entry ``name`` and its config (quick preset, seed, ``--set`` overrides);
    ``UsageError`` for an unknown name or override."""
    from ordergrad_experiments import registry
    from ordergrad_experiments.common import loggers

    try:
        exp = registry.get_bench(name) if kind == "bench" else registry.get(name)
        config = exp.quick if quick else exp.config()
        if seed is not None:
            config = dataclasses.replace(config, seed=seed)
        config = apply_overrides(config, overrides)
        loggers.config_loggers(config)  # an unknown logger name is bad usage
        return exp, config
    except ValueError as err:
        raise UsageError(str(err)) from err


def _execute(exp, config, out: pathlib.Path, run_id: str | None, progress) -> pathlib.Path:
    """Runs ``exp`` into a new (or resumed) run folder OUT/NAME/<run-id>/ and prints its path.
    A config with a ``cluster`` part joins its JAX cluster first, before any other JAX call.
    The sinks of the config's ``logger`` (``ordergrad_experiments.common.loggers``: TensorBoard,
    W&B) get the metric rows too, on process 0; they are closed when the run ends, also on an
    error."""
    from ordergrad_experiments.common import cluster, loggers
    from ordergrad_experiments.common.runs import RunWriter

    names = loggers.config_loggers(config)
    loggers.require(names)  # a missing package fails here, before any work
    cluster.start_from(config)  # before any other JAX call (the cache and RunWriter make one)
    enable_compilation_cache()
    writer = RunWriter(exp.name, out, run_id)
    try:
        if writer.primary:
            writer.sinks = loggers.make_sinks(names, writer.path, config)
        exp.run(config, writer, progress)
    finally:
        writer.close()
    print(f"results in {writer.path}")
    return writer.path


def bench(
    name: tyro.conf.Positional[str],
    quick: bool = False,
    out: Annotated[pathlib.Path, tyro.conf.arg(help="root folder of the results")] = pathlib.Path(
        "results/bench"
    ),
    set: SetFlags = (),
    run_id: str | None = None,
) -> pathlib.Path:
    """Run a benchmark (transform, control, brax, accelerator): print its table; results go to
    OUT/NAME/<run-id>/ (config, metrics.jsonl with one row per measurement, summary.md)."""
    exp, config = _configured("bench", name, quick, set)
    return _execute(exp, config, out, run_id, None)


def report(
    name: tyro.conf.Positional[str],
    check: Annotated[
        bool, tyro.conf.arg(help="compare only: exit 1 naming each table that differs")
    ] = False,
    root: Annotated[
        pathlib.Path | None,
        tyro.conf.arg(help="the repository root (default: found above the working directory)"),
    ] = None,
    figures: Annotated[
        bool, tyro.conf.arg(help="also redraw the document's figures from its committed data")
    ] = False,
) -> None:
    """Rebuild the tables of a results document (reports/NAME/RESULTS.md) from its committed data;
    with --check, exit 1 when a committed table differs; with --figures, also redraw its figures.
    NAME: brax, control, lm, variance, transform, envs."""
    from ordergrad_experiments import report as report_module

    if name not in report_module.DOCUMENTS:
        raise UsageError(f"no results document {name!r}; known: {sorted(report_module.DOCUMENTS)}")
    report_module.report(name, check=check, root=root)
    if figures:
        report_module.draw_figures(name, root=root)


def list_experiments() -> None:
    """List the experiments `run` knows, with their config fields, and the benchmarks."""
    from ordergrad_experiments import registry

    for name in registry.names():
        try:
            exp = registry.get(name)
        except registry.MissingExtra as err:
            print(f"{name}: not available here: {err}")
            continue
        fields = ", ".join(leaf_paths(exp.config()))
        print(f"{name}: {exp.description}\n  --set keys: {fields}")
    print("benchmarks (ordergrad-jax bench NAME [--quick]):")
    for name in registry.bench_names():
        print(f"  {name}: {registry.describe_bench(name)}")
    from ordergrad_experiments import sweeps

    print("sweeps (ordergrad-jax sweep NAME [--dry-run] [--jobs J] [--keep DIR]):")
    for name in sweeps.names():
        sweep = sweeps.get(name)
        print(f"  {name}: {sweep.description} ({len(sweep.runs)} runs)")


def sweep(
    name: tyro.conf.Positional[str],
    dry_run: Annotated[
        bool, tyro.conf.arg(help="print the run ids, one a line; run nothing")
    ] = False,
    jobs: Annotated[int, tyro.conf.arg(help="runs at a time")] = 1,
    keep: Annotated[
        pathlib.Path | None, tyro.conf.arg(help="keep each finished run in DIR/<id>/")
    ] = None,
    out: Annotated[
        pathlib.Path | None, tyro.conf.arg(help="the runs' root folder (default results/NAME)")
    ] = None,
) -> None:
    """Run a study (a sweep: experiments/sweeps/): each unfinished run as its own process, J at a
    time; finished runs are skipped, unfinished ones resume by their run id; exit 1 naming the
    failed runs and their logs."""
    from ordergrad_experiments import sweeps
    from ordergrad_experiments.sweeps import runner

    if name not in sweeps.names():
        raise UsageError(f"no sweep {name!r}; known: {', '.join(sweeps.names())}")
    runner.main(name, dry_run=dry_run, jobs=jobs, keep=keep, out=out)


def run(
    name: tyro.conf.Positional[str],
    quick: bool = False,
    seed: int | None = None,
    out: pathlib.Path = pathlib.Path("results"),
    set: SetFlags = (),
    run_id: str | None = None,
) -> pathlib.Path:
    """Run an experiment; results go to OUT/NAME/<run-id>/ (config, metrics, figures, summary).
    Training experiments checkpoint as they go: the same command with the --run-id of an
    unfinished run resumes it. A config with a ``cluster`` part joins its multi-process JAX
    cluster first, before any other JAX call (experiments/common/cluster.py)."""
    from tqdm import tqdm

    exp, config = _configured("run", name, quick, set, seed)
    return _execute(exp, config, out, run_id, lambda items: tqdm(items, desc=name, unit="study"))


class UsageError(ValueError):
    """The command line asks for something that does not exist (exit status 2)."""


CACHE_ENV = "ORDERGRAD_JAX_CACHE"


def compilation_cache_dir(backend: str | None = None) -> pathlib.Path | None:
    """Where the CLI keeps JAX's persistent compilation cache, or ``None`` if it is off.

    ``$ORDERGRAD_JAX_CACHE`` names the folder (``0``, ``off`` or ``none`` turn the cache off).
    Unset, the cache is on for accelerators, in ``$XDG_CACHE_HOME/ordergrad-jax/jax``
    (``~/.cache/ordergrad-jax/jax``), and off on CPU (``backend``, default
    ``jax.default_backend()``): XLA:CPU (jax 0.9.2) logs a multi-line "machine type doesn't match"
    error for every program it loads from the cache, even one compiled on the same machine
    (openxla/xla#44565), so on CPU it is opt-in (set the variable to a folder).
    """
    setting = os.environ.get(CACHE_ENV)
    if setting is not None and setting.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    if setting:
        return pathlib.Path(setting).expanduser()
    if backend is None:
        import jax

        backend = jax.default_backend()
    if backend == "cpu":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "ordergrad-jax" / "jax"


def enable_compilation_cache() -> pathlib.Path | None:
    """Turns on JAX's persistent compilation cache at :func:`compilation_cache_dir`."""
    path = compilation_cache_dir()
    if path is None:
        return None
    import jax

    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


PLUGINS_ENV = "ORDERGRAD_JAX_PLUGINS"


def load_plugins(spec: str) -> list[str]:
    """Imports the comma-separated modules of ``spec`` (a user's estimators or objectives
    register themselves on import); returns their names. ``UsageError`` if one cannot be
    imported."""
    import importlib

    names = [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise UsageError(f"{PLUGINS_ENV}: cannot import {name!r}: {err}") from err
    return names


def main(args: typing.Sequence[str] | None = None) -> int:
    """Entry point of the console script: the exit status.

    0 on success; 2 for bad usage (unknown experiment, unknown or ill-typed ``--set`` key: tyro's
    own parse errors exit 2 too); 1 when a run fails on bad input (a ``ValueError``, ``TypeError``
    or ``FileNotFoundError``, or a package of an extra that is not installed: one line on stderr
    naming the extra; set ``ORDERGRAD_DEBUG=1`` for the traceback).
    Any other exception is a bug and propagates with its traceback.

    ``ORDERGRAD_JAX_PLUGINS=mod1,mod2`` imports those modules first: a module that registers an
    estimator (``og.estimators.register``) or an objective makes it available to every trainer.
    """
    try:
        load_plugins(os.environ.get(PLUGINS_ENV, ""))
        tyro.extras.subcommand_cli_from_dict(
            {
                "list": list_experiments,
                "run": run,
                "bench": bench,
                "sweep": sweep,
                "report": report,
                "demo": demo,
            },
            description="ordergrad-jax: OrderGrad estimators, experiments and benchmarks",
            args=args,
        )
    except (ValueError, TypeError, FileNotFoundError, ModuleNotFoundError) as err:
        if isinstance(err, ModuleNotFoundError):  # a missing extra at run time: one line, exit 1
            from ordergrad_experiments import registry

            err = registry.missing_extra(err, "this command")
            if err is None:
                raise
        if os.environ.get("ORDERGRAD_DEBUG"):
            raise
        print(f"ordergrad-jax: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
