"""`ordergrad-jax report brax` reads the run folders today's commands write (and the older files
committed in reports/brax): tables checked cell by cell on hand-made run folders, and end to end
on quick runs of `bench brax` and `run brax-variance`."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ordergrad_experiments.common.config import BudgetConfig, EstimatorConfig
from ordergrad_experiments.common.runs import Run
from ordergrad_experiments.pathwise import config as pwc
from ordergrad_experiments.pathwise import run as pwr
from ordergrad_experiments.report import brax

pytestmark = pytest.mark.once  # neither the dtype nor the jax version changes these

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENTRY = pathlib.Path(sys.executable).with_name("ordergrad-jax")


def _run_folder(path: pathlib.Path, config: dict, rows: list[dict], finished: bool = True):
    """A run folder as ``RunWriter`` writes it: config.json, metrics.jsonl, summary.md last."""
    path.mkdir(parents=True)
    provenance = {"git_commit": "0" * 40, "start_utc": "2026-12-01T00:00:00+00:00"}
    (path / "config.json").write_text(json.dumps({"config": config, "provenance": provenance}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if finished:
        (path / "summary.md").write_text("# done\n")


def _bench_row(trainer: str, task: str, sps: float, wall: float, mean: float, cvar: float):
    return {
        "trainer": trainer,
        "env_steps": 2048,
        "wall_s": wall,
        "env_steps_per_s": sps,
        "eval_mean": mean,
        "eval_cvar_0.1": cvar,
        "eval_median": mean,
        "task": task,
        "backend": "spring",
        "seed": 0,
        "num_envs": 128,
    }


def test_bench_table_reads_run_folders_and_the_older_files(tmp_path):
    """One row per trainer run of every benchmark, by name: a run folder bench/brax/<run-id>/
    and an older bench/*.json file; an unfinished run folder left out; ratios against the brax
    agent of the same kind in the same benchmark; a failed brax agent shows its error and gives
    no ratio."""
    error = "brax's own agent brax_ppo failed on jax 0.11: ImportError"
    rows = [
        _bench_row("ours_rp[Mean]", "reacher", 1500.0, 10.0, 1.234, -0.5),
        _bench_row("brax_apg", "reacher", 1000.0, 20.0, 2.0, 1.0),
        _bench_row("ours_ppo", "reacher", 3000.0, 5.0, 3.0, 2.5),
        {"trainer": "brax_ppo", "error": error, "task": "reacher", "backend": "spring"},
    ]
    _run_folder(tmp_path / "bench" / "brax" / "mini", {"task": "reacher"}, rows)
    _run_folder(tmp_path / "bench" / "brax" / "running", {"task": "reacher"}, rows, False)
    older = [
        _bench_row("ours_group_pg", "hopper", 4000.0, 2.0, 150.0, 100.0),
        _bench_row("brax_ppo", "hopper", 2000.0, 8.0, 157.19, 128.974),
    ]
    (tmp_path / "bench" / "alpha.json").write_text(
        json.dumps({"config": {"task": "hopper"}, "device": "cpu", "rows": older})
    )
    expected = (
        "| bench | task | trainer | env_steps | env_steps_per_s | vs_brax | wall_s | wall_vs_brax "
        "| eval_mean | eval_cvar_0.1 | error |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        "| alpha | hopper | ours_group_pg | 2048 | 4,000 | 2.00x brax_ppo | 2.0 | 0.25x "
        "| 150.00 | 100.00 |  |\n"
        "| alpha | hopper | brax_ppo | 2048 | 2,000 |  | 8.0 |  | 157.19 | 128.97 |  |\n"
        "| mini | reacher | ours_rp[Mean] | 2048 | 1,500 | 1.50x brax_apg | 10.0 | 0.50x "
        "| 1.23 | -0.50 |  |\n"
        "| mini | reacher | brax_apg | 2048 | 1,000 |  | 20.0 |  | 2.00 | 1.00 |  |\n"
        "| mini | reacher | ours_ppo | 2048 | 3,000 |  | 5.0 |  | 3.00 | 2.50 |  |\n"
        f"| mini | reacher | brax_ppo |  |  |  |  |  |  |  | {error} |\n"
    )
    assert brax.bench_table(tmp_path) == expected
    # without a failed agent there is no error column
    (tmp_path / "bench" / "brax" / "mini" / "summary.md").unlink()
    assert brax.bench_table(tmp_path).splitlines()[0].endswith("| eval_cvar_0.1 |")


VARIANCE_ROW = {
    "task": "brax/reacher",
    "backend": "spring",
    "objective": "Mean",
    "episodes_per_estimate": 64,
    "repeats": 128,
    "snr": 0.274049,
    "mean_norm": 0.91149,
    "cosine_rp_lr": 0.97512,
    "max_diff_in_se": 2.98,
    "variance_ratio_lr_over_rp": 11.4,
    "terminated_fraction": 0.0,
}


def test_variance_table_reads_one_study_in_either_form(tmp_path):
    """A brax-variance run folder (rows name their ``gradient``) and the older variance/rows.json
    (rows name it ``estimator``) give the same table; two studies are an error."""
    rows = [
        {**VARIANCE_ROW, "gradient": "rp", "num_steps": 32, "total_variance": 2.93871},
        {**VARIANCE_ROW, "gradient": "lr", "num_steps": 32, "total_variance": 1234.5, "snr": 1e-5},
    ]
    _run_folder(tmp_path / "brax-variance" / "variance", {"tasks": ["brax/reacher"]}, rows)
    _run_folder(tmp_path / "brax-variance" / "unfinished", {}, rows, finished=False)
    expected = (
        "| task | objective | gradient | total_variance | snr | mean_norm | cosine_rp_lr "
        "| max_diff_in_se | variance_ratio_lr_over_rp | terminated_fraction |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        "| brax/reacher | Mean | rp | 2.94 | 0.274 | 0.911 | 0.975 | 2.98 | 11.4 | 0 |\n"
        "| brax/reacher | Mean | lr | 1.23e+03 | 1e-05 | 0.911 | 0.975 | 2.98 | 11.4 | 0 |\n"
    )
    assert brax.variance_table(tmp_path) == expected
    older = tmp_path / "older"
    (older / "variance").mkdir(parents=True)
    legacy = [
        {k: v for k, v in r.items() if k != "gradient"} | {"estimator": r["gradient"]} for r in rows
    ]
    (older / "variance" / "rows.json").write_text(json.dumps({"config": {}, "rows": legacy}))
    assert brax.variance_table(older) == expected
    shutil.copytree(older / "variance", tmp_path / "variance")
    with pytest.raises(ValueError, match="2 variance studies"):
        brax.variance_table(tmp_path)


def _t_cell(values: list[float]) -> str:
    """mean ± the Student t 95% half-width (n - 1 df), computed here with scipy."""
    x = np.asarray(values)
    half = scipy_stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.4g} ± {half:.2g}"


def test_rp_tables_and_summary_of_a_run_folder(tmp_path):
    """A brax-rp run folder as today's trainer writes it: the final evaluation over 3 seeds with
    Student t intervals (checked against scipy.stats.t), the learning curves (means by hand),
    and its summary.md rebuilt offline from the folder (no normal interval)."""
    config = dataclasses.asdict(
        dataclasses.replace(
            pwc.PathwiseConfig(),
            env_params=("backend=spring", "reward=smooth"),
            estimator=EstimatorConfig(objective="LowerTailMean:0.25", k=4),
            num_seeds=3,
            budget=BudgetConfig(total=4 * 16 * 8 * 64, num_chunks=2),
        )
    )
    config = json.loads(json.dumps(config))  # tuples -> lists, as config.json holds them
    per_seed = {  # (chunk, seed) -> (mean length, mean, cvar_0.1); chunk 1 is final
        (0, 0): (50.0, 40.0, 20.0),
        (0, 1): (54.0, 44.0, 24.0),
        (0, 2): (58.0, 48.0, 31.0),
        (1, 0): (60.0, 50.0, 10.0),
        (1, 1): (62.0, 55.0, 12.0),
        (1, 2): (64.0, 63.0, 17.0),
    }
    rows = []
    for (chunk, seed), (length, mean, cvar) in per_seed.items():
        rows.append(
            {
                "seed": seed,
                "iteration": 2 * (chunk + 1),
                "env_steps": 500_000 * (chunk + 1),
                "eval_mean_length": length,
                "eval_mean": mean,
                "eval_cvar_0.1": cvar,
                "eval_max@4": mean + 1.0,
                "eval_episodes": 1024,
                "env_steps_per_s": 1000.0 * (chunk + 1),
                "chunk": chunk,
                "wall_s": 30.0 + chunk,
                "first_in_process": chunk == 0,
            }
        )
    run_dir = tmp_path / "brax-rp" / "ip-test-rp-LTM"
    _run_folder(run_dir, config, rows)

    line = brax.rp_table(tmp_path, inverted_pendulum=True).splitlines()[2]
    final = [per_seed[1, s] for s in range(3)]
    cells = [_t_cell([v[i] for v in final]) for i in range(3)]
    assert cells[2] == "13 ± 9"  # 10, 12, 17: sd sqrt(13), t_{0.975,2} = 4.303
    assert line == (
        "| ip-test-rp-LTM | rp | LowerTailMean:0.25 | 0 | 0.003 | 0.3 | 0 x 0 | 3 | 1000000 | "
        f"{cells[0]} | {cells[1]} | {cells[2]} | {_t_cell([51.0, 56.0, 64.0])} | 2e+03 |"
    )
    assert brax.rp_table(tmp_path, inverted_pendulum=False) == "no finished runs\n"
    curves = brax.rp_curves_table(tmp_path).splitlines()
    assert curves[0] == "| run | 500k | 1000k |"
    assert curves[2] == "| ip-test-rp-LTM | L 54.0, C 25.0 | L 62.0, C 13.0 |"

    summary = pwr.summary(config, rows)
    assert summary.splitlines()[0] == (
        "# brax-rp: brax/inverted_pendulum (backend=spring, reward=smooth), gradient=rp, "
        "objective=LowerTailMean:0.25, K=4, G=16, N=8, num_steps=64, truncate=0, lr=0.003, "
        "std=0.3, seeds=3"
    )
    assert f"| eval_cvar_0.1 | {cells[2]} |" in summary
    assert "| wall_s (all chunks) | 61.0 |" in summary and "1.96" not in summary
    pwr.rewrite_summary(run_dir)
    assert (run_dir / "summary.md").read_text() == summary
    (run_dir / "summary.md").unlink()
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        pwr.rewrite_summary(run_dir)
    assert not (run_dir / "summary.md").exists()


def test_committed_rp_summaries_are_their_data_and_no_normal_interval_is_stated():
    """Each committed brax-rp summary.md is what the summary writer makes of its folder's data
    (Student t intervals), and no text file of reports/brax states a 1.96 SE interval."""
    runs = sorted(d for d in (ROOT / "reports" / "brax" / "brax-rp").iterdir() if d.is_dir())
    assert runs
    for d in runs:
        config = json.loads((d / "config.json").read_text())["config"]
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        assert (d / "summary.md").read_text() == pwr.summary(config, rows), d.name
    stale = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "reports" / "brax").rglob("*.md")
        if re.search(r"(?<![\d.])1\.96(?!\d)", path.read_text())
    ]
    assert not stale, stale


def _ordergrad_jax(*args: str, cwd: pathlib.Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ORDERGRAD_ROOT"}
    env["ORDERGRAD_JAX_CACHE"] = "0"
    return subprocess.run(
        [str(ENTRY), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_brax_bench_builds_the_lr_trainers_configs():
    """The brax bench's group-PG and PPO configs: its embedded control config with the shared
    task (native reward), batch, horizon, budget and seed; PPO over the same parallel episodes."""
    from ordergrad_experiments.bench import brax as bench

    config = bench.QUICK
    pg = bench.control_config("ours_group_pg", config)
    assert (pg.env, pg.algo, pg.seed, pg.num_seeds) == (f"brax/{config.task}", "group_pg", 0, 1)
    assert pg.env_params == (f"backend={config.backend}", f"episode_length={config.num_steps}")
    assert (pg.groups, pg.num_steps, pg.budget) == (config.groups, config.num_steps, config.budget)
    assert pg.estimator == config.control.estimator and pg.estimator.name == "rloo"
    ppo = bench.control_config("ours_ppo", config)
    num_envs = config.groups.num_groups * config.groups.group_size
    assert (ppo.algo, ppo.num_envs, ppo.ppo_steps) == ("ppo", num_envs, config.num_steps)


@pytest.mark.training
def test_report_rebuilds_the_document_from_new_bench_and_variance_runs(tmp_path):
    """A copy of reports/brax whose section 4 and 5 data are replaced by quick runs of today's
    `ordergrad-jax bench brax` and `run brax-variance` (written where RESULTS.md says): `report
    brax` rewrites exactly those two tables from the runs' rows, and `report brax --check` then
    passes. (These are the quick runs' only tests: each brax compile costs tens of seconds; the
    check's failure naming an edited table is tests/test_reports.py's.)"""
    folder = tmp_path / "reports" / "brax"
    shutil.copytree(ROOT / "reports" / "brax", folder)
    (tmp_path / "pyproject.toml").write_text("")
    for path in [*folder.glob("bench/*.json"), folder / "variance" / "rows.json"]:
        path.unlink()
    for args in (
        # our RP trainer only: the group-PG trainer on brax runs in test_brax.py (pushes), and
        # the bench's config for it is test_brax_bench_builds_the_lr_trainers_configs's
        (
            "bench",
            "brax",
            "--quick",
            "--out",
            str(folder / "bench"),
            "--run-id",
            "quick",
            "--set",
            "trainers=ours_rp",
        ),
        ("run", "brax-variance", "--quick", "--out", str(folder), "--run-id", "variance"),
    ):
        proc = _ordergrad_jax(*args)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if args[0] == "bench":  # the CLI contract of tests/test_cli.py's bench test, for brax
            bench = folder / "bench" / "brax" / "quick"
            assert proc.stdout.count(str(bench)) == 1
            assert json.loads((bench / "config.json").read_text())["config"]
            assert (bench / "summary.md").read_text().count("|") > 4

    proc = _ordergrad_jax("report", "brax", "--root", str(tmp_path))
    assert proc.returncode == 0 and "['variance', 'bench']" in proc.stdout, proc.stderr
    assert _ordergrad_jax("report", "brax", "--check", "--root", str(tmp_path)).returncode == 0

    doc = (folder / "RESULTS.md").read_text()
    bench_rows = [
        json.loads(line)
        for line in (folder / "bench" / "brax" / "quick" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["trainer"] for r in bench_rows] == ["ours_rp[Mean]"]
    for r in bench_rows:
        assert (
            f"| quick | inverted_pendulum | {r['trainer']} | {r['env_steps']} | "
            f"{r['env_steps_per_s']:,.0f} |  | {r['wall_s']:.1f} |  | {r['eval_mean']:.2f} | "
            f"{r['eval_cvar_0.1']:.2f} |"
        ) in doc
    variance_run = folder / "brax-variance" / "variance"
    variance_rows = [
        json.loads(line) for line in (variance_run / "metrics.jsonl").read_text().splitlines()
    ]
    # the quick run itself: RP and LR rows for every objective on brax inverted_pendulum, finite
    # variances, the comparison columns, its own table and figure
    from ordergrad_experiments.pathwise import variance

    assert [(r["gradient"], r["objective"]) for r in variance_rows] == [
        (g, o) for g in ("rp", "lr") for o in variance.QUICK.objectives
    ]
    for r in variance_rows:
        assert r["total_variance"] > 0 and math.isfinite(r["snr"])
        assert -1 <= r["cosine_rp_lr"] <= 1
    assert "| gradient |" in (variance_run / "summary.md").read_text()
    assert (variance_run / "rp_vs_lr.png").exists()
    for r in variance_rows:
        assert (
            f"| {r['task']} | {r['objective']} | {r['gradient']} | {r['total_variance']:.3g} | "
            f"{r['snr']:.3g} | {r['mean_norm']:.3g} |"
        ) in doc
    # the other tables still come from the committed runs
    # 15: sections 2-5, the hopper-tail study (3) and the hopper pair at 63 seeds (2)
    assert doc.count("<!-- table:") == 15 and "| brax-hopper-og_mean | brax-hopper-ppo |" in doc


EVAL_KEYS = ("eval_mean_length", "eval_mean", "eval_cvar_0.1", "eval_max@4")


def test_rp_runs_table_reports_the_final_chunk_over_seeds(tmp_path):
    """rp_runs_table: the final chunk's evaluation as mean +- Student t 95% CI (checked
    by hand for two seeds), the steady speed from chunks that were not first in their process,
    and unfinished runs (no summary.md) left out."""
    cfg = dataclasses.asdict(dataclasses.replace(pwc.PathwiseConfig(), truncate=16))
    # a run folder written before the budget and estimator parts: objective and k top-level
    mid = {key: value for key, value in cfg.items() if key not in ("estimator", "budget")}
    mid |= {"objective": "ReMax", "k": 4, "iterations": 200, "num_chunks": 10}
    # a run folder written before the shared config parts (curated results in reports/brax)
    old = {"estimator": "lr", "objective": "Mean", "truncate": 16, "learning_rate": 1e-3}
    old |= {"action_std": 0.3, "push_prob": 0.2, "push_size": 2.0, "k": 4, "backend": "spring"}
    old["env"] = "brax/inverted_pendulum"
    for name, finished, config in (
        ("done", True, cfg),
        ("running", False, cfg),
        ("mid", True, mid),
        ("old", True, old),
    ):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"config": config}))
        rows = []
        for steps, first, speed in ((10, True, 1.0), (20, False, 5.0)):
            for seed, value in ((0, 1.0 * steps), (1, 3.0 * steps)):
                rows.append(
                    {
                        "seed": seed,
                        "env_steps": steps,
                        "first_in_process": first,
                        "env_steps_per_s": speed,
                        **dict.fromkeys(EVAL_KEYS, value),
                    }
                )
        (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
        if finished:
            (d / "summary.md").write_text("# done\n")
    names = ("done", "running", "mid", "old")
    table = brax.rp_runs_table([Run(tmp_path / name) for name in names])
    lines = table.strip().splitlines()
    assert len(lines) == 5 and "running" not in table
    assert lines[0].startswith("| run | gradient | objective | truncate | lr | std | push |")
    assert lines[3].startswith("| mid | rp | ReMax | 16 | 0.003 | 0.3 | 0 x 0 |")
    assert lines[4].startswith("| old | lr | Mean | 16 | 0.001 | 0.3 | 0.2 x 2 |")
    # final chunk (20 steps): values 20 and 60 -> mean 40, t_{0.975,1} std(ddof=1) / sqrt(2)
    # = 12.706 * 20 = 254
    assert "| 40 ± 2.5e+02 |" in lines[2] and "| 16 |" in lines[2] and lines[2].endswith("| 5 |")


def test_figures_redraw_the_variance_study_where_it_lives(tmp_path):
    """draw_figures: the study's figure beside its rows (a brax-variance run folder, or the older
    variance/ folder); nothing without a study."""
    pytest.importorskip("matplotlib")
    assert brax.draw_figures(tmp_path) == []
    rows = [
        {**VARIANCE_ROW, "objective": objective, "gradient": gradient, "total_variance": 2.0}
        for objective in ("Mean", "ReMax")
        for gradient in ("rp", "lr")
    ]
    _run_folder(tmp_path / "brax-variance" / "variance", {}, rows)
    (path,) = brax.draw_figures(tmp_path)
    assert path == tmp_path / "brax-variance" / "variance" / "rp_vs_lr.png"
    assert path.read_bytes().startswith(b"\x89PNG")
