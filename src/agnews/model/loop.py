"""The training loop of one member: epochs of optimizer steps, validated `evals_per_epoch`
times per epoch (the best weights kept, early stopping on patience), with a NaN guard and the
loss curves. `run_epochs` and `train_epoch` read as their phases; each phase is a small helper
below them. The test split is never touched here."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from agnews.config import TrainConfig
from agnews.data.batching import Batch, InputSpec, make_batch, train_order, word_dropout
from agnews.data.shards import Shard
from agnews.errors import TrainingError
from agnews.model.checkpoints import Vocabularies
from agnews.model.classifier import TextClassifier
from agnews.model.grad_flow import grad_flow
from agnews.model.inference import predict_shard
from agnews.model.live_log import RunLog
from agnews.model.optimizers import clip_grad_norm
from agnews.model.train_state import TrainState

log = logging.getLogger(__name__)


@dataclass
class Data:
    vocabs: Vocabularies
    train: Shard
    val: Shard


@dataclass
class Setup:
    """What every member of a run shares: data, input settings, device, schedule lengths."""

    data: Data
    inputs: InputSpec
    bag_size: int | None
    device: torch.device
    steps_per_epoch: int
    amp: bool = False  # bf16 autocast (agnews.runtime.use_bf16_autocast)


def run_epochs(
    state: TrainState,
    setup: Setup,
    cfg: TrainConfig,
    run_log: RunLog,
    step_offset: int = 0,
    save: Callable[[TrainState], None] | None = None,
) -> None:
    """Train `state` from its last complete epoch to cfg.epochs, validating evals_per_epoch
    times per epoch and keeping the best weights in state.best; `save` is called after each
    epoch. Logged steps are shifted by `step_offset` (the members before this one).

    Early stopping: with cfg.patience = P > 0, training stops right after the P-th validation
    pass in a row without a new best (state.stop_reason "patience"); otherwise it runs all
    cfg.epochs ("max_epochs"), as it does when patience runs out at the very last pass, where
    nothing is left to stop (that epoch's loss is logged as any other's). Either way
    state.stopped_epoch says where it ended."""
    evals_at = eval_steps(setup.steps_per_epoch, cfg.evals_per_epoch)
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        epoch_loss = train_epoch(state, setup, cfg, run_log, epoch, evals_at, step_offset)
        if epoch_loss is not None:  # every batch ran (early stopping may still end the run)
            state.epoch = epoch
            mean_loss = (epoch_loss / len(setup.data.train)).item()
            run_log.epoch_end(step_offset + state.step, mean_loss)
        if state.stop_reason:
            log_early_stop(state, cfg)
            return  # nothing to save: the run ends here, its state is deleted
        if save is not None:  # the state a resumed run starts from
            save(state)
    state.stop_reason = "max_epochs"
    state.stopped_epoch = float(state.epoch)


def train_epoch(
    state: TrainState,
    setup: Setup,
    cfg: TrainConfig,
    run_log: RunLog,
    epoch: int,
    evals_at: set[int],
    step_offset: int,
) -> torch.Tensor | None:
    """One epoch of optimizer steps and its validation passes. Returns the epoch's summed
    loss (a 0-d tensor on the device) when all its batches ran, else None (early stopping cut
    it short); state.stop_reason is "patience" when early stopping ends the run here."""
    model, data, device = state.model, setup.data, setup.device
    model.train()
    batches = train_order(
        data.train.lengths, cfg.batch_size, state.rng, cfg.bucketing, cfg.bucket_chunk
    )
    curve, guard = LossCurve(device), NanGuard(device)
    started = time.perf_counter()  # training time, validation excluded
    bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", mininterval=1.0)
    for i, index in enumerate(bar, start=1):
        last = i == len(batches)
        # one optimizer step; the gradient flow of each epoch's last batch is kept
        batch = make_batch(data.train, index, setup.inputs)
        batch = word_dropout(batch, cfg.word_dropout, data.vocabs.words.unk_id).to(device)
        loss = train_step(state, batch, cfg, setup.amp, epoch if last else None)
        curve.add(loss, len(index))
        logged = state.step % cfg.log_every == 0 or last
        guard.check(loss, state.step, epoch, logged)
        if logged:  # the loss curve: the mean of the last log_every steps
            mean_loss = curve.window_mean()
            run_log.train_loss(step_offset + state.step, mean_loss, state.lr())
            bar.set_postfix(loss=f"{mean_loss:.4f}")
        if i in evals_at:
            state.train_seconds += time.perf_counter() - started
            position = round(epoch - 1 + i / len(batches), 4)
            out_of_patience = validation_pass(state, setup, cfg, run_log, position, step_offset)
            started = time.perf_counter()
            if out_of_patience and not (last and epoch == cfg.epochs):  # else: the run is done
                state.stop_reason = "patience"
                break
    bar.close()
    state.train_seconds += time.perf_counter() - started
    return None if state.stop_reason and not last else curve.epoch_sum


# --- the phases


def train_step(
    state: TrainState, batch: Batch, cfg: TrainConfig, use_amp: bool, flow_epoch: int | None
) -> torch.Tensor:
    """Forward, backward and an optimizer step on one batch (recording the gradient flow for
    epoch `flow_epoch` if given); returns the loss, detached and left on the device."""
    model, device = state.model, batch.labels.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
        logits = model.classify(batch)  # (B, C)
    loss = nn.functional.cross_entropy(logits.float(), batch.labels)  # () float32
    for optimizer in state.optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        clip_grad_norm(model, cfg.grad_clip)
    if flow_epoch is not None:
        state.grad_flows.append(grad_flow(model, flow_epoch))
    for optimizer, scheduler in zip(state.optimizers, state.schedulers, strict=True):
        optimizer.step()
        scheduler.step()
    state.step += 1
    state.samples += len(batch.labels)
    return loss.detach()


class LossCurve:
    """An epoch's summed loss (each batch's mean loss times its size) and the window of steps
    since the last point of the loss curve; 0-d tensors on the device, read only when logged."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.epoch_sum = torch.zeros((), device=device)
        self.window, self.window_n = torch.zeros((), device=device), 0

    def add(self, loss: torch.Tensor, batch_size: int) -> None:
        self.epoch_sum += loss * batch_size
        self.window, self.window_n = self.window + loss, self.window_n + 1

    def window_mean(self) -> float:
        """The window's mean loss; the next window starts empty."""
        mean = (self.window / self.window_n).item()
        self.window, self.window_n = torch.zeros((), device=self.device), 0
        return mean


