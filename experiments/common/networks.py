"""Network parts shared by the trainers: the ``tanh`` MLP of the control policies and value
networks and of the pathwise trainer's squashed Gaussian mean."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class MLP(nnx.Module):
    """``tanh`` MLP ``[..., in_dim] -> [..., out_dim]`` (orthogonal init, PureJaxRL style)."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        *,
        out_scale: float,
        rngs: nnx.Rngs,
    ):
        sizes = [in_dim, *hidden]
        init = nnx.initializers.orthogonal
        self.hidden = nnx.List(
            [
                nnx.Linear(a, b, kernel_init=init(np.sqrt(2.0)), rngs=rngs)
                for a, b in itertools.pairwise(sizes)
            ]
        )
        self.out = nnx.Linear(sizes[-1], out_dim, kernel_init=init(out_scale), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.hidden:
            x = jnp.tanh(layer(x))
        return self.out(x)
