"""The transform and envs tables, and the README's SNR figure, come from data committed in
reports/: `ordergrad-jax report NAME --check` passes on the repository and fails, naming the table
and the file, once a cell no longer matches the data."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENTRY = pathlib.Path(sys.executable).with_name("ordergrad-jax")


def _report(*args: str, cwd: pathlib.Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ORDERGRAD_ROOT"}
    return subprocess.run(
        [str(ENTRY), "report", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _copy(tmp_path: pathlib.Path, *paths: str) -> pathlib.Path:
    """A repository root in ``tmp_path`` holding copies of ``paths`` (files or folders)."""
    for rel in paths:
        src, dst = ROOT / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "reports").mkdir(exist_ok=True)
    return tmp_path


def _edit(path: pathlib.Path, marker: str, old: str, new: str) -> None:
    """Replaces the first ``old`` after ``marker`` in ``path``."""
    text = path.read_text()
    at = text.index(old, text.index(marker))
    path.write_text(text[:at] + new + text[at + len(old) :])


def test_readme_transform_table_is_the_first_runs_rows():
    """The README's cells, read back, are the committed run's metrics rounded (not the builder's
    own output compared with itself)."""
    readme = (ROOT / "README.md").read_text()
    body = readme[readme.index("<!-- table:transform-cpu -->") : readme.index("<!-- /table -->")]
    cells = [line.strip("|").split(" | ") for line in body.splitlines()[3:]]
    run = ROOT / "reports" / "transform" / "transform-cpu-1"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(cells) == len(rows) == 4
    for cell, row in zip(cells, rows, strict=True):
        groups, n, k, floor, grpo, ordergrad, path, ratio = (c.strip() for c in cell)
        assert (int(groups), int(n), int(k)) == (row["groups"], row["N"], row["K"])
        assert abs(float(floor) - row["floor_us"]) <= 0.5
        assert abs(float(grpo) - row["grpo_us"]) <= 0.5
        assert abs(float(ordergrad) - row["ordergrad_us"]) <= 0.5
        assert abs(float(ratio) - row["ordergrad_us"] / row["floor_us"]) <= 0.005
        assert path == ("pairwise" if row["N"] <= 32 else "sort")
    config = json.loads((run / "config.json").read_text())
    assert config["provenance"]["load_avg_start"] and config["provenance"]["git_commit"]


def test_h100_table_keeps_both_measurements_of_a_shape_measured_twice():
    doc = (ROOT / "reports" / "transform" / "RESULTS.md").read_text()
    body = doc[doc.index("<!-- table:transform-h100 -->") :]
    body = body[: body.index("<!-- /table -->")]
    data = json.loads((ROOT / "reports" / "transform" / "transform_h100.json").read_text())
    twice = [
        (r["floor_us"], i + 1) for i, r in enumerate(data) if (r["groups"], r["N"]) == (4096, 16)
    ]
    assert len(twice) == 2
    (row,) = [line for line in body.splitlines() if line.startswith("| 4096 | 16 | 4 |")]
    assert (
        f"{twice[0][0]:.1f} / {twice[1][0]:.1f}" in row and f"{twice[0][1]}, {twice[1][1]}" in row
    )
    # 11 distinct shapes, each one row (+ header, separator and the marker line).
    assert len(body.splitlines()) == 1 + 2 + len({(r["groups"], r["N"], r["K"]) for r in data})


def test_transform_check_fails_naming_an_edited_readme_cell_and_report_restores_it(tmp_path):
    root = _copy(tmp_path, "README.md", "reports/transform")
    readme = root / "README.md"
    original = readme.read_text()
    _edit(readme, "<!-- table:transform-cpu -->", "| pairwise |", "| sort |")
    proc = _report("transform", "--check", "--root", str(root))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "README.md: ['transform-cpu']" in proc.stderr
    assert "transform-h100" not in proc.stderr
    proc = _report("transform", "--root", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert readme.read_text() == original


def test_a_table_marked_in_no_file_of_its_document_fails_the_check(tmp_path):
    root = _copy(tmp_path, "README.md", "reports/transform")
    readme = root / "README.md"
    text = readme.read_text()
    start = text.index("<!-- table:transform-cpu -->")
    end = text.index("<!-- /table -->", start) + len("<!-- /table -->")
    readme.write_text(text[:start] + text[end:])
    proc = _report("transform", "--check", "--root", str(root))
    assert proc.returncode == 1
    assert "['transform-cpu'] are not marked" in proc.stderr


def test_transform_check_fails_when_the_data_changes(tmp_path):
    root = _copy(tmp_path, "README.md", "reports/transform")
    data = root / "reports" / "transform" / "transform_h100.json"
    rows = json.loads(data.read_text())
    rows[11]["pairwise_us"] = 100.0  # 65536 x 16
    data.write_text(json.dumps(rows))
    proc = _report("transform", "--check", "--root", str(root))
    assert proc.returncode == 1
    assert "reports/transform/RESULTS.md: ['transform-h100']" in proc.stderr
    assert "README.md: [" not in proc.stderr


def test_envs_check_fails_naming_an_edited_cell(tmp_path):
    root = _copy(tmp_path, "envs/README.md", "reports/envs")
    doc = root / "envs" / "README.md"
    _edit(doc, "<!-- table:DisturbedCartPole-v0 -->", "| 0.246 |", "| 0.250 |")
    proc = _report("envs", "--check", "--root", str(root))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DisturbedCartPole-v0" in proc.stderr and "RiskyGrid-v0" not in proc.stderr


def test_envs_table_cells_are_the_committed_rows():
    run = ROOT / "reports" / "envs" / "return-table"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["task"] for r in rows} == {"RiskyGrid-v0", "DisturbedCartPole-v0"}
    assert all(r["episodes"] == 10000 for r in rows)
    doc = (ROOT / "envs" / "README.md").read_text()
    for r in rows:
        cell = f"| {r['policy']} | {r['mean']:.2f} +- {r['mean_se']:.2f} | {r['cvar']:.2f} +- "
        assert cell in doc, cell
    ledge = next(r for r in rows if r["policy"] == "ledge (row 1)")
    # The ledge's fall rate 1 - 0.992^5 = 3.9 %: mean = 18 (1 - p) + fall (p); falls return < 0.
    assert abs(ledge["mean"] - (18 * 0.961 - 40 * 0.039)) < 4 * ledge["mean_se"] + 0.5


def test_snr_figure_is_drawn_from_the_committed_variance_run(tmp_path):
    """Redrawn from reports/variance/run, the figure equals the committed PNG pixel for pixel;
    from a run whose SNR rows changed, it does not."""
    mpimg = pytest.importorskip("matplotlib.image")
    from ordergrad_experiments.report import variance

    committed = mpimg.imread(ROOT / "reports" / "variance" / "figures" / "snr.png")
    folder = tmp_path / "variance"
    shutil.copytree(ROOT / "reports" / "variance" / "run", folder / "run")
    (folder / "figures").mkdir()
    (path,) = variance.draw_figures(folder)
    assert np.array_equal(mpimg.imread(path), committed)
    metrics = folder / "run" / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    for row in rows:
        if row.get("study") == "snr":
            row["snr"] *= 10.0
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path,) = variance.draw_figures(folder)
    redrawn = mpimg.imread(path)
    assert redrawn.shape != committed.shape or not np.array_equal(redrawn, committed)
