"""Training: seeded, device-aware, logged with dvclive, selecting the checkpoint on validation.

The loop evaluates on the validation split `evals_per_epoch` times per epoch and keeps the
weights with the best validation accuracy; the test split is never touched here. Its pieces:
`Best` (the best validation point and its weights), `TrainState` (everything a run needs to
continue after its last complete epoch: one object, saved and restored as a whole), `RunLog`
(the dvclive log), `train_step` and `validate`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from agnews.atomic import atomic_path
from agnews.config import ModelConfig, TrainConfig, to_dict
from agnews.data.batching import Batch, InputSpec, make_batch, train_order, word_dropout
from agnews.data.shards import Shard, load_shard
from agnews.errors import DataError, TrainingError
from agnews.model.checkpoints import Vocabularies, check_intact, save_atomically, save_checkpoint
from agnews.model.classifier import Ensemble, TextClassifier, uses_ngrams
from agnews.model.grad_flow import GradFlow, grad_flow_figure
from agnews.model.inference import predict_shard
from agnews.provenance import code_hash
from agnews.runtime import pick_device, seed_everything

log = logging.getLogger(__name__)

# --- small helpers


def ngram_tables(model: nn.Module) -> list[nn.EmbeddingBag]:
    """The model's n-gram tables (model.ngram_dim's bag, model.ngram_logits' linear model)."""
    tables = (getattr(model, "bag", None), getattr(model, "ngram_logits", None))
    return [t for t in tables if t is not None]


def make_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """The optimizers of a model: one over the network at train.lr and, if the model has one,
    the n-gram linear model at train.ngram_lr with its own L2 penalty,
    train.ngram_weight_decay.

    With train.sparse_ngrams the n-gram tables are switched to sparse gradients and get a
    second optimizer, torch.optim.SparseAdam (the bag at train.lr, the linear model at
    train.ngram_lr): a step then reads and writes only the rows its batch touched, where dense
    Adam passes over all of each table's rows (31M parameters in wide_deep) several times per
    step, and the moments of untouched rows decay into float32 denormals (bench/
    sparse_ngrams.py). Like every lazy Adam it leaves a row alone while batches skip it, where
    dense Adam keeps moving it along its decaying momentum: wide_deep learned worse (1.34
    validation points on 3 paired seeds, bench/README.md), so it is off by default."""
    wide = getattr(model, "ngram_logits", None)
    bag = getattr(model, "bag", None)
    sparse = cfg.sparse_ngrams and cfg.optimizer in ("adam", "adamw")
    tables = ngram_tables(model) if sparse else [t for t in (wide,) if t is not None]
    table_ids = {id(p) for t in tables for p in t.parameters()}
    groups: list = [{"params": [p for p in model.parameters() if id(p) not in table_ids]}]
    table_groups: list = []
    if sparse and bag is not None:
        table_groups.append({"params": list(bag.parameters()), "lr": cfg.lr})
    if wide is not None:
        table_groups.append(
            {
                "params": list(wide.parameters()),
                "lr": cfg.ngram_lr,
                "weight_decay": cfg.ngram_weight_decay,
            }
        )
    if sparse:
        for table in tables:
            table.sparse = True  # backward returns only the touched rows' gradients
        for group in table_groups:
            group.pop("weight_decay", None)  # zero: the config refuses anything else
        optimizers = [_dense_optimizer(groups, cfg)]
        if table_groups:
            optimizers.append(torch.optim.SparseAdam(table_groups, lr=cfg.lr))
        return optimizers
    return [_dense_optimizer(groups + table_groups, cfg)]


