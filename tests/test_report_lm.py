"""reports/lm/RESULTS.md's tables come from the data committed in reports/lm/: `ordergrad-jax
report lm --check` passes on the repository and fails naming the table once a cell no longer
matches; some cells are recomputed here from the raw rows, without the builders."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

ROOT = pathlib.Path(__file__).resolve().parents[1]
LM = ROOT / "reports" / "lm"
ENTRY = pathlib.Path(sys.executable).with_name("ordergrad-jax")

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these


def _report(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ORDERGRAD_ROOT"}
    return subprocess.run(
        [str(ENTRY), "report", "lm", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _cells(doc: str, table: str) -> list[list[str]]:
    """The body rows of the marked table ``table`` of ``doc``, split into stripped cells."""
    start = doc.index(f"<!-- table:{table} ")
    body = doc[start : doc.index("<!-- /table -->", start)]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in body.splitlines()[3:]]


def _jsonl(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_rebuild_names_an_edited_table_and_restores_it(tmp_path):
    """`report lm` names the one edited table and restores it: the rebuilt document is the
    committed one byte for byte with every table marked (so `report lm --check` would pass on the
    repository: tests/test_reports.py leaves lm to this test, and tests its `--check` failure on
    the other documents; one `report lm` process, the slowest report, is enough here)."""
    shutil.copytree(LM, tmp_path / "reports" / "lm")
    (tmp_path / "pyproject.toml").write_text("")
    doc = tmp_path / "reports" / "lm" / "RESULTS.md"
    text = doc.read_text()
    start = text.index("<!-- table:lm-sharpen")
    at = text.index("| 0.435 |", start)
    doc.write_text(text[:at] + "| 0.436 |" + text[at + len("| 0.435 |") :])
    proc = _report("--root", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "changed: reports/lm/RESULTS.md: ['lm-sharpen']" in proc.stdout, proc.stdout
    assert "not marked" not in proc.stdout + proc.stderr
    assert doc.read_text() == text


@pytest.mark.training  # an end-to-end run: once, in the float32 pass
def test_figures_redraw_from_the_committed_data(tmp_path):
    """`report lm --figures` redraws the seven figures of reports/lm/figures/ from the committed
    runs alone (a copy of reports/lm as the root), the same bytes on a second redraw, the same
    image size and (up to font rendering) the same pixels as the committed PNGs."""
    import matplotlib.image as mpimg

    shutil.copytree(LM, tmp_path / "reports" / "lm")
    (tmp_path / "pyproject.toml").write_text("")
    figures = tmp_path / "reports" / "lm" / "figures"
    shutil.rmtree(figures)
    proc = _report("--figures", "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stems = {"default", "study_passk", "length", "lm_passk_compare", "lm_training_compare"}
    stems |= {"bandit_frontier", "testbed_frontier"}
    assert {p.stem for p in figures.glob("*.png")} == stems
    assert {p.stem for p in (LM / "figures").glob("*.png")} == stems
    first = {p.name: p.read_bytes() for p in figures.glob("*.png")}
    from ordergrad_experiments.report import draw_figures  # the redraw alone, in this process

    assert sorted(p.name for p in draw_figures("lm", root=tmp_path)) == sorted(first)
    assert {p.name: p.read_bytes() for p in figures.glob("*.png")} == first
    for stem in stems:
        drawn, committed = (mpimg.imread(f / f"{stem}.png") for f in (figures, LM / "figures"))
        assert drawn.shape == committed.shape, stem
        assert np.mean(np.abs(drawn - committed)) < 0.01, stem


def test_grid_table_is_the_runs_final_evaluations_with_a_t_interval():
    """Each method's pass@k cell: mean ± t_{0.975, n-1} s / sqrt(n) of its runs' last held-out
    evaluation, computed here from metrics.jsonl with scipy."""
    doc = (LM / "RESULTS.md").read_text()
    rows = {r[0]: r for r in _cells(doc, "lm-grid")}
    finals: dict[tuple[str, int], list[float]] = {}
    for metrics in sorted((LM / "grid").glob("*/metrics.jsonl")):
        if metrics.parent.name == "sft":
            continue
        method = metrics.parent.name.rsplit("-s", 1)[0]
        last = [r for r in _jsonl(metrics) if "heldout_pass@1" in r][-1]
        for k in (1, 2, 4, 8, 16):
            finals.setdefault((method, k), []).append(last[f"heldout_pass@{k}"])
    names = {
        "grpo": "grpo", "rloo": "rloo", "maxpo4": "maxpo@4", "top2at4": "ordergrad TopM:2@4",
        "pass8": "ordergrad ReMax@8", "bot2at4": "ordergrad BotM:2@4",
    }  # fmt: skip
    assert {m for m, _ in finals} == set(names)
    for (method, k), values in finals.items():
        x = np.array(values)
        assert x.size == 3
        half = scipy_stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
        row = rows[names[method]]
        assert row[1] == "3"
        mean, pm = row[2 + (1, 2, 4, 8, 16).index(k)].split(" ± ")
        assert abs(float(mean) - x.mean()) <= 0.0005 + 1e-12
        assert abs(float(pm) - half) <= 0.0005 + 1e-12


def test_learning_tables_match_the_raw_rows():
    """The line-search and 300-step tables, read back, equal the raw diagnose rows."""
    doc = (LM / "RESULTS.md").read_text()
    line = _jsonl(LM / "learning" / "line.jsonl")[2:]
    mean_grad = {r["t"]: r for r in line if r["direction"] == "mean_grad"}
    row = _cells(doc, "lm-line")[0]
    assert [float(c) for c in row[1:5]] == [
        round(mean_grad[t]["pass@1"], 3) for t in (-0.05, -0.015, 0.015, 0.05)
    ]
    trials = [r for r in _jsonl(LM / "learning" / "trials-300steps.jsonl") if r.get("step")]
    adam = [r["pass@1"] for r in trials if r["opt"] == "adam:lr=1e-4"]
    first = _cells(doc, "lm-trials-300")[0]
    assert first[0] == "Adam 1e-4" and first[1] == "16 x 16"
    assert [float(c) for c in first[2:8]] == [round(v, 3) for v in adam]
    assert abs(float(first[8]) - np.mean(adam)) <= 0.0005


def test_grid_runs_are_small_and_have_provenance():
    for run in sorted((LM / "grid").glob("*/")):
        assert not (run / "checkpoints").exists(), run
        config = json.loads((run / "config.json").read_text())
        assert config["provenance"]["load_avg_start"] and config["provenance"]["end_utc"]
        assert (run / "summary.md").is_file()


def test_budget_reads_committed_and_new_configs():
    """A run's RL steps and chunks from its config.json: the flat ``steps``/``num_chunks`` of the
    committed runs, or the ``budget`` part of an ``LMConfig`` written now (the same numbers)."""
    import dataclasses

    from ordergrad_experiments.lm.config import LMConfig
    from ordergrad_experiments.report.lm.runs import budget

    committed = json.loads((LM / "lr" / "grpo-lr1e-3" / "config.json").read_text())["config"]
    assert "budget" not in committed and budget(committed) == (80, 8)
    assert budget(dataclasses.asdict(LMConfig())) == (300, 6)


def test_lr_and_speed_tables_match_the_raw_rows():
    """The learning-rate cells are the runs' held-out evaluations; the speed table's advantage
    share is the advantage's median time over the step's, recomputed here."""
    doc = (LM / "RESULTS.md").read_text()
    lr = {r[0]: r for r in _cells(doc, "lm-lr")}
    rows = _jsonl(LM / "lr" / "grpo-lr1e-3" / "metrics.jsonl")
    evals = [(r["step"], r["heldout_pass@1"]) for r in rows if "heldout_pass@1" in r]
    assert lr["lr/grpo-lr1e-3"][2:4] == ["1e-3", "80"]
    assert lr["lr/grpo-lr1e-3"][4].split("; ")[1] == ", ".join(f"{s}: {v:.3f}" for s, v in evals)
    speed = {r[0]: r for r in _cells(doc, "lm-speed")}
    for run in ("1dev-1x1", "8dev-4x2"):
        row = _jsonl(LM / "speed" / "lm-speed" / run / "metrics.jsonl")[0]
        share = float(speed[run][10].rstrip("%")) / 100
        assert abs(share - row["advantage_s"] / row["step_s"]) <= 5e-6
        assert speed[run][1].startswith(str(row["devices"]))
        ops = row["learner_op_s"]
        assert speed[run][-1] == " / ".join(
            f"{100 * ops[k] / sum(ops.values()):.0f}%" for k in ("dot", "fused", "copy", "other")
        )


def _default_cells(table: str) -> list[list[str]]:
    doc = (LM / "RESULTS.md").read_text()
    start = doc.index(f"<!-- table:{table} -->")
    body = doc[start : doc.index("<!-- /table -->", start)]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in body.splitlines()[3:]]


def test_default_runs_cells_from_the_raw_curves():
    """The default-setting table: each method's final pass@1 and gain (mean ± Student t 95%
    half-width over its seeds) recomputed from the curated curves with scipy; the goal column
    from the first evaluation with a +0.25 gain, found here by a plain scan."""
    labels = {"GRPO": "grpo", "RLOO": "rloo", "OrderGrad TopM:2@4": "top2at4"}
    rows = _default_cells("default-runs")
    assert {r[0] for r in rows} == set(labels)
    for row in rows:
        starts, ends, firsts = [], [], []
        for run in sorted((LM / "default").glob(f"{labels[row[0]]}-s*/")):
            curve = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()]
            sft = next(r for r in curve if r["phase"] == "sft")["pass@1"]
            evals = [(r["step"], r["heldout_pass@1"]) for r in curve if "heldout_pass@1" in r]
            starts.append(sft)
            ends.append(evals[-1][1])
            firsts.append(min(s for s, v in evals if v >= sft + 0.25))
        gain = np.subtract(ends, starts)
        n = len(gain)

        def cell(x, n=n):
            half = scipy_stats.t.ppf(0.975, n - 1) * np.std(x, ddof=1) / np.sqrt(n)
            return f"{np.mean(x):.3f} ± {half:.3f}"

        assert row[1] == str(n) == "3"
        assert row[3] == cell(ends)
        assert row[4] == cell(gain)
        assert row[6] == str(max(firsts))


def test_curate_keeps_the_evaluations_and_thins_the_steps(tmp_path):
    from ordergrad_experiments.common.runs import Run
    from ordergrad_experiments.lm.curate import curate

    src = tmp_path / "run"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "summary.md").write_text("# s\n")
    rows = [
        {"phase": "sft", "step": 0, "pass@1": 0.1234567891, "anything": 1},
        *({"phase": "rl", "step": s, "reward": 0.5, "adv_std": 0.1} for s in (1, 2, 3)),
    ]
    rows[-1]["heldout_pass@1"] = 0.25
    (src / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert curate(Run(src), tmp_path / "out", every=2) == tmp_path / "out"
    got = [json.loads(x) for x in (tmp_path / "out" / "curve.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["step"]) for r in got] == [("sft", 0), ("rl", 2), ("rl", 3)]
    assert got[0] == {"phase": "sft", "step": 0, "pass@1": 0.123457, "anything": 1}
    assert got[1] == {"phase": "rl", "step": 2, "reward": 0.5}  # adv_std is not kept
    assert got[2]["heldout_pass@1"] == 0.25
    assert (tmp_path / "out" / "summary.md").read_text() == "# s\n"
    (src / "summary.md").unlink()
    with pytest.raises(ValueError, match="not finished"):
        curate(Run(src), tmp_path / "again")


def _study_run(folder: pathlib.Path, name: str, seed: int, sft: dict, end: dict) -> None:
    """A hand-made curated study run: the SFT row, RL rows at steps 25 and 300, the last one
    with the held-out evaluation ``end``."""
    run = folder / f"{name}-s{seed}"
    run.mkdir(parents=True)
    prov = {
        "start_utc": "2026-12-01T05:00:00+00:00",
        "end_utc": "2026-12-01T05:01:30+00:00",
        "load_avg_start": [1.5, 1.0, 1.0],
        "git_commit": "0123456789abcdef",
        "git_dirty": False,
    }
    config = {"groups": {"num_groups": 2, "group_size": 4}, "seed": seed}
    (run / "config.json").write_text(json.dumps({"config": config, "provenance": prov}))
    (run / "summary.md").write_text("# run\n")
    rows = [
        {"phase": "sft", "step": 0, **{f"pass@{k}": v for k, v in sft.items()}},
        {"phase": "rl", "step": 25, "entropy": 0.5 + seed, "completion_tokens": 24},
        {"phase": "rl", "step": 300, "entropy": 0.1, "completion_tokens": 32}
        | {f"heldout_pass@{k}": v for k, v in end.items()},
    ]
    (run / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_study_tables_from_hand_made_runs(tmp_path):
    """pass@k cells, paired differences to GRPO and RL-minus-SFT cells, computed here with scipy
    from the values written into three seeds of two methods; lengths are tokens per sample."""
    from ordergrad_experiments.report.lm import study as lm_study

    ks = lm_study.KS
    grpo = [0.30, 0.34, 0.32]
    top2 = [0.28, 0.31, 0.33]
    for seed in range(3):
        sft = {k: 0.1 + 0.01 * seed for k in ks}
        _study_run(tmp_path, "grpo", seed, sft, {k: grpo[seed] for k in ks})
        _study_run(tmp_path, "top2at4", seed, sft, {k: top2[seed] for k in ks})

    def cell(x):
        x = np.asarray(x)
        half = scipy_stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return f"{x.mean():.3f} ± {half:.3f}"

    def rows(table):
        return [
            [c.strip() for c in line.strip("|").split(" | ")] for line in table.splitlines()[2:]
        ]

    passk = rows(lm_study.passk_table(tmp_path))
    assert passk[0][:3] == ["SFT start", "3", cell([0.10, 0.11, 0.12])]
    assert passk[1][:3] == ["GRPO", "3", cell(grpo)]
    assert passk[2][0] == "OrderGrad TopM:2@4" and passk[2][-1] == cell(top2)
    d = np.subtract(top2, grpo)
    p = scipy_stats.ttest_rel(top2, grpo).pvalue
    paired = rows(lm_study.paired_table(tmp_path))
    assert len(paired) == 1 and paired[0][:2] == ["OrderGrad TopM:2@4", "3"]
    assert paired[0][2].startswith(cell(d) + " (p ") and f"{p:.2f}" in paired[0][2]
    base = rows(lm_study.base_vs_rl_table(tmp_path))
    assert base[0][2].startswith(cell(np.subtract(grpo, [0.10, 0.11, 0.12])))
    training = rows(lm_study.training_table(tmp_path, steps=(25, 300)))
    assert training[0] == ["GRPO", "1.500", "0.100", "3.00", "4.00"]
    summary = rows(lm_study.runs_summary(tmp_path))[0]
    assert summary[0] == "6" and summary[3] == "90 / 90" and summary[5] == "0123456789ab"


def _length_run(folder: pathlib.Path, name: str, seed: int, sft: dict, evals: dict) -> None:
    """A hand-made curated length run: the SFT row and one held-out evaluation per step of
    ``evals`` (``{step: {"pass@1": ..., "length": ..., ...}}``)."""
    _study_run(folder, name, seed, {}, {})
    rows = [{"phase": "sft", "step": 0, "sft_loss_last": 0.9, **sft}]
    rows += [
        {"phase": "rl", "step": step, "entropy": 0.3} | {f"heldout_{k}": v for k, v in e.items()}
        for step, e in evals.items()
    ]
    (folder / f"{name}-s{seed}" / "curve.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )


def test_length_tables_from_hand_made_runs(tmp_path):
    """The length comparison's cells (final means, OrderGrad minus GRPO paired by seed, the
    curves) computed here with scipy from the values written into three seeds."""
    from ordergrad_experiments.report.lm import length as lm_length

    sft = {"pass@1": 0.13, "pass@8": 0.6, "length": 10.5, "scratchpad": 0.5}
    grpo_len, top_len = [8.0, 9.0, 7.5], [6.0, 5.5, 7.0]
    grpo_p1, top_p1 = [0.70, 0.72, 0.69], [0.66, 0.70, 0.71]
    for seed in range(3):
        for name, p1, length in (("grpo", grpo_p1, grpo_len), ("top2at4", top_p1, top_len)):
            end = {"pass@1": p1[seed], "pass@8": 0.9, "length": length[seed], "scratchpad": 0.0}
            mid = {**end, "length": 9.0 + seed}
            _length_run(tmp_path, f"{name}-lp0.2", seed, sft, {150: mid, 300: end})

    def cell(x, fmt=".3f"):
        x = np.asarray(x)
        half = scipy_stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return f"{x.mean():{fmt}} ± {half:{fmt}}"

    def rows(table):
        return [
            [c.strip() for c in line.strip("|").split(" | ")] for line in table.splitlines()[2:]
        ]

    final = rows(lm_length.final_table(tmp_path))
    assert final[0][:2] == ["SFT start", "3"] and final[0][3] == "10.50 ± 0.00"
    assert final[1][:4] == ["GRPO, penalty 0.2", "3", cell(grpo_p1), cell(grpo_len, ".2f")]
    assert final[2][0] == "OrderGrad TopM:2@4, penalty 0.2" and final[2][3] == cell(top_len, ".2f")
    paired = rows(lm_length.paired_table(tmp_path))
    assert len(paired) == 1 and paired[0][:2] == ["OrderGrad TopM:2@4, penalty 0.2 - GRPO", "3"]
    d = np.subtract(top_len, grpo_len)
    p = scipy_stats.ttest_rel(top_len, grpo_len).pvalue
    assert paired[0][3].startswith(cell(d, ".2f") + " (p ") and f"{p:.2f}" in paired[0][3]
    assert paired[0][2].startswith(cell(np.subtract(top_p1, grpo_p1)))
    assert paired[0][4] == "0.000 on every seed"  # no scratchpad left on either side
    curves = rows(lm_length.curves_table(tmp_path))
    assert curves[0] == ["GRPO, penalty 0.2", "3", "0.130 / 10.5", "0.703 / 10.0", "0.703 / 8.2"]
    # forms.jsonl as diagnose forms writes it: a header line, then one row per run and form
    share, solves = [0.9, 0.8, 0.95], [0.6, 0.7, 0.65]
    lines = [{"mode": "forms", "sft": {}}]
    lines += [
        {"run": "sft", "form": f, "share": 0.5, "correct": c, "length": n}
        for f, c, n in (("direct", 0.05, 7.5), ("scratchpad", 0.2, 13.5))
    ]
    for seed in range(3):
        run = f"top2at4-lp0.2-s{seed}"
        lines.append(
            {"run": run, "form": "direct", "share": 1 - share[seed], "correct": 0.1, "length": 6.0}
        )
        lines.append(
            {
                "run": run,
                "form": "scratchpad",
                "share": share[seed],
                "correct": solves[seed],
                "length": 13.0,
            }
        )
    lines.append(
        {
            "run": "grpo-lp0.2-s0",
            "form": "direct",
            "share": 0.0,
            "correct": float("nan"),
            "length": float("nan"),
        }
    )
    lines.append(
        {"run": "grpo-lp0.2-s0", "form": "scratchpad", "share": 1.0, "correct": 0.9, "length": 13.0}
    )
    (tmp_path / "forms.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    forms = {r[0]: r for r in rows(lm_length.forms_table(tmp_path))}
    assert list(forms) == ["SFT start", "GRPO, penalty 0.2", "OrderGrad TopM:2@4, penalty 0.2"]
    assert forms["SFT start"][1:5] == ["1", "0.500 (1 seed)", "0.050 (1 seed)", "7.5 (1 seed)"]
    top = forms["OrderGrad TopM:2@4, penalty 0.2"]
    assert top[1] == "3" and top[5] == cell(share) and top[6] == cell(solves)
    assert forms["GRPO, penalty 0.2"][3:5] == ["none sampled", "none sampled"]


def test_fused_table_pairs_the_fused_runs_with_the_default_kernel_runs(tmp_path):
    """The fused-learner table: each method's fused and default-kernel final pass@1 over the
    shared seeds, their paired difference and p (scipy), the smallest fused gain and the step
    by which every fused seed gained 0.25 (here the only evaluation, step 300)."""
    from ordergrad_experiments.report.lm import default as lm_default

    fused, plain = [0.62, 0.58, 0.66], [0.60, 0.61, 0.63]
    for seed in range(3):
        sft = {1: 0.30, 16: 0.9}
        _study_run(tmp_path, "grpo-fused", seed, sft, {1: fused[seed], 16: 0.95})
        _study_run(tmp_path, "grpo", seed, sft, {1: plain[seed], 16: 0.95})
    _study_run(tmp_path, "rloo", 0, sft, {1: 0.5, 16: 0.9})  # no fused twin: no row

    def cell(x):
        x = np.asarray(x)
        half = scipy_stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return f"{x.mean():.3f} ± {half:.3f}"

    lines = lm_default.fused_table(tmp_path).splitlines()[2:]
    assert len(lines) == 1
    row = [c.strip() for c in lines[0].strip("|").split(" | ")]
    assert row[:5] == ["GRPO", "3", cell(fused), cell(plain), cell(np.subtract(fused, plain))]
    assert f"{scipy_stats.ttest_rel(fused, plain).pvalue:.2f}" in row[5]
    assert row[6:] == ["0.280", "300"]


def test_matched_cell_from_the_raw_curves():
    """The study-matched cell of TopM:2@4 at pass@32: each seed's final (pass@1, pass@32) against
    GRPO's curve of the same seed interpolated at that pass@1 (np.interp: GRPO's pass@1 rises),
    a paired t test by scipy, Holm over the table's 50 p-values by hand."""
    doc = (LM / "RESULTS.md").read_text()
    rows = {r[0]: r for r in _cells(doc, "study-matched")}

    def curve(name: str) -> np.ndarray:
        rows_ = _jsonl(LM / "study" / name / "curve.jsonl")
        out = [[rows_[0]["pass@1"], rows_[0]["pass@32"]]]
        out += [[r["heldout_pass@1"], r["heldout_pass@32"]] for r in rows_ if "heldout_pass@1" in r]
        return np.array(out)

    diffs = []
    for s in range(5):
        mine, base = curve(f"top2at4-s{s}"), curve(f"grpo-s{s}")
        assert mine[-1, 0] < base[-1, 0]
        diffs.append(mine[-1, 1] - np.interp(mine[-1, 0], base[:, 0], base[:, 1]))
    test = scipy_stats.ttest_1samp(diffs, 0.0)
    half = scipy_stats.t.ppf(0.975, 4) * np.std(diffs, ddof=1) / np.sqrt(5)
    cell = rows["OrderGrad TopM:2@4"][-1]
    assert cell.startswith(f"{np.mean(diffs):+.4f} ± {half:.4f} (p {test.pvalue:.2g}; Holm ")
    # Holm: every raw p of the table; this cell's adjusted value is >= its raw p times the
    # number of p-values at least as large
    raw = [float(c.split("(p ")[1].split(";")[0]) for r in rows.values() for c in r[3:]
           if "(p <" not in c]  # fmt: skip
    holm = float(cell.split("Holm ")[1].rstrip(")"))
    assert holm >= min(1.0, round(test.pvalue * sum(p >= 0.3 for p in raw), 2) - 0.01)
