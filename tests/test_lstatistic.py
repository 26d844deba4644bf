"""The batch regime (maths.md §2) against brute-force subset enumeration and the oracle."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ordergrad_jax as og

from conftest import FLOAT, X64, assert_close, tol
from reference import subset_orderstats

SKIP_TAGS = {"fractional_k", "lmoment_reference_weights", "float_rounding_quirk"}
OBJECTIVES = ["ReMax", "TopM:2", "Median", "LowerTailMean:0.25", "TrimM:1", "GMD", "Mean"]


def _group(rng, n, ties=False):
    if ties:
        return rng.integers(-2, 3, size=n).astype(np.float64)
    return rng.normal(size=n)


# ---------------------------------------------------------------------------------------------
# Exactness.


@pytest.mark.parametrize("n", range(1, 10))
@pytest.mark.parametrize("ties", [False, True])
def test_rankwise_outputs_match_brute_force(n, ties, rng):
    for k in range(1, n + 1):
        x = _group(rng, n, ties)
        ref = subset_orderstats(x, k)
        xj = jnp.asarray(x, FLOAT)
        assert_close(og.orderstats(xj, k), ref["v"], scale=3)
        assert_close(og.orderstats_inclusion(xj, k), ref["inclusion"], scale=3)
        if k < n:
            assert_close(og.orderstats_leave_one_out(xj, k), ref["leave_one_out"], scale=3)
            assert_close(
                og.orderstats_advantage(xj, k), ref["inclusion"] - ref["leave_one_out"], scale=3
            )


@pytest.mark.parametrize("n", [2, 3, 5, 8, 9])
@pytest.mark.parametrize("method", ["sort", "pairwise"])
def test_lstat_outputs_match_brute_force(n, method, rng):
    for k in range(1, n + 1):
        for objective in ["ReMax", "Median", "Mean", "TopBot:1"] + (["GMD"] if k > 1 else []):
            alpha = og.rank_weights(objective, k)
            x = _group(rng, n, ties=k % 2 == 0)
            ref = subset_orderstats(x, k)
            xj = jnp.asarray(x, FLOAT)
            assert_close(og.lstat(xj, k, objective), ref["v"] @ alpha, scale=3)
            assert_close(
                og.lstat_weights_by_rank(n, k, objective), og.tables.orderstat_table(n, k) @ alpha
            )
            stat = og.LStatistic.create(n, k, objective)
            assert_close(stat.inclusion(xj, method=method), ref["inclusion"] @ alpha, scale=3)
            if k < n:
                loo = ref["leave_one_out"] @ alpha
                assert_close(stat.leave_one_out(xj, method=method), loo, scale=3)
                assert_close(
                    stat.advantage(xj, method=method), ref["inclusion"] @ alpha - loo, scale=3
                )


@pytest.mark.parametrize("n", [3, 6, 9])
def test_rp_gradient_matches_brute_force(n, rng):
    """d lstat / d x_i = sum over subsets containing i of alpha at i's rank, / C(N, K)."""
    for k in range(1, n + 1):
        x = rng.normal(size=n)  # no ties: the gradient is unique
        for objective in ["ReMax", "TopM:2" if k >= 2 else "Mean", "HarrellDavis:0.3"]:
            alpha = og.rank_weights(objective, k)
            want = alpha @ subset_orderstats(x, k)["grad_weights"]
            got = jax.grad(lambda z, o=objective, kk=k: og.lstat(z, kk, o))(jnp.asarray(x, FLOAT))
            assert_close(got, want)
            assert_close(og.lstat_weights_by_item(x, k, objective), want)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _oracle_outputs(x: jax.Array, k: int, objective: str | tuple[float, ...], rows: jax.Array):
    """Every batch transform of one oracle case, in one compiled program (one compilation per
    case keeps this test's hundreds of shapes affordable)."""
    n = x.shape[0]
    obj = objective if isinstance(objective, str) else jnp.asarray(objective, x.dtype)
    got = {
        "orderstats": og.orderstats(x, k),
        "inclusion": og.orderstats_inclusion(x, k)[rows],
        "lstat": og.lstat(x, k, obj),
        "lstat_inclusion": og.lstat_inclusion(x, k, obj),
        "lstat_weight_by_rank": og.lstat_weights_by_rank(n, k, obj),
    }
    if k < n:
        got |= {
            "leave_one_out": og.orderstats_leave_one_out(x, k)[rows],
            "advantage": og.orderstats_advantage(x, k)[rows],
            "lstat_leave_one_out": og.lstat_leave_one_out(x, k, obj),
            "lstat_advantage": og.lstat_advantage(x, k, obj),
        }
    return got


