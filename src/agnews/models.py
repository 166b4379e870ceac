"""One recurrent classifier family, configured by `ModelConfig`, covering every notebook variant.

    ids (B, T) -> Embedding -> (B, T, E) -> stacked RNN/GRU/LSTM layers over packed sequences
    -> outputs (B, T, D) with zeros at padding -> pooling (any "+"-join of max / mean / last /
    flatten, all blind to padding; with skip_embedding the embeddings (B, T, E) are pooled the
    same way and joined; with ngram_dim the mean embedding of the text's word n-grams (B, G)
    joins too) -> (B, P) -> head: [tanh -> Linear -> dropout] x head_layers
    -> tanh -> Linear -> (B, num_classes)

Padding never enters a recurrence: bidirectional encoders run on packed sequences (the backward
direction starts at the last real token, not at the padding); left-to-right encoders run on the
padded batch, where real positions cannot see the padding after them, and padded positions are
zeroed. Either way a text's result does not depend on what it is batched with.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from agnews import NUM_CLASSES
from agnews.batching import Batch, InputSpec
from agnews.config import ModelConfig

_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _map_packed(fn, packed: PackedSequence) -> PackedSequence:
    """Apply an element-wise module to the data of a packed sequence."""
    return packed._replace(data=fn(packed.data))


class RecurrentEncoder(nn.Module):
    """`layers` single-layer recurrent modules, each uni- or bidirectional, with an optional
    activation and dropout between them. Returns (B, T, D): D = hidden * (2 if the top layer is
    bidirectional else 1), zeros at padded positions."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cell = _CELLS[cfg.cell]
        self.layers = nn.ModuleList()
        in_dim = cfg.embedding_dim
        for i in range(cfg.layers):
            bidirectional = cfg.bidirectional == "all" or (
                cfg.bidirectional == "top" and i == cfg.layers - 1
            )
            self.layers.append(
                cell(in_dim, cfg.hidden_size, batch_first=True, bidirectional=bidirectional)
            )
            in_dim = cfg.hidden_size * (2 if bidirectional else 1)
        self.out_dim = in_dim
        self.top_bidirectional = self.layers[-1].bidirectional
        self.activation = nn.Tanh() if cfg.layer_activation == "tanh" else nn.Identity()
        self.dropout = nn.Dropout(cfg.rnn_dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, total_length: int) -> torch.Tensor:
        # x: (B, T, E); lengths: (B,) on the CPU
        if not any(layer.bidirectional for layer in self.layers):
            # Left-to-right only: a real position never sees the padding after it, so run on the
            # padded batch (faster than packing) and zero the padded positions afterwards.
            h = x
            for i, layer in enumerate(self.layers):
                if i > 0:
                    h = self.dropout(self.activation(h))
                h, _ = layer(h)  # (B, T, H)
            mask = padding_mask(lengths, h.shape[1], h.device)  # (B, T)
            return h * mask[:, :, None]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        for i, layer in enumerate(self.layers):
            if i > 0:
                packed = _map_packed(lambda h: self.dropout(self.activation(h)), packed)
            packed, _ = layer(packed)
        out, _ = pad_packed_sequence(packed, batch_first=True, total_length=total_length)
        return out  # (B, T, D)


def padding_mask(lengths: torch.Tensor, width: int, device: torch.device) -> torch.Tensor:
    """(B, T) bool, True at real tokens."""
    return torch.arange(width, device=device)[None, :] < lengths.to(device)[:, None]


def pool(out: torch.Tensor, lengths: torch.Tensor, mode: str, bidirectional: bool) -> torch.Tensor:
    """Pool encoder outputs (B, T, D) over time, ignoring padding. Returns (B, D), or (B, T*D)
    for flatten (padding positions are zeros there)."""
    batch, width, dim = out.shape
    mask = padding_mask(lengths, width, out.device)  # (B, T)
    if mode == "max":
        return out.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)
    if mode == "mean":
        summed = (out * mask[:, :, None]).sum(dim=1)  # (B, D)
        return summed / lengths.to(out.device, out.dtype)[:, None]
    if mode == "last":
        rows = torch.arange(batch, device=out.device)
        last = out[rows, lengths.to(out.device) - 1]  # (B, D): forward state at the last token
        if bidirectional:  # the backward direction has read the whole text at position 0
            half = dim // 2
            last = torch.cat([last[:, :half], out[:, 0, half:]], dim=1)
        return last
    if mode == "flatten":
        return out.reshape(batch, width * dim)  # (B, T*D)
    raise ValueError(f"unknown pooling mode {mode!r}")


