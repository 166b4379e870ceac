import numpy as np

from agnews.data.batching import InputSpec, eval_order, make_batch, train_order
from agnews.data.shards import shard_from_ids


def _shard(lengths):
    ids = [np.arange(10, 10 + n, dtype=np.int32) for n in lengths]
    return shard_from_ids(ids, [i % 4 for i in range(len(lengths))])


def test_batch_pads_to_longest_and_truncates_to_max_len():
    shard = _shard([3, 6, 9])
    b = make_batch(shard, np.array([0, 1, 2]), InputSpec(pad_id=0, max_len=7, fixed_len=None))
    assert b.ids.shape == (3, 7)
    assert b.lengths.tolist() == [3, 6, 7]
    assert b.ids[0].tolist() == [10, 11, 12, 0, 0, 0, 0]
    assert b.ids[2].tolist() == list(range(10, 17))
    assert b.labels.tolist() == [0, 1, 2]


def test_fixed_len_gives_constant_width():
    shard = _shard([3, 6])
    b = make_batch(shard, np.array([0]), InputSpec(pad_id=0, max_len=256, fixed_len=5))
    assert b.ids.shape == (1, 5) and b.lengths.tolist() == [3]
    b = make_batch(shard, np.array([1]), InputSpec(pad_id=0, max_len=256, fixed_len=5))
    assert b.ids[0].tolist() == [10, 11, 12, 13, 14] and b.lengths.tolist() == [5]


def test_train_order_covers_every_row_once_and_is_seeded():
    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    a = train_order(lengths, 32, np.random.default_rng(1), bucketing=True, chunk=5)
    b = train_order(lengths, 32, np.random.default_rng(1), bucketing=True, chunk=5)
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_bucketing_cuts_padding():
    lengths = np.random.default_rng(0).integers(3, 120, size=4000)

    def padded(batches):
        return sum(len(ix) * lengths[ix].max() for ix in batches) / lengths.sum()

    plain = train_order(lengths, 32, np.random.default_rng(1), bucketing=False, chunk=50)
    bucketed = train_order(lengths, 32, np.random.default_rng(1), bucketing=True, chunk=50)
    assert padded(bucketed) < 1.1 < 1.5 < padded(plain)


def test_eval_order_sorts_by_length():
    lengths = np.array([5, 2, 9, 2, 7])
    order = np.concatenate(eval_order(lengths, 2))
    assert lengths[order].tolist() == sorted(lengths.tolist())


def test_word_dropout_hits_only_real_words_at_the_given_rate():
    import torch

    from agnews.data.batching import word_dropout

    shard = _shard([40] * 200)
    batch = make_batch(shard, np.arange(200), InputSpec(pad_id=0, max_len=256, fixed_len=None))
    torch.manual_seed(0)
    out = word_dropout(batch, 0.3, unk_id=1)
    changed = out.ids != batch.ids
    assert not changed[:, 0].any() and not changed[:, -1].any()  # bos and eos kept
    assert (out.ids[changed] == 1).all()
    assert abs(changed.float().mean().item() / (38 / 40) - 0.3) < 0.02
    assert word_dropout(batch, 0.0, unk_id=1) is batch
    short = make_batch(
        _shard([3, 8]), np.array([0, 1]), InputSpec(pad_id=0, max_len=256, fixed_len=None)
    )
    assert not (word_dropout(short, 0.99, unk_id=1).ids[0, 3:] == 1).any()  # padding kept


def test_orders_keep_ties_in_a_stable_order():
    """Equal lengths keep their original (or shuffled) order: numpy's default argsort is not
    stable for long arrays, and the batch order must not depend on the sort algorithm."""
    lengths = np.random.default_rng(0).integers(0, 3, 500)
    expected = sorted(range(500), key=lambda i: lengths[i])  # Python's sort is stable
    assert np.concatenate(eval_order(lengths, 64)).tolist() == expected

    batches = train_order(lengths, 8, np.random.default_rng(5), bucketing=True, chunk=10)
    rng = np.random.default_rng(5)
    perm = rng.permutation(500)
    pieces = [perm[i : i + 80] for i in range(0, 500, 80)]
    stable = np.concatenate([p[sorted(range(len(p)), key=lambda i: lengths[p[i]])] for p in pieces])
    cut = [stable[i : i + 8] for i in range(0, 500, 8)]
    expected_batches = [cut[i] for i in rng.permutation(len(cut))]
    assert [b.tolist() for b in batches] == [b.tolist() for b in expected_batches]


def test_batch_carries_each_rows_ngram_ids_and_weights():
    ids = [np.arange(10, 10 + n, dtype=np.int32) for n in (3, 4, 2)]
    bags = [
        (np.array([1, 2], np.int32), np.array([0.25, 0.75], np.float32)),
        (np.array([5], np.int32), np.array([1.0], np.float32)),
        (np.array([7, 8, 9], np.int32), np.array([0.1, 0.2, 0.3], np.float32)),
    ]
    shard = shard_from_ids(ids, [0, 1, 2], bags)
    batch = make_batch(shard, np.array([2, 0]), InputSpec(pad_id=0, max_len=256, fixed_len=None))
    assert batch.bag.tolist() == [7, 8, 9, 1, 2] and batch.bag_offsets.tolist() == [0, 3]
    np.testing.assert_allclose(batch.bag_weights.numpy(), [0.1, 0.2, 0.3, 0.25, 0.75])
