"""Why the LM RL loop does or does not learn: measurements from one fixed SFT start.

``ordergrad-jax run lm-diagnose --set mode=MODE [--set key=value ...]`` (:class:`DiagnoseConfig`:
the mode's options and the ``lm-rl`` config as its ``lm`` part, whose keys ``--set`` takes bare or
dotted as for ``run lm-rl``; ``--set sft_cache=DIR`` shares the warm start between calls):

- ``grads``: the surrogate's gradient on ``batches`` independent batches (``P x N`` each) at
  the SFT parameters: each parameter group's share of the squared norm (of one batch's gradient
  and of the mean), and the mean cosine between the gradients of two independent batches (the
  per-step signal-to-noise: a batch gradient is signal + noise with ``cos ~ |signal|^2 /
  |batch gradient|^2``), overall and per group; also the cosine of Adam's first step
  (``sign(g)``) with the leave-one-out mean gradient.
- ``line``: held-out pass@1 and the policy's KL to the SFT start after moving the parameters a
  fixed L2 distance (``distances``, both signs) along a direction (the mean gradient, its part on
  one group, Adam's first step, a random direction): the curvature of the objective and of the
  policy along each.
- ``sharpen``: held-out pass@1 with all logits multiplied by ``scales`` (the final RMSNorm
  scale): how much sharpening alone (a lower temperature) would give.
- ``trial``: short RL runs of ``trial_steps`` from the SFT start with each update rule of
  ``opts`` (see :func:`make_tx`), the held-out pass@1 / pass@16 (one fixed evaluation key) and KL
  to the SFT start every ``eval_every`` steps.
- ``forms`` (the scratchpad task, ``--set scratchpad=...``): held-out completions split by form,
  direct answer or scratchpad first: each form's share, solve rate and mean length, at the SFT
  start and at the last checkpoint of each of ``runs`` (``lm-rl`` run folders of the same task).
- ``start``: the start on the first ``eval_prompts`` held-out prompts x ``samples`` completions
  (common random numbers, ``testbed.py``): pass@k, greedy accuracy, the share of prompts solved
  in ``(0, 0.05)`` of samples, the solve-rate histogram and (carry task) the solve rate by
  carry-chain length; the per-prompt counts go to the run folder's ``counts.npz``.

Every mode writes its rows to the run folder's ``metrics.jsonl`` (and prints them): first a header
``{"mode", "set", "sft"}`` (``set``: the ``lm`` part's differences from the ``lm-rl`` defaults as
``key=value``; ``sft``: the start's evaluation), then one row per measurement.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ordergrad_experiments.common.config import leaf_paths
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.lm import model as lm_model
from ordergrad_experiments.lm import rl, sampling
from ordergrad_experiments.lm import run as lm_run
from ordergrad_experiments.lm import sharding as lm_sharding
from ordergrad_experiments.lm.config import QUICK as LM_QUICK
from ordergrad_experiments.lm.config import LMConfig
from ordergrad_experiments.lm.forms import forms

GROUPS = ("embed", "norm", "attn", "mlp")
"""Parameter groups: the tied token embedding / output head, the RMSNorm scales, attention
projections, MLP weights."""


def group_of(path) -> str:
    """The group (:data:`GROUPS`) of a parameter by its key path."""
    name = jax.tree_util.keystr(path)
    if "embedder" in name:
        return "embed"
    if "norm" in name:
        return "norm"
    return "attn" if "attn" in name else "mlp"


@dataclasses.dataclass(frozen=True)
class Bench:
    """A fixed SFT start and everything an RL step and an evaluation need."""

    cfg: LMConfig
    graphdef: Any
    params: Any
    setup: rl.StepSetup
    rl: tuple[np.ndarray, np.ndarray]
    """RL's prompt pool (``TaskSetup.rl``)."""
    heldout: tuple[np.ndarray, np.ndarray]
    evaluate: Any
    eval_key: jax.Array
    mesh: Any
    sft_row: dict
    kl_to_sft: Any
    """``params -> mean per-token KL(SFT || params)`` on fixed SFT samples of held-out prompts."""


