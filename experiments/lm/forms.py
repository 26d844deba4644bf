"""The ``forms`` mode of ``ordergrad-jax run lm-diagnose`` (the scratchpad task): held-out
completions split by form, direct answer or scratchpad first, at the SFT start and at the last
checkpoint of ``lm-rl`` runs. ``bench`` is :class:`ordergrad_experiments.lm.diagnose.Bench`."""

from __future__ import annotations

import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ordergrad_experiments.lm import run as lm_run
from ordergrad_experiments.lm import sampling, tasks

Bench = Any


def form_stats(bench: Bench, params, key) -> list[dict]:
    """Held-out completions (``eval_prompts x eval_samples``, sampled with ``key``) by form:
    ``[{"form", "share", "correct", "length"}]`` for the direct form and the scratchpad form
    (``correct``: the form's solve rate; ``length``: its mean tokens, EOS included)."""
    s = bench.setup
    if s.scratch_ids is None:
        raise ValueError("forms needs the scratchpad task (--set scratchpad=0.5, say)")
    prompts, answers = (jnp.asarray(x) for x in bench.heldout)
    samples = bench.cfg.eval_samples
    rep = sampling.repeat_prompts(prompts, samples)
    out = jax.jit(lambda p, k: s.sample(bench.graphdef, p, k, rep))(params, key)
    ok = tasks.correct(out.tokens, jnp.repeat(answers, samples, 0), s.pad_id, s.scratch_ids)
    long = np.asarray(out.tokens[:, 0] == s.scratch_ids[0])
    ok, length = np.asarray(ok), np.asarray(jnp.sum(out.mask, -1))
    rows = []
    for form, pick in (("direct", ~long), ("scratchpad", long)):
        n = int(pick.sum())
        rows.append(
            {
                "form": form,
                "share": n / len(pick),
                "correct": float(ok[pick].mean()) if n else float("nan"),
                "length": float(length[pick].mean()) if n else float("nan"),
            }
        )
    return rows


def forms(bench: Bench, run_dirs: list[str]) -> list[dict]:
    """:func:`form_stats` at the SFT start and at each run's last checkpoint (one evaluation
    key for all)."""
    from ordergrad_experiments.common.checkpoint import Checkpointer

    key = jax.random.fold_in(bench.eval_key, 0)
    targets = [("sft", bench.params)]
    tx = bench.cfg.optim.make(bench.cfg.budget.total * bench.cfg.ppo_epochs)
    like = lm_run.initial_state(bench.cfg, bench.params, tx, bench.mesh)
    for d in run_dirs:
        ckpt = Checkpointer(f"{d}/checkpoints")
        state, _ = ckpt.restore(like)
        ckpt.close()
        targets.append((d.rstrip("/").rpartition("/")[2], state.params))
    rows = []
    for name, params in targets:
        for r in form_stats(bench, params, key):
            rows.append({"run": name, **r})
            print(json.dumps(rows[-1]), flush=True)
    return rows
