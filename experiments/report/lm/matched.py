"""The pass@k study and the length comparison re-analysed at matched progress (issue 24, item 7).

Under Adam the objectives differ mostly in how fast they sharpen, so a comparison after equal
steps compares policies at different pass@1. Here each method's seed is compared with the
baseline's seed at the same held-out pass@1 (:func:`~ordergrad_experiments.report.lm.runs.matched`:
the higher final pass@1 both reached; the other run's values interpolated linearly in pass@1
between its two bracketing evaluations), paired by seed (Student t, n - 1 df, two-sided p), and
every family of method-vs-baseline tests is corrected by Holm's step-down method
(:func:`ordergrad_experiments.common.stats.holm`). MaxPO@4 and OrderGrad TopM:1@4 are one
estimator (maths.md §5; ``tests/test_zoo.py::test_maxpo_equals_ordergrad_remax``), so their pair is
an A/A comparison: what chance differences look like at n = 5.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from ordergrad_experiments.common import stats
from ordergrad_experiments.common.runs import markdown_table
from ordergrad_experiments.report.lm import length, study
from ordergrad_experiments.report.lm.runs import at_pass1, evaluations, matched, paired

MATCHED_KS = (2, 4, 8, 16, 32)
"""pass@k compared at matched pass@1 (pass@1 is equal there by construction)."""
AA = ("top1at4", "maxpo4")
"""The A/A pair: one estimator (OrderGrad ReMax = TopM:1 = MaxPO's leave-two-out max@K)."""


def _cell(test: stats.TestResult, holm_p: float | None = None) -> str:
    d = test.interval.format("+.4f", ".4f")
    holm = "" if holm_p is None else f"; Holm {stats.format_p(holm_p)}"
    return f"{d} (p {stats.format_p(test.p_value)}{holm})"


def matched_table(folder: pathlib.Path, base: str = study.BASE) -> str:
    """Each method minus ``base`` at matched held-out pass@1, paired by seed: the pass@1 level
    (mean ± t over the seeds) and, at every k of :data:`MATCHED_KS`, the mean difference ±
    Student t 95% half-width, the two-sided paired t p and Holm's adjusted p over the family of
    every method and k in the table."""
    all_runs = study.runs(folder)
    keys = [f"pass@{k}" for k in MATCHED_KS]
    rows, tests = [], []
    for method, seeds in all_runs.items():
        if method == base:
            continue
        m = matched(seeds, all_runs[base], ["pass@1", *keys])
        rows.append((method, m))
        tests.extend(m.test(key) for key in keys)
    adjusted = iter(stats.holm([t.p_value for t in tests]))
    tests_iter = iter(tests)
    out = []
    for method, m in rows:
        row: dict[str, Any] = {f"method - {study.METHODS[base]}": study.METHODS[method]}
        row["seeds"] = len(m.seeds)
        row["matched pass@1"] = stats.mean_ci_cell(m.level, ".3f", ".3f")
        for key in keys:
            row[key] = _cell(next(tests_iter), next(adjusted))
        out.append(row)
    return markdown_table(out)


def equal_steps_holm_table(folder: pathlib.Path, base: str = study.BASE) -> str:
    """The committed equal-steps comparison (each method minus ``base`` after the last step,
    paired by seed; table ``study-paired``) with Holm's adjusted p over its family of every
    method and k: ``p (Holm p)`` per cell."""
    all_runs = study.runs(folder)
    keys = [f"pass@{k}" for k in study.KS]
    cells = []
    for method, seeds in all_runs.items():
        if method != base:
            cells.append((method, [paired(seeds, all_runs[base], key) for key in keys]))
    p = [stats.paired_test(pair.a, pair.b).p_value for _, pairs in cells for pair in pairs]
    adjusted = iter(stats.holm(p))
    raw = iter(p)
    rows = []
    for method, pairs in cells:
        row: dict[str, Any] = {f"method - {study.METHODS[base]}": study.METHODS[method]}
        row["seeds"] = len(pairs[0].seeds)
        for key in keys:
            row[key] = f"{stats.format_p(next(raw))} (Holm {stats.format_p(next(adjusted))})"
        rows.append(row)
    return markdown_table(rows)


def aa_table(folder: pathlib.Path, pair: tuple[str, str] = AA) -> str:
    """The A/A pair (one estimator run twice per seed): its difference at every k after equal
    steps and at matched pass@1, mean ± Student t 95% half-width and paired t p (n = 5)."""
    all_runs = study.runs(folder)
    a, b = all_runs[pair[0]], all_runs[pair[1]]
    keys = [f"pass@{k}" for k in study.KS]
    m = matched(a, b, keys)
    label = f"{study.METHODS[pair[0]]} - {study.METHODS[pair[1]]}"
    steps = {"comparison": f"{label}, after the last step", "seeds": len(m.seeds)}
    at = {"comparison": f"{label}, at matched pass@1", "seeds": len(m.seeds)}
    for key in keys:
        x = paired(a, b, key)
        steps[key] = _cell(stats.paired_test(x.a, x.b))
        at[key] = "0 (matched)" if key == "pass@1" else _cell(m.test(key))
    return markdown_table([steps, at])


def length_matched_table(folder: pathlib.Path, steps: tuple[int, ...] = (100, 200, 300)) -> str:
    """OrderGrad TopM:2@4 minus GRPO at each penalty at matched progress: at TopM:2@4's
    evaluations after ``steps``, its held-out completion length minus GRPO's at the same pass@1
    (interpolated along the GRPO run of the same seed), mean ± Student t 95% half-width, paired
    t p and Holm's adjusted p over the table's tests (the arms of at least 2 seeds) (``folder``:
    ``reports/lm/length``)."""
    all_runs = length.runs(folder)
    arms = []
    for a, b in length.PAIRS:
        if a not in all_runs or b not in all_runs:
            continue
        seeds = sorted(set(all_runs[a]) & set(all_runs[b]))
        cells = []
        for step in steps:
            level, mine, theirs = [], [], []
            for s in seeds:
                ea, eb = evaluations(all_runs[a][s]), evaluations(all_runs[b][s])
                e = dict(ea)[step]
                level.append(e["pass@1"])
                mine.append(e["length"])
                theirs.append(at_pass1(eb, e["pass@1"], ["length"])["length"])
            test = stats.paired_test(mine, theirs) if len(seeds) > 1 else mine[0] - theirs[0]
            cells.append((step, level, test))
        arms.append((a, seeds, cells))
    tests = [t for _, _, cells in arms for _, _, t in cells if isinstance(t, stats.TestResult)]
    adjusted = dict(zip(map(id, tests), stats.holm([t.p_value for t in tests]), strict=True))
    rows = []
    for a, seeds, cells in arms:
        row: dict[str, Any] = {"comparison": f"{length.METHODS[a]} - GRPO", "seeds": len(seeds)}
        for step, level, t in cells:
            row[f"step {step}: pass@1"] = stats.mean_ci_cell(level, ".3f", ".3f")
            if isinstance(t, stats.TestResult):
                p, holm = stats.format_p(t.p_value), stats.format_p(adjusted[id(t)])
                cell = f"{t.difference:+.2f} ± {t.interval.half_width:.2f} (p {p}; Holm {holm})"
            else:
                cell = f"{t:+.2f} (1 seed)"
            row[f"step {step}: length difference"] = cell
        rows.append(row)
    return markdown_table(rows)


def builders(folder: pathlib.Path) -> dict[str, Callable[[], str]]:
    """``{table id: build}`` of the re-analysis (``folder``: ``reports/lm``)."""
    d = folder / "study"
    out = {
        "study-matched": lambda: matched_table(d),
        "study-equal-steps-holm": lambda: equal_steps_holm_table(d),
        "study-aa": lambda: aa_table(d),
    }
    if (folder / "length").is_dir():
        out["length-matched"] = lambda: length_matched_table(folder / "length")
    return out
