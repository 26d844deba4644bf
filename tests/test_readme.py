"""README.md's set-up commands are the ones CI runs."""

from __future__ import annotations

import pathlib
import re

import pytest

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ci_command(name: str) -> str:
    text = (ROOT / ".ci" / "run").read_text()
    return re.search(rf"^{name}='(.*)'$", text, re.M).group(1)


def test_readme_has_ci_commands():
    readme = (ROOT / "README.md").read_text()
    install, test = _ci_command("INSTALL"), _ci_command("TEST")
    assert f"{install} && {test}" in readme
    assert f"{install} && .venv/bin/ordergrad-jax run variance --quick" in readme
    for lane in ("PY312", "JAX012"):
        assert f"{_ci_command('INSTALL_' + lane)} && {_ci_command('TEST_' + lane)}" in readme


def test_the_lanes_cover_every_test_file():
    """The users'-stack list (lane 2's float32 files) names test files that exist, and lane 3's
    library files are among them (they run in float32 on both newer jax versions)."""
    from conftest import USERS_STACK_FILES

    files = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    assert USERS_STACK_FILES <= files and len(files - USERS_STACK_FILES) > 10
    lane3 = {pathlib.Path(f).stem for f in _ci_command("TEST_JAX012").split() if f.endswith(".py")}
    assert lane3 and lane3 <= USERS_STACK_FILES


def test_readme_python_blocks_run():
    """The README's Python snippets run, in order, in one namespace."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    finally:  # the README's example estimator must not leak into later tests' registry
        from ordergrad_jax.estimators import registry

        registry._REGISTRY.pop("median_baseline", None)
    assert namespace["med_adv"].shape == (32, 16) and namespace["c"] == 1.0
    assert namespace["adv"].shape == (32, 16) and namespace["advs"].shape == (3, 32, 16)
    assert namespace["exact_grad"].shape == (3,)
