"""A deterministic word vocabulary: specials first, then words by frequency, ties alphabetical."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agnews.atomic import write_text
from agnews.errors import DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0..3; pad is 0 so it doubles as the embedding padding_idx


@dataclass(frozen=True)
class Vocab:
    itos: tuple[str, ...]  # id -> token

    def __post_init__(self) -> None:
        if self.itos[: len(SPECIALS)] != SPECIALS:
            raise DataError(f"vocabulary must start with {', '.join(SPECIALS)}")
        if len(set(self.itos)) != len(self.itos):
            raise DataError("vocabulary has duplicate tokens")
        object.__setattr__(self, "stoi", {t: i for i, t in enumerate(self.itos)})

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        return self.stoi[PAD]

    @property
    def unk_id(self) -> int:
        return self.stoi[UNK]

    @property
    def bos_id(self) -> int:
        return self.stoi[BOS]

    @property
    def eos_id(self) -> int:
        return self.stoi[EOS]

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """bos + word ids (unknown words -> unk) + eos, as int32."""
        stoi, unk = self.stoi, self.unk_id
        ids = [self.bos_id, *(stoi.get(t, unk) for t in tokens), self.eos_id]
        return np.asarray(ids, dtype=np.int32)

    def save(self, path: str | Path) -> None:
        write_text(path, json.dumps({"itos": list(self.itos)}, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        try:
            return cls(tuple(json.loads(Path(path).read_text(encoding="utf-8"))["itos"]))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: cannot read vocabulary: {exc}") from None


def build_vocab(texts: Iterable[Sequence[str]], min_count: int) -> Vocab:
    """Keep words seen more than `min_count` times (the notebook's rule: `cnt > threshold`)."""
    counts = Counter(word for tokens in texts for word in tokens)
    words = sorted(
        (w for w, c in counts.items() if c > min_count and w not in SPECIALS),
        key=lambda w: (-counts[w], w),
    )
    return Vocab((*SPECIALS, *words))
