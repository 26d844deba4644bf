"""`--set logger=...`: the TensorBoard and W&B sinks of experiments/common/loggers.py.

``metrics.jsonl`` stays the record; the sinks get the same rows. The end-to-end runs read the
TensorBoard events back (tensorboard's ``EventAccumulator``) against ``metrics.jsonl`` and make a
W&B offline run folder with no network access.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import types

import jax.numpy as jnp
import numpy as np
import pytest

from ordergrad_experiments import cli
from ordergrad_experiments.common import loggers
from ordergrad_experiments.common.runs import Run, RunWriter, read_jsonl

ENTRY = pathlib.Path(sys.executable).with_name("ordergrad-jax")

ROWS = [  # as the trainers write them (experiments/{control,pathwise,lm}/run.py)
    {"kind": "train", "method": "m", "seed": 0, "iteration": 5, "env_steps": 800}
    | {"return_mean": 10.5, "chunk": 0, "wall_s": 2.0, "first_in_process": True},
    {"kind": "train", "method": "m", "seed": 1, "iteration": 5, "env_steps": 800}
    | {"return_mean": np.float32(12.0), "chunk": 0, "wall_s": 2.0, "first_in_process": True},
    {"kind": "eval", "method": "m", "seed": 0, "episodes": 100, "mean": 20.0, "hist": [1, 2]},
    {"kind": "speed", "method": "m", "env_steps_per_s": 400.0},
    {"phase": "rl", "step": 3, "loss": -0.25, "heldout_pass@1": 0.5},
    {"seed": 2, "iteration": 4, "env_steps": 512, "eval_mean": -3.0},  # pathwise: no kind
    {"method": "m", "ok": False},  # nothing numeric: no scalars
]


def test_step_and_tags_of_hand_made_rows():
    """The step is env_steps, else step, else iteration, else chunk, else the step before; the
    tag is <kind or phase>/<field>, /seed_<s> for a seed's row; no strings, bools, lists."""
    assert [loggers.row_step(row) for row in ROWS] == [800, 800, None, None, 3, 512, None]
    assert loggers.row_step({"iteration": 7, "chunk": 1}) == 7
    assert loggers.row_step({"chunk": np.int64(1)}) == 1
    got = loggers.scalar_rows(ROWS, step=0)
    assert got[0] == (
        800,
        {
            "train/iteration/seed_0": 5.0,
            "train/env_steps/seed_0": 800.0,
            "train/return_mean/seed_0": 10.5,
            "train/chunk/seed_0": 0.0,
            "train/wall_s/seed_0": 2.0,
        },
    )
    assert got[1][1]["train/return_mean/seed_1"] == 12.0
    assert got[2] == (800, {"eval/episodes/seed_0": 100.0, "eval/mean/seed_0": 20.0})
    assert got[3] == (800, {"speed/env_steps_per_s": 400.0})
    assert got[4] == (3, {"rl/step": 3.0, "rl/loss": -0.25, "rl/heldout_pass@1": 0.5})
    assert got[5] == (
        512,
        {"iteration/seed_2": 4.0, "env_steps/seed_2": 512.0, "eval_mean/seed_2": -3.0},
    )
    assert len(got) == 6  # the last row has no scalar
    odd = {"a": np.float32(1.5), "b": np.bool_(True), "c": jnp.asarray(2.0), "d": np.array(3)}
    odd |= {"e": None, "f": np.zeros(2), "g": "x", "seed": np.int64(4)}
    assert loggers.row_scalars(odd) == {"a/seed_4": 1.5, "c/seed_4": 2.0, "d/seed_4": 3.0}
    assert loggers.scalar_rows([ROWS[3]], step=42) == [(42, {"speed/env_steps_per_s": 400.0})]


def test_logger_names_are_checked_at_the_boundary():
    from ordergrad_experiments.control.config import QUICK
    from ordergrad_experiments.lm.diagnose import QUICK as DIAGNOSE

    assert loggers.config_loggers(QUICK) == ("jsonl",)
    both = cli.apply_overrides(QUICK, ("logger=tensorboard,wandb",))
    assert loggers.config_loggers(both) == ("tensorboard", "wandb")
    nested = cli.apply_overrides(DIAGNOSE, ("logger=tensorboard",))  # lm-diagnose's lm.logger
    assert nested.lm.logger == loggers.config_loggers(nested) == ("tensorboard",)
    assert loggers.config_loggers(types.SimpleNamespace()) == ()
    from ordergrad_experiments import registry

    brax = registry.get_bench("brax").quick  # two trainers: rp.logger, control.logger
    assert loggers.config_loggers(brax) == ("jsonl",)
    brax = cli.apply_overrides(brax, ("rp.logger=tensorboard", "control.logger=wandb,tensorboard"))
    assert loggers.config_loggers(brax) == ("tensorboard", "wandb")
    allowed = r"among \['jsonl', 'tensorboard', 'wandb'\]; got \['tb'\]"
    with pytest.raises(ValueError, match=allowed):
        loggers.config_loggers(cli.apply_overrides(QUICK, ("logger=tb",)))
    assert loggers.make_sinks(("jsonl",), "unused", QUICK) == []


