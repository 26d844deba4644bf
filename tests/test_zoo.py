"""The estimator zoo (maths.md §5): each estimator against its definition by brute force, the
identities between them, unbiasedness where the paper claims it, masks and bad input; and the
consumers that read the specs (the variance study of the zoo, the control trainer) taking a user's
estimator with no other edit.

References are written here from the definitions: k-subsets of a small group are enumerated with
itertools. Monte Carlo checks use fixed seeds and 4-standard-error bounds with a power check, as in
test_estimators.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_jax as og
from ordergrad_jax import estimators as est

from conftest import FLOAT, X64, assert_close, tol

NAMES = {
    "ordergrad",
    "reinforce",
    "rloo",
    "grpo",
    "dr_grpo",
    "pkpo",
    "maxpo",
    "passk_chen",
    "cvar_pg",
}

# (name, params, smallest valid count n it needs, sums to zero over a group, binary rewards)
CASES = [
    ("reinforce", {}, 1, False, False),
    ("rloo", {}, 2, True, False),
    ("grpo", {}, 1, True, False),
    ("dr_grpo", {}, 1, True, False),
    ("ordergrad", {"k": 3, "objective": "TopM:2"}, 4, True, False),
    ("pkpo", {"k": 3, "variant": "s"}, 3, False, False),
    ("pkpo", {"k": 3, "variant": "s_loo"}, 4, True, False),
    ("pkpo", {"k": 3, "variant": "s_loo_minus_one"}, 3, False, False),
    ("maxpo", {"k": 3}, 4, True, False),
    ("passk_chen", {"k": 3}, 3, True, True),
    ("passk_chen", {"k": 3, "normalize": False}, 3, True, True),
    ("cvar_pg", {"alpha": 0.3}, 1, False, False),
]
CASE_IDS = [f"{name}-{'-'.join(map(str, p.values()))}" if p else name for name, p, *_ in CASES]


def _subsets(n: int, k: int):
    return itertools.combinations(range(n), k)


def _group(rng, n, *, ties=False, binary=False):
    if binary:
        return rng.integers(0, 2, size=n).astype(np.float64)
    if ties:
        return rng.integers(-2, 3, size=n).astype(np.float64)
    return rng.normal(size=n)


# ---------------------------------------------------------------------------------------------
# Brute-force references (NumPy float64, one group).


def ref_include_one_max(x, k):
    """q_i: the mean of max x_I over the k-subsets I that contain i."""
    return np.array(
        [np.mean([x[list(s)].max() for s in _subsets(x.size, k) if i in s]) for i in range(x.size)]
    )


def ref_max_at_k(x, k):
    """The U-statistic rho(n, k): the mean of max x_I over all k-subsets."""
    return np.mean([x[list(s)].max() for s in _subsets(x.size, k)])


def ref_pkpo(x, k, variant):
    n = x.size
    total = math.comb(n, k)
    s = (
        np.array([sum(x[list(sub)].max() for sub in _subsets(n, k) if i in sub) for i in range(n)])
        / total
    )
    if variant == "s":
        return s
    if variant == "s_loo":
        return s - (k / n) * np.array([ref_max_at_k(np.delete(x, i), k) for i in range(n)])
    # s_loo_minus_one: per subset containing i, the max minus the max of its k-1 other members
    return (
        np.array(
            [
                sum(
                    x[list(sub)].max() - x[[m for m in sub if m != i]].max()
                    for sub in _subsets(n, k)
                    if i in sub
                )
                for i in range(n)
            ]
        )
        / total
    )


def ref_maxpo(x, k):
    """L2O: q_i - (1/(n-1)) sum_{j != i} (include-j max@k in the group without i)."""
    n = x.size
    q = ref_include_one_max(x, k)
    out = np.zeros(n)
    for i in range(n):
        baseline = []
        for j in range(n):
            if j == i:
                continue
            rest = [m for m in range(n) if m not in (i, j)]
            vals = [max([x[j], *x[list(sub)]]) for sub in itertools.combinations(rest, k - 1)]
            baseline.append(np.mean(vals))
        out[i] = q[i] - np.mean(baseline)
    return out


def ref_chen(x, k, normalize=True):
    """Mean over the k-subsets containing i of (pass@k of the subset - group mean) / group std."""
    subs = list(_subsets(x.size, k))
    reward = np.array([x[list(s)].max() for s in subs])
    mean, std = reward.mean(), reward.std()  # std over the subsets (population)
    adv = np.array(
        [
            np.mean([r - mean for s, r in zip(subs, reward, strict=True) if i in s])
            for i in range(x.size)
        ]
    )
    if not normalize:
        return adv
    return adv / std if std > 0 else np.zeros_like(adv)


def ref_cvar_pg(x, alpha):
    n = x.size
    var = np.sort(x)[math.ceil(alpha * n - 1e-9) - 1]
    return (x - var) * (x <= var) / (alpha * n)


def _np(a):
    return np.asarray(a, np.float64)


# ---------------------------------------------------------------------------------------------
# The registry.


def test_available_lists_every_estimator():
    names = est.available()
    assert set(names) == NAMES
    assert all(isinstance(v, str) and v for v in names.values())
    for name, params, *_ in CASES:
        fn = est.get(name, **params)
        assert callable(fn) and name in fn.__doc__


def test_names_are_case_insensitive_with_aliases():
    x = jnp.asarray([0.3, -1.0, 2.0, 0.5], FLOAT)
    assert_close(est.get("Dr.GRPO")(x), est.dr_grpo(x))
    assert_close(est.get("CVaR-PG", alpha=0.5)(x), est.cvar_pg(x, alpha=0.5))
    assert_close(est.get("MaxPO", k=2)(x), est.maxpo(x, k=2))
    assert_close(
        est.get("pkpo", k=2, variant="s_loo-1")(x), est.pkpo(x, k=2, variant="s_loo_minus_one")
    )


@pytest.mark.parametrize(("name", "params", "min_n", "zero_sum", "binary"), CASES, ids=CASE_IDS)
def test_jit_vmap_and_batch_dims_agree(name, params, min_n, zero_sum, binary):
    rng = np.random.default_rng(1)
    x = jnp.asarray(
        np.stack([[_group(rng, 8, binary=binary) for _ in range(3)] for _ in range(2)]), FLOAT
    )  # (2, 3, 8)
    fn = est.get(name, **params)
    eager = fn(x)
    assert eager.shape == x.shape and eager.dtype == x.dtype
    assert_close(jax.jit(fn)(x), eager)
    assert_close(jax.vmap(jax.vmap(fn))(x), eager)
    assert_close(fn(x[1, 2]), eager[1, 2])


# ---------------------------------------------------------------------------------------------
# Each estimator against its definition.


def test_mean_baselines_match_definitions(rng):
    x = rng.normal(size=(4, 6)) * 3 + 1
    xf = jnp.asarray(x, FLOAT)
    n = x.shape[-1]
    mean = x.mean(-1, keepdims=True)
    std = x.std(-1, keepdims=True)  # population (ddof = 0)
    loo_mean = (x.sum(-1, keepdims=True) - x) / (n - 1)
    assert_close(est.get("reinforce")(xf), x, scale=10)
    assert_close(est.get("rloo")(xf), x - loo_mean, scale=10)
    assert_close(est.get("rloo")(xf), n / (n - 1) * (x - mean), scale=10)
    assert_close(est.get("dr_grpo")(xf), x - mean, scale=10)
    assert_close(est.get("grpo")(xf), (x - mean) / (std + 1e-6), scale=10)
    assert_close(est.get("grpo", eps=0.5)(xf), (x - mean) / (std + 0.5), scale=10)
    # Dr. GRPO is RLOO shrunk by (N-1)/N, hence unbiased for (N-1)/N grad E[R] only
    assert_close(est.get("dr_grpo")(xf), (n - 1) / n * est.get("rloo")(xf), scale=10)
    # a constant group has no GRPO signal (no 0/0), whatever eps
    const = jnp.full((5,), 2.0, FLOAT)
    assert_close(est.get("grpo", eps=0.0)(const), np.zeros(5))


def test_ordergrad_is_lstat_advantage(rng):
    x = jnp.asarray(rng.normal(size=(3, 7)), FLOAT)
    for objective in ("ReMax", "Median", "LowerTailMean:0.5"):
        assert_close(
            est.get("ordergrad", k=4, objective=objective)(x), og.lstat_advantage(x, 4, objective)
        )
    # K = 1 "Mean" is RLOO
    assert_close(est.get("ordergrad", k=1, objective="Mean")(x), est.rloo(x), scale=3)


# Each variant's domain: s: k <= n; s_loo: k <= n - 1; s_loo_minus_one: 2 <= k <= n.
PKPO_SIZES = [
    (variant, n, k)
    for variant in est.PKPO_VARIANTS
    for n, k in [(5, 1), (5, 2), (6, 3), (6, 5), (6, 6), (7, 4)]
    if (variant, k) not in (("s_loo", n), ("s_loo_minus_one", 1))
]


@pytest.mark.parametrize(("variant", "n", "k"), PKPO_SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_pkpo_matches_subset_definition(variant, n, k, ties):
    rng = np.random.default_rng(10 * n + k)
    x = _group(rng, n, ties=ties)
    got = est.get("pkpo", k=k, variant=variant)(jnp.asarray(x, FLOAT))
    assert_close(got, ref_pkpo(x, k, variant), scale=3)


def test_pkpo_identities(rng):
    n, k = 7, 3
    x = rng.normal(size=n)
    xf = jnp.asarray(x, FLOAT)
    s = _np(est.pkpo(xf, k=k, variant="s"))
    # s = (k/n) q and its sum is k rho(n, k)
    assert_close(s, k / n * ref_include_one_max(x, k), scale=3)
    assert_close(s.sum(), k * ref_max_at_k(x, k), scale=3)
    # s_loo_minus_one = s - (k/n) rho_{-i}(n-1, k-1), and it is >= 0
    loo_m1 = _np(est.pkpo(xf, k=k, variant="s_loo_minus_one"))
    base = np.array([ref_max_at_k(np.delete(x, i), k - 1) for i in range(n)])
    assert_close(loo_m1, s - k / n * base, scale=3)
    assert np.all(loo_m1 >= -tol())
    # s_loo = (k/n) x the OrderGrad ReMax (= MaxPO) advantage
    assert_close(
        est.pkpo(xf, k=k, variant="s_loo"), k / n * og.lstat_advantage(xf, k, "ReMax"), scale=3
    )
    # k = n: loo-1 credits only the top item, with max - second max (the k = n transformation)
    top = np.zeros(n)
    order = np.argsort(x)
    top[order[-1]] = x[order[-1]] - x[order[-2]]
    assert_close(est.pkpo(xf, k=n, variant="s_loo_minus_one"), top, scale=3)


@pytest.mark.parametrize(("n", "k"), [(6, 1), (6, 2), (7, 3), (8, 4), (8, 7)])
def test_pkpo_binary_rewards_match_the_paper(n, k):
    """On 0/1 rewards s_i = k/n if correct, (k/n) rho(n-1, c, k-1) if not (PKPO, binary)."""
    rng = np.random.default_rng(n + k)
    x = _group(rng, n, binary=True)
    c = int(x.sum())

    def comb(a, b):  # C(a, b) = 0 outside 0 <= b <= a (maths.md §0)
        return math.comb(a, b) if 0 <= b <= a else 0

    def rho(nn, cc, kk):
        return 1 - comb(nn - cc, kk) / comb(nn, kk)

    want = np.where(x == 1, k / n, k / n * rho(n - 1, c, k - 1))
    assert_close(est.pkpo(jnp.asarray(x, FLOAT), k=k, variant="s"), want)


@pytest.mark.parametrize(("n", "k"), [(4, 1), (5, 2), (6, 3), (6, 5), (7, 4)])
@pytest.mark.parametrize("ties", [False, True])
def test_maxpo_matches_leave_two_out_definition(n, k, ties):
    rng = np.random.default_rng(100 + 10 * n + k)
    x = _group(rng, n, ties=ties)
    assert_close(est.get("maxpo", k=k)(jnp.asarray(x, FLOAT)), ref_maxpo(x, k), scale=3)


@pytest.mark.parametrize(("n", "k"), [(2, 1), (8, 1), (8, 3), (8, 7), (16, 5), (33, 4), (64, 20)])
@pytest.mark.parametrize("ties", [False, True])
def test_maxpo_equals_ordergrad_remax(n, k, ties):
    rng = np.random.default_rng(n * k)
    x = jnp.asarray(np.stack([_group(rng, n, ties=ties) for _ in range(4)]), FLOAT)
    got = _np(est.maxpo(x, k=k))
    want = _np(og.lstat_advantage(x, k, "ReMax"))
    if X64:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    else:
        assert_close(got, want, scale=3)


def test_maxpo_equals_ordergrad_remax_with_offset_and_mask():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 12)) + 50.0
    mask = rng.random(size=(3, 12)) < 0.75
    x[~mask] = np.nan
    xf, mf = jnp.asarray(x, FLOAT), jnp.asarray(mask)
    got = _np(est.maxpo(xf, mf, k=3))
    want = _np(og.lstat_advantage(xf, 3, "ReMax", mask=mf))
    if X64:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    else:
        assert_close(got, want, scale=50)


@pytest.mark.parametrize(("n", "k"), [(5, 1), (6, 2), (7, 3), (8, 5), (8, 8)])
def test_passk_chen_matches_subset_definition_and_closed_form(n, k):
    rng = np.random.default_rng(7 * n + k)
    for _ in range(6):
        x = _group(rng, n, binary=True)
        xf = jnp.asarray(x, FLOAT)
        assert_close(est.passk_chen(xf, k=k), ref_chen(x, k), scale=3)
        assert_close(est.passk_chen(xf, k=k, normalize=False), ref_chen(x, k, False))
        # Chen et al.'s closed form
        c, neg = int(x.sum()), n - int(x.sum())
        mean = 1 - math.comb(neg, k) / math.comb(n, k)
        std = math.sqrt(mean * (1 - mean))
        if std == 0:
            assert_close(est.passk_chen(xf, k=k), np.zeros(n))
            continue
        a_pos = (1 - mean) / std
        a_neg = (1 - mean - math.comb(neg - 1, k - 1) / math.comb(n - 1, k - 1)) / std
        assert c > 0
        assert_close(est.passk_chen(xf, k=k), np.where(x == 1, a_pos, a_neg), scale=3)


@pytest.mark.parametrize(("n", "k"), [(4, 1), (8, 2), (8, 3), (8, 7), (16, 4)])
def test_passk_chen_numerator_is_proportional_to_ordergrad_remax(n, k):
    """numerator = q_i - v = ((N-K)/N) (OrderGrad ReMax advantage) on 0/1 rewards."""
    rng = np.random.default_rng(n + 31 * k)
    # every count of correct samples c = 0..n, at random positions
    x = jnp.asarray(np.stack([rng.permutation(np.arange(n) < c) for c in range(n + 1)]), FLOAT)
    numerator = _np(est.passk_chen(x, k=k, normalize=False))
    ordergrad = _np(og.lstat_advantage(x, k, "ReMax"))
    assert_close(numerator, (n - k) / n * ordergrad)
    assert np.abs(ordergrad).max() > 0.1  # the groups are informative
    # and the normalised advantage is the numerator over sqrt(pass@k (1 - pass@k))
    v = _np(og.lstat(x, k, "ReMax"))[:, None]
    std = np.sqrt(np.maximum(v * (1 - v), 0))
    safe = np.where(std > 0, std, 1)
    assert_close(est.passk_chen(x, k=k), np.where(std > 0, numerator / safe, 0), scale=10)


@pytest.mark.parametrize("alpha", [0.1, 0.25, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("ties", [False, True])
def test_cvar_pg_matches_definition(alpha, ties):
    rng = np.random.default_rng(int(alpha * 100))
    for n in (1, 4, 10):
        x = _group(rng, n, ties=ties)
        assert_close(
            est.cvar_pg(jnp.asarray(x, FLOAT), alpha=alpha), ref_cvar_pg(x, alpha), scale=10
        )


# ---------------------------------------------------------------------------------------------
# Which estimators sum to zero over a group (as each docstring states).


@pytest.mark.parametrize(("name", "params", "min_n", "zero_sum", "binary"), CASES, ids=CASE_IDS)
def test_which_estimators_sum_to_zero(name, params, min_n, zero_sum, binary):
    rng = np.random.default_rng(5)
    if binary:
        x = np.array([[1, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 0, 0]], np.float64)
    else:
        x = np.stack([_group(rng, 8) + 0.5 for _ in range(2)])
    total = _np(est.get(name, **params)(jnp.asarray(x, FLOAT))).sum(-1)
    claim = "yes" if zero_sum else "no"
    if name == "pkpo":  # one claim per variant
        assert f'``"{params["variant"]}"`` {claim}' in est.pkpo.__doc__
    else:
        assert f"Sums to zero over each group: {claim}" in getattr(est, name).__doc__
    if name != "pkpo":  # the spec's zero_sum holds for every parameter value (pkpo: not s, s_loo-1)
        assert est.spec(name).zero_sum == zero_sum
    if zero_sum:
        assert_close(total, np.zeros(2), scale=10)
    else:
        assert np.all(np.abs(total) > 1e-2)


# ---------------------------------------------------------------------------------------------
# Masks.


@pytest.mark.parametrize(("name", "params", "min_n", "zero_sum", "binary"), CASES, ids=CASE_IDS)
def test_masked_group_is_the_group_of_its_valid_items(name, params, min_n, zero_sum, binary):
    rng = np.random.default_rng(11)
    n = 9
    counts = [9, 7, 5, 4, 3, 2, 1, 0]
    x = np.stack([_group(rng, n, binary=binary) for _ in counts])
    mask = np.zeros_like(x, bool)
    for row, c in enumerate(counts):
        mask[row, rng.permutation(n)[:c]] = True
    x[~mask] = np.nan  # masked values take no part, NaN included
    fn = est.get(name, **params)
    got = _np(fn(jnp.asarray(x, FLOAT), jnp.asarray(mask)))
    assert_close(jax.jit(fn)(jnp.asarray(x, FLOAT), jnp.asarray(mask)), got)
    assert np.all(np.isfinite(got))
    for row, c in enumerate(counts):
        assert np.all(got[row, ~mask[row]] == 0)
        if c < min_n:
            assert np.all(got[row] == 0), f"a group of {c} valid items has no {name} signal"
        else:
            want = _np(fn(jnp.asarray(x[row, mask[row]], FLOAT)))
            assert_close(got[row, mask[row]], want, scale=3)


def test_all_valid_mask_equals_no_mask(rng):
    x = jnp.asarray(rng.normal(size=(2, 6)), FLOAT)
    ones = jnp.ones(x.shape, bool)
    for name, params, *_, binary in CASES:
        xx = (x > 0).astype(FLOAT) if binary else x
        fn = est.get(name, **params)
        assert_close(fn(xx, ones), fn(xx), scale=3)


# ---------------------------------------------------------------------------------------------
# Unbiasedness where the paper claims it (softmax bandit, exact gradients from og.exact).

R = jnp.asarray([-1.0, 0.0, 0.5, 2.0], FLOAT)
R_BINARY = jnp.asarray([0.0, 0.0, 1.0, 0.0], FLOAT)
LOGITS = jnp.asarray([0.2, -0.3, -0.4, 0.1], FLOAT)
N, K = 8, 4


def _within_4_se(mean, se, want, *, power: float):
    mean, se, want = (np.asarray(a, np.float64) for a in (mean, se, want))
    assert 4 * se.max() < power * max(np.abs(want).max(), 1e-3), "test too weak to detect bias"
    np.testing.assert_array_less(np.abs(mean - want), 4 * se + 1e-6)


def test_lr_gradients_are_unbiased():
    """E[scale * sum_i a_i grad log p(x_i)] = grad J for each estimator's own target J."""
    p = jax.nn.softmax(LOGITS)
    # (name, params, rewards, gradient scale, target objective (k, preset))
    claims = [
        ("reinforce", {}, R, 1 / N, (1, "Mean")),
        ("rloo", {}, R, 1 / N, (1, "Mean")),
        ("ordergrad", {"k": K, "objective": "TopM:2"}, R, K / N, (K, "TopM:2")),
        ("pkpo", {"k": K, "variant": "s"}, R, 1.0, (K, "ReMax")),
        ("pkpo", {"k": K, "variant": "s_loo"}, R, 1.0, (K, "ReMax")),
        ("pkpo", {"k": K, "variant": "s_loo_minus_one"}, R, 1.0, (K, "ReMax")),
        ("pkpo", {"k": K, "variant": "s_loo_minus_one"}, R_BINARY, 1.0, (K, "ReMax")),
        ("maxpo", {"k": K}, R, K / N, (K, "ReMax")),
        ("passk_chen", {"k": K, "normalize": False}, R_BINARY, K / (N - K), (K, "ReMax")),
    ]
    # the factor of sum_i a_i grad log p(x_i) is c/N with c the spec's gradient scale
    for name, params, _, scale, _ in claims:
        assert est.spec(name).gradient_scale(N, **params) / N == pytest.approx(scale, rel=1e-12)
    fns = [est.get(name, **params) for name, params, *_ in claims]

    def one_batch(key):
        arms = jax.random.categorical(key, LOGITS, shape=(N,))
        score = jax.nn.one_hot(arms, R.size, dtype=FLOAT) - p  # grad_theta log p(arm)
        return jnp.stack(
            [
                scale * fn(r[arms]) @ score
                for fn, (_, _, r, scale, _) in zip(fns, claims, strict=True)
            ]
        )

    keys = jax.random.split(jax.random.key(7), 40_000)
    samples = np.asarray(jax.jit(jax.vmap(one_batch))(keys), np.float64)  # (B, estimators, arms)
    mean, se = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    for row, (name, params, r, _, (k, preset)) in enumerate(claims):
        exact = jax.grad(
            lambda t, r=r, k=k, preset=preset: og.exact.lstat(r, jax.nn.softmax(t), k, preset)
        )(LOGITS)
        try:
            _within_4_se(mean[row], se[row], exact, power=0.3)
        except AssertionError as err:
            raise AssertionError(f"{name} {params}: {err}") from None


