"""README.md's set-up commands are the ones CI runs."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ci_command(name: str) -> str:
    text = (ROOT / ".ci" / "run").read_text()
    return re.search(rf"^{name}='(.*)'$", text, re.M).group(1)


def test_readme_has_ci_commands():
    readme = (ROOT / "README.md").read_text()
    install, test = _ci_command("INSTALL"), _ci_command("TEST")
    assert f"{install} && {test}" in readme
    assert f"{install} && .venv/bin/ordergrad-jax run variance --quick" in readme