def test_a_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    with pytest.raises(loggers.MissingLoggerPackage, match=r'pip install -e "\.\[logging\]"'):
        loggers.require(("jsonl", "wandb"))
    assert issubclass(loggers.MissingLoggerPackage, ValueError)  # the CLI's one-line exit 1


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({}, "offline"),
        ({"WANDB_MODE": "online"}, None),
        ({"WANDB_MODE": "disabled"}, None),
        ({"WANDB_BASE_URL": "http://wandb.example:8080"}, None),
        ({"WANDB_API_KEY": "x" * 40}, None),
        ({"WANDB_MODE": "", "WANDB_PROJECT": "p"}, "offline"),
    ],
)
def test_wandb_is_offline_unless_the_user_chooses(environ, mode):
    assert loggers.wandb_mode(environ) == mode


class _Recorder:
    def __init__(self, fail_on_close: bool = False):
        self.rows: list[list[dict]] = []
        self.closed = 0
        self.fail_on_close = fail_on_close

    def write(self, rows):
        self.rows.append(list(rows))

    def close(self):
        self.closed += 1
        if self.fail_on_close:
            raise OSError("disk full")


def test_run_writer_hands_each_log_call_to_its_sinks(tmp_path):
    writer = RunWriter("exp", tmp_path, "r")
    first, second = _Recorder(), _Recorder(fail_on_close=True)
    writer.sinks = [first, second]
    writer.log(ROWS[:2])
    writer.log(ROWS[2])
    writer.log([])  # a resumed run's rewrite: nothing new
    assert first.rows == second.rows == [ROWS[:2], [ROWS[2]]]
    assert read_jsonl(writer.path / "metrics.jsonl")[2] == {**ROWS[2]}  # jsonl written first
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert first.closed == second.closed == 1 and writer.sinks == []
    writer.close()  # closing again closes nothing twice
    assert first.closed == 1


def test_wandb_sink_logs_one_dict_per_step_and_finishes(monkeypatch, tmp_path):
    calls: dict[str, list] = {"setup": [], "init": [], "log": [], "finish": []}
    run = types.SimpleNamespace(
        log=lambda data, step: calls["log"].append((step, data)),
        finish=lambda: calls["finish"].append(True),
    )
    fake = types.SimpleNamespace(
        Settings=lambda **kw: kw,
        setup=lambda settings: calls["setup"].append(settings),
        init=lambda **kw: calls["init"].append(kw) or run,
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    folder = tmp_path / "control" / "run-1"
    sink = loggers.WandbSink(folder, {"seed": 0}, environ={})
    sink.write(ROWS[:4])
    sink.write(ROWS[4:])
    sink.close()
    assert calls["setup"] == [{"mode": "offline"}]
    assert calls["init"] == [
        {
            "dir": str(folder),
            "name": "run-1",
            "group": "control",
            "project": "ordergrad-jax",
            "config": {"seed": 0},
            "mode": "offline",
        }
    ]
    steps = [step for step, _ in calls["log"]]
    assert steps == [800, 3, 512]  # the seeds, the evaluation and the speed row share step 800
    assert set(calls["log"][0][1]) >= {"train/return_mean/seed_0", "train/return_mean/seed_1"}
    assert {"eval/mean/seed_0", "speed/env_steps_per_s"} <= set(calls["log"][0][1])
    assert calls["finish"] == [True]
    online = loggers.WandbSink(folder, {}, environ={"WANDB_MODE": "online", "WANDB_PROJECT": "p"})
    assert calls["init"][-1]["mode"] is None and calls["init"][-1]["project"] == "p"
    assert len(calls["setup"]) == 1 and online.run is run


def test_make_sinks_closes_what_it_made_when_one_fails(monkeypatch, tmp_path):
    pytest.importorskip("tensorboardX")
    closed, close = [], loggers.TensorBoardSink.close
    monkeypatch.setattr(loggers.TensorBoardSink, "close", lambda self: closed.append(close(self)))

    def no_server(**kw):
        raise RuntimeError("no W&B")

    fake = types.SimpleNamespace(Settings=dict, setup=lambda settings: None, init=no_server)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(RuntimeError, match="no W&B"):
        loggers.make_sinks(("tensorboard", "wandb"), tmp_path, {"seed": 0})
    assert len(closed) == 1 and list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def _events(folder: pathlib.Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value)]}`` of the TensorBoard event files in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    acc = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()[SCALARS]}


