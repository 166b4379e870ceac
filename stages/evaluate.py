"""Stage evaluate: score the test split once with the checkpoint selected on validation.

--model      train's checkpoint (paths.model)
--data       prepare's folder (paths.prepared_dir)
--metrics    metrics JSON: accuracy, macro-F1, per-class scores, the run's key params
--confusion  CSV of (actual, predicted) per test text, for the confusion-matrix plot
"""

from argparse import Namespace

from agnews.cli import run_stage
from agnews.config import Config
from agnews.evaluation import evaluate_checkpoint


def main(args: Namespace, cfg: Config) -> None:
    m = evaluate_checkpoint(
        args.model, args.data, args.metrics, args.confusion, cfg.evaluate.batch_size
    )
    print(f"evaluate: test accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}")


if __name__ == "__main__":
    run_stage(
        main,
        __doc__,
        {
            "--model": "checkpoint path (paths.model)",
            "--data": "prepared data folder (paths.prepared_dir)",
            "--metrics": "test metrics JSON (paths.test_metrics)",
            "--confusion": "confusion rows CSV (paths.confusion)",
        },
    )
