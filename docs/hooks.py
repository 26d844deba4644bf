"""MkDocs hooks: the site shows documents that live outside ``docs/`` where they are.

The results documents (``reports/README.md``, ``reports/*/RESULTS.md``, with their figures) and
``envs/README.md`` are read from the repository, not copied into ``docs/``: the site holds them
under the same paths as the repository (``reports/lm/RESULTS.md`` -> ``reports/lm/``), so their
relative links and figures work unchanged. The pages of ``docs/`` are at the site's root
(``docs/maths.md`` -> ``maths.md``).

Every relative link is read as the repository path it names on GitHub (relative to the page's
file in the repository) and rewritten to that file's place in the site. A link to a file or folder
of the repository that is not part of the site (code, run folders, data) keeps its text and loses
its target, since the site has nothing to show there; any other link is left as written, so a
link to a path that does not exist still fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
DOCS = "docs"
# Documents outside docs/ that the site shows, as globs relative to the repository root.
DOCUMENTS = ("reports/README.md", "reports/*/RESULTS.md", "envs/README.md")
# Figures of those documents: every image under reports/ (a few MiB of PNGs).
FIGURES = ("reports/**/*.png", "reports/**/*.svg", "reports/**/*.jpg", "reports/**/*.gif")

# Repository path -> site path of every file of the site (filled by on_files).
_SITE_PATH: dict[str, str] = {}
# Site path -> repository path.
_REPO_PATH: dict[str, str] = {}

_CODE_OR_LINK = re.compile(
    r"(?P<code>(?P<ticks>`+).+?(?P=ticks))"  # inline code: left as it is
    r"|(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)",
    re.DOTALL,
)
_FENCE = re.compile(r"^(?P<fence>```+|~~~+).*?^(?P=fence)\s*$", re.MULTILINE | re.DOTALL)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def documents(root: Path = ROOT) -> list[str]:
    """The repository paths (posix, sorted) of the documents outside ``docs/`` in the site."""
    found = {p for pattern in DOCUMENTS for p in root.glob(pattern) if p.is_file()}
    return sorted(p.relative_to(root).as_posix() for p in found)


def figures(root: Path = ROOT) -> list[str]:
    """The repository paths (posix, sorted) of the figures the site copies."""
    found = {p for pattern in FIGURES for p in root.glob(pattern) if p.is_file()}
    return sorted(p.relative_to(root).as_posix() for p in found)


def package_links(root: Path = ROOT) -> Path:
    """A folder of links ``<package> -> <its folder>`` (``build/docs-packages/``, ignored by
    git) for the import packages whose folder has another name (pyproject.toml's
    ``package-dir``): griffe finds a package by a folder of its name, and ``ordergrad_envs``
    lives in ``envs/``. Returns the folder (mkdocs.yml's Python handler searches it)."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    links = root / "build" / "docs-packages"
    links.mkdir(parents=True, exist_ok=True)
    for package, folder in pyproject["tool"]["setuptools"]["package-dir"].items():
        link = links / package
        if not link.is_symlink():
            link.symlink_to(root / folder, target_is_directory=True)
    return links


def on_startup(command: str, dirty: bool) -> None:
    """Makes :func:`package_links` before any plugin reads mkdocs.yml's handler ``paths``."""
    package_links()


def on_config(config: Any) -> Any:
    """Adds a "Results" section to the nav: the overview, then one page per results document."""
    pages = documents()
    results = [p for p in pages if p.startswith("reports/")]
    section: list[Any] = []
    for path in results:
        parts = path.split("/")
        section.append({"Overview" if len(parts) == 2 else parts[1]: path})
    nav = config["nav"]
    if nav is None or any("Results" in entry for entry in nav if isinstance(entry, dict)):
        return config  # no nav (mkdocs lists every page) or already added
    if section:
        nav.append({"Results": section})
    if "envs/README.md" in pages:
        nav.append({"Environments": "envs/README.md"})
    return config


def on_files(files: Files, config: Any) -> Files:
    """Adds the documents and figures from outside ``docs/`` under their repository paths."""
    _SITE_PATH.clear()
    _REPO_PATH.clear()
    for file in files:
        _remember(f"{DOCS}/{file.src_uri}", file.src_uri)
    for path in documents() + figures():
        file = File(path, str(ROOT), config["site_dir"], config["use_directory_urls"])
        files.append(file)
        _remember(path, path)
    return files


def _remember(repo_path: str, site_path: str) -> None:
    _SITE_PATH[repo_path] = site_path
    _REPO_PATH[site_path] = repo_path


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Rewrites the page's relative links from repository paths to site paths."""
    repo_path = _REPO_PATH.get(page.file.src_uri)
    if repo_path is None:  # a page made by a plugin: nothing to rewrite
        return markdown
    site_path = page.file.src_uri
    out, start = [], 0
    for fence in _FENCE.finditer(markdown):
        out.append(_rewrite_links(markdown[start : fence.start()], repo_path, site_path))
        out.append(fence.group(0))
        start = fence.end()
    out.append(_rewrite_links(markdown[start:], repo_path, site_path))
    return "".join(out)


def _rewrite_links(text: str, repo_path: str, site_path: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("code"):
            return match.group(0)
        target = match.group("target")
        new = site_target(target, repo_path, site_path)
        if new is None:
            return match.group(0)
        if new == "":  # a repository file that is not in the site: keep the text only
            return match.group("text")
        title = match.group("title") or ""
        return f"{match.group('bang')}[{match.group('text')}]({new}{title})"

    return _CODE_OR_LINK.sub(replace, text)


def site_target(target: str, repo_path: str, site_path: str) -> str | None:
    """Where a link ``target`` of the page at ``repo_path`` points in the site.

    Returns:
      The link relative to ``site_path`` (with its ``#fragment``); ``""`` for a file or folder
      of the repository that is not in the site; ``None`` to leave the link as written (a URL, an
      anchor of the same page, an absolute path, or a path that does not exist).
    """
    if _SCHEME.match(target) or target.startswith(("#", "/")):
        return None
    path, sep, fragment = target.partition("#")
    repo_target = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), path))
    if repo_target.startswith("../") or repo_target == "..":
        return None
    candidates = [repo_target, f"{repo_target}/README.md", f"{repo_target}/index.md"]
    for candidate in candidates:
        if candidate in _SITE_PATH:
            new = posixpath.relpath(_SITE_PATH[candidate], posixpath.dirname(site_path) or ".")
            return new + sep + fragment
    if (ROOT / repo_target).exists():
        return ""
    return None
