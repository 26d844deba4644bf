"""Checkpoint/resume (experiments/common/checkpoint.py), result-file permissions and the run
provenance RunWriter writes into config.json (experiments/common/provenance.py)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ordergrad_experiments.common import provenance
from ordergrad_experiments.common.checkpoint import Checkpointer, train_in_chunks
from ordergrad_experiments.common.io import write_json_atomic, write_text_atomic
from ordergrad_experiments.common.runs import Run, RunWriter


class ToyState(NamedTuple):
    x: jax.Array
    count: jax.Array
    key: jax.Array


def toy_init(seed: int = 0) -> ToyState:
    return ToyState(jnp.zeros(3), jnp.zeros((), jnp.int32), jax.random.key(seed))


@jax.jit
def toy_chunk(state: ToyState) -> tuple[ToyState, jax.Array]:
    """Ten noisy steps of a random walk; the keys live in the state, as in a training loop."""

    def step(s, _):
        key, sub = jax.random.split(s.key)
        x = 0.9 * s.x + jax.random.normal(sub, (3,))
        return ToyState(x, s.count + 1, key), jnp.sum(x**2)

    return jax.lax.scan(step, state, None, length=10)


def toy_log(chunk, state, metrics):
    return [{"count": int(state.count), "mean_sq": float(jnp.mean(metrics))}]


def _values(rows):
    """Rows without timing fields (those differ between processes)."""
    return [{k: v for k, v in r.items() if k not in ("wall_s", "first_in_process")} for r in rows]


def test_save_restore_round_trip_with_keys_and_nnx_state(tmp_path):
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    state = {
        "params": nnx.state(model),
        "toy": toy_init(3),
        "step": jnp.asarray(7, jnp.int32),
    }
    ckpt = Checkpointer(tmp_path / "ck")
    assert ckpt.latest_step() is None
    ckpt.save(1, state, {"note": "first"})
    ckpt.save(2, jax.tree.map(lambda a: a, state), {"note": "second"})
    assert ckpt.latest_step() == 2
    template = {"params": nnx.state(nnx.Linear(3, 2, rngs=nnx.Rngs(1))), "toy": toy_init(9)}
    template["step"] = jnp.asarray(0, jnp.int32)
    restored, meta = ckpt.restore(template)
    assert meta == {"note": "second"}
    assert jax.dtypes.issubdtype(restored["toy"].key.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(
        jax.random.key_data(restored["toy"].key), jax.random.key_data(state["toy"].key)
    )
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        if not jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert int(restored["step"]) == 7
    ckpt.close()


def test_restore_refuses_another_structure(tmp_path):
    ckpt = Checkpointer(tmp_path / "ck")
    ckpt.save(1, toy_init(), {})
    with pytest.raises(ValueError, match=r"arrays|match|shape"):
        ckpt.restore({"a": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"shape|match"):
        ckpt.restore(ToyState(jnp.zeros(4), jnp.zeros((), jnp.int32), jax.random.key(0)))
    with pytest.raises(FileNotFoundError):
        Checkpointer(tmp_path / "empty").restore(toy_init())


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    ref_writer = RunWriter("toy", tmp_path, "ref")
    ref_writer.write_config({"seed": 0})
    ref = train_in_chunks(toy_init(), toy_chunk, 5, ref_writer, toy_log)

    writer = RunWriter("toy", tmp_path, "cut")
    writer.write_config({"seed": 0})
    calls = {"n": 0}

    def crashing_chunk(state):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("killed")
        return toy_chunk(state)

    with pytest.raises(RuntimeError, match="killed"):
        train_in_chunks(toy_init(), crashing_chunk, 5, writer, toy_log)
    assert Checkpointer(writer.path / "checkpoints").latest_step() == 3

    resumed_writer = RunWriter("toy", tmp_path, "cut")
    done = []

    def counting_chunk(state):
        done.append(1)
        return toy_chunk(state)

    resumed = train_in_chunks(toy_init(), counting_chunk, 5, resumed_writer, toy_log)
    assert len(done) == 2  # only the two missing chunks ran
    np.testing.assert_array_equal(np.asarray(resumed.x), np.asarray(ref.x))
    assert int(resumed.count) == 50
    rows = [json.loads(line) for line in (writer.path / "metrics.jsonl").read_text().splitlines()]
    assert _values(rows) == _values(ref_writer.metrics)
    assert [r["chunk"] for r in rows] == [0, 1, 2, 3, 4]

    # A finished run resumed runs nothing and returns the final state.
    again = train_in_chunks(
        toy_init(), counting_chunk, 5, RunWriter("toy", tmp_path, "cut"), toy_log
    )
    assert len(done) == 2 and int(again.count) == 50


def test_resume_refuses_another_config(tmp_path):
    writer = RunWriter("toy", tmp_path, "r")
    writer.write_config({"seed": 0})
    train_in_chunks(toy_init(), toy_chunk, 1, writer, toy_log)
    writer.write_config({"seed": 1})
    with pytest.raises(ValueError, match="another config"):
        train_in_chunks(toy_init(), toy_chunk, 2, RunWriter("toy", tmp_path, "r"), toy_log)


def test_resume_takes_other_log_sinks(tmp_path):
    """``logger`` (where rows are also sent) is not part of what a run computes: a run resumes
    under another ``--set logger``; any other field still refuses."""
    writer = RunWriter("toy", tmp_path, "r")
    writer.write_config({"seed": 0, "logger": ["jsonl"]})
    train_in_chunks(toy_init(), toy_chunk, 1, writer, toy_log)
    writer = RunWriter("toy", tmp_path, "r")
    writer.write_config({"seed": 0, "logger": ["jsonl", "tensorboard"]})
    train_in_chunks(toy_init(), toy_chunk, 2, writer, toy_log)
    assert len(Run(tmp_path / "toy" / "r").metrics) == 2


def test_log_fn_gets_seconds_when_it_asks(tmp_path):
    seen = []

    def log(chunk, state, metrics, seconds):
        seen.append(seconds)
        return [{"steps_per_s": 10 / seconds}]

    train_in_chunks(toy_init(), toy_chunk, 2, RunWriter("toy", tmp_path, "s"), log)
    assert len(seen) == 2 and all(s > 0 for s in seen)


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_checkpoint import toy_chunk, toy_init, toy_log
    from ordergrad_experiments.common.checkpoint import train_in_chunks
    from ordergrad_experiments.common.runs import RunWriter

    def slow_chunk(state):
        time.sleep(0.3)
        return toy_chunk(state)

    writer = RunWriter("toy", sys.argv[1], sys.argv[2])
    writer.write_config({{"seed": 0}})
    train_in_chunks(toy_init(), slow_chunk, 8, writer, toy_log)
    """
)


