"""The prepare step: raw splits -> tokens (once) -> vocabulary -> train/val/test shards + stats."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from agnews.atomic import atomic_dir, write_json, write_text
from agnews.data import check_split, read_raw
from agnews.errors import DataError
from agnews.shards import save_shard, shard_from_ids, stratified_split
from agnews.text import tokenize_all
from agnews.vocab import build_vocab

log = logging.getLogger(__name__)

COVERAGE_LENGTHS = (40, 50, 60, 70)  # the notebook's table of "share of texts with <= N words"
SPLIT_NAMES = ("train", "val", "test")


def length_stats(lengths: np.ndarray) -> dict[str, Any]:
    """Coverage table and summary of word counts per text (bos/eos excluded, as the notebook)."""
    return {
        "coverage": {f"le_{n}": round(float(np.mean(lengths <= n)), 4) for n in COVERAGE_LENGTHS},
        "mean": round(float(lengths.mean()), 2),
        "median": float(np.median(lengths)),
        "max": int(lengths.max()),
    }


def length_histogram_csv(lengths: np.ndarray) -> str:
    counts = np.bincount(lengths)
    rows = ["length,count"] + [f"{n},{c}" for n, c in enumerate(counts) if c]
    return "\n".join(rows) + "\n"


def prepare_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
    length_hist_path: str | Path,
    min_count: int,
    val_size: float,
    seed: int,
    num_workers: int,
) -> dict[str, Any]:
    """Tokenize raw train/test once, carve validation from train, build the vocabulary on the
    remaining train texts only, and write vocab.json + {train,val,test}.npz into `out_dir`.

    Texts that are empty after preprocessing are dropped (their count is logged and reported in
    the metrics as `dropped_empty`); a split left without rows or without a class is an error.
    """
    raw = {split: read_raw(raw_dir, split) for split in ("train", "test")}
    texts = [e.text for e in raw["train"]] + [e.text for e in raw["test"]]
    tokens = tokenize_all(texts, num_workers=num_workers)
    n_train = len(raw["train"])
    split_tokens = {"train": tokens[:n_train], "test": tokens[n_train:]}

    kept: dict[str, tuple[list[list[str]], np.ndarray]] = {}
    dropped = {}
    for split in ("train", "test"):
        keep = [i for i, t in enumerate(split_tokens[split]) if t]
        dropped[split] = len(split_tokens[split]) - len(keep)
        if dropped[split]:
            log.warning("%s: dropped %d text(s) empty after preprocessing", split, dropped[split])
        labels = np.array([raw[split][i].label for i in keep], dtype=np.int64)
        kept[split] = ([split_tokens[split][i] for i in keep], labels)
        where = f"{Path(raw_dir) / split}.jsonl"
        check_split([raw[split][i] for i in keep], f"{where} (after dropping empty texts)")

    train_tokens, train_labels = kept["train"]
    train_idx, val_idx = stratified_split(train_labels, val_size, seed)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise DataError(
            f"prepare.val_size={val_size} leaves {len(train_idx)} train and {len(val_idx)} "
            f"validation rows out of {len(train_labels)}"
        )
    parts = {
        "train": ([train_tokens[i] for i in train_idx], train_labels[train_idx]),
        "val": ([train_tokens[i] for i in val_idx], train_labels[val_idx]),
        "test": kept["test"],
    }
    vocab = build_vocab(parts["train"][0], min_count)

    with atomic_dir(out_dir) as tmp:
        vocab.save(tmp / "vocab.json")
        for split, (toks, labels) in parts.items():
            save_shard(
                tmp / f"{split}.npz", shard_from_ids([vocab.encode(t) for t in toks], labels)
            )

    train_lengths = np.array([len(t) for t in parts["train"][0]], dtype=np.int64)
    known = Counter()
    for toks in parts["train"][0]:
        known.update(w in vocab.stoi for w in toks)
    metrics = {
        "vocab_size": len(vocab),
        "rows": {split: len(labels) for split, (_, labels) in parts.items()},
        "dropped_empty": dropped,
        "train_token_coverage": round(known[True] / max(1, sum(known.values())), 4),
        "train_length": length_stats(train_lengths),
    }
    write_json(metrics_path, metrics)
    write_text(length_hist_path, length_histogram_csv(train_lengths))
    log.info("prepare: %s", json.dumps(metrics))
    return metrics
