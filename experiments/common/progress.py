"""Progress bars for loops a person waits on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def sweep(items: Iterable[T], desc: str) -> Iterable[T]:
    """A tqdm bar over ``items`` that clears when done (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(list(items), desc=desc, leave=False, disable=None)
