"""ordergrad_jax.integrations.tunix: og estimators as tunix GRPO advantage estimators.

The advantages are checked against a brute-force U-statistic written here (every K-subset of the
group), as a pure function and inside tunix's GRPO learner, where they are captured in the
jitted policy loss itself (what the update used), on a tiny Qwen3 on CPU. The gradient of
tunix's GRPO loss under :func:`exact_gradient_settings` is checked against ``og.lr_loss``'s.
The detection of tunix's API (``rl_engine=`` or ``rl_cluster=``; ``use_rollout_logps``) is
checked on stand-in classes, since only google-tunix 0.1.7 is installable here.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import itertools
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("tunix", reason="needs the lm extra")
# tunix 0.1.7 reads nnx variables with the deprecated `.value`; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*'.value' access is now deprecated:DeprecationWarning"
)

import ordergrad_jax as og  # noqa: E402
from ordergrad_jax.integrations import tunix as og_tunix  # noqa: E402

# Ascending rank weights written out by hand (alpha[0] weights the minimum of the K rewards).
ALPHA = {
    ("TopM:2", 4): [0.0, 0.0, 0.5, 0.5],
    ("ReMax", 2): [0.0, 1.0],
    ("ReMax", 4): [0.0, 0.0, 0.0, 1.0],
    ("Median", 3): [0.0, 1.0, 0.0],
    ("LowerTailMean:0.25", 4): [1.0, 0.0, 0.0, 0.0],
    ("Mean", 1): [1.0],
}


def brute_force_advantages(rewards: np.ndarray, k: int, alpha) -> np.ndarray:
    """``a_i = mean_{|S|=K, i in S} L(S) - mean_{|S|=K, i not in S} L(S)`` with
    ``L(S) = sum_j alpha_j sorted(r_S)_j``, per group (last axis), in float64."""
    r = np.asarray(rewards, np.float64)
    n = r.shape[-1]
    out = np.zeros_like(r)
    for g in np.ndindex(r.shape[:-1]):
        value = {
            s: float(np.dot(alpha, np.sort(r[g][list(s)])))
            for s in itertools.combinations(range(n), k)
        }
        for i in range(n):
            inc = [v for s, v in value.items() if i in s]
            exc = [v for s, v in value.items() if i not in s]
            out[(*g, i)] = np.mean(inc) - np.mean(exc)
    return out


def _rewards(groups: int, n: int, seed: int, ties: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if ties:
        return rng.integers(0, 3, (groups, n)).astype(np.float32)
    return rng.standard_normal((groups, n)).astype(np.float32)


@pytest.mark.parametrize(
    ("objective", "k", "n"),
    [
        ("TopM:2", 4, 8),
        ("ReMax", 2, 5),
        ("Median", 3, 6),
        ("LowerTailMean:0.25", 4, 7),
        ("Mean", 1, 4),
    ],
)
@pytest.mark.parametrize("ties", [False, True])
def test_ordergrad_estimator_matches_brute_force(objective, k, n, ties):
    rewards = _rewards(3, n, seed=k * n, ties=ties)
    fn = og_tunix.make_advantage_estimator(k=k, objective=objective)
    adv = np.asarray(fn(rewards.reshape(-1), num_generations=n))
    expected = k * brute_force_advantages(rewards, k, ALPHA[(objective, k)])  # scale="paper"
    assert adv.shape == (3 * n,)
    np.testing.assert_allclose(adv, expected.reshape(-1), rtol=1e-5, atol=1e-5)
    raw = og_tunix.make_advantage_estimator(k=k, objective=objective, scale=1.0)
    np.testing.assert_allclose(
        np.asarray(raw(rewards.reshape(-1), num_generations=n)),
        expected.reshape(-1) / k,
        rtol=1e-5,
        atol=1e-5,
    )


def test_zoo_estimators_and_their_scales():
    n = 6
    rewards = _rewards(4, n, seed=1, ties=True)  # 0/1/2: ties within groups
    flat = rewards.reshape(-1)
    # MaxPO is max@K OrderGrad (ReMax); its paper scale is K/N, so tunix gets K * a.
    maxpo = og_tunix.make_advantage_estimator("maxpo", k=4)
    remax = brute_force_advantages(rewards, 4, ALPHA[("ReMax", 4)])
    np.testing.assert_allclose(
        np.asarray(maxpo(flat, n)), 4 * remax.reshape(-1), rtol=1e-5, atol=1e-5
    )
    # RLOO: r_i - mean of the others, gradient scale 1/N: unchanged.
    rloo = og_tunix.make_advantage_estimator("RLOO")
    loo = rewards - (rewards.sum(-1, keepdims=True) - rewards) / (n - 1)
    np.testing.assert_allclose(np.asarray(rloo(flat, n)), loo.reshape(-1), rtol=1e-6, atol=1e-6)
    # The documented factors c = N * (per-group gradient factor).
    assert og_tunix.gradient_scale("ordergrad", n, k=4, objective="ReMax") == 4.0
    assert og_tunix.gradient_scale("dr_grpo", n) == 1.0
    assert og_tunix.gradient_scale("pkpo", n, k=2) == float(n)
    assert og_tunix.gradient_scale("cvar_pg", n, alpha=0.5) == float(n)
    assert og_tunix.gradient_scale("passk_chen", n, k=2, normalize=False) == 2 * n / (n - 2)


# Parameters for every built-in estimator on groups of N = 6 (binary rewards for passk_chen).
SPEC_CASES = [
    ("ordergrad", {"k": 4, "objective": "TopM:2"}),
    ("reinforce", {}),
    ("rloo", {}),
    ("grpo", {}),
    ("dr_grpo", {}),
    ("pkpo", {"k": 3}),
    ("pkpo", {"k": 3, "variant": "s_loo"}),
    ("maxpo", {"k": 3}),
    ("passk_chen", {"k": 2}),
    ("passk_chen", {"k": 2, "normalize": False}),
    ("cvar_pg", {"alpha": 0.5}),
]


@pytest.mark.parametrize(("name", "params"), SPEC_CASES)
def test_advantages_are_the_spec_scale_times_the_estimators(name, params):
    """tunix gets ``c * a``: ``a`` from og.estimators.get, ``c`` from the estimator's spec."""
    n = 6
    rewards = _rewards(4, n, seed=2, ties=True)
    if name == "passk_chen":
        rewards = (rewards > 0).astype(np.float32)
    a = np.asarray(og.estimators.get(name, **params)(rewards))
    c = og.estimators.spec(name).gradient_scale(n, **params)
    got = og_tunix.make_advantage_estimator(name, **params)(rewards.reshape(-1), n)
    np.testing.assert_allclose(np.asarray(got), (c * a).reshape(-1), rtol=1e-6, atol=1e-6)
    assert og_tunix.gradient_scale(name, n, **params) == c


