"""The repository stands alone: nothing in it reads, cites or links a folder beside it."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Built from pieces so that this file does not match itself.
FORBIDDEN = ("../" + "shared", "SPEC" + ".md", "shared" + "/oracle")


def _tracked_files() -> list[pathlib.Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_no_tracked_file_points_outside_the_repository():
    files = _tracked_files()
    assert len(files) > 50
    offenders = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        offenders += [f"{path.relative_to(ROOT)}: {s!r}" for s in FORBIDDEN if s in text]
    assert not offenders, "\n".join(offenders)


def test_reference_vectors_and_maths_doc_ship_with_the_repository():
    assert (ROOT / "tests" / "data" / "reference_vectors.json").stat().st_size > 1_000_000
    assert (ROOT / "tests" / "data" / "README.md").exists()
    maths = (ROOT / "docs" / "maths.md").read_text()
    for section in ("§0", "§1", "§2", "§3", "§4", "§5", "§6", "§7"):
        assert f"## {section}" in maths
