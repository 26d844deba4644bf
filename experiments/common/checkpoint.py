"""Checkpoint/resume for every training loop: jitted chunks of iterations, a checkpoint after each.

One piece, used by the control (gymnax, brax) and LM loops. The whole training state is one pytree
(params, optimiser state, iteration counters, typed PRNG keys, ...); it is saved with orbax after
every chunk together with a JSON ``meta`` dict holding the run's config and every metric row logged
so far. Orbax writes each step into a temporary folder and renames it when complete, so a run killed
at any moment (SIGKILL included) leaves either the previous checkpoint or the new one, never a torn
one; resumed, it repeats at most the chunk that was in flight.

Determinism: the state carries the PRNG keys, and ``chunk_fn`` is a pure jitted function, so a
resumed run executes the same programs on the same inputs as an uninterrupted one; on CPU its
states and metric values are bitwise equal (timing fields such as ``wall_s`` differ, of course).

Multi-host: orbax coordinates the processes (every process calls ``save``/``restore``); metric
files are written by process 0 only (see :class:`ordergrad_experiments.common.runs.RunWriter`).
"""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ordergrad_experiments.common.runs import Run, RunWriter, to_builtin

PyTree = Any

_LEAF = "leaf_{:05d}"


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _leaves_to_dict(state: PyTree) -> dict[str, Any]:
    """Flat ``{"leaf_00000": array, ...}`` with typed PRNG keys replaced by their key data.

    Flattening makes any pytree (nnx.State, NamedTuple, registered dataclass) savable without
    orbax knowing its node types; the structure comes back from the restore template.
    """
    leaves = jax.tree.leaves(state)
    return {
        _LEAF.format(i): jax.random.key_data(x) if _is_key(x) else x for i, x in enumerate(leaves)
    }


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
    """The restore target of one template leaf (typed keys become their uint32 key data)."""
    if _is_key(x):
        x = jax.random.key_data(x)
    x = x if isinstance(x, jax.Array) else np.asarray(x)
    sharding = getattr(x, "sharding", None)
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)


class Checkpointer:
    """Saves and restores ``(state, meta)`` pairs under ``directory/<step>/`` with orbax.

    Args:
      directory: the checkpoint folder (created if missing).
      max_to_keep: how many of the newest checkpoints to keep (the others are deleted).
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
        self.directory = pathlib.Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or ``None`` if there is none."""
        self._manager.reload()
        return self._manager.latest_step()

    def save(self, step: int, state: PyTree, meta: dict[str, Any]) -> None:
        """Saves ``state`` (any pytree of arrays) and ``meta`` (JSON-able) as ``step``; blocks
        until the checkpoint is complete on disk."""
        json.dumps(meta)  # fail here, with the offending value, rather than inside orbax
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(_leaves_to_dict(state)), meta=ocp.args.JsonSave(meta)
        )
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, like: PyTree, step: int | None = None) -> tuple[PyTree, dict[str, Any]]:
        """Restores the checkpoint ``step`` (default: the latest) into the structure of ``like``.

        Args:
          like: a pytree with the saved state's structure, shapes and dtypes (e.g. a fresh
            initial state); its leaves' shardings are where the restored arrays are placed.
          step: which checkpoint; ``None`` for the latest.

        Returns:
          ``(state, meta)``.

        Raises:
          FileNotFoundError: there is no checkpoint (or not that step).
          ValueError: the checkpoint does not fit ``like`` (another config or code version).
        """
        step = self.latest_step() if step is None else step
        if step is None or step not in self._manager.all_steps():
            raise FileNotFoundError(f"no checkpoint {step} in {self.directory}")
        leaves, treedef = jax.tree.flatten(like)
        target = {_LEAF.format(i): _abstract(x) for i, x in enumerate(leaves)}
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()
        )
        try:
            restored = self._manager.restore(step, args=args)
        except (ValueError, KeyError) as err:
            raise ValueError(
                f"checkpoint {step} in {self.directory} does not match the state of this "
                f"config/code ({len(leaves)} leaves expected): {err}"
            ) from err
        saved = restored["state"]
        if len(saved) != len(leaves):
            raise ValueError(
                f"checkpoint {step} in {self.directory} has {len(saved)} arrays; the state of "
                f"this config has {len(leaves)}"
            )
        out = []
        for i, template in enumerate(leaves):
            value = saved[_LEAF.format(i)]
            if np.shape(value) != np.shape(_abstract(template)):
                raise ValueError(
                    f"checkpoint {step}: array {i} has shape {np.shape(value)}, the state of this "
                    f"config needs {np.shape(_abstract(template))}"
                )
            if _is_key(template):
                value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(template))
            out.append(value)
        return jax.tree.unflatten(treedef, out), restored["meta"]

    def close(self) -> None:
        """Releases orbax's resources (waits for pending writes)."""
        self._manager.close()


