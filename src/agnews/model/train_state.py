"""The state of a training run: `Best` (the best validation point and its weights) and
`TrainState` (everything a run needs to continue after its last complete epoch: one object,
saved and restored as a whole, under the identity of the run and member it belongs to)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agnews.model.checkpoints import check_intact, save_atomically
from agnews.model.classifier import TextClassifier
from agnews.model.grad_flow import GradFlow

log = logging.getLogger(__name__)


@dataclass
class Best:
    """The best validation point so far, and a copy of the weights that scored it."""

    val_acc: float = -1.0
    val_loss: float = float("nan")
    epoch: float = 0.0
    step: int = 0
    weights: dict[str, torch.Tensor] | None = None

    def update(self, val_acc: float, val_loss: float, epoch: float, step: int, model) -> bool:
        """Keep `model`'s weights if `val_acc` beats the best so far (ties keep the earlier)."""
        if not val_acc > self.val_acc:
            return False
        self.val_acc, self.val_loss, self.epoch, self.step = val_acc, val_loss, epoch, step
        self.weights = copy.deepcopy(model.state_dict())
        return True

    def summary(self) -> dict[str, Any]:
        return {
            "best_val_acc": round(self.val_acc, 6),
            "best_val_loss": round(self.val_loss, 6),
            "best_epoch": self.epoch,
            "best_step": self.step,
        }


@dataclass
class TrainState:
    """Everything a run needs to continue after its last complete epoch."""

    model: TextClassifier
    optimizers: list[torch.optim.Optimizer]  # the network's, and SparseAdam's for n-gram tables
    schedulers: list[torch.optim.lr_scheduler.LRScheduler]  # one per optimizer, same schedule
    rng: np.random.Generator  # the batch order
    epoch: int = 0  # last complete epoch
    step: int = 0  # optimizer steps so far
    samples: int = 0
    train_seconds: float = 0.0  # time in training steps, validation excluded
    best: Best = field(default_factory=Best)
    grad_flows: list[GradFlow] = field(default_factory=list)  # one per epoch
    flat_evals: int = 0  # validation passes since the last new best (early stopping)
    stopped_epoch: float = 0.0  # where training stopped (fractional epochs)
    stop_reason: str = ""  # "patience" (early stopping) or "max_epochs"

    def lr(self) -> float:
        """The network's current learning rate."""
        return self.schedulers[0].get_last_lr()[0]

    def save(self, path: str | Path, identity: dict) -> None:
        device = next(self.model.parameters()).device
        save_atomically(
            path,
            {
                "identity": identity,
                "epoch": self.epoch,
                "step": self.step,
                "samples": self.samples,
                "train_seconds": self.train_seconds,
                "model_state": self.model.state_dict(),
                "optimizer_states": [o.state_dict() for o in self.optimizers],
                "scheduler_states": [s.state_dict() for s in self.schedulers],
                "flat_evals": self.flat_evals,
                "numpy_rng": self.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "best": dict(vars(self.best)),
                "grad_flows": [vars(g) for g in self.grad_flows],
            },
        )

    def restore(self, path: str | Path, identity: dict) -> bool:
        """Load the state saved at `path` if it belongs to this very run and member (same
        `identity`: configs, data, member index); otherwise leave everything as it is and say
        why."""
        path = Path(path)
        if not path.is_file():
            return False
        device = next(self.model.parameters()).device
        try:
            check_intact(path)
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged state is not worth failing for: start over
            log.warning("ignoring unreadable training state %s: %s", path, exc)
            return False
        if not isinstance(saved, dict) or saved.get("identity") != identity:
            log.warning(
                "ignoring training state %s: it belongs to other params, data or member", path
            )
            return False
        self.model.load_state_dict(saved["model_state"])
        for optimizer, state in zip(self.optimizers, saved["optimizer_states"], strict=True):
            optimizer.load_state_dict(state)
        for scheduler, state in zip(self.schedulers, saved["scheduler_states"], strict=True):
            scheduler.load_state_dict(state)
        self.flat_evals = saved["flat_evals"]
        self.rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        if device.type == "cuda" and saved["cuda_rng"] is not None:  # dropout masks on the GPU
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        self.epoch, self.step = saved["epoch"], saved["step"]
        self.samples, self.train_seconds = saved["samples"], saved["train_seconds"]
        self.best = Best(**saved["best"])
        self.grad_flows = [GradFlow(**g) for g in saved["grad_flows"]]
        return True
