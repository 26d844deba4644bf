"""What the notebook tests share: a notebook stays paired with its jupytext script, runs headless
with nbclient, and its figures are counted.

Notebooks are named by stem: "control" is notebooks/control.ipynb, paired with notebooks/control.py.
jupytext, nbformat and nbclient are imported inside the functions, so a test module that uses
this one costs nothing extra to collect.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest
    from nbformat import NotebookNode

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def read(name: str) -> NotebookNode:
    """notebooks/<name>.ipynb, read as nbformat version 4."""
    import nbformat

    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def assert_paired(name: str, *, code_only: bool = False) -> None:
    """Assert that notebooks/<name>.ipynb has the same cell sources, in order, as its jupytext
    script notebooks/<name>.py; with code_only, only the code cells are compared."""
    import jupytext

    def sources(nb):
        return [c.source for c in nb.cells if not code_only or c.cell_type == "code"]

    assert sources(read(name)) == sources(jupytext.read(NOTEBOOKS / f"{name}.py")), (
        f"notebooks/{name}.ipynb and .py differ: run `jupytext --sync notebooks/{name}.py`"
    )


def execute(
    name: str,
    cwd: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str | None],
    *,
    timeout: int = 600,
) -> NotebookNode:
    """Run notebooks/<name>.ipynb headless in a python3 kernel whose working directory is cwd,
    and return the executed notebook (outputs filled in; the file on disk is not touched).

    Before the kernel starts, each env entry is set through monkeypatch (a value of None removes
    the variable), and MPLBACKEND is always removed so that the kernel's inline backend draws
    PNGs. timeout is nbclient's limit in seconds for each cell.
    """
    from nbclient import NotebookClient

    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = read(name)
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    ).execute()
    return notebook


def image_count(nb: NotebookNode) -> int:
    """The number of image/png outputs over the notebook's code cells."""
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
