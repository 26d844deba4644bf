"""A testbed whose start errs where the task is hard: carry-chain addition, per-prompt counts.

**The task** (:class:`CarryTask`, ``--set task=carry``). Addition of ``digits``-wide operands,
answered most significant digit first (as :class:`tasks.ArithmeticTask`). Written left to right,
a digit of the sum depends on the carry coming in from the right, so the model must look ahead
over the run of columns that propagate it: ``49999+00001=`` needs its chain of 4 carrying
columns resolved before its first answer digit. The difficulty of a prompt is the length ``L`` of
its longest carry chain (:func:`carry_chain`: the most consecutive columns that carry out).

The SFT pool **under-represents long chains**: a candidate problem (uniform over all operand
pairs) with longest chain ``L`` enters the training pool with probability
``carry_keep ** max(0, L - 1)``, so single carries are common and chains of 3 or more rare. The
held-out and validation prompts are uniform over all problems (the natural mix, disjoint from
the training pool and from each other). An SFT start stopped early (a short ``sft_steps``, no
label smoothing) then has prompt-dependent errors for a reason a reader can name: it has learned
the frequent patterns and not the rare long look-ahead, so its per-prompt solve rate falls with
``L`` (:func:`solve_rate_by_chain`), from ~1 on chain-free prompts towards 0 on the longest
chains. This keeps the exact checker, the tokenizer and the fixed prompt length of the old task
and needs no new model; a task with several valid answers (Countdown) would need a
search-based checker and longer completions than the tiny model can learn on this CPU.

**Evaluation with per-prompt counts** (:func:`make_count`). Each held-out prompt gets ``samples``
completions; the result is the number correct per prompt (``uint8``; ``samples <= 255``), from
which any unbiased pass@k (``k <= samples``) follows (:func:`pass_at_k`). Sampling uses common
random numbers: the key of completion ``j`` of prompt ``i`` at checkpoint ``step`` is
``fold_in(fold_in(fold_in(key(CRN_SEED), step), i), j)`` (:func:`row_keys`), a function of
``(step, i, j)`` only, not of the method, the RL seed or the batch layout. Two runs evaluated at
the same step with the same parameters draw the same completions; with different parameters
their completions share the uniforms, which makes method differences less noisy. Counts are
written per run as ``[checkpoints, prompts]`` arrays (:func:`write_counts`,
:func:`read_counts`).

**The start diagnostic** (:func:`start_stats`; ``ordergrad-jax run lm-diagnose --set mode=start``)
reports pass@k, greedy accuracy, the share of prompts with a solve rate in ``(0, 0.05)`` (hard but
not hopeless: the prompts where pass@k for large k differs from pass@1), the solve-rate histogram
(:data:`RATE_BINS`) and the mean solve rate by carry-chain length.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ordergrad_experiments.lm import sampling, tasks

CRN_SEED = 20_240_024
"""The evaluation keys' root (:func:`row_keys`); fixed, so every run shares it."""

RATE_BINS = ((0.0, 0.0), (0.0, 0.05), (0.05, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8))
RATE_BINS += ((0.8, 1.0), (1.0, 1.0))
"""Solve-rate histogram bins: ``(lo, lo)`` is the point ``lo``, ``(0, 0.05)`` open (the hard
prompts), the others ``[lo, hi)``; so 0 and 1 are bins of their own."""


