"""Checkpoints that carry their own model config, input settings and vocabularies.

They hold only tensors and plain Python values, so they load with `weights_only=True`, and a
model is always rebuilt from the config it was trained with, never from today's params.yaml.
A checkpoint is self-contained: it holds the text of the vocabularies it was trained with
(vocab.json, and ngrams.json for the n-gram paths) and their SHA-256 digests, so the one file
classifies text anywhere; vocabularies that no longer match their digests (damage) are refused.
Loaded beside a prepared folder (evaluate), that folder's vocabularies must be the very same
(another prepare run, or a file corrupted in place, is an error), as must the format; a
checkpoint whose bytes are damaged is an error too.
"""

from __future__ import annotations

import dataclasses
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agnews import CLASS_NAMES, NUM_CLASSES
from agnews.atomic import atomic_path
from agnews.config import MAX_ENSEMBLE, ModelConfig, to_dict
from agnews.data.batching import InputSpec
from agnews.data.vocab import NgramVocab, Vocab
from agnews.errors import ConfigError, DataError
from agnews.model.classifier import Ensemble, TextClassifier

# 2: input settings and vocabulary digests stored with the model (format 1 had neither)
# 3: the vocabularies themselves travel inside the checkpoint (format 2 had only their digests)
CHECKPOINT_FORMAT = 3


@dataclass(frozen=True)
class Vocabularies:
    """The vocabularies a model reads: words, and n-grams when the model has a bag path."""

    words: Vocab
    ngrams: NgramVocab | None = None

    @classmethod
    def load(cls, prepared_dir: str | Path, with_ngrams: bool) -> Vocabularies:
        prepared_dir = Path(prepared_dir)
        ngrams = NgramVocab.load(prepared_dir / "ngrams.json") if with_ngrams else None
        return cls(Vocab.load(prepared_dir / "vocab.json"), ngrams)

    def files(self) -> dict[str, str]:
        """The vocabulary files' text, as a checkpoint carries them."""
        out = {"words": self.words.to_json()}
        if self.ngrams is not None:
            out["ngrams"] = self.ngrams.to_json()
        return out

    @classmethod
    def from_files(cls, files: dict[str, str], where: str) -> Vocabularies:
        words = Vocab.from_json(files["words"], f"{where} (words vocabulary)")
        ngrams = None
        if "ngrams" in files:
            ngrams = NgramVocab.from_json(files["ngrams"], f"{where} (n-gram vocabulary)")
        return cls(words, ngrams)

    def binding(self) -> dict[str, Any]:
        """What a checkpoint records to recognise these vocabularies again."""
        out = {"words": {"size": len(self.words), "sha256": self.words.digest}}
        if self.ngrams is not None:
            out["ngrams"] = {"size": len(self.ngrams), "sha256": self.ngrams.digest}
        return out


def save_checkpoint(
    path: str | Path, model: TextClassifier | Ensemble, vocabs: Vocabularies, extra: dict
) -> None:
    """Weights, model config, input settings and vocabulary binding, plus `extra`; loads with
    `torch.load(path, weights_only=True)`."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_state": model.state_dict(),
        "model_config": to_dict(model.cfg),
        "ensemble": len(model.members) if isinstance(model, Ensemble) else 1,
        "inputs": dataclasses.asdict(model.inputs),
        "vocab": vocabs.binding(),
        "vocab_files": vocabs.files(),
        "num_classes": NUM_CLASSES,
        "class_names": list(CLASS_NAMES),
        **extra,
    }
    save_atomically(path, payload)


def save_atomically(path: str | Path, obj: dict) -> None:
    """torch.save `obj` to `path` via a temporary file. Through a file object: torch.save names
    its zip records after a path, which would make the bytes depend on the temporary name.
    A failed write (a full disk) is an OSError naming `path`: torch's zip writer reports it as a
    RuntimeError ("unexpected pos ...") whose context is the OSError."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(obj, f)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except RuntimeError as exc:
        cause = exc.__context__
        if not isinstance(cause, OSError):
            raise
        raise OSError(cause.errno, cause.strerror or str(cause), str(path)) from None


