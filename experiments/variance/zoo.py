"""Study 5: OrderGrad vs the estimator zoo, each method on its own target (maths.md §5).

Two softmax bandits with the same policy: one with continuous arm rewards, one with 0/1 rewards
(for the pass@k methods). For every method, ``g = scale * sum_i a_i grad log p(x_i)`` per group
with the scale its docstring states, compared with ``jax.grad`` of the exact target.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import ordergrad_jax as og
from experiments.common.progress import sweep
from experiments.variance import studies


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


def methods(n: int, k: int, alpha: float = 0.25) -> list[tuple[str, Callable, str, float, bool]]:
    """(label, advantage fn, target, gradient scale, binary rewards only) per method."""
    est = og.estimators.get
    maxk, lower = f"max@{k}", f"lower-half mean of {k}"
    return [
        ("OrderGrad ReMax", est("ordergrad", k=k, objective="ReMax"), maxk, k / n, False),
        (
            "OrderGrad LowerTailMean:0.5",
            est("ordergrad", k=k, objective="LowerTailMean:0.5"),
            lower,
            k / n,
            False,
        ),
        ("MaxPO (L2O)", est("maxpo", k=k), maxk, k / n, False),
        ("PKPO s", est("pkpo", k=k, variant="s"), maxk, 1.0, False),
        ("PKPO s_loo", est("pkpo", k=k, variant="s_loo"), maxk, 1.0, False),
        ("PKPO s_loo-1", est("pkpo", k=k, variant="s_loo_minus_one"), maxk, 1.0, False),
        (
            "Chen pass@k (numerator)",
            est("passk_chen", k=k, normalize=False),
            maxk,
            k / (n - k),
            True,
        ),
        ("Chen pass@k", est("passk_chen", k=k), maxk, k / (n - k), True),
        ("REINFORCE", est("reinforce"), "mean", 1 / n, False),
        ("RLOO", est("rloo"), "mean", 1 / n, False),
        ("Dr.GRPO", est("dr_grpo"), "mean", 1 / n, False),
        ("GRPO", est("grpo"), "mean", 1 / n, False),
        (f"CVaR-PG alpha={alpha}", est("cvar_pg", alpha=alpha), f"CVaR_{alpha}", 1.0, False),
    ]


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
        [m[1] for m in table], np.array([m[3] for m in table]), cfg.zoo_n, cfg.zoo_batches
    )
    exact_grads = make_exact_gradients(_targets(cfg.zoo_k, alpha))
    rows = []
    bandits = (("continuous", continuous), ("binary", binary))
    for b, (bandit, values) in enumerate(sweep(bandits, "bandits")):
        r = jnp.asarray(values, dtype)
        exact = {name: np.asarray(g, np.float64) for name, g in exact_grads(r, logits).items()}
        sample = moments(r, logits, jax.random.fold_in(key, b))
        means, total_vars = (np.asarray(a, np.float64) for a in sample)
        for (label, _, target, _, binary_only), mean, total_var in zip(
            table, means, total_vars, strict=True
        ):
            norm = float(np.linalg.norm(exact[target]))
            if (binary_only and bandit != "binary") or norm < 1e-8:
                continue  # e.g. CVaR_0.25 of 0/1 rewards with P(0) > 0.25 is constant
            rows.append(
                {
                    "study": "zoo",
                    "bandit": bandit,
                    "method": label,
                    "target": target,
                    "rel_bias": float(np.linalg.norm(mean - exact[target])) / norm,
                    "bias_se": float(np.sqrt(total_var / cfg.zoo_batches)) / norm,
                    "rel_var": float(total_var) / norm**2,
                }
            )
    return rows
