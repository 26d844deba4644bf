"""Boundary checks shared by the library's modules (private; one copy of each validator).

Public functions validate their arguments here at trace time, then call kernels that trust them.
Messages say what was wrong and what is allowed; ``where`` names the public function.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Fractions times a count are rounded with this tolerance (maths.md §4: "we round with a
# tolerance"), so that 0.14 * 50 = 7.000000000000001 counts as 7.
ROUND_TOL = 1e-9


class StaticIntError(TypeError, ValueError):
    """A size that must be a static Python int is not one (both a TypeError and a ValueError:
    the transforms have always raised the first, the estimator registry the second)."""


def static_int(value: Any, what: str = "k", minimum: int = 1) -> int:
    """``value`` as a Python int ``>= minimum`` (a static size such as k or N).

    Raises:
      StaticIntError: ``value`` is not an int (bools and floats are refused, also integral ones).
      ValueError: ``value < minimum``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise StaticIntError(
            f"{what} must be a Python int >= {minimum} (a static size); got "
            f"{value!r} of type {type(value).__name__}"
        )
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}; got {what.rsplit(' ', 1)[-1]}={value}")
    return int(value)


def tail_fraction(alpha: Any, what: str = "alpha") -> float:
    """A static tail fraction in ``(0, 1]`` as a Python float."""
    try:
        value = float(alpha)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError(
            f"{what} must be a Python float in (0, 1] (a static tail fraction); got {alpha!r}"
        ) from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{what} must lie in (0, 1] (the lower-tail fraction); got {alpha!r}")
    return value


def nonnegative_float(value: Any, what: str) -> float:
    """A static finite float ``>= 0``."""
    try:
        out = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError(f"{what} must be a Python float >= 0; got {value!r}") from None
    if not (np.isfinite(out) and out >= 0.0):
        raise ValueError(f"{what} must be a finite float >= 0; got {value!r}")
    return out


def static_bool(value: Any, what: str) -> bool:
    """A static ``True``/``False`` (NumPy bools accepted; ints and strings refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be True or False; got {value!r}")
    return bool(value)


def concrete(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array, or None when it is traced."""
    try:
        return np.asarray(value)
    except jax.errors.TracerArrayConversionError:
        return None


def check_k(k: Any, n: int | None = None, where: str = "", *, leave_one_out: bool = False) -> int:
    """The subset size ``k`` as a Python int, ``1 <= k <= n`` (``k <= n - 1`` with
    ``leave_one_out``: k items among the n - 1 others) when the group size ``n`` is given."""
    prefix = f"{where}: " if where else ""
    k = static_int(k, f"{prefix}k")
    if n is not None and k > n:
        raise ValueError(f"{prefix}k={k} is larger than the group size N={n}; need 1 <= k <= N")
    if n is not None and leave_one_out and k >= n:
        raise ValueError(
            f"{prefix}leave-one-out values and advantages need k <= N - 1 (k "
            f"items among the N - 1 others); got k={k}, N={n}"
        )
    return k


def as_real_float(x: Any, where: str, what: str) -> jax.Array:
    """``x`` as a real floating array: integers and bools promote to the default float."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{where}: {what} must be real, got dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def as_rewards(x: Any, where: str) -> jax.Array:
    """Rewards ``(..., N)`` as a real float array (the group on the last axis)."""
    x = as_real_float(x, where, "rewards")
    if x.ndim < 1:
        raise ValueError(
            f"{where}: rewards must have shape (..., N) with the group on the last "
            f"axis; got a rank-0 array"
        )
    return x


def check_mask(mask: Any, shape: tuple[int, ...], where: str) -> jax.Array | None:
    """An optional bool mask of the rewards' shape (True = valid), or None."""
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"{where}: mask must have the rewards' shape {shape}; got {mask.shape}")
    if mask.dtype != jnp.bool_:
        raise TypeError(f"{where}: mask must be boolean (True = valid), got dtype {mask.dtype}")
    return mask


def check_fraction(
    value: Any, where: str, name: str, *, low_open: bool, high: float | None
) -> jax.Array:
    """A real scalar/array parameter that may be traced; concrete values are range-checked:
    ``0 < value <= high`` (``low_open``) or ``0 <= value`` and finite (``high=None``)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{where}: {name} must be a real number or array, got {value!r}")
    arr = jnp.asarray(value)
    if arr.dtype == jnp.bool_ or not (
        jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
    ):
        raise TypeError(f"{where}: {name} must be a real number or array, got dtype {arr.dtype}")
    host = concrete(value)
    if host is not None:
        host = host.astype(np.float64)
        low_ok = host > 0 if low_open else host >= 0
        high_ok = host <= high if high is not None else np.isfinite(host)
        if not np.all(low_ok & high_ok):
            bad = host[~(low_ok & high_ok)].flat[0]
            allowed = "0 < {0} <= 1" if low_open else "{0} >= 0 (finite)"
            raise ValueError(f"{where}: {name} must satisfy {allowed.format(name)}; got {bad}")
    return arr
