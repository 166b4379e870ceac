import pytest
from helpers import ROOT, override

from agnews.config import SIZE_LIMITS, config_from_dict, load_params, load_yaml
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
    with pytest.raises(ConfigError, match=r"model\.fixed_len: must be in 3\.\.4096"):
        config_from_dict(override(params, bad))


# every param, with a value out of its range (or of the wrong kind), must be refused by name
OUT_OF_RANGE = [
    ("data.hub_dataset", 3),
    ("data.hub_revision", 5),
    ("data.hub_revision", ""),
    ("data.hub_revision", "eb185aa de"),
    ("data.local_dir", 7),
    ("prepare.min_count", -1),
    ("prepare.val_size", 1.0),
    ("prepare.seed", -1),
    ("prepare.seed", 2**32),
    ("prepare.num_workers", -2),
    ("prepare.ngrams", 6),
    ("prepare.ngram_min_count", -1),
    ("model.cell", "lstmm"),
    ("model.embedding_dim", 0),
    ("model.hidden_size", -8),
    ("model.layers", 0),
    ("model.bidirectional", "both"),
    ("model.layer_activation", "gelu"),
    ("model.rnn_dropout", 1.0),
    ("model.embedding_dropout", -0.1),
    ("model.pooling", "sum"),
    ("model.fixed_len", 0),
    ("model.flatten_dim", -1),
    ("model.head_hidden", 0),
    ("model.head_layers", 0),
    ("model.head_dropout", 1.5),
    ("model.head_concat_pooled", "no"),
    ("model.skip_embedding", 1),
    ("model.ngram_dim", -1),
    ("model.ngram_logits", "yes"),
    ("model.encode_padding", "no"),
    ("train.epochs", 0),
    ("train.batch_size", 0),
    ("train.lr", 0.0),
    ("train.lr", 100.0),
    ("train.lr", float("nan")),
    ("train.optimizer", "lion"),
    ("train.weight_decay", -0.01),
    ("train.weight_decay", float("inf")),
    ("train.lr_schedule", "step"),
    ("train.warmup_steps", -1),
    ("train.grad_clip", -1.0),
    ("train.word_dropout", 1.0),
    ("train.evals_per_epoch", 0),
    ("train.max_len", 2),
    ("train.bucketing", "yes"),
    ("train.bucket_chunk", 0),
    ("train.eval_batch_size", 0),
    ("train.log_every", 0),
    ("train.seed", -5),
    ("train.device", "gpu"),
    ("train.amp", "true"),
    ("train.resume", None),
    ("train.ngram_lr", 0.0),
    ("train.ngram_weight_decay", -1e-4),
    ("train.ensemble", 0),
    ("train.patience", -1),
    ("train.sparse_ngrams", "yes"),
    ("train.flush_denormal", 1),
    ("evaluate.batch_size", 0),
    ("evaluate.calibrate", "yes"),
    ("evaluate.ece_bins", 1),
    ("evaluate.error_examples", 0),
]


@pytest.mark.parametrize(("key", "value"), OUT_OF_RANGE)
def test_every_param_out_of_range_is_refused_by_name(params, key, value):
    with pytest.raises(ConfigError, match="^" + key.replace(".", r"\.") + ":"):
        config_from_dict(override(params, {key: value}))


def test_every_param_has_an_out_of_range_case(params):
    keys = {f"{s}.{k}" for s, section in params.items() if s != "paths" for k in section}
    assert keys == {k for k, _ in OUT_OF_RANGE}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 0.001), ("2E-4", 0.0002), (".5", 0.5), ("1.", 1.0), ("+3", 3), ("0x10", 16)],
)
def test_number_forms_are_read_as_dvc_reads_them(text, value):
    assert load_yaml(f"v: {text}")["v"] == value


def test_yaml_1_1_booleans_stay_strings_as_dvc_has_them(params):
    assert load_yaml("a: yes\nb: off\nc: true") == {"a": "yes", "b": "off", "c": True}
    with pytest.raises(ConfigError, match=r"train\.resume: 'yes' is invalid; expected bool"):
        config_from_dict(override(params, {"train.resume": load_yaml("v: yes")["v"]}))


def test_params_file_with_exponent_learning_rate_loads(tmp_path, params):
    text = (ROOT / "params.yaml").read_text().replace("lr: 0.001", "lr: 1e-3")
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml").train.lr == 0.001


def test_fixed_len_without_flatten_is_refused(params):
    with pytest.raises(ConfigError, match=r"model\.fixed_len: 50 is set but model\.pooling='max'"):
        config_from_dict(override(params, {"model.fixed_len": 50}))


def test_ngram_bag_needs_prepared_ngrams(params):
    with pytest.raises(ConfigError, match=r"model\.ngram_dim: 64 needs n-grams .*prepare\.ngrams"):
        config_from_dict(override(params, {"model.ngram_dim": 64}))
    cfg = config_from_dict(override(params, {"model.ngram_dim": 64, "prepare.ngrams": 2}))
    assert cfg.model.ngram_dim == 64
    with pytest.raises(ConfigError, match=r"model\.ngram_logits: needs n-grams"):
        config_from_dict(override(params, {"model.ngram_logits": True}))


def test_params_file_that_is_not_utf8(tmp_path):
    (tmp_path / "params.yaml").write_bytes(b"model:\n  cell: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: not UTF-8"):
        load_params(tmp_path / "params.yaml")


def test_encode_padding_needs_a_fixed_length(params):
    with pytest.raises(ConfigError, match=r"model\.encode_padding: needs model\.fixed_len"):
        config_from_dict(override(params, {"model.encode_padding": True}))


def test_resume_is_refused_for_ensembles(params):
    with pytest.raises(ConfigError, match=r"train\.resume: is not supported with train\.ensemble"):
        config_from_dict(override(params, {"train.ensemble": 3, "train.resume": True}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train.optimizer": "sgd"}, r"needs train\.optimizer adam or adamw .* not sgd"),
        ({"train.ngram_weight_decay": 1e-4}, r"train\.ngram_weight_decay=0\.0001"),
        ({"train.weight_decay": 0.01, "model.ngram_dim": 8}, r"train\.weight_decay=0\.01"),
    ],
)
def test_sparse_ngram_tables_refuse_what_sparse_adam_cannot_do(params, changes, message):
    wide = {"prepare.ngrams": 2, "model.ngram_logits": True, "train.sparse_ngrams": True}
    wide |= changes
    with pytest.raises(ConfigError, match=r"^train\.sparse_ngrams: .*" + message):
        config_from_dict(override(params, wide))
    dense = config_from_dict(override(params, {**wide, "train.sparse_ngrams": False}))
    assert not dense.train.sparse_ngrams
    # without n-gram tables the setting is moot: nothing is refused
    assert config_from_dict(override(params, changes | {"model.ngram_dim": 0}))


@pytest.mark.parametrize("key", list(SIZE_LIMITS))
def test_model_sizes_have_an_upper_bound(params, key):
    """A typo (hidden_size 2560000) fails here, not by allocating without bound."""
    extra = {"prepare.ngrams": 2} if key == "ngram_dim" else {}  # the bag needs n-grams
    with pytest.raises(ConfigError, match=rf"model\.{key}: must be in \d\.\.{SIZE_LIMITS[key]}"):
        config_from_dict(override(params, {f"model.{key}": SIZE_LIMITS[key] + 1, **extra}))
    config_from_dict(override(params, {f"model.{key}": SIZE_LIMITS[key], **extra}))  # the bound
