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


def test_package_metadata_types_and_changelog():
    """The package ships its type hints (PEP 561 ``py.typed`` as package data), says which
    Pythons it supports in classifiers that match ``requires-python``, links the paper, and the
    changelog has a section for the released version."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = config["project"]
    assert (ROOT / "ordergrad_jax" / "py.typed").exists()
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["ordergrad_jax"]
    assert "Typing :: Typed" in project["classifiers"]
    versions = {
        c.rsplit(":: ", 1)[1]
        for c in project["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert versions == {"3.11", "3.12"} and project["requires-python"] == ">=3.11,<3.13"
    assert "2606.06096" in project["urls"]["Paper"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{og.__version__}]" in changelog and "## [Unreleased]" in changelog
