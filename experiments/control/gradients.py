"""Gradient diagnostics of group-PG estimators at the policies of a learner's training run
(``ordergrad-jax run control-gradients``).

A group-PG learner (``control``: any ``run control`` config with ``algo=group_pg``) trains as
``run control`` does (seeds vmapped, chunk by chunk); after each chunk of ``at_chunks`` (0: the
initial policy) every seed's policy is probed: ``batches`` independent batches of the learner's
size (``G x N`` episodes of ``num_steps`` steps) are sampled, and on each batch the LR gradient of
each probed objective (``probes``: OrderGrad ``OBJECTIVE@K``, optionally ``/N`` for another group
size at the same ``G x N`` episodes) is computed from the same rollouts, as the learner's first
update step would (``update="lr"``, maths.md §5: ``(K/N) sum_i a_i grad log p_i``, averaged over
groups). Per probe and policy:

* ``snr``: ``|E g|^2 / tr Var g`` of one batch's gradient (``og.metrics.snr``, debiased
  numerator);
* ``alignment``: ``E_b cos(g_b, grad J_target)``, the expected cosine between one batch's
  gradient and the target objective's gradient (estimated from the other half of the batches, so
  that the two are independent): the first-order gain in the target per unit step along one
  batch's estimate, relative to the best direction; a direction-only optimiser (Adam after
  global-norm clipping) steps along it;
* ``cos_target``: the cosine between the probe's and the target's mean gradients (whether the
  two objectives ask for the same change at all);
* ``grad_norm``: the mean norm of one batch's gradient.

Rows ``kind="policy"`` give each probed policy's mean return and its target objective, the mean
over groups and batches of ``og.lstat`` of the batch returns (unbiased). This is how the project
measures why one estimator's learner ends below another on the other's own objective: a learner
whose single-batch steps align better with ``grad J_target`` climbs ``J_target`` faster, whatever
objective it names.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import ordergrad_jax as og
from ordergrad_experiments.common.runs import RunWriter, markdown_table
from ordergrad_experiments.control.config import QUICK as CONTROL_QUICK
from ordergrad_experiments.control.config import ControlConfig


@dataclasses.dataclass(frozen=True)
class GradientsConfig:
    """One diagnostic run: the learner, the policies probed and the objectives compared."""

    control: ControlConfig = dataclasses.field(default_factory=ControlConfig)
    """The learner (``run control``'s config, ``algo=group_pg``): env, groups, budget, seeds."""
    probes: tuple[str, ...] = ("Mean@4", "LowerTailMean:0.25@4")
    """OrderGrad objectives ``OBJECTIVE@K`` (``/N``: groups of N, same episodes per batch)."""
    target: str = "LowerTailMean:0.25@4"
    """The objective each probe's steps are aligned with; it must be one of ``probes``."""
    batches: int = 32
    """Independent batches per probed policy (even: the alignment splits them in halves)."""
    at_chunks: tuple[int, ...] = (0, 5, 10)
    """The policies probed: after this many of the learner's chunks (0: at initialisation)."""


QUICK = GradientsConfig(
    control=dataclasses.replace(CONTROL_QUICK, num_seeds=1),
    probes=("Mean@4", "LowerTailMean:0.25@4", "LowerTailMean:0.25@4/16"),
    batches=4,
    at_chunks=(0, 2),
)
"""CI size: CartPole's quick learner, one seed, the initial and final policies, 4 batches."""


@dataclasses.dataclass(frozen=True)
class Probe:
    """A parsed entry of ``probes``: ``OBJECTIVE@K[/N]``."""

    name: str
    objective: str
    k: int
    group_size: int

    @classmethod
    def parse(cls, text: str, group_size: int) -> Probe:
        """``"LowerTailMean:0.25@4"`` (the learner's ``group_size``) or ``"...@4/16"``.

        Raises:
          ValueError: not of that form, or K not below N.
        """
        head, _, n = text.partition("/")
        objective, at, k = head.rpartition("@")
        if not at or not k.isdigit() or (n and not n.isdigit()):
            raise ValueError(f"a probe is OBJECTIVE@K or OBJECTIVE@K/N; got {text!r}")
        probe = cls(text, objective, int(k), int(n) if n else group_size)
        og.estimators.get("ordergrad", k=probe.k, objective=probe.objective)
        if not 1 <= probe.k < probe.group_size:
            raise ValueError(
                f"probe {text!r}: needs 1 <= K < N; got K={probe.k}, N={probe.group_size}"
            )
        return probe


def _check(config: GradientsConfig) -> tuple[list[Probe], Probe]:
    control = config.control
    if control.algo != "group_pg":
        raise ValueError(f"control-gradients probes a group_pg learner; got algo={control.algo!r}")
    if config.batches < 2 or config.batches % 2:
        raise ValueError(f"batches must be even and >= 2; got {config.batches}")
    probes = [Probe.parse(p, control.groups.group_size) for p in config.probes]
    episodes = control.groups.num_groups * control.groups.group_size
    for probe in probes:
        if episodes % probe.group_size:
            raise ValueError(
                f"probe {probe.name!r}: groups of {probe.group_size} do not divide the batch of "
                f"{episodes} episodes"
            )
    if len(set(config.probes)) != len(config.probes):
        raise ValueError(f"probes must differ; got {config.probes}")
    matches = [p for p in probes if p.name == config.target]
    if not matches:
        raise ValueError(f"target {config.target!r} must be one of probes {config.probes}")
    target = matches[0]
    if sorted(config.at_chunks) != list(config.at_chunks) or not config.at_chunks:
        raise ValueError(f"at_chunks must be ascending and non-empty; got {config.at_chunks}")
    return probes, target


def batch_gradients(
    config: ControlConfig, probes: list[Probe], module: Any, env: Any, env_params: Any
) -> Callable[[Any, jax.Array], tuple[dict[str, jax.Array], dict[str, jax.Array]]]:
    """``(params, key) -> ({probe: flat gradient [P]}, {"mean": , "target:<probe>": })`` of one
    batch at the policy ``params``: one rollout of ``G x N`` episodes per group size (shared by
    the probes of that size), each probe's LR gradient ``grad (1/G) sum_g (K/N) sum_i a_gi log
    p_gi`` (the ascent direction) and the batch's mean return and each probe's objective (the
    mean over groups of ``og.lstat``)."""
    from ordergrad_envs.rollout import group_rollout
    from ordergrad_experiments.control.group_pg import policy_loss

    episodes_per_batch = config.groups.num_groups * config.groups.group_size
    sizes = sorted({p.group_size for p in probes})

    def gradients(params: Any, key: jax.Array):
        grads, values = {}, {}
        for size, k_roll in zip(sizes, jax.random.split(key, len(sizes)), strict=True):
            policy = module.merge(params)
            g = episodes_per_batch // size
            episodes = group_rollout(
                env, env_params, policy.sample, k_roll, g, size, config.num_steps
            )
            returns = episodes.returns  # [G, N]
            values.setdefault("mean", jnp.mean(returns))
            for probe in [p for p in probes if p.group_size == size]:
                adv = og.estimators.get("ordergrad", k=probe.k, objective=probe.objective)(returns)

                def loss(p, adv=adv, probe=probe, episodes=episodes):
                    # update="lr" (the default) reads no old log-probabilities
                    return policy_loss(module.merge(p), episodes, adv, None, scale=probe.k)[0]

                grad = jax.grad(loss)(params)
                grads[probe.name] = -ravel_pytree(grad)[0]
                values[f"target:{probe.name}"] = jnp.mean(
                    og.lstat(returns, probe.k, probe.objective)
                )
        return grads, values

    return gradients


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosines of the rows of ``a [..., P]`` with ``b [P]`` (0 where a norm is 0)."""
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b)
    return np.where((na > 0) & (nb > 0), a @ b / np.maximum(na * nb, 1e-300), 0.0)


def gradient_statistics(grads: dict[str, np.ndarray], target: str) -> dict[str, dict[str, float]]:
    """Per probe, from its per-batch gradients ``[B, P]`` (B even): ``snr`` (debiased),
    ``alignment`` (mean cosine of each batch's gradient with the target's mean gradient over the
    other half of the batches), ``cos_target`` (cosine of the two mean gradients) and
    ``grad_norm`` (mean per-batch norm); float64 on the host."""
    g_target = np.asarray(grads[target], np.float64)
    half = g_target.shape[0] // 2
    other = {0: g_target[half:].mean(0), 1: g_target[:half].mean(0)}
    out = {}
    for name, g in grads.items():
        g = np.asarray(g, np.float64)
        alignment = np.concatenate([_cosine(g[:half], other[0]), _cosine(g[half:], other[1])])
        out[name] = {
            "snr": float(og.metrics.snr(jnp.asarray(g), debias=True)),
            "alignment": float(alignment.mean()),
            "alignment_se": float(alignment.std(ddof=1) / np.sqrt(alignment.size)),
            "cos_target": float(_cosine(g.mean(0), g_target.mean(0))),
            "grad_norm": float(np.linalg.norm(g, axis=-1).mean()),
        }
    return out


def run(
    config: GradientsConfig,
    writer: RunWriter,
    progress: Callable[[Any], Any] | None = None,
) -> list[dict]:
    """Trains the learner chunk by chunk and probes its seeds' policies after the chunks of
    ``at_chunks``; rows ``kind="probe"`` (one per chunk, seed and probe) and ``kind="policy"``
    (one per chunk and seed) in ``metrics.jsonl``, their means over seeds in ``summary.md``.
    The run is short (minutes) and is not checkpointed: an interrupted run starts again."""
    from ordergrad_experiments.control import common
    from ordergrad_experiments.control.run import label, make_train

    probes, target = _check(config)
    control = config.control
    writer.write_config(config, jax=jax.__version__, device=str(jax.devices()[0]))
    trainer = make_train(control)
    if max(config.at_chunks) > trainer.num_chunks:
        raise ValueError(
            f"at_chunks {config.at_chunks} go past the learner's {trainer.num_chunks} chunks"
        )
    module, _ = common.policy_module(control, trainer.env, trainer.env_params)
    gradients = batch_gradients(control, probes, module, trainer.env, trainer.env_params)

    def probe_all(params: Any, key: jax.Array):
        keys = jax.random.split(key, config.batches)
        return jax.lax.map(lambda k: gradients(params, k), keys)

    probe_fn = jax.jit(jax.vmap(probe_all))
    key_train, key_probe = jax.random.split(jax.random.key(control.seed))
    state = jax.jit(jax.vmap(trainer.init))(jax.random.split(key_train, control.num_seeds))
    chunk_fn = jax.jit(jax.vmap(trainer.chunk))
    steps_per_chunk = trainer.iterations_per_chunk * trainer.steps_per_iteration
    method = label(control)
    done = 0
    for at in progress(config.at_chunks) if progress else config.at_chunks:
        while done < at:
            state, _ = chunk_fn(state)
            done += 1
        tic = time.perf_counter()
        keys = jax.random.split(jax.random.fold_in(key_probe, at), control.num_seeds)
        grads, values = jax.tree.map(np.asarray, probe_fn(state.params, keys))
        rows = []
        for s in range(control.num_seeds):
            where = {"learner": method, "chunk": at, "env_steps": at * steps_per_chunk, "seed": s}
            policy = {"kind": "policy", **where, "mean": float(values["mean"][s].mean())}
            policy["target"] = float(values[f"target:{target.name}"][s].mean())
            rows.append(policy)
            measured = gradient_statistics({p: g[s] for p, g in grads.items()}, target.name)
            rows += [{"kind": "probe", **where, "probe": p, **m} for p, m in measured.items()]
        rows[0]["probe_seconds"] = time.perf_counter() - tic
        writer.log(rows)
    writer.write_summary(summary(config, writer.metrics))
    return writer.metrics


def summary_rows(rows: list[dict]) -> list[dict]:
    """One row per learner, chunk and probe: the means over seeds of the probe statistics and of
    the policy's mean return and target objective; the alignment :func:`predicted_alignment`
    gives from those means (a check of its isotropic-noise model against the measured one) and,
    for each probe other than the target (the probe at cosine 1 with the target), the batch
    multiple beyond which the target's own estimate would align better
    (:func:`crossover_batches`)."""
    policies = [r for r in rows if r.get("kind") == "policy"]
    probes = [r for r in rows if r.get("kind") == "probe"]
    out = []
    for learner, chunk in dict.fromkeys((r["learner"], r["chunk"]) for r in policies):
        mine = [r for r in policies if (r["learner"], r["chunk"]) == (learner, chunk)]
        base = {
            "learner": learner,
            "chunk": chunk,
            "env_steps": mine[0]["env_steps"],
            "seeds": len(mine),
            "mean return": float(np.mean([r["mean"] for r in mine])),
            "target": float(np.mean([r["target"] for r in mine])),
        }
        for name in dict.fromkeys(r["probe"] for r in probes):
            these = [
                r
                for r in probes
                if (r["learner"], r["chunk"], r["probe"]) == (learner, chunk, name)
            ]
            stats = {s: float(np.mean([r[s] for r in these])) for s in ("snr", "alignment")}
            stats["cos_target"] = float(np.mean([r["cos_target"] for r in these]))
            out.append({**base, "probe": name, **stats})
        mine = [r for r in out if (r["learner"], r["chunk"]) == (learner, chunk)]
        (target,) = [r for r in mine if abs(r["cos_target"] - 1.0) < 1e-6]  # itself: cosine 1
        for r in mine:
            r["predicted alignment"] = predicted_alignment(r["snr"], r["cos_target"])
            r["batch x for the target to align better"] = (
                "-" if r is target else crossover_batches(target["snr"], r["snr"], r["cos_target"])
            )
    return out


def predicted_alignment(snr: float, cos: float, batches: float = 1.0) -> float:
    """The expected cosine between one estimate (the mean of ``batches`` batches) of a gradient
    ``g`` and a direction at cosine ``cos`` from ``g``, when the noise is isotropic in many
    dimensions: ``cos / sqrt(1 + 1 / (batches snr))`` (the noise adds ``tr Var / batches`` to the
    squared norm and is orthogonal to both; ``snr`` the per-batch ``|g|^2 / tr Var``). NaN for a
    non-positive ``snr`` (a debiased SNR can be)."""
    if not snr > 0:
        return float("nan")
    return float(cos / np.sqrt(1.0 + 1.0 / (batches * snr)))


def crossover_batches(snr_target: float, snr_probe: float, cos: float) -> float:
    """The batch multiple ``m`` beyond which the target objective's own estimate aligns better
    with its gradient than another objective's estimate does, under :func:`predicted_alignment`:
    ``1 / sqrt(1 + 1/(m s_t)) > c / sqrt(1 + 1/(m s_p))`` iff ``m > (c^2/s_t - 1/s_p) /
    (1 - c^2)``. ``1.0`` where the target's is already better at one batch, ``inf`` where the
    other's mean gradient is the target's direction (``c >= 1``), NaN for a non-positive SNR."""
    if not (snr_target > 0 and snr_probe > 0):
        return float("nan")
    if cos >= 1.0:
        return float("inf")
    m = (cos**2 / snr_target - 1.0 / snr_probe) / (1.0 - cos**2)
    return float(max(m, 1.0))


def summary(config: GradientsConfig, rows: list[dict]) -> str:
    """The markdown summary: :func:`summary_rows` as a table."""
    return "\n".join(
        [
            f"# Control gradients: {config.control.env}, target {config.target}",
            "",
            f"Config: `{dataclasses.asdict(config)}`",
            "",
            f"Means over {config.control.num_seeds} seeds; {config.batches} batches per policy.",
            "",
            markdown_table(summary_rows(rows), floatfmt=".4g"),
        ]
    )
