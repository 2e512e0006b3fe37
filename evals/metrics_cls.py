"""Evaluation step: binary-classification metrics for the faithfulness checker (scikit-learn's, one convention).

Convention everywhere: label 1 / True = hallucinated (the positive class), and a higher
score means "more likely hallucinated".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import (
    auc,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

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


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``; ties count one half, as in the
    Mann-Whitney U statistic).

    Returns nan when one class is absent, because the area is undefined then. Raises ValueError
    when ``scores`` and ``labels`` are not 1-d arrays of equal length.
    """
    s, y = _as_arrays(scores, labels)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, s))


def confusion(predicted: ArrayLike, labels: ArrayLike) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) with hallucinated as positive (scikit-learn's ``confusion_matrix``)."""
    p, y = _as_arrays(predicted, labels)
    tn, fp, fn, tp = confusion_matrix(y, p.astype(bool), labels=[False, True]).ravel()
    return int(tp), int(fp), int(fn), int(tn)


def balanced_accuracy(predicted: ArrayLike, labels: ArrayLike) -> float:
    """Mean of the recall on each class (scikit-learn's ``balanced_accuracy_score``); a class absent
    from ``labels`` is left out of the mean; nan for empty input."""
    p, y = _as_arrays(predicted, labels)
    if not len(y):
        return float("nan")
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": the absent class is dropped, as documented above.
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y, p.astype(bool)))


def f1(predicted: ArrayLike, labels: ArrayLike) -> float:
    """F1 of the hallucinated class (scikit-learn's ``f1_score``, 2tp / (2tp + fp + fn)).

    Edge cases follow the usual convention: no true and no predicted positives -> 1.0
    (nothing to find and nothing wrongly flagged); otherwise a zero denominator -> 0.0.
    """
    p, y = _as_arrays(predicted, labels)
    return float(f1_score(y, p.astype(bool), zero_division=1.0))


def precision_recall(predicted: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Precision and recall of the hallucinated class (scikit-learn's; 0.0 when undefined)."""
    p, y = _as_arrays(predicted, labels)
    pb = p.astype(bool)
    return (
        float(precision_score(y, pb, zero_division=0.0)),
        float(recall_score(y, pb, zero_division=0.0)),
    )


def roc_points(scores: ArrayLike, labels: ArrayLike) -> list[tuple[float, float, float]]:
    """ROC curve as (false-positive rate, true-positive rate, threshold) points (scikit-learn's
    ``roc_curve`` with every point kept).

    Starts at (0, 0, +inf) and ends at (1, 1, min score); one point per distinct score, so
    tied scores make a diagonal step, exactly as the AUROC counts them. Only the start point
    when one class is absent.
    """
    s, y = _as_arrays(scores, labels)
    points: list[tuple[float, float, float]] = [(0.0, 0.0, float("inf"))]
    if y.all() or not y.any():
        return points
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    return points + [(float(a), float(b), float(t)) for a, b, t in zip(fpr[1:], tpr[1:], thr[1:], strict=True)]


def trapezoid_area(points: Sequence[tuple[float, float, float]]) -> float:
    """Area under a list of ROC points by the trapezoidal rule (scikit-learn's ``auc``; used to
    cross-check auroc in tests)."""
    if len(points) < 2:
        return 0.0
    return float(auc([p[0] for p in points], [p[1] for p in points]))


def best_threshold(scores: ArrayLike, labels: ArrayLike) -> float:
    """Threshold maximising balanced accuracy (midpoint between adjacent distinct scores).

    A score >= threshold is called hallucinated. Balanced accuracy at the cut ">= u" is
    (1 + tpr - fpr) / 2 (Youden's J), read off ``roc_curve``; among equal maxima the lowest
    threshold wins. With one class only, everything is called that class.
    """
    s, y = _as_arrays(scores, labels)
    uniq = np.unique(s)
    if len(uniq) == 1:
        return float(uniq[0])
    if y.all():
        return float(uniq[0] - 1e-9)
    if not y.any():
        return float(uniq[-1] + 1e-9)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    j = tpr - fpr
    k = int(np.flatnonzero(j >= j.max() - 1e-12)[-1])  # thresholds descend: the last is the lowest
    if np.isinf(thr[k]):  # nothing called hallucinated
        return float(uniq[-1] + 1e-9)
    i = int(np.searchsorted(uniq, thr[k]))
    return float(uniq[0] - 1e-9) if i == 0 else float((uniq[i - 1] + uniq[i]) / 2.0)


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