def prepare(cfg: LMConfig) -> Bench:
    mesh = lm_sharding.make_mesh(cfg.mesh)
    tok, graphdef, params = lm_run.build_model(cfg, mesh)
    ts = lm_run.task_setup(cfg, tok)
    (held_p, held_a), s = ts.heldout, ts.step
    evaluate = rl.make_evaluate(graphdef, held_p, held_a, s, cfg.eval_samples, cfg.pass_ks, mesh)
    eval_key = jax.random.key(cfg.seed + 1_000_003)
    params, row = lm_run.sft_row(
        cfg, graphdef, params, ts.train, tok.pad_id, evaluate, eval_key, mesh, ts.scratchpad
    )
    kl = make_kl_to(graphdef, params, held_p, s, samples=4, key=jax.random.key(7))
    return Bench(cfg, graphdef, params, s, ts.rl, ts.heldout, evaluate, eval_key, mesh, row, kl)


def make_kl_to(graphdef, ref_params, prompts, s: rl.StepSetup, samples: int, key):
    """``params -> KL(ref || params)`` per completion token, estimated on ``samples``
    completions of the reference policy per prompt (mean of ``log p_ref - log p``)."""
    rep = sampling.repeat_prompts(jnp.asarray(prompts), samples)
    out = s.sample(graphdef, ref_params, key, rep, top_p=1.0)
    tokens = jnp.concatenate([rep, out.tokens], 1)
    valid = jnp.concatenate([rep != s.pad_id, out.mask], 1)
    lp = rep.shape[1]

    def logp(params):
        lg, _ = lm_model.token_logprobs(graphdef, params, tokens, valid, s.config.temperature)
        return lg[:, lp - 1 :]

    ref = logp(ref_params)

    @jax.jit
    def kl(params):
        return jnp.sum(jnp.where(out.mask, ref - logp(params), 0.0)) / jnp.sum(out.mask)

    return kl


def make_tx(spec: str, total: int = 1000) -> optax.GradientTransformation:
    """An update rule from ``RULE:key=value,...``.

    ``RULE`` is ``adam`` (``optax.adam(lr, eps=eps)``), ``sgd`` (``optax.sgd(lr)``) or ``ngd``
    (the gradient scaled to L2 norm ``lr``: a fixed-length step along it). Keys: ``lr``,
    ``clip`` (global-norm clip before the rule; 0: none; default 1), ``eps`` (Adam), and a
    learning-rate multiplier per parameter group (``embed=0`` freezes the tied embedding/head;
    :data:`GROUPS`). E.g. ``adam:lr=1e-4,embed=0``, ``sgd:lr=0.01,clip=0``.
    """
    rule, _, rest = spec.partition(":")
    opts = {"lr": 1e-4, "clip": 1.0, "eps": 1e-8}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        opts[key] = float(value)
    scales = {g: opts.pop(g, 1.0) for g in GROUPS}
    if set(opts) - {"lr", "clip", "eps"}:
        raise ValueError(f"unknown option in {spec!r}: {sorted(set(opts) - {'lr', 'clip', 'eps'})}")
    parts = [optax.clip_by_global_norm(opts["clip"])] if opts["clip"] > 0 else []
    masked = group_mask(scales)
    if rule == "adam":
        parts += [masked, optax.adam(opts["lr"], eps=opts["eps"])]
    elif rule == "sgd":
        parts += [masked, optax.sgd(opts["lr"])]
    elif rule == "ngd":
        parts += [masked, normalize_to(opts["lr"])]
    else:
        raise ValueError(f"unknown rule {rule!r} in {spec!r}: adam, sgd or ngd")
    return optax.chain(*parts, group_scale(scales))


def group_mask(scales: dict[str, float]) -> optax.GradientTransformation:
    """Zero the gradient of frozen groups (scale 0) before the rule sees it (so a normalised
    rule spends its step on the others)."""
    return _by_group({g: 0.0 if v == 0 else 1.0 for g, v in scales.items()})


def group_scale(scales: dict[str, float]) -> optax.GradientTransformation:
    return _by_group(scales)


