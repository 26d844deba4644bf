"""Run by tests/test_lm_sharded.py in a subprocess with 8 simulated CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=8 must be set before jax is imported).
Prints one JSON object with what the test asserts."""

from __future__ import annotations

import json
import os

if "--xla_force_host_platform_device_count=8" not in os.environ.get("XLA_FLAGS", ""):
    raise SystemExit("set XLA_FLAGS=--xla_force_host_platform_device_count=8 first")

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ordergrad_experiments.common.config import EstimatorConfig, GroupsConfig
from ordergrad_experiments.lm import model as lm_model
from ordergrad_experiments.lm import rl, run, tasks
from ordergrad_experiments.lm import sharding as lm_sharding
from ordergrad_experiments.lm.config import LMConfig
from ordergrad_experiments.lm.tokenizer import CharTokenizer

TOK = CharTokenizer()
SIZES = lm_model.TinyQwen3(num_layers=1, embed_dim=32, hidden_dim=64, head_dim=8)
DTYPE = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
TASK = tasks.ArithmeticTask(digits=2, num_train=256, num_heldout=8)
PROMPTS, ANSWERS = TASK.arrays("train", TOK)
CONFIG = LMConfig(
    groups=GroupsConfig(num_groups=8, group_size=4),
    estimator=EstimatorConfig("ordergrad", "TopM:1", 2),
    ppo_epochs=2,
    clip_eps=0.2,
    kl_coef=0.1,
    length_penalty=0.1,
)
SETUP = run.setup(CONFIG, TOK, max_len=ANSWERS.shape[1] + 1)


def setup(mesh):
    fsdp = "fsdp" if "fsdp" in mesh.axis_names else None
    shd = lm_model.sharding_config("model", fsdp)
    model = lm_model.tiny_qwen3(
        SIZES, TOK.vocab_size, jax.random.key(0), shd_config=shd, dtype=DTYPE
    )
    graphdef, params = lm_model.split(model)
    params = lm_sharding.shard_params(params, mesh)
    # Adam's step counter is a scalar that must be replicated on the mesh, not left on device 0.
    # eps=1e-3 keeps Adam's first step away from sign(g), where a rounding-level gradient could
    # flip an update between the 1- and 8-device programs.
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2, eps=1e-3))
    opt = lm_sharding.init_opt_state(tx, params, mesh)
    phases = rl.make_phases(
        graphdef,
        tx,
        PROMPTS,
        ANSWERS,
        SETUP,
        mesh,
        lm_sharding.shardings_of(params),
        lm_sharding.shardings_of(opt),
    )
    return graphdef, params, opt, phases


def one_step(mesh, rollout=None):
    _, params, opt, phases = setup(mesh)
    ref = jax.tree.map(jnp.copy, params)
    own = phases.sample(params, jax.random.key(1))
    if rollout is None:
        rollout = own
    rows = lm_sharding.batch_sharding(mesh, 2)
    rollout = jax.device_put(rl.Rollout(*map(np.asarray, rollout)), rows)
    scored = phases.score(params, ref, rollout)
    adv = phases.advantage(scored.rewards)
    new, opt, metrics = phases.learn(params, opt, rollout, adv, scored.old_logp, scored.ref_logp)
    return own, adv, new, metrics, opt


def spec_of(x):
    return tuple(x.sharding.spec)


def main():
    out = {"devices": jax.device_count()}
    single = lm_sharding.make_mesh((1, 1), jax.devices()[:1])
    mesh = lm_sharding.make_mesh((4, 2))
    roll1, adv1, new1, m1, _ = one_step(single)
    roll8, adv8, new8, m8, opt8 = one_step(mesh, roll1)
    out["same_tokens_fraction"] = float(
        np.mean(np.asarray(roll1.tokens) == np.asarray(roll8.tokens))
    )
    out["adv_max_diff"] = float(np.max(np.abs(np.asarray(adv1) - np.asarray(adv8))))
    out["loss"] = [float(m1["loss"]), float(m8["loss"])]
    out["grad_norm"] = [float(m1["grad_norm"]), float(m8["grad_norm"])]
    diffs = [
        float(
            np.max(np.abs(np.asarray(a) - np.asarray(b))) / (np.max(np.abs(np.asarray(a))) + 1e-30)
        )
        for a, b in zip(jax.tree.leaves(new1), jax.tree.leaves(new8), strict=True)
    ]
    out["param_max_rel_diff"] = max(diffs)
    out["param_changed"] = float(max(np.max(np.abs(np.asarray(a))) for a in jax.tree.leaves(new1)))
    layer = new8["layers"][0]
    out["opt_specs_match"] = all(
        m.sharding.spec == p.sharding.spec
        for m, p in zip(jax.tree.leaves(opt8[1][0].mu), jax.tree.leaves(new8), strict=True)
    )
    out["specs"] = {
        "q": spec_of(layer["attn"]["q_proj"]["w"]),
        "k": spec_of(layer["attn"]["k_proj"]["w"]),
        "o": spec_of(layer["attn"]["o_proj"]["w"]),
        "gate": spec_of(layer["mlp"]["gate_proj"]["kernel"]),
        "down": spec_of(layer["mlp"]["down_proj"]["kernel"]),
        "embed": spec_of(new8["embedder"]["input_embedding"]),
    }
    # FSDP variant: the embedding dimension of the weights on `fsdp`.
    fmesh = lm_sharding.make_mesh((2, 2, 2))
    _, fparams, _, _ = setup(fmesh)
    flayer = fparams["layers"][0]
    out["fsdp_specs"] = {
        "q": spec_of(flayer["attn"]["q_proj"]["w"]),
        "gate": spec_of(flayer["mlp"]["gate_proj"]["kernel"]),
    }
    # Advantage step: per-shard code only. Control: a global mean needs an all-reduce.
    rewards = jnp.zeros((8, 16), DTYPE)
    hlo = {}
    for name, params in (
        ("ordergrad", {"k": 4, "objective": "TopM:2"}),
        ("grpo", {}),
        ("rloo", {}),
        ("maxpo", {"k": 4}),
    ):
        import ordergrad_jax as og

        fn = lm_sharding.advantage_step(og.estimators.get(name, **params), mesh)
        hlo[name] = lm_sharding.collectives_in(fn.lower(rewards).compile().as_text())
    control = lm_sharding.advantage_step(lambda r: r - jnp.mean(r), mesh)
    hlo["control_global_mean"] = lm_sharding.collectives_in(
        control.lower(rewards).compile().as_text()
    )
    out["collectives"] = hlo
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
