"""The Guarded Maze study: its report's maths against brute force and hand values, its tables on
hand-made run folders, and its sweep through the installed command."""

from __future__ import annotations

import itertools
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ordergrad_experiments import sweeps
from ordergrad_experiments.report import guarded_maze as gm

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMAND = str(pathlib.Path(sys.executable).with_name("ordergrad-jax"))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_expected_lowest_against_enumeration(k):
    # brute force: every k-tuple of outcomes, its probability and its minimum.
    values, probs = np.array([3.0, -1.0, 7.0, -1.0]), np.array([0.25, 0.035, 0.615, 0.1])
    brute = sum(
        np.prod(probs[list(idx)]) * values[list(idx)].min()
        for idx in itertools.product(range(values.size), repeat=k)
    )
    assert gm.expected_lowest(values, probs, k) == pytest.approx(brute)
    with pytest.raises(ValueError, match="k must be"):
        gm.expected_lowest(values, probs, 0)


def test_short_route_tail_objectives_by_hand():
    # the short route: -18 w.p. 0.05, else 14; the lowest of 10 is -18 unless no draw is charged.
    none_charged = 0.95**10
    by_hand = -18.0 * (1 - none_charged) + 14.0 * none_charged
    table = gm.mixture_table()
    first = table.splitlines()[2]
    assert first.split("|")[1:5] == [" 0 ", " 12.40 ", " -2.00 ", f" {by_hand:.2f} "]
    # the dip below both routes (the short route is a local optimum of both tail objectives):
    # P(safe) = q at the start, the lowest of 10 is -18 if any draw is charged, 10 if none is
    # but one took the safe route, else 14.
    q = 0.1
    p_none = (1 - 0.05 * (1 - q)) ** 10
    p_all_short = (0.95 * (1 - q)) ** 10
    lowest = -18 * (1 - p_none) + 10 * (p_none - p_all_short) + 14 * p_all_short
    values, probs = np.array([-18.0, 14.0, 10.0]), np.array([0.05 * (1 - q), 0.95 * (1 - q), q])
    assert gm.expected_lowest(values, probs, 10) == pytest.approx(lowest)
    assert lowest < by_hand < 10.0


@pytest.mark.parametrize(
    "row, route",
    [
        ({"cvar_0.1": 10.0, "success_rate": 1.0}, "safe"),
        ({"cvar_0.1": -2.0, "success_rate": 1.0}, "short"),
        ({"cvar_0.1": -40.0, "success_rate": 0.2}, "no goal"),
        ({"cvar_0.1": -40.0, "success_rate": 0.6}, "short"),
    ],
)
def test_classify(row, route):
    assert gm.classify(row) == route


def _write_run(folder: pathlib.Path, name: str, method: str, rows: list[tuple], **config):
    """A hand-made finished run: config.json, metrics.jsonl (one eval row per seed), summary.md."""
    path = folder / gm.RUNS / f"gm-{name}"
    path.mkdir(parents=True)
    cfg = {"warm_start_frac": 0.0, "entropy_coef": 0.0, "entropy_schedule": "constant", **config}
    (path / "config.json").write_text(json.dumps({"config": cfg}))
    lines = [
        json.dumps(
            {
                "kind": "eval",
                "method": method,
                "seed": s,
                "mean": m,
                "cvar_0.1": c,
                "success_rate": w,
            }
        )
        for s, (m, c, w) in enumerate(rows)
    ]
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (path / "summary.md").write_text("done\n")


