"""Linear peers on exactly the pipeline's rows: TF-IDF + LinearSVC / logistic regression, and
fastText when it is installed, scored on the same validation and test rows as the RNNs.

    pip install -e '.[peers]'                  # scikit-learn (and fastText) are optional extras
    python -m agnews peers                     # after `dvc repro` (reads data/raw)
    python -m agnews peers --out reports/peers.json

The rows come from `agnews.data.prepare.split_rows` with the params' `prepare` settings: the same
texts dropped as empty and the same stratified validation split as the prepare stage, so the
numbers sit beside `dvc exp show`'s in reports/ladder.md. The TF-IDF peers read the raw texts
with scikit-learn's own tokenizer (its defaults, sublinear tf), at the C the issue's peer
figures used (0.5) and at the C best on validation; fastText reads our tokens. Each peer is
fitted on the train rows only and scored on validation and test (macro-F1 on test too); the
JSON lists them with their settings, fit times and test ECE (of the probabilities below), and
each peer's per-row test predictions go to `--predictions DIR/<peer>.csv.gz`, the evaluate
stage's CSV (agnews.evaluation.predictions) gzip'd as a published run's are
(agnews.experiments.ladder.records), so the ladder report compares them with the RNNs row by
row.

Published as they are written: reports/peers.json and reports/peers/*.csv.gz are meant for git,
like the ladder's runs in reports/runs/. The JSON records what a published run does: the rows'
digest (`data.raw_digest`), the commit and the code hash (`code_hash`, agnews.provenance: the
prepare code that made the splits) they ran on, the peers' own code's digest (`peers_code`),
and the machine. Their probabilities: logistic
regression's own, fastText's own (softmax), and for LinearSVC, which has none, the softmax of
its decision scores (its ranking, not calibrated probabilities).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from agnews import NUM_CLASSES
from agnews.atomic import write_json
from agnews.config import load_params
from agnews.data.prepare import Splits, split_rows
from agnews.errors import AgnewsError
from agnews.evaluation.analysis import expected_calibration_error
from agnews.evaluation.predictions import predictions_csv
from agnews.evaluation.scoring import classification_metrics
from agnews.experiments import shell
from agnews.experiments.ladder.records import write_gzip
from agnews.model.inference import probabilities as softmax
from agnews.provenance import code_hash, raw_digest

C_GRID = (0.1, 0.3, 0.5, 1.0, 3.0, 10.0, 30.0)  # searched on validation for the "best C" peers


class _BestOnValidation:
    """Fits one model per C in C_GRID on train and keeps the best on validation (the same
    selection rule as the RNNs: validation only, test scored once)."""

    def __init__(self, make: Callable[[float], Any], val: tuple[list[str], np.ndarray]) -> None:
        self.make, self.val = make, val

    def fit(self, docs: list[str], labels: np.ndarray) -> _BestOnValidation:
        best = -1.0
        for c in C_GRID:
            model = self.make(c).fit(docs, labels)
            acc = float(np.mean(model.predict(self.val[0]) == self.val[1]))
            if acc > best:
                best, self.model, self.c = acc, model, c
        return self

    def predict(self, docs: list[str]) -> np.ndarray:
        return self.model.predict(docs)

    def probabilities(self, docs: list[str]) -> np.ndarray:
        return probabilities(self.model, docs)


def probabilities(model: Any, docs: list[str]) -> np.ndarray:
    """(N, 4) class probabilities of a fitted peer, columns in class-id order: its own
    `probabilities`, else scikit-learn's predict_proba, else the softmax of its
    decision_function (LinearSVC)."""
    if hasattr(model, "probabilities"):
        return model.probabilities(docs)
    classes = list(getattr(model, "classes_", []))
    if classes != list(range(NUM_CLASSES)):
        raise AgnewsError(f"a peer learned classes {classes}, expected 0..{NUM_CLASSES - 1}")
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(docs), dtype=np.float64)
    return softmax(np.asarray(model.decision_function(docs), dtype=np.float64))


def slug(name: str) -> str:
    """A file name for a peer, e.g. "tf-idf-uni-bigrams-linearsvc-c-0-5"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("+", " ")).strip("-")


