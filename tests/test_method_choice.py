"""method="auto" picks the pairwise path on CPU for small groups and the sort elsewhere."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import ordergrad_jax as og


def _has_sort(fn, x) -> bool:
    return " sort[" in str(jax.make_jaxpr(fn)(x))


def test_backend_thresholds():
    assert og.sort_free_max_n("cpu") == og.SORT_FREE_MAX_N == 32
    assert og.sort_free_max_n("gpu") == 0 and og.sort_free_max_n("tpu") == 0
    assert og.sort_free_max_n() == og.sort_free_max_n(jax.default_backend())


@pytest.mark.parametrize("n", [8, 32, 33, 64])
def test_auto_path_follows_the_threshold(n):
    x = np.random.default_rng(n).normal(size=(3, n)).astype(np.float32)
    stat = og.LStatistic.create(n, 4, "Median")
    pairwise = n <= og.sort_free_max_n()
    assert _has_sort(lambda z: stat.advantage(z), x) != pairwise
    assert not _has_sort(lambda z: stat.advantage(z, method="pairwise"), x)
    assert _has_sort(lambda z: stat.advantage(z, method="sort"), x)
    np.testing.assert_allclose(
        stat.advantage(x, method="pairwise"), stat.advantage(x, method="sort"), atol=1e-5
    )
