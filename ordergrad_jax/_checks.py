"""Boundary checks shared by the library's modules (private; one copy of each validator).

Public functions validate their arguments here at trace time, then call kernels that trust them.
Messages say what was wrong and what is allowed; ``where`` names the public function.
"""

from __future__ import annotations

from typing import Any

import jax
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
