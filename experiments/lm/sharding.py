"""Device mesh, partition rules and shardings of the LM loop (``jax.jit`` with shardings).

- Mesh axes ``data`` and ``model`` (``mesh=(d, m)``), or ``data``, ``fsdp``, ``model``
  (``mesh=(d, f, m)``), from :func:`jax.make_mesh`.
- Parameters: tunix's Qwen3 annotates every weight with logical axes; :func:`model.sharding_config`
  maps them to ours (attention heads and MLP hidden units on ``model``, optionally the embedding
  dimension on ``fsdp``). :func:`param_shardings` turns the annotations into ``NamedSharding``s,
  dropping axes the mesh lacks and any axis that does not divide its dimension.
- Batch: the leading (sequence) axis on ``data`` (and ``fsdp`` when present: FSDP shards the
  batch too). Rows are ordered prompt-major with each prompt's N completions contiguous, and the
  number of prompts is a multiple of the data-parallel size, so every group lives on one shard:
  the reward -> advantage transform needs no communication (tested on the compiled HLO).
- Data per process: :func:`rows_from_host` assembles a batch-sharded array from the rows each
  process builds itself (``jax.make_array_from_callback``: a process is asked only for the row
  blocks of its own devices), so on several hosts no process materialises the global batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

COLLECTIVES = (
    "all-reduce",
    "all-gather",
    "reduce-scatter",
    "all-to-all",
    "collective-permute",
    "collective-broadcast",
)


def axis_names(shape: Sequence[int]) -> tuple[str, ...]:
    if len(shape) == 2:
        return ("data", "model")
    if len(shape) == 3:
        return ("data", "fsdp", "model")
    raise ValueError(f"mesh must be (data, model) or (data, fsdp, model); got {tuple(shape)}")


def make_mesh(shape: Sequence[int], devices=None) -> jax.sharding.Mesh:
    """A mesh of ``shape`` over ``devices`` (default: all), axes named by :func:`axis_names`.

    Raises:
      ValueError: the shape does not multiply to the number of devices.
    """
    shape = tuple(int(s) for s in shape)
    names = axis_names(shape)
    devices = jax.devices() if devices is None else list(devices)
    if any(s < 1 for s in shape) or math.prod(shape) != len(devices):
        raise ValueError(
            f"mesh {shape} ({', '.join(names)}) must have positive sizes multiplying to the "
            f"{len(devices)} available devices"
        )
    auto = (jax.sharding.AxisType.Auto,) * len(shape)
    return jax.make_mesh(shape, names, axis_types=auto, devices=devices)


def batch_axes(mesh: jax.sharding.Mesh) -> tuple[str, ...]:
    """The mesh axes the batch is split over."""
    return tuple(a for a in ("data", "fsdp") if a in mesh.axis_names)


def data_parallel_size(mesh: jax.sharding.Mesh) -> int:
    return math.prod(mesh.shape[a] for a in batch_axes(mesh))


def batch_sharding(mesh: jax.sharding.Mesh, ndim: int = 2) -> NamedSharding:
    """Leading axis on the data axes, the rest replicated."""
    return NamedSharding(mesh, P(batch_axes(mesh), *([None] * (ndim - 1))))


def rows_from_host(
    shape: Sequence[int], mesh: jax.sharding.Mesh, rows: Callable[[np.ndarray], np.ndarray]
) -> jax.Array:
    """A global ``[R, ...]`` array with the :func:`batch_sharding` of ``mesh``, built per process.

    Args:
      shape: the global shape ``[R, ...]`` (``R`` a multiple of the data-parallel size).
      mesh: the device mesh (on several hosts: spanning them all).
      rows: ``rows(r) -> [len(r), ...]`` the host rows of the global row numbers ``r``. Each
        process calls it only for the row blocks held by its own devices.

    Returns:
      The array, each device's block placed on it (``jax.make_array_from_callback``).
    """
    shape = tuple(int(d) for d in shape)

    def block(index: tuple[slice, ...]) -> np.ndarray:
        first = np.arange(*index[0].indices(shape[0]))
        return np.asarray(rows(first))[(slice(None), *index[1:])]

    return jax.make_array_from_callback(shape, batch_sharding(mesh, len(shape)), block)


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def _fit(spec: P, shape: tuple[int, ...], mesh: jax.sharding.Mesh) -> P:
    out = []
    for dim, axis in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec)), strict=True):
        ok = axis in mesh.axis_names and dim % mesh.shape[axis] == 0
        out.append(axis if ok else None)
    return P(*out)


def param_shardings(params, mesh: jax.sharding.Mesh):
    """``NamedSharding`` pytree of ``params`` (an ``nnx.State``) from the model's annotations."""
    specs = nnx.get_partition_spec(params)
    return jax.tree.map(
        lambda spec, x: NamedSharding(mesh, _fit(spec, np.shape(x), mesh)), specs, params
    )


def shard_params(params, mesh: jax.sharding.Mesh):
    return jax.device_put(params, param_shardings(params, mesh))


def shardings_of(tree):
    """The ``.sharding`` of every leaf (the explicit in/out shardings of a placed state)."""
    return jax.tree.map(lambda x: x.sharding, tree)


def collectives_in(hlo_text: str) -> list[str]:
    """Names of the cross-device collective ops in compiled HLO text."""
    found = []
    for line in hlo_text.splitlines():
        for op in COLLECTIVES:
            if f" {op}(" in line or f" {op}-start(" in line:
                found.append(op)
    return found


def advantage_step(estimator, mesh: jax.sharding.Mesh):
    """The jitted reward -> advantage transform on ``[P, N]`` groups sharded over the data axes
    (``P`` a multiple of the data-parallel size). Compiles to per-shard code: no collectives."""
    spec = batch_sharding(mesh, 2)
    return jax.jit(estimator, in_shardings=spec, out_shardings=spec)


def on_mesh(tree, mesh: jax.sharding.Mesh):
    """``tree`` with every leaf not already laid out on ``mesh`` replicated over it (optimiser
    counters, PRNG keys, step numbers), so jitted steps with mesh shardings accept it."""

    def place(x):
        sharding = getattr(x, "sharding", None)
        if isinstance(sharding, NamedSharding) and sharding.mesh == mesh:
            return x
        if jax.process_count() == 1:
            return jax.device_put(x, replicated(mesh))
        # On several processes device_put replicates host values only (jax checks that they
        # agree across processes); a typed PRNG key goes as its key data.
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = jax.device_put(np.asarray(jax.random.key_data(x)), replicated(mesh))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return jax.device_put(np.asarray(x), replicated(mesh))

    return jax.tree.map(place, tree)


def init_opt_state(tx, params, mesh: jax.sharding.Mesh):
    """``tx.init(params)`` with moments sharded like ``params`` and scalars replicated.

    A leaf of the optimiser state whose key path ends with a parameter's path (Adam's ``mu`` and
    ``nu`` hold a copy of the parameter tree) gets that parameter's sharding; ``jit`` alone
    would not propagate it (``zeros_like`` does not depend on its input's layout).
    """
    by_path = {
        tuple(path): x.sharding for path, x in jax.tree_util.tree_flatten_with_path(params)[0]
    }
    abstract = jax.eval_shape(tx.init, params)

    def sharding_of(path, _):
        for i in range(len(path)):
            if tuple(path[i:]) in by_path:
                return by_path[tuple(path[i:])]
        return replicated(mesh)

    out = jax.tree_util.tree_map_with_path(sharding_of, abstract)
    return jax.jit(tx.init, out_shardings=out)(params)
