"""Evaluation: scores of predicted labels (scoring), evaluate's one path (evaluate), its
calibration and error analysis (analysis), the per-row predictions CSV (predictions) and
paired statistics between two sets of predictions (stats)."""
