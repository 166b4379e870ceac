"""A checkpoint is bound to its exact vocabulary and format: another vocabulary (even of the
same size), a damaged file of the same size, or an older format is one clear error."""

from __future__ import annotations

import shutil

import pytest
import torch

from agnews.checkpoints import CHECKPOINT_FORMAT, load_model, read_checkpoint
from agnews.errors import DataError
from agnews.evaluation import evaluate_checkpoint
from agnews.predict import main as predict_main
from agnews.vocab import Vocab

CPU = torch.device("cpu")


@pytest.fixture
def copied(tmp_path, prepared_dir, trained_model):
    """A private copy of the prepared folder and the checkpoint, free to damage."""
    data = tmp_path / "prepared"
    shutil.copytree(prepared_dir, data)
    model = tmp_path / "model.pt"
    shutil.copy(trained_model, model)
    return model, data


def test_loads_with_its_own_vocabulary(copied):
    model_path, data = copied
    _, payload, vocabs = load_model(model_path, data, CPU)
    assert payload["format"] == CHECKPOINT_FORMAT
    assert payload["vocab"]["words"]["sha256"] == vocabs.words.digest


def test_a_vocabulary_of_the_same_size_from_another_run_is_refused(copied, capsys):
    model_path, data = copied
    vocab = Vocab.load(data / "vocab.json")
    swapped = list(vocab.itos)
    swapped[10], swapped[11] = swapped[11], swapped[10]  # same words, same size, other ids
    Vocab(tuple(swapped)).save(data / "vocab.json")
    with pytest.raises(DataError, match="trained with another words vocabulary"):
        load_model(model_path, data, CPU)
    # predict says so in one line and exits non-zero instead of printing wrong labels
    assert predict_main(["--model", str(model_path), "--data", str(data), "a headline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "another words vocabulary" in err and err.count("\n") == 1


def test_a_vocabulary_damaged_in_place_is_refused(copied):
    model_path, data = copied
    raw = (data / "vocab.json").read_bytes()
    i = raw.index(b'"', raw.index(b"<eos>") + 8) + 1  # first letter of the first word
    damaged = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]  # same size, one letter changed
    (data / "vocab.json").write_bytes(damaged)
    with pytest.raises(DataError, match="trained with another words vocabulary"):
        load_model(model_path, data, CPU)


@pytest.mark.parametrize("where", [0.3, 0.6, 0.9])
def test_a_checkpoint_damaged_without_changing_size_is_one_clear_error(copied, where):
    model_path, data = copied
    raw = bytearray(model_path.read_bytes())
    start = int(len(raw) * where)
    for i in range(start, start + 64):
        raw[i] ^= 0xFF
    model_path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"model\.pt: (not a loadable checkpoint|the checkpoint)"):
        load_model(model_path, data, CPU)


def test_an_older_format_asks_for_retraining(copied, tmp_path):
    model_path, _ = copied
    payload = torch.load(model_path, weights_only=True)
    payload["format"] = 1
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    with pytest.raises(DataError, match=r"format 1, this version of agnews reads format 2"):
        read_checkpoint(old, CPU)
    torch.save({"not": "ours"}, old)
    with pytest.raises(DataError, match="not an agnews checkpoint"):
        read_checkpoint(old, CPU)


def test_evaluate_refuses_a_test_shard_from_another_prepare_run(copied, tmp_path):
    model_path, data = copied
    from agnews.shards import load_shard, save_shard, shard_from_ids

    test = load_shard(data / "test.npz")
    bad = [test.text_ids(i).copy() for i in range(len(test))]
    bad[0][1] = 10**6  # an id no vocabulary of this run has
    save_shard(data / "test.npz", shard_from_ids(bad, test.labels))
    with pytest.raises(DataError, match=r"test\.npz: token ids outside the vocabulary"):
        evaluate_checkpoint(model_path, data, tmp_path / "m.json", tmp_path / "c.csv", 64)
    assert not (tmp_path / "m.json").exists()


def test_a_checkpoint_from_another_version_of_the_config_says_so(copied, tmp_path):
    model_path, data = copied
    payload = torch.load(model_path, weights_only=True)
    del payload["model_config"]["ngram_logits"]
    payload["model_config"]["attention"] = True
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    with pytest.raises(DataError, match=r"another version of agnews .*lacks \['ngram_logits'\]"):
        load_model(old, data, CPU)