def _dense_optimizer(groups: list, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":  # fused: one kernel for all parameters, on CPU and CUDA
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def clip_grad_norm(model: nn.Module, max_norm: float) -> torch.Tensor:
    """torch.nn.utils.clip_grad_norm_ over every gradient, sparse ones included (their
    duplicate rows summed first): the same global norm as dense gradients would have."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not any(p.grad.is_sparse for p in params):
        return nn.utils.clip_grad_norm_(params, max_norm)
    grads = []
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad._values())
        else:
            grads.append(p.grad)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale)
    return total


def get_lr_factor(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
    if cfg.lr_schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def eval_steps(steps_per_epoch: int, evals_per_epoch: int) -> set[int]:
    """1-based batch numbers within an epoch after which validation runs; the last is the end."""
    n = min(evals_per_epoch, steps_per_epoch)
    return {math.ceil(k * steps_per_epoch / n) for k in range(1, n + 1)}


def grad_flow(model: nn.Module, epoch: int) -> GradFlow:
    """Per weight tensor (biases skipped, as the notebook): mean and max |grad|."""
    names, means, maxes = [], [], []
    for name, p in model.named_parameters():
        if p.requires_grad and p.grad is not None and "bias" not in name:
            g = p.grad.detach()
            if g.is_sparse:  # the untouched rows' gradients are zeros
                values = g.coalesce().values().abs()
                mean, top = values.sum().item() / p.numel(), values.max().item()
            else:
                mean, top = g.abs().mean().item(), g.abs().max().item()
            names.append(name)
            means.append(mean)
            maxes.append(top)
    return GradFlow(epoch, names, means, maxes)


@dataclass
class Data:
    vocabs: Vocabularies
    train: Shard
    val: Shard


def load_data(data_dir: str | Path, with_ngrams: bool) -> Data:
    data_dir = Path(data_dir)
    data = Data(
        Vocabularies.load(data_dir, with_ngrams),
        load_shard(data_dir / "train.npz"),
        load_shard(data_dir / "val.npz"),
    )
    for name, shard in (("train", data.train), ("val", data.val)):
        try:
            shard.check_vocabularies(data.vocabs.words, data.vocabs.ngrams)
        except DataError as exc:
            raise DataError(f"{data_dir / name}.npz: {exc}") from None
    return data


def run_identity(data_dir: str | Path, model_cfg: ModelConfig, cfg: TrainConfig) -> dict:
    """What a saved training state must match to be resumed: configs and data digests."""
    data_dir = Path(data_dir)
    names = ["vocab.json", "train.npz", "val.npz"]
    names += ["ngrams.json"] if (data_dir / "ngrams.json").exists() else []
    digests = {n: hashlib.sha256((data_dir / n).read_bytes()).hexdigest() for n in names}
    train = {k: v for k, v in to_dict(cfg).items() if k != "resume"}
    return {"model": to_dict(model_cfg), "train": train, "data": digests}


# --- the state of a run


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
        """Load the state saved at `path` if it belongs to this very run (same configs and
        data); otherwise leave everything as it is and say why."""
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
            log.warning("ignoring training state %s: it belongs to other params or data", path)
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


# --- one step, one validation pass


def train_step(
    state: TrainState, batch: Batch, cfg: TrainConfig, use_amp: bool, flow_epoch: int | None
) -> torch.Tensor:
    """Forward, backward and an optimizer step on one batch (recording the gradient flow for
    epoch `flow_epoch` if given); returns the loss, detached and left on the device."""
    model, device = state.model, batch.labels.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
        logits = model.classify(batch)  # (B, C)
    loss = nn.functional.cross_entropy(logits.float(), batch.labels)
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


def validate(model: TextClassifier, val: Shard, batch_size: int) -> tuple[float, float]:
    """(accuracy, mean loss) on the validation shard."""
    preds, loss = predict_shard(model, val, batch_size)
    return float((preds == val.labels).mean()), loss


# --- the loop


@dataclass
class Setup:
    """What every member of a run shares: data, input settings, device, schedule lengths."""

    data: Data
    inputs: InputSpec
    bag_size: int | None
    device: torch.device
    steps_per_epoch: int


def new_member(setup: Setup, model_cfg: ModelConfig, cfg: TrainConfig, seed: int) -> TrainState:
    """A freshly initialised model (seeded), its optimizer and schedule, as a TrainState."""
    seed_everything(seed)
    words = len(setup.data.vocabs.words)
    model = TextClassifier(model_cfg, words, setup.inputs, setup.bag_size).to(setup.device)
    optimizers = make_optimizers(model, cfg)
    # the schedule spans train.epochs, the maximum: a run that stops early is the prefix of
    # the run that does not (same weights at every step before the stop)
    total_steps = cfg.epochs * setup.steps_per_epoch
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(o, lambda s: get_lr_factor(s, total_steps, cfg))
        for o in optimizers
    ]
    return TrainState(model, optimizers, schedulers, np.random.default_rng(seed))


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
    cfg.epochs ("max_epochs"). Either way state.stopped_epoch says where it ended."""
    model, data, device = state.model, setup.data, setup.device
    use_amp = cfg.amp and device.type == "cuda"
    evals_at = eval_steps(setup.steps_per_epoch, cfg.evals_per_epoch)
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        model.train()
        batches = train_order(
            data.train.lengths, cfg.batch_size, state.rng, cfg.bucketing, cfg.bucket_chunk
        )
        epoch_loss = torch.zeros((), device=device)
        window_loss, window_n = torch.zeros((), device=device), 0
        first_bad = torch.full((), -1, dtype=torch.long, device=device)  # NaN guard, below
        started = time.perf_counter()
        bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", mininterval=1.0)
        for i, index in enumerate(bar, start=1):
            # one optimizer step; the gradient flow of each epoch's last batch is kept
            batch = make_batch(data.train, index, setup.inputs)
            batch = word_dropout(batch, cfg.word_dropout, data.vocabs.words.unk_id).to(device)
            loss = train_step(state, batch, cfg, use_amp, epoch if i == len(batches) else None)
            epoch_loss += loss * len(index)
            window_loss, window_n = window_loss + loss, window_n + 1

            # NaN guard: the first step whose loss is not finite is kept on the device (no sync
            # per step); it is read every step on CPU, where that is free, and at every point
            # of the loss curve on CUDA. Either way the error names that very step.
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), state.step, first_bad)
            logged = state.step % cfg.log_every == 0 or i == len(batches)
            if (device.type != "cuda" or logged) and (bad := int(first_bad)) >= 0:
                raise TrainingError(
                    f"training loss became {float(loss) if bad == state.step else 'nan/inf'} at "
                    f"epoch {epoch}, step {bad}; lower train.lr or set train.grad_clip"
                )

            # the loss curve (mean of the last log_every steps)
            if logged:
                mean_loss = (window_loss / window_n).item()
                lr = state.schedulers[0].get_last_lr()[0]
                run_log.train_loss(step_offset + state.step, mean_loss, lr)
                bar.set_postfix(loss=f"{mean_loss:.4f}")
                window_loss, window_n = torch.zeros((), device=device), 0

            # validation, evals_per_epoch times per epoch; the best weights are kept
            if i in evals_at:
                state.train_seconds += time.perf_counter() - started
                val_acc, val_loss = validate(model, data.val, cfg.eval_batch_size)
                position = round(epoch - 1 + i / len(batches), 4)
                run_log.validation(step_offset + state.step, position, val_acc, val_loss)
                log.info("epoch %.2f: val_loss %.4f val_acc %.4f", position, val_loss, val_acc)
                improved = state.best.update(val_acc, val_loss, position, state.step, model)
                state.flat_evals = 0 if improved else state.flat_evals + 1
                state.stopped_epoch = position
                started = time.perf_counter()
                if cfg.patience and state.flat_evals >= cfg.patience:
                    state.stop_reason = "patience"
                    break

        # end of epoch (or of training): its mean loss, and the state a resumed run starts from
        bar.close()
        state.train_seconds += time.perf_counter() - started
        if state.stop_reason:
            log.info(
                "early stop at epoch %.2f of %d: %d validation passes without a new best "
                "(best %.4f at epoch %.2f)",
                state.stopped_epoch, cfg.epochs, state.flat_evals, state.best.val_acc,
                state.best.epoch,
            )  # fmt: skip
            return  # nothing to save: the run ends here, its state is deleted
        state.epoch = epoch
        run_log.epoch_end(step_offset + state.step, (epoch_loss / len(data.train)).item())
        if save is not None:
            save(state)
    state.stop_reason = "max_epochs"
    state.stopped_epoch = float(state.epoch)


