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
from scipy import stats as scipy_stats

ROOT = pathlib.Path(__file__).resolve().parents[1]
LM = ROOT / "reports" / "lm"
ENTRY = pathlib.Path(sys.executable).with_name("ordergrad-jax")


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


def test_check_passes_on_the_committed_data():
    proc = _report("--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tables match their data" in proc.stdout and "not marked" not in proc.stdout


def test_check_fails_naming_an_edited_table(tmp_path):
    shutil.copytree(LM, tmp_path / "reports" / "lm")
    (tmp_path / "pyproject.toml").write_text("")
    doc = tmp_path / "reports" / "lm" / "RESULTS.md"
    text = doc.read_text()
    start = text.index("<!-- table:lm-sharpen")
    at = text.index("| 0.435 |", start)
    doc.write_text(text[:at] + "| 0.436 |" + text[at + len("| 0.435 |") :])
    proc = _report("--check", "--root", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "lm-sharpen" in proc.stderr and "lm-line" not in proc.stderr
    proc = _report("--root", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc.read_text() == text


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
        share = float(speed[run][9].rstrip("%")) / 100
        assert abs(share - row["advantage_s"] / row["step_s"]) <= 5e-6
        assert speed[run][1].startswith(str(row["devices"]))
