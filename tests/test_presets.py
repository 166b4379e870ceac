"""Presets: full, validated `dvc exp run -S` overrides relative to the committed params."""

import pytest
from helpers import ROOT

from agnews.errors import ConfigError
from agnews.presets import apply_overrides, full_overrides, load_presets, main, overrides_args

PRESETS = load_presets(ROOT / "presets.yaml")


def test_unknown_preset_lists_valid_names(capsys):
    assert main(["nope", "--file", str(ROOT / "presets.yaml")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'; valid presets: rnn_max, rnn_mean" in err


def test_list_shows_every_preset(capsys):
    assert main(["--file", str(ROOT / "presets.yaml")]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS)


def test_preset_resets_keys_other_presets_touch(params):
    # as if the workspace still held the notebook's best model, gru_max must undo all of it
    ov = full_overrides(PRESETS, "gru_max", params)
    assert ov["model.cell"] == "gru" and ov["model.pooling"] == "max"
    assert ov["model.layers"] == params["model"]["layers"]
    assert ov["model.fixed_len"] is None and ov["model.bidirectional"] == "none"
    best = full_overrides(PRESETS, "bilstm2_flatten_mean_max", params)
    assert best["model.fixed_len"] == 70 and best["train.batch_size"] == 64


def test_args_format_for_dvc():
    args = overrides_args({"model.fixed_len": None, "model.head_concat_pooled": False, "x.y": 2})
    assert args == [
        "-S",
        "model.fixed_len=null",
        "-S",
        "model.head_concat_pooled=false",
        "-S",
        "x.y=2",
    ]


def test_override_of_unknown_key_is_rejected(params):
    with pytest.raises(ConfigError, match=r"override 'model\.hidden': no such parameter"):
        apply_overrides(params, {"model.hidden": 3})


def test_invalid_preset_value_fails_before_any_run(tmp_path, capsys):
    bad = tmp_path / "presets.yaml"
    bad.write_text("broken:\n  notebook: x\n  params:\n    model.cell: transformer\n")
    assert main(["broken", "--file", str(bad), "--params", str(ROOT / "params.yaml")]) == 2
    assert "model.cell: 'transformer' is invalid" in capsys.readouterr().err
