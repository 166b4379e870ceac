"""Training: seeded, device-aware, logged with dvclive, selecting the checkpoint on validation.

`train_model` trains one model, or an ensemble of members from consecutive seeds, and writes
the best-on-validation checkpoint and the run's metrics. Its parts: the optimizers
(`agnews.model.optimizers`), the state of a run (`agnews.model.train_state`), the dvclive log
(`agnews.model.live_log`) and the loop of one member (`agnews.model.loop`).
"""

from __future__ import annotations

import hashlib
import logging
import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agnews.config import ModelConfig, TrainConfig, to_dict
from agnews.data.batching import InputSpec
from agnews.data.shards import Shard, load_shard
from agnews.errors import DataError
from agnews.model.checkpoints import Vocabularies, save_checkpoint
from agnews.model.classifier import Ensemble, TextClassifier, uses_ngrams
from agnews.model.live_log import RunLog, trim_live_log
from agnews.model.loop import Data, Setup, run_epochs, validate
from agnews.model.optimizers import get_lr_factor, make_optimizers
from agnews.model.train_state import TrainState
from agnews.provenance import code_hash
from agnews.runtime import cpu_info, pick_device, seed_everything, use_bf16_autocast

log = logging.getLogger(__name__)


def load_data(data_dir: str | Path, with_ngrams: bool) -> Data:
    """The vocabularies and the train and validation shards, checked against each other."""
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


def run_identity(
    data_dir: str | Path, model_cfg: ModelConfig, cfg: TrainConfig, member: int
) -> dict:
    """What a saved training state must match to be resumed: configs, data digests and the
    ensemble member (0-based) it belongs to."""
    data_dir = Path(data_dir)
    names = ["vocab.json", "train.npz", "val.npz"]
    names += ["ngrams.json"] if (data_dir / "ngrams.json").exists() else []
    digests = {n: hashlib.sha256((data_dir / n).read_bytes()).hexdigest() for n in names}
    train = {k: v for k, v in to_dict(cfg).items() if k != "resume"}
    return {"model": to_dict(model_cfg), "train": train, "data": digests, "member": member}


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
    amp = use_bf16_autocast(cfg.amp, device)  # on a CPU without native bf16: a warning
    setup = Setup(data, inputs, bag_size, device, steps_per_epoch, amp)
    members: list[TrainState] = []
    run_log: RunLog | None = None
    for k in range(cfg.ensemble):
        state = new_member(setup, model_cfg, cfg, cfg.seed + k)
        identity = run_identity(data_dir, model_cfg, cfg, member=k)
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
        save = None  # after each epoch, with train.resume: this member's state
        if cfg.resume and state_path:
            save = partial(TrainState.save, path=state_path, identity=identity)
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
        "amp": "bf16" if amp else "off",
        "threads": torch.get_num_threads(),  # CPU threads (ladder.local.worker_env)
        **cpu_info(),  # cpu_model, cpu_capability, bf16_native: what the timings measured
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
