"""The prepare step on the real sample: deterministic, worker-count independent, documented."""

import hashlib
import json

import numpy as np
from helpers import SAMPLE_DIR, download_and_prepare

from agnews.data.prepare import length_stats
from agnews.data.shards import load_shard
from agnews.data.vocab import Vocab


def _prepare(tmp_path, name, workers=1, min_count=1):
    root = tmp_path / name
    return root, download_and_prepare(SAMPLE_DIR, root, min_count, 0.25, 3, workers)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_outputs_are_identical_across_runs_and_worker_counts(tmp_path):
    a, _ = _prepare(tmp_path, "a", workers=1)
    b, _ = _prepare(tmp_path, "b", workers=2)
    assert _digest(a / "out") == _digest(b / "out")
    assert (a / "m.json").read_text() == (b / "m.json").read_text()


def test_splits_vocab_and_metrics(tmp_path):
    root, metrics = _prepare(tmp_path, "a", min_count=2)
    assert metrics["rows"] == {"train": 300, "val": 100, "test": 200}
    assert json.loads((root / "m.json").read_text()) == metrics
    vocab = Vocab.load(root / "out" / "vocab.json")
    assert metrics["vocab_size"] == len(vocab)
    val = load_shard(root / "out" / "val.npz")
    assert np.bincount(val.labels).tolist() == [25, 25, 25, 25]  # stratified
    test = load_shard(root / "out" / "test.npz")
    assert all(test.text_ids(i)[0] == vocab.bos_id for i in range(len(test)))
    assert all(test.text_ids(i)[-1] == vocab.eos_id for i in range(len(test)))
    assert set(metrics["train_length"]["coverage"]) == {"le_40", "le_50", "le_60", "le_70"}
    hist = (root / "h.csv").read_text().splitlines()
    assert hist[0] == "length,count"
    assert sum(int(r.split(",")[1]) for r in hist[1:]) == 300


def test_length_stats_coverage():
    stats = length_stats(np.array([10, 40, 45, 55, 65, 80]))
    assert stats["coverage"] == {"le_40": 0.3333, "le_50": 0.5, "le_60": 0.6667, "le_70": 0.8333}
    assert stats["max"] == 80 and stats["median"] == 50.0 and stats["mean"] == 49.17


def test_texts_empty_after_preprocessing_are_dropped_and_counted(tmp_path):
    import gzip

    rows = [
        '"1","World news","about the world"',
        '"2","!!!","..."',  # nothing left after stripping punctuation
        '"3","Business","markets"',
        '"4","Tech","chips"',
        '"1","World","again"',
        '"2","Sports","match"',
        '"3","Business","deal"',
        '"4","Tech","code"',
    ]
    data = tmp_path / "ag"
    data.mkdir()
    body = ("\n".join(rows) + '\n"2","Sports","win"\n"2","More sports","goal"\n').encode()
    for split in ("train", "test"):
        (data / f"{split}.csv.gz").write_bytes(gzip.compress(body))
    metrics = download_and_prepare(data, tmp_path, min_count=0, val_size=0.5, seed=0)
    assert metrics["dropped_empty"] == {"train": 1, "test": 1}
    assert sum(metrics["rows"][s] for s in ("train", "val")) == 9
    assert metrics["rows"]["test"] == 9
    test = load_shard(tmp_path / "out" / "test.npz")
    assert test.lengths.min() >= 3  # bos, at least one word, eos
    # each kept text's raw row is recorded: row 1 ("!!!") was dropped
    assert test.raw_rows().tolist() == [0, 2, 3, 4, 5, 6, 7, 8, 9]
    train = load_shard(tmp_path / "out" / "train.npz")
    val = load_shard(tmp_path / "out" / "val.npz")
    assert sorted([*train.raw_rows(), *val.raw_rows()]) == [0, 2, 3, 4, 5, 6, 7, 8, 9]
    assert np.all(np.diff(val.raw_rows()) > 0)  # in raw order


def test_a_threshold_that_keeps_no_word_is_refused(tmp_path):
    import pytest

    from agnews.errors import DataError

    with pytest.raises(
        DataError, match=r"prepare\.min_count=100000 keeps no word.* seen \d+ times"
    ):
        _prepare(tmp_path, "a", min_count=100_000)
    assert not (tmp_path / "a" / "out").exists()  # nothing half-written


def test_ngrams_are_prepared_beside_the_words(tmp_path):
    from agnews.data.vocab import NgramVocab

    root = tmp_path / "n"
    metrics = download_and_prepare(SAMPLE_DIR, root, 1, 0.25, 3, ngrams=2, ngram_min_count=1)
    ngrams = NgramVocab.load(root / "out" / "ngrams.json")
    assert metrics["ngram_vocab_size"] == len(ngrams) > 0
    assert any(" " in g for g in ngrams.itos) and any(" " not in g for g in ngrams.itos)
    train = load_shard(root / "out" / "train.npz")
    assert train.bag is not None and len(train.bag_offsets) == len(train) + 1
    assert train.bag.max() < len(ngrams)
