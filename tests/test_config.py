import pytest
from helpers import ROOT, override

from agnews.config import config_from_dict, load_params
from agnews.errors import ConfigError


def test_project_params_are_valid():
    cfg = load_params(ROOT / "params.yaml")
    assert cfg.model.cell in ("rnn", "gru", "lstm")
    assert cfg.model.pooling_modes == ("max",)


@pytest.mark.parametrize(
    ("key", "value", "expect"),
    [
        ("model.cell", "transformer", "one of rnn, gru, lstm"),
        ("model.bidirectional", "yes", "one of none, all, top"),
        ("model.layer_activation", "relu", "one of none, tanh"),
        ("train.optimizer", "lamb", "one of adam, adamw, sgd"),
        ("train.lr_schedule", "step", "one of constant, linear, cosine"),
        ("train.device", "tpu", "one of auto, cpu, cuda"),
        ("model.pooling", "max+attention", "valid modes: max, mean, last, flatten"),
    ],
)
def test_unknown_enumerated_values_list_the_choices(params, key, value, expect):
    with pytest.raises(ConfigError) as err:
        config_from_dict(override(params, {key: value}))
    assert key in str(err.value)
    assert expect in str(err.value)


@pytest.mark.parametrize(
    "key",
    [
        "model.hidden_size",
        "model.embedding_dim",
        "model.layers",
        "model.head_hidden",
        "model.head_layers",
        "train.epochs",
        "train.batch_size",
        "train.evals_per_epoch",
        "train.eval_batch_size",
        "evaluate.batch_size",
    ],
)
@pytest.mark.parametrize("value", [0, -3])
def test_non_positive_sizes_are_rejected(params, key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(override(params, {key: value}))


@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, 1.5, -0.1])
def test_val_size_must_be_inside_0_1(params, value):
    with pytest.raises(ConfigError, match=r"prepare\.val_size"):
        config_from_dict(override(params, {"prepare.val_size": value}))


def test_flatten_needs_fixed_len(params):
    with pytest.raises(ConfigError, match=r"model\.fixed_len.*flatten"):
        config_from_dict(override(params, {"model.pooling": "flatten", "model.fixed_len": None}))


def test_fixed_len_cannot_exceed_max_len(params):
    bad = {"model.pooling": "flatten", "model.fixed_len": 300, "train.max_len": 256}
    with pytest.raises(ConfigError, match=r"model\.fixed_len.*300"):
        config_from_dict(override(params, bad))


def test_repeated_pooling_mode_is_rejected(params):
    with pytest.raises(ConfigError, match="repeats"):
        config_from_dict(override(params, {"model.pooling": "max+max"}))


def test_top_bidirectional_needs_two_layers(params):
    with pytest.raises(ConfigError, match=r"model\.bidirectional"):
        config_from_dict(override(params, {"model.bidirectional": "top", "model.layers": 1}))


def test_concat_pooled_needs_two_head_layers(params):
    with pytest.raises(ConfigError, match=r"model\.head_concat_pooled"):
        config_from_dict(override(params, {"model.head_concat_pooled": True}))


def test_unknown_key_lists_valid_keys(params):
    params["model"]["hiden_size"] = 10
    with pytest.raises(ConfigError, match=r"unknown key\(s\) hiden_size; valid keys: cell"):
        config_from_dict(params)


def test_missing_key_and_section(params):
    del params["train"]["lr"]
    with pytest.raises(ConfigError, match=r"train: missing key\(s\) lr"):
        config_from_dict(params)
    del params["train"]
    with pytest.raises(ConfigError, match=r"missing section\(s\) train"):
        config_from_dict(params)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model.hidden_size", 2.5),
        ("model.hidden_size", True),
        ("train.lr", "fast"),
        ("train.bucketing", "yes"),
        ("model.fixed_len", "70"),
    ],
)
def test_wrong_types_are_rejected(params, key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(override(params, {key: value}))


def test_int_given_for_float_is_accepted(params):
    cfg = config_from_dict(override(params, {"train.lr": 1}))
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


def test_load_params_names_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "missing.yaml")


def test_fixed_len_too_small_for_a_flatten_head(params):
    bad = {"model.pooling": "flatten", "model.fixed_len": 2}
    with pytest.raises(ConfigError, match=r"model\.fixed_len: must be >= 3"):
        config_from_dict(override(params, bad))
