"""End-to-end lm-rl runs at the quick size (training: run once, in float32): an interrupted and
resumed run equals an uninterrupted one, the SFT cache, the CLI, and the notebook."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import notebook_helpers as nbh
import pytest

from ordergrad_experiments.common.config import BudgetConfig
from ordergrad_experiments.common.runs import RunWriter
from ordergrad_experiments.lm import run
from ordergrad_experiments.lm.config import QUICK

pytestmark = pytest.mark.training

ROOT = pathlib.Path(__file__).resolve().parents[1]
TIMING = {"wall_s", "first_in_process", "sft_s"}


class Interrupted(Exception):
    pass


def _stable(rows):
    """Rows without wall-clock fields (those differ between any two runs)."""
    return [
        {k: v for k, v in r.items() if k not in TIMING and not k.endswith(("_s", "_per_s"))}
        for r in rows
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted quick run through the CLI, and the same run interrupted after its first
    chunk and resumed (sharing the first one's cached SFT warm start)."""
    from ordergrad_experiments import cli

    out = tmp_path_factory.mktemp("lm")
    sets = [
        "budget.total=4",
        "budget.num_chunks=2",
        "sft_steps=20",
        "kl_coef=0.05",
        "length_penalty=0.2",
        f"sft_cache={out / 'sft'}",
    ]
    args = ["run", "lm-rl", "--quick", "--out", str(out), *[a for s in sets for a in ("--set", s)]]
    assert cli.main([*args, "--run-id", "full"]) == 0
    full_path = out / "lm-rl" / "full"
    cfg = dataclasses.replace(
        QUICK,
        budget=BudgetConfig(4, 2),
        sft_steps=20,
        kl_coef=0.05,
        length_penalty=0.2,
        sft_cache=str(out / "sft"),
    )

    def stop_after_first_chunk(chunks):
        for i, chunk in enumerate(chunks):
            if i == 1:
                raise Interrupted
            yield chunk

    with pytest.raises(Interrupted):
        run.run(cfg, RunWriter("lm-rl", out, "cut"), stop_after_first_chunk)
    cut = out / "lm-rl" / "cut"
    assert not (cut / "summary.md").exists() and (cut / "checkpoints").exists()
    resumed = run.run(cfg, RunWriter("lm-rl", out, "cut"))
    full = [json.loads(line) for line in (full_path / "metrics.jsonl").read_text().splitlines()]
    return {"out": out, "full_path": full_path, "full": full, "resumed": resumed, "cut": cut}


def test_interrupted_run_resumes_to_the_same_result(runs):
    resumed, full = runs["resumed"], runs["full"]
    assert (runs["cut"] / "summary.md").exists()
    assert [r["phase"] for r in resumed].count("sft") == 1  # SFT not redone on resume
    # Bitwise equal (on CPU) apart from wall-clock fields and the SFT-cache flag.
    assert _stable(resumed[1:]) == _stable(full[1:])
    assert _stable(resumed[:1])[0] | {"sft_cached": 0} == _stable(full[:1])[0] | {"sft_cached": 0}
    # The length penalty spreads rewards within groups: the steps did learn something.
    assert all(r["grad_norm"] > 0 for r in full if r["phase"] == "rl")
    assert [r["step"] for r in resumed if r["phase"] == "rl"] == [1, 2, 3, 4]
    assert {r["first_in_process"] for r in resumed if r["step"] == 3} == {True}
    assert any(r.get("kl", 0) > 0 for r in full[2:])


def test_sft_cache_gives_the_same_warm_start(runs):
    first, second = runs["full"][0], runs["resumed"][0]
    assert first["sft_cached"] is False and second["sft_cached"] is True
    assert _stable([first])[0] | {"sft_cached": None} == _stable([second])[0] | {"sft_cached": None}


def test_cli_outputs_and_notebook(runs, monkeypatch):
    assert (runs["full_path"] / "summary.md").exists()
    assert (runs["full_path"] / "passk.png").exists()
    env = {"ORDERGRAD_LM_RESULTS": str(runs["out"] / "lm-rl")}
    notebook = nbh.execute("lm", ROOT, monkeypatch, env, timeout=600)
    assert nbh.image_count(notebook) >= 2


def test_notebook_is_paired():
    nbh.assert_paired("lm")
