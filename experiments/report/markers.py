"""Generated tables inside a markdown document, between HTML comment markers.

A generated table sits between an opening and a closing marker (invisible when rendered)::

    <!-- table:control-hopper columns=method,seeds,mean -->
    | method | seeds | mean |
    |---|---|---|
    | ... |
    <!-- /table -->

The opening marker names the table (an id its document's builder knows) and may choose the columns
(``columns=a,b,c``, in that order, from the columns the builder makes). Everything between the
markers belongs to the generator: :func:`render` replaces it, so no table is edited by hand.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

OPTIONS = ("columns",)
_BLOCK = re.compile(
    r"<!-- table:(?P<id>[\w.@-]+)(?P<options>(?: +[\w]+=\S+)*) *-->\n(?P<body>.*?)<!-- /table -->",
    re.S,
)


@dataclasses.dataclass(frozen=True)
class Block:
    """One marked table: its id, marker options, current text and position in the document."""

    id: str
    options: dict[str, str]
    body: str
    start: int  # of the body
    end: int  # of the body


def blocks(text: str) -> list[Block]:
    """The marked tables of ``text``, in order.

    Raises:
      ValueError: an unknown marker option, a table id used twice, or an opening marker without
        its closing one.
    """
    found = []
    for m in _BLOCK.finditer(text):
        options = dict(pair.split("=", 1) for pair in m.group("options").split())
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(
                f"table {m.group('id')}: unknown marker option(s) {unknown}; {OPTIONS}"
            )
        found.append(Block(m.group("id"), options, m.group("body"), m.start("body"), m.end("body")))
    ids = [b.id for b in found]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"table id(s) used twice: {twice}")
    if len(found) != text.count("<!-- table:"):
        raise ValueError("a '<!-- table:ID -->' marker has no '<!-- /table -->' after it")
    return found


def select_columns(table: str, columns: list[str]) -> str:
    """The markdown ``table`` cut down to ``columns`` (header names), in that order.

    Raises:
      ValueError: a column the table does not have (the message lists those it has).
    """
    lines = table.rstrip("\n").split("\n")
    cells = [line.strip().strip("|").split(" | ") for line in lines]
    header = [c.strip() for c in cells[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"no column(s) {missing}; the table has {header}")
    index = [header.index(c) for c in columns]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(row[i].strip() for i in index) + " |" for row in cells[2:]]
    return "\n".join(out) + "\n"


def render(
    text: str, build: Callable[[str], str], known: list[str]
) -> tuple[str, list[str], list[str]]:
    """``text`` with every marked table rebuilt.

    Args:
      text: the document.
      build: ``build(id) -> markdown table`` (all the columns the builder makes).
      known: every table id the builder makes: each must be marked in the document once.

    Returns:
      ``(new_text, changed, missing)``: the rebuilt document, the ids whose text changed and the
      known ids that have no marker in the document.

    Raises:
      ValueError: a marked id the builder does not know, or a bad marker (see :func:`blocks`).
    """
    found = blocks(text)
    unknown = [b.id for b in found if b.id not in known]
    if unknown:
        raise ValueError(f"no table(s) named {unknown}; this document's tables: {known}")
    pieces, changed, last = [], [], 0
    for block in found:
        new = build(block.id)
        if "columns" in block.options:
            new = select_columns(new, block.options["columns"].split(","))
        if new != block.body:
            changed.append(block.id)
        pieces += [text[last : block.start], new]
        last = block.end
    pieces.append(text[last:])
    missing = [i for i in known if i not in {b.id for b in found}]
    return "".join(pieces), changed, missing
