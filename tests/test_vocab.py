import random

import numpy as np
import pytest

from agnews.data.vocab import SPECIALS, Vocab, build_vocab
from agnews.errors import DataError


def _texts():
    return [["b"] * 3 + ["a"] * 3 + ["c"] * 5 + ["d"] * 2 + ["rare"]]


def test_specials_come_first_with_fixed_ids():
    v = build_vocab(_texts(), min_count=0)
    assert v.itos[:4] == SPECIALS
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)


def test_threshold_is_strictly_more_than_min_count():
    v = build_vocab(_texts(), min_count=2)
    assert v.itos[4:] == ("c", "a", "b")  # 5, then the 3s alphabetically; d (2) is not > 2
    assert "d" not in v.stoi and "rare" not in v.stoi


def test_order_is_frequency_then_alphabetical_and_independent_of_input_order():
    words = [w for t in _texts() for w in t]
    shuffled = []
    for seed in range(5):
        random.Random(seed).shuffle(words)
        shuffled.append(build_vocab([list(words)], min_count=0).itos)
    assert len(set(shuffled)) == 1
    assert shuffled[0][4:] == ("c", "a", "b", "d", "rare")


def test_encode_wraps_in_bos_eos_and_maps_unknown_words():
    v = build_vocab(_texts(), min_count=2)
    ids = v.encode(["c", "zzz", "a"])
    assert ids.dtype == np.int32
    assert ids.tolist() == [v.bos_id, v.stoi["c"], v.unk_id, v.stoi["a"], v.eos_id]


def test_save_load_round_trip(tmp_path):
    v = build_vocab(_texts(), min_count=0)
    v.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == v


def test_corrupt_vocab_file_is_a_clear_error(tmp_path):
    (tmp_path / "vocab.json").write_text("{not json")
    with pytest.raises(DataError, match=r"vocab\.json: cannot read vocabulary"):
        Vocab.load(tmp_path / "vocab.json")


def test_ngram_vocab_weights_are_sublinear_tf_idf_normalised():
    import math

    from agnews.data.vocab import build_ngram_vocab

    texts = [["a", "b", "a", "c"], ["b", "c"], ["a", "d", "d"]]
    v = build_ngram_vocab(texts, n=2, min_count=0)
    assert v.itos[:2] == ("a", "b") and "a b" in v.stoi and "d d" in v.stoi
    # idf = ln((1 + N) / (1 + df)) + 1, N = 3 texts; "a" is in 2 texts, "d d" in 1
    assert v.idf[v.stoi["a"]] == math.log(4 / 3) + 1
    assert v.idf[v.stoi["d d"]] == math.log(4 / 2) + 1
    ids, weights = v.encode(["a", "d", "d"])
    raw = {  # (1 + ln tf) * idf before normalising
        "a": 1 * (math.log(4 / 3) + 1),
        "d": (1 + math.log(2)) * (math.log(4 / 2) + 1),
        "a d": math.log(4 / 2) + 1,
        "d d": math.log(4 / 2) + 1,
    }
    norm = math.sqrt(sum(x * x for x in raw.values()))
    got = {v.itos[i]: float(w) for i, w in zip(ids, weights, strict=True)}
    assert got.keys() == raw.keys()
    assert all(abs(got[g] - raw[g] / norm) < 1e-6 for g in raw)
    assert list(ids) == sorted(ids)
    unknown_ids, unknown_weights = v.encode(["zzz", "qqq"])
    assert len(unknown_ids) == len(unknown_weights) == 0


def test_ngram_vocab_round_trips_and_its_digest_covers_the_idf(tmp_path):
    from agnews.data.vocab import NgramVocab, build_ngram_vocab

    v = build_ngram_vocab([["a", "b"], ["b", "c"]], n=2, min_count=0)
    v.save(tmp_path / "ngrams.json")
    back = NgramVocab.load(tmp_path / "ngrams.json")
    assert back == v and back.digest == v.digest
    other = NgramVocab(v.itos, tuple(x + 1e-9 for x in v.idf), v.n)
    assert other.digest != v.digest
