"""Wall-clock timing of jitted functions, for benchmarks (never for test assertions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax


def time_jitted(fn: Callable[..., Any], *args: Any, number: int = 20, repeats: int = 5) -> float:
    """Seconds per call of ``fn(*args)``: compiled and warmed up first, then the best of
    ``repeats`` rounds of ``number`` back-to-back calls (the usual ``timeit`` convention)."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / number)
    return best
