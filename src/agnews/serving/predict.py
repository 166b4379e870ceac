"""Classify headlines with the trained model.

    python -m agnews predict "Stocks rally as oil falls"      # one or more texts as arguments
    python -m agnews predict --file headlines.txt             # one text per line
    echo "Some headline" | python -m agnews predict           # lines from stdin
    python -m agnews predict --json "..."                     # one JSON object per text

The checkpoint is self-contained (it carries its vocabularies): `--model path/to/model.pt`
is all it needs, on any machine; without --model it is params.yaml's paths.model (run
`dvc repro` first). Texts get the same preprocessing as training. Input is read and
classified in batches of --batch-size lines, so memory stays bounded for any number of lines,
and exactly one output row is printed per input line, in order (an empty line, or one with no
words left after preprocessing, gets a row with label "-" and the reason). Texts longer than
the model reads are truncated, and say so.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from agnews.config import load_params
from agnews.data.batching import make_batch
from agnews.data.shards import shard_from_ids
from agnews.data.text import tokenize
from agnews.errors import AgnewsError, DataError
from agnews.model.checkpoints import load_model
from agnews.model.inference import predicted_labels, probabilities
from agnews.runtime import pick_device


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str | None  # None when the text could not be classified
    probabilities: dict[str, float]
    note: str = ""  # e.g. "truncated to 256 tokens", or why there is no label


class Predictor:
    """A checkpoint with the vocabularies it was trained with, ready to classify texts."""

    def __init__(self, model_path: str | Path, device: str = "auto", temperature: float = 1.0):
        if not (temperature > 0 and math.isfinite(temperature)):
            raise DataError(f"--temperature: {temperature} is not a positive number")
        self.temperature = temperature  # logits are divided by it (evaluate.calibrate fits it)
        self.device = pick_device(device, "--device")
        self.model, self.payload, self.vocabs = load_model(model_path, None, self.device)
        self.class_names: list[str] = self.payload["class_names"]

    @torch.inference_mode()
    def predict(self, texts: list[str]) -> list[Prediction]:
        """One prediction per text, in order; all texts go through the model as one batch, so
        callers bound memory by the number of texts they pass (see `predict_stream`)."""
        out: list[Prediction | None] = [None] * len(texts)
        ids, bags, where = [], [], []
        for i, text in enumerate(texts):
            words = tokenize(text)
            if not words:
                note = "empty line" if not text.strip() else "no words left after preprocessing"
                out[i] = Prediction(text, None, {}, note)
                continue
            ids.append(self.vocabs.words.encode(words))
            if self.vocabs.ngrams is not None:
                bags.append(self.vocabs.ngrams.encode(words))
            where.append(i)
        if ids:
            shard = shard_from_ids(ids, [0] * len(ids), bags if self.vocabs.ngrams else None)
            batch = make_batch(shard, np.arange(len(ids)), self.model.inputs).to(self.device)
            logits = self.model.classify(batch).float().cpu().numpy()  # (B, C)
            probs = probabilities(logits, self.temperature)  # (B, C) float64
            labels = predicted_labels(logits)  # (B,): argmax of the unrounded logits
            cap = self.model.inputs.cap
            for row, i in enumerate(where):
                p = {
                    n: round(float(v), 4) for n, v in zip(self.class_names, probs[row], strict=True)
                }
                note = f"truncated to {cap} tokens" if len(ids[row]) > cap else ""
                out[i] = Prediction(texts[i], self.class_names[labels[row]], p, note)
        return out  # type: ignore[return-value]

    def predict_stream(self, texts: Iterable[str], batch_size: int) -> Iterator[Prediction]:
        """Predictions for a stream of texts, `batch_size` at a time."""
        chunk: list[str] = []
        for text in texts:
            chunk.append(text)
            if len(chunk) == batch_size:
                yield from self.predict(chunk)
                chunk = []
        if chunk:
            yield from self.predict(chunk)


def read_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """Lines of a byte stream as text, one at a time (a UTF-8 byte-order mark is dropped);
    binary input or a line that is not UTF-8 is an error naming it."""
    for number, raw in enumerate(stream, start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if b"\0" in raw:
            raise DataError(f"{name}: line {number} has NUL bytes (binary input?); give text")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: line {number} is not valid UTF-8 ({exc.reason})") from None
        yield line.rstrip("\r\n")


def _format(p: Prediction, as_json: bool) -> str:
    if as_json:
        shown = p.text if len(p.text) <= 200 else p.text[:200] + "…"
        return json.dumps({**p.__dict__, "text": shown}, ensure_ascii=False)
    if p.label is None:
        return f"-\t{p.note}\t{p.text[:80]}"
    probs = " ".join(f"{n}={v:.3f}" for n, v in p.probabilities.items())
    note = f"\t({p.note})" if p.note else ""
    return f"{p.label}\t{probs}\t{p.text[:80]}{note}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("texts", nargs="*", help="texts to classify (else --file or stdin)")
    parser.add_argument("--file", help="read one text per line from this file ('-' = stdin)")
    parser.add_argument(
        "--params", default="params.yaml", help="params file naming paths.model (no --model)"
    )
    parser.add_argument("--model", help="checkpoint (default: params.yaml's paths.model)")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the model runs (default auto: CUDA when present)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divide the logits by this (the `temperature` of metrics/calibration.json, "
        "fitted on validation with evaluate.calibrate); default 1: the model's own",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per text")
    parser.add_argument(
        "--batch-size", type=int, default=512, help="lines classified at once (default 512)"
    )
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    printed = 0
    try:
        model_path = args.model or load_params(args.params).paths.model
        predictor = Predictor(model_path, args.device, args.temperature)
        if args.texts:
            texts: Iterable[str] = args.texts
            source = None
        elif args.file and args.file != "-":
            try:
                source = open(args.file, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise DataError(f"{args.file}: cannot read: {exc.strerror}") from None
            texts = read_lines(source, args.file)
        else:
            source = None
            texts = read_lines(sys.stdin.buffer, "stdin")
        try:
            for p in predictor.predict_stream(texts, args.batch_size):
                print(_format(p, args.json))
                printed += 1
        finally:
            if source is not None:
                source.close()
        if printed == 0:
            raise DataError("no input text: pass texts as arguments, --file, or on stdin")
    except AgnewsError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
