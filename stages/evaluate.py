"""Stage evaluate: score the test split once with the checkpoint selected on validation.

--model      train's checkpoint (paths.model)
--data       prepare's folder (paths.prepared_dir)
--metrics    metrics JSON: accuracy, macro-F1, per-class scores
--confusion  CSV of (actual, predicted) per test text, for the confusion-matrix plot
--raw        download's folder: test texts and their row numbers, for the analysis
--predictions, --errors, --per-class, --calibration, --reliability: the analysis outputs
             (per-row predictions, error analysis, per-class bars, ECE, reliability diagram)
"""

from argparse import Namespace
from pathlib import Path

from agnews.cli import run_stage
from agnews.config import Config
from agnews.evaluation.evaluate import EvaluatePaths, evaluate


def main(args: Namespace, cfg: Config) -> None:
    paths = EvaluatePaths(
        raw_dir=Path(args.raw),
        metrics=Path(args.metrics),
        confusion=Path(args.confusion),
        predictions=Path(args.predictions),
        errors=Path(args.errors),
        per_class=Path(args.per_class),
        calibration=Path(args.calibration),
        reliability=Path(args.reliability),
    )
    m, c = evaluate(args.model, args.data, paths, cfg.evaluate)
    print(f"evaluate: test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}")
    bins = cfg.evaluate.ece_bins
    line = f"evaluate: ECE ({bins} equal-width bins of the top-class probability) val "
    line += f"{c['val']['ece']:.4f}"
    if "temperature" in c:
        line += f" -> {c['val_calibrated']['ece']:.4f} at temperature {c['temperature']:.3f}"
    print(line)


if __name__ == "__main__":
    run_stage(
        main,
        __doc__,
        {
            "--model": "checkpoint path (paths.model)",
            "--data": "prepared data folder (paths.prepared_dir)",
            "--metrics": "test metrics JSON (paths.test_metrics)",
            "--confusion": "confusion rows CSV (paths.confusion)",
            "--raw": "raw data folder (paths.raw_dir)",
            "--predictions": "per-row test predictions CSV (paths.predictions)",
            "--errors": "error analysis Markdown (paths.errors)",
            "--per-class": "per-class scores CSV (paths.per_class)",
            "--calibration": "calibration metrics JSON (paths.calibration)",
            "--reliability": "reliability diagram CSV (paths.reliability)",
        },
    )
