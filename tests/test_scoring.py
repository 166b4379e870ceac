import numpy as np

from agnews.evaluation.scoring import classification_metrics, confusion_csv, confusion_matrix


def test_metrics_match_hand_computation():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    preds = np.array([0, 0, 1, 1, 1, 2, 0, 0])
    cm = confusion_matrix(labels, preds)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [1, 0, 0, 0]]
    m = classification_metrics(labels, preds)
    assert m["accuracy"] == 5 / 8
    world = m["per_class"]["World"]  # tp 2, predicted 4, support 3
    assert world["precision"] == 0.5 and round(world["recall"], 4) == 0.6667
    assert round(world["f1"], 4) == round(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 4)
    tech = m["per_class"]["Sci/Tech"]  # never predicted: precision 0 by convention
    assert tech == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    f1s = [v["f1"] for v in m["per_class"].values()]
    assert abs(m["macro_f1"] - sum(f1s) / 4) < 1e-6


def test_confusion_csv_rows_use_class_names():
    text = confusion_csv(np.array([0, 3]), np.array([1, 3]))
    assert text.splitlines() == ["actual,predicted", "World,Sports", "Sci/Tech,Sci/Tech"]
