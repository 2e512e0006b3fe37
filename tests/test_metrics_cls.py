"""Evaluation step: tests for the classification metrics (hand-made cases with known values)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals.metrics_cls import (
    auroc,
    balanced_accuracy,
    best_threshold,
    confusion,
    f1,
    precision_recall,
    roc_points,
    summarize,
    to_binary,
    trapezoid_area,
)


def test_auroc_perfect_reversed_and_ties() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5


def test_auroc_known_value() -> None:
    # The classic 4-point example: 3 of the 4 (positive, negative) pairs are ordered right.
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # One tied pair counts one half: pairs (0.5 vs 0.5) = 0.5, (0.5 vs 0.2) = 1 -> 0.75.
    assert auroc([0.5, 0.5, 0.2], [1, 0, 0]) == pytest.approx(0.75)


def test_auroc_single_class_is_nan() -> None:
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))
    assert math.isnan(auroc([0.1, 0.2], [0, 0]))


def test_auroc_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        auroc([0.1, 0.2, 0.3], [0, 1])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=5), st.booleans()),
        min_size=2,
        max_size=30,
    ).filter(lambda xs: any(y for _, y in xs) and not all(y for _, y in xs))
)
def test_auroc_matches_pair_count_and_roc_area(pairs: list[tuple[int, bool]]) -> None:
    scores = [float(s) for s, _ in pairs]
    labels = [y for _, y in pairs]
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    brute = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))
    assert auroc(scores, labels) == pytest.approx(brute)
    assert trapezoid_area(roc_points(scores, labels)) == pytest.approx(brute)


def test_roc_points_shape() -> None:
    pts = roc_points([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    assert pts[0][:2] == (0.0, 0.0)
    assert pts[-1][:2] == (1.0, 1.0)
    fprs = [p[0] for p in pts]
    tprs = [p[1] for p in pts]
    assert fprs == sorted(fprs) and tprs == sorted(tprs)
    assert pts[1] == (0.0, 0.5, 0.9)


def test_balanced_accuracy_known_values() -> None:
    # Recall on positives 2/3, on negatives 1/1.
    assert balanced_accuracy([1, 1, 0, 0], [1, 1, 1, 0]) == pytest.approx((2 / 3 + 1) / 2)
    # Calling everything hallucinated: recall 1 and 0 -> 0.5, whatever the class balance.
    assert balanced_accuracy([1, 1, 1, 1], [1, 0, 0, 0]) == pytest.approx(0.5)
    # Only one class present: the mean is over that class alone.
    assert balanced_accuracy([0, 1], [0, 0]) == pytest.approx(0.5)


def test_f1_known_and_edge_cases() -> None:
    # tp=1, fp=1, fn=1 -> 2/(2+1+1) = 0.5
    assert f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert f1([1, 1], [1, 1]) == 1.0
    # No positives anywhere and none predicted: nothing missed, nothing wrongly flagged.
    assert f1([0, 0, 0], [0, 0, 0]) == 1.0
    # Positives exist but none predicted, or predicted where there are none: 0.
    assert f1([0, 0], [1, 0]) == 0.0
    assert f1([1, 0], [0, 0]) == 0.0


def test_confusion_precision_recall() -> None:
    assert confusion([1, 1, 0, 0], [1, 0, 1, 0]) == (1, 1, 1, 1)
    assert precision_recall([0, 0], [1, 0]) == (0.0, 0.0)
    assert precision_recall([1, 1, 0], [1, 0, 1]) == (0.5, 0.5)


def test_best_threshold_separates_when_possible() -> None:
    scores = [0.1, 0.2, 0.35, 0.7, 0.9]
    labels = [0, 0, 0, 1, 1]
    t = best_threshold(scores, labels)
    assert 0.35 < t <= 0.7
    assert balanced_accuracy(np.asarray(scores) >= t, labels) == 1.0


def test_summarize_and_to_binary() -> None:
    labels = to_binary(["hallucinated", "supported", "hallucinated", "supported"])
    assert labels == [1, 0, 1, 0]
    out = summarize([0.9, 0.1, 0.4, 0.6], labels, threshold=0.5)
    assert out["auroc"] == pytest.approx(0.75)
    assert out["balanced_accuracy"] == pytest.approx(0.5)
    assert out["f1"] == pytest.approx(0.5)


def _brute_threshold(scores: list[float], labels: list[bool]) -> float:
    # Every candidate cut, ascending; the first with the highest balanced accuracy, counted by hand.
    uniq = sorted(set(scores))
    cands = [uniq[0] - 1e-9] + [(a + b) / 2 for a, b in zip(uniq, uniq[1:], strict=False)] + [uniq[-1] + 1e-9]
    pos = sum(labels)
    neg = len(labels) - pos
    best_t, best = cands[0], -1.0
    for t in cands:
        tp = sum(1 for s, y in zip(scores, labels, strict=True) if y and s >= t)
        tn = sum(1 for s, y in zip(scores, labels, strict=True) if not y and s < t)
        recalls = ([tp / pos] if pos else []) + ([tn / neg] if neg else [])
        ba = sum(recalls) / len(recalls)
        if ba > best + 1e-12:
            best_t, best = t, ba
    return best_t


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=6), st.booleans()), min_size=2, max_size=25))
def test_best_threshold_matches_a_scan_of_every_cut(pairs: list[tuple[int, bool]]) -> None:
    scores = [s / 6 for s, _ in pairs]
    labels = [y for _, y in pairs]
    if len(set(scores)) == 1:
        assert best_threshold(scores, labels) == scores[0]
        return
    assert best_threshold(scores, labels) == pytest.approx(_brute_threshold(scores, labels))


def test_metrics_reject_mismatched_shapes() -> None:
    for fn in (balanced_accuracy, f1, confusion, precision_recall):
        with pytest.raises(ValueError):
            fn([1, 0, 1], [1, 0])
