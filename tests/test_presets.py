"""Presets: full, validated `dvc exp run -S` overrides relative to the committed params."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, override

from agnews.errors import ConfigError
from agnews.experiments.presets import (
    apply_overrides,
    full_overrides,
    load_presets,
    main,
    overrides_args,
    parse_sets,
)

PRESETS = load_presets(ROOT / "presets.yaml")


def test_unknown_preset_lists_valid_names(capsys):
    assert main(["--file", str(ROOT / "presets.yaml"), "show", "nope"]) == 2
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
    assert main(["--file", str(bad), "--params", str(ROOT / "params.yaml"), "show", "broken"]) == 2
    assert "model.cell: 'transformer' is invalid" in capsys.readouterr().err


def _git_project(tmp_path, params: dict) -> Path:
    """A git repo whose committed params.yaml is `params`."""
    for args in (["init", "-q"], ["add", "params.yaml"], ["commit", "-qm", "params"]):
        if args[0] == "add":
            (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True
        )
    return tmp_path / "params.yaml"


def _calls(monkeypatch) -> list[list[str]]:
    """Record the dvc commands main() would run (git still runs)."""
    calls, real = [], subprocess.run

    def fake_run(cmd, **kwargs):
        if cmd[0] == "git":
            return real(cmd, **kwargs)
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    return calls


def test_run_sets_every_param_from_head_not_the_workspace(tmp_path, monkeypatch, params):
    path = _git_project(tmp_path, params)
    # what an earlier `dvc exp run -S ...` leaves in the workspace
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(override(params, {"train.lr": 0.05, "model.hidden_size": 7})),
        encoding="utf-8",
    )
    calls = _calls(monkeypatch)
    argv = ["--file", str(ROOT / "presets.yaml"), "--params", str(path), "run", "gru_max"]
    assert main([*argv, "-S", "train.epochs=2", "--queue"]) == 0
    [cmd] = calls
    assert cmd[:6] == [sys.executable, "-m", "dvc", "exp", "run", "-n"] and cmd[6] == "gru_max"
    assert cmd[-1] == "--queue"
    sets = dict(a.split("=", 1) for a in cmd[8:-1:2])
    assert all(flag == "-S" for flag in cmd[7:-1:2])
    every = {f"{s}.{k}" for s, values in params.items() for k in values}
    assert set(sets) == every  # every parameter, not only those presets touch
    assert sets["model.cell"] == "gru" and sets["train.epochs"] == "2"
    assert sets["train.lr"] == str(params["train"]["lr"])  # HEAD's, not the workspace's 0.05
    assert sets["model.hidden_size"] == str(params["model"]["hidden_size"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "gru_catt"], "unknown preset 'gru_catt'; valid presets: rnn_max"),
        (["run", "gru_cat", "-S", "model.hiden=3"], "override 'model.hiden': no such parameter"),
        (["run", "gru_cat", "-S", "model.cell=transformer"], "model.cell: 'transformer' is inv"),
        (["run", "gru_cat", "-S", "train.epochs"], "-S 'train.epochs': expected section.key="),
    ],
)
def test_a_bad_run_calls_nothing(monkeypatch, capsys, argv, message):
    calls = _calls(monkeypatch)
    assert main(["--file", str(ROOT / "presets.yaml"), *argv]) == 2
    assert calls == [] and message in capsys.readouterr().err


def test_values_round_trip_through_dvc_set_param():
    # a string YAML would read as a number, bool or null is quoted; others are written bare
    assert overrides_args({"data.hub_revision": "123e4", "a.b": "yes", "c.d": "null"}) == [
        *("-S", 'data.hub_revision="123e4"', "-S", "a.b=yes", "-S", 'c.d="null"'),
    ]
    assert parse_sets(['data.hub_revision="123e4"', "model.fixed_len=null", "x.y=1e-3"]) == {
        "data.hub_revision": "123e4",
        "model.fixed_len": None,
        "x.y": 0.001,
    }
