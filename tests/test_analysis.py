"""Evaluate's analysis: the ECE by hand, temperature scaling, the per-row predictions format,
the error analysis, and the evaluate stage writing all of it from the fixture's tiny model."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from agnews.config import EvaluateConfig
from agnews.data.raw import read_raw
from agnews.data.shards import shard_from_ids
from agnews.errors import DataError
from agnews.evaluation.analysis import (
    errors_report,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
)
from agnews.evaluation.evaluate import EvaluatePaths, evaluate, raw_texts
from agnews.evaluation.predictions import HEADER, predictions_csv, read_predictions
from agnews.model.checkpoints import load_model
from agnews.model.inference import load_checked_shard, shard_logits
from agnews.model.inference import probabilities as softmax


def _probs(top: list[float], predicted: list[int]) -> np.ndarray:
    """(N, 4) probabilities: `top` on the predicted class, the rest shared by the others."""
    p = np.zeros((len(top), 4))
    for i, (t, c) in enumerate(zip(top, predicted, strict=True)):
        p[i] = (1 - t) / 3
        p[i, c] = t
    return p


def test_ece_by_hand():
    # 2 bins: [0, 0.5] and (0.5, 1]. Bin 1 holds 0.9 (right), 0.8 (wrong), 0.6 (right): mean
    # confidence 2.3/3, accuracy 2/3, gap 0.1, weight 3/5. Bin 0 holds 0.4 (right) and exactly
    # 0.5 (wrong: a bin's upper edge is in it): confidence 0.45, accuracy 1/2, gap 0.05, weight
    # 2/5. ECE = 0.06 + 0.02 = 0.08.
    probs = _probs([0.9, 0.8, 0.6, 0.4, 0.5], [0, 1, 2, 3, 0])
    labels = np.array([0, 0, 2, 3, 1])
    table = reliability(probs, labels, bins=2)
    assert [(r["lo"], r["hi"], r["count"]) for r in table] == [(0.0, 0.5, 2), (0.5, 1.0, 3)]
    assert table[0]["confidence"] == pytest.approx(0.45)
    assert table[1]["accuracy"] == pytest.approx(2 / 3)
    assert expected_calibration_error(probs, labels, bins=2) == pytest.approx(0.08)
    # perfectly calibrated: all at 0.75 confidence, 3 of 4 right
    probs = _probs([0.75] * 4, [0, 1, 2, 3])
    assert expected_calibration_error(probs, np.array([0, 1, 2, 0]), bins=10) == pytest.approx(0)


def test_temperature_scaling_fixes_an_over_confident_model():
    """Logits that are right 70% of the time but ~99.9% sure: the fitted temperature is > 1, and
    lowers the NLL and the ECE; it is the NLL's minimum."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    predicted = np.where(rng.random(2000) < 0.7, labels, rng.integers(0, 4, 2000))
    logits = rng.normal(0, 0.5, (2000, 4)) + 8.0 * np.eye(4)[predicted]
    t = fit_temperature(logits, labels)
    assert t > 1.5
    assert nll(logits, labels, t) < nll(logits, labels) - 0.5
    for other in (t * 1.05, t / 1.05):
        assert nll(logits, labels, t) < nll(logits, labels, other)
    before = expected_calibration_error(softmax(logits), labels, 15)
    after = expected_calibration_error(softmax(logits, t), labels, 15)
    assert before > 0.2 and after < 0.05
    assert np.array_equal(softmax(logits, t).argmax(1), logits.argmax(1))  # labels unchanged


def test_predictions_csv_is_the_agreed_format(tmp_path):
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [0.97, 0.01, 0.01, 0.01]])
    text = predictions_csv(np.array([3, 1]), probs.argmax(1), probs, rows=np.array([0, 5]))
    assert text == (
        "row,label,predicted,p_world,p_sports,p_business,p_scitech\n"
        "0,3,3,0.1000,0.2000,0.3000,0.4000\n"
        "5,1,0,0.9700,0.0100,0.0100,0.0100\n"
    )
    (tmp_path / "p.csv").write_text(text)  # the ladder's reader keeps the raw row indices
    assert read_predictions(tmp_path / "p.csv").rows.tolist() == [0, 5]


