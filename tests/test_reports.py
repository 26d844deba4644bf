"""Curated results live in reports/, never in the code folders, and every link to them resolves."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from _pytest.mark.expression import Expression

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

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


def test_curated_results_stay_small():
    """reports/ holds per-run configs, evaluations and curves, not checkpoints or raw logs."""
    sizes = {name: (ROOT / name).stat().st_size for name in _tracked("reports")}
    big = {name: size for name, size in sizes.items() if size > 1_000_000}
    assert not big, f"files over 1 MB in reports/: {big}"
    # 16 MB: the curated data of ~200 runs (the LM study's 55 among them), the figures, and the
    # raw evaluation returns the risk studies commit (issue 25: ~180 KB per 48-seed run, npz;
    # the 63-seed hopper pair, 1.2 MB with its per-seed chunk rows)
    assert sum(sizes.values()) < 16_000_000, f"reports/ holds {sum(sizes.values())} bytes"
    assert not [n for n in sizes if "/checkpoints/" in n or n.endswith((".log", ".pdf"))]


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


# --- `ordergrad-jax report`: the tables of a document rebuilt from its committed data ---------

ENTRY = pathlib.Path(sys.executable).with_name("ordergrad-jax")


def _report(*args: str, cwd: pathlib.Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ORDERGRAD_ROOT"}
    return subprocess.run(
        [str(ENTRY), "report", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _copy_brax(tmp_path: pathlib.Path) -> pathlib.Path:
    """A repository root holding a copy of reports/brax (the data and the document)."""
    shutil.copytree(ROOT / "reports" / "brax", tmp_path / "reports" / "brax")
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path / "reports" / "brax" / "RESULTS.md"


@pytest.mark.parametrize(
    "name", ["brax", "control", "envs", "guarded-maze", "hedging", "transform", "variance"]
)
def test_report_check_passes_on_the_committed_documents(name):
    """`report NAME --check` of every document on its committed data (CI runs this once). The lm
    document's tables take the longest to build (the bandit's exact ascent): its check is
    tests/test_report_lm.py's rebuild, which must give back the committed text exactly."""
    proc = _report(name, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tables match their data" in proc.stdout and "not marked" not in proc.stdout
    assert "tables match their data" in proc.stdout


def test_report_check_fails_naming_an_edited_table_and_report_restores_it(tmp_path):
    doc = _copy_brax(tmp_path)
    original = doc.read_text()
    start = original.index("<!-- table:control-hopper ")
    cell = "| 5 | "  # the seeds column of the first row of the table
    at = original.index(cell, start)
    doc.write_text(original[:at] + "| 4 | " + original[at + len(cell) :])
    proc = _report("brax", "--check", "--root", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "control-hopper" in proc.stderr and "control-reacher" not in proc.stderr
    # From a folder below the root, without --root: the root is found above the working dir.
    proc = _report("brax", cwd=doc.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc.read_text() == original


# The figures each document's `report NAME --figures` redraws from its committed data.
REDRAWN = {
    "control": (
        "figures/DisturbedCartPole-v0_curves.png",
        "figures/DisturbedCartPole-v0_returns.png",
        "figures/RiskyGrid-v0_curves.png",
        "figures/RiskyGrid-v0_returns.png",
    ),
    "brax": ("variance/rp_vs_lr.png",),
    "variance": ("figures/snr.png",),
}


@pytest.mark.training  # an end-to-end run: once, in the float32 pass
@pytest.mark.parametrize("name", sorted(REDRAWN))
def test_report_figures_redraws_the_committed_figures(name, tmp_path):
    """The installed `ordergrad-jax report NAME --figures` redraws the document's figures into a
    copy of its folder, from the data committed there: the same image size and (up to font
    rendering) the same pixels as the committed PNGs; the tables still match."""
    mpimg = pytest.importorskip("matplotlib.image")
    np = pytest.importorskip("numpy")
    folder = tmp_path / "reports" / name
    shutil.copytree(ROOT / "reports" / name, folder)
    (tmp_path / "pyproject.toml").write_text("")
    for relative in REDRAWN[name]:
        (folder / relative).unlink()
    proc = _report(name, "--check", "--figures", "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tables match their data" in proc.stdout
    for relative in REDRAWN[name]:
        assert f"wrote {folder / relative}" in proc.stdout, proc.stdout
        redrawn = mpimg.imread(folder / relative)
        committed = mpimg.imread(ROOT / "reports" / name / relative)
        assert redrawn.shape == committed.shape, relative
        assert np.mean(np.abs(redrawn - committed)) < 0.01, relative
    assert "not redrawn" not in proc.stdout  # every figure's data is committed


def test_report_figures_of_a_document_without_figures_says_so(tmp_path, capsys):
    from ordergrad_experiments import report

    (tmp_path / "reports").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    assert report.draw_figures("transform", root=tmp_path) == []
    assert "no figures" in capsys.readouterr().out
    with pytest.raises(KeyError, match="known"):
        report.draw_figures("nope", root=tmp_path)


def test_report_unknown_document_is_bad_usage():
    proc = _report("nope", "--check")
    assert proc.returncode == 2 and "known:" in proc.stderr


def test_every_document_has_data_and_one_without_says_so(tmp_path, monkeypatch, capsys):
    """Every results document has a builder now; a document registered without one (data not
    kept yet) is reported as such and checks nothing."""
    from ordergrad_experiments import report

    assert all(doc.tables is not None for doc in report.DOCUMENTS.values())
    (tmp_path / "reports").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "reports" / "X.md").write_text("# no tables\n")
    monkeypatch.setitem(report.DOCUMENTS, "x", report.Document("reports/X.md"))
    assert report.report("x", check=True, root=tmp_path) == []
    assert "no committed data" in capsys.readouterr().out


def test_select_columns_and_bad_markers():
    from ordergrad_experiments.report import markers

    table = "| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n"
    assert markers.select_columns(table, ["c", "a"]) == "| c | a |\n|---|---|\n| 3 | 1 |\n"
    with pytest.raises(ValueError, match=r"no column\(s\) \['d'\]"):
        markers.select_columns(table, ["d"])
    text = "x\n<!-- table:t columns=b -->\nold\n<!-- /table -->\ny\n"
    new, changed, missing = markers.render(text, lambda i: table, ["t", "u"])
    assert new == "x\n<!-- table:t columns=b -->\n| b |\n|---|\n| 2 |\n<!-- /table -->\ny\n"
    assert changed == ["t"] and missing == ["u"]
    with pytest.raises(ValueError, match="no table"):
        markers.render(text, lambda i: table, ["u"])
    with pytest.raises(ValueError, match="unknown marker option"):
        markers.blocks("<!-- table:t rows=1 -->\n<!-- /table -->")
    with pytest.raises(ValueError, match="no '<!-- /table -->'"):
        markers.blocks("<!-- table:t -->\n| a |\n")


def test_ci_checks_every_document():
    """CI checks every document the report command knows: the test above covers each, and CI's
    float32 pass (.ci/run's TEST, README's test command) selects it: its marker expression is
    true for the test's marks (conftest's ``users_stack`` included), and it has no ``-k``."""
    from ordergrad_experiments.report import DOCUMENTS

    from conftest import USERS_STACK_FILES

    check = test_report_check_passes_on_the_committed_documents
    (mark,) = [m for m in check.pytestmark if m.name == "parametrize"]
    # lm: tests/test_report_lm.py's byte-exact rebuild (a `once` test of a file outside the
    # users' stack, so the same float32 pass selects it)
    assert sorted([*mark.args[1], "lm"]) == sorted(DOCUMENTS)
    marks = {m.name for m in [*check.pytestmark, pytestmark]}
    if pathlib.Path(__file__).stem in USERS_STACK_FILES:
        marks.add("users_stack")
    ci = (ROOT / ".ci" / "run").read_text()
    test = re.search(r"^TEST='(.*)'$", ci, re.M)
    assert test, "no TEST= line in .ci/run"
    first_pass = test.group(1).split("&&")[0].split("-m pytest", 1)[1]
    assert " -k " not in first_pass, first_pass
    selection = re.search(r' -m "([^"]*)"', first_pass)
    import test_report_lm

    lm_marks = {test_report_lm.pytestmark.name}  # its file is outside the users' stack
    assert "users_stack" not in lm_marks and "test_report_lm" not in USERS_STACK_FILES
    if selection:
        expression = Expression.compile(selection.group(1))
        for m in (marks, lm_marks):
            assert expression.evaluate(lambda name, m=m, **_: name in m), (selection.group(1), m)


def test_no_normal_interval_outside_the_stats_module():
    """One convention (ordergrad_experiments.common.stats: Student t with n - 1 df): no code
    computes a "1.96 SE" interval of its own."""
    offenders = [
        name
        for name in _tracked("experiments/*.py", "ordergrad_jax/*.py", "envs/*.py")
        if name != "experiments/common/stats.py"
        and re.search(r"(?<![\d.])1\.96(?!\d)", (ROOT / name).read_text())
    ]
    assert not offenders, offenders