def test_cvar_pg_is_consistent_on_a_gaussian_location():
    """x = mu + eps, eps ~ N(0, 1): d CVaR_alpha / d mu = 1; the estimator is only consistent,
    so the bound allows a small O(1/N) bias on top of 4 standard errors."""
    mu, n, alpha = 0.3, 400, 0.25
    fn = est.get("cvar_pg", alpha=alpha)

    def one_batch(key):
        x = mu + jax.random.normal(key, (n,), FLOAT)
        return fn(x) @ (x - mu)  # sum_i a_i d log p(x_i) / d mu

    g = np.asarray(jax.jit(jax.vmap(one_batch))(jax.random.split(jax.random.key(8), 4000)))
    se = g.std(ddof=1) / np.sqrt(g.size)
    assert 4 * se < 0.2
    assert abs(g.mean() - 1.0) < 4 * se + 0.03


# ---------------------------------------------------------------------------------------------
# Bad input.


def test_bad_input_errors():
    x = jnp.asarray([0.1, 0.4, -0.2, 1.0, 0.0], FLOAT)
    with pytest.raises(ValueError, match=r"unknown estimator 'ppo'.*available: ordergrad"):
        est.get("ppo")
    with pytest.raises(ValueError, match="estimator name must be a string"):
        est.get(3)
    with pytest.raises(ValueError, match=r"unknown parameter.*'k'.*'grpo' takes eps=1e-06"):
        est.get("grpo", k=2)
    with pytest.raises(ValueError, match=r"unknown parameter.*'rloo' takes no parameters"):
        est.get("rloo", eps=0.1)
    with pytest.raises(ValueError, match=r"missing parameter.*'k'.*'maxpo' takes k"):
        est.get("maxpo")
    with pytest.raises(ValueError, match=r"missing parameter.*'objective'"):
        est.get("ordergrad", k=2)
    with pytest.raises(ValueError, match="unknown objective preset"):
        est.get("ordergrad", k=2, objective="Nope")
    with pytest.raises(ValueError, match="k must be a Python int"):
        est.get("pkpo", k=2.5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        est.get("maxpo", k=0)
    with pytest.raises(ValueError, match=r"unknown PKPO variant 'loo'.*allowed: s, s_loo"):
        est.get("pkpo", k=2, variant="loo")
    with pytest.raises(ValueError, match="'s_loo_minus_one' needs k >= 2"):
        est.get("pkpo", k=1)
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 1\]"):
        est.get("cvar_pg", alpha=0.0)
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 1\]"):
        est.get("cvar_pg", alpha=1.5)
    with pytest.raises(ValueError, match="eps must be a finite float >= 0"):
        est.get("grpo", eps=-1.0)
    with pytest.raises(ValueError, match="normalize must be True or False"):
        est.get("passk_chen", k=2, normalize="yes")
    with pytest.raises(ValueError, match="method must be one of"):
        est.get("ordergrad", k=2, objective="ReMax", method="fast")
    # sizes are checked when the group size is known
    with pytest.raises(ValueError, match="needs k <= N - 1"):
        est.get("maxpo", k=5)(x)
    with pytest.raises(ValueError, match="'s_loo' needs k <= N - 1"):
        est.get("pkpo", k=5, variant="s_loo")(x)
    with pytest.raises(ValueError, match="'s' needs k <= N"):
        est.get("pkpo", k=6, variant="s")(x)
    with pytest.raises(ValueError, match="passk_chen: needs k <= N"):
        est.get("passk_chen", k=6)((x > 0).astype(FLOAT))
    with pytest.raises(ValueError, match="k <= N - 1"):
        est.get("ordergrad", k=5, objective="ReMax")(x)
    with pytest.raises(ValueError, match="rloo: needs a group of N >= 2"):
        est.get("rloo")(x[:1])
    with pytest.raises(ValueError, match="rewards must be binary 0/1"):
        est.get("passk_chen", k=2)(x)
    with pytest.raises(ValueError, match="rank-0"):
        est.get("grpo")(jnp.asarray(1.0))
    for name, params, *_ in CASES:
        fn = est.get(name, **params)
        with pytest.raises(ValueError, match="mask must have the rewards' shape"):
            fn(jnp.zeros((2, 8), FLOAT), jnp.ones((8,), bool))
        with pytest.raises(TypeError, match="mask must be boolean"):
            fn(jnp.zeros((2, 8), FLOAT), jnp.ones((2, 8), jnp.int32))


