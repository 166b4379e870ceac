"""Training and evaluation end to end in Python on the prepared real sample (tiny model)."""

import dataclasses
import hashlib
import json
import logging

import pytest
import torch
from helpers import evaluate_checkpoint

from agnews.config import TrainConfig
from agnews.data.batching import InputSpec
from agnews.errors import TrainingError
from agnews.model.checkpoints import load_model
from agnews.model.classifier import TextClassifier, uses_ngrams
from agnews.model.loop import eval_steps
from agnews.model.optimizers import get_lr_factor
from agnews.model.training import train_model
from agnews.runtime import cpu_info


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
    assert live["threads"] == torch.get_num_threads()  # the ladder reports where a run ran
    assert live["amp"] == "off"  # train.amp is false by default
    assert {k: live[k] for k in ("cpu_model", "cpu_capability", "bf16_native")} == cpu_info()
    metrics = out / "live" / "plots" / "metrics"
    for tsv in ("loss/train.tsv", "loss/train_epoch.tsv", "loss/val.tsv", "acc/val.tsv", "lr.tsv"):
        assert (metrics / tsv).is_file(), tsv
    assert len((metrics / "acc" / "val.tsv").read_text().splitlines()) == 1 + 2  # 2 evals/epoch
    assert (out / "live" / "plots" / "images" / "grad_flow.png").is_file()
    # no metric is named like a params section: `dvc exp show` would rename the param's column
    assert not {"train", "model", "prepare", "data", "evaluate", "paths"} & set(live)


def test_same_seed_same_checkpoint_and_metrics_on_cpu(tmp_path, prepared_dir, tiny_config):
    """Two runs: byte-identical checkpoint file, metrics JSON and confusion rows."""
    digests = []
    for name in ("a", "b"):
        out, _ = _train(tmp_path, prepared_dir, tiny_config, name)
        evaluate_checkpoint(out / "model.pt", prepared_dir, out / "m.json", out / "c.csv", 64)
        digests.append(
            [
                hashlib.sha256((out / f).read_bytes()).hexdigest()
                for f in ("model.pt", "m.json", "c.csv")
            ]
        )
    assert digests[0] == digests[1]


def test_checkpoint_rebuilds_its_own_model(tmp_path, prepared_dir, tiny_config):
    cfg = dataclasses.replace(tiny_config.model, cell="gru", pooling="mean+last")
    out = tmp_path / "ck"
    train_model(prepared_dir, out / "model.pt", out / "live", cfg, tiny_config.train)
    model, payload, _ = load_model(out / "model.pt", prepared_dir, torch.device("cpu"))
    assert isinstance(model, TextClassifier) and model.cfg == cfg
    assert payload["vocab"]["words"]["size"] == model.embedding.num_embeddings
    assert payload["inputs"] == {"pad_id": 0, "max_len": 256, "fixed_len": None}


def test_evaluate_metrics_json(tmp_path, prepared_dir, tiny_config):
    out, _ = _train(tmp_path, prepared_dir, tiny_config)
    m = evaluate_checkpoint(out / "model.pt", prepared_dir, out / "m.json", out / "c.csv", 64)
    assert m["n_test"] == 200
    assert 0 < m["loss"] != round(m["loss"])  # the test loss to 6 digits, not rounded away
    assert json.loads((out / "m.json").read_text()) == m
    assert set(m["per_class"]) == {"World", "Sports", "Business", "Sci/Tech"}
    assert "run" not in m  # params live in params.yaml, not repeated as metrics
    assert len((out / "c.csv").read_text().splitlines()) == 201


def test_nan_loss_stops_training(tmp_path, prepared_dir, tiny_config, monkeypatch):
    original = TextClassifier.forward

    def poisoned(self, *args):
        return original(self, *args) * float("nan")

    monkeypatch.setattr(TextClassifier, "forward", poisoned)
    with pytest.raises(TrainingError, match="loss became nan at epoch 1"):
        _train(tmp_path, prepared_dir, tiny_config)
    assert not (tmp_path / "run" / "model.pt").exists()


