"""python -m agnews predict: arguments, files, stdin, and input that is not a headline."""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT

from agnews.serving.predict import Predictor, main


@pytest.fixture
def cli(trained_model):
    base = ["--model", str(trained_model)]

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


def test_punctuation_only_and_very_long_texts(trained_model):
    predictor = Predictor(trained_model)
    empty, long = predictor.predict(["?!...", "market " * 5000])
    assert empty.label is None and "no words" in empty.note
    assert long.label is not None and long.note == "truncated to 256 tokens"


def test_missing_model_is_a_clear_error(capsys, tmp_path):
    args = ["--model", str(tmp_path / "none.pt")]
    assert main([*args, "text"]) == 2
    assert "none.pt: missing; run the train stage first" in capsys.readouterr().err


def _predict_rss(args: list[str], lines: int, tmp_path) -> tuple[int, int]:
    """(peak RSS in MiB of a `python -m agnews predict` process, output rows) for `lines`
    input lines, some of them blank."""
    src = tmp_path / f"in-{lines}.txt"
    with open(src, "w") as f:
        for i in range(lines):
            f.write("\n" if i % 97 == 0 else f"Stocks rally {i} as oil falls in market {i % 13}\n")
    out = tmp_path / f"out-{lines}.txt"
    code = (
        "import resource, runpy, sys; sys.argv = ['predict', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('agnews.serving.predict', run_name='__main__')\n"
        "finally:\n    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    with open(out, "w") as f:
        proc = subprocess.run(
            [sys.executable, "-c", code, *args, "--file", str(src)],
            stdout=f,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    with open(out) as f:
        rows = sum(1 for _ in f)
    return int(proc.stderr.strip().splitlines()[-1]) // 1024, rows


def test_large_inputs_stream_with_bounded_memory_one_row_per_line(trained_model, tmp_path):
    args = ["--model", str(trained_model)]
    small_rss, small_rows = _predict_rss(args, 2_000, tmp_path)
    big_rss, big_rows = _predict_rss(args, 100_000, tmp_path)
    assert (small_rows, big_rows) == (2_000, 100_000)
    assert big_rss - small_rss < 100, (small_rss, big_rss)  # MiB: not growing with the input


def _run_predict(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "agnews", "predict", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_checkpoint_alone_is_enough(trained_model, tmp_path, capsys):
    """Copied alone into an empty folder (no params.yaml, no prepared data), the checkpoint
    classifies exactly as it does beside the data it was trained from."""
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.copy(trained_model, alone / "model.pt")
    texts = ["Stocks rally as oil prices fall", "Federer wins the final"]
    proc = _run_predict(["--model", "model.pt", "--device", "cpu", "--json", *texts], alone)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in alone.iterdir()) == ["model.pt"]
    here = [p.__dict__ for p in Predictor(trained_model, "cpu").predict(texts)]
    assert [json.loads(line) for line in proc.stdout.splitlines()] == here


def test_device_flag(trained_model, capsys):
    assert main(["--model", str(trained_model), "--device", "cpu", "Markets slide"]) == 0
    assert capsys.readouterr().out.startswith(("World\t", "Sports\t", "Business\t", "Sci/Tech\t"))
    code = main(["--model", str(trained_model), "--device", "cuda", "Markets slide"])
    if torch.cuda.is_available():
        assert code == 0
    else:
        assert code == 2
        err = capsys.readouterr().err
        assert err == "error: --device: 'cuda' requested but no CUDA device is available\n"


def test_an_older_checkpoint_without_vocabularies_is_one_error_line(trained_model, tmp_path):
    payload = torch.load(trained_model, weights_only=True)
    del payload["vocab_files"]
    payload["format"] = 2
    torch.save(payload, tmp_path / "old.pt")
    proc = _run_predict(["--model", "old.pt", "a headline"], tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: old.pt: checkpoint format 2, written before the ")
    assert proc.stderr.count("\n") == 1 and "retrain it" in proc.stderr


def test_temperature_softens_the_probabilities_without_changing_labels(trained_model, capsys):
    texts = ["Stocks rally as oil prices fall", "Federer wins the final", "NASA probe"]
    plain = Predictor(trained_model, "cpu").predict(texts)
    warm = Predictor(trained_model, "cpu", temperature=2.0).predict(texts)
    for a, b in zip(plain, warm, strict=True):
        assert a.label == b.label
        p = np.array(list(a.probabilities.values()))
        expected = np.sqrt(p) / np.sqrt(p).sum()  # softmax(z / 2) from softmax(z)
        assert np.allclose(list(b.probabilities.values()), expected, atol=2e-3)
        assert max(b.probabilities.values()) < max(a.probabilities.values())
    assert main(["--model", str(trained_model), "--temperature", "0", "x"]) == 2
    assert capsys.readouterr().err == "error: --temperature: 0.0 is not a positive number\n"


def test_a_near_tie_gets_evaluates_label_not_the_rounded_maximum(trained_model, monkeypatch):
    """Probabilities [0.39996, 0.40004, 0.1, 0.1] round to 0.4 and 0.4: the label is still the
    argmax of the unrounded logits (Sports), the rule evaluate applies to predictions.csv."""
    from agnews.model.inference import predicted_labels

    predictor = Predictor(trained_model, "cpu")
    logits = torch.log(torch.tensor([[0.39996, 0.40004, 0.1, 0.1]]))  # (1, C)
    monkeypatch.setattr(
        predictor.model, "classify", lambda batch: logits.expand(len(batch.labels), -1)
    )
    [p] = predictor.predict(["Stocks rally as oil prices fall"])
    assert p.probabilities["World"] == p.probabilities["Sports"] == 0.4
    assert predicted_labels(logits.numpy()).tolist() == [1]
    assert p.label == "Sports"
