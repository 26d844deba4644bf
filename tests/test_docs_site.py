"""The documentation site (mkdocs.yml, docs/): every public name is in the API reference, and the
site builds in strict mode (a broken link or cross-reference, or a docstring the Google-style
parser cannot read, fails it) with the maths, the results documents and their figures.

The build needs the ``docs`` extra (``pip install -e ".[docs]"``); without mkdocs it is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

import ordergrad_jax as og

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"
DIRECTIVE = re.compile(r"^::: +(?P<identifier>[\w.]+)\s*$", re.MULTILINE)


def _directives() -> dict[str, str]:
    """``identifier -> page`` of every ``::: identifier`` directive of the API pages."""
    found: dict[str, str] = {}
    for page in sorted(API.glob("*.md")):
        for match in DIRECTIVE.finditer(page.read_text()):
            identifier = match["identifier"]
            assert identifier not in found, f"{identifier} is documented twice"
            found[identifier] = page.stem
    return found


def _og_public_names() -> list[str]:
    names = [f"ordergrad_jax.{name}" for name in og.__all__]
    for module in (og.estimators, og.metrics, og.exact):
        names += [f"{module.__name__}.{name}" for name in module.__all__]
    return names


def _envs_public_names() -> list[str]:
    envs = pytest.importorskip("ordergrad_envs")  # needs the envs extra (gymnax)
    return ["ordergrad_envs"] + [f"ordergrad_envs.{name}" for name in envs.__all__]


def _results_documents() -> list[pathlib.Path]:
    return sorted(ROOT.glob("reports/*/RESULTS.md"))


def test_every_public_name_of_og_is_in_the_reference():
    documented = _directives()
    missing = [name for name in _og_public_names() if name not in documented]
    assert not missing, f"public names without a '::: name' entry in docs/api/*.md: {missing}"


def test_every_public_name_of_envs_is_in_the_reference():
    documented = _directives()
    missing = [name for name in _envs_public_names() if name not in documented]
    assert not missing, f"public names without a '::: name' entry in docs/api/*.md: {missing}"


def test_the_reference_documents_only_importable_names():
    for identifier in _directives():
        module, _, name = identifier.rpartition(".")
        if not module:
            assert importlib.util.find_spec(identifier) is not None, identifier
            continue
        if module == "ordergrad_envs":
            pytest.importorskip("gymnax")
        assert hasattr(__import__(module, fromlist=[name]), name), identifier


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The site, built once with ``mkdocs build --strict`` into a temporary folder."""
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_site_builds_strict_with_an_entry_for_every_public_name(site):
    names = _og_public_names()
    if importlib.util.find_spec("gymnax") is not None:
        names += _envs_public_names()
    documented = _directives()
    missing = []
    for name in names:
        html = (site / "api" / documented[name] / "index.html").read_text()
        if f'id="{name}"' not in html:  # mkdocstrings' anchor of the entry
            missing.append(name)
    assert not missing, f"no entry in the built reference for: {missing}"


def test_site_has_the_maths_and_every_results_document(site):
    assert "§5" in (site / "maths" / "index.html").read_text()
    documents = _results_documents()
    assert documents, "no reports/*/RESULTS.md"
    for path in documents:
        page = site / path.relative_to(ROOT).with_suffix("") / "index.html"
        assert page.is_file(), f"{path.relative_to(ROOT)} is not in the site"
    assert (site / "reports" / "index.html").is_file()  # reports/README.md
    assert (site / "envs" / "index.html").is_file()  # envs/README.md


def test_every_figure_of_the_site_is_in_it(site):
    images = 0
    for page in site.rglob("*.html"):
        for src in re.findall(r'<img[^>]*\bsrc="([^"]+)"', page.read_text()):
            assert not re.match(r"^[a-z]+:", src), f"{page}: image from outside the site: {src}"
            assert (page.parent / src).resolve().is_file(), f"{page}: missing image {src}"
            images += 1
    figures = sum(text.count("![") for text in map(pathlib.Path.read_text, _results_documents()))
    assert images >= figures > 0


def _hooks():
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_links_are_read_as_repository_paths():
    hooks = _hooks()
    hooks._remember("docs/maths.md", "maths.md")
    hooks._remember("reports/lm/RESULTS.md", "reports/lm/RESULTS.md")
    hooks._remember("reports/README.md", "reports/README.md")
    page = ("docs/maths.md", "maths.md")
    assert hooks.site_target("../reports/lm/RESULTS.md#x", *page) == "reports/lm/RESULTS.md#x"
    assert hooks.site_target("../reports/", *page) == "reports/README.md"
    result = ("reports/lm/RESULTS.md", "reports/lm/RESULTS.md")
    assert hooks.site_target("../../docs/maths.md", *result) == "../../maths.md"
    # In the repository but not in the site (code, a run folder): the text stays, the link goes.
    assert hooks.site_target("../../ordergrad_jax/exact.py", *result) == ""
    assert hooks.site_target("../../README.md", *result) == ""
    # Anything else stays as written, so that mkdocs reports it when it is broken.
    assert hooks.site_target("no-such-file.md", *result) is None
    assert hooks.site_target("../../../outside.md", *result) is None
    assert hooks.site_target("https://arxiv.org/abs/2606.06096", *result) is None
    assert hooks._rewrite_links("see [`x`](../../LICENSE), `[a](b)`", *result) == (
        "see `x`, `[a](b)`"
    )
