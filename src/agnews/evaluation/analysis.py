"""What evaluate writes beside the scores: per-row predictions, an error analysis readable in a
terminal, calibration (expected calibration error, reliability table, temperature scaling).

Pure functions over numpy arrays: logits (N, C) float, labels (N,) int64 in 0..C-1.

Binning of the expected calibration error (Guo et al., 2017): each text's confidence is its
highest class probability; the range [0, 1] is cut into `bins` bins of equal width, bin i
holding confidences in (i/bins, (i+1)/bins] (the first also holds 0). Then
ECE = sum over bins of (texts in bin / N) * |accuracy in bin - mean confidence in bin|.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agnews import CLASS_NAMES


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes at `temperature`."""
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int) -> list[dict[str, Any]]:
    """One row per non-empty bin of confidence (see the module doc): its bounds, its number of
    texts, their mean confidence and their accuracy."""
    conf = probs.max(axis=1)  # (N,)
    correct = probs.argmax(axis=1) == labels  # (N,)
    # bin i holds (i/bins, (i+1)/bins]; ceil - 1 puts exactly i/bins in bin i-1, and 0 in bin 0
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        members = which == b
        n = int(members.sum())
        if n:
            rows.append(
                {
                    "lo": b / bins,
                    "hi": (b + 1) / bins,
                    "count": n,
                    "confidence": float(conf[members].mean()),
                    "accuracy": float(correct[members].mean()),
                }
            )
    return rows


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """ECE with `bins` equal-width bins of the top-class probability (module doc)."""
    table = reliability(probs, labels, bins)
    n = len(labels)
    return float(sum(r["count"] / n * abs(r["accuracy"] - r["confidence"]) for r in table))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 that minimises the mean NLL of probabilities(logits / T) on these rows
    (fit it on validation only). L-BFGS over log T, in float64, from T = 1."""
    z = torch.as_tensor(logits, dtype=torch.float64)  # (N, C)
    y = torch.as_tensor(labels, dtype=torch.int64)  # (N,)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def per_class_csv(per_class: dict[str, dict[str, float]]) -> str:
    """`class,metric,value` rows (precision, recall, f1 per class) for the bar-chart plot."""
    lines = ["class,metric,value"]
    for name, scores in per_class.items():
        lines += [f"{name},{m},{scores[m]:.4f}" for m in ("precision", "recall", "f1")]
    return "\n".join(lines) + "\n"


def reliability_csv(tables: dict[str, list[dict[str, Any]]]) -> str:
    """`split,bin,confidence,accuracy,count` rows of every split's reliability table."""
    lines = ["split,bin,confidence,accuracy,count"]
    for split, table in tables.items():
        for r in table:
            bin_name = f"{r['lo']:.3f}-{r['hi']:.3f}"
            lines.append(
                f"{split},{bin_name},{r['confidence']:.4f},{r['accuracy']:.4f},{r['count']}"
            )
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int = 110) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def errors_report(
    labels: np.ndarray,
    probs: np.ndarray,
    texts: list[str],
    rows: np.ndarray,
    examples: int,
    pairs: int = 3,
    names: tuple[str, ...] = CLASS_NAMES,
) -> str:
    """Markdown error analysis of one split: the confusion matrix (counts and row shares), the
    `pairs` most confused (true, predicted) pairs with their `examples` most confident
    headlines each, and the `examples` most confident mistakes overall."""
    preds = probs.argmax(axis=1)
    c = len(names)
    cm = np.bincount(labels * c + preds, minlength=c * c).reshape(c, c)
    support = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, support, out=np.zeros(cm.shape), where=support > 0)
    wrong = np.flatnonzero(preds != labels)
    out = [
        "# Test error analysis",
        "",
        f"{len(wrong)} of {len(labels)} test texts misclassified. `row` is the text's 0-based "
        "index in the raw test split (data/raw/test.jsonl); `p` is the predicted class's "
        "probability.",
        "",
        "## Confusion matrix (rows: true class; count and share of the row)",
        "",
        "| true \\ predicted | " + " | ".join(names) + " |",
        "|---" * (c + 1) + "|",
    ]
    for i, name in enumerate(names):
        cells = [f"{cm[i, j]} ({100 * share[i, j]:.1f}%)" for j in range(c)]
        out.append(f"| {name} | " + " | ".join(cells) + " |")

    def table(index: np.ndarray) -> list[str]:
        lines = ["| row | true | predicted | p | headline |", "|---|---|---|---|---|"]
        for k in index:
            lines.append(
                f"| {rows[k]} | {names[labels[k]]} | {names[preds[k]]} | "
                f"{probs[k, preds[k]]:.3f} | {_clip(texts[k])} |"
            )
        return lines

    off = [(int(cm[i, j]), i, j) for i in range(c) for j in range(c) if i != j and cm[i, j]]
    off.sort(key=lambda t: (-t[0], t[1], t[2]))
    out += ["", f"## The {min(pairs, len(off))} most confused pairs", ""]
    for n, i, j in off[:pairs]:
        members = wrong[(labels[wrong] == i) & (preds[wrong] == j)]
        top = members[np.argsort(-probs[members, j], kind="stable")[:examples]]
        out += [f"### {names[i]} taken for {names[j]}: {n} texts ({100 * share[i, j]:.1f}%)", ""]
        out += [*table(top), ""]
    top = wrong[np.argsort(-probs[wrong, preds[wrong]], kind="stable")[:examples]]
    out += [f"## The {len(top)} most confident mistakes", "", *table(top)]
    return "\n".join(out) + "\n"
