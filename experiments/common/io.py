"""Atomic result writing: a crashed run never leaves a half-written file a reader could trust."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any


def write_text_atomic(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Writes ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any) -> pathlib.Path:
    """``json.dumps(obj, indent=2)`` written atomically (see :func:`write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
