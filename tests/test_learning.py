"""Tests that tell right from wrong: a small model must learn the real sample, predictions must
come back in row order, the checkpoint must be the best validation point, batches must be
shuffled. Each of these caught a planted one-line bug that every other test let through."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import evaluate_checkpoint
from torch import nn

import agnews.model.loop as loop
import agnews.model.training as training
from agnews.data.batching import InputSpec
from agnews.data.shards import shard_from_ids
from agnews.model.checkpoints import load_model
from agnews.model.inference import predict_shard

# A model small enough to train in seconds that still reads the words: on 320 real texts it
# reaches ~0.8 validation accuracy (chance is 0.25).
LEARNS_MODEL = {"cell": "gru", "pooling": "mean", "embedding_dim": 32, "hidden_size": 32}
LEARNS_TRAIN = {"epochs": 6, "lr": 0.01, "batch_size": 16}


@pytest.fixture(scope="module")
def learned(prepared_dir, tmp_path_factory):
    """(summary, test metrics) of the small model trained on the real sample."""
    from helpers import TINY, committed_params, override

    from agnews.config import config_from_dict

    changes = {
        **TINY,
        **{f"model.{k}": v for k, v in LEARNS_MODEL.items()},
        **{f"train.{k}": v for k, v in LEARNS_TRAIN.items()},
        "model.head_hidden": 32,
    }
    cfg = config_from_dict(override(committed_params(), changes))
    out = tmp_path_factory.mktemp("learned")
    summary = training.train_model(prepared_dir, out / "m.pt", out / "live", cfg.model, cfg.train)
    metrics = evaluate_checkpoint(out / "m.pt", prepared_dir, out / "t.json", out / "c.csv", 64)
    return summary, metrics


def test_a_small_model_learns_the_real_sample(learned):
    summary, metrics = learned
    assert summary["best_val_acc"] >= 0.6  # chance: 0.25
    assert metrics["accuracy"] >= 0.5 and metrics["macro_f1"] >= 0.45


class _ReadsFirstWord(nn.Module):
    """A stand-in model: class = (first word id) % 4, so the right answer of every row is known."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.inputs = InputSpec(pad_id=0, max_len=256, fixed_len=None)

    def classify(self, batch) -> torch.Tensor:
        return nn.functional.one_hot(batch.ids[:, 1] % 4, 4).float() + self.weight


def test_predictions_come_back_in_row_order():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 40, size=500)  # lengths vary, so evaluation reorders by length
    first = rng.integers(4, 1000, size=500)
    ids = [
        np.array([2, f, *([5] * (n - 3)), 3], dtype=np.int32)
        for f, n in zip(first, lengths, strict=True)
    ]
    labels = first % 4
    shard = shard_from_ids(ids, labels)
    preds, _ = predict_shard(_ReadsFirstWord(), shard, batch_size=32)
    np.testing.assert_array_equal(preds, labels)


def test_the_checkpoint_holds_the_best_validation_point(
    tmp_path, prepared_dir, tiny_config, monkeypatch
):
    """Scripted validation accuracies: the 2nd of 6 passes is the best; the checkpoint must hold
    the weights of that moment, not the last ones."""
    scripted = iter([0.30, 0.70, 0.50, 0.70, 0.60, 0.65])
    weights_at = []

    def fake_validate(model, val, batch_size):
        weights_at.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scripted), 1.0

    monkeypatch.setattr(loop, "validate", fake_validate)
    cfg = dataclasses.replace(tiny_config.train, epochs=3, evals_per_epoch=2, lr=0.01)
    out = tmp_path / "run"
    summary = training.train_model(prepared_dir, out / "m.pt", out / "live", tiny_config.model, cfg)
    assert len(weights_at) == 6
    assert summary["best_val_acc"] == 0.7 and summary["best_epoch"] == 1.0  # ties keep the first
    model, payload, _ = load_model(out / "m.pt", prepared_dir, torch.device("cpu"))
    saved = model.state_dict()
    for key, tensor in weights_at[1].items():
        assert torch.equal(saved[key], tensor), key
    assert not all(torch.equal(saved[k], t) for k, t in weights_at[-1].items())
    assert payload["best"]["best_step"] == summary["best_step"]


def test_training_batches_are_shuffled_every_epoch(
    tmp_path, prepared_dir, tiny_config, monkeypatch
):
    seen: list[np.ndarray] = []
    original = loop.make_batch

    def spy(shard, index, inputs):
        seen.append(np.array(index))
        return original(shard, index, inputs)

    monkeypatch.setattr(loop, "make_batch", spy)
    cfg = dataclasses.replace(tiny_config.train, epochs=2, bucketing=False)
    training.train_model(prepared_dir, tmp_path / "m.pt", tmp_path / "live", tiny_config.model, cfg)
    n = len(seen) // 2
    epoch1, epoch2 = np.concatenate(seen[:n]), np.concatenate(seen[n:])
    assert sorted(epoch1.tolist()) == sorted(epoch2.tolist()) == list(range(len(epoch1)))
    assert not np.array_equal(epoch1, np.sort(epoch1))  # not in file order
    assert not np.array_equal(epoch1, epoch2)  # a new order each epoch
    # the same holds with length bucketing (the default)
    seen.clear()
    cfg = dataclasses.replace(cfg, bucketing=True)
    training.train_model(prepared_dir, tmp_path / "b.pt", tmp_path / "b", tiny_config.model, cfg)
    epoch1, epoch2 = np.concatenate(seen[:n]), np.concatenate(seen[n:])
    assert not np.array_equal(epoch1, np.sort(epoch1)) and not np.array_equal(epoch1, epoch2)
