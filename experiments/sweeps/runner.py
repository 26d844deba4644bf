"""Runs a sweep: ``ordergrad-jax sweep NAME [--dry-run] [--jobs J] [--keep DIR] [--out DIR]``.

Each run is a process of the installed ``ordergrad-jax`` (found beside ``sys.executable``):
``ordergrad-jax run EXP --out OUT --run-id ID [--seed S] --set ...`` writes ``OUT/EXP/ID/``, and a
benchmark (``"bench:NAME"``) ``ordergrad-jax bench NAME --out OUT/bench --run-id ID --set ...``
writes ``OUT/bench/NAME/ID/``; its stdout and stderr go to ``OUT/ID.log``. A finished run (one
with its ``summary.md``), or one already kept as a finished run folder in ``--keep DIR`` (a study
resumed in a fresh clone from its committed runs), is skipped; an unfinished one is started again
with its run id, and the trainers resume it from their checkpoints. A run kept as a folder is
kept as soon as it finishes (a sweep stopped midway keeps what finished). ``J`` runs go at a
time, stage after stage (a stage starts when the one before has finished, e.g. after the run
that fills a shared SFT cache).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import pathlib
import subprocess
import sys
import time

from ordergrad_experiments.common.runs import Run
from ordergrad_experiments.sweeps import keep as keeps
from ordergrad_experiments.sweeps.spec import RunSpec, Sweep

BENCH = "bench:"


class SweepFailed(ValueError):
    """Some runs of a sweep failed (the CLI exits 1 with this message)."""


def command_path() -> pathlib.Path:
    """The installed ``ordergrad-jax`` of this Python environment."""
    return pathlib.Path(sys.executable).parent / "ordergrad-jax"


def run_folder(spec: RunSpec, out: pathlib.Path) -> pathlib.Path:
    """Where the run writes its folder under the sweep's ``out``."""
    if spec.experiment.startswith(BENCH):
        return out / "bench" / spec.experiment[len(BENCH) :] / spec.id
    return out / spec.experiment / spec.id


def log_path(spec: RunSpec, out: pathlib.Path) -> pathlib.Path:
    return out / f"{spec.id}.log"


def command(sweep: Sweep, spec: RunSpec, out: pathlib.Path) -> list[str]:
    """The run's command line."""
    if spec.experiment.startswith(BENCH):
        head = ["bench", spec.experiment[len(BENCH) :], "--out", str(out / "bench")]
    else:
        head = ["run", spec.experiment, "--out", str(out)]
    cmd = [str(command_path()), *head, "--run-id", spec.id]
    if spec.seed is not None:
        cmd += ["--seed", str(spec.seed)]
    for item in sweep.overrides(spec, out):
        cmd += ["--set", item]
    return cmd


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the runner did with one run: ``skipped`` (finished before), ``done`` or ``failed``."""

    spec: RunSpec
    status: str
    seconds: float = 0.0


def _launch(sweep: Sweep, spec: RunSpec, out: pathlib.Path) -> Outcome:
    tic = time.perf_counter()
    with log_path(spec, out).open("w") as log:
        subprocess.run(
            command(sweep, spec, out),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **spec.env},
            check=False,
        )
    done = Run(run_folder(spec, out)).finished
    return Outcome(spec, "done" if done else "failed", time.perf_counter() - tic)


def kept_as_folder(spec: RunSpec) -> bool:
    """Whether ``--keep`` keeps ``spec`` as a run folder of its own (rows appended to a shared
    file, ``kept_as``, are not told apart, and an unkept run has no copy)."""
    return spec.keep is not False and spec.kept_as is None


def kept_before(spec: RunSpec, dest: pathlib.Path | None) -> bool:
    """Whether ``dest`` already holds ``spec`` as a finished run folder (a kept run)."""
    return dest is not None and kept_as_folder(spec) and Run(dest / spec.kept_name).finished


def _keep_one(sweep: Sweep, spec: RunSpec, out: pathlib.Path, dest: pathlib.Path) -> None:
    keep = spec.keep if callable(spec.keep) else sweep.keep or keeps.small_files
    keep(Run(run_folder(spec, out)), dest / spec.kept_name)


def keep_runs(sweep: Sweep, out: pathlib.Path, dest: pathlib.Path) -> list[pathlib.Path]:
    """Keeps every finished kept run of the sweep in ``dest`` (in the sweep's order); the paths
    written."""
    written = []
    for spec in sweep.runs:
        run = Run(run_folder(spec, out))
        if spec.keep is False or not run.finished:
            continue
        _keep_one(sweep, spec, out, dest)
        written.append(dest / spec.kept_name)
    return written


def run_sweep(
    sweep: Sweep,
    out: pathlib.Path,
    jobs: int = 1,
    keep: pathlib.Path | None = None,
    progress: bool = True,
) -> list[Outcome]:
    """Runs the sweep's unfinished runs, ``jobs`` at a time, stage by stage; keeps the finished
    ones in ``keep``. Raises :class:`SweepFailed` naming each failed run and its log (a stage
    with a failed run stops the sweep before the next stage)."""
    from tqdm import tqdm

    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1; got {jobs}")
    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    bar = tqdm(total=len(sweep.runs), desc=sweep.name, unit="run", disable=not progress)
    for stage in sorted({spec.stage for spec in sweep.runs}):
        specs = [spec for spec in sweep.runs if spec.stage == stage]
        todo = []
        for spec in specs:
            if Run(run_folder(spec, out)).finished or kept_before(spec, keep):
                outcomes.append(Outcome(spec, "skipped"))
                bar.update()
            else:
                todo.append(spec)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_launch, sweep, spec, out) for spec in todo]
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                outcomes.append(outcome)
                if outcome.status == "done" and keep is not None and kept_as_folder(outcome.spec):
                    _keep_one(sweep, outcome.spec, out, keep)
                bar.update()
                bar.write(f"{outcome.status}: {outcome.spec.id} ({outcome.seconds:.0f} s)")
        if any(o.status == "failed" for o in outcomes):
            break
    bar.close()
    if keep is not None:
        keep_runs(sweep, out, keep)
    failed = [o.spec for o in outcomes if o.status == "failed"]
    if failed:
        lines = [f"  {spec.id}: see {log_path(spec, out)}" for spec in failed]
        left = len(sweep.runs) - len(outcomes)
        tail = f"; {left} runs of later stages not started" if left else ""
        raise SweepFailed(
            f"sweep {sweep.name}: {len(failed)} of {len(sweep.runs)} runs failed{tail}:\n"
            + "\n".join(lines)
        )
    return outcomes


def main(
    name: str,
    dry_run: bool = False,
    jobs: int = 1,
    keep: pathlib.Path | None = None,
    out: pathlib.Path | None = None,
) -> None:
    """``ordergrad-jax sweep``: the run ids (``dry_run``) or the runs of sweep ``name``."""
    from ordergrad_experiments import sweeps

    sweep = sweeps.get(name)
    if dry_run:
        print("\n".join(spec.id for spec in sweep.runs))
        return
    out = out if out is not None else pathlib.Path("results") / sweep.name
    outcomes = run_sweep(sweep, out, jobs, keep)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped")}
    print(
        f"sweep {sweep.name}: {counts['done']} run, {counts['skipped']} finished before; in {out}"
    )
