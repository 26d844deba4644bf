"""Several processes, one JAX cluster: the ``cluster`` part of a config and its start.

Every process of a multi-host run (the workers of a TPU pod slice, several GPU VMs, SLURM tasks,
or processes on one machine) runs the same command; :func:`start` makes them one JAX cluster with
``jax.distributed.initialize`` *before any other JAX call* (the CLI calls it first, before the
compilation cache and the run folder touch a backend). Afterwards ``jax.devices()`` lists every
process's devices, a mesh over all of them spans the hosts, and ``jax.process_index()`` tells the
processes apart (process 0 writes the files).
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """How this process joins a multi-process JAX cluster (all fields empty: one process).

    Set ``coordinator``, ``num_processes`` and ``process_id`` to name the cluster explicitly
    (``--set coordinator=10.0.0.2:8476 --set num_processes=2 --set process_id=0``; every process
    gets the same coordinator and count and its own id), or only ``multihost=True`` to let
    ``jax.distributed.initialize()`` detect them (TPU pod slices, SLURM, or the
    ``JAX_COORDINATOR_ADDRESS``/``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID`` variables).
    """

    multihost: bool = False
    """Join a cluster even when none of the fields below is set (auto-detection)."""
    coordinator: str = ""
    """``HOST:PORT`` of process 0 (it serves the coordination service there)."""
    num_processes: int = 0
    """How many processes the cluster has (0: detect)."""
    process_id: int = -1
    """This process's index in ``0 .. num_processes - 1`` (-1: detect)."""

    @property
    def enabled(self) -> bool:
        return self.multihost or bool(self.coordinator) or self.num_processes > 0

    def validate(self) -> None:
        """Raises ValueError naming the offending field."""
        if self.coordinator and ":" not in self.coordinator:
            raise ValueError(f"coordinator must be HOST:PORT; got {self.coordinator!r}")
        if self.num_processes < 0:
            raise ValueError(f"num_processes must be >= 1 (0: detect); got {self.num_processes}")
        if self.process_id >= 0 and not 0 <= self.process_id < max(self.num_processes, 1):
            raise ValueError(
                f"process_id ({self.process_id}) must lie in 0..num_processes-1 "
                f"(num_processes={self.num_processes})"
            )
        if self.process_id < -1:
            raise ValueError(f"process_id must be >= 0 (-1: detect); got {self.process_id}")


def start(cluster: ClusterConfig) -> bool:
    """Joins the cluster ``cluster`` describes (nothing when it is empty); returns whether it did.

    Must run before any other JAX call of the process (``jax.distributed.initialize`` refuses to
    run once a backend exists). The given fields are passed on, the others left to jax's
    detection. On CPU the processes exchange collectives over TCP with gloo
    (``jax_cpu_collectives_implementation``; set unless the user chose another one), which a mesh
    spanning several CPU processes needs.
    """
    cluster.validate()
    if not cluster.enabled:
        return False
    import jax

    if jax.config.jax_cpu_collectives_implementation in (None, "gloo"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=cluster.coordinator or None,
        num_processes=cluster.num_processes or None,
        process_id=cluster.process_id if cluster.process_id >= 0 else None,
    )
    return True


def start_from(config: Any) -> bool:
    """:func:`start` with ``config.cluster`` if the config has that part (else nothing)."""
    cluster = getattr(config, "cluster", None)
    return start(cluster) if isinstance(cluster, ClusterConfig) else False