def test_every_estimator_is_covered():
    assert {name for name, _ in SPEC_CASES} == set(og.estimators.available())


def test_a_user_registered_estimator_needs_no_adapter_edit():
    from ordergrad_jax.estimators import registry

    name = "tunix_test_signed_rank"

    def signed_rank(rewards, mask=None, *, shift: float = 0.5):
        import jax.numpy as jnp

        ranks = jnp.argsort(jnp.argsort(jnp.asarray(rewards), axis=-1), axis=-1)
        return ranks - shift * (ranks.shape[-1] - 1)

    og.estimators.register(
        name, signed_rank, params=("shift",), gradient_scale=lambda n, shift: 2.0, zero_sum=True
    )
    try:
        rewards = np.asarray([[0.3, -1.0, 2.0, 0.1], [1.0, 0.0, 0.5, 3.0]], np.float32)
        fn = og_tunix.make_advantage_estimator(name)
        want = 2.0 * np.asarray(signed_rank(rewards))
        np.testing.assert_allclose(np.asarray(fn(rewards.reshape(-1), 4)), want.reshape(-1))
        assert fn.__name__ == f"ordergrad_jax_{name}"
    finally:
        registry._REGISTRY.pop(name, None)


def test_bad_inputs_raise():
    fn = og_tunix.make_advantage_estimator(k=4, objective="TopM:2")
    with pytest.raises(ValueError, match="do not split into groups of num_generations=3"):
        fn(np.zeros(8, np.float32), num_generations=3)
    with pytest.raises(ValueError, match="needs num_generations > k"):
        fn(np.zeros(8, np.float32), num_generations=4)
    with pytest.raises(ValueError, match="scale must be 'paper' or a finite float"):
        og_tunix.make_advantage_estimator(k=4, objective="TopM:2", scale="K")
    with pytest.raises(ValueError):
        og_tunix.make_advantage_estimator("not_an_estimator")
    with pytest.raises(ValueError):
        og_tunix.make_advantage_estimator(k=4, objective="NoSuchObjective")
    with pytest.raises(ValueError, match="num_generations must exceed k"):
        og_tunix.OrderGradConfig(k=4, objective="TopM:2", num_generations=4)
    with pytest.raises(TypeError):  # the name is derived, not an init argument
        og_tunix.OrderGradConfig(
            k=4, objective="TopM:2", num_generations=8, advantage_estimator="grpo"
        )


