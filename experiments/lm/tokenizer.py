"""A character-level tokenizer with PAD/BOS/EOS for the synthetic tasks (CPU runs).

A real checkpoint brings its own ``tokenizers`` tokenizer (see ``pretrained.py``); both expose the
small interface the loop needs: ``encode(str) -> list[int]``, ``decode(ids) -> str``, ``pad_id``,
``bos_id``, ``eos_id`` and ``vocab_size``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
DEFAULT_CHARS = "0123456789+-*=() ,"


@dataclasses.dataclass(frozen=True)
class CharTokenizer:
    """Maps each character of ``chars`` to one id; ids 0, 1, 2 are PAD, BOS, EOS.

    Attributes:
      chars: the alphabet (distinct characters).
      vocab_size: ``3 + len(chars)`` rounded up to ``pad_vocab_to`` (spare ids are never produced
        by ``encode`` and decode to nothing), so the embedding shards evenly over a ``model`` axis.
    """

    chars: str = DEFAULT_CHARS
    pad_vocab_to: int = 8

    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or not self.chars:
            raise ValueError(f"chars must be non-empty and distinct; got {self.chars!r}")
        if self.pad_vocab_to < 1:
            raise ValueError(f"pad_vocab_to must be >= 1; got {self.pad_vocab_to}")

    @property
    def vocab_size(self) -> int:
        n = 3 + len(self.chars)
        return -(-n // self.pad_vocab_to) * self.pad_vocab_to

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``text`` (optionally framed by BOS/EOS); unknown characters raise ValueError."""
        table = {c: 3 + i for i, c in enumerate(self.chars)}
        try:
            ids = [table[c] for c in text]
        except KeyError as err:
            raise ValueError(
                f"character {err.args[0]!r} of {text!r} is not in the alphabet {self.chars!r}"
            ) from None
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first EOS; PAD, BOS and spare ids are dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if 3 <= i < 3 + len(self.chars):
                out.append(self.chars[i - 3])
        return "".join(out)
