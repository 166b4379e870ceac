"""A checkpoint is bound to its exact vocabulary and format: another vocabulary (even of the
same size), a damaged file of the same size, or an older format is one clear error."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
import torch
from helpers import evaluate_checkpoint

from agnews.data.vocab import Vocab
from agnews.errors import DataError
from agnews.model.checkpoints import CHECKPOINT_FORMAT, load_model, read_checkpoint

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


def test_a_vocabulary_of_the_same_size_from_another_run_is_refused(copied, tmp_path):
    model_path, data = copied
    vocab = Vocab.load(data / "vocab.json")
    swapped = list(vocab.itos)
    swapped[10], swapped[11] = swapped[11], swapped[10]  # same words, same size, other ids
    Vocab(tuple(swapped)).save(data / "vocab.json")
    with pytest.raises(DataError, match="trained with another words vocabulary"):
        load_model(model_path, data, CPU)
    # evaluate, which reads that folder's shards, refuses it instead of scoring wrong ids
    with pytest.raises(DataError, match="trained with another words vocabulary"):
        evaluate_checkpoint(model_path, data, tmp_path / "m.json", tmp_path / "c.csv", 64)
    assert not (tmp_path / "m.json").exists()
    # the checkpoint alone still predicts: it carries its own vocabulary
    _, _, vocabs = load_model(model_path, None, CPU)
    assert vocabs.words.itos == vocab.itos


def test_the_vocabulary_travels_inside_the_checkpoint(copied):
    model_path, data = copied
    payload = torch.load(model_path, weights_only=True)
    assert payload["vocab_files"] == {"words": (data / "vocab.json").read_text(encoding="utf-8")}
    _, _, vocabs = load_model(model_path, None, CPU)
    assert vocabs.words.digest == payload["vocab"]["words"]["sha256"]


def _resaved(model_path, tmp_path, change) -> object:
    """The checkpoint re-saved (valid zip checksums) with `change` applied to its payload."""
    payload = torch.load(model_path, weights_only=True)
    change(payload)
    out = tmp_path / "changed.pt"
    torch.save(payload, out)
    return out


def test_a_carried_vocabulary_that_fails_its_digest_is_refused(copied, tmp_path):
    model_path, _ = copied

    def swap_two_words(payload):
        text = payload["vocab_files"]["words"]
        i = text.index('"', text.index("<eos>") + 8) + 1  # first letter of the first word
        payload["vocab_files"]["words"] = text[:i] + chr(ord(text[i]) ^ 1) + text[i + 1 :]

    with pytest.raises(DataError, match=r"changed\.pt: the words vocabulary inside .* damaged"):
        load_model(_resaved(model_path, tmp_path, swap_two_words), None, CPU)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("not json", "cannot read vocabulary"),
        ('{"itos": [1, 2]}', "`itos` is not a list of strings"),
        ('{"words": []}', "cannot read vocabulary"),
    ],
)
def test_a_carried_vocabulary_of_another_format_is_refused(copied, tmp_path, text, expect):
    model_path, _ = copied

    def replace(payload):
        payload["vocab_files"]["words"] = text

    where = r"changed\.pt \(words vocabulary\): .*"
    with pytest.raises(DataError, match=where + re.escape(expect)):
        load_model(_resaved(model_path, tmp_path, replace), None, CPU)


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
    with pytest.raises(DataError, match=r"format 1, this version of agnews reads format 3"):
        read_checkpoint(old, CPU)
    payload["format"] = 2  # format 2: the vocabularies' digests, not the vocabularies
    del payload["vocab_files"]
    torch.save(payload, old)
    with pytest.raises(DataError, match=r"format 2, written before the vocabularies travelled"):
        read_checkpoint(old, CPU)
    torch.save({"not": "ours"}, old)
    with pytest.raises(DataError, match="not an agnews checkpoint"):
        read_checkpoint(old, CPU)


def test_evaluate_refuses_a_test_shard_from_another_prepare_run(copied, tmp_path):
    model_path, data = copied
    from agnews.data.shards import load_shard, save_shard, shard_from_ids

    test = load_shard(data / "test.npz")
    bad = [test.text_ids(i).copy() for i in range(len(test))]
    bad[0][1] = 10**6  # an id no vocabulary of this run has (a damaged shard)
    damaged = dataclasses.replace(shard_from_ids(bad, test.labels), vocab_sha256=test.vocab_sha256)
    save_shard(data / "test.npz", damaged)
    with pytest.raises(DataError, match=r"test\.npz: token ids outside the vocabulary"):
        evaluate_checkpoint(model_path, data, tmp_path / "m.json", tmp_path / "c.csv", 64)
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("0" * 64, r"test\.npz: prepared with another vocabulary \(SHA-256 000000000000…"),
        (None, r"test\.npz: records no vocabulary digest: made by an older version of prepare"),
    ],
)
def test_a_shard_is_bound_to_its_vocabulary_not_just_its_size(copied, tmp_path, digest, message):
    """Ids that all fit the vocabulary (the very same ids) but a shard prepared with another
    vocabulary, or by a prepare that recorded none: refused, never scored."""
    model_path, data = copied
    from agnews.data.shards import load_shard, save_shard

    test = load_shard(data / "test.npz")
    assert test.vocab_sha256 is not None
    save_shard(data / "test.npz", dataclasses.replace(test, vocab_sha256=digest))
    with pytest.raises(DataError, match=message):
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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ensemble": 10**6}, r"ensemble of 1000000 members, expected 1\.\.10"),
        ({"model_config": {"hidden_size": 10**6}}, r"model\.hidden_size: must be in 1\.\.8192"),
        ({"model_config": {"hidden_size": 4096}}, "not the shapes rnn with hidden size 4096"),
    ],
)
def test_a_checkpoints_sizes_are_checked_before_anything_is_allocated(
    copied, tmp_path, monkeypatch, change, message
):
    """A damaged or hostile model file (dvc get, say) cannot make the loader allocate without
    bound: the ensemble size and the config's sizes are bounded, and the config's shapes are
    compared with the weights the file holds on the meta device, before any real model."""
    from agnews.model import checkpoints

    model_path, _ = copied
    payload = torch.load(model_path, weights_only=True)
    for key, value in change.items():
        payload[key] = {**payload[key], **value} if isinstance(value, dict) else value
    torch.save(payload, tmp_path / "bad.pt")
    built_on = []
    real = checkpoints.TextClassifier

    def spy(*args, **kwargs):
        built_on.append(torch.empty(0).device.type)  # the default device while building
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoints, "TextClassifier", spy)
    with pytest.raises(DataError, match=message):
        load_model(tmp_path / "bad.pt", None, CPU)
    assert set(built_on) <= {"meta"}  # no member was built in real memory
