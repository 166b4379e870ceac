"""Tensor shards: one split's token ids stored flat, with offsets and labels, in a .npz file.

tokens       (total_tokens,) int32   every text's word ids (bos ... eos) back to back
offsets      (N + 1,)        int64   text i is tokens[offsets[i]:offsets[i + 1]]
labels       (N,)            int64   0..3
bag          (total_bag,)    int32   optional: every text's distinct n-gram ids back to back
bag_weights  (total_bag,)    float32 optional: their TF-IDF weights
bag_offsets  (N + 1,)        int64   optional: text i's n-grams are bag[bag_offsets[i]:...]
rows         (N,)            int64   each text's 0-based row in its raw split (train.jsonl for
                                     train and val, test.jsonl for test): rows empty after
                                     preprocessing have none
vocab_sha256 ()              str     the SHA-256 of the vocabulary the ids index (prepare's)
ngram_sha256 ()              str     optional: that of the n-gram vocabulary
"""

from __future__ import annotations

import dataclasses
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agnews import NUM_CLASSES
from agnews.atomic import atomic_path
from agnews.errors import DataError

if TYPE_CHECKING:
    from agnews.data.vocab import NgramVocab, Vocab


def _pack(parts: Sequence[np.ndarray], dtype=np.int32) -> tuple[np.ndarray, np.ndarray]:
    """Ragged arrays -> (flat values, (N + 1,) int64 offsets)."""
    lengths = np.fromiter((len(x) for x in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(parts).astype(dtype) if len(parts) else np.zeros(0, dtype)
    return flat, offsets


@dataclass(frozen=True)
class Shard:
    tokens: np.ndarray  # (total_tokens,) int32
    offsets: np.ndarray  # (N + 1,) int64
    labels: np.ndarray  # (N,) int64
    bag: np.ndarray | None = None  # (total_bag,) int32 n-gram ids, when prepared with n-grams
    bag_offsets: np.ndarray | None = None  # (N + 1,) int64
    bag_weights: np.ndarray | None = None  # (total_bag,) float32 TF-IDF weights
    vocab_sha256: str | None = None  # digest of the word vocabulary the ids index (prepare's)
    ngram_sha256: str | None = None  # digest of the n-gram vocabulary, when it has n-grams
    rows: np.ndarray | None = None  # (N,) int64 raw row index of each text (prepare's shards)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.rows is not None and self.rows.shape != (n,):
            raise DataError(f"shard rows have shape {self.rows.shape}, expected ({n},)")
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0:
            raise DataError(f"shard offsets have shape {self.offsets.shape}, expected ({n + 1},)")
        if self.offsets[-1] != len(self.tokens) or np.any(np.diff(self.offsets) <= 0):
            raise DataError("shard offsets do not partition the token array")
        if n and (self.labels.min() < 0 or self.labels.max() >= NUM_CLASSES):
            raise DataError(f"shard labels outside 0..{NUM_CLASSES - 1}")
        if not (self.bag is None) == (self.bag_offsets is None) == (self.bag_weights is None):
            raise DataError("shard has only some of n-gram ids, weights and offsets")
        if self.bag is not None:
            ok = (
                self.bag_offsets.shape == (n + 1,)
                and self.bag_offsets[0] == 0
                and self.bag_offsets[-1] == len(self.bag)
                and not np.any(np.diff(self.bag_offsets) < 0)
                and self.bag_weights.shape == self.bag.shape
            )
            if not ok:
                raise DataError("shard n-gram offsets do not partition the n-gram array")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 tokens per text, bos and eos included."""
        return np.diff(self.offsets)

    def text_ids(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def bag_ids(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(n-gram ids, their weights) of text i."""
        if self.bag is None:
            raise DataError("this shard was prepared without n-grams (prepare.ngrams: 0)")
        span = slice(self.bag_offsets[i], self.bag_offsets[i + 1])
        return self.bag[span], self.bag_weights[span]

    def check_ids(self, vocab_size: int, bag_size: int | None) -> None:
        """Every id must index its vocabulary: a shard from another prepare run, or a corrupted
        one, is an error here instead of an index error (or silent nonsense) in the model."""
        if len(self.tokens) and (self.tokens.min() < 0 or self.tokens.max() >= vocab_size):
            raise DataError(
                f"token ids outside the vocabulary of {vocab_size} words: shard and vocabulary "
                "come from different prepare runs (rerun prepare)"
            )
        if bag_size is not None and self.bag is None:
            raise DataError("the model needs n-grams, but this shard has none (prepare.ngrams)")
        if (
            bag_size is not None
            and len(self.bag)
            and (self.bag.min() < 0 or self.bag.max() >= bag_size)
        ):
            raise DataError(
                f"n-gram ids outside the n-gram vocabulary of {bag_size}: shard and vocabulary "
                "come from different prepare runs (rerun prepare)"
            )

    def check_vocabularies(self, words: Vocab, ngrams: NgramVocab | None) -> None:
        """The shard must come from the prepare run that made these vocabularies: prepare
        records their SHA-256 in every shard, so a shard from another run is refused even when
        its ids happen to fit (same vocabulary size, say); then every id must index them."""
        wanted = [("vocabulary", self.vocab_sha256, words.digest)]
        if ngrams is not None:
            wanted.append(("n-gram vocabulary", self.ngram_sha256, ngrams.digest))
        for what, have, want in wanted:
            if have is None and what == "n-gram vocabulary" and self.bag is None:
                continue  # check_ids says the model needs n-grams this shard lacks
            if have is None:
                raise DataError(
                    f"records no {what} digest: made by an older version of prepare (rerun it)"
                )
            if have != want:
                raise DataError(
                    f"prepared with another {what} (SHA-256 {have[:12]}…, not {want[:12]}…): "
                    "shard and vocabulary come from different prepare runs (rerun prepare)"
                )
        self.check_ids(len(words), len(ngrams) if ngrams is not None else None)

    def subset(self, index: np.ndarray) -> Shard:
        """The texts at `index`, in that order."""
        bags = [self.bag_ids(i) for i in index] if self.bag is not None else None
        part = shard_from_ids([self.text_ids(i) for i in index], self.labels[index], bags)
        return dataclasses.replace(
            part,
            vocab_sha256=self.vocab_sha256,
            ngram_sha256=self.ngram_sha256,
            rows=self.rows[index] if self.rows is not None else None,
        )

    def raw_rows(self) -> np.ndarray:
        """(N,) int64 each text's row in its raw split, as prepare recorded it."""
        if self.rows is None:
            raise DataError("records no raw row numbers: made by an older prepare (rerun it)")
        return self.rows


def shard_from_ids(
    ids: Sequence[np.ndarray],
    labels: Sequence[int],
    bags: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Shard:
    """Pack per-text id arrays (and, optionally, per-text (n-gram ids, weights)) into a shard."""
    tokens, offsets = _pack(ids)
    bag = bag_offsets = weights = None
    if bags is not None:
        bag, bag_offsets = _pack([b[0] for b in bags])
        weights, _ = _pack([b[1] for b in bags], np.float32)
    return Shard(tokens, offsets, np.asarray(labels, dtype=np.int64), bag, bag_offsets, weights)


DIGESTS = ("vocab_sha256", "ngram_sha256")


def save_shard(path: str | Path, shard: Shard) -> None:
    arrays = {"tokens": shard.tokens, "offsets": shard.offsets, "labels": shard.labels}
    for name in DIGESTS:
        if getattr(shard, name) is not None:
            arrays[name] = np.array(getattr(shard, name))  # a 0-d unicode array: no pickle
    if shard.rows is not None:
        arrays["rows"] = shard.rows
    if shard.bag is not None:
        arrays |= {
            "bag": shard.bag,
            "bag_offsets": shard.bag_offsets,
            "bag_weights": shard.bag_weights,
        }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_shard(path: str | Path) -> Shard:
    path = Path(path)
    try:
        with np.load(path) as z:
            names = ("bag", "bag_offsets", "bag_weights")
            bag = tuple(z[k] for k in names) if "bag" in z.files else (None, None, None)
            digests = (str(z[k]) if k in z.files else None for k in DIGESTS)
            rows = z["rows"] if "rows" in z.files else None
            return Shard(z["tokens"], z["offsets"], z["labels"], *bag, *digests, rows)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the prepare stage first") from None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a valid shard (corrupted? rerun prepare): {exc}") from None
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def stratified_split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val), each sorted, with `share` of every class (rounded) in val."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = round(len(members) * share)
        val.append(rng.permutation(members)[:take])
    val_idx = np.sort(np.concatenate(val))
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask), val_idx