def _sklearn_peers(val: tuple[list[str], np.ndarray]) -> dict[str, Callable[[], Any]]:
    """Name -> factory of an unfitted model taking raw texts: scikit-learn's TF-IDF with its
    default tokenizer (lower-case, words of 2+ letters or digits) and sublinear tf."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    def svm(ngrams: int, c: float) -> Any:
        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, ngrams), sublinear_tf=True), LinearSVC(C=c)
        )

    def logreg(ngrams: int, c: float) -> Any:
        vectorizer = TfidfVectorizer(ngram_range=(1, ngrams), sublinear_tf=True)
        return make_pipeline(vectorizer, LogisticRegression(C=c, max_iter=5000))

    return {
        "TF-IDF unigrams + LinearSVC (C=0.5)": lambda: svm(1, 0.5),
        "TF-IDF uni+bigrams + LinearSVC (C=0.5)": lambda: svm(2, 0.5),
        "TF-IDF uni+bigrams + LinearSVC (C best on val)": lambda: _BestOnValidation(
            lambda c: svm(2, c), val
        ),
        "TF-IDF unigrams + logistic regression (C best on val)": lambda: _BestOnValidation(
            lambda c: logreg(1, c), val
        ),
        "TF-IDF uni+bigrams + logistic regression (C best on val)": lambda: _BestOnValidation(
            lambda c: logreg(2, c), val
        ),
    }


def _train_fasttext(train_file: str, model_file: str, args: dict[str, Any]) -> int:
    """Train fastText in a fresh process, trying seeds 0-3; return the seed that did not
    diverge, or -1. (fastText 0.9.3 reports "Encountered NaN." at random, for a seed that
    trains fine in another run; a fresh process per fit keeps runs reproducible.)"""
    import fasttext

    for seed in range(4):
        try:
            model = fasttext.train_supervised(train_file, verbose=0, seed=seed, **args)
        except RuntimeError as exc:
            if "NaN" not in str(exc):
                raise
            continue
        model.save_model(model_file)
        return seed
    return -1


class FitDiverged(AgnewsError):
    """A peer's fit diverged however it was retried: recorded as not scored, the others go on."""


class _FastText:
    """fastText's supervised classifier with a scikit-learn-like fit/predict, on our tokens (it
    has no tokenizer of its own); one thread."""

    def __init__(self, ngrams: int, epochs: int) -> None:
        self.args = {"wordNgrams": ngrams, "epoch": epochs, "thread": 1}
        self.tmp = tempfile.TemporaryDirectory()

    def fit(self, docs: list[str], labels: np.ndarray) -> _FastText:
        import fasttext

        path = Path(self.tmp.name) / "train.txt"
        path.write_text(
            "".join(f"__label__{y} {d}\n" for d, y in zip(docs, labels, strict=True)),
            encoding="utf-8",
        )
        model_file = str(Path(self.tmp.name) / "model.bin")
        with get_context("spawn").Pool(1) as pool:
            self.seed = pool.apply(_train_fasttext, (str(path), model_file, self.args))
        if self.seed < 0:
            raise FitDiverged(f"fastText {self.args} diverged (NaN) with seeds 0-3")
        self.model = fasttext.load_model(model_file)
        return self

    def predict(self, docs: list[str]) -> np.ndarray:
        labels, _ = self.model.predict(docs)
        return np.array([int(x[0].removeprefix("__label__")) for x in labels])

    def probabilities(self, docs: list[str]) -> np.ndarray:
        labels, probs = self.model.predict(docs, k=NUM_CLASSES)
        out = np.zeros((len(docs), NUM_CLASSES))
        for i, (row_labels, row_probs) in enumerate(zip(labels, probs, strict=True)):
            for label, p in zip(row_labels, row_probs, strict=True):
                out[i, int(label.removeprefix("__label__"))] = p
        return out / out.sum(axis=1, keepdims=True)  # fastText's softmax, to float precision


def _fasttext_peers() -> dict[str, Callable[[], Any]]:
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return {}
    return {  # fastText's defaults (dim 100, lr 0.1, seed 0), 5 epochs
        "fastText unigrams (5 epochs)": lambda: _FastText(1, 5),
        "fastText uni+bigrams (5 epochs)": lambda: _FastText(2, 5),
    }


