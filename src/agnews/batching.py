"""Batches cut straight from a shard with numpy: no per-item Python, no re-tokenization.

Training batches are length-bucketed: indices are shuffled, cut into chunks of
`batch_size * bucket_chunk`, sorted by length inside each chunk, split into batches, and the
batches shuffled again. Padding then stays close to the real tokens while the order stays random
and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from agnews.shards import Shard


@dataclass(frozen=True)
class Batch:
    ids: torch.Tensor  # (B, T) int64 token ids, padded with pad_id
    lengths: torch.Tensor  # (B,) int64 real tokens per row (1..T), on the CPU for packing
    labels: torch.Tensor  # (B,) int64

    def to(self, device: torch.device) -> Batch:
        non_blocking = device.type == "cuda"
        return Batch(
            self.ids.to(device, non_blocking=non_blocking),
            self.lengths,
            self.labels.to(device, non_blocking=non_blocking),
        )


def make_batch(
    shard: Shard, index: np.ndarray, pad_id: int, max_len: int, fixed_len: int | None = None
) -> Batch:
    """Rows `index` of `shard`, truncated to max_len (or fixed_len) and padded.

    With `fixed_len` every batch is exactly fixed_len wide (flatten pooling needs it); otherwise
    it is as wide as its longest (truncated) text.
    """
    cap = fixed_len if fixed_len is not None else max_len
    starts = shard.offsets[index]  # (B,)
    lengths = np.minimum(shard.offsets[index + 1] - starts, cap)  # (B,)
    width = fixed_len if fixed_len is not None else int(lengths.max())
    pos = np.arange(width)  # (T,)
    mask = pos[None, :] < lengths[:, None]  # (B, T)
    gather = np.where(mask, starts[:, None] + pos[None, :], 0)  # (B, T)
    ids = np.where(mask, shard.tokens[gather], pad_id)  # (B, T)
    ids_t = torch.from_numpy(ids.astype(np.int64))
    lengths_t = torch.from_numpy(lengths.astype(np.int64))
    labels_t = torch.from_numpy(shard.labels[index].astype(np.int64))
    if torch.cuda.is_available():  # page-locked, so the copies to the GPU are asynchronous
        ids_t, lengths_t, labels_t = (
            ids_t.pin_memory(),
            lengths_t.pin_memory(),
            labels_t.pin_memory(),
        )
    return Batch(ids_t, lengths_t, labels_t)


def train_order(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, bucketing: bool, chunk: int
) -> list[np.ndarray]:
    """Index arrays, one per batch, covering every row once in a seeded random order."""
    perm = rng.permutation(len(lengths))
    if bucketing:
        span = batch_size * chunk
        pieces = [perm[i : i + span] for i in range(0, len(perm), span)]
        perm = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in pieces])
    batches = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    if bucketing:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def eval_order(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index arrays sorted by length (deterministic, minimal padding) for evaluation."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def word_dropout(batch: Batch, p: float, unk_id: int) -> Batch:
    """Replace each real word (not bos, eos or padding) by `unk_id` with probability `p`, using
    torch's CPU generator (seeded, and saved with a resumable training state)."""
    if p <= 0:
        return batch
    pos = torch.arange(batch.ids.shape[1])[None, :]  # (1, T)
    words = (pos >= 1) & (pos < (batch.lengths - 1)[:, None])  # (B, T)
    drop = words & (torch.rand(batch.ids.shape) < p)  # (B, T)
    return Batch(batch.ids.masked_fill(drop, unk_id), batch.lengths, batch.labels)
