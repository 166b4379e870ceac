"""Deterministic vocabularies: words (specials first, then by frequency, ties alphabetical) for
the recurrent encoder, and word n-grams for the optional bag-of-n-grams path.

Each has a `digest` (SHA-256 of its tokens in order): a checkpoint records the digests of the
vocabularies it was trained with and refuses any other, so a vocabulary from another prepare
run, or one corrupted in place, is an error rather than silently wrong labels.
"""

from __future__ import annotations

import hashlib
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
    def digest(self) -> str:
        return _digest(self.itos)

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
            return cls(_load_itos(path))
        except DataError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise DataError(f"{path}: {exc}") from None


def build_vocab(texts: Iterable[Sequence[str]], min_count: int) -> Vocab:
    """Keep words seen more than `min_count` times (the notebook's rule: `cnt > threshold`)."""
    counts = Counter(word for tokens in texts for word in tokens)
    words = sorted(
        (w for w, c in counts.items() if c > min_count and w not in SPECIALS),
        key=lambda w: (-counts[w], w),
    )
    return Vocab((*SPECIALS, *words))


def _digest(tokens: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()


def _load_itos(path: str | Path) -> tuple[str, ...]:
    try:
        itos = json.loads(Path(path).read_text(encoding="utf-8"))["itos"]
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the prepare stage first") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: cannot read vocabulary: {exc}") from None
    if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
        raise DataError(f"{path}: cannot read vocabulary: `itos` is not a list of strings")
    return tuple(itos)


def word_ngrams(tokens: Sequence[str], n: int) -> list[str]:
    """Every word n-gram of order 1..n, orders joined by a space: "new", "york", "new york"."""
    out = list(tokens)
    for k in range(2, n + 1):
        out += [" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]
    return out


@dataclass(frozen=True)
class NgramVocab:
    """Word n-grams (orders 1..n) kept for the bag-of-n-grams path; no specials: an n-gram not
    in the vocabulary is left out of a text's bag."""

    itos: tuple[str, ...]
    n: int  # highest order

    def __post_init__(self) -> None:
        if len(set(self.itos)) != len(self.itos):
            raise DataError("n-gram vocabulary has duplicate entries")
        object.__setattr__(self, "stoi", {t: i for i, t in enumerate(self.itos)})

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def digest(self) -> str:
        return _digest((str(self.n), *self.itos))

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Ids of the text's known n-grams (repeats kept: the bag is a mean over them), int32."""
        stoi = self.stoi
        ids = [i for g in word_ngrams(tokens, self.n) if (i := stoi.get(g)) is not None]
        return np.asarray(ids, dtype=np.int32)

    def save(self, path: str | Path) -> None:
        body = json.dumps({"n": self.n, "itos": list(self.itos)}, ensure_ascii=False)
        write_text(path, body + "\n")

    @classmethod
    def load(cls, path: str | Path) -> NgramVocab:
        try:
            n = json.loads(Path(path).read_text(encoding="utf-8"))["n"]
        except FileNotFoundError:
            raise DataError(f"{path}: missing; run the prepare stage first") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: cannot read n-gram vocabulary: {exc}") from None
        if not isinstance(n, int) or n < 1:
            raise DataError(f"{path}: cannot read n-gram vocabulary: `n` is not an order >= 1")
        try:
            return cls(_load_itos(path), n)
        except DataError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise DataError(f"{path}: {exc}") from None


def build_ngram_vocab(texts: Iterable[Sequence[str]], n: int, min_count: int) -> NgramVocab:
    """Word n-grams of orders 1..n seen more than `min_count` times, by frequency, then
    alphabetically."""
    counts = Counter(g for tokens in texts for g in word_ngrams(tokens, n))
    grams = sorted((g for g, c in counts.items() if c > min_count), key=lambda g: (-counts[g], g))
    return NgramVocab(tuple(grams), n)
