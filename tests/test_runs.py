"""The run reader (ordergrad_experiments.common.runs.Run / find_runs) reads what RunWriter
writes."""

from __future__ import annotations

import json

import pytest

from ordergrad_experiments.common.runs import Run, RunWriter, find_runs, read_jsonl

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these


def _write(root, run_id, rows, finish=True, **extra):
    writer = RunWriter("exp", root, run_id)
    writer.write_config({"lr": 0.1, "estimator": {"name": "grpo"}}, **extra)
    writer.log(rows)
    if finish:
        writer.write_summary("# done\n")
    return writer


def test_run_reads_what_the_writer_wrote(tmp_path):
    rows = [
        {"kind": "train", "seed": 0, "loss": 1.5},
        {"kind": "eval", "seed": 0, "return": 3.0},
        {"phase": "rl", "step": 2, "heldout_pass@1": 0.25},
        {"phase": "sft", "step": 0},
    ]
    writer = _write(tmp_path, "a", rows, seed=7)
    run = Run(writer.path)
    assert run.name == "a"
    assert run.config == {"lr": 0.1, "estimator": {"name": "grpo"}}
    assert run.record["seed"] == 7
    assert run.finished and run.summary == "# done\n"
    assert run.metrics == rows
    assert run.rows("train") == [rows[0]]
    assert run.rows("sft") == [rows[3]]
    assert run.rows() == rows
    assert run.evaluations == [rows[1], rows[2]]
    assert run.provenance["end_utc"] >= run.provenance["start_utc"]
    assert run.wall_s is not None and run.wall_s >= 0


def test_curated_copy_reads_curve_jsonl(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"config": {}, "provenance": {}}))
    (tmp_path / "curve.jsonl").write_text('{"phase": "sft"}\n\n{"phase": "rl", "step": 1}\n')
    run = Run(tmp_path)
    assert run.rows("rl") == [{"phase": "rl", "step": 1}]
    assert not run.finished and run.wall_s is None


def test_find_runs_depth_order_and_finished(tmp_path):
    _write(tmp_path / "sweep", "b-s1", [{"x": 1}])
    _write(tmp_path / "sweep", "a-s0", [{"x": 0}])
    _write(tmp_path / "sweep", "c-s0", [{"x": 2}], finish=False)
    (tmp_path / "sweep" / "exp" / "a-s0" / "checkpoints" / "1").mkdir(parents=True)
    (tmp_path / "sweep" / "exp" / "a-s0" / "checkpoints" / "config.json").write_text("{}")
    assert [r.name for r in find_runs(tmp_path)] == ["a-s0", "b-s1"]
    assert [r.name for r in find_runs(tmp_path, finished=False)] == ["c-s0"]
    assert [r.name for r in find_runs(tmp_path, finished=None)] == ["a-s0", "b-s1", "c-s0"]
    assert [r.name for r in find_runs(tmp_path, "*-s0", finished=None)] == ["a-s0", "c-s0"]
    run_dir = tmp_path / "sweep" / "exp" / "a-s0"
    assert [r.name for r in find_runs(run_dir)] == ["a-s0"]  # a run folder finds itself


def test_find_runs_missing_folder_says_which(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folder"):
        find_runs(tmp_path / "nope")


def test_read_jsonl_skips_blank_lines(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"a": 1}\n\n{"b": 2}\n')
    assert read_jsonl(tmp_path / "x.jsonl") == [{"a": 1}, {"b": 2}]
