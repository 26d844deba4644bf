"""The notebooks run headless at the quick size and stay paired with their jupytext scripts."""

from __future__ import annotations

import os
import pathlib

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["variance"])
def test_notebook_is_paired(name):
    script = jupytext.read(NOTEBOOKS / f"{name}.py")
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    sources = [c.source for c in notebook.cells]
    assert sources == [c.source for c in script.cells], (
        f"notebooks/{name}.ipynb and .py differ: run `jupytext --sync notebooks/{name}.py`"
    )


@pytest.mark.parametrize("name", ["variance"])
def test_notebook_executes(name, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERGRAD_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.delenv("ORDERGRAD_RESULTS", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws PNGs
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    images = sum(
        "image/png" in out.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert images >= 5, f"expected the study's figures, got {images} images"
    assert list((tmp_path / "variance").glob("*/summary.md"))
    assert os.environ["ORDERGRAD_NOTEBOOK_OUT"] == str(tmp_path)