def _config_of(writer: RunWriter) -> Any:
    if writer.config is not None:  # every process has it; only process 0 has the file
        return writer.config
    run = Run(writer.path)
    return run.config if "config" in run.record else None


def _computed(config: Any) -> Any:
    """The part of a config that decides what a run computes: without ``cluster`` (how the
    processes find each other: an address, this process's id), so a multi-host run resumes
    under another coordinator and every process agrees with the saved config, and without
    ``logger`` (where rows are also sent), so a run resumes with other sinks."""
    if not isinstance(config, dict):
        return config
    return {k: v for k, v in config.items() if k not in ("cluster", "logger")}


def train_in_chunks(
    init_state: PyTree,
    chunk_fn: Callable[[PyTree], tuple[PyTree, PyTree]],
    num_chunks: int,
    writer: RunWriter,
    log_fn: Callable[..., list[dict[str, Any]]],
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
    max_to_keep: int = 2,
) -> PyTree:
    """Runs ``num_chunks`` calls of ``chunk_fn``, checkpointing after each; resumes if possible.

    If ``writer.path / "checkpoints"`` holds a checkpoint, the state and the metric rows logged so
    far are restored from it and training continues from the next chunk; running the same command
    with the same ``--run-id`` therefore resumes an unfinished run (and a finished one returns its
    final state at once). A checkpoint made under another config (``config.json`` differs) is
    refused with a ``ValueError`` rather than silently mixed.

    Args:
      init_state: the state at chunk 0 (a pytree); also the template for restoring.
      chunk_fn: ``state -> (state, chunk_metrics)``, usually jitted; pure (keys live in the state).
      num_chunks: the total number of chunks of the run.
      writer: the run folder (``metrics.jsonl`` is rewritten after every chunk).
      log_fn: ``(chunk_index, state, chunk_metrics) -> rows`` (list of JSON-able dicts). If it takes
        a ``seconds`` keyword, it gets the chunk's wall time (after ``block_until_ready``; the
        first chunk a process runs includes compilation: see the ``first_in_process`` field).
        Every row gets ``chunk``, ``wall_s`` and ``first_in_process`` fields added if absent.
      progress: optional wrapper of the chunk range (e.g. a tqdm bar).
      max_to_keep: checkpoints kept.

    Returns:
      The state after the last chunk.
    """
    if num_chunks < 0:
        raise ValueError(f"num_chunks must be >= 0; got {num_chunks}")
    ckpt = Checkpointer(writer.path / "checkpoints", max_to_keep=max_to_keep)
    config = _config_of(writer)
    state, start = init_state, 0
    if (step := ckpt.latest_step()) is not None:
        state, meta = ckpt.restore(init_state, step)
        if _computed(meta.get("config")) != _computed(config):
            raise ValueError(
                f"{writer.path} holds a checkpoint of a run with another config; resume it with "
                "the same settings or choose a new --run-id"
            )
        writer.metrics = list(meta["rows"])
        writer.log([])
        start = step
    takes_seconds = "seconds" in inspect.signature(log_fn).parameters
    chunks = range(start, num_chunks)
    for i, chunk in enumerate(progress(chunks) if progress else chunks):
        tic = time.perf_counter()
        state, metrics = chunk_fn(state)
        jax.block_until_ready((state, metrics))
        seconds = time.perf_counter() - tic
        if takes_seconds:
            rows = log_fn(chunk, state, metrics, seconds=seconds)
        else:
            rows = log_fn(chunk, state, metrics)
        for row in rows:
            row.setdefault("chunk", chunk)
            row.setdefault("wall_s", seconds)
            row.setdefault("first_in_process", i == 0)
        all_rows = [*writer.metrics, *rows]
        # Checkpoint first (with the rows), then the metrics file: a kill between the two is
        # repaired on resume from the checkpoint's copy of the rows.
        ckpt.save(chunk + 1, state, {"config": config, "rows": _jsonable(all_rows)})
        writer.log(rows)
    ckpt.close()
    return state


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with NumPy/JAX scalars and arrays turned into Python numbers and lists."""
    return json.loads(json.dumps(rows, default=to_builtin))
