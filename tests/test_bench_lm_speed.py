"""experiments/bench/lm_speed.py (``bench lm-speed``): the measurement's run folder and the
learner's op-time split."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from ordergrad_experiments.bench.lm_speed import TRACEME, op_category

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_op_category_names_xla_cpu_operations():
    assert op_category("dot.17") == "dot"
    assert op_category("copy_bitcast_fusion.9") == "copy"
    assert op_category("transpose.3") == "copy"
    assert op_category("add_divide_fusion.1") == "other"
    assert op_category("ynn_fusion.12") == "fused"
    for not_an_op in (
        "ThunkExecutor::Execute",
        "$api.py:3102 block_until_ready",
        "PjitFunction(f)",
    ):
        assert op_category(not_an_op) is None


@pytest.mark.training
def test_speed_writes_its_run_and_splits_the_learner(tmp_path):
    """A 3-step measurement with --profile: the run folder's one row, its shares in [0, 1], the
    op-time split's shares summing to 1 with matrix products in it, and the learner's FLOP/s
    equal to the formula's FLOPs over the learn time."""
    env = {**os.environ, "XLA_FLAGS": TRACEME, "JAX_ENABLE_X64": "0"}
    cmd = [str(pathlib.Path(sys.executable).parent / "ordergrad-jax"), "bench", "lm-speed"]
    cmd += ["--out", str(tmp_path), "--run-id", "t", "--set", "budget.total=3"]
    cmd += ["--set", "num_groups=4", "--set", "profile=True"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    run = tmp_path / "lm-speed" / "t"
    (row,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert (run / "summary.md").is_file()
    assert row["devices"] == 1 and row["config"]["num_groups"] == 4
    assert 0 < row["advantage_share"] < 1 and 0 < row["learner_peak_fraction"] < 1
    assert row["step_s"] >= row["learn_s"] > 0
    assert row["dot_peak_flops"] == max(row["dot_peak_before_flops"], row["dot_peak_after_flops"])
    share = row["learner_op_share"]
    assert set(share) == {"dot", "fused", "copy", "other"}
    assert sum(share.values()) == pytest.approx(1.0) and share["dot"] + share["fused"] > 0.05
    assert all(v > 0 for v in row["learner_op_s"].values() if v)


def test_profile_needs_the_traceme_flag(tmp_path, monkeypatch):
    """profile=True without the XLA flag at the process start: one line saying what to set."""
    from ordergrad_experiments.bench import lm_speed
    from ordergrad_experiments.common.runs import RunWriter

    monkeypatch.setenv("XLA_FLAGS", "")
    with pytest.raises(ValueError, match="XLA_FLAGS"):
        lm_speed.run(lm_speed.LMSpeedBenchConfig(profile=True), RunWriter("lm-speed", tmp_path))