def test_nan_loss_is_caught_at_the_step_it_appears(
    tmp_path, prepared_dir, tiny_config, monkeypatch
):
    """One non-finite loss at step 3, with the loss curve logged only every 1,000 steps: the
    guard still stops training there and names step 3."""
    original, calls = TextClassifier.forward, []

    def poisoned_once(self, *args):
        calls.append(1)
        out = original(self, *args)
        return out * float("inf") if len(calls) == 3 else out

    monkeypatch.setattr(TextClassifier, "forward", poisoned_once)
    cfg = dataclasses.replace(tiny_config, train=_train_cfg(tiny_config, log_every=1000))
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at epoch 1, step 3;"):
        _train(tmp_path, prepared_dir, cfg)
    assert len(calls) == 3  # stopped right there: no fourth step, no validation pass


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


def test_resume_after_interruption_matches_uninterrupted_run(
    tmp_path, prepared_dir, tiny_config, monkeypatch, caplog
):
    cfg = dataclasses.replace(
        tiny_config.train, epochs=3, resume=True, lr_schedule="cosine", log_every=1
    )
    model_cfg = dataclasses.replace(tiny_config.model, embedding_dropout=0.2)

    def run(name):
        out = tmp_path / name
        s = train_model(
            prepared_dir, out / "model.pt", out / "live", model_cfg, cfg, out / "state.pt"
        )
        return out, s

    ref, ref_summary = run("ref")
    assert not (ref / "state.pt").exists()  # deleted once training finished

    # interrupt the second run in the middle of epoch 2
    calls = {"n": 0}
    original = TextClassifier.forward

    def interrupt(self, *args):
        calls["n"] += 1
        if self.training and calls["n"] == 14:  # 10 train batches + 2 evals per epoch
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(TextClassifier, "forward", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run("cut")
    monkeypatch.setattr(TextClassifier, "forward", original)
    cut = tmp_path / "cut"
    assert not (cut / "model.pt").exists() and (cut / "state.pt").exists()
    assert torch.load(cut / "state.pt", weights_only=True)["epoch"] == 1

    caplog.clear()
    caplog.set_level(logging.INFO, logger="agnews.model.training")
    _, resumed_summary = run("cut")
    assert "resuming after epoch 1" in caplog.text  # not a silent restart from scratch
    a = torch.load(ref / "model.pt", weights_only=True)
    b = torch.load(cut / "model.pt", weights_only=True)
    for key, tensor in a["model_state"].items():
        assert torch.equal(tensor, b["model_state"][key]), key
    assert a["best"] == b["best"]
    assert resumed_summary["best_val_acc"] == ref_summary["best_val_acc"]
    for tsv in ("acc/val.tsv", "loss/train.tsv", "loss/train_epoch.tsv"):
        ref_rows = (ref / "live/plots/metrics" / tsv).read_text()
        assert (cut / "live/plots/metrics" / tsv).read_text() == ref_rows, tsv


def test_state_of_other_params_is_ignored(tmp_path, prepared_dir, tiny_config, caplog):
    cfg = dataclasses.replace(tiny_config.train, epochs=1, resume=True)
    out = tmp_path / "r"
    state = out / "state.pt"
    out.mkdir()
    torch.save({"identity": {"model": {}, "train": {}, "data": {}}, "epoch": 5}, state)
    train_model(prepared_dir, out / "model.pt", out / "live", tiny_config.model, cfg, state)
    assert "belongs to other params, data or member" in caplog.text
    assert (out / "model.pt").exists() and not state.exists()


def test_a_members_state_is_not_restored_as_another_member(tmp_path, prepared_dir, tiny_config):
    """The saved identity names the ensemble member: member 0's state, offered to member 1
    (same params and data), is refused; member 0 itself gets it back."""
    from agnews.model.loop import Setup
    from agnews.model.training import load_data, new_member, run_identity

    model_cfg, cfg = tiny_config.model, dataclasses.replace(tiny_config.train, ensemble=2)
    data = load_data(prepared_dir, with_ngrams=uses_ngrams(model_cfg))
    inputs = InputSpec(data.vocabs.words.pad_id, cfg.max_len, model_cfg.fixed_len)
    setup = Setup(data, inputs, None, torch.device("cpu"), steps_per_epoch=10)
    path = tmp_path / "state.pt"
    new_member(setup, model_cfg, cfg, cfg.seed).save(
        path, run_identity(prepared_dir, model_cfg, cfg, 0)
    )
    second = new_member(setup, model_cfg, cfg, cfg.seed + 1)
    assert not second.restore(path, run_identity(prepared_dir, model_cfg, cfg, member=1))
    assert second.restore(path, run_identity(prepared_dir, model_cfg, cfg, member=0))


def test_grad_clip_param_bounds_the_gradient_norm(tmp_path, prepared_dir, tiny_config, monkeypatch):
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        total = original(parameters, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters]))
        norms.append((max_norm, float(total), float(after)))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    cfg = dataclasses.replace(tiny_config.train, grad_clip=0.05)
    train_model(prepared_dir, tmp_path / "m.pt", tmp_path / "live", tiny_config.model, cfg)
    assert len(norms) == 10  # every step
    assert all(max_norm == 0.05 and after <= 0.05 * 1.001 for max_norm, _, after in norms)
    assert any(total > 0.05 for _, total, _ in norms)  # it did have something to clip


