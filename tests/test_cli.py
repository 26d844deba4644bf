"""Smoke tests of the `ordergrad-jax` command: the demo and a tiny benchmark run."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import ordergrad_jax as og
from ordergrad_experiments import demo
from ordergrad_experiments.bench import transform
from ordergrad_experiments.common.runs import RunWriter


def test_demo_rows_match_library():
    rows = demo.run()
    x = np.asarray(demo.REWARDS)
    for row in rows:
        np.testing.assert_allclose(
            row["advantage"], og.lstat_advantage(x, 4, row["objective"]), atol=1e-6
        )
        assert abs(row["advantage"].sum()) < 1e-5


def test_bench_writes_json(tmp_path):
    config = transform.TransformBenchConfig(shapes=((8, 16, 4), (2, 80, 8)), number=1, repeats=1)
    writer = RunWriter("transform", tmp_path, "t")
    transform.run(config, writer)
    rows = [json.loads(line) for line in (writer.path / "metrics.jsonl").read_text().splitlines()]
    assert [r["N"] for r in rows] == [16, 80]
    assert rows[0]["path"] == "pairwise" and "pairwise_us" not in rows[1]
    assert all(r["ordergrad_over_floor"] > 0 for r in rows)
    record = json.loads((writer.path / "config.json").read_text())
    assert record["config"]["shapes"] == [[8, 16, 4], [2, 80, 8]] and "device" in record
    assert (writer.path / "summary.md").exists()
    assert not list(writer.path.glob(".*.tmp"))  # atomic writes left no temporary file


def test_console_script_runs_demo():
    out = subprocess.run(
        [sys.executable, "-m", "ordergrad_experiments.cli", "demo"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "ReMax" in out.stdout and "advantages sum to 0" in out.stdout


ENTRY = pathlib.Path(sys.executable).with_name("ordergrad-jax")


def _cli(
    *args: str, cache: str = "0", env: dict | None = None, **kw
) -> subprocess.CompletedProcess:
    """Runs the installed console script (as a user would) with the compilation cache off."""
    env = {**(os.environ if env is None else env), "ORDERGRAD_JAX_CACHE": cache}
    return subprocess.run(
        [str(ENTRY), *args], capture_output=True, text=True, timeout=600, env=env, **kw
    )


@pytest.mark.once  # the CLI's contract: neither the dtype nor the jax version changes it
def test_entry_point_is_installed():
    assert ENTRY.exists(), f"{ENTRY} missing: install the project with pip install -e ."


@pytest.mark.once  # the CLI's contract: neither the dtype nor the jax version changes it
def test_success_exits_0_and_prints_the_path_once(tmp_path):
    cache = tmp_path / "cache"
    sets = ["studies=unbiasedness", "unbiased_batches=500", "unbiased_repeats=1"]
    args = ["run", "variance", "--quick", "--out", str(tmp_path), "--run-id", "ok"]
    proc = _cli(*args, *[a for s in sets for a in ("--set", s)], cache=str(cache))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(str(tmp_path / "variance" / "ok")) == 1
    assert (tmp_path / "variance" / "ok" / "summary.md").exists()
    assert any(cache.iterdir()), "the persistent compilation cache stayed empty"
    assert _cli("list").returncode == 0


@pytest.mark.once  # the CLI's contract: neither the dtype nor the jax version changes it
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuch"], "unknown experiment 'nosuch'; available: variance"),
        (["run", "variance", "--set", "nokey=1"], "with a key among ['lr_arms'"),
        (["run", "variance", "--set", "lr_batches=abc"], "'abc' is not a valid lr_batches (type"),
        (["run", "variance", "--set", "seed"], "--set takes key=value"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args, message):
    proc = _cli(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.once  # the CLI's contract: neither the dtype nor the jax version changes it
def test_bad_input_during_a_run_exits_1_without_traceback(tmp_path):
    proc = _cli(
        "run", "variance", "--quick", "--out", str(tmp_path), "--set", "studies=nosuchstudy"
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.strip().splitlines()[-1].startswith("ordergrad-jax: error:")
    assert "Traceback" not in proc.stderr


@pytest.mark.once  # the CLI's contract: neither the dtype nor the jax version changes it
def test_cache_dir_setting(monkeypatch, tmp_path):
    from ordergrad_experiments import cli

    monkeypatch.setenv("ORDERGRAD_JAX_CACHE", "off")
    assert cli.compilation_cache_dir() is None
    monkeypatch.setenv("ORDERGRAD_JAX_CACHE", str(tmp_path / "c"))
    assert cli.compilation_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ORDERGRAD_JAX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cli.compilation_cache_dir("gpu") == tmp_path / "xdg" / "ordergrad-jax" / "jax"
    assert cli.compilation_cache_dir("cpu") is None  # opt-in on CPU (see its docstring)


@pytest.mark.parametrize(
    "name",
    [
        "transform",
        pytest.param("control", marks=pytest.mark.training),
        pytest.param("accelerator", marks=pytest.mark.training),
    ],
)
def test_bench_quick_exits_0_and_writes_json(tmp_path, name):
    """`ordergrad-jax bench NAME --quick --out DIR` for every registered benchmark: exit 0, the
    config and one JSON row per measurement under DIR/NAME/<run-id>/, the table in summary.md.
    (``brax``'s quick bench runs once in CI, in tests/test_report_brax.py, with these checks.)"""
    from ordergrad_experiments import registry

    assert name in registry.bench_names()
    # the accelerator's control and lm parts are the control and lm-speed benches' measure(),
    # which their own runs here compile; its glue is test_accelerator_parts_add_their_columns
    parts = ("--set", "parts=matmul,transform") if name == "accelerator" else ()
    proc = _cli("bench", name, "--quick", "--out", str(tmp_path), "--run-id", "q", *parts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = tmp_path / name / "q"
    assert proc.stdout.count(str(path)) == 1
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(isinstance(r, dict) for r in rows)
    assert json.loads((path / "config.json").read_text())["config"]
    assert (path / "summary.md").read_text().count("|") > 4


@pytest.mark.once  # host-side glue; needs the lm extra (tunix), which the first lane has
def test_accelerator_parts_add_their_columns(monkeypatch):
    """The accelerator's control and lm parts: the control bench's rows with the parallel
    episodes of each trainer, the lm-speed rows with the learner's fraction of each matmul peak
    (``measure`` of both benches stands in: their own benches run them)."""
    from ordergrad_experiments.bench import accelerator, lm_speed
    from ordergrad_experiments.bench import control as control_bench

    def fake_control(configs, repeats):
        return [{"trainer": name, "env_steps_per_s": 1.0} for name in configs]

    monkeypatch.setattr(control_bench, "measure", fake_control)
    monkeypatch.setattr(lm_speed, "measure", lambda cfg: {"learner_flops_per_s": 3.0e9})
    config = accelerator.QUICK
    rows = accelerator.control_rows(config, {})
    groups = config.control.groups
    assert [r["parallel_episodes"] for r in rows] == [
        groups.num_groups * groups.group_size,
        groups.num_groups * groups.group_size,
        config.control.num_envs,
    ]
    assert rows[2]["trainer"].startswith("ppo")
    (row,) = accelerator.lm_rows(config, {"bfloat16": 6.0e9, "float32": 1.5e9})
    assert row["size"] == "study"
    assert row["learner_fraction_of_bfloat16_peak"] == 0.5
    assert row["learner_fraction_of_float32_peak"] == 2.0


@pytest.mark.once  # the CLI's contract: neither the dtype nor the jax version changes it
def test_bench_names_come_from_the_registry():
    from ordergrad_experiments import registry

    assert {"transform", "control", "brax", "accelerator"} <= set(registry.bench_names())
    proc = _cli("bench", "nosuch")
    assert (
        proc.returncode == 2 and "unknown benchmark 'nosuch'; available: transform" in proc.stderr
    )
    proc = _cli("bench", "transform", "--quick", "--set", "nokey=1")
    assert proc.returncode == 2 and "with a key among ['number'" in proc.stderr


@pytest.mark.once  # the CLI's contract: neither the dtype nor the jax version changes it
def test_an_experiment_without_its_extra_names_the_extra(monkeypatch, capsys):
    """Without an optional package (tunix where the lm extra is not installed), `list` still lists
    the rest and says which extra to install; `run` fails with that one line."""
    from ordergrad_experiments import cli, registry

    entry = registry.Entry("needs tunix", "tunix.models.qwen3.model", "Config")
    monkeypatch.setitem(registry._EXPERIMENTS, "needs-tunix", entry)
    # as if google-tunix were not installed (even when another test has imported it already)
    monkeypatch.setitem(sys.modules, "tunix.models.qwen3.model", None)
    with pytest.raises(registry.MissingExtra, match=r'pip install -e "\.\[lm\]"'):
        registry.get("needs-tunix")
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "needs-tunix: not available here" in out and "variance:" in out
    assert cli.main(["run", "needs-tunix"]) != 0
    assert '".[lm]"' in capsys.readouterr().err


@pytest.mark.once
def test_without_gymnax_list_says_the_envs_extra_needs_jax_below_0_12(monkeypatch, capsys):
    """On jax >= 0.12 (the jax 0.12 lane) gymnax cannot be installed: `list` names the envs
    extra and its jax limit for each experiment that needs it."""
    from ordergrad_experiments import cli, registry

    entry = registry.Entry("needs gymnax", "gymnax.environments.spaces", "Config")
    monkeypatch.setitem(registry._EXPERIMENTS, "needs-gymnax", entry)
    monkeypatch.setitem(sys.modules, "gymnax.environments.spaces", None)
    assert cli.main(["list"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("needs-gymnax"))
    assert "not available here" in line and '"ordergrad-jax[envs]"' in line
    assert "gymnax 1.0.1 needs jax < 0.12" in line


PLUGIN = """
import jax.numpy as jnp
import ordergrad_jax as og


@og.estimators.register("plugin_median_baseline", params=(), gradient_scale=1.0, zero_sum=False)
def median_baseline(rewards, mask=None):
    return rewards - jnp.median(rewards, axis=-1, keepdims=True)
"""


@pytest.mark.training
def test_a_user_estimator_in_a_plugin_module_trains_with_no_other_edit(tmp_path):
    """README "Your own estimator": a module named in ORDERGRAD_JAX_PLUGINS registers an
    estimator, and the installed command's control trainer uses it by name."""
    (tmp_path / "my_estimators.py").write_text(PLUGIN)
    env = {**os.environ, "ORDERGRAD_JAX_PLUGINS": "my_estimators", "PYTHONPATH": str(tmp_path)}
    sets = ["estimator.name=plugin_median_baseline", "budget.total=3200", "budget.num_chunks=1"]
    args = ["run", "control", "--quick", "--out", str(tmp_path), "--run-id", "plug"]
    proc = _cli(*args, *[a for s in sets for a in ("--set", s)], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((tmp_path / "control" / "plug" / "config.json").read_text())
    assert "plugin_median_baseline" in json.dumps(config)
    missing = _cli("list", env={**env, "ORDERGRAD_JAX_PLUGINS": "no_such_module_here"})
    assert missing.returncode == 2 and "no_such_module_here" in missing.stderr


@pytest.mark.once
def test_a_run_that_meets_a_missing_extra_fails_with_one_line(monkeypatch, tmp_path, capsys):
    """An extra's package imported only when the run starts (``run control`` imports gymnax in
    ``make_train``): exit 1 and one line naming the extra, not a traceback; a missing module of
    no extra is a bug and propagates."""
    from ordergrad_experiments import cli, registry

    (tmp_path / "late_import.py").write_text(
        "import dataclasses\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class Config:\n"
        "    module: str = 'gymnax'\n"
        "QUICK = Config()\n"
        "def run(config, writer, progress):\n"
        "    raise ModuleNotFoundError(f'No module named {config.module!r}', name=config.module)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        registry._EXPERIMENTS, "late", registry.Entry("late", "late_import", "Config")
    )
    out = str(tmp_path / "out")
    assert cli.main(["run", "late", "--quick", "--out", out]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and '"ordergrad-jax[envs]"' in err and "jax < 0.12" in err
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        cli.main(["run", "late", "--quick", "--out", out, "--set", "module=no_such_module"])


@pytest.mark.once
def test_an_experiment_that_imports_gymnax_late_is_unavailable_without_it(monkeypatch, capsys):
    """``run control`` imports gymnax only when training starts; its registry entry says so
    (``requires``), so without gymnax `list` says control is unavailable and why."""
    from ordergrad_experiments import cli, registry

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gymnax" else real(name, *a)
    )
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    control = next(s for s in lines if s.startswith("control:"))
    assert "not available here" in control and "gymnax 1.0.1 needs jax < 0.12" in control
    assert any(s.startswith("variance: estimator studies") for s in lines)
    with pytest.raises(registry.MissingExtra, match="envs"):
        registry.get_bench("control")