@pytest.mark.once  # file-level durability: the dtype does not change it
def test_sigkill_at_any_moment_loses_at_most_one_chunk(tmp_path):
    """A real SIGKILL (no cleanup) in the middle of a run, then the same command again."""
    script = tmp_path / "run_toy.py"
    script.write_text(_KILL_SCRIPT.format(tests=str(pathlib.Path(__file__).parent)))
    cmd = [sys.executable, str(script), str(tmp_path), "killed"]
    ckpt_dir = tmp_path / "toy" / "killed" / "checkpoints"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        steps = [p for p in ckpt_dir.glob("*") if p.name.isdigit()] if ckpt_dir.exists() else []
        if len(steps) >= 1 and any(int(p.name) >= 2 for p in steps):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    time.sleep(0.15)  # land somewhere inside a chunk or a save
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    latest = Checkpointer(ckpt_dir).latest_step()
    assert latest is not None and 2 <= latest < 8
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    ref_writer = RunWriter("toy", tmp_path, "ref")
    ref_writer.write_config({"seed": 0})
    ref = train_in_chunks(toy_init(), toy_chunk, 8, ref_writer, toy_log)
    resumed, _ = Checkpointer(ckpt_dir).restore(toy_init())
    np.testing.assert_array_equal(np.asarray(resumed.x), np.asarray(ref.x))
    text = (ckpt_dir.parent / "metrics.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    assert _values(rows) == _values(ref_writer.metrics)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        text = write_text_atomic(tmp_path / "a.txt", "x")
        js = write_json_atomic(tmp_path / "b.json", {"a": 1})
        writer = RunWriter("perm", tmp_path, "r")
        writer.log({"a": 1})
        import matplotlib.pyplot as plt

        fig = plt.figure()
        figs = writer.save_figure(fig, "f")
        plt.close(fig)
        plain = tmp_path / "plain.txt"
        with open(plain, "w") as f:  # what open() gives: the reference
            f.write("x")
    finally:
        os.umask(old)
    want = plain.stat().st_mode & 0o777
    assert want == 0o666 & ~umask
    for path in [text, js, writer.path / "metrics.jsonl", *figs]:
        assert path.stat().st_mode & 0o777 == want, path


PROVENANCE_KEYS = {
    "start_utc", "load_avg_start", "host", "git_commit", "git_dirty", "packages", "backend",
    "device_kind", "device_count", "process_count",
}  # fmt: skip


def _provenance(writer: RunWriter) -> dict:
    return json.loads((writer.path / "config.json").read_text())["provenance"]


def test_run_folder_records_provenance_and_the_end_time_at_completion(tmp_path):
    writer = RunWriter("toy", tmp_path, "p")
    writer.write_config({"seed": 0}, note="x")
    saved = json.loads((writer.path / "config.json").read_text())
    assert saved["config"] == {"seed": 0} and saved["note"] == "x"
    record = saved["provenance"]
    assert PROVENANCE_KEYS <= set(record) and "end_utc" not in record
    for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "gymnax", "brax"):
        assert record["packages"].get(name) == importlib.metadata.version(name), name
    assert "jax" not in record["packages"] or record["packages"]["jax"] == jax.__version__
    assert record["device_count"] == jax.device_count()
    assert record["device_kind"] == jax.devices()[0].device_kind
    assert len(record["load_avg_start"]) == 3
    if (provenance.CODE_ROOT / ".git").exists():
        assert len(record["git_commit"]) == 40 and isinstance(record["git_dirty"], bool)
    start = record["start_utc"]
    assert start.endswith("+00:00")
    writer.write_summary("done\n")
    record = _provenance(writer)
    assert record["start_utc"] == start and record["end_utc"] >= start
    assert json.loads((writer.path / "config.json").read_text())["config"] == {"seed": 0}


def test_provenance_outside_a_git_checkout(tmp_path, monkeypatch):
    assert provenance.git_state(tmp_path) == {"git_commit": "unknown", "git_dirty": None}
    # A package folder inside some other repository is not a checkout of this one.
    subprocess.run(["git", "init", "-q", str(tmp_path / "other")], check=True)
    (tmp_path / "other" / "pkg").mkdir()
    assert provenance.git_state(tmp_path / "other" / "pkg")["git_commit"] == "unknown"
    monkeypatch.setattr(provenance, "CODE_ROOT", tmp_path)
    writer = RunWriter("toy", tmp_path / "out", "g")
    writer.write_config({"seed": 0})
    assert _provenance(writer)["git_commit"] == "unknown"


def test_resumed_run_keeps_the_earlier_sessions_provenance(tmp_path):
    first = RunWriter("toy", tmp_path, "r")
    first.write_config({"seed": 0})
    second = RunWriter("toy", tmp_path, "r")
    second.write_config({"seed": 0})
    second.write_summary("done\n")
    record = _provenance(second)
    assert "end_utc" in record
    assert record["previous"] == [first.provenance]  # the first session never finished
    assert "end_utc" not in record["previous"][0]
