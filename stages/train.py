"""Stage train: fit the model described by params `model` with params `train`.

--data   prepare's folder (paths.prepared_dir)
--model  checkpoint path, the weights with the best validation accuracy (paths.model)
--live   dvclive folder: losses, validation curves, gradient-flow images (paths.train_live_dir)
--state  resumable training state, used with train.resume (paths.train_state)
"""

from argparse import Namespace

from agnews.cli import run_stage
from agnews.config import Config
from agnews.model.training import train_model


def main(args: Namespace, cfg: Config) -> None:
    best = train_model(args.data, args.model, args.live, cfg.model, cfg.train, args.state)
    why = "early stop" if best["stop_reason"] == "patience" else best["stop_reason"]
    print(
        f"train: best validation accuracy {best['best_val_acc']:.4f} at epoch "
        f"{best['best_epoch']}, stopped at epoch {best['stopped_epoch']:g} of "
        f"{cfg.train.epochs} ({why}), {best['samples_per_s']:.0f} samples/s on {best['device']}"
    )


if __name__ == "__main__":
    run_stage(
        main,
        __doc__,
        {
            "--data": "prepared data folder (paths.prepared_dir)",
            "--model": "checkpoint path (paths.model)",
            "--live": "dvclive folder (paths.train_live_dir)",
            "--state": "resumable training state (paths.train_state)",
        },
    )
