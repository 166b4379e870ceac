"""The decisive row's mechanisms, each against a hand computation: wide_deep's ensemble averages
its members' probabilities, its wide part adds the TF-IDF-weighted n-gram rows to the logits,
and the batches carry each text's TF-IDF weights from the prepared shard. Each of these was
planted by hand and left every other unit test green: the ensemble returning its first
member's probabilities, the wide part multiplied by zero, the TF-IDF weights dropped from it."""

import dataclasses

import numpy as np
import pytest
import torch

from agnews.data.batching import Batch, InputSpec, make_batch
from agnews.model.classifier import Ensemble, TextClassifier

VOCAB, PAD, BAG = 50, 0, 30
IDS = torch.tensor([[2, 7, 9, 3, 0], [2, 5, 6, 8, 3]])  # (B=2, T=5)
LENGTHS = torch.tensor([4, 5])
BAG_IDS = torch.tensor([3, 4, 9, 3, 7])  # row 0: n-grams 3, 4, 9; row 1: 3, 7
OFFSETS = torch.tensor([0, 3])
WEIGHTS = torch.tensor([0.5, 0.25, 0.8, 0.3, 0.9])


def _batch() -> Batch:
    return Batch(IDS, LENGTHS, torch.tensor([0, 1]), BAG_IDS, OFFSETS, WEIGHTS)


def _wide(tiny_config, seed: int, **changes) -> TextClassifier:
    cfg = dataclasses.replace(
        tiny_config.model, cell="gru", pooling="mean+max", ngram_logits=True, **changes
    )
    torch.manual_seed(seed)
    model = TextClassifier(cfg, VOCAB, InputSpec(PAD, 256, None), bag_size=BAG).eval()
    torch.nn.init.normal_(model.ngram_logits.weight)  # trained weights, not the zero start
    return model


@torch.no_grad()
def test_the_ensemble_is_the_mean_of_its_members_probabilities(tiny_config):
    members = [_wide(tiny_config, seed) for seed in (1, 2, 3)]
    probs = [torch.softmax(m.classify(_batch()), dim=1) for m in members]  # each (B, C)
    by_hand = (probs[0] + probs[1] + probs[2]) / 3
    out = Ensemble(members).classify(_batch())  # log of the mean probabilities
    torch.testing.assert_close(out.exp(), by_hand, atol=1e-6, rtol=1e-5)
    # the members disagree enough that one member alone, or the mean of logits, is not it
    for alone in probs:
        assert (alone - by_hand).abs().max() > 1e-3
    mean_logits = torch.stack([m.classify(_batch()) for m in members]).mean(dim=0)
    assert (torch.softmax(mean_logits, dim=1) - by_hand).abs().max() > 1e-4


@torch.no_grad()
def test_the_wide_part_adds_the_tfidf_weighted_ngram_rows_to_the_logits(tiny_config):
    model = _wide(tiny_config, 1, ngram_dim=4)
    w = model.ngram_logits.weight.clone()  # (BAG, C)
    full = model.classify(_batch())  # (B, C)
    model.ngram_logits.weight.zero_()
    network = model.classify(_batch())  # the deep part alone
    wide = full - network
    expected = torch.stack(
        [0.5 * w[3] + 0.25 * w[4] + 0.8 * w[9], 0.3 * w[3] + 0.9 * w[7]]
    )  # (B, C): each text's n-gram rows, weighted by their TF-IDF, summed
    torch.testing.assert_close(wide, expected, atol=1e-5, rtol=1e-5)
    assert expected.abs().min() > 1e-3  # a part multiplied by zero would not pass


@torch.no_grad()
def test_the_ngram_bag_vector_is_the_tfidf_weighted_sum_of_its_rows(tiny_config):
    model = _wide(tiny_config, 1, ngram_dim=4)
    e = model.bag.weight  # (BAG, G)
    got = model.bag(BAG_IDS, OFFSETS, per_sample_weights=WEIGHTS)
    expected = torch.stack([0.5 * e[3] + 0.25 * e[4] + 0.8 * e[9], 0.3 * e[3] + 0.9 * e[7]])
    torch.testing.assert_close(got, expected)
    # and the classifier reads exactly that vector: other weights, other logits
    other = Batch(IDS, LENGTHS, torch.tensor([0, 1]), BAG_IDS, OFFSETS, torch.ones(5))
    model.ngram_logits.weight.zero_()  # the bag path alone
    assert (model.classify(_batch()) - model.classify(other)).abs().max() > 1e-4


def test_batches_carry_each_texts_tfidf_weights_from_the_shard(prepared_with_ngrams):
    from agnews.data.shards import load_shard
    from agnews.data.vocab import NgramVocab

    shard = load_shard(prepared_with_ngrams / "train.npz")
    vocab = NgramVocab.load(prepared_with_ngrams / "ngrams.json")
    index = np.array([5, 0, 17])
    batch = make_batch(shard, index, InputSpec(PAD, 256, None))
    starts = [*batch.bag_offsets.tolist(), len(batch.bag)]
    for row, i in enumerate(index):
        ids, weights = shard.bag_ids(int(i))
        span = slice(starts[row], starts[row + 1])
        assert batch.bag[span].tolist() == ids.tolist()
        np.testing.assert_array_equal(batch.bag_weights[span].numpy(), weights)
        # TF-IDF: positive, L2-normalised per text
        assert (weights > 0).all() and np.linalg.norm(weights) == pytest.approx(1.0, abs=1e-5)
        assert (ids < len(vocab)).all()
    assert len(set(np.round(batch.bag_weights.numpy(), 5))) > 3


@pytest.fixture(scope="module")
def prepared_with_ngrams(tmp_path_factory):
    from helpers import SAMPLE_DIR, download_and_prepare

    root = tmp_path_factory.mktemp("ngrams")
    download_and_prepare(SAMPLE_DIR, root, 1, 0.2, 0, ngrams=2, ngram_min_count=0)
    return root / "out"