def test_tensorboard_sink_round_trip(tmp_path):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("tensorboard")
    sink = loggers.TensorBoardSink(tmp_path / "tb")
    sink.write(ROWS[:2])
    sink.write(ROWS[2:])
    sink.close()
    events = _events(tmp_path / "tb")
    assert events["train/return_mean/seed_1"] == [(800, 12.0)]
    assert events["eval/mean/seed_0"] == [(800, 20.0)]
    assert events["rl/loss"] == [(3, -0.25)]
    assert events["eval_mean/seed_2"] == [(512, -3.0)]
    assert len(events) == sum(len(s) for _, s in loggers.scalar_rows(ROWS))


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed console script (as a user runs it), compilation cache off."""
    env = {**(os.environ if env is None else env), "ORDERGRAD_JAX_CACHE": "0"}
    return subprocess.run([str(ENTRY), *args], capture_output=True, text=True, timeout=600, env=env)


def test_a_bad_logger_name_exits_2_with_one_line():
    proc = _cli("run", "control", "--quick", "--set", "logger=jsonl,tb")
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "logger takes names among ['jsonl', 'tensorboard', 'wandb']; got ['tb']" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _assert_tensorboard_matches_metrics(run: Run) -> None:
    """Every number of the run's metrics.jsonl is a TensorBoard scalar at its row's step
    (env_steps; the evaluation and speed rows at the last one), read back with tensorboard's
    EventAccumulator."""
    events = _events(run.path / "tensorboard")
    last = max(row["env_steps"] for row in run.rows("train"))
    want: dict[str, list[tuple[int, float]]] = {}
    for row in run.metrics:
        step = row.get("env_steps", last)
        seed = f"/seed_{row['seed']}" if "seed" in row else ""
        for field, value in row.items():
            if field not in ("kind", "seed") and type(value) in (int, float):
                want.setdefault(f"{row['kind']}/{field}{seed}", []).append((step, value))
    assert len(run.rows("train")) == 4 and len(run.rows("eval")) == 2
    assert set(events) == set(want)
    for tag, points in want.items():
        got = events[tag]
        assert [s for s, _ in got] == [s for s, _ in points], tag
        np.testing.assert_allclose(  # event files hold float32
            [v for _, v in got], np.float32([v for _, v in points]), rtol=1e-6, err_msg=tag
        )


NETWORK_AUDIT = """
import sys

def _hook(event, args):
    if event == "socket.getaddrinfo":
        target = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        target = args[1][0]
    else:
        return
    if target in (None, "localhost", "127.0.0.1", "::1", b"localhost"):
        return
    with open({log!r}, "a") as f:
        f.write(f"{{event}} {{target!r}}\\n")

sys.addaudithook(_hook)
"""


@pytest.mark.training
def test_run_control_with_tensorboard_and_wandb(tmp_path):
    """`run control --quick --set logger=tensorboard,wandb` (one run for both sinks: each run
    compiles the trainer), with no W&B mode or server configured: the TensorBoard events equal
    metrics.jsonl (:func:`_assert_tensorboard_matches_metrics`); an offline W&B run folder
    `wandb/offline-run-*` holds the rows' keys; no name lookup or connection from Python (an
    audit hook in the run's process records any)."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    audit, log = tmp_path / "audit", tmp_path / "network.log"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(NETWORK_AUDIT.format(log=str(log)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(audit), env.get("PYTHONPATH")])),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
        "WANDB_SILENT": "true",
    }
    args = ["run", "control", "--quick", "--out", str(tmp_path), "--run-id", "wb"]
    proc = _cli(*args, "--set", "logger=tensorboard,wandb", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = Run(tmp_path / "control" / "wb")
    assert run.finished and run.config["logger"] == ["tensorboard", "wandb"]
    _assert_tensorboard_matches_metrics(run)
    assert not log.exists(), log.read_text()
    (offline,) = (run.path / "wandb").glob("offline-run-*")
    (data,) = offline.glob("run-*.wandb")
    recorded = data.read_bytes()
    for tag in ("train/return_mean/seed_1", "eval/mean/seed_0", "speed/env_steps_per_s", "wb"):
        assert tag.encode() in recorded, tag