def test_evaluate_refuses_a_vocabulary_of_another_run(tmp_path, prepared_dir, trained_model):
    import shutil

    from agnews.data.vocab import Vocab
    from agnews.errors import DataError

    other = tmp_path / "prepared"
    shutil.copytree(prepared_dir, other)
    vocab = Vocab.load(other / "vocab.json")
    Vocab((*vocab.itos, "zzz-extra")).save(other / "vocab.json")
    with pytest.raises(DataError, match="trained with another words vocabulary"):
        evaluate_checkpoint(trained_model, other, tmp_path / "m.json", tmp_path / "c.csv", 64)
    assert not (tmp_path / "m.json").exists()


@pytest.fixture(scope="module")
def prepared_with_ngrams(tmp_path_factory):
    from helpers import SAMPLE_DIR, download_and_prepare

    root = tmp_path_factory.mktemp("ngrams")
    download_and_prepare(SAMPLE_DIR, root, 1, 0.2, 0, ngrams=2, ngram_min_count=0)
    return root / "out"


@pytest.mark.parametrize(
    "changes", [{"ngram_dim": 8}, {"ngram_logits": True}, {"ngram_dim": 4, "ngram_logits": True}]
)
def test_the_ngram_paths_train_and_their_checkpoint_binds_both_vocabularies(
    tmp_path, prepared_with_ngrams, tiny_config, capsys, changes
):
    from agnews.serving.predict import main as predict_main

    cfg = dataclasses.replace(tiny_config.model, **changes)
    out = tmp_path / "bag"
    train_model(prepared_with_ngrams, out / "model.pt", out / "live", cfg, tiny_config.train)
    model, payload, vocabs = load_model(out / "model.pt", prepared_with_ngrams, torch.device("cpu"))
    bags = [m for m in (model.bag, model.ngram_logits) if m is not None]
    assert bags and all(m.num_embeddings == len(vocabs.ngrams) for m in bags)
    assert payload["vocab"]["ngrams"]["sha256"] == vocabs.ngrams.digest
    m = evaluate_checkpoint(
        out / "model.pt", prepared_with_ngrams, out / "m.json", out / "c.csv", 64
    )
    assert m["n_test"] == 200
    # the checkpoint carries ngrams.json too: it alone predicts, with the same n-grams
    assert payload["vocab_files"]["ngrams"] == (prepared_with_ngrams / "ngrams.json").read_text()
    _, _, carried = load_model(out / "model.pt", None, torch.device("cpu"))
    assert carried == vocabs
    assert predict_main(["--model", str(out / "model.pt"), "Oil prices"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    # the same checkpoint beside data prepared without n-grams: one clear error
    from agnews.errors import DataError

    with pytest.raises(DataError, match=r"ngrams\.json: missing"):
        load_model(
            out / "model.pt", prepared_with_ngrams.parent.parent / "none", torch.device("cpu")
        )


def test_the_ngram_linear_model_gets_its_own_learning_rate_and_penalty(tiny_config):
    from agnews.data.batching import InputSpec
    from agnews.model.optimizers import make_optimizers

    cfg = dataclasses.replace(tiny_config.model, ngram_logits=True)
    model = TextClassifier(cfg, 50, InputSpec(0, 256, None), bag_size=30)
    train = dataclasses.replace(
        tiny_config.train, lr=0.002, ngram_lr=0.05, ngram_weight_decay=1e-4, sparse_ngrams=False
    )
    (optimizer,) = make_optimizers(model, train)
    network, wide = optimizer.param_groups
    assert wide["params"] == [model.ngram_logits.weight]
    assert (wide["lr"], wide["weight_decay"]) == (0.05, 1e-4)
    assert network["lr"] == 0.002 and network["weight_decay"] == train.weight_decay
    assert len(network["params"]) == len(list(model.parameters())) - 1
    assert torch.count_nonzero(model.ngram_logits.weight) == 0  # starts at the network's answer
    assert not model.ngram_logits.sparse


def test_sparse_ngram_tables_get_sparse_adam_at_their_own_rates(tiny_config):
    from agnews.data.batching import InputSpec
    from agnews.model.optimizers import make_optimizers

    cfg = dataclasses.replace(tiny_config.model, ngram_logits=True, ngram_dim=4)
    model = TextClassifier(cfg, 50, InputSpec(0, 256, None), bag_size=30)
    train = dataclasses.replace(tiny_config.train, lr=0.002, ngram_lr=0.05, sparse_ngrams=True)
    dense, sparse = make_optimizers(model, train)
    assert isinstance(sparse, torch.optim.SparseAdam) and isinstance(dense, torch.optim.Adam)
    bag, wide = sparse.param_groups
    assert bag["params"] == [model.bag.weight] and bag["lr"] == 0.002
    assert wide["params"] == [model.ngram_logits.weight] and wide["lr"] == 0.05
    (network,) = dense.param_groups
    assert len(network["params"]) == len(list(model.parameters())) - 2
    assert model.bag.sparse and model.ngram_logits.sparse  # their gradients: touched rows only


def test_sparse_and_dense_ngram_tables_clip_to_the_same_gradient_norm(tiny_config):
    """Sparse gradients repeat a row once per text that has it: the norm sums them first."""
    from agnews.data.batching import InputSpec
    from agnews.model.optimizers import clip_grad_norm

    cfg = dataclasses.replace(tiny_config.model, ngram_logits=True, ngram_dim=4)
    grads = []
    for sparse in (False, True):
        torch.manual_seed(0)
        model = TextClassifier(cfg, 50, InputSpec(0, 256, None), bag_size=30)
        nn_init = torch.nn.init
        nn_init.normal_(model.ngram_logits.weight)
        model.bag.sparse = model.ngram_logits.sparse = sparse
        ids = torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
        bag = torch.tensor([3, 4, 3, 3, 9])  # n-gram 3 in both texts, twice in the first
        out = model(ids, torch.tensor([4, 3]), bag, torch.tensor([0, 3]), torch.ones(5) * 0.5)
        out.sum().backward()
        total = clip_grad_norm(model, 0.01)
        grads.append((float(total), model.ngram_logits.weight.grad.to_dense()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5) and grads[0][0] > 0.01
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-7)


def test_an_ensemble_averages_members_from_consecutive_seeds(
    tmp_path, prepared_dir, tiny_config, capsys
):
    from agnews.data.shards import load_shard
    from agnews.model.classifier import Ensemble
    from agnews.model.inference import predict_shard
    from agnews.serving.predict import main as predict_main

    cfg = dataclasses.replace(tiny_config.train, ensemble=2)
    out = tmp_path / "ens"
    summary = train_model(prepared_dir, out / "m.pt", out / "live", tiny_config.model, cfg)
    model, payload, _ = load_model(out / "m.pt", prepared_dir, torch.device("cpu"))
    assert isinstance(model, Ensemble) and len(model.members) == 2 and payload["ensemble"] == 2
    # member k is the single model trained with seed + k
    for k, member in enumerate(model.members):
        single = dataclasses.replace(tiny_config.train, seed=tiny_config.train.seed + k)
        path = tmp_path / f"single{k}.pt"
        train_model(prepared_dir, path, tmp_path / f"l{k}", tiny_config.model, single)
        alone, _, _ = load_model(path, prepared_dir, torch.device("cpu"))
        for key, tensor in alone.state_dict().items():
            assert torch.equal(member.state_dict()[key], tensor), (k, key)
    # the ensemble's validation accuracy is that of the averaged probabilities
    val = load_shard(prepared_dir / "val.npz")
    preds, _ = predict_shard(model, val, 64)
    assert summary["best_val_acc"] == round(float((preds == val.labels).mean()), 6)
    assert "members_mean_val_acc" in summary
    assert 0 < summary["best_epoch"] <= cfg.epochs  # the members' mean best epoch
    assert summary["best_val_loss"] != round(summary["best_val_loss"])  # 6 digits, not 0
    args = ["--model", str(out / "m.pt"), "--json", "Oil prices"]
    assert predict_main(args) == 0
    probs = json.loads(capsys.readouterr().out)["probabilities"]
    assert abs(sum(probs.values()) - 1) < 0.01


def _scripted_validation(monkeypatch, accuracies):
    """Make validation return `accuracies` in turn (loss 1 - acc); returns the list of calls.
    Both callers are scripted: the loop's passes and an ensemble's own pass."""
    import agnews.model.loop as loop
    import agnews.model.training as training

    calls = []

    def scripted(model, val, batch_size):
        calls.append(len(calls))
        acc = accuracies[min(len(calls), len(accuracies)) - 1]
        return acc, 1.0 - acc

    monkeypatch.setattr(loop, "validate", scripted)
    monkeypatch.setattr(training, "validate", scripted)
    return calls


@pytest.mark.parametrize(
    ("patience", "accuracies", "passes", "stopped", "reason"),
    [
        # 2 flat passes in a row (0.6 then 0.55) stop training right after the second
        (2, [0.5, 0.6, 0.6, 0.55, 0.9], 4, 2.0, "patience"),
        # a flat pass then a new best resets the count; 3 flat in a row stop it
        (3, [0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.9], 6, 3.0, "patience"),
        (1, [0.5, 0.6, 0.7, 0.8, 0.8], 5, 2.5, "patience"),
        (0, [0.5] * 10, 10, 5.0, "max_epochs"),  # 0: never stops, however flat
        (4, [0.5, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.8, 0.8, 0.8], 10, 5.0, "max_epochs"),
    ],
)
def test_early_stopping_stops_right_after_patience_flat_passes(
    tmp_path, prepared_dir, tiny_config, monkeypatch, patience, accuracies, passes, stopped, reason
):
    calls = _scripted_validation(monkeypatch, accuracies)
    cfg = dataclasses.replace(tiny_config.train, epochs=5, patience=patience)
    out, summary = _train(tmp_path, prepared_dir, dataclasses.replace(tiny_config, train=cfg))
    assert len(calls) == passes
    assert (summary["stopped_epoch"], summary["stop_reason"]) == (stopped, reason)
    assert summary["stopped_step"] == 5 * passes  # 10 batches per epoch, 2 passes
    assert summary["best_val_acc"] == max(accuracies[:passes])
    live = json.loads((out / "live" / "metrics.json").read_text())
    assert (live["stopped_epoch"], live["stop_reason"]) == (stopped, reason)
    val_rows = (out / "live" / "plots" / "metrics" / "acc" / "val.tsv").read_text().splitlines()
    assert len(val_rows) == 1 + passes


def test_patience_running_out_at_the_very_last_pass_is_no_early_stop(
    tmp_path, prepared_dir, tiny_config, monkeypatch
):
    """The 2nd flat pass in a row is the last pass of the last epoch: the run has finished its
    epochs ("max_epochs" at epoch 2) and its last epoch's train loss is logged as well."""
    calls = _scripted_validation(monkeypatch, [0.5, 0.6, 0.6, 0.6])
    cfg = dataclasses.replace(tiny_config.train, epochs=2, patience=2)
    out, summary = _train(tmp_path, prepared_dir, dataclasses.replace(tiny_config, train=cfg))
    assert len(calls) == 4
    assert (summary["stopped_epoch"], summary["stop_reason"]) == (2.0, "max_epochs")
    epoch_rows = (out / "live/plots/metrics/loss/train_epoch.tsv").read_text().splitlines()
    assert len(epoch_rows) == 1 + 2


def test_a_stop_at_the_end_of_an_earlier_epoch_logs_that_whole_epochs_loss(
    tmp_path, prepared_dir, tiny_config, monkeypatch
):
    """Patience runs out at the last pass of epoch 1 of 3: an early stop ("patience" at epoch
    1.0), and epoch 1, which ran all its batches, has its train-loss point; a stop in the
    middle of an epoch logs none for it."""
    _scripted_validation(monkeypatch, [0.6, 0.6, 0.6, 0.6, 0.6, 0.6])
    for patience, rows in ((1, 1), (2, 1)):  # stops at 1.0 (2nd pass) and at 1.5 (3rd pass)
        cfg = dataclasses.replace(tiny_config.train, epochs=3, patience=patience)
        config = dataclasses.replace(tiny_config, train=cfg)
        out, summary = _train(tmp_path, prepared_dir, config, f"p{patience}")
        assert summary["stop_reason"] == "patience"
        assert summary["stopped_epoch"] == {1: 1.0, 2: 1.5}[patience]
        epoch_rows = (out / "live/plots/metrics/loss/train_epoch.tsv").read_text().splitlines()
        assert len(epoch_rows) == 1 + rows


def test_a_run_that_stops_early_is_the_prefix_of_the_run_that_does_not(
    tmp_path, prepared_dir, tiny_config
):
    """Same weights at every step up to the stop: its curves are the full run's first rows and
    its checkpoint is the full run's best of those passes (here the schedule is cosine, over
    the maximum epochs)."""
    runs = {}
    for patience in (0, 1):
        cfg = dataclasses.replace(
            tiny_config.train, epochs=4, patience=patience, lr_schedule="cosine", log_every=1
        )
        out, summary = _train(
            tmp_path, prepared_dir, dataclasses.replace(tiny_config, train=cfg), f"p{patience}"
        )
        curves = out / "live" / "plots" / "metrics"
        runs[patience] = (summary, (curves / "acc" / "val.tsv").read_text().splitlines())
    (full, full_val), (early, early_val) = runs[0], runs[1]
    assert full["stop_reason"] == "max_epochs" and full["stopped_epoch"] == 4
    assert early["stop_reason"] == "patience" and early["stopped_epoch"] < 4
    assert early_val == full_val[: len(early_val)]
    accs = [float(r.split("\t")[-1]) for r in full_val[1 : len(early_val)]]
    assert early["best_val_acc"] == round(max(accs), 6)


def test_early_stopping_survives_an_interruption(tmp_path, prepared_dir, tiny_config, monkeypatch):
    """The count of flat passes is part of the saved state: a run interrupted after epoch 2
    with 2 flat passes stops after one more, as the uninterrupted run does."""
    accuracies = [0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.8, 0.9]
    cfg = dataclasses.replace(tiny_config.train, epochs=4, patience=3, resume=True)

    def run(name):
        out = tmp_path / name
        return train_model(
            prepared_dir, out / "model.pt", out / "live", tiny_config.model, cfg, out / "state.pt"
        )

    _scripted_validation(monkeypatch, accuracies)
    ref = run("ref")
    assert (ref["stopped_epoch"], ref["stop_reason"]) == (2.5, "patience")

    import agnews.model.loop as loop

    calls = _scripted_validation(monkeypatch, accuracies)
    scripted = loop.validate

    def interrupt(model, val, batch_size):
        if len(calls) == 4:  # epoch 2 is complete and saved
            raise KeyboardInterrupt
        return scripted(model, val, batch_size)

    monkeypatch.setattr(loop, "validate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run("cut")
    assert torch.load(tmp_path / "cut" / "state.pt", weights_only=True)["flat_evals"] == 2
    monkeypatch.setattr(loop, "validate", scripted)
    resumed = run("cut")
    assert len(calls) == 5  # one pass after resuming, then the stop
    assert (resumed["stopped_epoch"], resumed["stop_reason"]) == (2.5, "patience")
    assert resumed["best_val_acc"] == ref["best_val_acc"]


def test_each_ensemble_member_stops_on_its_own(tmp_path, prepared_dir, tiny_config, monkeypatch):
    # member 1: flat at its 2nd pass (stops at 1.0); member 2: at its 3rd (stops at 1.5); the
    # last value is the ensemble's own validation pass
    calls = _scripted_validation(monkeypatch, [0.5, 0.5, 0.5, 0.6, 0.6, 0.7])
    cfg = dataclasses.replace(tiny_config.train, epochs=3, patience=1, ensemble=2)
    _, summary = _train(tmp_path, prepared_dir, dataclasses.replace(tiny_config, train=cfg))
    assert len(calls) == 6
    assert summary["stopped_epoch"] == 1.25 and summary["stop_reason"] == "patience"
    assert summary["stopped_step"] == 10 + 15
    assert summary["best_val_acc"] == 0.7


@pytest.mark.parametrize("flush", [True, False])
def test_training_flushes_denormals_as_configured(
    tmp_path, prepared_dir, tiny_config, monkeypatch, flush
):
    calls = []
    original = torch.set_flush_denormal
    monkeypatch.setattr(torch, "set_flush_denormal", lambda on: calls.append(on) or original(on))
    cfg = dataclasses.replace(tiny_config.train, flush_denormal=flush)
    _train(tmp_path, prepared_dir, dataclasses.replace(tiny_config, train=cfg))
    assert calls == [flush]
    original(False)


@pytest.mark.parametrize("native", [True, False])
def test_amp_on_cpu_autocasts_to_bf16_only_where_the_cpu_computes_it(
    tmp_path, prepared_dir, tiny_config, monkeypatch, caplog, native
):
    """train.amp on CPU: bf16 autocast around every training forward where the CPU has
    AVX512-BF16 or AMX (detection scripted here); elsewhere float32, said once."""
    import agnews.runtime as runtime

    monkeypatch.setattr(runtime, "bf16_native", lambda: native)
    seen = []
    original = TextClassifier.classify

    def spy(self, batch):
        if self.training:
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return original(self, batch)

    monkeypatch.setattr(TextClassifier, "classify", spy)
    cfg = dataclasses.replace(tiny_config.train, amp=True)
    _, summary = _train(tmp_path, prepared_dir, dataclasses.replace(tiny_config, train=cfg))
    assert len(seen) == 10  # one epoch of 10 batches
    if native:
        assert set(seen) == {(True, torch.bfloat16)} and summary["amp"] == "bf16"
        assert "float32" not in caplog.text
    else:
        assert {enabled for enabled, _ in seen} == {False} and summary["amp"] == "off"
        assert caplog.text.count("neither AVX512-BF16 nor AMX") == 1
    assert summary["bf16_native"] is native


def test_amp_needs_cuda_or_native_bf16(monkeypatch):
    import agnews.runtime as runtime

    monkeypatch.setattr(runtime, "bf16_native", lambda: False)
    assert runtime.use_bf16_autocast(True, torch.device("cuda"))
    assert not runtime.use_bf16_autocast(True, torch.device("cpu"))
    assert not runtime.use_bf16_autocast(False, torch.device("cuda"))
    monkeypatch.setattr(runtime, "bf16_native", lambda: True)
    assert runtime.use_bf16_autocast(True, torch.device("cpu"))
    assert not runtime.use_bf16_autocast(False, torch.device("cpu"))


def test_cpu_info_names_the_cpu(tmp_path, monkeypatch):
    import agnews.runtime as runtime

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000 @ 3.0GHz\nflags\t: fpu\n")
    monkeypatch.setattr(runtime, "CPUINFO", cpuinfo)
    monkeypatch.setattr(runtime, "bf16_native", lambda: True)
    info = runtime.cpu_info()
    assert info == {
        "cpu_model": "Test CPU 9000 @ 3.0GHz",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": True,
    }
    monkeypatch.setattr(runtime, "CPUINFO", tmp_path / "absent")  # not Linux
    monkeypatch.setattr(runtime.platform, "processor", lambda: "arm")
    assert runtime.cpu_info()["cpu_model"] == "arm"


def test_bf16_native_reads_torchs_cpu_checks(monkeypatch):
    for avx512_bf16, amx in [(False, False), (True, False), (False, True)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        from agnews.runtime import bf16_native

        assert bf16_native() is (avx512_bf16 or amx)


def test_bf16_cpu_bench_runs_at_tiny_size():
    """bench/bf16_cpu.py at tiny sizes: it names what the CPU supports and times every cell."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "bf16_cpu.py"
    args = ["--repeats", "1", "--warmup", "0", "--batch", "4", "--tokens", "8", "--hidden", "8"]
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "bf16 native" in done.stdout and "torch kernels" in done.stdout
    for cell in ("| lstm 2-layer bidirectional |", "| gru bidirectional |", "| gru |", "| rnn |"):
        assert cell in done.stdout, cell
