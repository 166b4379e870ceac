"""Classify headlines with the trained model.

    python -m agnews.predict "Stocks rally as oil falls"      # one or more texts as arguments
    python -m agnews.predict --file headlines.txt             # one text per line
    echo "Some headline" | python -m agnews.predict           # lines from stdin
    python -m agnews.predict --json "..."                     # one JSON object per text

The model and vocabulary come from params.yaml's paths (run `dvc repro` first); texts get the
same preprocessing as training. Texts longer than train.max_len tokens are truncated (and say
so); empty or non-text input gets an error line, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agnews.batching import make_batch
from agnews.checkpoints import load_model_and_vocab
from agnews.config import load_params
from agnews.errors import AgnewsError, DataError
from agnews.runtime import pick_device
from agnews.shards import shard_from_ids
from agnews.text import tokenize


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str | None  # None when the text could not be classified
    probabilities: dict[str, float]
    note: str = ""  # e.g. "truncated to 256 tokens", or why there is no label


class Predictor:
    def __init__(self, model_path: str | Path, vocab_path: str | Path, device: str = "auto"):
        self.device = pick_device(device)
        self.model, payload, self.vocab = load_model_and_vocab(model_path, vocab_path, self.device)
        self.class_names = payload["class_names"]
        self.max_len = payload["train_config"]["max_len"]
        self.fixed_len = self.model.cfg.fixed_len

    @torch.no_grad()
    def predict(self, texts: list[str]) -> list[Prediction]:
        out: list[Prediction | None] = [None] * len(texts)
        ids, where = [], []
        for i, text in enumerate(texts):
            words = tokenize(text)
            if not words:
                out[i] = Prediction(text, None, {}, "no words left after preprocessing")
                continue
            ids.append(self.vocab.encode(words))
            where.append(i)
        if ids:
            shard = shard_from_ids(ids, [0] * len(ids))
            batch = make_batch(
                shard, np.arange(len(ids)), self.vocab.pad_id, self.max_len, self.fixed_len
            ).to(self.device)
            probs = torch.softmax(self.model(batch.ids, batch.lengths).float(), dim=1).cpu()
            cap = self.fixed_len or self.max_len
            for row, i in enumerate(where):
                p = {
                    n: round(float(v), 4) for n, v in zip(self.class_names, probs[row], strict=True)
                }
                note = f"truncated to {cap} tokens" if len(ids[row]) > cap else ""
                out[i] = Prediction(texts[i], max(p, key=p.get), p, note)
        return out  # type: ignore[return-value]


def _read_lines(stream) -> list[str]:
    raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    if isinstance(raw, bytes):
        if b"\0" in raw:
            raise DataError("input looks binary (it has NUL bytes); give text, one per line")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DataError(f"input line {line} is not valid UTF-8 text") from None
    return [line for line in raw.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("texts", nargs="*", help="texts to classify (else --file or stdin)")
    parser.add_argument("--file", help="read one text per line from this file ('-' = stdin)")
    parser.add_argument("--params", default="params.yaml", help="params file with the paths")
    parser.add_argument("--model", help="checkpoint (default: paths.model)")
    parser.add_argument("--vocab", help="vocabulary (default: paths.prepared_dir/vocab.json)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per text")
    args = parser.parse_args(argv)
    try:
        if args.model and args.vocab:
            model_path, vocab_path = args.model, args.vocab
        else:
            paths = load_params(args.params).paths
            model_path = args.model or paths.model
            vocab_path = args.vocab or Path(paths.prepared_dir) / "vocab.json"
        if args.texts:
            texts = args.texts
        elif args.file and args.file != "-":
            try:
                with open(args.file, "rb") as f:
                    texts = _read_lines(f)
            except OSError as exc:
                raise DataError(f"{args.file}: cannot read: {exc.strerror}") from None
        else:
            texts = _read_lines(sys.stdin)
        if not texts or not any(t.strip() for t in texts):
            raise DataError("no input text: pass texts as arguments, --file, or on stdin")
        predictions = Predictor(model_path, vocab_path).predict(texts)
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in predictions:
        if args.json:
            shown = p.text if len(p.text) <= 200 else p.text[:200] + "…"
            print(json.dumps({**p.__dict__, "text": shown}, ensure_ascii=False))
        elif p.label is None:
            print(f"-\t{p.note}\t{p.text[:80]}")
        else:
            probs = " ".join(f"{n}={v:.3f}" for n, v in p.probabilities.items())
            note = f"\t({p.note})" if p.note else ""
            print(f"{p.label}\t{probs}\t{p.text[:80]}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
