"""The prepare step: raw splits -> tokens (once) -> vocabulary -> train/val/test shards + stats."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agnews.atomic import atomic_dir, write_json, write_text
from agnews.data.raw import check_split, read_raw
from agnews.data.shards import save_shard, shard_from_ids, stratified_split
from agnews.data.text import tokenize_all
from agnews.data.vocab import SPECIALS, build_ngram_vocab, build_vocab
from agnews.errors import DataError
from agnews.provenance import raw_digest

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


@dataclass(frozen=True)
class Splits:
    """Tokenized train/val/test texts with their labels, and the texts dropped as empty."""

    tokens: dict[str, list[list[str]]]  # split -> one token list per text
    texts: dict[str, list[str]]  # split -> the raw text of each row
    labels: dict[str, np.ndarray]  # split -> (N,) int64
    rows: dict[str, np.ndarray]  # split -> (N,) int64 each text's row in its raw split
    dropped_empty: dict[str, int]  # raw split (train, test) -> texts dropped


def split_rows(raw_dir: str | Path, val_size: float, seed: int, num_workers: int) -> Splits:
    """Tokenize the raw splits once, drop texts left empty, and carve the stratified validation
    split out of train. The one place the pipeline's rows are decided: prepare builds its shards
    from it and the linear peers (agnews.experiments.peers) score exactly the same rows."""
    raw = {split: read_raw(raw_dir, split) for split in ("train", "test")}
    texts = [e.text for e in raw["train"]] + [e.text for e in raw["test"]]
    tokens = tokenize_all(texts, num_workers=num_workers)
    n_train = len(raw["train"])
    split_tokens = {"train": tokens[:n_train], "test": tokens[n_train:]}

    kept: dict[str, tuple[list[list[str]], np.ndarray]] = {}
    kept_texts: dict[str, list[str]] = {}
    kept_rows: dict[str, np.ndarray] = {}
    dropped = {}
    for split in ("train", "test"):
        keep = [i for i, t in enumerate(split_tokens[split]) if t]
        dropped[split] = len(split_tokens[split]) - len(keep)
        if dropped[split]:
            log.warning("%s: dropped %d text(s) empty after preprocessing", split, dropped[split])
        labels = np.array([raw[split][i].label for i in keep], dtype=np.int64)
        kept[split] = ([split_tokens[split][i] for i in keep], labels)
        kept_texts[split] = [raw[split][i].text for i in keep]
        kept_rows[split] = np.asarray(keep, dtype=np.int64)
        where = f"{Path(raw_dir) / split}.jsonl"
        check_split([raw[split][i] for i in keep], f"{where} (after dropping empty texts)")

    train_tokens, train_labels = kept["train"]
    train_idx, val_idx = stratified_split(train_labels, val_size, seed)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise DataError(
            f"prepare.val_size={val_size} leaves {len(train_idx)} train and {len(val_idx)} "
            f"validation rows out of {len(train_labels)}"
        )
    return Splits(
        tokens={
            "train": [train_tokens[i] for i in train_idx],
            "val": [train_tokens[i] for i in val_idx],
            "test": kept["test"][0],
        },
        texts={
            "train": [kept_texts["train"][i] for i in train_idx],
            "val": [kept_texts["train"][i] for i in val_idx],
            "test": kept_texts["test"],
        },
        labels={
            "train": train_labels[train_idx],
            "val": train_labels[val_idx],
            "test": kept["test"][1],
        },
        rows={
            "train": kept_rows["train"][train_idx],
            "val": kept_rows["train"][val_idx],
            "test": kept_rows["test"],
        },
        dropped_empty=dropped,
    )


def prepare_dataset(
    raw_dir: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
    length_hist_path: str | Path,
    min_count: int,
    val_size: float,
    seed: int,
    num_workers: int,
    ngrams: int = 0,
    ngram_min_count: int = 1,
) -> dict[str, Any]:
    """Tokenize raw train/test once, carve validation from train, build the vocabulary on the
    remaining train texts only, and write vocab.json + {train,val,test}.npz into `out_dir`
    (with `ngrams` >= 1 also ngrams.json and each text's n-gram ids in the shards).

    Texts that are empty after preprocessing are dropped (their count is logged and reported in
    the metrics as `dropped_empty`); a split left without rows or without a class is an error,
    and so is a vocabulary threshold that keeps no word at all.
    """
    splits = split_rows(raw_dir, val_size, seed, num_workers)
    train_tokens = splits.tokens["train"]
    vocab = build_vocab(train_tokens, min_count)
    if len(vocab) == len(SPECIALS):
        top = max(Counter(w for t in train_tokens for w in t).values())
        raise DataError(
            f"prepare.min_count={min_count} keeps no word: the most frequent training word is "
            f"seen {top} times, and only words seen more than min_count times are kept; lower it"
        )
    bag_vocab = build_ngram_vocab(train_tokens, ngrams, ngram_min_count) if ngrams else None
    if bag_vocab is not None and len(bag_vocab) == 0:
        raise DataError(f"prepare.ngram_min_count={ngram_min_count} keeps no n-gram; lower it")

    with atomic_dir(out_dir) as tmp:
        vocab.save(tmp / "vocab.json")
        if bag_vocab is not None:
            bag_vocab.save(tmp / "ngrams.json")
        for split in SPLIT_NAMES:
            toks = splits.tokens[split]
            bags = [bag_vocab.encode(t) for t in toks] if bag_vocab is not None else None
            shard = shard_from_ids([vocab.encode(t) for t in toks], splits.labels[split], bags)
            shard = dataclasses.replace(  # binds the shard to its vocabularies
                shard,
                rows=splits.rows[split],
                vocab_sha256=vocab.digest,
                ngram_sha256=bag_vocab.digest if bag_vocab is not None else None,
            )
            save_shard(tmp / f"{split}.npz", shard)

    train_lengths = np.array([len(t) for t in train_tokens], dtype=np.int64)
    known = Counter()
    for toks in train_tokens:
        known.update(w in vocab.stoi for w in toks)
    coverage = known[True] / max(1, sum(known.values()))
    if coverage < 0.5:
        log.warning(
            "prepare.min_count=%d: the vocabulary covers only %.0f%% of training words",
            min_count,
            100 * coverage,
        )
    metrics = {
        "vocab_size": len(vocab),
        "ngram_vocab_size": len(bag_vocab) if bag_vocab is not None else 0,
        "rows": {split: len(splits.labels[split]) for split in SPLIT_NAMES},
        "raw_digest": raw_digest(raw_dir),  # the rows themselves (agnews.provenance)
        "dropped_empty": splits.dropped_empty,
        "train_token_coverage": round(coverage, 4),
        "train_length": length_stats(train_lengths),
    }
    write_json(metrics_path, metrics)
    write_text(length_hist_path, length_histogram_csv(train_lengths))
    log.info("prepare: %s", json.dumps(metrics))
    return metrics
