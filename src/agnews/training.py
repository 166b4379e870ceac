"""Training: seeded, device-aware, logged with dvclive, selecting the checkpoint on validation.

The loop evaluates on the validation split `evals_per_epoch` times per epoch and keeps the
weights with the best validation accuracy; the test split is never touched here.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from agnews.atomic import atomic_path
from agnews.batching import make_batch, train_order, word_dropout
from agnews.checkpoints import save_atomically, save_checkpoint
from agnews.config import ModelConfig, TrainConfig, to_dict
from agnews.errors import TrainingError
from agnews.evaluation import predict_shard
from agnews.models import TextClassifier
from agnews.plots import grad_flow_figure
from agnews.runtime import pick_device, seed_everything
from agnews.shards import Shard, load_shard
from agnews.vocab import Vocab

log = logging.getLogger(__name__)

# --- small helpers


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "adam":  # fused: one kernel for all parameters, on CPU and CUDA
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


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


def grad_flow(model: nn.Module) -> tuple[list[str], list[float], list[float]]:
    """Per weight tensor (biases skipped, as the notebook): names, mean |grad|, max |grad|."""
    names, means, maxes = [], [], []
    for name, p in model.named_parameters():
        if p.requires_grad and p.grad is not None and "bias" not in name:
            g = p.grad.detach().abs()
            names.append(name)
            means.append(g.mean().item())
            maxes.append(g.max().item())
    return names, means, maxes


def run_identity(data_dir: str | Path, model_cfg: ModelConfig, cfg: TrainConfig) -> dict:
    """What a saved training state must match to be resumed: configs and data digests."""
    data_dir = Path(data_dir)
    digests = {
        name: hashlib.sha256((data_dir / name).read_bytes()).hexdigest()
        for name in ("vocab.json", "train.npz", "val.npz")
    }
    train = {k: v for k, v in to_dict(cfg).items() if k != "resume"}
    return {"model": to_dict(model_cfg), "train": train, "data": digests}


def load_train_state(path: str | Path, identity: dict) -> dict | None:
    """The saved state at `path` if it belongs to this very run (same configs and data)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt state is not worth failing for: start over
        log.warning("ignoring unreadable training state %s: %s", path, exc)
        return None
    if state.get("identity") != identity:
        log.warning("ignoring training state %s: it belongs to other params or data", path)
        return None
    return state


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


@dataclass
class Data:
    vocab: Vocab
    train: Shard
    val: Shard


def load_data(data_dir: str | Path) -> Data:
    data_dir = Path(data_dir)
    return Data(
        Vocab.load(data_dir / "vocab.json"),
        load_shard(data_dir / "train.npz"),
        load_shard(data_dir / "val.npz"),
    )


# --- the loop


