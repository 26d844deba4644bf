"""The sort-free (pairwise) transform is exact on ties and near-ties on every admitted jax.

Regression for jax 0.10: XLA:CPU recomputed ``x - mean`` in each fused consumer and contracted
some copies into fused multiply-adds, so the comparison matrix said an item ranked below itself
and tied items got different values (maths.md §7, "ties"). Every check here is against the sort
path or brute-force subset enumeration, inside and outside an outer ``jit``, including rewards
that the caller computes inside its own ``jit`` (so they are fused into the transform).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_jax as og

from conftest import FLOAT, assert_close
from reference import subset_orderstats

# The group of the jax 0.10 report: in float32, ``x - mean(x)`` rounds item 1 differently with
# and without a fused multiply-add.
REPORTED = [
    -0.5855288505554199,
    -1.3412196636199951,
    -1.4015202522277832,
    0.5026828646659851,
    0.9897130131721497,
]


def _brute(x: np.ndarray, k: int, objective: str) -> dict[str, np.ndarray]:
    ref = subset_orderstats(x, k)
    alpha = og.rank_weights(objective, k)
    out = {"inclusion": ref["inclusion"] @ alpha}
    if k < len(x):
        out["advantage"] = (ref["inclusion"] - ref["leave_one_out"]) @ alpha
    return out


@pytest.mark.parametrize("wrap", ["eager", "jit", "jit-computed-rewards"])
def test_reported_group_is_exact_on_every_path(wrap):
    x = np.asarray(REPORTED, np.float32).astype(np.float64)
    stat = og.LStatistic.create(5, 3, "Median")
    want = _brute(x, 3, "Median")["inclusion"]
    xj = jnp.asarray(x, FLOAT)
    for method in ("pairwise", "sort", "auto"):
        if wrap == "eager":
            got = stat.inclusion(xj, method=method)
        elif wrap == "jit":
            got = jax.jit(lambda r, m=method: stat.inclusion(r, method=m))(xj)
        else:  # the caller centres and scales its rewards inside its own jit: fused inputs
            got = jax.jit(
                lambda r, m=method: stat.inclusion(2.0 * (r - r.mean()), method=m) / 2.0 + r.mean()
            )(xj)
        assert_close(got, want, scale=3)


@pytest.mark.parametrize("n", [3, 4, 6, 9, 16, 32])
@pytest.mark.parametrize("objective", ["ReMax", "Median", "TopM:2", "LowerTailMean:0.25"])
def test_pairwise_equals_sort_on_ties_and_near_ties(n, objective, rng):
    k = min(3, n - 1)
    groups = np.stack(
        [
            rng.integers(0, 2, size=n).astype(np.float64),  # pass/fail rewards: all ties
            rng.integers(-2, 3, size=n).astype(np.float64),
            np.round(rng.normal(size=n), 1),
            rng.normal(size=n),
        ]
    )
    stat = og.LStatistic.create(n, k, objective)
    xj = jnp.asarray(groups, FLOAT)
    for kind in ("inclusion", "advantage"):
        sort = getattr(stat, kind)(xj, method="sort")
        pair = getattr(stat, kind)(xj, method="pairwise")
        fused = jax.jit(
            lambda r, f=kind: getattr(stat, f)(r * 1.0 - r.mean() * 0.0, method="pairwise")
        )(xj)
        for b, g in enumerate(np.asarray(groups)):
            want = _brute(np.asarray(xj[b], np.float64), k, objective)[kind]
            assert_close(pair[b], want, scale=3)
            assert_close(fused[b], want, scale=3)
            assert_close(sort[b], want, scale=3)
            # tied items share one value (up to the float rounding of the scan)
            for v in np.unique(g):
                same = np.asarray(pair[b], np.float64)[g == v]
                assert_close(same, np.full_like(same, same.mean()), scale=3)