def check_intact(path: str | Path) -> None:
    """torch.save writes a zip archive whose records carry CRC-32 checksums that torch.load never
    verifies: a file damaged without changing its size would load, with wrong weights. Check
    every record's checksum first."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        raise DataError(f"{path}: not a loadable checkpoint (damaged? {exc})") from None
    if bad is not None:
        raise DataError(
            f"{path}: not a loadable checkpoint: record {bad} fails its checksum (the file is "
            "damaged; rerun train: dvc repro -f -s train, or dvc checkout to restore it)"
        )


def read_checkpoint(path: str | Path, device: torch.device) -> dict[str, Any]:
    """The checkpoint's payload, checked for damage and format; every failure is one DataError
    naming it."""
    try:
        check_intact(path)
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run the train stage first") from None
    except DataError:
        raise
    except Exception as exc:  # torch raises many types for damaged files
        raise DataError(
            f"{path}: not a loadable checkpoint (damaged? rerun train: dvc repro -f -s train): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise DataError(f"{path}: not an agnews checkpoint")
    if payload["format"] == 2:
        raise DataError(
            f"{path}: checkpoint format 2, written before the vocabularies travelled inside the "
            f"checkpoint (this version of agnews reads format {CHECKPOINT_FORMAT}); retrain it "
            "(dvc repro -f -s train)"
        )
    if payload["format"] != CHECKPOINT_FORMAT:
        raise DataError(
            f"{path}: checkpoint format {payload['format']!r}, this version of agnews reads "
            f"format {CHECKPOINT_FORMAT}; retrain it (dvc repro -f -s train)"
        )
    return payload


def check_binding(payload: dict, vocabs: Vocabularies, model_path: Path, where: Path) -> None:
    """The vocabularies must be the very ones the checkpoint was trained with."""
    want = payload["vocab"]
    have = vocabs.binding()
    for kind in want:
        if kind not in have or have[kind] != want[kind]:
            got = have.get(kind, {"size": 0, "sha256": "none"})
            raise DataError(
                f"{model_path}: trained with another {kind} vocabulary ({want[kind]['size']} "
                f"entries, sha256 {want[kind]['sha256'][:12]}) than {where} has "
                f"({got['size']} entries, sha256 {got['sha256'][:12]}); use the prepared data "
                "it was trained on, or retrain (dvc repro)"
            )


def carried_vocabularies(payload: dict, model_path: Path) -> Vocabularies:
    """The vocabularies inside the checkpoint, refused unless they match the digests saved
    beside them."""
    files = payload["vocab_files"]
    if not isinstance(files, dict) or set(files) != set(payload["vocab"]):
        raise DataError(
            f"{model_path}: the checkpoint carries vocabularies {sorted(files)} but was trained "
            f"with {sorted(payload['vocab'])} (damaged?); retrain it (dvc repro -f -s train)"
        )
    if not all(isinstance(text, str) for text in files.values()):
        raise DataError(f"{model_path}: the checkpoint's vocabularies are not text (damaged?)")
    vocabs = Vocabularies.from_files(files, str(model_path))
    have = vocabs.binding()
    for kind, want in payload["vocab"].items():
        if have[kind] != want:
            raise DataError(
                f"{model_path}: the {kind} vocabulary inside the checkpoint ({have[kind]['size']} "
                f"entries, sha256 {have[kind]['sha256'][:12]}) is not the one it was trained "
                f"with ({want['size']} entries, sha256 {want['sha256'][:12]}): the file is "
                "damaged; retrain it (dvc repro -f -s train) or restore it (dvc checkout)"
            )
    return vocabs


def load_model(
    model_path: str | Path, prepared_dir: str | Path | None, device: torch.device
) -> tuple[TextClassifier, dict, Vocabularies]:
    """(model, or Ensemble, in eval mode; payload; vocabularies) for the checkpoint at
    `model_path`, which carries its own vocabularies. With `prepared_dir` (evaluate, which
    reads that folder's shards), the folder's vocabularies must be the ones it was trained
    with."""
    model_path = Path(model_path)
    payload = read_checkpoint(model_path, device)
    try:
        fields = {f.name for f in dataclasses.fields(ModelConfig)}
        saved = set(payload["model_config"])
        if saved != fields:
            lacks, extra = sorted(fields - saved) or "nothing", sorted(saved - fields) or "nothing"
            raise DataError(
                f"{model_path}: written by another version of agnews (its model config lacks "
                f"{lacks} and has {extra} more); retrain it (dvc repro -f -s train)"
            )
        cfg = ModelConfig(**payload["model_config"])
        inputs = InputSpec(**payload["inputs"])
        vocabs = carried_vocabularies(payload, model_path)
        if prepared_dir is not None:
            prepared = Vocabularies.load(prepared_dir, with_ngrams="ngrams" in payload["vocab"])
            check_binding(payload, prepared, model_path, Path(prepared_dir))
        bag_size = len(vocabs.ngrams) if vocabs.ngrams is not None else None
        ensemble = payload.get("ensemble", 1)
        if not (isinstance(ensemble, int) and 1 <= ensemble <= MAX_ENSEMBLE):
            raise DataError(
                f"{model_path}: ensemble of {ensemble!r} members, expected 1..{MAX_ENSEMBLE} "
                "(damaged?); retrain it (dvc repro -f -s train)"
            )

        def build() -> TextClassifier | Ensemble:
            members = [
                TextClassifier(cfg, len(vocabs.words), inputs, bag_size, payload["num_classes"])
                for _ in range(ensemble)
            ]
            return members[0] if len(members) == 1 else Ensemble(members)

        # The config's shapes are checked against the weights the file holds on the meta
        # device first (no memory): a damaged or hostile config cannot make the loader
        # allocate more than the checkpoint itself holds.
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build().state_dict().items()}
        state = payload["model_state"]
        held = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
        if shapes != held or len(held) != len(state):
            raise DataError(
                f"{model_path}: the checkpoint does not match its own config (damaged?): its "
                f"weights are not the shapes {cfg.cell} with hidden size {cfg.hidden_size} needs"
            )
        model = build()
        model.load_state_dict(state)
    except DataError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
        raise DataError(
            f"{model_path}: the checkpoint does not match its own config (damaged?): "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return model.to(device).eval(), payload, vocabs