def stop_summary(members: list[TrainState]) -> dict[str, Any]:
    """Where training stopped and why, for the run's metrics: `stopped_epoch` (the members'
    mean for an ensemble), `stopped_step` (optimizer steps of all members) and `stop_reason`
    ("patience" or "max_epochs"; "mixed" when an ensemble's members differ)."""
    reasons = {m.stop_reason for m in members}
    return {
        "stopped_epoch": round(sum(m.stopped_epoch for m in members) / len(members), 4),
        "stopped_step": sum(m.step for m in members),
        "stop_reason": reasons.pop() if len(reasons) == 1 else "mixed",
    }


def train_model(
    data_dir: str | Path,
    model_path: str | Path,
    live_dir: str | Path,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    state_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train one model (or, with train.ensemble = K, K models from seeds seed..seed+K-1 whose
    probabilities are averaged); write the best-on-validation checkpoint to `model_path` and the
    dvclive log (losses, validation curves, a gradient-flow picture) to `live_dir`.

    With `cfg.resume`, the whole `TrainState` is saved to `state_path` after every epoch, and a
    run that finds a state of the same config and data there continues after its last complete
    epoch (the state is deleted once the final checkpoint is written). On CPU the resumed run
    ends with the same weights and metrics as an uninterrupted one.
    """
    # setup: device, data, input settings; then each member: seeded model, optimizer, schedule
    device = pick_device(cfg.device)
    torch.set_flush_denormal(cfg.flush_denormal)  # CPU: denormals cost several times normal
    data = load_data(data_dir, with_ngrams=uses_ngrams(model_cfg))
    inputs = InputSpec(data.vocabs.words.pad_id, cfg.max_len, model_cfg.fixed_len)
    bag_size = len(data.vocabs.ngrams) if data.vocabs.ngrams is not None else None
    steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)
    setup = Setup(data, inputs, bag_size, device, steps_per_epoch)
    identity = run_identity(data_dir, model_cfg, cfg)
    members: list[TrainState] = []
    run_log: RunLog | None = None
    for k in range(cfg.ensemble):
        state = new_member(setup, model_cfg, cfg, cfg.seed + k)
        resumed = bool(cfg.resume and state_path and state.restore(state_path, identity))
        if resumed:
            trim_live_log(live_dir, state.step)
            log.info(
                "resuming after epoch %d (step %d) from %s", state.epoch, state.step, state_path
            )
        if run_log is None:
            run_log = RunLog(live_dir, resume=resumed)
        n_params = sum(p.numel() for p in state.model.parameters())
        log.info("member %d/%d on %s, %d parameters", k + 1, cfg.ensemble, device, n_params)
        save = (lambda st: st.save(state_path, identity)) if cfg.resume and state_path else None
        run_epochs(state, setup, cfg, run_log, k * cfg.epochs * steps_per_epoch, save)
        state.model.load_state_dict(state.best.weights)
        members.append(state)

    # finish: the best weights (of every member) become the checkpoint; no timings in it, so
    # identical runs give identical files; timings and the gradient-flow picture go to the log
    if len(members) == 1:
        model, best = members[0].model, members[0].best.summary()
    else:
        model = Ensemble([m.model for m in members])
        best = ensemble_summary(model, members, data.val, cfg.eval_batch_size)
    save_checkpoint(model_path, model, data.vocabs, {"train_config": to_dict(cfg), "best": best})
    seconds = sum(m.train_seconds for m in members)
    summary = {
        **best,
        **stop_summary(members),
        "train_seconds": round(seconds, 2),
        "samples_per_s": round(sum(m.samples for m in members) / max(seconds, 1e-9), 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": device.type,
        "threads": torch.get_num_threads(),  # CPU threads (ladder.local.worker_env)
        "code_hash": code_hash(),  # the stages' code that made this run (agnews.provenance)
    }
    run_log.finish(summary, members[0].grad_flows)
    if state_path:
        Path(state_path).unlink(missing_ok=True)
    return summary


def ensemble_summary(
    model: Ensemble, members: list[TrainState], val: Shard, batch_size: int
) -> dict[str, Any]:
    """The ensemble's own validation accuracy and loss; its epoch is the members' mean best."""
    val_acc, val_loss = validate(model, val, batch_size)
    return {
        "best_val_acc": round(val_acc, 6),
        "best_val_loss": round(val_loss, 6),
        "best_epoch": round(sum(m.best.epoch for m in members) / len(members), 4),
        "best_step": members[-1].best.step,
        "members_mean_val_acc": round(sum(m.best.val_acc for m in members) / len(members), 6),
    }