class NanGuard:
    """Stops training at the first step whose loss is not finite. That step is kept on the
    device (no sync per step); it is read every step on CPU, where that is free, and at every
    point of the loss curve on CUDA. Either way the error names that very step."""

    def __init__(self, device: torch.device) -> None:
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)  # () step or -1
        self.every_step = device.type != "cuda"

    def check(self, loss: torch.Tensor, step: int, epoch: int, logged: bool) -> None:
        self.first_bad = torch.where(
            (self.first_bad < 0) & ~torch.isfinite(loss), step, self.first_bad
        )
        if (self.every_step or logged) and (bad := int(self.first_bad)) >= 0:
            raise TrainingError(
                f"training loss became {float(loss) if bad == step else 'nan/inf'} at "
                f"epoch {epoch}, step {bad}; lower train.lr or set train.grad_clip"
            )


def validation_pass(
    state: TrainState,
    setup: Setup,
    cfg: TrainConfig,
    run_log: RunLog,
    position: float,
    step_offset: int,
) -> bool:
    """Validate at `position` (fractional epochs), log it, keep the weights if they are the
    best so far and count the passes without a new best; True when patience has run out."""
    val_acc, val_loss = validate(state.model, setup.data.val, cfg.eval_batch_size)
    run_log.validation(step_offset + state.step, position, val_acc, val_loss)
    log.info("epoch %.2f: val_loss %.4f val_acc %.4f", position, val_loss, val_acc)
    improved = state.best.update(val_acc, val_loss, position, state.step, state.model)
    state.flat_evals = 0 if improved else state.flat_evals + 1
    state.stopped_epoch = position
    return bool(cfg.patience) and state.flat_evals >= cfg.patience


def validate(model: TextClassifier, val: Shard, batch_size: int) -> tuple[float, float]:
    """(accuracy, mean loss) on the validation shard."""
    preds, loss = predict_shard(model, val, batch_size)
    return float((preds == val.labels).mean()), loss


def eval_steps(steps_per_epoch: int, evals_per_epoch: int) -> set[int]:
    """1-based batch numbers within an epoch after which validation runs; the last is the end."""
    n = min(evals_per_epoch, steps_per_epoch)
    return {math.ceil(k * steps_per_epoch / n) for k in range(1, n + 1)}


def log_early_stop(state: TrainState, cfg: TrainConfig) -> None:
    log.info(
        "early stop at epoch %.2f of %d: %d validation passes without a new best "
        "(best %.4f at epoch %.2f)",
        state.stopped_epoch, cfg.epochs, state.flat_evals, state.best.val_acc, state.best.epoch,
    )  # fmt: skip
