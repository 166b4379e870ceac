"""Paired comparisons of two classifiers scored on the same test rows.

Both runs see the same 7,600 texts, so their difference is judged on the rows where they
disagree, not against two independent binomial errors:

- `paired_bootstrap`: the accuracy difference B - A with a percentile interval from resampling
  the rows (each resample keeps a row's pair of outcomes together);
- `mcnemar_exact`: McNemar's exact test, a two-sided binomial test (scipy.stats.binomtest) of
  the rows only A got right against the rows only B got right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    diff: float  # accuracy of B minus accuracy of A (a share, not points)
    low: float  # the interval's bounds
    high: float
    only_a: int  # rows A got right and B wrong
    only_b: int  # rows B got right and A wrong
    p_value: float  # McNemar's exact test
    n: int  # rows

    def points(self) -> str:
        """e.g. "+0.41 (−0.05 to +0.87)", in accuracy points."""
        return f"{100 * self.diff:+.2f} ({100 * self.low:+.2f} to {100 * self.high:+.2f})"


def _outcomes(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two equal-length 1-d outcome arrays, got {a.shape} and {b.shape}")
    return a, b


def paired_bootstrap(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(difference, low, high): accuracy of B minus A on the same rows (per-row correctness
    (N,) bool each) and the percentile interval at `level` from `resamples` resamples of the
    rows, seeded (the same inputs give the same interval)."""
    a, b = _outcomes(correct_a, correct_b)
    d = b.astype(np.int8) - a.astype(np.int8)  # (N,) in {-1, 0, 1}
    n = len(d)
    # a resample's mean depends only on how many of its rows are -1, 0 and +1: drawing those
    # counts (multinomial) is the row bootstrap exactly, without drawing N indices each time
    shares = np.array([np.mean(d == -1), np.mean(d == 0), np.mean(d == 1)])
    counts = np.random.default_rng(seed).multinomial(n, shares, size=resamples)  # (R, 3)
    means = (counts[:, 2] - counts[:, 0]) / n  # (R,)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(d.mean()), float(low), float(high)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """(only A right, only B right, two-sided exact p-value): McNemar's exact test."""
    from scipy.stats import binomtest

    a, b = _outcomes(correct_a, correct_b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    if only_a + only_b == 0:
        return 0, 0, 1.0
    return only_a, only_b, float(binomtest(only_b, only_a + only_b, 0.5).pvalue)


def compare(correct_a: np.ndarray, correct_b: np.ndarray, seed: int = 0) -> PairedDifference:
    """B against A on the same rows: the bootstrap interval and McNemar's test together."""
    diff, low, high = paired_bootstrap(correct_a, correct_b, seed=seed)
    only_a, only_b, p = mcnemar_exact(correct_a, correct_b)
    return PairedDifference(diff, low, high, only_a, only_b, p, len(np.asarray(correct_a)))
