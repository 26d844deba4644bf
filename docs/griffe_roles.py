"""Griffe extension: the docstrings' Sphinx roles become links of the reference.

The docstrings write cross-references the Sphinx way, ``:func:`lstat```, ``:class:`~a.b.C```,
``:mod:`.registry```. Markdown has no roles, so this turns each into inline code wrapped in an
optional cross-reference: the name is resolved in the scope of the object whose docstring it is
(as Python would: its members, then its module's names), and links to that object's entry when
the reference documents it; a name the reference does not document (a private module, an object
of another library) stays plain code, without a warning.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const):`(?P<name>[^`]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrites ``:role:`name``` in every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)


def _rewrite(obj: griffe.Object, text: str) -> str:
    """``text`` (a docstring of ``obj``) with its roles as optional cross-references."""
    return _ROLE.sub(lambda match: _link(obj, match["name"]), text)


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    """``obj`` and every object defined inside it (aliases, i.e. imports, are skipped)."""
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found += _walk(member)  # type: ignore[arg-type]
    return found


def _link(obj: griffe.Object, name: str) -> str:
    shown = name.lstrip("~.")
    if name.startswith("~"):
        shown = shown.rsplit(".", 1)[-1]
    target = _resolve(obj, name.lstrip("~"))
    code = f"<code>{html.escape(shown)}</code>"
    if target is None:
        return code
    return f'<autoref identifier="{html.escape(target)}" optional>{code}</autoref>'


def _resolve(obj: griffe.Object, name: str) -> str | None:
    """The full path of ``name`` seen from ``obj``: ``.x`` is relative to the module."""
    scope = obj if obj.is_module else obj.module
    if name.startswith("."):
        return f"{scope.path}{name}"
    head, _, rest = name.partition(".")
    for place in (obj, scope):
        try:
            path = place.resolve(head)
        except griffe.NameResolutionError:
            continue
        return f"{path}.{rest}" if rest else path
    return name if "." in name else None
