"""Linear peers on exactly our split: TF-IDF uni+bigrams with a linear SVM and logistic regression.

    pip install -e '.[peers]'   # scikit-learn: an optional extra, not needed by the pipeline
    python bench/linear_peers.py --data-dir ../shared/data/ag_news

Same tokens (agnews.data.text), same stratified validation split (prepare.val_size, prepare.seed
from params.yaml) as the pipeline, so the validation and test accuracies printed here compare
directly with `dvc exp show`. Each model is fitted on the train split (scored on validation and
test) and, like the issue's peer figures, on all train rows (scored on test). Prints a table;
nothing is asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from agnews.config import load_params
from agnews.data.raw import load_local
from agnews.data.shards import stratified_split
from agnews.data.text import tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with AG News CSVs")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC
    except ImportError:
        raise SystemExit("this script needs scikit-learn: pip install scikit-learn") from None

    cfg = load_params(args.params).prepare
    splits, _ = load_local(Path(args.data_dir))
    docs = {k: [" ".join(tokenize(e.text)) for e in v] for k, v in splits.items()}
    labels = {k: np.array([e.label for e in v]) for k, v in splits.items()}
    train_idx, val_idx = stratified_split(labels["train"], cfg.val_size, cfg.seed)
    print(
        f"data: {len(train_idx)} train / {len(val_idx)} validation / {len(labels['test'])} test "
        f"rows from {args.data_dir}"
    )
    print()
    print("| model | fitted on | validation acc | test acc |")
    print("|---|---|---|---|")
    models = {
        "TF-IDF 1-2 grams + linear SVM (C=1)": lambda: LinearSVC(C=1.0),
        "TF-IDF 1-2 grams + logistic regression (C=10)": lambda: LogisticRegression(
            C=10.0, max_iter=3000
        ),
    }
    for name, make in models.items():
        for fit_on, idx in (("train split", train_idx), ("all train rows", None)):
            rows = np.arange(len(labels["train"])) if idx is None else idx
            vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")
            x = vec.fit_transform([docs["train"][i] for i in rows])
            clf = make().fit(x, labels["train"][rows])
            test = (clf.predict(vec.transform(docs["test"])) == labels["test"]).mean()
            val = "–"
            if idx is not None:
                pred = clf.predict(vec.transform([docs["train"][i] for i in val_idx]))
                val = f"{(pred == labels['train'][val_idx]).mean():.4f}"
            print(f"| {name} | {fit_on} | {val} | {test:.4f} |")


if __name__ == "__main__":
    main()
