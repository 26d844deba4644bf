"""The LM testbed's report (experiments/report/lm/testbed.py) on hand-made runs: pass@k from the
counts, the step-size rule, the targets, matched progress paired by (SFT seed, RL seed), and the
committed folder against the sweep's declaration."""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest

from ordergrad_experiments.common import stats
from ordergrad_experiments.lm import testbed as lm_testbed
from ordergrad_experiments.report.lm import testbed
from ordergrad_experiments.sweeps import lm_testbed as sweep

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = 8


def _run(folder: pathlib.Path, name: str, steps, counts, samples: int = SAMPLES) -> None:
    path = folder / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"config": {}}))
    (path / "summary.md").write_text("done\n")
    c = np.asarray(counts, np.uint8)
    ids = np.arange(c.shape[1])
    lm_testbed.write_counts(path / "counts.npz", lm_testbed.Counts(c, steps, ids, samples))


def _pass(c, k, n=SAMPLES) -> float:
    """pass@k of one prompt by enumerating the k-subsets' count (hypergeometric)."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_count_evaluations_are_the_prompt_mean_of_the_unbiased_pass_at_k():
    counts = lm_testbed.Counts(
        np.array([[0, 3, 8], [1, 1, 2]], np.uint8), np.array([0, 50]), np.arange(3), SAMPLES
    )
    evals = testbed.count_evaluations(counts)
    assert [s for s, _ in evals] == [0, 50]
    assert set(evals[0][1]) == {"pass@1", "pass@4"}  # k <= samples only
    for (_, got), row in zip(evals, counts.counts, strict=True):
        for k in (1, 4):
            want = np.mean([_pass(int(c), k) for c in row])
            assert got[f"pass@{k}"] == pytest.approx(want, abs=1e-12)
    assert evals[0][1]["pass@1"] == pytest.approx((0 + 3 + 8) / 24)


def test_chosen_lr_is_one_step_size_the_best_final_validation_pass1_over_the_arms(tmp_path):
    # correct of 128 at the end; means over the arms: 3e-5 (32 + 64) / 2 = 48, 1e-4 47,
    # 3e-4 40.5: 3e-5 for both, though rloo alone ends highest at 1e-4
    finals = {"rloo": (32, 64, 33), "grpo": (64, 30, 48)}
    for arm, ends in finals.items():
        for lr, end in zip(sweep.LR_GRID, ends, strict=True):
            _run(tmp_path, sweep.lr_id(arm, lr), [0, 10], [[16, 16], [end, end]], 128)
    assert testbed.chosen_lr(tmp_path) == {"rloo": 3e-5, "grpo": 3e-5}
    table = testbed.lr_table(tmp_path)
    assert table.count("| yes |") == 3 and "0.125 -> 0.500" in table
    assert "end 0.375" in table  # 48 / 128
    # a tie goes to the smaller step size
    for arm, ends in {"rloo": (0, 0, 0), "grpo": (0, 96, 96)}.items():
        for lr, end in zip(sweep.LR_GRID, ends, strict=True):
            _run(tmp_path / "tie", sweep.lr_id(arm, lr), [0, 10], [[16, 16], [end, end]], 128)
    assert set(testbed.chosen_lr(tmp_path / "tie").values()) == {1e-4}


def test_misses_names_each_target():
    good = {"pass@1": 0.2, "pass@64": 0.7, "greedy": 0.3, "hard": 0.25}
    assert testbed.misses(good) == []
    assert testbed.misses({**good, "pass@1": 0.145}) == ["pass@1 0.145"]
    assert testbed.misses({**good, "pass@64": 0.8, "greedy": 0.9}) == [
        "pass@64 0.800",
        "greedy >= pass@64",
    ]
    assert testbed.misses({**good, "hard": 0.1}) == ["hard 0.100"]


def _two_pairs(folder: pathlib.Path, monkeypatch) -> None:
    """Two (SFT seed, RL seed) pairs of RLOO, TopM:2@4 and GRPO; the endpoints at k = 4."""
    monkeypatch.setattr(testbed, "KS", (1, 4))
    monkeypatch.setattr(testbed, "PRIMARY", ("top2at4", 4))
    monkeypatch.setattr(testbed, "SECONDARY", (("grpo", 4),))
    # rows: checkpoints at steps 0, 10; two prompts
    runs = {
        ("rloo", 0, 0): [[2, 0], [6, 0]],  # pass@1 0.125 -> 0.375
        ("top2at4", 0, 0): [[2, 0], [4, 2]],  # 0.125 -> 0.375
        ("rloo", 1, 3): [[2, 0], [4, 0]],  # 0.125 -> 0.25
        ("top2at4", 1, 3): [[2, 0], [4, 4]],  # 0.125 -> 0.5
        ("grpo", 0, 0): [[2, 0], [3, 1]],  # 0.125 -> 0.25
        ("grpo", 1, 3): [[2, 0], [3, 1]],
    }
    for (arm, sft, seed), rows in runs.items():
        _run(folder / "study", f"{arm}-sft{sft}-s{seed}", [0, 10], rows)


def test_primary_is_matched_pass64_paired_by_sft_and_rl_seed(tmp_path, monkeypatch):
    """Two pairs; pass@k is linear in the counts only for k = 1, so the matched values are
    checked against a hand interpolation of the exact per-checkpoint pass@k."""
    _two_pairs(tmp_path, monkeypatch)

    def p4(row):
        return np.mean([_pass(c, 4) for c in row])

    # pair (0, 0): level 0.375 = both finals; pair (1, 3): level 0.25 = rloo's final, top2at4
    # halfway along its segment (0.125 -> 0.5 reaches 0.25 at t = 1/3)
    d0 = p4([4, 2]) - p4([6, 0])
    t = (0.25 - 0.125) / (0.5 - 0.125)
    d1 = p4([2, 0]) + t * (p4([4, 4]) - p4([2, 0])) - p4([4, 0])
    want = stats.paired_test([d0, d1], [0.0, 0.0])
    table = testbed.primary_table(tmp_path)
    assert f"{want.difference:+.4f} ± {want.interval.half_width:.4f}" in table
    assert "| 2 |" in table  # pairs
    assert "Holm" in testbed.secondary_table(tmp_path)


def test_agreement_reads_the_bandit_at_each_pairs_matched_level_from_its_start(
    tmp_path, monkeypatch
):
    """Hand-made frontiers, linear in pass@1 with a slope that depends on the arm and the
    start (pass@k = pass@1 (1 + c_arm (1 + sft))), so the bandit's difference at a level L is
    c_arm L (1 + sft) exactly: the table averages it over the pairs at their matched levels
    (TopM:2@4: 0.375 from start 0 and 0.25 from start 1; GRPO: 0.25 from both)."""
    _two_pairs(tmp_path, monkeypatch)
    slope = {"rloo": 0.0, "top2at4": 0.1, "grpo": -0.2}
    x = np.linspace(0.0, 1.0, 11)[:, None]

    def curves(folder, sft):
        ks = np.ones((1, 7))  # bandit.KS: 1, 2, 4, ..., 64
        return {a: x * (1 + c * (1 + sft) * (ks - (np.arange(7) == 0))) for a, c in slope.items()}

    monkeypatch.setattr(testbed, "bandit_curves", curves)
    table = testbed.agreement_table(tmp_path)
    grpo, top = (line for line in table.splitlines() if "pass@4" in line)  # ARMS order
    assert "TopM:2@4" in top and f"| {np.mean([0.1 * 0.375, 0.1 * 0.25 * 2]):+.4f} |" in top
    assert "GRPO" in grpo and f"| {np.mean([-0.2 * 0.25, -0.2 * 0.25 * 2]):+.4f} |" in grpo
    # GRPO's LM differences: pair (0, 0) at 0.25 (RLOO halfway) and pair (1, 3) at 0.25 (both final)
    p4 = [np.mean([_pass(c, 4) for c in row]) for row in ([2, 0], [3, 1], [4, 0], [6, 0])]
    d = [p4[1] - (p4[0] + p4[3]) / 2, p4[1] - p4[2]]
    want = stats.paired_test(d, [0.0, 0.0])
    assert f"{want.difference:+.4f} ± {want.interval.half_width:.4f}" in grpo
    inside = abs(-0.075 - want.difference) <= want.interval.half_width
    assert grpo.endswith(
        f"| {'yes' if inside else 'no'} | {'yes' if want.difference < 0 else 'no'} |"
    )


def test_committed_grid_chose_the_declared_step_sizes():
    """The study runs at the step sizes the committed grid chose."""
    chosen = testbed.chosen_lr(ROOT / "reports" / "lm" / "testbed")
    assert set(chosen) == set(sweep.ARMS)
    assert sweep.CHOSEN_LR == chosen


def test_committed_starts_rows_match_their_counts():
    """Each committed start's row recomputed from its per-prompt counts by hand: pass@1 is the
    mean solve rate, hard the share of prompts with 1 to 6 correct of 128 (rate in (0, 0.05)),
    never the share with none, pass@64 the hypergeometric average; the histogram sums to 1."""
    folder = ROOT / "reports" / "lm" / "testbed"
    starts = sorted(folder.glob("start-sft*"))
    assert [p.name for p in starts] == [f"start-sft{s}" for s in sweep.START_SEEDS]
    for path in starts:
        rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
        (row,) = [r for r in rows if r.get("kind") == "start"]
        counts = lm_testbed.read_counts(path / "counts.npz")
        c = counts.counts[0].astype(int)
        assert counts.samples == 128 and c.size == row["prompts"] == sweep.EVAL_PROMPTS
        assert row["pass@1"] == pytest.approx(c.mean() / 128, abs=1e-12)
        assert row["hard"] == pytest.approx(np.mean((c >= 1) & (c <= 6)), abs=1e-12)
        assert row["never"] == pytest.approx(np.mean(c == 0), abs=1e-12)
        want64 = np.mean([_pass(x, 64, 128) for x in c])
        assert row["pass@64"] == pytest.approx(want64, abs=1e-9)
        shares = [r["share"] for r in rows if r.get("kind") == "histogram"]
        assert sum(shares) == pytest.approx(1.0)


def test_frontier_figure_draws_each_arm_and_its_bandit_curve(tmp_path, monkeypatch):
    monkeypatch.setattr(testbed, "BANDIT_STEPS", 100)
    start = [16, 0, 64, 32]  # correct of 128
    _run(tmp_path, "start-sft0", [0], [start], 128)
    for i, arm in enumerate(sweep.ARMS):
        for seed in (0, 1):
            rows = [start, [32, 0, 80, 32 + 8 * ((i + seed) % 3)]]
            _run(tmp_path / "study", f"{arm}-sft0-s{seed}", [0, 10], rows, 128)
    fig = testbed.draw_figure(tmp_path)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 * len(sweep.ARMS)  # LM markers and bandit line per arm
    x = ax.lines[0].get_xdata()  # the first arm: mean over its two seeds at each checkpoint
    assert x[0] == pytest.approx(112 / 512)
    assert x[1] == pytest.approx(np.mean([32 + 80 + 32 + 8 * (s % 3) for s in (0, 1)]) / 512)
    assert not testbed.study_complete(tmp_path)  # 10 of the declared runs
