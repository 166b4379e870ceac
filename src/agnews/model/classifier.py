"""One recurrent classifier family, configured by `ModelConfig`, covering every notebook variant.

    ids (B, T) -> Embedding -> (B, T, E) -> stacked RNN/GRU/LSTM layers, each left-to-right or
    bidirectional -> outputs (B, T, D) with zeros at padding -> pooling (any "+"-join of max /
    mean / last / flatten, all blind to padding; with skip_embedding the embeddings (B, T, E)
    are pooled the same way and joined; with ngram_dim the mean embedding of the text's word
    n-grams (B, G) joins too) -> (B, P) -> head: [tanh -> Linear -> dropout] x head_layers
    -> tanh -> Linear -> (B, num_classes)

Padding never enters a recurrence, and no layer runs on packed sequences: every direction runs
on the padded batch with the padding after the real tokens, where no real position can see it.
The left-to-right direction reads the batch as it is; the right-to-left one reads each row's
real tokens reversed in place (padding still last) and its outputs are put back in text order,
so it starts at the last real token, exactly as on a packed sequence. Padded positions are
zeroed at the end. A text's result never depends on what it is batched with, and every layer
gets the fast kernels for dense batches (oneDNN's LSTM on CPU, about 3x the packed LSTM there;
cuDNN on CUDA).
"""

from __future__ import annotations

import torch
from torch import nn

from agnews import NUM_CLASSES
from agnews.config import ModelConfig, uses_ngrams
from agnews.data.batching import Batch, InputSpec

