"""A synthetic verifiable task: multi-digit arithmetic with an exact-answer checker.

A problem is ``"a+b="`` (operands zero-padded to ``digits`` digits, so every prompt has the same
length and needs no padding); the answer is the result in decimal followed by EOS. ``digits`` is
the difficulty knob (and ``ops``: ``+``, ``-``, ``*``). Train and held-out problems are drawn
without replacement from one seeded permutation, so the splits are disjoint and deterministic.

The reward is computed on device (inside the jitted RL step): a completion is correct iff its
tokens up to and including the first EOS equal the answer's.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from experiments.lm.tokenizer import CharTokenizer

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclasses.dataclass(frozen=True)
class ArithmeticTask:
    """Problems ``a OP b =`` with ``0 <= a, b < 10**digits``.

    Attributes:
      digits: operand width (difficulty).
      ops: the operators drawn uniformly.
      num_train: size of the training pool.
      num_heldout: size of the held-out pool (disjoint from the training pool).
      seed: the permutation's seed.
    """

    digits: int = 2
    ops: str = "+"
    num_train: int = 4096
    num_heldout: int = 256
    seed: int = 0

    def __post_init__(self):
        if not 1 <= self.digits <= 6:
            raise ValueError(f"digits must be in 1..6; got {self.digits}")
        if not self.ops or any(o not in _OPS for o in self.ops):
            raise ValueError(f"ops must be a non-empty string of {''.join(_OPS)}; got {self.ops!r}")
        total = len(self.ops) * 10 ** (2 * self.digits)
        if self.num_train < 1 or self.num_heldout < 1 or self.num_train + self.num_heldout > total:
            raise ValueError(
                f"num_train ({self.num_train}) and num_heldout ({self.num_heldout}) must be >= 1 "
                f"and sum to at most the {total} distinct problems of digits={self.digits}, "
                f"ops={self.ops!r}"
            )

    @property
    def prompt_len(self) -> int:
        """BOS + two operands + operator + '='."""
        return 1 + 2 * self.digits + 2

    @property
    def answer_len(self) -> int:
        """Longest answer in tokens, EOS included."""
        width = 2 * self.digits if "*" in self.ops else self.digits + 1
        return width + ("-" in self.ops) + 1

    def problems(self, split: str) -> list[tuple[int, str, int]]:
        """``[(a, op, b), ...]`` of ``split`` (``"train"`` or ``"heldout"``), deterministic."""
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout'; got {split!r}")
        rng = np.random.default_rng(self.seed)
        space = 10**self.digits
        total = len(self.ops) * space * space
        # Sampling codes without replacement: distinct problems, disjoint splits.
        codes = rng.choice(total, size=self.num_train + self.num_heldout, replace=False)
        codes = codes[: self.num_train] if split == "train" else codes[self.num_train :]
        op_idx, rest = np.divmod(codes, space * space)
        a, b = np.divmod(rest, space)
        return [(int(x), self.ops[o], int(y)) for x, o, y in zip(a, op_idx, b, strict=True)]

    def prompt_text(self, a: int, op: str, b: int) -> str:
        return f"{a:0{self.digits}d}{op}{b:0{self.digits}d}="

    @staticmethod
    def answer_text(a: int, op: str, b: int) -> str:
        return str(_OPS[op](a, b))

    def check(self, prompt: str, completion: str) -> bool:
        """Host-side exact checker: is ``completion`` the value of ``prompt`` (``"a+b="``)?"""
        body = prompt.rstrip("=")
        for op in self.ops:
            left, sep, right = body.partition(op)
            if sep and left.isdigit() and right.isdigit():
                return completion == self.answer_text(int(left), op, int(right))
        raise ValueError(f"not a problem of this task: {prompt!r}")

    def arrays(self, split: str, tok: CharTokenizer) -> tuple[np.ndarray, np.ndarray]:
        """Token arrays of ``split``: prompts ``[M, Lp]`` (BOS first, left-padded with PAD; the
        character tokenizer gives ``Lp = prompt_len`` and no padding) and answers ``[M, La]``
        (answer, EOS, then PAD; ``La = answer_len`` for the character tokenizer), int32."""
        probs = self.problems(split)
        encoded = [tok.encode(self.prompt_text(*p), bos=True) for p in probs]
        width = max(len(ids) for ids in encoded)
        # Left padding (a real tokenizer gives prompts of different lengths; ours does not).
        prompts = np.full((len(probs), width), tok.pad_id, dtype=np.int32)
        for i, ids in enumerate(encoded):
            prompts[i, width - len(ids) :] = ids
        answer_ids = [tok.encode(self.answer_text(*p), eos=True) for p in probs]
        answers = np.full(
            (len(probs), max(self.answer_len, *map(len, answer_ids))), tok.pad_id, dtype=np.int32
        )
        for i, ids in enumerate(answer_ids):
            answers[i, : len(ids)] = ids
        return prompts, answers


def correct(completions: jax.Array, answers: jax.Array, pad_id: int) -> jax.Array:
    """1.0 where a completion equals its answer up to and including EOS, else 0.0.

    Args:
      completions: ``[..., Lc]`` sampled ids (PAD after the first EOS), ``Lc >= La``.
      answers: ``[..., La]`` answer ids, EOS, then PAD (broadcastable to ``completions``' batch).
      pad_id: the PAD id (answer positions holding PAD are not compared).

    Returns:
      ``[...]`` float32 in {0, 1}.
    """
    la = answers.shape[-1]
    if completions.shape[-1] < la:
        raise ValueError(
            f"completions must have at least {la} tokens (the answer length); got "
            f"{completions.shape[-1]}"
        )
    head = completions[..., :la]
    ok = jnp.all((head == answers) | (answers == pad_id), axis=-1)
    return ok.astype(jnp.float32)


def reward(
    completions: jax.Array,
    completion_mask: jax.Array,
    answers: jax.Array,
    pad_id: int,
    length_penalty: float = 0.0,
) -> jax.Array:
    """Task reward: correctness (0/1) minus ``length_penalty * tokens / Lc``.

    The penalty enters the ordering of the group (among correct completions the shorter ranks
    higher), which the rank-based estimators see; with ``length_penalty=0`` the reward is binary.
    """
    r = correct(completions, answers, pad_id)
    if length_penalty:
        frac = jnp.sum(completion_mask, -1) / completion_mask.shape[-1]
        r = r - length_penalty * frac.astype(r.dtype)
    return r
