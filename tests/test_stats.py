"""Paired statistics against hand-computed cases, and the predictions CSV format."""

import numpy as np
import pytest

from agnews.errors import DataError
from agnews.evaluation.predictions import (
    HEADER,
    check_same_rows,
    predictions_csv,
    read_predictions,
    write_predictions,
)
from agnews.evaluation.stats import compare, mcnemar_exact, paired_bootstrap


def _pair(only_a: int, only_b: int, both: int = 0, neither: int = 0):
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    return np.array(a, bool), np.array(b, bool)


def test_mcnemar_exact_by_hand():
    # 1 row only A right, 5 only B right: two-sided exact p = 2 * P(X <= 1), X ~ Bin(6, 1/2)
    # = 2 * (1 + 6) / 64 = 0.21875; agreeing rows do not enter
    assert mcnemar_exact(*_pair(1, 5, both=90, neither=4)) == (1, 5, pytest.approx(0.21875))
    # 0 vs 6: 2 / 64
    assert mcnemar_exact(*_pair(6, 0, both=10))[2] == pytest.approx(2 / 64)
    # 3 vs 3: symmetric, p = 1; no disagreement at all: p = 1
    assert mcnemar_exact(*_pair(3, 3))[2] == pytest.approx(1.0)
    assert mcnemar_exact(*_pair(0, 0, both=5)) == (0, 0, 1.0)


def test_paired_bootstrap_by_hand():
    # two rows, d = (+1, 0): a resample's mean is 0 (1/4), 0.5 (1/2) or 1 (1/4), so the 2.5%
    # and 97.5% percentiles are 0 and 1; the difference itself is 0.5
    diff, low, high = paired_bootstrap(*_pair(0, 1, both=1), resamples=20_000)
    assert (diff, low, high) == (0.5, 0.0, 1.0)
    # B right wherever A is, and on 10 more of 100 rows: d has 10 ones, 90 zeros; the bootstrap
    # mean is Binomial(100, 0.1) / 100: its 2.5% and 97.5% quantiles are 0.05 and 0.16
    diff, low, high = paired_bootstrap(*_pair(0, 10, both=80, neither=10), resamples=40_000)
    assert diff == pytest.approx(0.10)
    assert (low, high) == (pytest.approx(0.05), pytest.approx(0.16))
    # identical outcomes: the interval is the single point 0
    assert paired_bootstrap(*_pair(0, 0, both=7, neither=3)) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_is_the_negative_when_swapped_and_seeded():
    a, b = _pair(30, 45, both=900, neither=25)
    ab, ba = paired_bootstrap(a, b), paired_bootstrap(b, a)
    assert ab[0] == pytest.approx(0.015) and ba[0] == pytest.approx(-0.015)
    assert ab[1] == pytest.approx(-ba[2]) and ab[2] == pytest.approx(-ba[1])
    assert paired_bootstrap(a, b) == ab  # seeded
    r = compare(a, b)
    assert (r.only_a, r.only_b, r.n) == (30, 45, 1000)
    assert r.points() == f"+1.50 ({100 * ab[1]:+.2f} to {100 * ab[2]:+.2f})"


def test_outcome_arrays_must_pair_up():
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap(np.ones(3, bool), np.ones(4, bool))


def _sample_csv(tmp_path):
    labels, predicted = np.array([2, 0, 3]), np.array([2, 1, 3])
    probs = np.array([[0.1, 0.1, 0.7, 0.1], [0.2, 0.5, 0.2, 0.1], [0.0, 0.0, 0.00004, 0.99996]])
    path = tmp_path / "p.csv"
    write_predictions(path, labels, predicted, probs)
    return path, labels, predicted


def test_predictions_round_trip_in_the_agreed_format(tmp_path):
    path, labels, predicted = _sample_csv(tmp_path)
    lines = path.read_text().splitlines()
    assert lines[0] == "row,label,predicted,p_world,p_sports,p_business,p_scitech"
    assert lines[1] == "0,2,2,0.1000,0.1000,0.7000,0.1000"
    assert lines[3] == "2,3,3,0.0000,0.0000,0.0000,1.0000"  # 4 decimals
    p = read_predictions(path)
    assert p.labels.tolist() == labels.tolist() and p.predicted.tolist() == predicted.tolist()
    assert p.correct.tolist() == [True, False, True] and p.accuracy == pytest.approx(2 / 3)
    assert p.probs.shape == (3, 4) and p.probs[1, 1] == 0.5
    assert len(HEADER) == 7


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("p_world", "p_World"), "expected the header"),
        (lambda t: t.replace("\n1,0,1,", "\n2,0,1,"), r"row 4: row index 2, expected after 2"),
        (lambda t: t.replace("\n0,2,2,", "\n-1,2,2,"), r"row 2: row index -1, expected >= 0"),
        (lambda t: t.replace("\n1,0,1,", "\n1,0,4,"), r"row 3: class ids must be in 0\.\.3"),
        (lambda t: t.replace("0.5000", "0.9000"), r"row 3: probabilities must .* sum to 1"),
        (lambda t: t.replace("0.5000", "x"), r"row 3: not numbers"),
        (lambda t: t.replace(",0.5000", ""), r"row 3: expected 7 fields, found 6"),
        (lambda t: t.splitlines()[0] + "\n", "no rows"),
    ],
)
def test_a_malformed_predictions_file_is_named_with_its_row(tmp_path, edit, message):
    path, _, _ = _sample_csv(tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(DataError, match=message):
        read_predictions(path)


def test_runs_on_other_test_rows_are_not_compared(tmp_path):
    path, labels, predicted = _sample_csv(tmp_path)
    other = tmp_path / "o.csv"
    other.write_text(predictions_csv(labels[::-1], predicted, np.full((3, 4), 0.25)))
    with pytest.raises(DataError, match="not scored on the same test rows"):
        check_same_rows(read_predictions(path), read_predictions(other), ("a", "b"))
    check_same_rows(read_predictions(path), read_predictions(path), ("a", "a"))
