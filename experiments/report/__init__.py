"""``ordergrad-jax report NAME [--check] [--figures]``: a results document's tables and figures,
from its data.

Each document of ``reports/`` marks its generated tables (see
:mod:`ordergrad_experiments.report.markers`); ``report NAME`` rebuilds them in place from the data
committed beside the document, ``--check`` only compares and fails naming each table that differs.
``--figures`` also redraws the document's figures from the same data (:func:`draw_figures`).
Documents whose runs were not kept have no builder yet: ``report`` says so and checks nothing
(``reports/README.md`` lists them). Every cross-run table and figure of the project is built here,
one module (or package) per document, reading run folders through
:mod:`ordergrad_experiments.common.runs`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable

from ordergrad_experiments.common.io import write_text_atomic
from ordergrad_experiments.report import markers

ROOT_ENV = "ORDERGRAD_ROOT"


@dataclasses.dataclass(frozen=True)
class Document:
    """A results document: its path under the repository root, and the builders of its tables
    (``tables(folder) -> {id: build}``, ``folder`` being the document's own folder), or ``None``
    when no data backs it yet; ``also``: other files (paths under the root) whose marked tables
    the same builders make (a short copy of a table in the README). Each table must be marked in
    one of the files at least; ``figures``: the builder of its figures (below)."""

    path: str
    tables: Callable[[pathlib.Path], dict[str, Callable[[], str]]] | None = None
    also: tuple[str, ...] = ()
    figures: Callable[[pathlib.Path], list[pathlib.Path]] | None = None
    """``figures(folder) -> paths``: redraws the document's figures from the data in ``folder``
    (the document's own folder) into that folder, and returns the paths it wrote (write them
    with :func:`ordergrad_experiments.report.figures.save_png`); ``None``: the document has no
    figures."""


def _brax_tables(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    from ordergrad_experiments.report import brax

    return brax.builders(folder)


def _control_tables(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    from ordergrad_experiments.report import control

    return control.builders(folder)


def _brax_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    from ordergrad_experiments.report import brax

    return brax.draw_figures(folder)


def _control_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    from ordergrad_experiments.report import control

    return control.draw_figures(folder)


def _variance_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    from ordergrad_experiments.report import variance

    return variance.draw_figures(folder)


def _lm_tables(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    from ordergrad_experiments.report import lm

    return lm.builders(folder)


def _lm_figures(folder: pathlib.Path) -> list[pathlib.Path]:
    from ordergrad_experiments.report import lm

    return lm.draw_figures(folder)


def _variance_tables(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    from ordergrad_experiments.report import variance

    return variance.builders(folder)


def _transform_tables(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    from ordergrad_experiments.report import transform

    return transform.builders(folder)


def _guarded_maze_tables(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    from ordergrad_experiments.report import guarded_maze

    return guarded_maze.builders(folder)


def _hedging_tables(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    from ordergrad_experiments.report import hedging

    return hedging.builders(folder)


def _envs_tables(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    from ordergrad_experiments.report import envs

    return envs.builders(folder.parent / "reports" / "envs")  # the data is not in envs/


DOCUMENTS = {
    "brax": Document("reports/brax/RESULTS.md", _brax_tables, figures=_brax_figures),
    "control": Document("reports/control/RESULTS.md", _control_tables, figures=_control_figures),
    "lm": Document("reports/lm/RESULTS.md", _lm_tables, figures=_lm_figures),
    "variance": Document(
        "reports/variance/RESULTS.md", _variance_tables, figures=_variance_figures
    ),
    "transform": Document("reports/transform/RESULTS.md", _transform_tables, also=("README.md",)),
    "envs": Document("envs/README.md", _envs_tables),
    "guarded-maze": Document("reports/guarded-maze/RESULTS.md", _guarded_maze_tables),
    "hedging": Document("reports/hedging/RESULTS.md", _hedging_tables),
}


class TablesDiffer(ValueError):
    """``--check`` found committed tables that differ from their data (exit status 1)."""


def repo_root(start: str | os.PathLike | None = None) -> pathlib.Path:
    """``$ORDERGRAD_ROOT``, else the first folder at or above ``start`` (default: the working
    directory) that holds ``reports/`` and ``pyproject.toml``."""
    if os.environ.get(ROOT_ENV):
        return pathlib.Path(os.environ[ROOT_ENV])
    here = pathlib.Path(start or pathlib.Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "reports").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(
        f"no repository root (reports/, pyproject.toml) above {here}: set {ROOT_ENV}"
    )


def report(name: str, check: bool = False, root: str | os.PathLike | None = None) -> list[str]:
    """Rebuilds (or with ``check`` compares) the marked tables of document ``name`` and of its
    ``also`` files.

    Returns:
      the ids of the tables that changed (rewritten), or with ``check`` that would change.

    Raises:
      KeyError: no document ``name``.
      TablesDiffer: with ``check``, a table differs from its data (or a builder's table is not
        marked in the document); the message names them.
      ValueError: a bad marker or a marked table no builder makes.
    """
    if name not in DOCUMENTS:
        raise KeyError(f"no results document {name!r}; known: {sorted(DOCUMENTS)}")
    doc = DOCUMENTS[name]
    base = repo_root(root)
    texts = {rel: (base / rel).read_text() for rel in (doc.path, *doc.also)}
    if doc.tables is None:
        if any(markers.blocks(text) for text in texts.values()):
            raise ValueError(f"{' + '.join(texts)}: marked tables but no builder makes them")
        print(f"{doc.path}: no committed data behind its tables yet; nothing to build")
        return []
    tables = doc.tables((base / doc.path).parent)
    rendered = {
        rel: markers.render(text, lambda i: tables[i](), list(tables))
        for rel, text in texts.items()
    }
    changed = [i for _, ids, _ in rendered.values() for i in ids]
    where = "; ".join(f"{rel}: {ids}" for rel, (_, ids, _) in rendered.items() if ids)
    missing = [i for i in tables if all(i in miss for _, _, miss in rendered.values())]
    files = " + ".join(texts)
    if missing:
        msg = f"{files}: table(s) {missing} are not marked in the document"
        if check:
            raise TablesDiffer(msg)
        print(f"warning: {msg}")
    if check:
        if changed:
            raise TablesDiffer(
                f"table(s) differ from the committed data ({where}): run "
                f"`ordergrad-jax report {name}` and commit the result"
            )
        print(f"{files}: {len(tables) - len(missing)} tables match their data")
        return []
    for rel, (new, ids, _) in rendered.items():
        if ids:
            write_text_atomic(base / rel, new)
    print(f"{files}: rebuilt {len(tables) - len(missing)} tables; changed: {where or 'none'}")
    return changed


def draw_figures(name: str, root: str | os.PathLike | None = None) -> list[pathlib.Path]:
    """Redraws the figures of document ``name`` from the data committed beside it (its
    ``Document.figures`` builder, in the document's folder under the repository root
    :func:`repo_root`) and prints each path written.

    Returns:
      the paths written (``[]`` for a document without figures, which says so).

    Raises:
      KeyError: no document ``name``.
    """
    if name not in DOCUMENTS:
        raise KeyError(f"no results document {name!r}; known: {sorted(DOCUMENTS)}")
    doc = DOCUMENTS[name]
    if doc.figures is None:
        print(f"{doc.path}: no figures drawn from data; nothing to draw")
        return []
    from ordergrad_experiments.report.figures import use_agg

    use_agg()
    base = repo_root(root)
    written = doc.figures((base / doc.path).parent)
    for path in written:
        print(f"wrote {path}")
    return written