_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def reverse_real_tokens(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first lengths[b] positions in reverse order, padding left in place:
    (B, T, D) -> (B, T, D). Its own inverse."""
    width = x.shape[1]
    pos = torch.arange(width, device=x.device)[None, :]  # (1, T)
    real = lengths[:, None]  # (B, 1), on x's device
    index = torch.where(pos < real, real - 1 - pos, pos)  # (B, T)
    return x.gather(1, index[:, :, None].expand_as(x))


class RecurrentLayer(nn.Module):
    """One layer: a left-to-right cell and, if bidirectional, a right-to-left one whose outputs
    are concatenated: (B, T, I) -> (B, T, H) or (B, T, 2H)."""

    def __init__(self, cell: type[nn.RNNBase], in_dim: int, hidden: int, bidirectional: bool):
        super().__init__()
        self.forward_cell = cell(in_dim, hidden, batch_first=True)
        self.backward_cell = cell(in_dim, hidden, batch_first=True) if bidirectional else None
        self.bidirectional = bidirectional

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # x: (B, T, I); lengths: (B,) on x's device
        out, _ = self.forward_cell(x)  # (B, T, H)
        if self.backward_cell is None:
            return out
        back, _ = self.backward_cell(reverse_real_tokens(x, lengths))  # (B, T, H), reversed
        return torch.cat([out, reverse_real_tokens(back, lengths)], dim=2)  # (B, T, 2H)


class RecurrentEncoder(nn.Module):
    """`layers` recurrent layers, each uni- or bidirectional, with an optional activation and
    dropout between them. Returns (B, T, D): D = hidden * (2 if the top layer is
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
            self.layers.append(RecurrentLayer(cell, in_dim, cfg.hidden_size, bidirectional))
            in_dim = cfg.hidden_size * (2 if bidirectional else 1)
        self.out_dim = in_dim
        self.top_bidirectional = self.layers[-1].bidirectional
        self.activation = nn.Tanh() if cfg.layer_activation == "tanh" else nn.Identity()
        self.dropout = nn.Dropout(cfg.rnn_dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # x: (B, T, E); lengths: (B,) on x's device
        h = x
        for i, layer in enumerate(self.layers):
            if i > 0:
                h = self.dropout(self.activation(h))
            h = layer(h, lengths)  # (B, T, H) or (B, T, 2H)
        mask = padding_mask(lengths, h.shape[1], h.device)  # (B, T)
        return h * mask[:, :, None]


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
        if (bag_size is None) != (not uses_ngrams(cfg)):
            raise ValueError("bag_size must be given exactly when the model reads n-grams")
        self.cfg = cfg
        self.inputs = inputs
        # the notebook's own models learned an embedding for <pad> (model.encode_padding)
        padding_idx = None if cfg.encode_padding else inputs.pad_id
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=padding_idx)
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
        if cfg.ngram_dim:  # fastText's idea beside the encoder: a text's n-gram embeddings,
            # weighted by TF-IDF and summed
            self.bag = nn.EmbeddingBag(bag_size, cfg.ngram_dim, mode="sum")
            pooled_dim += cfg.ngram_dim
        self.ngram_logits = None
        if cfg.ngram_logits:  # "wide & deep": a linear model over the TF-IDF-weighted n-grams,
            # added to the network's logits; it starts at zero (the network's answer)
            self.ngram_logits = nn.EmbeddingBag(bag_size, num_classes, mode="sum")
            nn.init.zeros_(self.ngram_logits.weight)
        self.pooled_dim = pooled_dim
        self.head = nn.ModuleList()
        in_dim = pooled_dim
        for i in range(cfg.head_layers):
            self.head.append(_hidden_layer(in_dim, cfg.head_hidden, cfg.head_dropout))
            in_dim = cfg.head_hidden + (pooled_dim if i == 0 and cfg.head_concat_pooled else 0)
        self.projection = nn.Sequential(nn.Tanh(), nn.Linear(in_dim, num_classes))

    def classify(self, batch: Batch) -> torch.Tensor:
        """Logits (B, num_classes) of a batch already on the model's device."""
        return self(batch.ids, batch.lengths, batch.bag, batch.bag_offsets, batch.bag_weights)

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        bag: torch.Tensor | None = None,
        bag_offsets: torch.Tensor | None = None,
        bag_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # ids: (B, T); lengths: (B,) on the CPU; bag, bag_weights: (total,) n-gram ids and
        # weights of all rows back to back; bag_offsets: (B,)
        if uses_ngrams(self.cfg) and bag is None:
            raise ValueError("this model needs the n-gram bag of each text")
        width = ids.shape[1]
        if self.cfg.encode_padding:  # the notebook's way: every position is read as a token
            lengths = torch.full_like(lengths, width)
        elif self.cfg.fixed_len is not None:
            # a fixed-length batch is padded to fixed_len; positions past the longest text are
            # zeros whatever the encoder does, so it only reads the real width
            ids = ids[:, : int(lengths.max())]  # (B, T') with T' <= fixed_len
        x = self.embedding_dropout(self.embedding(ids))  # (B, T', E)
        lengths = lengths.to(ids.device, non_blocking=True)  # once, not once per layer or mode
        out = self.encoder(x, lengths)  # (B, T', D)
        if out.shape[1] < width:  # back to the fixed width the flatten head expects
            out = nn.functional.pad(out, (0, 0, 0, width - out.shape[1]))  # (B, T, D)
            x = nn.functional.pad(x, (0, 0, 0, width - x.shape[1]))  # (B, T, E)
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
            bag_vector = self.bag(bag, bag_offsets, per_sample_weights=bag_weights)  # (B, G)
            parts.append(self.embedding_dropout(bag_vector))
        pooled = torch.cat(parts, dim=1)  # (B, P)
        h = pooled
        for i, layer in enumerate(self.head):
            h = layer(h)  # (B, head_hidden)
            if i == 0 and self.cfg.head_concat_pooled:
                h = torch.cat([h, pooled], dim=1)  # (B, head_hidden + P)
        logits = self.projection(h)  # (B, num_classes)
        if self.ngram_logits is not None:
            logits = logits + self.ngram_logits(bag, bag_offsets, per_sample_weights=bag_weights)
        return logits


class Ensemble(nn.Module):
    """Models of one config trained from different seeds (train.ensemble); a batch's class
    probabilities are their mean, returned as log-probabilities (B, num_classes) so that
    argmax and cross-entropy read them like logits."""

    def __init__(self, members: list[TextClassifier]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.cfg = members[0].cfg
        self.inputs = members[0].inputs

    def classify(self, batch: Batch) -> torch.Tensor:
        probs = torch.stack([m.classify(batch).float().softmax(dim=1) for m in self.members])
        return probs.mean(dim=0).clamp_min(1e-12).log()  # (B, num_classes)