def score_peers(
    splits: Splits,
    peers: dict[str, tuple[str, Callable[[], Any]]],
    predictions_dir: str | Path | None = None,
    ece_bins: int = 15,
) -> list[dict[str, Any]]:
    """Fit each peer on train, score it on validation and test. `peers`: name -> (input, factory)
        with input "text" (the raw texts) or "tokens" (our tokens joined by spaces). With
        `predictions_dir`, each peer's test predictions go to `<predictions_dir>/<slug>.csv.gz`
    and its test ECE (`ece_bins` bins) into its entry."""
    inputs = {
        "text": splits.texts,
        "tokens": {split: [" ".join(t) for t in toks] for split, toks in splits.tokens.items()},
    }
    results = []
    for name, (kind, make) in peers.items():
        docs = inputs[kind]
        started = time.perf_counter()
        try:
            model = make().fit(docs["train"], splits.labels["train"])
        except FitDiverged as exc:  # in peers.json and on stderr, never silently left out
            results.append({"name": name, "not_scored": str(exc)})
            print(f"{name}: not scored: {exc}", file=sys.stderr, flush=True)
            continue
        fit_seconds = time.perf_counter() - started
        val = model.predict(docs["val"])
        test = model.predict(docs["test"])
        scores = classification_metrics(splits.labels["test"], np.asarray(test))
        if hasattr(model, "c"):
            name = name.replace("C best on val", f"C={model.c:g}, best on val")
        if getattr(model, "seed", 0):
            name = name.replace(" epochs)", f" epochs, seed {model.seed}: lower seeds diverged)")
        results.append(
            {
                "name": name,
                "val_acc": round(float(np.mean(val == splits.labels["val"])), 6),
                "test_acc": scores["accuracy"],
                "test_macro_f1": scores["macro_f1"],
                "fit_seconds": round(fit_seconds, 1),
            }
        )
        if predictions_dir is not None:
            path = Path(predictions_dir) / f"{slug(name)}.csv.gz"
            probs = probabilities(model, docs["test"])  # (N, 4)
            labels = splits.labels["test"]
            ece = expected_calibration_error(probs, labels, ece_bins)
            results[-1]["test_ece"] = round(ece, 6)
            text = predictions_csv(labels, np.asarray(test), probs, splits.rows["test"])
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write_gzip(path, text.encode("utf-8"))
            results[-1]["predictions"] = path.as_posix()
        print(
            f"{name}: val {results[-1]['val_acc']:.4f}, test {scores['accuracy']:.4f}, "
            f"macro-F1 {scores['macro_f1']:.4f} ({fit_seconds:.0f} s)",
            flush=True,
        )
    return results


def head_commit() -> str | None:
    """The commit the peers ran on (None outside git)."""
    try:
        return shell.run(["git", "rev-parse", "HEAD"], check=False).stdout.strip() or None
    except OSError:  # no git
        return None


def cpu_model() -> str | None:
    """The CPU's model name (/proc/cpuinfo; None where there is none)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or None
    names = [
        line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")
    ]
    return names[0] if names else platform.processor() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--params", default="params.yaml", help="params file (paths, prepare)")
    parser.add_argument("--raw", help="download's folder (default: paths.raw_dir)")
    parser.add_argument("--out", default="reports/peers.json", help="JSON written here")
    parser.add_argument("--no-fasttext", action="store_true", help="skip fastText")
    parser.add_argument(
        "--predictions",
        default="reports/peers",
        help="folder for each peer's per-row test predictions, <peer>.csv.gz "
        "(default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = load_params(args.params)
        p = cfg.prepare
        raw_dir = Path(args.raw or cfg.paths.raw_dir)
        splits = split_rows(raw_dir, p.val_size, p.seed, p.num_workers)
        try:
            val = (splits.texts["val"], splits.labels["val"])
            peers = {n: ("text", f) for n, f in _sklearn_peers(val).items()}
        except ImportError:
            raise AgnewsError(
                "the peers need scikit-learn, an optional extra: pip install -e '.[peers]'"
            ) from None
        if not args.no_fasttext:
            peers |= {n: ("tokens", f) for n, f in _fasttext_peers().items()}
        results = score_peers(splits, peers, args.predictions, cfg.evaluate.ece_bins)
        for peer in results:  # relative to the JSON's folder, as the ladder report reads it
            if "predictions" in peer:  # not for a peer whose fit diverged
                peer["predictions"] = Path(
                    os.path.relpath(peer["predictions"], Path(args.out).parent)
                ).as_posix()
    except AgnewsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = json.loads((raw_dir / "source.json").read_text(encoding="utf-8"))
    write_json(
        args.out,
        {
            "command": "python -m agnews peers",
            "data": {
                "source": source.get("local_dir") or source.get("dataset"),
                "raw_digest": raw_digest(raw_dir),  # the rows (agnews.provenance)
                "rows": {s: len(v) for s, v in splits.labels.items()},
                "prepare": {"val_size": p.val_size, "seed": p.seed},
            },
            "commit": head_commit(),
            "code_hash": code_hash(Path.cwd()),
            "peers_code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12],
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
            "cpu_model": cpu_model(),
            "peers": results,
        },
    )
    print(f"peers: written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