def test_tables_on_hand_made_runs(tmp_path):
    exact = {
        "guarded-maze-routes",
        "guarded-maze-mixture",
        "guarded-maze-start",
        "guarded-maze-ascent",
    }
    assert set(gm.builders(tmp_path)) == exact
    start = [line.split("|") for line in gm.start_table().splitlines()[2:]]
    probs = {row[1].strip(): float(row[2]) for row in start}
    avoid, through = probs["arrives avoiding the zone"], probs["arrives through the zone"]
    assert avoid + through + probs["times out"] == pytest.approx(1.0, abs=2e-4)
    assert probs["arrivals through / avoiding the zone"] == pytest.approx(through / avoid, rel=0.01)
    base = [(12.4, -2.0, 1.0), (12.3, -3.0, 1.0), (12.2, -1.0, 1.0)]
    _write_run(tmp_path, "rloo", "rloo", base)
    diffs = {name: [1.0, 2.0, 6.0 + i] for i, name in enumerate(gm.FAMILY)}
    for name in gm.FAMILY:
        rows = [(m, c + d, w) for (m, c, w), d in zip(base, diffs[name], strict=True)]
        _write_run(tmp_path, name, name, rows, warm_start_frac=0.3)
    (tmp_path / gm.RUNS / "gm-cvar_pg" / "metrics.jsonl").write_text(
        "\n".join(
            json.dumps({"kind": "eval", "method": "cvar_pg", "seed": s, **r})
            for s, r in enumerate(
                [
                    {"mean": 10.0, "cvar_0.1": 10.0, "success_rate": 1.0},
                    {"mean": -40.0, "cvar_0.1": -40.0, "success_rate": 0.0},
                    {"mean": 12.0, "cvar_0.1": -3.0, "success_rate": 1.0},
                ]
            )
        )
        + "\n"
    )
    returns = np.array([[10, 10, 14, 14], [10, 14, -18, 14], [14, 14, 14, 9]], np.float32)
    np.savez(tmp_path / gm.RUNS / "gm-rloo" / "final_returns.npz", method="rloo", returns=returns)
    tables = gm.builders(tmp_path)
    runs = tables["guarded-maze-runs"]()
    rloo = next(line for line in runs.splitlines() if "gm-rloo" in line)
    assert "| 0/3/0 |" in rloo and "| 3 |" in rloo
    assert "| 0.25 ± " in rloo  # returns of 10: shares 1/2, 1/4, 0
    assert "| - |" in next(line for line in runs.splitlines() if "gm-og_ltm |" in line)
    assert "| 1/1/1 |" in next(line for line in runs.splitlines() if "gm-cvar_pg" in line)
    paired = tables["guarded-maze-paired"]().splitlines()
    og = next(line for line in paired if "gm-og_ltm |" in line)
    # og_ltm - rloo = (1, 2, 7): mean 10 / 3, t = mean / (sd / sqrt 3) with 2 df.
    d = np.array([1.0, 2.0, 7.0])
    assert f"| {d.mean():.3g} |" in og
    from scipy import stats as sps

    p = 2 * sps.t.sf(d.mean() / (d.std(ddof=1) / np.sqrt(3)), 2)
    assert f"| {p:.2g} |" in og or f"| {p:.3g} |" in og
    assert "| 3 of 3 |" in og
    # the sampler study: its primary tested alone (p unadjusted), the rest one Holm family
    assert "guarded-maze-sampler" not in tables
    for i, name in enumerate((gm.SAMPLER_PRIMARY, *gm.SAMPLER_FAMILY)):
        rows = [(m, c + d, w) for (m, c, w), d in zip(base, [1.0, 2.0, 7.0 + i], strict=True)]
        _write_run(tmp_path, name, name, rows, warm_start_frac=0.5, warm_start_schedule="linear")
    tables = gm.builders(tmp_path)
    sampler = tables["guarded-maze-sampler"]().splitlines()
    assert [line.split("|")[1].strip() for line in sampler[2:]] == [
        f"gm-{n}" for n in (gm.SAMPLER_PRIMARY, *gm.SAMPLER_FAMILY)
    ]
    assert (
        f"| {p:.2g} | primary, alone |" in sampler[2]
        or f"| {p:.3g} | primary, alone |" in sampler[2]
    )
    pf = [float(line.split("|")[6]) for line in sampler[3:]]
    holm = [float(line.split("|")[7]) for line in sampler[3:]]
    want = np.minimum(1, np.maximum.accumulate(np.sort(pf) * (len(pf) - np.arange(len(pf)))))
    np.testing.assert_allclose(np.sort(holm), want, rtol=0.05)  # from the 2-3 digit cells
    assert "0.5 (linear)" in tables["guarded-maze-runs"]()
    # missing runs are named
    shutil.rmtree(tmp_path / gm.RUNS / "gm-og_ltm")
    with pytest.raises(ValueError, match="og_ltm"):
        gm.paired_table(tmp_path)


def test_sweep_dry_run_through_the_installed_command():
    out = subprocess.run(
        [COMMAND, "sweep", "guarded-maze", "--dry-run"], capture_output=True, text=True, check=True
    ).stdout.split()
    ids = [run.id for run in sweeps.get("guarded-maze").runs]
    assert out == ids and set(ids) == {"gm-rloo", *(f"gm-{m}" for m in gm.FAMILY)}
    assert all("env=GuardedMaze-v0" in sweeps.get("guarded-maze").pins for _ in ids)
    sampler = sweeps.get("guarded-maze-sampler")
    assert {r.id for r in sampler.runs} == {
        f"gm-{m}" for m in (gm.SAMPLER_PRIMARY, *gm.SAMPLER_FAMILY)
    }
    assert sampler.pins == sweeps.get("guarded-maze").pins
    for name, family in (
        ("guarded-maze-explore", gm.EXPLORE),
        ("guarded-maze-ablate", gm.ABLATE),
        ("guarded-maze-tabular", gm.TABULAR),
        ("guarded-maze-scale", gm.SCALE),
    ):
        sweep = sweeps.get(name)
        assert {r.id for r in sweep.runs} == {f"gm-{m}" for m in family}, name
        assert sweep.pins == sampler.pins


def test_the_committed_document_matches_its_runs():
    # the tables of reports/guarded-maze/RESULTS.md against the committed runs (and CI's
    # report --check); the committed runs are exactly the sweep's.
    from ordergrad_experiments.report import report

    assert report("guarded-maze", check=True) == []
    committed = sorted(p.name for p in (ROOT / "reports" / "guarded-maze" / gm.RUNS).iterdir())
    names = ("guarded-maze", "guarded-maze-sampler", "guarded-maze-explore", "guarded-maze-ablate")
    names += ("guarded-maze-tabular", "guarded-maze-scale")
    kept = [run for name in names for run in sweeps.get(name).kept()]
    assert committed == sorted(kept)


def test_keep_final_rows(tmp_path):
    from ordergrad_experiments.common.runs import Run
    from ordergrad_experiments.sweeps.guarded_maze import final_rows

    src = tmp_path / "run"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "summary.md").write_text("done\n")
    rows = [{"kind": "train", "seed": s, "env_steps": e} for e in (10, 20) for s in (0, 1)]
    rows += [{"kind": "eval", "seed": s, "mean": 1.0} for s in (0, 1)]
    (src / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    final_rows(Run(src), tmp_path / "kept")
    kept = Run(tmp_path / "kept")
    assert kept.finished and kept.metrics == rows[2:]
