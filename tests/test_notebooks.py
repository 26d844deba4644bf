"""The notebooks run headless at the quick size and stay paired with their jupytext scripts."""

from __future__ import annotations

import os

import notebook_helpers as nbh
import pytest


@pytest.mark.parametrize("name", ["variance"])
def test_notebook_is_paired(name):
    nbh.assert_paired(name)


@pytest.mark.training
@pytest.mark.parametrize("name", ["variance"])
def test_notebook_executes(name, tmp_path, monkeypatch):
    env = {"ORDERGRAD_NOTEBOOK_OUT": str(tmp_path), "ORDERGRAD_RESULTS": None}
    notebook = nbh.execute(name, tmp_path, monkeypatch, env, timeout=900)
    images = nbh.image_count(notebook)
    assert images >= 5, f"expected the study's figures, got {images} images"
    assert list((tmp_path / "variance").glob("*/summary.md"))
    assert os.environ["ORDERGRAD_NOTEBOOK_OUT"] == str(tmp_path)
