"""Deterministic vocabularies: words (specials first, then by frequency, ties alphabetical) for
the recurrent encoder, and word n-grams for the optional bag-of-n-grams path.

Each has a `digest` (SHA-256 of its tokens in order): a checkpoint records the digests of the
vocabularies it was trained with and refuses any other, so a vocabulary from another prepare
run, or one corrupted in place, is an error rather than silently wrong labels.
"""

from __future__ import annotations

import hashlib
import json
import math
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

    def to_json(self) -> str:
        """vocab.json's text (a checkpoint carries it too)."""
        return json.dumps({"itos": list(self.itos)}, ensure_ascii=False) + "\n"

    def save(self, path: str | Path) -> None:
        write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls.from_json(_read(path), str(path))

    @classmethod
    def from_json(cls, text: str, where: str) -> Vocab:
        """The vocabulary of vocab.json's `text`; errors start with `where`."""
        try:
            return cls(_parse_itos(text, where))
        except DataError as exc:
            if str(exc).startswith(where):
                raise
            raise DataError(f"{where}: {exc}") from None


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


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the prepare stage first") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read vocabulary: {exc}") from None


def _parse_itos(text: str, where: str) -> tuple[str, ...]:
    try:
        itos = json.loads(text)["itos"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{where}: cannot read vocabulary: {exc}") from None
    return _check_itos(itos, where)


def _check_itos(itos: object, where: str) -> tuple[str, ...]:
    if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
        raise DataError(f"{where}: cannot read vocabulary: `itos` is not a list of strings")
    return tuple(itos)


def word_ngrams(tokens: Sequence[str], n: int) -> list[str]:
    """Every word n-gram of order 1..n, orders joined by a space: "new", "york", "new york"."""
    out = list(tokens)
    for k in range(2, n + 1):
        out += [" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]
    return out


@dataclass(frozen=True)
class NgramVocab:
    """Word n-grams (orders 1..n) kept for the n-gram paths, each with its inverse document
    frequency in the training split. A text becomes its distinct known n-grams with TF-IDF
    weights (sublinear term frequency, smoothed idf, L2-normalised per text: scikit-learn's
    `TfidfVectorizer(sublinear_tf=True)`); n-grams not in the vocabulary are left out."""

    itos: tuple[str, ...]
    idf: tuple[float, ...]  # ln((1 + N) / (1 + document frequency)) + 1
    n: int  # highest order

    def __post_init__(self) -> None:
        if len(set(self.itos)) != len(self.itos):
            raise DataError("n-gram vocabulary has duplicate entries")
        if len(self.idf) != len(self.itos):
            raise DataError("n-gram vocabulary has one idf per entry")
        object.__setattr__(self, "stoi", {t: i for i, t in enumerate(self.itos)})
        object.__setattr__(self, "_idf", np.asarray(self.idf, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def digest(self) -> str:
        return _digest((str(self.n), *self.itos, *map(repr, self.idf)))

    def encode(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids int32, TF-IDF weights float32) of the text's distinct known n-grams, by id."""
        stoi = self.stoi
        counts = Counter(i for g in word_ngrams(tokens, self.n) if (i := stoi.get(g)) is not None)
        ids = np.fromiter(sorted(counts), dtype=np.int32, count=len(counts))
        tf = np.fromiter((counts[i] for i in ids), dtype=np.float64, count=len(ids))
        weights = (1.0 + np.log(tf)) * self._idf[ids]
        norm = np.linalg.norm(weights)
        return ids, (weights / norm if norm > 0 else weights).astype(np.float32)

    def to_json(self) -> str:
        """ngrams.json's text (a checkpoint carries it too)."""
        body = json.dumps(
            {"n": self.n, "itos": list(self.itos), "idf": list(self.idf)}, ensure_ascii=False
        )
        return body + "\n"

    def save(self, path: str | Path) -> None:
        write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> NgramVocab:
        return cls.from_json(_read(path), str(path))

    @classmethod
    def from_json(cls, text: str, where: str) -> NgramVocab:
        """The n-gram vocabulary of ngrams.json's `text`; errors start with `where`."""
        try:
            raw = json.loads(text)
            n, idf, itos = raw["n"], tuple(float(x) for x in raw["idf"]), raw["itos"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{where}: cannot read n-gram vocabulary: {exc}") from None
        if not isinstance(n, int) or n < 1:
            raise DataError(f"{where}: cannot read n-gram vocabulary: `n` is not an order >= 1")
        try:
            return cls(_check_itos(itos, where), idf, n)
        except DataError as exc:
            if str(exc).startswith(where):
                raise
            raise DataError(f"{where}: {exc}") from None


def build_ngram_vocab(texts: Sequence[Sequence[str]], n: int, min_count: int) -> NgramVocab:
    """Word n-grams of orders 1..n seen more than `min_count` times in `texts`, by frequency,
    then alphabetically, with their idf over `texts`."""
    counts: Counter[str] = Counter()
    docs: Counter[str] = Counter()
    for tokens in texts:
        grams = word_ngrams(tokens, n)
        counts.update(grams)
        docs.update(set(grams))
    grams = sorted((g for g, c in counts.items() if c > min_count), key=lambda g: (-counts[g], g))
    n_docs = len(texts)
    idf = tuple(float(math.log((1 + n_docs) / (1 + docs[g])) + 1.0) for g in grams)
    return NgramVocab(tuple(grams), idf, n)