def _hidden_layer(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    """The notebook's building block: tanh -> Linear -> dropout."""
    return nn.Sequential(nn.Tanh(), nn.Linear(in_dim, out_dim), nn.Dropout(dropout))


class TextClassifier(nn.Module):
    """The model family. `inputs` says how its batches are made (pad id, truncation, fixed
    width); `bag_size` is the n-gram vocabulary's size when cfg.ngram_dim > 0."""

    def __init__(
        self,
        cfg: ModelConfig,
        vocab_size: int,
        inputs: InputSpec,
        bag_size: int | None = None,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        super().__init__()
        if inputs.fixed_len != cfg.fixed_len:
            raise ValueError(
                f"inputs.fixed_len={inputs.fixed_len} but model.fixed_len={cfg.fixed_len}"
            )
        if (bag_size is None) != (cfg.ngram_dim == 0):
            raise ValueError("bag_size must be given exactly when model.ngram_dim > 0")
        self.cfg = cfg
        self.inputs = inputs
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=inputs.pad_id)
        self.embedding_dropout = nn.Dropout(cfg.embedding_dropout)
        self.encoder = RecurrentEncoder(cfg)
        d = self.encoder.out_dim
        self.modes = cfg.pooling_modes
        self.flatten_proj = None
        pooled_dim = 0
        if cfg.skip_embedding:  # the embeddings are pooled like the encoder outputs
            d += cfg.embedding_dim
        for mode in self.modes:
            if mode == "flatten":
                flat = cfg.fixed_len * d
                if cfg.flatten_dim:
                    self.flatten_proj = _hidden_layer(flat, cfg.flatten_dim, cfg.head_dropout)
                    flat = cfg.flatten_dim
                pooled_dim += flat
            else:
                pooled_dim += d
        self.bag = None
        if cfg.ngram_dim:  # fastText's idea beside the encoder: the mean of n-gram embeddings
            self.bag = nn.EmbeddingBag(bag_size, cfg.ngram_dim, mode="mean")
            pooled_dim += cfg.ngram_dim
        self.pooled_dim = pooled_dim
        self.head = nn.ModuleList()
        in_dim = pooled_dim
        for i in range(cfg.head_layers):
            self.head.append(_hidden_layer(in_dim, cfg.head_hidden, cfg.head_dropout))
            in_dim = cfg.head_hidden + (pooled_dim if i == 0 and cfg.head_concat_pooled else 0)
        self.projection = nn.Sequential(nn.Tanh(), nn.Linear(in_dim, num_classes))

    def classify(self, batch: Batch) -> torch.Tensor:
        """Logits (B, num_classes) of a batch already on the model's device."""
        return self(batch.ids, batch.lengths, batch.bag, batch.bag_offsets)

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        bag: torch.Tensor | None = None,
        bag_offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # ids: (B, T); lengths: (B,) on the CPU; bag: (total,) n-gram ids; bag_offsets: (B,)
        x = self.embedding_dropout(self.embedding(ids))  # (B, T, E)
        out = self.encoder(x, lengths, total_length=ids.shape[1])  # (B, T, D)
        lengths = lengths.to(ids.device, non_blocking=True)  # once, not once per pooling mode
        parts = []
        for mode in self.modes:
            if self.cfg.skip_embedding and mode == "flatten":  # position by position
                p = pool(torch.cat([out, x], dim=2), lengths, mode, False)  # (B, T*(D+E))
            else:
                p = pool(out, lengths, mode, self.encoder.top_bidirectional)  # (B, D) or (B, T*D)
                if self.cfg.skip_embedding:
                    p = torch.cat([p, pool(x, lengths, mode, False)], dim=1)  # (B, D+E)
            if mode == "flatten" and self.flatten_proj is not None:
                p = self.flatten_proj(p)  # (B, flatten_dim)
            parts.append(p)
        if self.bag is not None:
            if bag is None:
                raise ValueError("this model needs the n-gram bag of each text")
            parts.append(self.embedding_dropout(self.bag(bag, bag_offsets)))  # (B, G)
        pooled = torch.cat(parts, dim=1)  # (B, P)
        h = pooled
        for i, layer in enumerate(self.head):
            h = layer(h)  # (B, head_hidden)
            if i == 0 and self.cfg.head_concat_pooled:
                h = torch.cat([h, pooled], dim=1)  # (B, head_hidden + P)
        return self.projection(h)  # (B, num_classes)
