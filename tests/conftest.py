"""Shared fixtures: the precision the session runs in and the reference vectors (tests/data)."""

from __future__ import annotations

import json
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# The CLI's persistent compilation cache stays off in tests (they measure cold behaviour and must
# not depend on, or fill, the user's cache); a test that wants it sets its own folder.
os.environ.setdefault("ORDERGRAD_JAX_CACHE", "0")

X64 = bool(jax.config.jax_enable_x64)
FLOAT = jnp.float64 if X64 else jnp.float32

ORACLE_PATH = pathlib.Path(__file__).resolve().parent / "data" / "reference_vectors.json"


def tol(scale: float = 1.0) -> float:
    """Absolute tolerance: 1e-9 * scale in float64, 1e-5 * scale in float32."""
    return (1e-9 if X64 else 1e-5) * max(1.0, scale)


def assert_close(got, want, scale: float = 1.0, rel: float | None = None):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    rel = (1e-9 if X64 else 1e-5) if rel is None else rel
    np.testing.assert_allclose(got, want, rtol=rel, atol=tol(scale))


@pytest.fixture(scope="session")
def oracle() -> dict:
    with ORACLE_PATH.open() as f:
        return json.load(f)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# The library, envs, control, LM and CLI tests: CI runs them in float32 on the users' stack
# (Python 3.12, jax 0.11.2: the second lane of .ci/run) and in float64 on the first lane, with
# the `training` runs of every file (README "Versions"). One list, applied at collection.
USERS_STACK_FILES = frozenset(
    {
        *("test_api", "test_lstatistic", "test_ties", "test_objectives", "test_exact"),
        *("test_estimators", "test_zoo", "test_metrics", "test_method_choice"),
        *("test_envs", "test_brax", "test_control", "test_cli", "test_hedging"),
        "test_guarded_maze",
        "test_hedging_study",
        *("test_lm", "test_lm_learning", "test_lm_pretrained", "test_lm_scratchpad"),
        *("test_lm_sharded", "test_lm_training", "test_integrations_tunix", "test_bench_lm_speed"),
        "test_lm_testbed",
    }
)


def pytest_collection_modifyitems(config, items):
    """Marks every test of :data:`USERS_STACK_FILES` ``users_stack``."""
    for item in items:
        if item.path.stem in USERS_STACK_FILES:
            item.add_marker(pytest.mark.users_stack)
