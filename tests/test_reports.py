"""Curated results live in reports/, never in the code folders, and every link to them resolves."""

from __future__ import annotations

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
CODE_FOLDERS = ("ordergrad_jax", "experiments", "envs")
DATA_SUFFIXES = {
    ".json", ".jsonl", ".csv", ".tsv", ".png", ".jpg", ".jpeg", ".svg", ".pdf", ".npz", ".npy",
    ".pkl", ".pickle", ".parquet", ".h5", ".hdf5", ".msgpack", ".safetensors", ".log", ".txt",
}  # fmt: skip


def _tracked(*paths: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", *paths], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in out.split("\0") if name]


def test_no_data_file_is_tracked_in_the_code_folders():
    data = [
        name
        for name in _tracked(*CODE_FOLDERS)
        if pathlib.PurePosixPath(name).suffix in DATA_SUFFIXES
    ]
    assert not data, "data files belong in reports/ (curated) or results/ (ignored):\n" + "\n".join(
        data
    )


def test_every_experiment_has_its_results_document():
    for name in ("control", "brax", "lm", "variance", "transform"):
        assert (ROOT / "reports" / name / "RESULTS.md").is_file(), name


def test_results_is_ignored_and_reports_is_not():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "results/x.json"], cwd=ROOT, check=False
    ).returncode
    assert ignored == 0, "results/ (new runs) must be git-ignored"
    for path in ("reports/brax/RESULTS.md", "docs/maths.md"):
        rc = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode
        assert rc == 1, f"{path} is tracked and must not be listed in .gitignore"


def test_relative_links_of_the_documents_resolve():
    """Every relative markdown link or image of a tracked .md file points at an existing path."""
    broken = []
    for name in _tracked("*.md"):
        doc = ROOT / name
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (doc.parent / target.split("#")[0]).exists():
                broken.append(f"{name}: {target}")
    assert not broken, "\n".join(broken)


def test_no_document_names_a_moved_results_path():
    moved = (
        "experiments/control/brax_results", "experiments/control/RESULTS.md",
        "experiments/lm/RESULTS.md", "docs/figures/", "docs/variance_full_summary", "docs/bench/",
    )  # fmt: skip
    offenders = []
    for name in _tracked("*.md", "*.py", "*.sh", "*.ipynb"):
        if name == "tests/test_reports.py":
            continue
        text = (ROOT / name).read_text(errors="ignore")
        offenders += [f"{name}: {m}" for m in moved if m in text]
    assert not offenders, "\n".join(offenders)
