"""A synthetic verifiable task: multi-digit arithmetic with an exact-answer checker.

A problem is ``"a+b="`` (operands zero-padded to ``digits`` digits, so every prompt has the same
length and needs no padding); the answer is the result in decimal followed by EOS. ``digits`` is
the difficulty knob (and ``ops``: ``+``, ``-``, ``*``). Train and held-out problems are drawn
without replacement from one seeded permutation, so the splits are disjoint and deterministic.

The reward is computed on device (inside the jitted RL step): a completion is correct iff its
tokens up to and including the first EOS equal the answer's.

**Optional scratchpad** (``scratchpad=True``, addition only): an answer may also be written after
the column sums, least significant first, each with the carry in, e.g. ``456+789=`` ->
``(15,14,12)1245``. The checker then skips a leading ``( ... )`` block (its content is not
checked) and compares what follows; so an answer can be written at two lengths (4 or 14 tokens
here, EOS included), which the length-penalty comparison needs.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ordergrad_experiments.lm.tokenizer import CharTokenizer

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
      scratchpad: answers may be preceded by the column-sum scratchpad (module doc).
    """

    digits: int = 2
    ops: str = "+"
    num_train: int = 4096
    num_heldout: int = 256
    seed: int = 0
    scratchpad: bool = False

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
        if self.scratchpad and self.ops != "+":
            raise ValueError(f"the scratchpad is defined for ops='+' only; got ops={self.ops!r}")

    @property
    def prompt_len(self) -> int:
        """BOS + two operands + operator + '='."""
        return 1 + 2 * self.digits + 2

    @property
    def answer_len(self) -> int:
        """Longest answer in tokens, EOS included."""
        width = 2 * self.digits if "*" in self.ops else self.digits + 1
        return width + ("-" in self.ops) + 1

    @property
    def scratch_len(self) -> int:
        """Longest scratchpad in tokens: ``(`` + ``digits`` column sums of 1-2 digits, comma
        separated, + ``)``; 0 without the scratchpad."""
        return 3 * self.digits + 1 if self.scratchpad else 0

    @property
    def completion_len(self) -> int:
        """Longest correct completion in tokens (scratchpad, answer, EOS)."""
        return self.scratch_len + self.answer_len

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

    def scratch_text(self, a: int, op: str, b: int) -> str:
        """The scratchpad of ``a + b``: ``"(s0,s1,...)"``, column sums with the carry in, least
        significant column first (``456+789`` -> ``"(15,14,12)"``)."""
        if op != "+":
            raise ValueError(f"the scratchpad is defined for '+' only; got {op!r}")
        sums, carry = [], 0
        for i in range(self.digits):
            col = (a // 10**i) % 10 + (b // 10**i) % 10 + carry
            sums.append(str(col))
            carry = col // 10
        return "(" + ",".join(sums) + ")"

    def check(self, prompt: str, completion: str) -> bool:
        """Host-side exact checker: is ``completion`` the value of ``prompt`` (``"a+b="``)?
        With the scratchpad, a leading ``( ... )`` block is skipped first."""
        if self.scratchpad and completion.startswith("(") and ")" in completion:
            completion = completion[completion.index(")") + 1 :]
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

    def scratch_answers(self, split: str, tok: CharTokenizer) -> np.ndarray:
        """``[M, completion_len]`` int32: each problem's answer written after its scratchpad,
        EOS, then PAD (row order of :meth:`arrays`; the SFT targets of the long form)."""
        if not self.scratchpad:
            raise ValueError("scratch_answers needs scratchpad=True")
        probs = self.problems(split)
        out = np.full((len(probs), self.completion_len), tok.pad_id, dtype=np.int32)
        for i, p in enumerate(probs):
            ids = tok.encode(self.scratch_text(*p) + self.answer_text(*p), eos=True)
            out[i, : len(ids)] = ids
        return out

    def scratch_ids(self, tok: CharTokenizer) -> tuple[int, int] | None:
        """``(open_id, close_id)`` of the scratchpad's brackets for :func:`correct`, or ``None``
        without the scratchpad."""
        if not self.scratchpad:
            return None
        open_id, close_id = tok.encode("()")
        return open_id, close_id


def answer_start(completions: jax.Array, scratch_ids: tuple[int, int]) -> jax.Array:
    """``[...]`` int32: where the answer begins in ``completions [..., Lc]``: after the first
    ``close_id`` when the completion starts with ``open_id`` and has one, else 0."""
    open_id, close_id = scratch_ids
    is_close = completions == close_id
    skip = (completions[..., 0] == open_id) & jnp.any(is_close, -1)
    return jnp.where(skip, jnp.argmax(is_close, -1) + 1, 0).astype(jnp.int32)


def correct(
    completions: jax.Array,
    answers: jax.Array,
    pad_id: int,
    scratch_ids: tuple[int, int] | None = None,
) -> jax.Array:
    """1.0 where a completion equals its answer up to and including EOS, else 0.0.

    Args:
      completions: ``[..., Lc]`` sampled ids (PAD after the first EOS), ``Lc >= La``.
      answers: ``[..., La]`` answer ids, EOS, then PAD (broadcastable to ``completions``' batch).
      pad_id: the PAD id (answer positions holding PAD are not compared).
      scratch_ids: ``(open_id, close_id)`` to skip a leading scratchpad (:func:`answer_start`;
        :meth:`ArithmeticTask.scratch_ids`); ``None``: the answer starts the completion.

    Returns:
      ``[...]`` float32 in {0, 1}.
    """
    la, lc = answers.shape[-1], completions.shape[-1]
    if lc < la:
        raise ValueError(
            f"completions must have at least {la} tokens (the answer length); got {lc}"
        )
    if scratch_ids is None:
        head = completions[..., :la]
        inside = True
    else:
        idx = answer_start(completions, scratch_ids)[..., None] + jnp.arange(la)
        head = jnp.take_along_axis(completions, jnp.minimum(idx, lc - 1), -1)
        inside = idx < lc
    ok = jnp.all(((head == answers) & inside) | (answers == pad_id), axis=-1)
    return ok.astype(jnp.float32)


def reward(
    completions: jax.Array,
    completion_mask: jax.Array,
    answers: jax.Array,
    pad_id: int,
    length_penalty: float = 0.0,
    scratch_ids: tuple[int, int] | None = None,
) -> jax.Array:
    """Task reward: correctness (0/1, :func:`correct`) minus ``length_penalty * tokens / Lc``.

    The penalty enters the ordering of the group (among correct completions the shorter ranks
    higher), which the rank-based estimators see; with ``length_penalty=0`` the reward is binary.
    """
    r = correct(completions, answers, pad_id, scratch_ids)
    if length_penalty:
        frac = jnp.sum(completion_mask, -1) / completion_mask.shape[-1]
        r = r - length_penalty * frac.astype(r.dtype)
    return r
