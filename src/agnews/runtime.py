"""Seeding and device choice, shared by training, evaluation and prediction."""

from __future__ import annotations

import random

import numpy as np
import torch

from agnews.errors import ConfigError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str, key: str = "train.device") -> torch.device:
    """ "auto": CUDA when present, else CPU. "cuda" without a GPU is an error naming `key`."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}: 'cuda' requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
