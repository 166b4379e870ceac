"""Linear peers on exactly the pipeline's rows: TF-IDF + LinearSVC / logistic regression, and
fastText when it is installed, scored on the same validation and test rows as the RNNs.

    pip install -e '.[peers]'                  # scikit-learn (and fastText) are optional extras
    python -m agnews.peers                     # after `dvc repro` (reads data/raw)
    python -m agnews.peers --out reports/peers.json

The rows come from `agnews.prepare.split_rows` with the params' `prepare` settings: the same
tokens, the same texts dropped as empty and the same stratified validation split as the
prepare stage, so the numbers sit beside `dvc exp show`'s in reports/ladder.md. Each peer is
fitted on the train rows only and scored on validation and test (macro-F1 on test too); the
JSON lists them with their settings and fit times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agnews.atomic import write_json
from agnews.config import load_params
from agnews.errors import AgnewsError
from agnews.evaluation import classification_metrics
from agnews.prepare import Splits, split_rows


def _sklearn_peers() -> dict[str, Callable[[], Any]]:
    """Name -> factory of an unfitted sklearn pipeline (tokens are already split by spaces)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    def tfidf(ngrams: int) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=(1, ngrams), sublinear_tf=True, token_pattern=r"\S+", lowercase=False
        )

    return {
        "TF-IDF unigrams + LinearSVC (C=0.5)": lambda: make_pipeline(tfidf(1), LinearSVC(C=0.5)),
        "TF-IDF uni+bigrams + LinearSVC (C=0.5)": lambda: make_pipeline(tfidf(2), LinearSVC(C=0.5)),
        "TF-IDF unigrams + logistic regression (C=10)": lambda: make_pipeline(
            tfidf(1), LogisticRegression(C=10.0, max_iter=3000)
        ),
        "TF-IDF uni+bigrams + logistic regression (C=10)": lambda: make_pipeline(
            tfidf(2), LogisticRegression(C=10.0, max_iter=3000)
        ),
    }


class _FastText:
    """fastText's supervised classifier with a scikit-learn-like fit/predict."""

    def __init__(self, ngrams: int, epochs: int, dim: int, seed: int) -> None:
        self.args = {"wordNgrams": ngrams, "epoch": epochs, "dim": dim, "seed": seed, "thread": 1}

    def fit(self, docs: list[str], labels: np.ndarray) -> _FastText:
        import fasttext

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.txt"
            path.write_text(
                "".join(f"__label__{y} {d}\n" for d, y in zip(docs, labels, strict=True)),
                encoding="utf-8",
            )
            self.model = fasttext.train_supervised(str(path), verbose=0, **self.args)
        return self

    def predict(self, docs: list[str]) -> np.ndarray:
        labels, _ = self.model.predict(docs)
        return np.array([int(x[0].removeprefix("__label__")) for x in labels])


def _fasttext_peers(seed: int) -> dict[str, Callable[[], Any]]:
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return {}
    return {
        "fastText unigrams (dim 10, 5 epochs)": lambda: _FastText(1, 5, 10, seed),
        "fastText uni+bigrams (dim 10, 5 epochs)": lambda: _FastText(2, 5, 10, seed),
    }


def score_peers(splits: Splits, peers: dict[str, Callable[[], Any]]) -> list[dict[str, Any]]:
    docs = {split: [" ".join(t) for t in toks] for split, toks in splits.tokens.items()}
    results = []
    for name, make in peers.items():
        started = time.perf_counter()
        model = make().fit(docs["train"], splits.labels["train"])
        fit_seconds = time.perf_counter() - started
        val = model.predict(docs["val"])
        test = model.predict(docs["test"])
        scores = classification_metrics(splits.labels["test"], np.asarray(test))
        results.append(
            {
                "name": name,
                "val_acc": round(float(np.mean(val == splits.labels["val"])), 6),
                "test_acc": scores["accuracy"],
                "test_macro_f1": scores["macro_f1"],
                "fit_seconds": round(fit_seconds, 1),
            }
        )
        print(
            f"{name}: val {results[-1]['val_acc']:.4f}, test {scores['accuracy']:.4f}, "
            f"macro-F1 {scores['macro_f1']:.4f} ({fit_seconds:.0f} s)",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default="params.yaml", help="params file (paths, prepare)")
    parser.add_argument("--raw", help="download's folder (default: paths.raw_dir)")
    parser.add_argument("--out", default="reports/peers.json", help="JSON written here")
    parser.add_argument("--no-fasttext", action="store_true", help="skip fastText")
    args = parser.parse_args(argv)
    try:
        cfg = load_params(args.params)
        try:
            peers = _sklearn_peers()
        except ImportError:
            raise AgnewsError(
                "the peers need scikit-learn, an optional extra: pip install -e '.[peers]'"
            ) from None
        if not args.no_fasttext:
            peers |= _fasttext_peers(cfg.train.seed)
        p = cfg.prepare
        raw_dir = Path(args.raw or cfg.paths.raw_dir)
        splits = split_rows(raw_dir, p.val_size, p.seed, p.num_workers)
        results = score_peers(splits, peers)
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = json.loads((raw_dir / "source.json").read_text(encoding="utf-8"))
    write_json(
        args.out,
        {
            "command": "python -m agnews.peers",
            "data": {
                "source": source.get("local_dir") or source.get("dataset"),
                "rows": {s: len(v) for s, v in splits.labels.items()},
                "prepare": {"val_size": p.val_size, "seed": p.seed},
            },
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
            "peers": results,
        },
    )
    print(f"peers: written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
