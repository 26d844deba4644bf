"""The LM loop on 8 simulated CPU devices (a subprocess: the device count is fixed when jax
starts): sharded step == unsharded step, parameter shardings, no collectives in the advantage
step."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import X64

ROOT = pathlib.Path(__file__).resolve().parents[1]

# One subprocess compiles the model on 1 and 8 devices (~20 s of CPU): run once, in float32.
pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def result() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.lm_sharded_check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_sharded_step_equals_unsharded(result):
    assert result["devices"] == 8
    assert result["adv_max_diff"] <= (1e-12 if X64 else 1e-6)
    loss1, loss8 = result["loss"]
    assert loss1 == pytest.approx(loss8, rel=1e-9 if X64 else 1e-4, abs=1e-12 if X64 else 1e-6)
    g1, g8 = result["grad_norm"]
    assert g1 > 0 and g1 == pytest.approx(g8, rel=1e-9 if X64 else 1e-4)
    assert result["param_max_rel_diff"] <= (1e-9 if X64 else 1e-4)
    # Sampling draws the same tokens on 1 and 8 devices (sharding-invariant random bits).
    assert result["same_tokens_fraction"] >= 0.99


def test_parameter_shardings(result):
    specs = result["specs"]
    assert specs["q"] == [None, "model", None]  # heads on model
    assert specs["k"] == [None, "model", None]
    assert specs["o"] == ["model", None, None]
    assert specs["gate"] == [None, "model"]  # MLP hidden on model
    assert specs["down"] == ["model", None]
    assert specs["embed"] == ["model", None]  # vocab on model
    assert result["opt_specs_match"]  # Adam moments sharded like the parameters
    assert result["fsdp_specs"]["q"] == ["fsdp", "model", None]
    assert result["fsdp_specs"]["gate"] == ["fsdp", "model"]


def test_advantage_step_has_no_collectives(result):
    hlo = result["collectives"]
    for name in ("ordergrad", "grpo", "rloo", "maxpo"):
        assert hlo[name] == [], (name, hlo[name])
    assert hlo["control_global_mean"], "the HLO check must see a global reduction's all-reduce"
