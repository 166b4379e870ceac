"""Batches cut straight from a shard with numpy: no per-item Python, no re-tokenization.

Training batches are length-bucketed: indices are shuffled, cut into chunks of
`batch_size * bucket_chunk`, sorted by length inside each chunk, split into batches, and the
batches shuffled again. Padding then stays close to the real tokens while the order stays random
and seeded.

How ids become a batch (pad id, truncation, fixed width) is an `InputSpec`, stored once with the
model (`TextClassifier.inputs`, and in its checkpoint), so training, evaluation, prediction and
the benchmarks cannot disagree about it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from agnews.data.shards import Shard


@dataclass(frozen=True)
class InputSpec:
    pad_id: int  # the vocabulary's <pad>: fills rows past a text's end
    max_len: int  # tokens (bos and eos included) beyond which a text is truncated
    fixed_len: int | None  # every batch exactly this wide (flatten pooling), else None

    @property
    def cap(self) -> int:
        """The most tokens of a text the model sees."""
        return self.fixed_len if self.fixed_len is not None else self.max_len


@dataclass(frozen=True)
class Batch:
    ids: torch.Tensor  # (B, T) int64 token ids, padded with pad_id
    lengths: torch.Tensor  # (B,) int64 real tokens per row (1..T), on the CPU for packing
    labels: torch.Tensor  # (B,) int64
    bag: torch.Tensor | None = None  # (total,) int64 n-gram ids of all rows back to back
    bag_offsets: torch.Tensor | None = None  # (B,) int64 where each row's n-grams start
    bag_weights: torch.Tensor | None = None  # (total,) float32 their TF-IDF weights

    def to(self, device: torch.device) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=device.type == "cuda")

        return Batch(
            move(self.ids),
            self.lengths,
            move(self.labels),
            move(self.bag),
            move(self.bag_offsets),
            move(self.bag_weights),
        )


def _pinned(t: torch.Tensor) -> torch.Tensor:
    """Page-locked on a CUDA machine, so the copy to the GPU is asynchronous."""
    return t.pin_memory() if torch.cuda.is_available() else t


def make_batch(shard: Shard, index: np.ndarray, spec: InputSpec) -> Batch:
    """Rows `index` of `shard`, truncated to spec.cap and padded: exactly fixed_len wide with a
    fixed length, else as wide as the longest (truncated) row."""
    starts = shard.offsets[index]  # (B,)
    lengths = np.minimum(shard.offsets[index + 1] - starts, spec.cap)  # (B,)
    width = spec.fixed_len if spec.fixed_len is not None else int(lengths.max())
    pos = np.arange(width)  # (T,)
    mask = pos[None, :] < lengths[:, None]  # (B, T)
    gather = np.where(mask, starts[:, None] + pos[None, :], 0)  # (B, T)
    ids = np.where(mask, shard.tokens[gather], spec.pad_id)  # (B, T)
    bag = bag_offsets = bag_weights = None
    if shard.bag is not None:
        bag_starts, bag_ends = shard.bag_offsets[index], shard.bag_offsets[index + 1]  # (B,)
        sizes = bag_ends - bag_starts  # (B,)
        bag_offsets = np.zeros(len(index), dtype=np.int64)
        np.cumsum(sizes[:-1], out=bag_offsets[1:])
        # every row's n-gram positions back to back: start of its run + rank within it
        rank = np.arange(sizes.sum()) - np.repeat(bag_offsets, sizes)  # (total,)
        where = np.repeat(bag_starts, sizes) + rank  # (total,) positions in the shard's bag
        bag = _pinned(torch.from_numpy(shard.bag[where].astype(np.int64)))
        bag_offsets = _pinned(torch.from_numpy(bag_offsets))
        bag_weights = _pinned(torch.from_numpy(shard.bag_weights[where]))
    return Batch(
        _pinned(torch.from_numpy(ids.astype(np.int64))),
        _pinned(torch.from_numpy(lengths.astype(np.int64))),
        _pinned(torch.from_numpy(shard.labels[index].astype(np.int64))),
        bag,
        bag_offsets,
        bag_weights,
    )


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
    torch's CPU generator (seeded, and saved with a resumable training state). The n-gram bag is
    left as it is."""
    if p <= 0:
        return batch
    pos = torch.arange(batch.ids.shape[1])[None, :]  # (1, T)
    words = (pos >= 1) & (pos < (batch.lengths - 1)[:, None])  # (B, T)
    drop = words & (torch.rand(batch.ids.shape) < p)  # (B, T)
    return Batch(
        batch.ids.masked_fill(drop, unk_id),
        batch.lengths,
        batch.labels,
        batch.bag,
        batch.bag_offsets,
        batch.bag_weights,
    )
