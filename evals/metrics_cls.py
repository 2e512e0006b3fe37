"""Evaluation step: binary-classification metrics for the faithfulness checker (no sklearn).

Convention everywhere: label 1 / True = hallucinated (the positive class), and a higher
score means "more likely hallucinated".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

POSITIVE = "hallucinated"


def _as_arrays(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-d and of equal length, got {s.shape} and {y.shape}")
    return s, y


def to_binary(labels: Sequence[str]) -> list[int]:
    """Map 'hallucinated'/'supported' strings to 1/0."""
    return [1 if lab == POSITIVE else 0 for lab in labels]


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties share the mean of their positions."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=float)
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half).

    Returns nan when one class is absent, because the area is undefined then.
    """
    s, y = _as_arrays(scores, labels)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _rankdata(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def confusion(predicted: ArrayLike, labels: ArrayLike) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) with hallucinated as positive."""
    p, y = _as_arrays(predicted, labels)
    p = p.astype(bool)
    tp = int((p & y).sum())
    fp = int((p & ~y).sum())
    fn = int((~p & y).sum())
    tn = int((~p & ~y).sum())
    return tp, fp, fn, tn


def balanced_accuracy(predicted: ArrayLike, labels: ArrayLike) -> float:
    """Mean of the recall on each class; a class that is absent is left out of the mean."""
    tp, fp, fn, tn = confusion(predicted, labels)
    recalls = []
    if tp + fn:
        recalls.append(tp / (tp + fn))
    if tn + fp:
        recalls.append(tn / (tn + fp))
    return float(np.mean(recalls)) if recalls else float("nan")


def f1(predicted: ArrayLike, labels: ArrayLike) -> float:
    """F1 of the hallucinated class.

    Edge cases follow the usual convention: no true and no predicted positives -> 1.0
    (nothing to find and nothing wrongly flagged); otherwise a zero denominator -> 0.0.
    """
    tp, fp, fn, _ = confusion(predicted, labels)
    if tp + fp + fn == 0:
        return 1.0
    return float(2 * tp / (2 * tp + fp + fn))


def precision_recall(predicted: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Precision and recall of the hallucinated class (0.0 when undefined)."""
    tp, fp, fn, _ = confusion(predicted, labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return float(precision), float(recall)


def roc_points(scores: ArrayLike, labels: ArrayLike) -> list[tuple[float, float, float]]:
    """ROC curve as (false-positive rate, true-positive rate, threshold) points.

    Starts at (0, 0, +inf) and ends at (1, 1, min score); one point per distinct score, so
    tied scores make a diagonal step, exactly as the AUROC counts them.
    """
    s, y = _as_arrays(scores, labels)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    points: list[tuple[float, float, float]] = [(0.0, 0.0, float("inf"))]
    if n_pos == 0 or n_neg == 0:
        return points
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = fp = 0
    i = 0
    while i < len(s_sorted):
        j = i
        while j < len(s_sorted) and s_sorted[j] == s_sorted[i]:
            tp += int(y_sorted[j])
            fp += int(not y_sorted[j])
            j += 1
        points.append((fp / n_neg, tp / n_pos, float(s_sorted[i])))
        i = j
    return points


def trapezoid_area(points: Sequence[tuple[float, float, float]]) -> float:
    """Area under a list of ROC points (used to cross-check auroc in tests)."""
    area = 0.0
    for (x0, y0, _), (x1, y1, _) in zip(points, points[1:], strict=False):
        area += (x1 - x0) * (y0 + y1) / 2.0
    return area


def best_threshold(scores: ArrayLike, labels: ArrayLike) -> float:
    """Threshold maximising balanced accuracy (midpoint between adjacent distinct scores).

    A score >= threshold is called hallucinated.
    """
    s, y = _as_arrays(scores, labels)
    uniq = np.unique(s)
    if len(uniq) == 1:
        return float(uniq[0])
    candidates = np.concatenate([[uniq[0] - 1e-9], (uniq[1:] + uniq[:-1]) / 2.0, [uniq[-1] + 1e-9]])
    best_t, best_ba = float(candidates[0]), -1.0
    for t in candidates:
        ba = balanced_accuracy(s >= t, y)
        if ba > best_ba:
            best_t, best_ba = float(t), ba
    return best_t


def summarize(scores: ArrayLike, labels: ArrayLike, threshold: float) -> dict[str, float]:
    """AUROC, balanced accuracy, F1, precision and recall at one threshold."""
    s, y = _as_arrays(scores, labels)
    pred = s >= threshold
    precision, recall = precision_recall(pred, y)
    return {
        "n": float(len(y)),
        "auroc": auroc(s, y),
        "balanced_accuracy": balanced_accuracy(pred, y),
        "f1": f1(pred, y),
        "precision": precision,
        "recall": recall,
    }
