"""Writing a results document's figures: one PNG per figure, atomically, reproducibly.

A document's figure builder (``Document.figures`` in :mod:`ordergrad_experiments.report`) draws each
figure from the data committed beside the document and writes it with :func:`save_png`.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from ordergrad_experiments.common.io import atomic_temp_path


def use_agg() -> None:
    """Selects matplotlib's file-only backend (no display is needed to redraw a document)."""
    import matplotlib

    matplotlib.use("Agg")


def save_png(fig: Any, target: str | os.PathLike, dpi: int = 120) -> pathlib.Path:
    """Writes ``fig`` as the PNG ``target`` (atomically: temporary file + rename; the folder is
    made if needed) at ``dpi``, cropped to its content, without matplotlib's version stamp (so a
    redraw under the same matplotlib gives the same bytes), and closes it.

    Returns:
      ``target`` as a path.
    """
    import matplotlib.pyplot as plt

    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = atomic_temp_path(target, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        os.replace(tmp, target)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)
        plt.close(fig)
    return target