# ---------------------------------------------------------------------------------------------
# Consumers read the spec: the study of the zoo (experiments/variance/zoo.py) and the control
# trainer take a user's estimator with no other edit.


def test_binary_rewards_is_the_specs():
    for name, _, _, _, binary in CASES:
        assert est.spec(name).binary_rewards is binary, name


@pytest.fixture
def user_binary_estimator(monkeypatch):
    """A user's estimator on 0/1 rewards with its own label, registered for one test only."""
    from ordergrad_jax.estimators import registry

    # the registry has no public unregister: the test restores its tables
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))

    @est.register(
        "test_zoo_successes",
        params=("k",),
        gradient_scale=lambda n, *, k: float(k),
        zero_sum=True,
        binary_rewards=True,
        label="Successes@{k}",
    )
    def successes(rewards, mask=None, *, k):
        x = jnp.asarray(rewards)
        return x - jnp.mean(x, axis=-1, keepdims=True)

    return "test_zoo_successes"


def test_a_user_estimator_shows_up_in_the_variance_zoo(user_binary_estimator):
    from ordergrad_experiments.variance import zoo
    from ordergrad_experiments.variance.config import QUICK as VARIANCE_QUICK

    n, k = 16, 4
    rows = {m.label: m for m in zoo.methods(n, k)}
    user = rows["Successes@4"]
    assert user.name == user_binary_estimator and user.params == {"k": k}
    assert user.binary is True and user.scale == k / n and user.target == "mean"
    # the built-ins read their scale c/N and binary flag from their specs too
    assert rows["Chen pass@k"].binary and rows["Chen pass@k"].scale == 1 / n  # c = 1 (maths §5)
    assert rows["Chen pass@k (numerator)"].scale == pytest.approx(k / (n - k), rel=1e-15)
    assert rows["GRPO"].scale == 1 / n and not rows["GRPO"].binary
    assert rows["PKPO s"].scale == 1.0 and rows["OrderGrad ReMax"].scale == k / n

    cfg = dataclasses.replace(VARIANCE_QUICK, zoo_batches=200)
    got = [r for r in zoo.run(cfg, jax.random.key(0)) if r["method"] == "Successes@4"]
    assert [r["bandit"] for r in got] == ["binary"]  # its spec says 0/1 rewards only
    assert np.isfinite(got[0]["rel_bias"]) and got[0]["rel_var"] > 0


def test_a_binary_user_estimator_needs_success_rewards_in_group_pg(user_binary_estimator):
    pytest.importorskip("gymnax", reason="the envs extra: not on the jax 0.12 lane")
    from ordergrad_experiments.control.config import QUICK as CONTROL_QUICK
    from ordergrad_experiments.control.run import make_train

    estimator = dataclasses.replace(CONTROL_QUICK.estimator, name=user_binary_estimator)
    config = dataclasses.replace(CONTROL_QUICK, estimator=estimator)
    with pytest.raises(ValueError, match=f"{user_binary_estimator} needs binary rewards"):
        make_train(config)
    make_train(dataclasses.replace(config, train_reward="success", success_return=100.0))
