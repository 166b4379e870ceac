"""python -m agnews.predict: arguments, files, stdin, and input that is not a headline."""

import io
import json
import sys

import pytest

from agnews.predict import Predictor, main


@pytest.fixture
def cli(trained_model, prepared_dir):
    base = ["--model", str(trained_model), "--data", str(prepared_dir)]

    def run(*args, stdin: bytes | None = None, monkeypatch=None):
        return main([*base, *args])

    return run


def test_arguments_print_label_and_probabilities(cli, capsys):
    assert cli("Stocks rally as oil prices fall", "Federer wins the final") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    label, probs, text = lines[0].split("\t")
    assert label in {"World", "Sports", "Business", "Sci/Tech"}
    values = dict(kv.split("=") for kv in probs.split())
    assert set(values) == {"World", "Sports", "Business", "Sci/Tech"}
    assert abs(sum(float(v) for v in values.values()) - 1.0) < 0.01
    assert text == "Stocks rally as oil prices fall"


def test_file_and_json_output_one_row_per_input_line(cli, capsys, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("NASA launches a probe\n\n   \n?!\nMarkets slide\n")
    assert cli("--file", str(f), "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["NASA launches a probe", "", "   ", "?!", "Markets slide"]
    assert [r["label"] is None for r in rows] == [False, True, True, True, False]
    assert [r["note"] for r in rows[1:4]] == [
        "empty line",
        "empty line",
        "no words left after preprocessing",
    ]
    labelled = [rows[0], rows[4]]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 0.01 for r in labelled)


def test_stdin(cli, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Oil prices rise\n")))
    assert cli() == 0
    assert capsys.readouterr().out.endswith("\tOil prices rise\n")


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (b"", "no input text"),
        (b"abc\x00\x01\x02", "stdin: line 1 has NUL bytes"),
        (b"ok line\n\xff\xfe\xfa\n", "stdin: line 2 is not valid UTF-8"),
    ],
)
def test_bad_stdin_is_a_clear_error(cli, capsys, monkeypatch, data, expect):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert cli() == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expect in err


def test_punctuation_only_and_very_long_texts(trained_model, prepared_dir):
    predictor = Predictor(trained_model, prepared_dir)
    empty, long = predictor.predict(["?!...", "market " * 5000])
    assert empty.label is None and "no words" in empty.note
    assert long.label is not None and long.note == "truncated to 256 tokens"


def test_missing_model_is_a_clear_error(capsys, tmp_path, prepared_dir):
    args = ["--model", str(tmp_path / "none.pt"), "--data", str(prepared_dir)]
    assert main([*args, "text"]) == 2
    assert "none.pt: missing; run the train stage first" in capsys.readouterr().err
