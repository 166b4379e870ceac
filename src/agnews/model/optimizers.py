"""Optimizers and their schedule: the network's optimizer, the n-gram tables' (dense or
SparseAdam), gradient clipping that handles sparse gradients, and the learning-rate factor."""

from __future__ import annotations

import math

import torch
from torch import nn

from agnews.config import TrainConfig


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
