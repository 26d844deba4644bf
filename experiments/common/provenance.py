"""Where, when and with what a run ran: the record ``RunWriter`` puts in every ``config.json``.

Cheap by design: package versions come from ``importlib.metadata`` (no heavy package is
imported), the commit from one ``git`` call with a timeout; outside a git checkout of this
repository (an installed wheel, a copied tree) the commit is ``"unknown"``.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import pathlib
import socket
import subprocess
from typing import Any

# The distributions whose versions a run records (those installed).
PACKAGES = (
    "ordergrad-jax", "jax", "jaxlib", "numpy", "flax", "optax", "orbax-checkpoint", "chex",
    "gymnax", "brax", "mujoco", "mujoco-mjx", "google-tunix",
)  # fmt: skip
# The repository this code runs from when it is a git checkout (experiments/ sits at its root).
CODE_ROOT = pathlib.Path(__file__).resolve().parents[2]


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-12-01T01:02:03+00:00``)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """``{distribution: version}`` for each of ``names`` that is installed."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _git(folder: pathlib.Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(folder: str | os.PathLike = CODE_ROOT) -> dict[str, Any]:
    """``{"git_commit": sha, "git_dirty": bool}`` of the checkout whose root is ``folder``.

    ``git_dirty`` is true when a tracked file differs from the commit (staged or not; untracked
    files do not count, as in ``git describe --dirty``). When ``folder`` is not the root of a git
    checkout (e.g. the package was installed from a wheel into a virtual environment inside some
    other repository), the commit is ``"unknown"`` and the flag ``None``.
    """
    folder = pathlib.Path(folder).resolve()
    top = _git(folder, "rev-parse", "--show-toplevel")
    commit = _git(folder, "rev-parse", "HEAD") if top else None
    if not top or pathlib.Path(top).resolve() != folder or not commit:
        return {"git_commit": "unknown", "git_dirty": None}
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def start_record() -> dict[str, Any]:
    """What is known when a run starts: UTC time, load, host, commit and package versions."""
    return {
        "start_utc": utc_now(),
        "load_avg_start": load_average(),
        "host": socket.gethostname(),
        **git_state(CODE_ROOT),
        "packages": package_versions(),
    }


def device_record() -> dict[str, Any]:
    """The accelerator the run sees: kind and count of the devices, backend, processes."""
    import jax

    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
    }
