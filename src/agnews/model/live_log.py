"""The dvclive log of a training run (`RunLog`), and trimming it back to the last complete
epoch before a run resumes (`trim_live_log`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agnews.atomic import atomic_path
from agnews.model.grad_flow import GradFlow, grad_flow_figure


class RunLog:
    """The dvclive log of a run: loss and learning-rate curves, validation curves, the summary
    that `dvc exp show` lists, and one gradient-flow picture. Metric names avoid the params'
    section names (a metric `train.lr` would collide with the param in `dvc exp show`)."""

    def __init__(self, live_dir: str | Path, resume: bool) -> None:
        from dvclive import Live  # heavy import, only when training

        self.live = Live(
            str(live_dir), resume=resume, dvcyaml=False, save_dvc_exp=False, report=None
        )

    def train_loss(self, step: int, loss: float, lr: float) -> None:
        self.live.step = step
        self.live.log_metric("loss/train", loss)
        self.live.log_metric("lr", lr)

    def validation(self, step: int, epoch: float, acc: float, loss: float) -> None:
        self.live.step = step
        self.live.log_metric("loss/val", loss)
        self.live.log_metric("acc/val", acc)
        self.live.log_metric("epoch", epoch)

    def epoch_end(self, step: int, epoch_loss: float) -> None:
        self.live.step = step
        self.live.log_metric("loss/train_epoch", epoch_loss)
        self.live.make_summary()

    def finish(self, summary: dict[str, Any], flows: list[GradFlow]) -> None:
        if flows:
            self.live.log_image("grad_flow.png", grad_flow_figure(flows))
        self.live.summary.update(summary)  # flat keys: dvc exp show columns best_val_acc, ...
        self.live.end()


def trim_live_log(live_dir: str | Path, step: int) -> None:
    """Drop dvclive rows logged after `step` (the interrupted epoch) before resuming."""
    for tsv in Path(live_dir, "plots", "metrics").rglob("*.tsv"):
        lines = tsv.read_text(encoding="utf-8").splitlines(keepends=True)
        header, rows = lines[:1], lines[1:]
        col = header[0].rstrip("\n").split("\t").index("step") if header else 0
        kept = [r for r in rows if int(r.split("\t")[col]) <= step]
        if len(kept) != len(rows):
            with atomic_path(tsv) as tmp:
                tmp.write_text("".join(header + kept), encoding="utf-8")
