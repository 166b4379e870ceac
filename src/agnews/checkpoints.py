"""Checkpoints that carry their own model config and vocabulary size.

They hold only tensors and plain Python values, so they load with `weights_only=True`, and a
model is always rebuilt from the config it was trained with, never from today's params.yaml.
"""

from __future__ import annotations

from pathlib import Path

import torch

from agnews import CLASS_NAMES, NUM_CLASSES
from agnews.atomic import atomic_path
from agnews.config import ModelConfig, to_dict
from agnews.errors import DataError
from agnews.models import TextClassifier
from agnews.vocab import Vocab

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, model: TextClassifier, vocab: Vocab, extra: dict) -> None:
    """A checkpoint carries its own model config and vocabulary size; it loads with
    `torch.load(path, weights_only=True)`."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_state": model.state_dict(),
        "model_config": to_dict(model.cfg),
        "vocab_size": len(vocab),
        "pad_id": vocab.pad_id,
        "num_classes": NUM_CLASSES,
        "class_names": list(CLASS_NAMES),
        **extra,
    }
    save_atomically(path, payload)


def save_atomically(path: str | Path, obj: dict) -> None:
    """torch.save `obj` to `path` via a temporary file. Through a file object: torch.save names
    its zip records after a path, which would make the bytes depend on the temporary name."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def load_checkpoint(path: str | Path, device: torch.device) -> tuple[TextClassifier, dict]:
    """Rebuild the model from the checkpoint's own config; returns (model in eval mode, payload)."""
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the train stage first") from None
    except Exception as exc:
        raise DataError(f"{path}: not a loadable checkpoint: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path}: not an agnews checkpoint of format {CHECKPOINT_FORMAT}")
    cfg = ModelConfig(**payload["model_config"])
    model = TextClassifier(cfg, payload["vocab_size"], payload["pad_id"], payload["num_classes"])
    model.load_state_dict(payload["model_state"])
    return model.to(device).eval(), payload


def load_model_and_vocab(
    model_path: str | Path, vocab_path: str | Path, device: torch.device
) -> tuple[TextClassifier, dict, Vocab]:
    """The checkpoint's model and the vocabulary it must be used with; refuses a vocabulary of
    another size (another prepare run) instead of silently mis-mapping words."""
    model, payload = load_checkpoint(model_path, device)
    vocab = Vocab.load(vocab_path)
    if len(vocab) != payload["vocab_size"]:
        raise DataError(
            f"{model_path}: trained with a vocabulary of {payload['vocab_size']} words, but "
            f"{vocab_path} has {len(vocab)}; rerun the train stage (dvc repro)"
        )
    return model, payload, vocab
