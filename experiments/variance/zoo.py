"""Study 5: OrderGrad vs the estimator zoo, each method on its own target (maths.md §5).

Two softmax bandits with the same policy: one with continuous arm rewards, one with 0/1 rewards.
For every method, ``g = (c/N) sum_i a_i grad log p(x_i)`` per group with ``c`` its spec's
gradient scale (``og.estimators.spec(name).gradient_scale(N, **params)``), compared with
``jax.grad`` of the exact target. A method whose spec says it needs binary rewards runs on the 0/1
bandit only. Every registered estimator takes part: the built-ins with the parameters and targets
of :func:`design`, any other (a user's ``og.estimators.register``) with :func:`study_params` and
the target ``mean``, labelled by its spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og
from ordergrad_experiments.common.progress import sweep
from ordergrad_experiments.variance import studies


def exact_cvar(r: jax.Array, p: jax.Array, alpha: float) -> jax.Array:
    """CVaR_alpha of a discrete distribution: the mean of its lower alpha tail,
    ``(1/alpha) sum_t r_(t) (min(F_t, alpha) - min(F_{t-1}, alpha))``; differentiable in p."""
    order = jnp.argsort(r)
    cdf = jnp.cumsum(p[order]) / jnp.sum(p)
    mass = jnp.diff(jnp.minimum(cdf, alpha), prepend=0.0)
    return jnp.sum(r[order] * mass) / alpha


def _targets(k: int, alpha: float) -> dict[str, Callable]:
    return {
        "mean": lambda r, p: og.exact.lstat(r, p, 1, "Mean"),
        f"max@{k}": lambda r, p: og.exact.lstat(r, p, k, "ReMax"),
        f"lower-half mean of {k}": lambda r, p: og.exact.lstat(r, p, k, "LowerTailMean:0.5"),
        f"CVaR_{alpha}": lambda r, p: exact_cvar(r, p, alpha),
    }


class Method(NamedTuple):
    """One row of the zoo: an estimator with its parameters, as the study runs it."""

    label: str
    name: str
    params: dict[str, Any]
    target: str
    """The key of the exact target in ``_targets``."""
    scale: float
    """``c/N``: the factor of ``sum_i a_i grad log p(x_i)`` (the spec's ``c`` over N)."""
    binary: bool
    """The spec's ``binary_rewards``: runs on the 0/1-reward bandit only."""

    def advantages(self) -> Callable:
        return og.estimators.get(self.name, **self.params)


def design(k: int, alpha: float) -> list[tuple[str, dict[str, Any], str, str | None]]:
    """The study's rows for the built-in estimators: ``(estimator, parameters, target, label)``.

    ``label`` None takes the spec's (``og.estimators.spec(name).label(**params)``); the labels
    given are the row names of the committed tables (``reports/variance``), kept where they
    differ from the spec's: they name the variant compared (``PKPO s``) rather than ``@k``.
    """
    maxk = f"max@{k}"
    return [
        ("ordergrad", {"k": k, "objective": "ReMax"}, maxk, "OrderGrad ReMax"),
        (
            "ordergrad",
            {"k": k, "objective": "LowerTailMean:0.5"},
            f"lower-half mean of {k}",
            "OrderGrad LowerTailMean:0.5",
        ),
        ("maxpo", {"k": k}, maxk, "MaxPO (L2O)"),
        ("pkpo", {"k": k, "variant": "s"}, maxk, "PKPO s"),
        ("pkpo", {"k": k, "variant": "s_loo"}, maxk, "PKPO s_loo"),
        ("pkpo", {"k": k, "variant": "s_loo_minus_one"}, maxk, "PKPO s_loo-1"),
        ("passk_chen", {"k": k, "normalize": False}, maxk, "Chen pass@k (numerator)"),
        ("passk_chen", {"k": k}, maxk, "Chen pass@k"),
        ("reinforce", {}, "mean", None),
        ("rloo", {}, "mean", None),
        ("dr_grpo", {}, "mean", None),
        ("grpo", {}, "mean", None),
        ("cvar_pg", {"alpha": alpha}, f"CVaR_{alpha}", None),
    ]


def study_params(spec: og.estimators.EstimatorSpec, k: int, alpha: float) -> dict[str, Any] | None:
    """The parameters the zoo gives an estimator outside :func:`design`: ``k`` and ``alpha``
    where its spec takes them, defaults for the rest; None when it requires another parameter
    (the study cannot choose it, so the estimator is left out)."""
    given = {"k": k, "alpha": alpha}
    params = {p: given[p] for p in spec.params if p in given}
    if any(p not in params and p not in spec.defaults for p in spec.params):
        return None
    return params


def methods(n: int, k: int, alpha: float = 0.25) -> list[Method]:
    """The zoo's rows for groups of ``n``: :func:`design`, then every other registered estimator
    (in registration order) that :func:`study_params` can fill, against the target ``mean``."""
    rows = design(k, alpha)
    designed = {name for name, *_ in rows}
    for name in og.estimators.available():
        params = study_params(og.estimators.spec(name), k, alpha)
        if name not in designed and params is not None:
            rows.append((name, params, "mean", None))
    out = []
    for name, params, target, label in rows:
        spec = og.estimators.spec(name)
        out.append(
            Method(
                label=spec.label(**params) if label is None else label,
                name=spec.name,
                params=params,
                target=target,
                scale=spec.gradient_scale(n, **params) / n,
                binary=spec.binary_rewards,
            )
        )
    return out


def make_zoo_moments(fns: list[Callable], scales: np.ndarray, n: int, batches: int) -> Callable:
    """``(r (m,), logits (m,), key) -> (means (M, m), tr Var (M,))`` of every method at once.

    Method ``i``'s gradient estimate per batch is ``scales[i] * sum_j a_ij (e_{arm_j} - p)`` with
    ``a_i = fns[i](r[arms])``; all methods see the same batches (common random numbers, so their
    differences are measured with less noise). One program serves both bandits.
    """
    scales = jnp.asarray(scales)

    def one(r, logits, key):
        arms = jax.random.categorical(key, logits, shape=(n,))
        score = jax.nn.one_hot(arms, r.shape[-1], dtype=r.dtype) - jax.nn.softmax(logits)
        adv = jnp.stack([fn(r[arms]) for fn in fns])  # (M, n)
        return scales.astype(r.dtype)[:, None] * (adv @ score)  # (M, m)

    def run(r, logits, key):
        g = jax.vmap(one, in_axes=(None, None, 0))(r, logits, jax.random.split(key, batches))
        return jnp.mean(g, 0), jax.vmap(og.metrics.total_variance, in_axes=1)(g)

    return jax.jit(run)


def make_exact_gradients(targets: dict[str, Callable]) -> Callable:
    """``(r, logits) -> {target: jax.grad of target(r, softmax(logits)) in logits}``, one
    program."""

    def grads(r, logits):
        return {
            name: jax.grad(lambda t, f=f: f(r, jax.nn.softmax(t)))(logits)
            for name, f in targets.items()
        }

    return jax.jit(grads)


def run(cfg, key: jax.Array) -> list[dict]:
    """Bias and variance of each method on its own target, on both bandits."""
    dtype = jnp.result_type(float)
    logits = jnp.asarray(studies.bandit_logits(cfg.zoo_arms, cfg.seed + 1), dtype)
    continuous = studies.arm_values("gaussian", cfg.zoo_arms, cfg.seed)
    binary = (np.arange(cfg.zoo_arms) % 3 == 2).astype(float)  # a third of the arms succeed
    alpha = 0.25
    table = methods(cfg.zoo_n, cfg.zoo_k, alpha)
    moments = make_zoo_moments(
        [m.advantages() for m in table],
        np.array([m.scale for m in table]),
        cfg.zoo_n,
        cfg.zoo_batches,
    )
    exact_grads = make_exact_gradients(_targets(cfg.zoo_k, alpha))
    rows = []
    bandits = (("continuous", continuous), ("binary", binary))
    for b, (bandit, values) in enumerate(sweep(bandits, "bandits")):
        r = jnp.asarray(values, dtype)
        exact = {name: np.asarray(g, np.float64) for name, g in exact_grads(r, logits).items()}
        sample = moments(r, logits, jax.random.fold_in(key, b))
        means, total_vars = (np.asarray(a, np.float64) for a in sample)
        for method, mean, total_var in zip(table, means, total_vars, strict=True):
            norm = float(np.linalg.norm(exact[method.target]))
            if (method.binary and bandit != "binary") or norm < 1e-8:
                continue  # e.g. CVaR_0.25 of 0/1 rewards with P(0) > 0.25 is constant
            rows.append(
                {
                    "study": "zoo",
                    "bandit": bandit,
                    "method": method.label,
                    "target": method.target,
                    "rel_bias": float(np.linalg.norm(mean - exact[method.target])) / norm,
                    "bias_se": float(np.sqrt(total_var / cfg.zoo_batches)) / norm,
                    "rel_var": float(total_var) / norm**2,
                }
            )
    return rows
