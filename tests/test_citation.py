"""Citing and licensing: CITATION.cff, LICENSE, pyproject and ``og.__version__`` agree."""

from __future__ import annotations

import importlib.metadata
import pathlib
import tomllib

import pytest
import yaml

import ordergrad_jax as og

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_citation_names_the_software_version_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == project["version"] == og.__version__
    assert importlib.metadata.version("ordergrad-jax") == og.__version__
    paper = cff["preferred-citation"]
    assert any("2606.06096" in str(i["value"]) for i in paper["identifiers"])
    assert cff["license"] == project["license"]["text"] == "Apache-2.0"


def test_license_file_is_the_declared_license():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_readme_says_how_to_cite():
    readme = (ROOT / "README.md").read_text()
    assert "## Citing" in readme and "CITATION.cff" in readme and "2606.06096" in readme
