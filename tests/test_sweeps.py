"""The sweeps (experiments/sweeps/): each declaration against the runs its results document holds,
and the runner end to end on a tiny experiment (jobs, stages, resume, keep, a failing run)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from ordergrad_experiments import registry, sweeps
from ordergrad_experiments.common.config import resolve_key
from ordergrad_experiments.common.runs import Run, find_runs, is_run
from ordergrad_experiments.sweeps import RunSpec, Sweep, runner
from ordergrad_experiments.sweeps import keep as keeps

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMAND = str(pathlib.Path(sys.executable).parent / "ordergrad-jax")
NOT_COMMITTED = {"brax-variance", "brax-bench"}
"""Sweeps whose results are committed in an older form (reports/brax/variance/rows.json and
reports/brax/bench/*.json, written before run folders): no folder to hold them against."""
IN_PROGRESS: frozenset[str] = frozenset()
"""Sweeps whose runs are committed as they finish (a study longer than a session; the note of
its issue lists what is left): their folder holds some of the kept runs and nothing else
(lm-testbed-study was one until its 50th run, 2026-12-06)."""


@pytest.mark.parametrize("name", sweeps.names())
def test_each_sweep_keeps_exactly_the_committed_runs(name):
    """``--keep`` gives exactly what the document folder holds (run folders and diagnostic
    files): no more, no fewer; where several sweeps declare one folder (the studies of one
    document, made one after another), what they keep together."""
    sweep = sweeps.get(name)
    sharing = [
        sweeps.get(other)
        for other in sweeps.names()
        if set(sweeps.get(other).documents) & set(sweep.documents)
    ]
    if name in NOT_COMMITTED:
        assert not sweep.documents
        return
    assert sweep.documents, f"{name}: no document folder declared"
    committed = sorted(
        p.name
        for d in sweep.documents
        if (ROOT / d).is_dir() or name not in IN_PROGRESS
        for p in (ROOT / d).iterdir()
        if is_run(p) or p.suffix == ".jsonl"  # a document's own RESULTS.md and figures aside
    )
    kept = sorted(run for other in sharing for run in other.kept())
    if name in IN_PROGRESS:
        assert set(committed) <= set(kept)
    else:
        assert all(set(other.documents) == set(sweep.documents) for other in sharing), name
        assert kept == committed


def test_dry_run_through_the_installed_command(capsys):
    """``ordergrad-jax sweep NAME --dry-run`` prints the run ids, one a line, and runs nothing;
    the same in-process for every sweep; an unknown sweep is a usage error (exit 2)."""
    out = subprocess.run(
        [COMMAND, "sweep", "control-risk", "--dry-run"], capture_output=True, text=True, check=True
    ).stdout
    assert out.split("\n")[:-1] == [spec.id for spec in sweeps.get("control-risk").runs]
    from ordergrad_experiments import cli

    for name in sweeps.names():
        assert cli.main(["sweep", name, "--dry-run"]) == 0
        assert capsys.readouterr().out.split() == [spec.id for spec in sweeps.get(name).runs]
    assert cli.main(["sweep", "no-such-sweep", "--dry-run"]) == 2
    assert "no sweep 'no-such-sweep'" in capsys.readouterr().err


def test_list_shows_the_sweeps(capsys):
    from ordergrad_experiments import cli

    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    for name in sweeps.names():
        assert (
            f"  {name}: {sweeps.get(name).description} ({len(sweeps.get(name).runs)} runs)" in text
        )


@pytest.mark.parametrize("name", sweeps.names())
def test_every_override_names_a_config_field(name):
    """Each override of each run (pins included) names a field of its experiment's config (a
    benchmark's for ``bench:NAME``); stages start at 0; a run's keep is known."""
    sweep = sweeps.get(name)
    assert min(spec.stage for spec in sweep.runs) == 0
    configs = {}
    for spec in sweep.runs:
        if spec.experiment not in configs:
            if spec.experiment.startswith(runner.BENCH):
                exp = registry.get_bench(spec.experiment[len(runner.BENCH) :])
            else:
                exp = registry.get(spec.experiment)
            configs[spec.experiment] = exp.config()
        for item in sweep.overrides(spec, "OUT"):
            key, sep, _ = item.partition("=")
            assert sep, item
            resolve_key(configs[spec.experiment], key)


def test_lm_labels_cover_the_methods():
    """The LM sweeps label every method (run-id prefix) their documents' tables show."""
    study = sweeps.get("lm-study")
    assert {spec.id.rsplit("-s", 1)[0] for spec in study.runs if spec.id != "sft"} == set(
        study.labels
    )
    length = sweeps.get("lm-length")
    arms = {spec.id.rsplit("-s", 1)[0] for spec in length.runs if spec.stage == 1}
    assert arms == set(length.labels)
    assert length.labels["top2at4-lp0.2"] == "OrderGrad TopM:2@4, penalty 0.2"
    # the method column of reports/lm/RESULTS.md's study table, in its order (the labels were a
    # table in the report module when that table was made; now the specs give them)
    assert list(study.labels.items()) == [
        ("grpo", "GRPO"),
        ("rloo", "RLOO"),
        ("drgrpo", "Dr.GRPO"),
        ("maxpo4", "MaxPO@4"),
        ("top1at4", "OrderGrad TopM:1@4"),
        ("top2at4", "OrderGrad TopM:2@4"),
        ("top3at4", "OrderGrad TopM:3@4"),
        ("remax8", "OrderGrad ReMax@8"),
        ("pkpo4", "PKPO@4"),
        ("chen4", "Chen pass@4"),
        ("bot2at4", "OrderGrad BotM:2@4"),
    ]
    assert dict(sweeps.get("lm-default").labels) == {
        "grpo": "GRPO",
        "rloo": "RLOO",
        "top2at4": "OrderGrad TopM:2@4",
    }


PLUGIN = '''
"""A tiny experiment and a sweep of it, registered for the runner's test."""
import dataclasses
import os
import pathlib
import time

from ordergrad_experiments import registry, sweeps
from ordergrad_experiments.sweeps import RunSpec, Sweep


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    value: float = 1.0
    fail: bool = False
    tag: str = ""
    seed: int = 0


QUICK = FakeConfig()


def run(config, writer, progress=None):
    writer.write_config(config)
    start = time.time()
    time.sleep(0.5)
    if config.fail:
        raise ValueError("asked to fail")
    (writer.path / "checkpoints").mkdir(exist_ok=True)
    (writer.path / "checkpoints" / "state").write_text("big")
    (writer.path / "figure.png").write_text("png")
    writer.log({"value": config.value, "seed": config.seed, "tag": config.tag,
                "start": start, "end": time.time()})
    writer.write_summary("done\\n")
    return writer.metrics


registry.register("sweep-fake", registry.Entry("a fake", __name__, "FakeConfig"))
FAIL = os.environ.get("SWEEP_FAKE_FAIL", "")
sweeps.register(Sweep(
    "test-fake",
    "the runner's test",
    (
        RunSpec("a", "sweep-fake", ("value=2",), seed=3),
        RunSpec("b", "sweep-fake", ("value=3", f"fail={bool(FAIL)}")),
        RunSpec("c", "sweep-fake", ("tag={out}/c",), stage=1),
        RunSpec("d", "sweep-fake", (), keep=False),
    ),
    pins=("value=1",),
))
'''


def _sweep(args, tmp_path, fail=False):
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "ORDERGRAD_JAX_PLUGINS": "sweep_fake_plugin",
        "SWEEP_FAKE_FAIL": "1" if fail else "",
        "JAX_PLATFORMS": "cpu",
    }
    return subprocess.run(
        [COMMAND, "sweep", "test-fake", *args], capture_output=True, text=True, env=env
    )


@pytest.mark.training  # an end-to-end run: once, in the float32 pass
def test_runner_end_to_end(tmp_path):
    """Two jobs, two stages; a failing run exits 1 naming it and its log; the next call skips
    the finished runs and resumes the failed one by its run id; --keep copies the kept runs'
    small files (no checkpoints, no figures), not the unkept run, each as it finishes; a sweep
    into a fresh folder skips the runs already kept."""
    (tmp_path / "sweep_fake_plugin.py").write_text(textwrap.dedent(PLUGIN))
    out, kept = tmp_path / "out", tmp_path / "kept"
    args = ["--jobs", "2", "--out", str(out), "--keep", str(kept)]
    first = _sweep(args, tmp_path, fail=True)
    assert first.returncode == 1, first.stderr
    assert "1 of 4 runs failed" in first.stderr and "b: see " + str(out / "b.log") in first.stderr
    assert "asked to fail" in (out / "b.log").read_text()
    assert "1 runs of later stages not started" in first.stderr
    done = {run.name for run in find_runs(out)}
    assert done == {"a", "d"}  # stage 1 (c) waits for a stage without failures
    assert sorted(p.name for p in kept.iterdir()) == ["a"]
    second = _sweep(args, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "2 run, 2 finished before" in second.stdout  # b resumed, c run; a and d skipped
    runs = {run.name: run for run in find_runs(out)}
    assert set(runs) == {"a", "b", "c", "d"}
    a, b, c = (runs[i].metrics[0] for i in "abc")
    assert (a["value"], a["seed"], b["value"], c["value"]) == (2.0, 3, 3.0, 1.0)
    assert c["tag"] == f"{out}/c"
    assert c["start"] >= max(a["end"], b["end"])  # stage 1 after stage 0
    assert len(runs["b"].provenance.get("previous", [])) == 1  # resumed in the failed run's folder
    assert sorted(p.name for p in kept.iterdir()) == ["a", "b", "c"]
    assert sorted(p.name for p in (kept / "c").iterdir()) == [
        "config.json",
        "metrics.jsonl",
        "summary.md",
    ]
    third = _sweep(["--out", str(out)], tmp_path)
    assert third.returncode == 0 and "0 run, 4 finished before" in third.stdout
    # a fresh clone resumes from the kept runs: only the unkept run (d) runs again
    fresh = _sweep(["--out", str(tmp_path / "fresh"), "--keep", str(kept)], tmp_path)
    assert fresh.returncode == 0 and "1 run, 3 finished before" in fresh.stdout, fresh.stdout


def test_keeps(tmp_path):
    """The keep functions: the named files; rows appended once (keeping twice changes nothing);
    rows written; the sweep's kept names, deduplicated, in order."""
    from ordergrad_experiments.common.runs import RunWriter

    writer = RunWriter("x", tmp_path, "r")
    writer.write_config({"a": 1})
    writer.log([{"mode": "sharpen"}, {"logit_scale": 2.0}])
    writer.write_summary("s\n")
    run = Run(writer.path)
    keeps.files("config.json", "summary.md")(run, tmp_path / "k" / "r")
    assert sorted(p.name for p in (tmp_path / "k" / "r").iterdir()) == ["config.json", "summary.md"]
    dest = tmp_path / "k" / "rows.jsonl"
    dest.write_text('{"earlier": 1}\n')
    keeps.append_rows(run, dest)
    keeps.append_rows(run, dest)
    rows = [json.loads(line) for line in dest.read_text().splitlines()]
    assert rows == [{"earlier": 1}, {"mode": "sharpen"}, {"logit_scale": 2.0}]
    keeps.write_rows(run, dest)
    assert len(dest.read_text().splitlines()) == 2
    sweep = Sweep(
        "s",
        "",
        (
            RunSpec("x", "e", kept_as="f.jsonl"),
            RunSpec("y", "e", kept_as="f.jsonl"),
            RunSpec("z", "e", keep=False),
            RunSpec("w", "e"),
        ),
    )
    assert sweep.kept() == ["f.jsonl", "w"]
    with pytest.raises(ValueError, match="used twice"):
        Sweep("t", "", (RunSpec("x", "e"), RunSpec("x", "e")))
