"""The notebooks run headless at the quick size and stay paired with their jupytext scripts."""

from __future__ import annotations

import json
import os

import notebook_helpers as nbh
import pytest

TINY = (
    "unbiased_batches=2000 unbiased_repeats=1 lr_batches=1000 lr_modes=linear rp_dims=1 "
    "rp_batches=300 snr_ks=1,3 snr_ns=5,9 snr_arms=4 snr_batches=300 zoo_batches=300"
)


@pytest.mark.parametrize("name", ["variance"])
def test_notebook_is_paired(name):
    nbh.assert_paired(name)


@pytest.mark.training
@pytest.mark.parametrize("name", ["variance"])
def test_notebook_executes(name, tmp_path, monkeypatch):
    """The notebook's own quick run, made smaller through ``ORDERGRAD_SET`` (the figures and
    tables are the same code at any size; CI's time is the compilations and the batches)."""
    env = {
        "ORDERGRAD_NOTEBOOK_OUT": str(tmp_path),
        "ORDERGRAD_RESULTS": None,
        "ORDERGRAD_SET": TINY,
    }
    notebook = nbh.execute(name, tmp_path, monkeypatch, env, timeout=900)
    images = nbh.image_count(notebook)
    assert images >= 5, f"expected the study's figures, got {images} images"
    (summary,) = (tmp_path / "variance").glob("*/summary.md")
    config = json.loads((summary.parent / "config.json").read_text())["config"]
    assert config["snr_batches"] == 300 and config["rp_dims"] == [1], "ORDERGRAD_SET not applied"
    assert os.environ["ORDERGRAD_NOTEBOOK_OUT"] == str(tmp_path)
