"""Multi-host for real: two processes on localhost form one JAX cluster (4 CPU devices each, gloo
collectives) and run ``ordergrad-jax run lm-rl`` on a ``4,2`` mesh spanning both.

One test, three runs of the quick config (with a length penalty, so rewards and gradients are
non-zero from the first step; 3 one-step chunks): a one-process 8-device reference, and a
two-process run killed after its first checkpoint and started again with the same ``--run-id``.
Checked: the resumed two-process run's metrics and final parameters equal the reference's (float
tolerance: the cross-process reductions may sum in another order); process 0 alone wrote the
run's files (process 1 runs with umask 077, so anything it creates lacks group/other bits: only
orbax's per-process array shards may); the killed run had stopped before its end. And the
multi-host command lines of ``experiments/lm/README_lm.md`` are the ones this test runs.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import X64

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENTRY = pathlib.Path(sys.executable).with_name("ordergrad-jax")
CONFIG = [
    "--quick",
    *("--set", "mesh=4,2"),
    *("--set", "budget.total=3"),
    *("--set", "budget.num_chunks=3"),
    *("--set", "sft_steps=4"),
    *("--set", "length_penalty=0.1"),
]
TIMING = {
    "sample_s",
    "score_s",
    "advantage_s",
    "learn_s",
    "step_s",
    "tokens_per_s",
    "learner_flops_per_s",
    "wall_s",
    "sft_s",
    "first_in_process",
}
TIMEOUT_S = 600
PROCESS_1_UMASK = 0o077


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], devices: int, log: pathlib.Path, umask: int = 0o022):
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_PLATFORMS": "cpu",
    }
    with log.open("w") as out:
        return subprocess.Popen(
            [str(ENTRY), "run", "lm-rl", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole by kill()
            umask=umask,
            preexec_fn=die_with_parent,
        )


def die_with_parent() -> None:
    """Linux: the child gets SIGKILL if this test process dies (no orphans even then)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def kill(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:
        proc.wait(timeout=30)


def cluster(out: pathlib.Path, logs: pathlib.Path, session: str):
    """The two processes of one session (same command, own process id, fresh port)."""
    port = free_port()
    procs = []
    for i in range(2):
        args = [*CONFIG, "--out", str(out), "--run-id", "mh"]
        args += ["--set", f"coordinator=127.0.0.1:{port}", "--set", "num_processes=2"]
        args += ["--set", f"process_id={i}"]
        umask = PROCESS_1_UMASK if i else 0o022
        procs.append(start(args, 4, logs / f"{session}.{i}.log", umask=umask))
    return procs


def wait(procs, logs: pathlib.Path, deadline: float) -> None:
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline:
            raise TimeoutError("the runs did not finish in time")
        time.sleep(0.2)
    for p in procs:
        if p.returncode:
            text = "\n".join(f.read_text()[-3000:] for f in sorted(logs.glob("*.log")))
            raise AssertionError(f"a process exited with {p.returncode}:\n{text}")


def rows(run: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def final_state(run: pathlib.Path) -> dict[str, np.ndarray]:
    """The last checkpoint's arrays as NumPy (read on this one-device process)."""
    import orbax.checkpoint as ocp

    steps = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    path = run / "checkpoints" / str(steps[-1]) / "state"
    reader = ocp.StandardCheckpointer()
    meta = reader.metadata(path).item_metadata
    return reader.restore(path, {k: np.zeros(m.shape, m.dtype) for k, m in meta.items()})


def is_float(value) -> bool:
    return isinstance(value, float)


def latest_checkpoint(run: pathlib.Path) -> int:
    folder = run / "checkpoints"
    done = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.exists() else []
    return max(done, default=0)


# Five processes compile the LM loop (~2.5 min here): run once, in float32.
@pytest.mark.training
def test_two_processes_equal_one_and_resume(tmp_path):
    assert ENTRY.exists(), f"the entry point {ENTRY} is not installed"
    logs = tmp_path / "logs"
    logs.mkdir()
    ref_out, mh_out = tmp_path / "one", tmp_path / "two"
    mh_run = mh_out / "lm-rl" / "mh"
    deadline = time.monotonic() + TIMEOUT_S
    procs = []
    try:
        # The reference and the first (interrupted) session run side by side.
        ref = start([*CONFIG, "--out", str(ref_out), "--run-id", "ref"], 8, logs / "ref.log")
        first = cluster(mh_out, logs, "first")
        procs = [ref, *first]
        while latest_checkpoint(mh_run) < 1:
            if time.monotonic() > deadline or any(p.poll() is not None for p in first):
                raise AssertionError("no first checkpoint: " + (logs / "first.0.log").read_text())
            time.sleep(0.02)
        kill(first)
        assert not (mh_run / "summary.md").exists(), "the run ended before it was killed"
        interrupted_at = latest_checkpoint(mh_run)
        second = cluster(mh_out, logs, "second")
        procs = [ref, *second]
        wait(procs, logs, deadline)
    finally:
        kill(procs)

    # Resumed where it was killed, and ran to its end.
    assert 1 <= interrupted_at < 3
    two, one = rows(mh_run), rows(ref_out / "lm-rl" / "ref")
    config = json.loads((mh_run / "config.json").read_text())
    assert config["process_count"] == 2 and len(config["devices"]) == 8
    assert [r["phase"] for r in two] == ["sft", "rl", "rl", "rl"]
    assert [r.get("first_in_process") for r in two[1:]] == [
        True if r["chunk"] in (0, interrupted_at) else False for r in two[1:]
    ]

    # Two processes x 4 devices == one process x 8 devices.
    rel, abs_ = (1e-9, 1e-12) if X64 else (1e-4, 1e-6)
    assert len(two) == len(one)
    assert any(r.get("grad_norm", 0) > 0 for r in one)  # the comparison is not of zeros
    for a, b in zip(two, one, strict=True):
        assert set(a) == set(b)
        for key in set(a) - TIMING:
            expected = pytest.approx(b[key], rel=rel, abs=abs_) if is_float(b[key]) else b[key]
            assert a[key] == expected, (a["step"], key)
    state2, state1 = final_state(mh_run), final_state(ref_out / "lm-rl" / "ref")
    assert state2.keys() == state1.keys()
    for key in state1:
        np.testing.assert_allclose(state2[key], state1[key], rtol=rel, atol=abs_, err_msg=key)

    # Process 0 alone wrote the run's files; process 1 only its orbax array shards.
    by_1 = [
        p.relative_to(mh_run)
        for p in mh_run.rglob("*")
        if p.stat().st_mode & 0o077 == 0 and not p.is_symlink()
    ]
    assert by_1, "process 1 wrote no checkpoint shards (or its umask did not apply)"
    assert all(p.parts[0] == "checkpoints" and "process_1" in str(p) for p in by_1), by_1


def readme_commands() -> list[list[str]]:
    """The ``ordergrad-jax run lm-rl`` commands of README_lm.md's multi-host blocks, as argv."""
    text = (ROOT / "experiments" / "lm" / "README_lm.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ").replace('"', " ")
        for line in joined.splitlines():
            if "run lm-rl" in line and ("process_id" in line or "multihost" in line):
                argv = shlex.split(line[line.index("run lm-rl") :].split(" &")[0])
                out.append(argv[2:])
    return out


def settings(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    return dict(p.split("=", 1) for p in pairs)


def test_readme_multihost_commands_are_the_tested_ones():
    from ordergrad_experiments.common.config import apply_overrides
    from ordergrad_experiments.lm.config import LMConfig

    commands = readme_commands()
    assert len(commands) == 3, commands  # this test's, a TPU pod slice, two GPU VMs
    local = commands[0]
    # The localhost command is this test's two-process command less its shortening overrides.
    tested = settings(CONFIG) | {"coordinator": "127.0.0.1:PORT", "num_processes": "2"}
    got = settings(local) | {"coordinator": "127.0.0.1:PORT"}
    assert got.pop("process_id") == "$I"
    assert got.items() <= tested.items(), (got, tested)
    assert "--quick" in local and "--run-id" in local
    text = (ROOT / "experiments" / "lm" / "README_lm.md").read_text()
    assert "XLA_FLAGS=--xla_force_host_platform_device_count=4" in text
    # Every command's keys are LMConfig fields and name a cluster (joined, or detected).
    for argv in commands:
        pairs = [f"{k}={v.replace('$I', '0')}" for k, v in settings(argv).items()]
        cfg = apply_overrides(LMConfig(), pairs)
        assert cfg.cluster.enabled
        cfg.cluster.validate()
        assert "--run-id" in argv and "--out" in argv


def test_cluster_config_fields_and_validation():
    from ordergrad_experiments.common.cluster import ClusterConfig, start, start_from
    from ordergrad_experiments.common.config import apply_overrides
    from ordergrad_experiments.lm.config import LMConfig

    assert not ClusterConfig().enabled
    assert not start(ClusterConfig()) and not start_from(LMConfig()) and not start_from(object())
    cfg = apply_overrides(
        LMConfig(), ["coordinator=10.0.0.2:8476", "num_processes=4", "cluster.process_id=3"]
    )
    assert cfg.cluster == ClusterConfig(False, "10.0.0.2:8476", 4, 3) and cfg.cluster.enabled
    assert apply_overrides(LMConfig(), ["multihost=True"]).cluster.enabled
    for bad, field in [
        (ClusterConfig(coordinator="10.0.0.2"), "coordinator"),
        (ClusterConfig(num_processes=-1), "num_processes"),
        (ClusterConfig(num_processes=2, process_id=2), "process_id"),
        (ClusterConfig(process_id=-2), "process_id"),
    ]:
        with pytest.raises(ValueError, match=field):
            start(bad)  # refused before jax is touched
