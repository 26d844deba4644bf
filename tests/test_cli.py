"""Smoke tests of the `ordergrad-jax` command: the demo and a tiny benchmark run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import ordergrad_jax as og
from experiments import demo
from experiments.bench import transform


def test_demo_rows_match_library():
    rows = demo.run()
    x = np.asarray(demo.REWARDS)
    for row in rows:
        np.testing.assert_allclose(
            row["advantage"], og.lstat_advantage(x, 4, row["objective"]), atol=1e-6
        )
        assert abs(row["advantage"].sum()) < 1e-5


def test_bench_writes_json(tmp_path):
    config = transform.TransformBenchConfig(shapes=((8, 16, 4), (2, 80, 8)), number=1, repeats=1)
    path = transform.main(config, tmp_path)
    record = json.loads(path.read_text())
    assert [r["N"] for r in record["rows"]] == [16, 80]
    assert record["rows"][0]["path"] == "pairwise" and "pairwise_us" not in record["rows"][1]
    assert all(r["ordergrad_over_floor"] > 0 for r in record["rows"])
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temporary file


def test_console_script_runs_demo():
    out = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "demo"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "ReMax" in out.stdout and "advantages sum to 0" in out.stdout