def train_model(
    data_dir: str | Path,
    model_path: str | Path,
    live_dir: str | Path,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    state_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train one model; write the best-on-validation checkpoint to `model_path` and the dvclive
    log (step/epoch losses, validation curves, gradient-flow images) to `live_dir`.

    With `cfg.resume`, the complete training state is saved to `state_path` after every epoch,
    and a run that finds a state of the same config and data there continues after its last
    complete epoch (the state is deleted once the final checkpoint is written). On CPU the
    resumed run ends with the same weights and metrics as an uninterrupted one.
    """
    from dvclive import Live  # heavy import, only when training

    # setup: seed, device, data, model, optimizer, schedule
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    data = load_data(data_dir)
    fixed_len = model_cfg.fixed_len
    model = TextClassifier(model_cfg, len(data.vocab), data.vocab.pad_id).to(device)
    optimizer = make_optimizer(model, cfg)
    steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: get_lr_factor(s, total_steps, cfg)
    )
    use_amp = cfg.amp and device.type == "cuda"
    rng = np.random.default_rng(cfg.seed)
    evals_at = eval_steps(steps_per_epoch, cfg.evals_per_epoch)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("device %s, %d parameters, %d steps/epoch", device, n_params, steps_per_epoch)

    best = {"val_acc": -1.0, "val_loss": float("nan"), "epoch": 0.0, "step": 0}
    best_state: dict[str, torch.Tensor] | None = None
    step, samples, train_seconds, start_epoch = 0, 0, 0.0, 1
    identity = run_identity(data_dir, model_cfg, cfg)
    state = load_train_state(state_path, identity) if cfg.resume and state_path else None
    if state is not None:
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        scheduler.load_state_dict(state["scheduler_state"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:  # dropout on the GPU
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        best, best_state = state["best"], state["best_state"]
        step, samples, train_seconds = state["step"], state["samples"], state["train_seconds"]
        start_epoch = state["epoch"] + 1
        trim_live_log(live_dir, step)
        log.info("resuming after epoch %d (step %d) from %s", state["epoch"], step, state_path)
    with Live(
        str(live_dir), resume=state is not None, dvcyaml=False, save_dvc_exp=False, report=None
    ) as live:
        for epoch in range(start_epoch, cfg.epochs + 1):
            model.train()
            batches = train_order(
                data.train.lengths, cfg.batch_size, rng, cfg.bucketing, cfg.bucket_chunk
            )
            epoch_loss = torch.zeros((), device=device)
            window_loss, window_n = torch.zeros((), device=device), 0
            started = time.perf_counter()
            bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", mininterval=1.0)
            for i, index in enumerate(bar, start=1):
                # forward / backward on one batch
                batch = make_batch(data.train, index, data.vocab.pad_id, cfg.max_len, fixed_len)
                batch = word_dropout(batch, cfg.word_dropout, data.vocab.unk_id).to(device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits = model(batch.ids, batch.lengths)  # (B, C)
                loss = nn.functional.cross_entropy(logits.float(), batch.labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                if i == len(batches):  # gradient flow, once per epoch, on its last batch
                    flow = grad_flow(model)
                optimizer.step()
                scheduler.step()
                step += 1
                samples += len(index)
                epoch_loss += loss.detach() * len(index)
                window_loss += loss.detach()
                window_n += 1

                # per-step loss (averaged over the last log_every steps) and a NaN guard
                if step % cfg.log_every == 0 or i == len(batches):
                    mean_loss = (window_loss / window_n).item()
                    if not math.isfinite(mean_loss):
                        raise TrainingError(
                            f"training loss became {mean_loss} at epoch {epoch}, step {step}; "
                            "lower train.lr or set train.grad_clip"
                        )
                    live.step = step
                    live.log_metric("train/loss", mean_loss)
                    live.log_metric("train/lr", scheduler.get_last_lr()[0])
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                    window_loss, window_n = torch.zeros((), device=device), 0

                # validation, evals_per_epoch times per epoch; keep the best weights
                if i in evals_at:
                    train_seconds += time.perf_counter() - started
                    preds, val_loss = predict_shard(
                        model,
                        data.val,
                        data.vocab.pad_id,
                        cfg.max_len,
                        fixed_len,
                        cfg.eval_batch_size,
                        device,
                    )
                    val_acc = float((preds == data.val.labels).mean())
                    position = round(epoch - 1 + i / len(batches), 4)
                    live.step = step
                    live.log_metric("val/loss", val_loss)
                    live.log_metric("val/acc", val_acc)
                    live.log_metric("epoch", position)
                    log.info("epoch %.2f: val_loss %.4f val_acc %.4f", position, val_loss, val_acc)
                    if val_acc > best["val_acc"]:
                        best = {
                            "val_acc": val_acc,
                            "val_loss": val_loss,
                            "epoch": position,
                            "step": step,
                        }
                        best_state = copy.deepcopy(model.state_dict())
                    started = time.perf_counter()
            train_seconds += time.perf_counter() - started

            # end of epoch: epoch loss and the gradient-flow picture
            live.step = step
            live.log_metric("train/epoch_loss", (epoch_loss / len(data.train)).item())
            fig = grad_flow_figure(*flow, title=f"Gradient flow, epoch {epoch}")
            live.log_image(f"grad_flow/{epoch}.png", fig)
            live.make_summary()
            if cfg.resume and state_path:
                save_atomically(
                    state_path,
                    {
                        "identity": identity,
                        "epoch": epoch,
                        "step": step,
                        "samples": samples,
                        "train_seconds": train_seconds,
                        "model_state": model.state_dict(),
                        "optimizer_state": optimizer.state_dict(),
                        "scheduler_state": scheduler.state_dict(),
                        "numpy_rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": (
                            torch.cuda.get_rng_state(device) if device.type == "cuda" else None
                        ),
                        "best": best,
                        "best_state": best_state,
                    },
                )

        # finish: restore the best weights, save them, summarize
        if best_state is not None:
            model.load_state_dict(best_state)
        summary = {
            "best_val_acc": round(best["val_acc"], 6),
            "best_val_loss": round(best["val_loss"], 6),
            "best_epoch": best["epoch"],
            "best_step": best["step"],
            "epochs": cfg.epochs,
            "train_seconds": round(train_seconds, 2),
            "samples_per_s": round(samples / max(train_seconds, 1e-9), 1),
            "parameters": n_params,
            "device": device.type,
            "threads": torch.get_num_threads(),  # CPU threads (see agnews.ladder.worker_env)
        }
        live.summary.update(summary)  # flat keys: dvc exp show columns best_val_acc, ...
        # the checkpoint holds no timings, so identical runs give identical files
        selected = {
            k: summary[k] for k in ("best_val_acc", "best_val_loss", "best_epoch", "best_step")
        }
        save_checkpoint(
            model_path, model, data.vocab, {"train_config": to_dict(cfg), "best": selected}
        )
    if state_path:
        Path(state_path).unlink(missing_ok=True)
    return summary
