import numpy as np
import pytest

from agnews.data.shards import load_shard, save_shard, shard_from_ids, stratified_split
from agnews.errors import DataError


def _shard():
    ids = [np.array([2, 5, 3], np.int32), np.array([2, 6, 7, 8, 3], np.int32), np.array([2, 3])]
    return shard_from_ids(ids, [0, 3, 1])


def test_round_trip(tmp_path):
    shard = _shard()
    save_shard(tmp_path / "s.npz", shard)
    back = load_shard(tmp_path / "s.npz")
    for field in ("tokens", "offsets", "labels"):
        np.testing.assert_array_equal(getattr(back, field), getattr(shard, field))
    assert back.lengths.tolist() == [3, 5, 2]
    assert back.text_ids(1).tolist() == [2, 6, 7, 8, 3]


def test_subset_keeps_texts_and_labels_together():
    sub = _shard().subset(np.array([2, 0]))
    assert sub.text_ids(0).tolist() == [2, 3] and sub.text_ids(1).tolist() == [2, 5, 3]
    assert sub.labels.tolist() == [1, 0]


def test_subset_carries_the_ngram_bags_of_its_texts():
    ids = [np.array([2, 5, 3], np.int32), np.array([2, 6, 3], np.int32), np.array([2, 3])]
    bags = [
        (np.array([1, 4], np.int32), np.array([0.5, 0.5], np.float32)),
        (np.array([7], np.int32), np.array([1.0], np.float32)),
        (np.array([], np.int32), np.array([], np.float32)),
    ]
    sub = shard_from_ids(ids, [0, 3, 1], bags).subset(np.array([1, 0]))
    assert sub.bag is not None
    got = [sub.bag_ids(i) for i in range(2)]
    assert [g[0].tolist() for g in got] == [[7], [1, 4]]
    assert [g[1].tolist() for g in got] == [[1.0], [0.5, 0.5]]
    assert sub.labels.tolist() == [3, 0]


def test_missing_and_corrupt_shards_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="missing; run the prepare stage"):
        load_shard(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"bad\.npz: not a valid shard"):
        load_shard(tmp_path / "bad.npz")


def test_stratified_split_is_seeded_disjoint_and_proportional():
    labels = np.repeat([0, 1, 2, 3], [100, 50, 30, 20])
    train, val = stratified_split(labels, 0.2, seed=7)
    assert len(np.intersect1d(train, val)) == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(200))
    assert np.bincount(labels[val]).tolist() == [20, 10, 6, 4]
    again = stratified_split(labels, 0.2, seed=7)
    np.testing.assert_array_equal(val, again[1])
    other = stratified_split(labels, 0.2, seed=8)
    assert not np.array_equal(val, other[1])


@pytest.mark.parametrize("offsets", [[1, 2, 3], [0, 2, 2], [0, 3, 2], [0, 2]])
def test_ngram_offsets_must_partition_the_ngram_array(offsets):
    from agnews.data.shards import Shard

    with pytest.raises(DataError, match="n-gram offsets do not partition the n-gram array"):
        Shard(
            np.array([2, 3, 2, 3], np.int32),
            np.array([0, 2, 4]),
            np.array([0, 1]),
            np.array([5, 6, 7], np.int32),
            np.array(offsets),
            np.ones(3, np.float32),
        )