def carry_chain(a: np.ndarray, b: np.ndarray, digits: int) -> np.ndarray:
    """Longest run of consecutive columns of ``a + b`` that carry out (``[...]`` int).

    Args:
      a, b: ``[...]`` non-negative integers below ``10**digits``.
      digits: the operand width.
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    carry = np.zeros(a.shape, np.int64)
    run = np.zeros(a.shape, np.int64)
    best = np.zeros(a.shape, np.int64)
    for i in range(digits):
        col = (a // 10**i) % 10 + (b // 10**i) % 10 + carry
        carry = col // 10
        run = np.where(carry == 1, run + 1, 0)
        best = np.maximum(best, run)
    return best


@dataclasses.dataclass(frozen=True)
class CarryTask(tasks.ArithmeticTask):
    """Addition whose training pool under-represents long carry chains (module doc).

    Attributes (besides :class:`tasks.ArithmeticTask`'s; ``ops`` must be ``"+"``):
      carry_keep: a training candidate with longest carry chain ``L`` is kept with probability
        ``carry_keep ** max(0, L - 1)`` (1: the uniform mix).
      num_validation: size of the validation split (uniform, disjoint from the others; the
        split for step-size selection).
      num_rl: size of the RL prompt split (``"rl"``: uniform, the natural mix, disjoint from the
        others), so that RL meets the long chains SFT rarely saw; 0: no such split.
    """

    carry_keep: float = 0.1
    num_validation: int = 0
    num_rl: int = 0

    def __post_init__(self):
        if self.ops != "+":
            raise ValueError(f"CarryTask is addition only (ops='+'); got ops={self.ops!r}")
        if not 0.0 < self.carry_keep <= 1.0:
            raise ValueError(f"carry_keep must be in (0, 1]; got {self.carry_keep}")
        if self.num_validation < 0 or self.num_rl < 0:
            raise ValueError(
                f"num_validation and num_rl must be >= 0; got {self.num_validation}, {self.num_rl}"
            )
        if self.scratchpad:
            raise ValueError("CarryTask has no scratchpad")
        space = 10 ** (2 * self.digits)
        if self.num_heldout + self.num_validation + self.num_train + self.num_rl > space // 4:
            raise ValueError(
                f"num_train + num_heldout + num_validation + num_rl must be at most a quarter of "
                f"the {space} problems of digits={self.digits}"
            )
        super().__post_init__()

    def problems(self, split: str) -> list[tuple[int, str, int]]:
        """``[(a, "+", b), ...]`` of ``split`` (``"train"``, ``"heldout"``, ``"validation"``,
        ``"rl"``)."""
        if split not in ("train", "heldout", "validation", "rl"):
            raise ValueError(
                f"split must be 'train', 'heldout', 'validation' or 'rl'; got {split!r}"
            )
        codes = self._codes()[split]
        a, b = np.divmod(codes, 10**self.digits)
        return [(int(x), "+", int(y)) for x, y in zip(a, b, strict=True)]

    def _codes(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        space = 10**self.digits
        evals = rng.choice(space * space, self.num_heldout + self.num_validation, replace=False)
        taken = set(evals.tolist())
        train: list[int] = []
        while len(train) < self.num_train:
            cand = rng.integers(0, space * space, 4 * self.num_train)
            chain = carry_chain(*np.divmod(cand, space), self.digits)
            keep = rng.random(cand.shape) < self.carry_keep ** np.maximum(chain - 1, 0)
            for c in cand[keep].tolist():
                if c not in taken:
                    taken.add(c)
                    train.append(c)
        for c in train[self.num_train :]:  # drawn but not kept: free for the RL split
            taken.discard(c)
        rl: list[int] = []  # drawn after the others, which therefore do not depend on num_rl
        while len(rl) < self.num_rl:
            for c in rng.integers(0, space * space, 2 * self.num_rl).tolist():
                if c not in taken and len(rl) < self.num_rl:
                    taken.add(c)
                    rl.append(c)
        return {
            "rl": np.asarray(rl, np.int64),
            "train": np.asarray(train[: self.num_train], np.int64),
            "heldout": evals[: self.num_heldout],
            "validation": evals[self.num_heldout :],
        }

    def chains(self, split: str) -> np.ndarray:
        """``[M]`` longest carry chain of each problem of ``split``."""
        probs = self.problems(split)
        a = np.array([p[0] for p in probs])
        b = np.array([p[2] for p in probs])
        return carry_chain(a, b, self.digits)


# ----------------------------------------------------------------------------------------------
# Evaluation with common random numbers and per-prompt counts.


def row_keys(step: int, prompt_ids: jax.Array, samples: int) -> jax.Array:
    """``[E * samples]`` keys, prompt-major: completion ``j`` of prompt ``prompt_ids[i]`` at
    checkpoint ``step`` gets ``fold_in(fold_in(fold_in(key(CRN_SEED), step), id), j)``."""
    base = jax.random.fold_in(jax.random.key(CRN_SEED), step)
    per_prompt = jax.vmap(jax.random.fold_in, (None, 0))(base, prompt_ids)
    fold = jax.vmap(jax.vmap(jax.random.fold_in, (None, 0)), (0, None))
    return fold(per_prompt, jnp.arange(samples)).reshape(-1)


def make_count(graphdef, prompts, answers, s, samples: int, rows_per_call: int = 8192):
    """``count(params, step, prompt_ids=None) -> [E] uint8``: the number of correct completions
    of each held-out prompt out of ``samples`` (keys :func:`row_keys`; ``step`` the checkpoint).

    Args:
      graphdef: the model structure.
      prompts, answers: ``[E, Lp]``, ``[E, La]`` held-out prompts and answers (host arrays).
      s: the RL step's setup (``rl.StepSetup``: temperature, top-p, lengths, special ids).
      samples: completions per prompt (<= 255).
      rows_per_call: completions sampled per jitted call (memory; the counts do not depend on
        it up to ties in the float arithmetic).
    """
    if not 1 <= samples <= 255:
        raise ValueError(f"samples must be in 1..255 (uint8 counts); got {samples}")
    prompts, answers = np.asarray(prompts), np.asarray(answers)
    per_call = max(1, rows_per_call // samples)  # prompts per call

    @jax.jit
    def count_fn(params, keys, p, a):
        rep_p, rep_a = jnp.repeat(p, samples, 0), jnp.repeat(a, samples, 0)
        out = s.sample(graphdef, params, keys, rep_p)  # keys [B]: one per row
        ok = tasks.correct(out.tokens, rep_a, s.pad_id, s.scratch_ids)
        return jnp.sum(ok.reshape(p.shape[0], samples), -1).astype(jnp.int32)

    def count(params, step: int, prompt_ids=None):
        ids = np.arange(prompts.shape[0]) if prompt_ids is None else np.asarray(prompt_ids)
        out = []
        for lo in range(0, len(ids), per_call):
            chunk = ids[lo : lo + per_call]
            pad = per_call - len(chunk)  # one compiled shape: pad the last call
            full = np.concatenate([chunk, np.repeat(chunk[-1:], pad)])
            keys = row_keys(step, jnp.asarray(full), samples)
            got = count_fn(params, keys, prompts[full], answers[full])
            out.append(np.asarray(got)[: len(chunk)])
        return np.concatenate(out).astype(np.uint8)

    return count


def make_greedy(graphdef, prompts, answers, s):
    """``greedy(params) -> [E] bool``: is each prompt's greedy (temperature 0) completion
    correct."""
    prompts, answers = jnp.asarray(prompts), jnp.asarray(answers)

    @jax.jit
    def greedy(params):
        out = sampling.sample(
            graphdef,
            params,
            jax.random.key(0),
            prompts,
            prompts != s.pad_id,
            max_len=s.max_len,
            eos_id=s.eos_id,
            pad_id=s.pad_id,
            temperature=0.0,
        )
        return tasks.correct(out.tokens, answers, s.pad_id, s.scratch_ids) > 0

    return lambda params: np.asarray(greedy(params))


def pass_at_k(counts: np.ndarray, samples: int, k: int) -> np.ndarray:
    """Unbiased pass@k per prompt from its count of correct samples: ``1 - C(n - c, k) /
    C(n, k)`` (``[...]`` float64; the mean over prompts is the held-out pass@k).

    Args:
      counts: ``[...]`` correct samples out of ``samples`` (``0 <= c <= samples``).
      samples: ``n``; k: ``1 <= k <= n``.
    """
    counts = np.asarray(counts)
    if not 1 <= k <= samples:
        raise ValueError(f"k must be in 1..samples={samples}; got {k}")
    if counts.size and (counts.min() < 0 or counts.max() > samples):
        raise ValueError(f"counts must lie in 0..{samples}")
    table = np.array(
        [1.0 - math.comb(samples - c, k) / math.comb(samples, k) for c in range(samples + 1)]
    )
    return table[counts.astype(np.int64)]


def rate_histogram(rates: np.ndarray) -> list[dict]:
    """The share of prompts in each :data:`RATE_BINS` bin: ``[{"bin", "share"}]``."""
    rates = np.asarray(rates, np.float64)
    rows = []
    for lo, hi in RATE_BINS:
        if lo == hi:
            inside, name = rates == lo, f"{lo:g}"
        elif lo == 0.0:
            inside, name = (rates > 0) & (rates < hi), f"(0, {hi:g})"
        else:
            inside, name = (rates >= lo) & (rates < hi), f"[{lo:g}, {hi:g})"
        rows.append({"bin": name, "share": float(np.mean(inside))})
    return rows


def start_stats(
    counts: np.ndarray, samples: int, greedy: np.ndarray, ks=(1, 16, 64)
) -> dict[str, float]:
    """A start's held-out numbers from its counts ``[E]`` and greedy correctness ``[E]``:
    pass@k (k <= samples), greedy accuracy, the shares of prompts never solved, solved in
    ``(0, 0.05)`` of samples (``hard``) and always solved."""
    rates = np.asarray(counts, np.float64) / samples
    out = {f"pass@{k}": float(np.mean(pass_at_k(counts, samples, k))) for k in ks if k <= samples}
    out.update(
        greedy=float(np.mean(greedy)),
        never=float(np.mean(rates == 0)),
        hard=float(np.mean((rates > 0) & (rates < 0.05))),
        always=float(np.mean(rates == 1)),
        prompts=int(rates.size),
        samples=int(samples),
    )
    return out


def solve_rate_by_chain(counts: np.ndarray, samples: int, chains: np.ndarray) -> list[dict]:
    """Per longest-carry-chain length: the number of prompts and their mean solve rate."""
    rates = np.asarray(counts, np.float64) / samples
    chains = np.asarray(chains)
    return [
        {
            "chain": int(c),
            "prompts": int(np.sum(chains == c)),
            "rate": float(rates[chains == c].mean()),
        }
        for c in np.unique(chains)
    ]


class Counts(NamedTuple):
    """A run's per-prompt counts (:func:`write_counts`)."""

    counts: np.ndarray
    """``[C, E]`` uint8: correct samples of each held-out prompt at each checkpoint."""
    steps: np.ndarray
    """``[C]`` int: the RL step of each checkpoint (0: the SFT start)."""
    prompt_ids: np.ndarray
    """``[E]`` int: the held-out indices of the prompts (row order of ``counts``)."""
    samples: int
    """Samples per prompt (``n`` of pass@k)."""


def write_counts(path, counts: Counts) -> pathlib.Path:
    """Writes ``counts`` to ``path`` (an ``.npz``, compressed)."""
    c = np.asarray(counts.counts)
    if c.ndim != 2 or c.dtype != np.uint8:
        raise ValueError(f"counts must be [checkpoints, prompts] uint8; got {c.shape} {c.dtype}")
    if c.shape != (len(counts.steps), len(counts.prompt_ids)):
        raise ValueError(
            f"counts {c.shape} must be [len(steps)={len(counts.steps)}, "
            f"len(prompt_ids)={len(counts.prompt_ids)}]"
        )
    if c.size and int(c.max()) > counts.samples:
        raise ValueError(f"a count exceeds samples={counts.samples}")
    path = pathlib.Path(path)
    np.savez_compressed(
        path,
        counts=c,
        steps=np.asarray(counts.steps, np.int64),
        prompt_ids=np.asarray(counts.prompt_ids, np.int64),
        samples=np.int64(counts.samples),
    )
    return path


def read_counts(path) -> Counts:
    """The :class:`Counts` written by :func:`write_counts`."""
    with np.load(path) as z:
        return Counts(z["counts"], z["steps"], z["prompt_ids"], int(z["samples"]))


def append_counts(path, step: int, counts: np.ndarray, prompt_ids, samples: int) -> Counts:
    """Adds one checkpoint's counts ``[E]`` to the file at ``path`` (created if absent; a row of
    the same ``step``, left by an interrupted run, is replaced), rows sorted by step."""
    path = pathlib.Path(path)
    new = Counts(
        np.asarray(counts, np.uint8)[None], np.array([step]), np.asarray(prompt_ids), samples
    )
    if path.exists():
        old = read_counts(path)
        if old.samples != samples or not np.array_equal(old.prompt_ids, new.prompt_ids):
            raise ValueError(f"{path} holds counts of other prompts or another sample size")
        keep = old.steps != step
        steps = np.concatenate([old.steps[keep], new.steps])
        rows = np.concatenate([old.counts[keep], new.counts])
        order = np.argsort(steps, kind="stable")
        new = new._replace(counts=rows[order], steps=steps[order])
    write_counts(path, new)
    return new