def test_oracle_batch_cases(oracle):
    checked = 0
    for case in oracle["cases"]:
        if case["kind"] != "batch" or SKIP_TAGS & set(case["tags"]):
            continue
        x = np.asarray(case["rewards"])
        k, rows = case["K"], np.asarray(case["matrix_rows"])
        objective = case["objective"]
        if not isinstance(objective, str):
            objective = tuple(np.asarray(objective, np.float64)[::-1].tolist())
        scale = np.abs(x).max()
        got = _oracle_outputs(jnp.asarray(x, FLOAT), k, objective, jnp.asarray(rows))
        for name, value in got.items():
            want = np.asarray(case[name])
            # float32 keeps ~1e-5 of the reward scale; the float64 bound is 1e-9.
            np.testing.assert_allclose(
                np.asarray(value, np.float64),
                want,
                rtol=tol(1),
                atol=tol(scale),
                err_msg=f"{case['id']} {name}",
            )
        checked += 1
    assert checked >= 50


# ---------------------------------------------------------------------------------------------
# Identities (maths.md §2) as properties.

groups = st.integers(2, 12).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.integers(1, n - 1),
        st.lists(st.integers(-4, 4) | st.floats(-3, 3, width=32), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(groups, st.sampled_from(OBJECTIVES))
def test_identities(group, objective):
    n, k, values = group
    try:
        og.rank_weights(objective, k)
    except ValueError:  # e.g. TrimM:1 needs k >= 3
        objective = "Mean"
    x = jnp.asarray(values, FLOAT)
    v = og.orderstats(x, k)
    q = og.orderstats_inclusion(x, k)
    loo = og.orderstats_leave_one_out(x, k)
    adv = og.orderstats_advantage(x, k)
    scale = float(jnp.max(jnp.abs(x)))
    assert_close(q.mean(0), v, scale)
    assert_close(loo.mean(0), v, scale)
    assert_close(adv.sum(0), np.zeros(k), n * scale)
    assert_close(adv, n / (n - k) * (q - v), scale)
    a = og.lstat_advantage(x, k, objective)
    assert_close(a.sum(), 0.0, n * scale)
    alpha = og.rank_weights(objective, k)
    assert_close(og.lstat(x, k, objective), np.asarray(v, np.float64) @ alpha, scale)
    # equivariance to x -> c x + b (c > 0): values shift and scale, advantages only scale
    c, b = 2.5, -7.0
    assert_close(
        og.lstat(c * x + b, k, objective),
        c * og.lstat(x, k, objective) + b * alpha.sum(),
        abs(b) + c * scale,
    )
    assert_close(og.lstat_advantage(c * x + b, k, objective), c * a, abs(b) + c * scale)
    # ties get equal values
    xs = np.asarray(values, np.float64)
    for i, j in zip(*np.nonzero(xs[:, None] == xs[None, :]), strict=False):
        assert_close(a[i], a[j], scale)
        assert_close(q[i], q[j], scale)


@pytest.mark.parametrize("n", [2, 7, 40])
def test_k_equals_one_is_mean_and_rloo(n, rng):
    x = jnp.asarray(rng.normal(size=n), FLOAT)
    assert_close(og.orderstats(x, 1)[0], np.mean(np.asarray(x, np.float64)), 3)
    rloo = n / (n - 1) * (np.asarray(x, np.float64) - np.mean(np.asarray(x, np.float64)))
    assert_close(og.lstat_advantage(x, 1, "Mean"), rloo, 3)
    assert_close(og.lstat_advantage(x, 1, "ReMax"), rloo, 3)


def test_k_equals_n_is_sorted_group(rng):
    x = jnp.asarray(rng.normal(size=11), FLOAT)
    assert_close(og.orderstats(x, 11), np.sort(np.asarray(x, np.float64)), 3)


def test_columns_of_w_sum_to_one():
    for n, k in [(1, 1), (9, 4), (300, 17), (4096, 512)]:
        np.testing.assert_allclose(og.tables.orderstat_table(n, k).sum(0), 1.0, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Transformations: jit, vmap, grad, batch dims, traced weights, the pytree.


def test_jit_equals_eager_and_batch_dims(rng):
    x = jnp.asarray(rng.normal(size=(3, 2, 10)), FLOAT)
    for fn in (
        lambda z: og.lstat_advantage(z, 3, "TopM:2"),
        lambda z: og.lstat(z, 3, "Median"),
        lambda z: og.orderstats_inclusion(z, 4),
        lambda z: og.lstat_inclusion(z, 2, "GMD"),
    ):
        eager = fn(x)
        assert_close(jax.jit(fn)(x), eager, 3)
        loop = np.stack([[fn(x[i, j]) for j in range(2)] for i in range(3)])
        assert_close(eager, loop, 3)
        assert_close(jax.vmap(jax.vmap(fn))(x), loop, 3)


def test_traced_weights_do_not_recompile(rng):
    x = jnp.asarray(rng.normal(size=(4, 12)), FLOAT)
    traces = []

    @jax.jit
    def adv(alpha):
        traces.append(1)
        return og.lstat_advantage(x, 4, alpha)

    for objective in ["ReMax", "TopM:2", "Median", "CVaR:0.5"]:
        alpha = og.rank_weights(objective, 4)
        assert_close(adv(jnp.asarray(alpha, FLOAT)), og.lstat_advantage(x, 4, objective), 3)
    assert len(traces) == 1
    stacked = jnp.asarray(np.stack([og.rank_weights(o, 4) for o in ["ReMax", "ReMin"]]), FLOAT)
    swept = jax.vmap(lambda a: og.lstat(x, 4, a))(stacked)
    assert_close(swept[1], og.lstat(x, 4, "ReMin"), 3)
    # gradient with respect to the weights: d lstat / d alpha = v (orderstats)
    g = jax.grad(lambda a: og.lstat(x[0], 4, a))(stacked[0])
    assert_close(g, og.orderstats(x[0], 4), 3)


def test_lstatistic_is_a_pytree(rng):
    x = jnp.asarray(rng.normal(size=(5, 20)), FLOAT)
    stats = [og.LStatistic.create(20, 6, o) for o in ["ReMax", "TrimM:1"]]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *stats)
    out = jax.jit(jax.vmap(lambda s: s.advantage(x)))(stacked)
    assert_close(out[1], og.lstat_advantage(x, 6, "TrimM:1"), 3)
    leaves, treedef = jax.tree.flatten(stats[0])
    assert len(leaves) == 7 and jax.tree.unflatten(treedef, leaves).n == 20


def test_sort_and_pairwise_paths_agree(rng):
    x = jnp.asarray(rng.integers(0, 4, size=(6, 24)).astype(np.float64), FLOAT)
    stat = og.LStatistic.create(24, 5, "WinsorizedM:1")
    assert_close(stat.advantage(x, method="sort"), stat.advantage(x, method="pairwise"), 4)


# ---------------------------------------------------------------------------------------------
# Numerics.


@pytest.mark.parametrize(
    ("n", "k"), [(16, 4), (64, 8), (512, 511), (1024, 256), (4096, 64), (4096, 512)]
)
@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_float32_matches_float64(n, k, offset, rng):
    """float32 agrees with a float64 NumPy evaluation to 1e-5 * max(1, max|x|)."""
    x = offset + rng.normal(size=(2, n))
    objective = "LowerTailMean:0.25"
    tabs = og.tables.collapsed(n, k, og.rank_weights(objective, k))
    order = np.argsort(x, axis=-1, kind="stable")
    xs = np.take_along_axis(x, order, -1)
    below = np.concatenate([np.zeros((2, 1)), np.cumsum(xs * tabs.below, -1)[:, :-1]], -1)
    above = np.cumsum((xs * tabs.above)[:, ::-1], -1)[:, ::-1]
    above = np.concatenate([above[:, 1:], np.zeros((2, 1))], -1)
    q_sorted = below + xs * tabs.own + above
    v = xs @ tabs.by_rank
    adv_sorted = n / (n - k) * (q_sorted - v[:, None])
    adv = np.empty_like(adv_sorted)
    np.put_along_axis(adv, order, adv_sorted, -1)
    x32 = jnp.asarray(x, jnp.float32)
    scale = np.abs(x).max()
    np.testing.assert_allclose(
        og.lstat_advantage(x32, k, objective), adv, rtol=0, atol=1e-5 * scale
    )
    np.testing.assert_allclose(og.lstat(x32, k, objective), v, rtol=0, atol=1e-5 * scale)
    q = np.empty_like(q_sorted)
    np.put_along_axis(q, order, q_sorted, -1)
    np.testing.assert_allclose(og.lstat_inclusion(x32, k, objective), q, rtol=0, atol=1e-5 * scale)


def test_nan_stays_in_its_group(rng):
    x = rng.normal(size=(3, 12))
    clean = {name: np.asarray(fn(jnp.asarray(x, FLOAT))) for name, fn in _all_fns().items()}
    x[1, 4] = np.nan
    dirty = {name: np.asarray(fn(jnp.asarray(x, FLOAT))) for name, fn in _all_fns().items()}
    for name in clean:
        np.testing.assert_array_equal(dirty[name][[0, 2]], clean[name][[0, 2]], err_msg=name)
        assert np.all(np.isnan(dirty[name][1])), name
    grad = jax.grad(lambda z: og.lstat(z, 3, "Median").sum())(jnp.asarray(x, FLOAT))
    assert np.all(np.isfinite(np.asarray(grad)[[0, 2]]))


def _all_fns():
    return {
        "lstat": lambda z: og.lstat(z, 3, "TopM:2"),
        "adv_small": lambda z: og.lstat_advantage(z, 3, "Median"),
        "adv_sort": lambda z: og.lstat_advantage(z, 3, "Median", method="sort"),
        "incl": lambda z: og.lstat_inclusion(z, 3, "ReMin"),
        "loo": lambda z: og.lstat_leave_one_out(z, 3, "ReMax"),
        "orderstats": lambda z: og.orderstats(z, 4),
        "rank_adv": lambda z: og.orderstats_advantage(z, 4),
    }


def test_rp_gradient_at_ties_is_the_mean_of_tied_weights():
    x = jnp.asarray([1.0, 3.0, 1.0, 2.0, 3.0, 3.0], FLOAT)
    w = np.asarray(og.lstat_weights_by_rank(6, 3, "GMD"), np.float64)  # ranks: 1,1,2,3,3,3
    want = np.array([w[:2].mean(), w[3:].mean(), w[:2].mean(), w[2], w[3:].mean(), w[3:].mean()])
    assert_close(jax.grad(lambda z: og.lstat(z, 3, "GMD"))(x), want)
    # permutation equivariance of the gradient
    perm = np.array([5, 3, 1, 0, 4, 2])
    assert_close(jax.grad(lambda z: og.lstat(z, 3, "GMD"))(x[perm]), want[perm])


# ---------------------------------------------------------------------------------------------
# Masks.


@pytest.mark.parametrize("n_valid", [0, 2, 3, 4, 7, 10])
def test_masked_group_equals_its_valid_subgroup(n_valid, rng):
    n, k = 10, 3
    x = rng.integers(-2, 3, size=n).astype(np.float64)
    mask = np.zeros(n, bool)
    mask[rng.permutation(n)[:n_valid]] = True
    x_masked = np.where(mask, x, np.nan)  # masked values must not matter, NaN included
    xj = jnp.asarray(x_masked, FLOAT)
    sub = jnp.asarray(x[mask], FLOAT)
    for objective in ["Median", "TopM:2", "ReMin"]:
        adv = og.lstat_advantage(xj, k, objective, mask=mask)
        value = og.lstat(xj, k, objective, mask=mask)
        by_item = og.lstat_weights_by_item(xj, k, objective, mask=mask)
        grad = jax.grad(lambda z, o=objective: og.lstat(z, k, o, mask=mask))(xj)
        assert np.all(np.asarray(adv)[~mask] == 0) and np.all(np.asarray(by_item)[~mask] == 0)
        assert np.all(np.asarray(grad)[~mask] == 0)
        if n_valid > k:
            assert_close(np.asarray(adv)[mask], og.lstat_advantage(sub, k, objective), 3)
        else:
            assert np.all(np.asarray(adv) == 0)
        if n_valid >= k:
            assert_close(value, og.lstat(sub, k, objective), 3)
            assert_close(np.asarray(by_item)[mask], og.lstat_weights_by_item(sub, k, objective))
            assert_close(np.asarray(grad)[mask], og.lstat_weights_by_item(sub, k, objective))
        else:
            assert float(value) == 0.0
    assert bool(og.advantage_defined(mask, k)) == (n_valid > k)


def test_masked_batches_under_jit(rng):
    x = jnp.asarray(rng.normal(size=(4, 8)), FLOAT)
    mask = jnp.asarray(rng.random((4, 8)) < 0.7)
    fn = jax.jit(lambda z, m: og.lstat_advantage(z, 2, "ReMax", mask=m))
    out = fn(x, mask)
    for g in range(4):
        m = np.asarray(mask[g])
        if m.sum() > 2:
            assert_close(np.asarray(out[g])[m], og.lstat_advantage(x[g][m], 2, "ReMax"), 3)
    traced = jax.jit(lambda a: og.lstat_advantage(x, 2, a, mask=mask))
    assert_close(traced(jnp.asarray([0.0, 1.0], FLOAT)), out, 3)


# ---------------------------------------------------------------------------------------------
# Bad input.


def test_bad_inputs():
    x = jnp.zeros((2, 5))
    with pytest.raises(ValueError, match="rank-0"):
        og.lstat(jnp.float32(1.0), 1, "Mean")
    with pytest.raises(ValueError, match="larger than the group size N=5"):
        og.lstat(x, 6, "Mean")
    with pytest.raises(ValueError, match="k <= N - 1"):
        og.lstat_advantage(x, 5, "Mean")
    with pytest.raises(ValueError, match="k <= N - 1"):
        og.orderstats_leave_one_out(x, 5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        og.orderstats(x, 0)
    with pytest.raises(TypeError, match="k must be a Python int"):
        og.lstat(x, 2.0, "Mean")
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        og.lstat(x, 3, jnp.ones(2))
    with pytest.raises(ValueError, match="unknown objective preset"):
        og.lstat_advantage(x, 2, "Maximum")
    with pytest.raises(ValueError, match="mask must have the rewards' shape"):
        og.lstat_advantage(x, 2, "Mean", mask=jnp.ones(5, bool))
    with pytest.raises(TypeError, match="mask must be boolean"):
        og.lstat_advantage(x, 2, "Mean", mask=jnp.ones((2, 5)))
    with pytest.raises(TypeError, match="real"):
        og.lstat(x.astype(jnp.complex64), 2, "Mean")
    with pytest.raises(ValueError, match="group size 5"):
        og.LStatistic.create(4, 2, "Mean").advantage(x)
    with pytest.raises(ValueError, match="masked=True"):
        og.LStatistic.create(5, 2, "Mean").advantage(x, mask=jnp.ones((2, 5), bool))
    with pytest.raises(ValueError, match="method must be one of"):
        og.lstat_advantage(x, 2, "Mean", method="fast")
    with pytest.raises(ValueError, match="k <= N - 1"):
        jax.jit(lambda z: og.lstat_advantage(z, 5, "Mean"))(x)  # checked at trace time
    # integer rewards are accepted and promoted
    assert jnp.issubdtype(og.lstat(jnp.arange(5), 2, "Mean").dtype, jnp.floating)
    assert X64 or og.lstat(x, 2, "Mean").dtype == jnp.float32
