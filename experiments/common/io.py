"""Atomic result writing: a crashed run never leaves a half-written file a reader could trust."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file: ``0o666`` less the process umask.

    ``tempfile.mkstemp`` creates files with mode 0600; an atomic write chmods its temporary file
    to this mode before the rename, so results stay readable by the group/others the umask allows
    (a shared VM, a notebook server run as another user).
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_temp_path(path: pathlib.Path, suffix: str = ".tmp") -> tuple[int, str]:
    """``(fd, name)`` of a new temporary file beside ``path`` with the default file mode."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, default_file_mode())
    return fd, tmp


def _write_atomic(path: str | os.PathLike, write: Callable[[IO], Any], mode: str) -> pathlib.Path:
    """``write(f)`` into a temporary file beside ``path`` (opened with ``mode``), then
    ``os.replace``; the file gets the mode ``open()`` would give it (:func:`default_file_mode`)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = atomic_temp_path(path)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Writes ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``;
    the file gets the mode ``open()`` would give it (see :func:`default_file_mode`)."""
    return _write_atomic(path, lambda f: f.write(text), "w")


def write_npz_atomic(path: str | os.PathLike, **arrays: Any) -> pathlib.Path:
    """``numpy.savez_compressed`` of ``arrays`` written atomically (as :func:`write_text_atomic`);
    read it back with ``numpy.load(path)``."""
    return _write_atomic(path, lambda f: np.savez_compressed(f, **arrays), "wb")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> pathlib.Path:
    """``json.dumps(obj, indent=2)`` written atomically (see :func:`write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
