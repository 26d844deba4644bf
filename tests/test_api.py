"""The public API: estimator specs and the registry, the clipped surrogate, and the pinned names.

The gradient scales are checked against the paper's convention written out by hand here
(``g = (c/N) sum_i a_i grad log p(x_i)``; the Monte Carlo check that these scales make each
estimator unbiased for its own target is ``test_zoo.test_lr_gradients_are_unbiased``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ordergrad_jax as og
from ordergrad_jax import estimators as est

from conftest import FLOAT, assert_close

# (name, params, c for a group of N = 8, by hand from maths.md §5)
N = 8
SCALES = [
    ("ordergrad", {"k": 3, "objective": "TopM:2"}, 3.0),
    ("maxpo", {"k": 3}, 3.0),
    ("reinforce", {}, 1.0),
    ("rloo", {}, 1.0),
    ("grpo", {}, 1.0),
    ("grpo", {"eps": 0.5}, 1.0),
    ("dr_grpo", {}, 1.0),
    ("pkpo", {"k": 3}, 8.0),
    ("pkpo", {"k": 3, "variant": "s_loo"}, 8.0),
    ("cvar_pg", {"alpha": 0.25}, 8.0),
    ("passk_chen", {"k": 3, "normalize": False}, 3 * 8 / (8 - 3)),
    ("passk_chen", {"k": 3}, 1.0),  # normalised advantages are used as they are, like GRPO's
    ("passk_chen", {"k": 3, "normalize": True}, 1.0),
]

# Default parameters for every built-in (sizes that fit a group of N = 8).
DEFAULT_PARAMS = {
    "ordergrad": {"k": 3, "objective": "TopM:2"},
    "reinforce": {},
    "rloo": {},
    "grpo": {},
    "dr_grpo": {},
    "pkpo": {"k": 3},
    "maxpo": {"k": 3},
    "passk_chen": {"k": 3},
    "cvar_pg": {"alpha": 0.25},
}
BINARY = {"passk_chen"}

# (name, params, display label, short label): the display labels are those of the committed
# results documents (reports/lm, reports/variance), the short ones the method column of the LM
# grid tables.
LABELS = [
    ("ordergrad", {"k": 4, "objective": "TopM:2"}, "OrderGrad TopM:2@4", "ordergrad TopM:2@4"),
    ("ordergrad", {"k": 8, "objective": "ReMax"}, "OrderGrad ReMax@8", "ordergrad ReMax@8"),
    ("maxpo", {"k": 4}, "MaxPO@4", "maxpo@4"),
    ("reinforce", {}, "REINFORCE", "reinforce"),
    ("rloo", {}, "RLOO", "rloo"),
    ("grpo", {}, "GRPO", "grpo"),
    ("grpo", {"eps": 0.5}, "GRPO", "grpo"),
    ("dr_grpo", {}, "Dr.GRPO", "dr_grpo"),
    ("pkpo", {"k": 4}, "PKPO@4", "pkpo@4"),
    ("pkpo", {"k": 4, "variant": "s"}, "PKPO@4 s", "pkpo@4"),
    ("pkpo", {"k": 4, "variant": "s_loo-1"}, "PKPO@4", "pkpo@4"),
    ("passk_chen", {"k": 4}, "Chen pass@4", "passk_chen@4"),
    ("passk_chen", {"k": 4, "normalize": False}, "Chen pass@4 (numerator)", "passk_chen@4"),
    ("cvar_pg", {"alpha": 0.25}, "CVaR-PG alpha=0.25", "cvar_pg"),
]


@pytest.mark.parametrize(("name", "params", "want"), SCALES)
def test_gradient_scale_is_the_papers(name, params, want):
    spec = est.spec(name)
    got = spec.gradient_scale(N, **params)
    assert isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-15)


def test_every_estimator_has_a_scale_test():
    assert {name for name, *_ in SCALES} == set(est.available()) == set(DEFAULT_PARAMS)
    assert {name for name, *_ in LABELS} == set(est.available())


@pytest.mark.parametrize(("name", "params", "label", "short"), LABELS)
def test_labels_are_the_results_documents(name, params, label, short):
    spec = est.spec(name)
    assert spec.label(**params) == label
    assert spec.short_label(**params) == short


def test_labels_read_a_run_configs_estimator_part():
    """Names the estimator does not take are ignored, so a run config's ``estimator`` dict (with
    ``name``, ``objective``, ``k``, ``options``) goes in whole; the short label reads only
    ``objective`` and ``k``."""
    config = {"name": "grpo", "objective": "Mean", "k": 4, "options": []}
    assert est.spec("grpo").label(**config) == "GRPO"
    assert est.spec("grpo").short_label(**config) == "grpo"
    config = {"name": "maxpo", "objective": "Mean", "k": 4, "options": []}
    assert est.spec("MaxPO").label(**config) == "MaxPO@4"
    config = {"name": "cvar_pg", "objective": "Mean", "k": 4, "options": ["alpha=0.1"]}
    assert est.spec("cvar").short_label(**config) == "cvar_pg"
    with pytest.raises(ValueError, match=r"missing parameter.*'alpha'"):
        est.spec("cvar").label(**config)  # options are not parsed
    with pytest.raises(ValueError, match=r"missing parameter.*'k'"):
        est.spec("maxpo").short_label()
    with pytest.raises(ValueError, match="unknown objective preset"):
        est.spec("ordergrad").label(k=4, objective="Nope")


def test_only_passk_chen_needs_binary_rewards():
    assert {name for name in est.available() if est.spec(name).binary_rewards} == BINARY
    for name in est.available():
        assert isinstance(est.spec(name).binary_rewards, bool)


def test_spec_fields():
    spec = est.spec("OrderGrad")
    assert spec.name == "ordergrad"
    assert spec.params == ("k", "objective", "method")
    assert spec.zero_sum is True
    assert spec.fn is est.ordergrad
    assert est.spec("cvar").name == "cvar_pg" and est.spec("cvar").params == ("alpha",)
    assert est.spec("CVaR-PG") is est.spec("cvar_pg")
    assert est.spec("Dr.GRPO").name == "dr_grpo"
    assert est.spec("rloo").params == ()
    assert est.spec("grpo").defaults == {"eps": 1e-6}
    for name in est.available():
        spec = est.spec(name)
        assert spec.name == name
        assert spec.description == est.available()[name]
        assert isinstance(spec.zero_sum, bool)


@pytest.mark.parametrize("name", sorted(DEFAULT_PARAMS))
def test_zero_sum_holds_on_random_groups(name):
    rng = np.random.default_rng(3)
    if name in BINARY:
        x = rng.integers(0, 2, size=(64, N)).astype(np.float64)
        x[:, 0], x[:, 1] = 1.0, 0.0  # every group has both outcomes, so sigma > 0
    else:
        x = rng.normal(size=(64, N)) + 0.5
    spec = est.spec(name)
    params = DEFAULT_PARAMS[name]
    adv = np.asarray(spec.fn(jnp.asarray(x, FLOAT), **params), np.float64)
    assert_close(adv, est.get(name, **params)(jnp.asarray(x, FLOAT)))
    totals = adv.sum(-1)
    if spec.zero_sum:
        assert_close(totals, np.zeros(64), scale=10 * np.abs(adv).max())
    else:
        assert np.mean(np.abs(totals) > 1e-3) > 0.5, f"{name} is registered as not zero-sum"


def test_register_a_user_estimator_and_read_it_back():
    name = "test_api_centred_twice"

    def centred(rewards, mask=None, *, factor: float = 2.0):
        x = jnp.asarray(rewards)
        return factor * (x - jnp.mean(x, axis=-1, keepdims=True))

    try:
        returned = est.register(
            name,
            centred,
            params=("factor",),
            gradient_scale=lambda n, *, factor: 1.0 / factor,
            zero_sum=True,
            aliases=("Centred-Twice-Alias",),
            description="twice the centred reward",
        )
        assert returned is centred
        assert name in est.available()
        assert est.available()[name] == "twice the centred reward"
        spec = est.spec("centred_twice_alias")
        assert spec.name == name and spec.fn is centred and spec.params == ("factor",)
        assert spec.zero_sum is True
        assert spec.binary_rewards is False  # the defaults
        assert spec.label() == spec.short_label() == name
        assert spec.gradient_scale(N) == 0.5
        assert spec.gradient_scale(N, factor=4.0) == 0.25
        x = jnp.asarray([[1.0, 2.0, 6.0]], FLOAT)
        assert_close(est.get(name)(x), [[-4.0, -2.0, 6.0]])
        assert_close(est.get(name, factor=1.0)(x), [[-2.0, -1.0, 3.0]])
        with pytest.raises(ValueError, match="already registered"):
            est.register(name, centred, params=("factor",), gradient_scale=1.0, zero_sum=True)
    finally:
        _unregister(name)


def test_register_as_a_decorator():
    name = "test_api_decorated"
    try:

        @est.register(
            name,
            params=("k",),
            gradient_scale=lambda n, *, k: float(k),
            zero_sum=False,
            binary_rewards=True,
            label="Top-{k} indicator",
        )
        def top_k_indicator(rewards, mask=None, *, k):
            x = jnp.asarray(rewards)
            return (x >= jnp.sort(x, axis=-1)[..., -k, None]).astype(x.dtype)

        assert callable(top_k_indicator) and top_k_indicator.__name__ == "top_k_indicator"
        assert est.spec(name).fn is top_k_indicator
        assert est.spec(name).gradient_scale(N, k=2) == 2.0
        assert est.spec(name).binary_rewards is True
        assert est.spec(name).label(k=2) == "Top-2 indicator"
        assert est.spec(name).short_label(k=2) == f"{name}@2"
        x = jnp.asarray([0.1, 3.0, -1.0, 2.0], FLOAT)
        assert_close(est.get(name, k=2)(x), [0.0, 1.0, 0.0, 1.0])
        with pytest.raises(ValueError, match=r"missing parameter.*'k'"):
            est.get(name)
        with pytest.raises(ValueError, match=r"missing parameter.*'k'"):
            est.spec(name).gradient_scale(N)
    finally:
        _unregister(name)


def test_register_default_and_callable_labels():
    name = "Test_API_Labelled"
    key = name.lower()

    def weighted(rewards, mask=None, *, k, objective, scale=1.0):
        return og.lstat_advantage(rewards, k, objective, mask=mask) * scale

    try:
        est.register(name, weighted, params=("k", "objective", "scale"), gradient_scale=1.0,
                     zero_sum=True)  # fmt: skip
        spec = est.spec(name)
        assert spec.label(k=3, objective="TopM:2") == "Test_API_Labelled TopM:2@3"
        assert spec.short_label(k=3, objective="TopM:2") == f"{key} TopM:2@3"
    finally:
        _unregister(key)
    try:
        est.register(
            name,
            weighted,
            params=("k", "objective", "scale"),
            gradient_scale=1.0,
            zero_sum=True,
            label=lambda *, k, objective, scale: f"W {objective} x{scale}@{k}",
        )
        assert est.spec(name).label(k=3, objective="Mean") == "W Mean x1.0@3"
        assert est.spec(name).label(k=3, objective="Mean", scale=2) == "W Mean x2@3"
    finally:
        _unregister(key)


def _subset_values(x, k, weights):
    """Brute force: ``weights . sort(x_S)`` for every k-subset S of ``x`` (E choose k)."""
    import itertools

    return [
        float(np.dot(weights, np.sort(x[list(s)])))
        for s in itertools.combinations(range(x.size), k)
    ]


@pytest.mark.parametrize(
    ("name", "params", "label"),
    [
        ("reinforce", {}, "mean"),
        ("rloo", {}, "mean"),
        ("grpo", {}, "mean"),
        ("dr_grpo", {}, "mean"),
        ("ordergrad", {"k": 3, "objective": "LowerTailMean:0.34"}, "LowerTailMean:0.34@3"),
        ("ordergrad", {"k": 4, "objective": "TopM:2"}, "TopM:2@4"),
        ("maxpo", {"k": 3}, "max@3"),
        ("pkpo", {"k": 2, "variant": "s_loo"}, "max@2"),
        ("passk_chen", {"k": 3}, "pass@3"),
        ("cvar_pg", {"alpha": 0.25}, "CVaR_0.25"),
    ],
)
def test_targets_are_the_objectives_against_brute_force(name, params, label):
    """Each estimator's registered target: the mean over every k-subset of the evaluation returns
    of the L-statistic it ascends (mean, OrderGrad's weights, the max), or CVaR-PG's plug-in tail
    mean, computed here by enumeration and sorting."""
    rng = np.random.default_rng(3)
    binary = est.spec(name).binary_rewards
    x = (rng.random((2, 8)) < 0.4) if binary else rng.normal(size=(2, 8))
    x = np.asarray(x, np.float64)
    spec = est.spec(name)
    got = np.asarray(spec.target(jnp.asarray(x, FLOAT), **params))
    assert spec.target_label(**params) == label
    k = params.get("k", 1)
    if name == "cvar_pg":
        want = [np.sort(row)[: int(params["alpha"] * row.size)].mean() for row in x]
    else:
        if name == "ordergrad":
            weights = og.rank_weights(params["objective"], k)
        elif "k" in params:
            weights = np.eye(k)[-1]  # the max of k
        else:
            weights = np.ones(1)
        want = [np.mean(_subset_values(row, k, weights)) for row in x]
    assert got.shape == (2,)
    assert_close(got, np.asarray(want))


def test_every_builtin_estimator_registers_a_target():
    for name in est.available():
        assert est.spec(name).target_fn is not None, name


def test_a_user_estimator_registers_its_target_or_says_it_has_none():
    name = "test_api_target"

    def centred(rewards, mask=None):
        return rewards - rewards.mean(-1, keepdims=True)

    try:
        est.register(name, centred, params=(), gradient_scale=1.0, zero_sum=True)
        with pytest.raises(ValueError, match="registers no target objective"):
            est.spec(name).target(jnp.zeros(3))
        with pytest.raises(ValueError, match="registers no target objective"):
            est.spec(name).target_label()
    finally:
        _unregister(name)
    with pytest.raises(ValueError, match="give target and target_label together"):
        est.register(name, centred, params=(), gradient_scale=1.0, zero_sum=True,
                     target=lambda x: x.mean(-1))  # fmt: skip
    with pytest.raises(TypeError, match="target must be callable"):
        est.register(name, centred, params=(), gradient_scale=1.0, zero_sum=True,
                     target=1.0, target_label="mean")  # fmt: skip
    try:
        est.register(name, centred, params=(), gradient_scale=1.0, zero_sum=True,
                     target=lambda x: jnp.median(jnp.asarray(x), -1),
                     target_label="median")  # fmt: skip
        assert est.spec(name).target_label() == "median"
        assert float(est.spec(name).target(jnp.asarray([3.0, -1.0, 2.0]))) == 2.0
    finally:
        _unregister(name)


def _unregister(name: str) -> None:
    # Test-only cleanup through the registry module's tables (no public unregister).
    from ordergrad_jax.estimators import registry

    spec = registry._REGISTRY.pop(name, None)
    for alias in () if spec is None else spec.aliases:
        registry._ALIASES.pop(alias, None)


def test_registry_bad_input():
    with pytest.raises(ValueError, match=r"unknown estimator 'nope'; available: ordergrad, "):
        est.spec("nope")
    with pytest.raises(ValueError, match=r"unknown estimator 'nope'.*cvar_pg"):
        est.get("nope")
    with pytest.raises(ValueError, match="estimator name must be a string"):
        est.spec(None)
    with pytest.raises(ValueError, match=r"estimator name\(s\) \['rloo'\] already registered"):
        est.register("RLOO", est.rloo, params=(), gradient_scale=1.0, zero_sum=True)
    with pytest.raises(ValueError, match=r"\['cvar'\] already registered"):
        est.register("new_one", est.rloo, params=(), gradient_scale=1.0, zero_sum=True,
                     aliases=("cvar",))  # fmt: skip
    assert "new_one" not in est.available()
    with pytest.raises(TypeError, match="params"):
        est.register("new_one", est.rloo, gradient_scale=1.0, zero_sum=True)  # no params
    with pytest.raises(ValueError, match=r"requires the keyword parameter\(s\) \['k'\]"):
        est.register("new_one", est.maxpo, params=(), gradient_scale=1.0, zero_sum=True)
    with pytest.raises(ValueError, match=r"\['eps'\] are not keyword-only parameters"):
        est.register("new_one", est.rloo, params=("eps",), gradient_scale=1.0, zero_sum=True)
    with pytest.raises(TypeError, match="gradient_scale must be a float or a callable"):
        est.register("new_one", est.rloo, params=(), gradient_scale="N", zero_sum=True)
    with pytest.raises(TypeError, match="binary_rewards must be True or False"):
        est.register("new_one", est.rloo, params=(), gradient_scale=1.0, zero_sum=True,
                     binary_rewards="yes")  # fmt: skip
    with pytest.raises(ValueError, match=r"label 'New@\{k\}' names \['k'\]; its fields must be"):
        est.register("new_one", est.rloo, params=(), gradient_scale=1.0, zero_sum=True,
                     label="New@{k}")  # fmt: skip
    with pytest.raises(ValueError, match="is not a format string"):
        est.register("new_one", est.rloo, params=(), gradient_scale=1.0, zero_sum=True,
                     label="New@{")  # fmt: skip
    with pytest.raises(TypeError, match="label must be a format string"):
        est.register("new_one", est.rloo, params=(), gradient_scale=1.0, zero_sum=True,
                     label=3)  # fmt: skip
    assert "new_one" not in est.available()
    spec = est.spec("ordergrad")
    with pytest.raises(ValueError, match=r"missing parameter.*'objective'"):
        spec.gradient_scale(N, k=3)
    with pytest.raises(ValueError, match=r"unknown parameter.*'alpha'"):
        spec.gradient_scale(N, k=3, objective="Mean", alpha=0.1)
    with pytest.raises(ValueError, match="unknown objective preset"):
        spec.gradient_scale(N, k=3, objective="Nope")
    with pytest.raises(ValueError, match="n must be >= 1"):
        spec.gradient_scale(0, k=3, objective="Mean")
    with pytest.raises(ValueError, match="n must be a Python int"):
        spec.gradient_scale(8.0, k=3, objective="Mean")
    with pytest.raises(ValueError, match=r"kN/\(N-k\) of normalize=False needs k < N"):
        est.spec("passk_chen").gradient_scale(3, k=3, normalize=False)


# ---------------------------------------------------------------------------------------------
# The clipped surrogate (PPO, group policy gradient, LM loop).


def test_clipped_surrogate_is_ppos_objective():
    rng = np.random.default_rng(4)
    logp = rng.normal(size=(3, 5)) * 0.3
    logp_old = rng.normal(size=(3, 5)) * 0.3
    adv = rng.normal(size=(3, 5))
    eps = 0.2
    ratio = np.exp(logp - logp_old)
    want = np.where(
        adv >= 0, np.minimum(ratio, 1 + eps) * adv, np.maximum(ratio, 1 - eps) * adv
    )  # the case split of Schulman et al. (2017)
    got = est.clipped_surrogate(
        jnp.asarray(logp, FLOAT), jnp.asarray(logp_old, FLOAT), jnp.asarray(adv, FLOAT), eps
    )
    assert_close(got, want, scale=10)
    assert_close(jax.jit(est.clipped_surrogate)(logp, logp_old, adv, eps), got, scale=10)
    # broadcasting: one advantage per sequence against per-token log-probabilities
    tok = est.clipped_surrogate(
        jnp.asarray(logp, FLOAT), jnp.asarray(logp_old, FLOAT), jnp.asarray(adv[:, :1], FLOAT), eps
    )
    assert tok.shape == (3, 5)
    # on-policy, its gradient is A grad logp
    theta = jnp.asarray(logp, FLOAT)
    grad = jax.grad(
        lambda t: jnp.sum(est.clipped_surrogate(t, jax.lax.stop_gradient(t), adv, eps))
    )(theta)
    assert_close(grad, adv)
    with pytest.raises(ValueError, match="clip_eps must be finite and >= 0"):
        est.clipped_surrogate(logp, logp_old, adv, -0.1)


# ---------------------------------------------------------------------------------------------
# Pinned public names: adding or dropping one is a decision, not an accident.

OG_ALL = [
    "SORT_FREE_MAX_N",
    "LStatistic",
    "Objective",
    "advantage_defined",
    "available_objectives",
    "estimators",
    "exact",
    "get_objective",
    "lr_loss",
    "lstat",
    "lstat_advantage",
    "lstat_inclusion",
    "lstat_leave_one_out",
    "lstat_weights_by_item",
    "lstat_weights_by_rank",
    "metrics",
    "orderstats",
    "orderstats_advantage",
    "orderstats_inclusion",
    "orderstats_leave_one_out",
    "rank_weights",
    "register_objective",
    "sort_free_max_n",
]
ESTIMATORS_ALL = [
    "PKPO_VARIANTS",
    "EstimatorSpec",
    "available",
    "clipped_surrogate",
    "cvar_pg",
    "dr_grpo",
    "get",
    "grpo",
    "lr_loss",
    "maxpo",
    "ordergrad",
    "passk_chen",
    "pkpo",
    "register",
    "reinforce",
    "rloo",
    "spec",
]
METRICS_ALL = [
    "cvar",
    "effective_sample_size",
    "effective_weight",
    "lstat_at_k",
    "max_at_k",
    "mean",
    "pass_at_k",
    "snr",
    "snr_true_gradient",
    "total_variance",
    "var",
    "zero_advantage_fraction",
]


@pytest.mark.parametrize(
    ("module", "names"),
    [(og, OG_ALL), (og.estimators, ESTIMATORS_ALL), (og.metrics, METRICS_ALL)],
    ids=["og", "estimators", "metrics"],
)
def test_public_names_are_pinned(module, names):
    assert sorted(module.__all__) == sorted(names)
    for name in names:
        assert getattr(module, name) is not None
    assert og.lr_loss is est.lr_loss
    assert og.SORT_FREE_MAX_N == og.sort_free_max_n("cpu")


# ---------------------------------------------------------------------------------------------
# The type check CI runs (mypy on ordergrad_jax/, pyproject's [tool.mypy]) catches a call with an
# argument of the wrong type.


@pytest.mark.once
def test_mypy_rejects_a_wrong_argument_type(tmp_path):
    pytest.importorskip("mypy")
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    snippet = tmp_path / "wrong_types.py"
    snippet.write_text(
        "import ordergrad_jax as og\n"
        "og.lstat([0.0, 1.0, 2.0], '2', 'Mean')\n"
        "og.estimators.spec('rloo').gradient_scale('8')\n"
        "og.sort_free_max_n(3)\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml"), str(snippet)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.count("[arg-type]") == 3, out.stdout