def test_registered_with_tunix():
    from tunix.rl import function_registry

    name = og_tunix.register(k=4, objective="TopM:2")
    assert name == og_tunix.register(k=4, objective="TopM:2")  # idempotent
    fn = function_registry.get_advantage_estimator(name)
    rewards = _rewards(2, 8, seed=3, ties=False)
    expected = 4 * brute_force_advantages(rewards, 4, ALPHA[("TopM:2", 4)])
    np.testing.assert_allclose(
        np.asarray(fn(rewards=rewards.reshape(-1), num_generations=8)),
        expected.reshape(-1),
        rtol=1e-5,
        atol=1e-5,
    )
    config = og_tunix.OrderGradConfig(k=4, objective="TopM:2", num_generations=8, beta=0.0)
    assert config.advantage_estimator == name
    weights = og_tunix.OrderGradConfig(k=4, objective=[0, 0, 0.5, 0.5], num_generations=8)
    assert function_registry.get_advantage_estimator(weights.advantage_estimator)
    assert dataclasses.replace(config, num_generations=6).advantage_estimator == name


def test_import_without_tunix_names_the_extra(monkeypatch):
    for mod in [
        "tunix",
        "tunix.rl",
        "tunix.rl.function_registry",
        "tunix.rl.grpo",
        "tunix.rl.grpo.grpo_learner",
    ]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.delitem(sys.modules, "ordergrad_jax.integrations.tunix")
    with pytest.raises(ImportError, match=r"ordergrad-jax\[lm\]"):
        importlib.import_module("ordergrad_jax.integrations.tunix")


