"""Seeding, device choice and what the CPU can do, shared by training, evaluation and
prediction."""

from __future__ import annotations

import logging
import platform
import random
from pathlib import Path

import numpy as np
import torch

from agnews.errors import ConfigError

log = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")  # Linux; elsewhere platform.processor() names the CPU


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


def bf16_native() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles); without
    either, bf16 on CPU is emulated and slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, private
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def use_bf16_autocast(amp: bool, device: torch.device) -> bool:
    """Whether a run with train.amp = `amp` autocasts to bf16 on `device`: on CUDA, and on a
    CPU that computes bf16 natively. A CPU without it trains in float32, and says so."""
    if not amp or device.type not in ("cuda", "cpu"):
        return False
    if device.type == "cpu" and not bf16_native():
        log.warning(
            "train.amp: this CPU has neither AVX512-BF16 nor AMX, so bf16 would be emulated "
            "(slower than float32): training in float32"
        )
        return False
    return True


def cpu_info() -> dict[str, str | bool]:
    """The CPU a run ran on, for its metrics: model name, the kernels torch dispatches to
    (e.g. "AVX2", "AVX512") and whether it computes bf16 natively."""
    model = ""
    if CPUINFO.is_file():
        for line in CPUINFO.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": bf16_native(),
    }
