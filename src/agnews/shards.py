"""Tensor shards: one split's token ids stored flat, with offsets and labels, in a .npz file.

tokens  (total_tokens,) int32   every text's ids (bos ... eos) back to back
offsets (N + 1,)        int64   text i is tokens[offsets[i]:offsets[i + 1]]
labels  (N,)            int64   0..3
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agnews.atomic import atomic_path
from agnews.errors import DataError


@dataclass(frozen=True)
class Shard:
    tokens: np.ndarray  # (total_tokens,) int32
    offsets: np.ndarray  # (N + 1,) int64
    labels: np.ndarray  # (N,) int64

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0:
            raise DataError(f"shard offsets have shape {self.offsets.shape}, expected ({n + 1},)")
        if self.offsets[-1] != len(self.tokens) or np.any(np.diff(self.offsets) <= 0):
            raise DataError("shard offsets do not partition the token array")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 tokens per text, bos and eos included."""
        return np.diff(self.offsets)

    def text_ids(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, index: np.ndarray) -> Shard:
        """The texts at `index`, in that order."""
        lengths = self.lengths[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        parts = [self.text_ids(i) for i in index]
        tokens = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        return Shard(tokens.astype(np.int32), offsets, self.labels[index].astype(np.int64))


def shard_from_ids(ids: Sequence[np.ndarray], labels: Sequence[int]) -> Shard:
    """Pack per-text id arrays into one shard."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate(ids).astype(np.int32) if len(ids) else np.zeros(0, np.int32)
    return Shard(tokens, offsets, np.asarray(labels, dtype=np.int64))


def save_shard(path: str | Path, shard: Shard) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, tokens=shard.tokens, offsets=shard.offsets, labels=shard.labels)


def load_shard(path: str | Path) -> Shard:
    path = Path(path)
    try:
        with np.load(path) as z:
            return Shard(z["tokens"], z["offsets"], z["labels"])
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the prepare stage first") from None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a valid shard: {exc}") from None


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
