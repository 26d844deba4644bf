"""The per-prompt bandit of experiments/lm/bandit.py (issue 24 item 6) and the matched-progress
interpolation of the LM report: closed forms written here, finite differences, hand-made runs."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ordergrad_experiments.common.runs import Run
from ordergrad_experiments.lm import bandit
from ordergrad_experiments.report.lm.runs import at_pass1, matched

OBJECTIVES = [("Mean", 1), ("TopM:1", 4), ("TopM:2", 4), ("TopM:3", 4), ("ReMax", 8), ("BotM:2", 4)]


def _closed_form_gradient(p: np.ndarray, objective: str, k: int) -> np.ndarray:
    """d J / d z_correct of a two-answer prompt: J(p) = sum_j alpha_j P(Bin(k, p) >= k - j + 1)
    (rank j ascending is 1 iff at least k - j + 1 of the k draws succeed), dJ/dp from
    d/dp P(Bin(k, p) >= m) = k C(k-1, m-1) p^(m-1) (1-p)^(k-m), dp/dz = p (1 - p)."""
    import ordergrad_jax as og

    alpha = og.rank_weights(objective, k)
    dj = np.zeros_like(p)
    for j in range(1, k + 1):
        m = k - j + 1
        dj += alpha[j - 1] * k * math.comb(k - 1, m - 1) * p ** (m - 1) * (1 - p) ** (k - m)
    return dj * p * (1 - p)


@pytest.mark.parametrize(("objective", "k"), OBJECTIVES)
def test_exact_gradient_equals_the_closed_form(objective, k):
    import ordergrad_jax as og

    p = np.array([0.02, 0.17, 0.5, 0.83, 0.97])
    rates = bandit.SolveRates(p, np.full(p.size, 0.2), "test")
    z = jnp.asarray(bandit.initial_logits(rates))
    alpha = jnp.asarray(og.rank_weights(objective, k), z.dtype)
    for fn in (
        jax.grad(bandit.scaled_objective),
        jax.jit(jax.grad(bandit.scaled_objective), static_argnums=1),
    ):
        g = np.asarray(fn(z, k, alpha, jnp.asarray(0.0, z.dtype)))
        want = _closed_form_gradient(p, objective, k)
        np.testing.assert_allclose(g[:, 0], want, rtol=2e-4, atol=1e-7)
        np.testing.assert_allclose(g[:, 1], -want, rtol=2e-4, atol=1e-7)  # two logits: opposite
    # GRPO's scale divides each prompt's gradient by its population std
    g = np.asarray(jax.grad(bandit.scaled_objective)(z, k, alpha, jnp.asarray(1.0, z.dtype)))
    np.testing.assert_allclose(g[:, 0], want / np.sqrt(p * (1 - p)), rtol=2e-4, atol=1e-7)


def test_gradient_with_several_wrong_answers_matches_finite_differences():
    import ordergrad_jax as og

    with jax.enable_x64(True):
        rates = bandit.SolveRates(np.array([0.1, 0.6]), np.array([0.5, 0.5]), "test")
        z = jnp.asarray(bandit.initial_logits(rates, wrong=3)) + jnp.asarray(
            np.random.default_rng(0).normal(scale=0.3, size=(2, 4))
        )
        alpha = jnp.asarray(og.rank_weights("TopM:2", 4))
        zero = jnp.asarray(0.0)
        g = np.asarray(jax.grad(bandit.scaled_objective)(z, 4, alpha, zero))
        eps = 1e-6
        f = jax.jit(bandit.scaled_objective, static_argnums=1)
        fd = np.zeros_like(g)
        for i in range(2):
            for a in range(4):
                dz = jnp.zeros_like(z).at[i, a].set(eps)
                up, down = f(z + dz, 4, alpha, zero), f(z - dz, 4, alpha, zero)
                fd[i, a] = (up - down) / (2 * eps)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_pass_at_k_and_the_beta_fit():
    rates = bandit.beta_solve_rates(2.0, 6.0, prompts=2000, zero=0.1)
    ks = np.array([1, 2, 4, 8, 16, 32])
    want = bandit.beta_pass_at_k(2.0, 6.0, ks, zero=0.1)
    got = [rates.pass_at_k(int(k)) for k in ks]
    np.testing.assert_allclose(got, want, atol=2e-3)  # quantile grid vs the exact moments
    assert rates.never_solved == pytest.approx(0.1)
    z = jnp.asarray(bandit.initial_logits(rates))
    np.testing.assert_allclose(
        bandit.pass_at_k(z, jnp.asarray(rates.weights), tuple(ks.tolist())), got, rtol=1e-4
    )
    a, b, zero = bandit.fit_beta(ks, want)
    assert (a, b, zero) == pytest.approx((2.0, 6.0, 0.1), rel=1e-3)
    with pytest.raises(ValueError, match="sum to at most 1"):
        bandit.SolveRates(np.array([0.5]), np.array([1.5]), "bad")
    counts = bandit.solve_rates_from_counts([0, 8, 32], 32, clip=0)
    assert counts.never_solved == pytest.approx(1 / 3)
    assert counts.p[0] == 0.25 and counts.p[1] == 1 - 0.5 / 32


def test_frontier_does_not_depend_on_the_step_schedule_and_orders_the_objectives():
    """Gradient ascent with small steps follows the gradient flow: two schedules give one
    frontier; at equal pass@1, max@4 keeps more pass@4 than the mean and BotM:2@4 less."""
    rates = bandit.beta_solve_rates(2.0, 8.0, prompts=64)
    objectives = {n: bandit.OBJECTIVES[n] for n in ("mean", "top1at4", "bot2at4")}
    with jax.enable_x64(True):
        a = bandit.frontiers(rates, objectives, steps=600)
        b = bandit.frontiers(rates, objectives, bandit.gradient_flow(1500, 0.01, 3.0), 1500)
    level = 0.5
    for name in objectives:
        assert a[name][0, 0] == pytest.approx(rates.pass_at_k(1))
        np.testing.assert_allclose(
            bandit.frontier(a[name], level), bandit.frontier(b[name], level), atol=2e-4
        )
    at = {n: bandit.frontier(a[n], level)[bandit.KS.index(4)] for n in objectives}
    assert at["top1at4"] > at["mean"] + 0.01 > at["bot2at4"] + 0.02


def test_adam_moves_every_prompt_alike():
    """Adam normalises each logit's step, so with one logit pair per prompt every objective
    increasing in p gives (nearly) one frontier at large k."""
    rates = bandit.beta_solve_rates(2.0, 8.0, prompts=64)
    objectives = {n: bandit.OBJECTIVES[n] for n in ("mean", "bot2at4")}
    with jax.enable_x64(True):
        f = bandit.frontiers(rates, objectives, optax.adam(0.01), 400)
    d = bandit.frontier(f["bot2at4"], 0.5) - bandit.frontier(f["mean"], 0.5)
    assert np.all(np.abs(d[bandit.KS.index(16) :]) < 2e-3)


def _run(tmp_path, name, curve):
    """A curated run folder whose evaluations are ``curve``: [(step, pass@1, pass@4)]."""
    path = tmp_path / name
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"seed": 0}))
    rows = [{"phase": "sft", "step": 0, "pass@1": curve[0][1], "pass@4": curve[0][2]}]
    for step, p1, p4 in curve[1:]:
        rows.append({"phase": "rl", "step": step, "heldout_pass@1": p1, "heldout_pass@4": p4})
    (path / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.md").write_text("")
    return Run(path)


def test_matched_progress_by_hand(tmp_path):
    from ordergrad_experiments.report.lm.runs import evaluations

    base = [(0, 0.2, 0.5), (100, 0.5, 0.8), (200, 0.7, 0.9)]
    slow = [(0, 0.2, 0.5), (100, 0.4, 0.78), (200, 0.6, 0.9)]
    fast = [(0, 0.2, 0.5), (100, 0.6, 0.8), (200, 0.8, 0.86)]
    evals = evaluations(_run(tmp_path, "b", base))
    # 0.6 lies between 0.5 and 0.7: halfway from 0.8 to 0.9
    assert at_pass1(evals, 0.6, ["pass@4"])["pass@4"] == pytest.approx(0.85)
    assert at_pass1(evals, 0.7, ["pass@4"])["pass@4"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="outside"):
        at_pass1(evals, 0.75, ["pass@4"])
    (tmp_path / "s1").mkdir()
    (tmp_path / "f1").mkdir()
    runs_b = {0: _run(tmp_path, "b0", base), 1: _run(tmp_path, "b1", base)}
    runs_s = {0: _run(tmp_path / "s1", "s0", slow), 1: _run(tmp_path / "s1", "s1", slow)}
    runs_f = {0: _run(tmp_path / "f1", "f0", fast), 1: _run(tmp_path / "f1", "f1", fast)}
    m = matched(runs_s, runs_b, ["pass@1", "pass@4"])
    np.testing.assert_allclose(m.level, [0.6, 0.6])  # the slow run's final
    np.testing.assert_allclose(m.difference("pass@4"), [0.9 - 0.85] * 2)
    m = matched(runs_f, runs_b, ["pass@4"])  # the base run's final, 0.7: fast interpolated
    np.testing.assert_allclose(m.level, [0.7, 0.7])
    np.testing.assert_allclose(m.difference("pass@4"), [0.83 - 0.9] * 2)
