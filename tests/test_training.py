"""Training and evaluation end to end in Python on the prepared real sample (tiny model)."""

import dataclasses
import hashlib
import json

import pytest
import torch

from agnews.checkpoints import load_checkpoint
from agnews.config import TrainConfig
from agnews.errors import TrainingError
from agnews.evaluation import evaluate_checkpoint
from agnews.models import TextClassifier
from agnews.training import eval_steps, get_lr_factor, train_model


def _train(tmp_path, prepared_dir, cfg, name="run"):
    out = tmp_path / name
    summary = train_model(prepared_dir, out / "model.pt", out / "live", cfg.model, cfg.train)
    return out, summary


def test_train_writes_checkpoint_and_dvclive_log(tmp_path, prepared_dir, tiny_config):
    out, summary = _train(tmp_path, prepared_dir, tiny_config)
    assert 0.0 <= summary["best_val_acc"] <= 1.0
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["model_config"]["hidden_size"] == 16
    assert payload["best"]["best_val_acc"] == summary["best_val_acc"]
    live = json.loads((out / "live" / "metrics.json").read_text())
    assert live["best_val_acc"] == summary["best_val_acc"]
    metrics = out / "live" / "plots" / "metrics"
    for tsv in ("train/loss.tsv", "train/epoch_loss.tsv", "val/loss.tsv", "val/acc.tsv"):
        assert (metrics / tsv).is_file(), tsv
    assert len((metrics / "val" / "acc.tsv").read_text().splitlines()) == 1 + 2  # 2 evals/epoch
    assert (out / "live" / "plots" / "images" / "grad_flow" / "1.png").is_file()


def test_same_seed_same_checkpoint_and_metrics_on_cpu(tmp_path, prepared_dir, tiny_config):
    runs = []
    for name in ("a", "b"):
        out, summary = _train(tmp_path, prepared_dir, tiny_config, name)
        state = torch.load(out / "model.pt", weights_only=True)["model_state"]
        digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in state.values())).hexdigest()
        m = evaluate_checkpoint(out / "model.pt", prepared_dir, out / "m.json", out / "c.csv", 64)
        runs.append((digest, summary["best_val_acc"], m["accuracy"], (out / "c.csv").read_bytes()))
    assert runs[0] == runs[1]


def test_checkpoint_rebuilds_its_own_model(tmp_path, prepared_dir, tiny_config):
    cfg = dataclasses.replace(tiny_config.model, cell="gru", pooling="mean+last")
    out = tmp_path / "ck"
    train_model(prepared_dir, out / "model.pt", out / "live", cfg, tiny_config.train)
    model, payload = load_checkpoint(out / "model.pt", torch.device("cpu"))
    assert isinstance(model, TextClassifier) and model.cfg == cfg
    assert payload["vocab_size"] == model.embedding.num_embeddings


def test_evaluate_metrics_json(tmp_path, prepared_dir, tiny_config):
    out, _ = _train(tmp_path, prepared_dir, tiny_config)
    m = evaluate_checkpoint(out / "model.pt", prepared_dir, out / "m.json", out / "c.csv", 64)
    assert m["n_test"] == 200
    assert json.loads((out / "m.json").read_text()) == m
    assert set(m["per_class"]) == {"World", "Sports", "Business", "Sci/Tech"}
    assert m["run"]["cell"] == "rnn"
    assert len((out / "c.csv").read_text().splitlines()) == 201


def test_nan_loss_stops_training(tmp_path, prepared_dir, tiny_config, monkeypatch):
    original = TextClassifier.forward

    def poisoned(self, ids, lengths):
        return original(self, ids, lengths) * float("nan")

    monkeypatch.setattr(TextClassifier, "forward", poisoned)
    with pytest.raises(TrainingError, match="loss became nan at epoch 1"):
        _train(tmp_path, prepared_dir, tiny_config)
    assert not (tmp_path / "run" / "model.pt").exists()


def _train_cfg(tiny_config, **kw) -> TrainConfig:
    return dataclasses.replace(tiny_config.train, **kw)


def test_lr_schedules(tiny_config):
    const = _train_cfg(tiny_config, lr_schedule="constant", warmup_steps=0)
    assert get_lr_factor(50, 100, const) == 1.0
    lin = _train_cfg(tiny_config, lr_schedule="linear", warmup_steps=10)
    assert get_lr_factor(0, 110, lin) == 0.1
    assert get_lr_factor(9, 110, lin) == 1.0
    assert get_lr_factor(60, 110, lin) == 0.5
    cos = _train_cfg(tiny_config, lr_schedule="cosine", warmup_steps=0)
    assert get_lr_factor(50, 100, cos) == pytest.approx(0.5)
    assert get_lr_factor(100, 100, cos) == pytest.approx(0.0)


def test_eval_steps_spread_over_the_epoch():
    assert eval_steps(100, 2) == {50, 100}
    assert eval_steps(7, 3) == {3, 5, 7}
    assert eval_steps(2, 5) == {1, 2}