def test_errors_report_pairs_and_confident_mistakes():
    # true classes 0 0 0 1 1 2 3; World->Sports twice (0.9, 0.6), Sports->World once (0.8)
    labels = np.array([0, 0, 0, 1, 1, 2, 3])
    probs = _probs([0.6, 0.9, 0.7, 0.8, 0.5, 0.9, 0.9], [1, 1, 0, 0, 1, 2, 3])
    texts = [f"headline {i}" for i in range(7)]
    report = errors_report(labels, probs, texts, np.arange(10, 17), examples=5)
    assert "3 of 7 test texts misclassified" in report
    assert "| World | 1 (33.3%) | 2 (66.7%) | 0 (0.0%) | 0 (0.0%) |" in report
    pairs = report.split("## The 2 most confused pairs")[1].split("## The 3 most confident")
    first, second = pairs[0].split("### ")[1:]
    assert first.startswith("World taken for Sports: 2 texts (66.7%)")
    assert first.index("| 11 | World | Sports | 0.900 | headline 1 |") < first.index(
        "| 10 | World | Sports | 0.600 | headline 0 |"
    )
    assert second.startswith("Sports taken for World: 1 texts (50.0%)")
    lines = pairs[1].splitlines()
    mistakes = [c for line in lines if (c := line.split("|")[1:2] and line.split("|")[1].strip())]
    mistakes = [c for c in mistakes if c.isdigit()]
    assert mistakes == ["11", "13", "10"]  # by confidence: 0.9, 0.8, 0.6


def test_raw_texts_follow_the_rows_prepare_recorded(tmp_path):
    (tmp_path / "test.jsonl").write_text(
        '{"label": 1, "text": "Federer wins"}\n{"label": 0, "text": "?!"}\n'
        '{"label": 2, "text": "Stocks fall"}\n'
    )
    ids = [np.array([2, 5, 3]), np.array([2, 6, 3])]
    shard = dataclasses.replace(shard_from_ids(ids, [1, 2]), rows=np.array([0, 2]))
    assert raw_texts(tmp_path, "test", shard) == ["Federer wins", "Stocks fall"]
    other = dataclasses.replace(shard_from_ids(ids, [1, 1]), rows=np.array([0, 2]))
    with pytest.raises(DataError, match=r"test\.jsonl: .* different runs"):
        raw_texts(tmp_path, "test", other)
    beyond = dataclasses.replace(shard, rows=np.array([0, 3]))
    with pytest.raises(DataError, match=r"test\.jsonl: 3 rows, but .* names row 3"):
        raw_texts(tmp_path, "test", beyond)
    with pytest.raises(DataError, match="older prepare"):
        raw_texts(tmp_path, "test", shard_from_ids(ids, [1, 2]))


def _column(name: str) -> str:
    return {"World": "p_world", "Sports": "p_sports", "Business": "p_business"}.get(
        name, "p_scitech"
    )