def _by_group(scales: dict[str, float]) -> optax.GradientTransformation:
    def update(updates, state, params=None):
        del params
        out = jax.tree_util.tree_map_with_path(lambda p, u: u * scales[group_of(p)], updates)
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def normalize_to(length: float) -> optax.GradientTransformation:
    def update(updates, state, params=None):
        del params
        norm = optax.global_norm(updates)
        return jax.tree.map(lambda u: -length * u / jnp.maximum(norm, 1e-12), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_phases(bench: Bench, tx, state: rl.RLState) -> rl.Phases:
    return rl.make_phases(
        bench.graphdef,
        tx,
        *bench.rl,
        bench.setup,
        bench.mesh,
        lm_sharding.shardings_of(state.params),
        lm_sharding.shardings_of(state.opt_state),
    )


def batch_gradients(bench: Bench, key, num_batches: int) -> list:
    """The surrogate's gradient at the SFT params on ``num_batches`` independent batches."""
    tx = optax.identity()
    state = lm_run.initial_state(bench.cfg, bench.params, tx, bench.mesh)
    phases = make_phases(bench, tx, state)
    s = bench.setup

    @jax.jit
    def grad(params, rollout, adv, old):
        return jax.grad(rl.surrogate_loss, argnums=1, has_aux=True)(
            bench.graphdef, params, rollout, adv.reshape(-1), old, old, s
        )[0]

    out = []
    for k in jax.random.split(key, num_batches):
        rollout = phases.sample(bench.params, k)
        scored = phases.score(bench.params, bench.params, rollout)
        out.append(grad(bench.params, rollout, phases.advantage(scored.rewards), scored.old_logp))
    return out


def _flat_groups(tree) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {g: [] for g in GROUPS}
    for path, x in jax.tree_util.tree_leaves_with_path(tree):
        parts[group_of(path)].append(np.asarray(x, np.float64).ravel())
    flat = {g: np.concatenate(v) for g, v in parts.items() if v}
    flat["all"] = np.concatenate([flat[g] for g in GROUPS if g in flat])
    return flat


def _cos(a, b) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def gradient_report(grads: list) -> dict:
    """Group shares of the squared norm and the batch-to-batch cosines (module doc)."""
    flats = [_flat_groups(g) for g in grads]
    n = len(flats)
    report: dict[str, Any] = {"batches": n}
    mean = {key: np.mean([f[key] for f in flats], 0) for key in flats[0]}
    for key in flats[0]:
        pairs = [_cos(flats[i][key], flats[j][key]) for i in range(n) for j in range(i + 1, n)]
        report[f"cos_pairs_{key}"] = float(np.mean(pairs))
        report[f"size_{key}"] = int(flats[0][key].size)
        if key != "all":
            sq = sum(np.sum(f[key] ** 2) for f in flats) / sum(np.sum(f["all"] ** 2) for f in flats)
            report[f"share_batch_{key}"] = float(sq)
            report[f"share_mean_{key}"] = float(np.sum(mean[key] ** 2) / np.sum(mean["all"] ** 2))
    loo = [(n * mean["all"] - f["all"]) / (n - 1) for f in flats]
    pairs = list(zip([f["all"] for f in flats], loo, strict=True))
    report["cos_batch_loo"] = float(np.mean([_cos(g, m) for g, m in pairs]))
    report["cos_sign_loo"] = float(np.mean([_cos(np.sign(g), m) for g, m in pairs]))
    report["norm_batch"] = float(np.mean([np.linalg.norm(f["all"]) for f in flats]))
    report["norm_mean"] = float(np.linalg.norm(mean["all"]))
    return report


def _unit(tree):
    norm = optax.global_norm(tree)
    return jax.tree.map(lambda x: x / norm, tree)


def _only(tree, groups: tuple[str, ...]):
    return jax.tree_util.tree_map_with_path(
        lambda p, x: x if group_of(p) in groups else jnp.zeros_like(x), tree
    )


def evaluate_at(bench: Bench, params) -> dict:
    ev = rl.as_numpy(bench.evaluate(params, jax.random.fold_in(bench.eval_key, 0)))
    out = {k: float(v) for k, v in ev.items() if k.startswith("pass@") or k == "length"}
    out["kl_to_sft"] = float(bench.kl_to_sft(params))
    return out


def line_search(bench: Bench, grads: list, distances, key) -> list[dict]:
    """Move the SFT params ``t`` (L2) along each direction (descent of the surrogate = ascent
    of reward for ``t > 0``) and evaluate."""
    mean = jax.tree.map(lambda *g: -sum(g) / len(g), *grads)
    rest = tuple(g for g in GROUPS if g != "embed")
    leaves, treedef = jax.tree.flatten(mean)
    keys = jax.random.split(key, len(leaves))
    noise = [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    directions = {
        "mean_grad": mean,
        "mean_grad_embed": _only(mean, ("embed",)),
        "mean_grad_not_embed": _only(mean, rest),
        "adam_first_step": jax.tree.map(lambda g: -jnp.sign(g), grads[0]),
        "random": jax.tree.unflatten(treedef, noise),
    }
    rows = []
    for name, d in directions.items():
        d = _unit(d)
        for t in distances:
            params = jax.tree.map(lambda p, u, t=t: p + t * u, bench.params, d)
            rows.append({"direction": name, "t": t, **evaluate_at(bench, params)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def sharpened(params, scale: float):
    """``params`` with the final RMSNorm scale (so every logit) multiplied by ``scale``."""
    return jax.tree_util.tree_map_with_path(
        lambda p, x: x * scale if "final_norm" in jax.tree_util.keystr(p) else x, params
    )


def trial(bench: Bench, spec: str, steps: int, eval_every: int) -> list[dict]:
    """``steps`` RL steps from the SFT start with the update rule ``spec``; evaluation rows."""
    tx = make_tx(spec, steps)
    # a copy: the learn phase donates the state's params
    state = lm_run.initial_state(bench.cfg, jax.tree.map(jnp.copy, bench.params), tx, bench.mesh)
    phases = make_phases(bench, tx, state)
    rows = [{"opt": spec, "step": 0, **evaluate_at(bench, state.params)}]
    print(json.dumps(rows[-1]), flush=True)
    tic = time.perf_counter()
    rewards: list[float] = []
    for i in range(1, steps + 1):
        state, m = rl.train_step(phases, state)
        rewards.append(float(m["reward"]))
        if i % eval_every == 0 or i == steps:
            row = {"opt": spec, "step": i, **evaluate_at(bench, state.params)}
            row["train_reward"] = float(np.mean(rewards[-eval_every:]))
            row["grad_norm"] = float(m["grad_norm"])
            row["wall_s"] = round(time.perf_counter() - tic, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


MODES = ("grads", "line", "sharpen", "trial", "forms", "start")


@dataclasses.dataclass(frozen=True)
class DiagnoseConfig:
    """One diagnostic measurement (module doc) from the SFT start of ``lm``."""

    mode: str = "sharpen"
    """``grads``, ``line``, ``sharpen``, ``trial``, ``forms`` or ``start``."""
    samples: int = 64
    """start: completions per held-out prompt."""
    batches: int = 8
    """grads, line: independent batches of the gradient."""
    distances: tuple[float, ...] = (0.005, 0.015, 0.05)
    """line: L2 distances moved along each direction (each also negated)."""
    scales: tuple[float, ...] = (1.25, 1.5, 2.0, 3.0)
    """sharpen: logit multipliers."""
    opts: tuple[str, ...] = ("adam:lr=1e-4",)
    """trial: update rules (:func:`make_tx`), one trial each; on the command line a comma starts
    the next rule only before ``RULE:`` (``opts=adam:lr=1e-4,embed=0,sgd:lr=0.01``)."""
    trial_steps: int = 40
    """trial: RL steps of each trial."""
    eval_every: int = 10
    """trial: steps between evaluations."""
    runs: tuple[str, ...] = ()
    """forms: ``lm-rl`` run folders (their last checkpoints)."""
    lm: LMConfig = dataclasses.field(default_factory=LMConfig)
    """The SFT start and the RL step measured (``run lm-rl``'s config)."""


QUICK = DiagnoseConfig(mode="sharpen", scales=(2.0,), lm=LM_QUICK)
"""The smoke size: ``lm-rl``'s quick start, one sharpening scale."""


def update_rules(items: tuple[str, ...]) -> list[str]:
    """``opts`` as rules: an item without ``RULE:`` continues the rule before it (a command-line
    tuple splits ``adam:lr=1e-4,embed=0`` at its comma)."""
    rules: list[str] = []
    for item in items:
        if rules and ":" not in item.partition("=")[0]:
            rules[-1] += "," + item
        else:
            rules.append(item)
    return rules


GENERIC_KEYS = ("name", "options", "total", "num_chunks")
"""Leaf names the header writes dotted (``estimator.name``, ``budget.total``), though unique."""


def _format(value) -> str:
    if isinstance(value, tuple | list):
        return ",".join(_format(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings(cfg: LMConfig, base: LMConfig | None = None) -> list[str]:
    """``cfg``'s differences from ``base`` (the defaults) as ``--set`` items, keyed by the bare
    leaf name where it names one leaf (``num_groups=64``), else (and for :data:`GENERIC_KEYS`)
    the path."""
    base = base or LMConfig()
    paths = list(leaf_paths(cfg))
    names = [p.rsplit(".", 1)[-1] for p in paths]
    out = []
    for path, name in zip(paths, names, strict=True):
        value, default = _leaf(cfg, path), _leaf(base, path)
        if value != default:
            bare = names.count(name) == 1 and name not in GENERIC_KEYS
            out.append(f"{name if bare else path}={_format(value)}")
    return out


def _leaf(config, path: str):
    for part in path.split("."):
        config = getattr(config, part)
    return config


def _shown(rows: list[dict]) -> list[dict]:
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def start(bench: Bench, samples: int, folder=None) -> list[dict]:
    """The ``start`` mode's rows (module doc); the counts to ``folder/counts.npz``."""
    from ordergrad_experiments.lm import testbed
    from ordergrad_experiments.lm.tokenizer import CharTokenizer

    held_p, held_a = bench.heldout
    tic = time.perf_counter()
    count = testbed.make_count(bench.graphdef, held_p, held_a, bench.setup, samples)
    counts = count(bench.params, 0)
    greedy = testbed.make_greedy(bench.graphdef, held_p, held_a, bench.setup)(bench.params)
    ks = tuple(k for k in (1, 4, 16, 64, 128) if k <= samples)
    rows = [{"kind": "start", **testbed.start_stats(counts, samples, greedy, ks)}]
    rows[0]["eval_s"] = time.perf_counter() - tic
    rows += [{"kind": "histogram", **r} for r in testbed.rate_histogram(counts / samples)]
    task = lm_run.task_setup(bench.cfg, CharTokenizer()).task
    if isinstance(task, testbed.CarryTask):
        chains = task.chains("heldout")[: len(counts)]
        rows += [
            {"kind": "chain", **r} for r in testbed.solve_rate_by_chain(counts, samples, chains)
        ]
    if folder is not None:
        ids = np.arange(len(counts))
        testbed.write_counts(
            f"{folder}/counts.npz", testbed.Counts(counts[None], [0], ids, samples)
        )
    return _shown(rows)


def measure(config: DiagnoseConfig, emit, folder=None) -> None:
    """Runs ``config``'s mode; ``emit(rows)`` gets each batch of rows as it is measured
    (``folder``: where the ``start`` mode writes its counts)."""
    if config.mode not in MODES:
        raise ValueError(f"unknown diagnose mode {config.mode!r}; modes: {', '.join(MODES)}")
    if config.mode == "forms" and not config.runs:
        raise ValueError("forms needs runs=RUN_FOLDER,... (lm-rl runs of the same task)")
    cfg = config.lm
    bench = prepare(cfg)
    emit(
        _shown(
            [{"mode": config.mode, "set": settings(cfg), "sft": evaluate_at(bench, bench.params)}]
        )
    )
    key = jax.random.key(cfg.seed + 12345)
    if config.mode in ("grads", "line"):
        grads = batch_gradients(bench, key, config.batches)
        emit(_shown([gradient_report(grads)]))
        if config.mode == "line":
            dist = list(config.distances)
            emit(line_search(bench, grads, [-d for d in dist[::-1]] + dist, key))
    elif config.mode == "sharpen":
        for scale in config.scales:
            row = {"logit_scale": scale, **evaluate_at(bench, sharpened(bench.params, scale))}
            emit(_shown([row]))
    elif config.mode == "forms":
        emit(forms(bench, list(config.runs)))
    elif config.mode == "start":
        emit(start(bench, config.samples, folder))
    else:
        for spec in update_rules(config.opts):
            emit(trial(bench, spec, config.trial_steps, config.eval_every))


def run(config: DiagnoseConfig, writer: RunWriter, progress=None) -> list[dict]:
    """``ordergrad-jax run lm-diagnose``: :func:`measure` into ``writer``'s run folder (every row
    in ``metrics.jsonl``, in order; ``summary.md``: the rows as tables)."""
    del progress
    writer.write_config(config)
    measure(config, writer.log, writer.path if writer.primary else None)
    rows = writer.metrics
    flat = [{k: v for k, v in r.items() if not isinstance(v, dict | list)} for r in rows[1:]]
    head = rows[0]
    summary = [f"# lm-diagnose {head['mode']}", "", f"settings: {' '.join(head['set']) or '-'}"]
    summary += ["", "SFT start: " + ", ".join(f"{k} {v:.4g}" for k, v in head["sft"].items())]
    if flat:
        summary += ["", markdown_table(flat, floatfmt=".4g")]
    writer.write_summary("\n".join(summary) + "\n")
    return rows
