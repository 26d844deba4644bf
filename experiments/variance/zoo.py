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


def make_method_moments(fn: Callable, scale: float, r, logits, n: int, batches: int):
    """``key -> (mean (m,), tr Var)`` of ``scale * sum_i a_i (e_{arm_i} - p)`` over batches."""
    r, logits = jnp.asarray(r), jnp.asarray(logits)

    def one(key):
        arms = jax.random.categorical(key, logits, shape=(n,))
        score = jax.nn.one_hot(arms, r.shape[-1], dtype=r.dtype) - jax.nn.softmax(logits)
        return scale * fn(r[arms]) @ score

    def run(key):
        g = jax.vmap(one)(jax.random.split(key, batches))
        return jnp.mean(g, 0), og.metrics.total_variance(g)

    return jax.jit(run)


def run(cfg, key: jax.Array) -> list[dict]:
    """Bias and variance of each method on its own target, on both bandits."""
    dtype = jnp.result_type(float)
    logits = jnp.asarray(studies.bandit_logits(cfg.zoo_arms, cfg.seed + 1), dtype)
    continuous = studies.arm_values("gaussian", cfg.zoo_arms, cfg.seed)
    binary = (np.arange(cfg.zoo_arms) % 3 == 2).astype(float)  # a third of the arms succeed
    alpha = 0.25
    targets = _targets(cfg.zoo_k, alpha)
    rows = []
    for bandit, values in sweep((("continuous", continuous), ("binary", binary)), "bandits"):
        r = jnp.asarray(values, dtype)
        for i, (label, fn, target, scale, binary_only) in enumerate(
            methods(cfg.zoo_n, cfg.zoo_k, alpha)
        ):
            if binary_only and bandit != "binary":
                continue
            exact = jax.grad(lambda t, f=targets[target], rr=r: f(rr, jax.nn.softmax(t)))(logits)
            norm = float(jnp.linalg.norm(exact))
            if norm < 1e-8:  # e.g. CVaR_0.25 of 0/1 rewards with P(0) > 0.25 is constant
                continue
            mean, total_var = make_method_moments(fn, scale, r, logits, cfg.zoo_n, cfg.zoo_batches)(
                jax.random.fold_in(key, i)
            )
            rows.append(
                {
                    "study": "zoo",
                    "bandit": bandit,
                    "method": label,
                    "target": target,
                    "rel_bias": float(jnp.linalg.norm(mean - exact)) / norm,
                    "bias_se": float(np.sqrt(total_var / cfg.zoo_batches)) / norm,
                    "rel_var": float(total_var) / norm**2,
                }
            )
    return rows