@pytest.mark.parametrize("calibrate", [False, True])
def test_evaluate_writes_every_analysis_output(trained_model, prepared_dir, tmp_path, calibrate):
    raw_dir = prepared_dir.parent / "raw"
    paths = EvaluatePaths.in_folder(raw_dir, tmp_path)
    cfg = EvaluateConfig(batch_size=64, calibrate=calibrate, ece_bins=10, error_examples=3)
    metrics, calibration = evaluate(trained_model, prepared_dir, paths, cfg)
    raw = read_raw(raw_dir, "test")
    with open(paths.predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    assert paths.predictions.read_text().splitlines()[0] == ",".join(HEADER)
    assert [int(r["row"]) for r in rows] == list(range(len(raw)))  # no text dropped here
    assert [int(r["label"]) for r in rows] == [e.label for e in raw]
    confusion = paths.confusion.read_text().splitlines()[1:]
    names = ["World", "Sports", "Business", "Sci/Tech"]
    assert [names[int(r["predicted"])] for r in rows] == [c.split(",")[1] for c in confusion]
    for r in rows:
        p = [float(r[k]) for k in ("p_world", "p_sports", "p_business", "p_scitech")]
        assert abs(sum(p) - 1) < 3e-4 and p[int(r["predicted"])] == max(p)  # (ties rounded)
        assert all(len(r[k].split(".")[1]) == 4 for k in r if k.startswith("p_"))
    right = sum(r["label"] == r["predicted"] for r in rows)
    assert right / len(rows) == pytest.approx(metrics["accuracy"], abs=1e-6)

    report = paths.errors.read_text()
    assert f"{len(rows) - right} of {len(rows)} test texts misclassified" in report
    assert "most confused pairs" in report and "most confident mistakes" in report
    mistakes = report.split("most confident mistakes")[1].splitlines()[4:]  # after the header
    assert len(mistakes) == min(3, len(rows) - right)
    for line in mistakes:  # each names its raw row, its true class and its headline
        row, true, predicted, p, headline = (c.strip() for c in line.strip("|").split("|"))
        assert names.index(true) == raw[int(row)].label != names.index(predicted)
        assert headline[:30] == " ".join(raw[int(row)].text.split())[:30]
        assert float(p) == pytest.approx(float(rows[int(row)][_column(predicted)]), abs=1e-3)

    per_class = paths.per_class.read_text().splitlines()
    assert per_class[0] == "class,metric,value" and len(per_class) == 1 + 4 * 3
    assert per_class[1] == f"World,precision,{metrics['per_class']['World']['precision']:.4f}"

    assert json.loads(paths.calibration.read_text()) == calibration
    assert 0 <= calibration["val"]["ece"] <= 1 and 0 <= calibration["test"]["ece"] <= 1

    table = [line.split(",") for line in paths.reliability.read_text().splitlines()[1:]]
    splits = {t[0] for t in table}
    val_bins = [(int(t[4]), float(t[2]), float(t[3])) for t in table if t[0] == "val"]
    n_val = sum(n for n, _, _ in val_bins)
    ece = sum(n / n_val * abs(acc - conf) for n, conf, acc in val_bins)
    assert calibration["val"]["ece"] == pytest.approx(ece, abs=1e-3)  # the diagram's rows
    # predictions.csv holds the probabilities the shown split's reliability rows describe:
    # calibrated ones when evaluate.calibrate
    shown = "test_calibrated" if calibrate else "test"
    confidence = sum(float(t[2]) * int(t[4]) for t in table if t[0] == shown) / len(rows)
    top = np.mean([max(float(r[_column(n)]) for n in names) for r in rows])
    assert confidence == pytest.approx(top, abs=2e-4)
    if calibrate:
        assert splits == {"val", "test", "val_calibrated", "test_calibrated"}
        assert calibration["temperature"] > 0
        assert calibration["val_calibrated"]["nll"] <= calibration["val"]["nll"]
    else:
        assert splits == {"val", "test"} and "temperature" not in calibration


def test_evaluate_refuses_raw_data_of_another_run(trained_model, prepared_dir, tmp_path):
    raw_dir = tmp_path / "raw"
    shutil.copytree(prepared_dir.parent / "raw", raw_dir)
    lines = (raw_dir / "test.jsonl").read_text().splitlines(keepends=True)
    (raw_dir / "test.jsonl").write_text("".join(lines[1:]))
    paths = EvaluatePaths.in_folder(raw_dir, tmp_path / "out")
    cfg = EvaluateConfig(batch_size=64, calibrate=False, ece_bins=10, error_examples=3)
    with pytest.raises(DataError, match="different runs"):
        evaluate(trained_model, prepared_dir, paths, cfg)
    assert not (tmp_path / "out").exists()


def test_the_temperature_is_fitted_on_validation_never_test(trained_model, prepared_dir, tmp_path):
    """evaluate.calibrate's temperature is the one that validation's logits give; test's
    logits give another (checked here, so the test can tell them apart)."""
    paths = EvaluatePaths.in_folder(prepared_dir.parent / "raw", tmp_path)
    cfg = EvaluateConfig(batch_size=64, calibrate=True, ece_bins=10, error_examples=3)
    _, calibration = evaluate(trained_model, prepared_dir, paths, cfg)
    model, _, vocabs = load_model(trained_model, prepared_dir, torch.device("cpu"))
    fitted = {}
    for split in ("val", "test"):
        shard = load_checked_shard(prepared_dir / f"{split}.npz", vocabs)
        fitted[split] = round(fit_temperature(shard_logits(model, shard, 64)[0], shard.labels), 6)
    assert fitted["val"] != fitted["test"]
    assert calibration["temperature"] == fitted["val"]