def test_core_library_does_not_import_integrations():
    code = (
        "import sys, ordergrad_jax, ordergrad_jax.estimators, ordergrad_jax.metrics; "
        "bad = [m for m in sys.modules if m.startswith(('tunix', 'ordergrad_jax.integrations'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ------------------------------------------------------------------------------------------------
# tunix's API, today (0.1.7) and next (after 0.1.7: rl_engine=, use_rollout_logps), on stand-ins.


class _EngineLearner:
    """Stands in for tunix's head ``GRPOLearner``: ``rl_engine=``; ``rl_cluster=`` deprecated."""

    def __init__(self, rl_engine=None, algo_config=None, reward_fns=None, rl_cluster=None, **kw):
        if rl_cluster is not None:
            warnings.warn(
                "rl_cluster is deprecated; use rl_engine", DeprecationWarning, stacklevel=2
            )
        self.engine = rl_engine if rl_engine is not None else rl_cluster
        self.algo_config, self.reward_fns, self.kwargs = algo_config, reward_fns, kw


class _ClusterLearner:
    """Stands in for tunix 0.1.7's ``GRPOLearner``: ``rl_cluster=`` only."""

    def __init__(self, rl_cluster, algo_config, reward_fns, metric_fns=None):
        self.engine, self.algo_config, self.reward_fns = rl_cluster, algo_config, reward_fns
        self.kwargs = {"metric_fns": metric_fns}


@dataclasses.dataclass(kw_only=True)
class _ConfigWithRolloutLogps:
    beta: float = 0.04
    num_iterations: int = 1
    loss_agg_mode: str = "sequence-mean-token-mean"
    use_rollout_logps: bool = True


@dataclasses.dataclass(kw_only=True)
class _ConfigWithoutRolloutLogps:
    beta: float = 0.04
    num_iterations: int = 1
    loss_agg_mode: str = "sequence-mean-token-mean"


@pytest.mark.parametrize(
    ("learner_cls", "keyword"), [(_EngineLearner, "rl_engine"), (_ClusterLearner, "rl_cluster")]
)
def test_make_learner_passes_the_engine_under_the_keyword_the_learner_takes(learner_cls, keyword):
    assert og_tunix.engine_keyword(learner_cls) == keyword
    engine, config, reward = object(), object(), lambda prompts, completions, **kw: []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated keyword would raise here
        learner = og_tunix.make_learner(
            engine, config, reward, learner_cls=learner_cls, metric_fns=None
        )
    assert isinstance(learner, learner_cls)
    assert learner.engine is engine and learner.algo_config is config
    assert learner.reward_fns is reward and learner.kwargs == {"metric_fns": None}
    with pytest.warns(DeprecationWarning):  # the stand-in does warn on the old keyword
        _EngineLearner(rl_cluster=engine, algo_config=config, reward_fns=reward)


def test_engine_keyword_of_the_installed_tunix():
    from tunix.rl.grpo import grpo_learner

    keyword = og_tunix.engine_keyword()
    assert keyword == og_tunix.engine_keyword(grpo_learner.GRPOLearner)
    if importlib.metadata.version("google-tunix") == "0.1.7":
        assert keyword == "rl_cluster"


@pytest.mark.parametrize(
    ("config_cls", "extra"),
    [(_ConfigWithRolloutLogps, {"use_rollout_logps": False}), (_ConfigWithoutRolloutLogps, {})],
)
def test_exact_gradient_settings_name_use_rollout_logps_where_it_exists(config_cls, extra):
    settings = og_tunix.exact_gradient_settings(config_cls)
    assert settings == {
        "beta": 0.0,
        "num_iterations": 1,
        "loss_agg_mode": "seq-mean-token-sum",
        **extra,
    }
    config_cls(**settings)  # every setting is a field of the config


def test_installed_ordergrad_config_takes_the_exact_settings():
    from tunix.rl.grpo import grpo_learner

    settings = og_tunix.exact_gradient_settings()
    assert settings == og_tunix.exact_gradient_settings(grpo_learner.GRPOConfig)
    config = og_tunix.OrderGradConfig(k=4, objective="TopM:2", num_generations=8, **settings)
    for name, value in settings.items():
        assert getattr(config, name) == value
    fields = {f.name for f in dataclasses.fields(grpo_learner.GRPOConfig)}
    ours = {f.name for f in dataclasses.fields(og_tunix.OrderGradConfig)}
    assert ("use_rollout_logps" in settings) == ("use_rollout_logps" in fields)
    assert ("use_rollout_logps" in ours) == ("use_rollout_logps" in fields)  # none in 0.1.7


def test_ordergrad_config_defaults_use_rollout_logps_false_where_tunix_has_it(monkeypatch):
    """Import the adapter against a GRPOConfig with tunix head's ``use_rollout_logps=True``."""
    from tunix.rl.grpo import grpo_learner

    import ordergrad_jax.integrations

    @dataclasses.dataclass(kw_only=True)
    class HeadGRPOConfig(grpo_learner.GRPOConfig):
        use_rollout_logps: bool = True

    monkeypatch.setattr(grpo_learner, "GRPOConfig", HeadGRPOConfig)
    monkeypatch.delitem(sys.modules, "ordergrad_jax.integrations.tunix")
    monkeypatch.setattr(ordergrad_jax.integrations, "tunix", og_tunix)  # restored afterwards
    head = importlib.import_module("ordergrad_jax.integrations.tunix")
    assert head is not og_tunix
    config = head.OrderGradConfig(k=4, objective="TopM:2", num_generations=8)
    assert config.use_rollout_logps is False  # tunix's default True is not exact
    assert head.exact_gradient_settings()["use_rollout_logps"] is False
    explicit = head.OrderGradConfig(
        k=4, objective="TopM:2", num_generations=8, use_rollout_logps=True
    )
    assert explicit.use_rollout_logps is True  # a user's choice stands


# ------------------------------------------------------------------------------------------------
# End to end in tunix's GRPO learner.


def _tiny_qwen3(vocab_size: int):
    """A one-layer Qwen3 of tunix's, small enough for CPU tests."""
    from flax import nnx
    from tunix.models.qwen3 import model as qwen3

    cfg = qwen3.ModelConfig(
        num_layers=1,
        vocab_size=vocab_size,
        embed_dim=32,
        hidden_dim=64,
        num_heads=2,
        head_dim=16,
        num_kv_heads=1,
        rope_theta=1_000_000,
        norm_eps=1e-6,
        use_tied_embedding=True,
    )
    return qwen3.Qwen3(cfg, rngs=nnx.Rngs(params=0))


def _engine_class(rl_cluster_lib):
    """tunix's ``RLEngine`` where it exists, else 0.1.7's ``RLCluster``."""
    return getattr(rl_cluster_lib, "RLEngine", None) or rl_cluster_lib.RLCluster


def _tiny_cluster(vocab_size: int, steps: int):
    import jax
    import optax
    from tunix.rl import rl_cluster as rl_cluster_lib
    from tunix.rl.rollout import base_rollout

    model = _tiny_qwen3(vocab_size)
    mesh = jax.make_mesh((1, 1), ("fsdp", "tp"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    role = rl_cluster_lib.Role
    config = rl_cluster_lib.ClusterConfig(
        role_to_mesh={role.ACTOR: mesh, role.REFERENCE: mesh, role.ROLLOUT: mesh},
        rollout_engine="vanilla",
        offload_to_cpu=False,
        training_config=rl_cluster_lib.RLTrainingConfig(
            actor_optimizer=optax.sgd(1e-2), eval_every_n_steps=1000, max_steps=steps
        ),
        rollout_config=base_rollout.RolloutConfig(
            max_tokens_to_generate=6, max_prompt_length=8, kv_cache_size=32, temperature=1.0
        ),
    )
    return model, mesh, config


@pytest.mark.training
@pytest.mark.filterwarnings("error:.*(rl_cluster|RLCluster):DeprecationWarning")
@pytest.mark.parametrize("route", ["OrderGradConfig", "GRPOConfig+register"])
def test_end_to_end_in_tunix_grpo_learner(route):
    import jax
    from flax import nnx
    from tunix.rl import function_registry
    from tunix.rl import rl_cluster as rl_cluster_lib
    from tunix.rl.grpo import grpo_learner
    from tunix.tests import test_common

    vocab = test_common.MockVocab()  # tunix's own test vocabulary (words -> ids)
    steps, n, k = 2, 8, 4
    model, _, cluster_config = _tiny_cluster(vocab.GetPieceSize(), steps)
    cluster = _engine_class(rl_cluster_lib)(
        actor=model, reference=model, tokenizer=vocab, cluster_config=cluster_config
    )

    # Capture what the jitted policy loss itself receives (the advantages the update used).
    seen_in_loss: list[np.ndarray] = []
    grpo_loss = function_registry.get_policy_loss_fn("grpo")

    @function_registry.register_policy_loss_fn("ordergrad_jax_test_capture")
    def capture_loss(model, train_example, **kwargs):
        jax.debug.callback(lambda a: seen_in_loss.append(np.asarray(a)), train_example.advantages)
        return grpo_loss(model, train_example, **kwargs)

    rewards_given: list[np.ndarray] = []

    def reward_fn(prompts, completions, **kwargs):
        r = [float(len(c)) + 0.25 * c.count("world") for c in completions]  # few ties
        rewards_given.append(np.asarray(r))
        return r

    common = dict(num_generations=n, beta=0.0, policy_loss_fn="ordergrad_jax_test_capture")
    if route == "OrderGradConfig":  # the two-line switch of the module docstring
        algo = og_tunix.OrderGradConfig(
            k=k, objective="TopM:2", loss_agg_mode="seq-mean-token-sum", **common
        )
    else:
        algo = grpo_learner.GRPOConfig(
            advantage_estimator=og_tunix.register(k=k, objective="TopM:2"), **common
        )
    learner = og_tunix.make_learner(cluster, algo, reward_fn)  # rl_engine= or rl_cluster=
    before = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
    prompts = [np.array(["hello world", "My name is"]), np.array(["Tunix training", "hello there"])]
    learner.train([{"prompts": p} for p in prompts])

    assert len(rewards_given) == steps
    assert len(seen_in_loss) >= steps
    for step, rewards in enumerate(rewards_given):
        assert rewards.shape == (2 * n,)
        expected = k * brute_force_advantages(rewards.reshape(2, n), k, ALPHA[("TopM:2", k)])
        np.testing.assert_allclose(seen_in_loss[step], expected.reshape(-1), rtol=1e-5, atol=1e-4)
    after = jax.tree.map(np.asarray, nnx.state(cluster.actor_trainer.model, nnx.Param))
    changed = jax.tree.leaves(jax.tree.map(lambda a, b: bool(np.any(a != b)), before, after))
    assert any(changed), "the learner did not update the policy"
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(after))


# ------------------------------------------------------------------------------------------------
# The gradient of tunix's GRPO loss under exact_gradient_settings() is og.lr_loss's.


def _grpo_loss_and_lr_loss_gradients(old_logp_offset=None):
    """Gradients (w.r.t. a tiny Qwen3's parameters) of tunix's GRPO loss on OrderGrad advantages
    and of ``og.lr_loss`` on the same completions' sequence log-probabilities.

    2 prompts x N = 6 completions of up to 4 tokens (ragged), rewards N(0, 1), TopM:2 of K = 4,
    the config from :func:`exact_gradient_settings`. ``old_logp_offset`` ``[12, 4]``: when given,
    the old policy's per-token log-probabilities are the current ones plus it (a sampler that
    disagrees with the trainer, as ``use_rollout_logps=True`` would give); else ``None`` (the
    trainer's own, what the learner passes with ``num_iterations=1`` and no rollout log-probs).
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from tunix.rl import algo_core, common, function_registry

    groups, n, k, length, vocab, pad_id, eos_id = 2, 6, 4, 4, 16, 0, 1
    rng = np.random.default_rng(0)
    prompt_ids = jnp.asarray(rng.integers(2, vocab, (groups * n, 3)), jnp.int32)
    completion_ids = jnp.asarray(rng.integers(2, vocab, (groups * n, length)), jnp.int32)
    lengths = rng.integers(1, length + 1, groups * n)
    completion_mask = jnp.asarray(np.arange(length)[None, :] < lengths[:, None], jnp.int32)
    rewards = rng.standard_normal((groups, n)).astype(np.float32)

    config = og_tunix.OrderGradConfig(
        k=k, objective="TopM:2", num_generations=n, **og_tunix.exact_gradient_settings()
    )
    if not hasattr(config, "temperature"):
        config.temperature = 1.0  # what GRPOLearner sets from the rollout config
    advantages = function_registry.get_advantage_estimator(config.advantage_estimator)(
        rewards=rewards.reshape(-1), num_generations=n
    )
    graphdef, state = nnx.split(_tiny_qwen3(vocab))

    def per_token_logp(st):
        return common.compute_per_token_logps(
            graphdef,
            st,
            prompt_tokens=prompt_ids,
            completion_tokens=completion_ids,
            pad_id=pad_id,
            eos_id=eos_id,
            stop_gradient=False,
        )

    old = None
    if old_logp_offset is not None:
        old = jax.lax.stop_gradient(per_token_logp(state)) + old_logp_offset
    example = common.TrainExample(
        prompt_ids=prompt_ids,
        prompt_mask=jnp.ones_like(prompt_ids),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        advantages=advantages,
        ref_per_token_logps=None,
        old_per_token_logps=old,
    )
    loss_fn = function_registry.get_policy_loss_fn(config.policy_loss_fn)
    assert loss_fn is algo_core.grpo_loss_fn

    def tunix_loss(st):
        return loss_fn(nnx.merge(graphdef, st), example, config, pad_id, eos_id)[0]

    def lr_loss(st):
        seq_logp = (per_token_logp(st) * completion_mask).sum(-1).reshape(groups, n)
        return og.lr_loss(seq_logp, rewards, k, "TopM:2")

    return jax.grad(tunix_loss)(state), jax.grad(lr_loss)(state)


def _max_abs_difference(a, b) -> float:
    import jax

    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b)))


@pytest.mark.once  # tunix's model runs in float32 and the tolerance is the same under x64
def test_grpo_loss_gradient_is_lr_loss_gradient_under_the_exact_settings():
    import jax

    got, want = _grpo_loss_and_lr_loss_gradients()
    scale = max(float(np.max(np.abs(x))) for x in jax.tree.leaves(want))
    assert scale > 0
    assert _max_abs_difference(got, want) <= 1e-5 * scale


@pytest.mark.once  # a difference of 1% of the scale: the dtype does not change it
def test_sampler_log_probs_as_old_policy_change_the_gradient():
    """What ``use_rollout_logps=True`` would do: the ratio is no longer 1 and the gradient not
    ``og.lr_loss``'s."""
    import jax

    offset = 0.3 * np.random.default_rng(1).standard_normal((12, 4)).astype(np.float32)
    got, want = _grpo_loss_and_lr_loss_gradients(old_logp_offset=offset)
    scale = max(float(np.max(np.abs(x))) for x in jax.tree.leaves(want))
    assert _max_abs_difference(got, want) > 1e-2 * scale
