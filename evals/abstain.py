"""Calibration of the abstention rule: fit agent/abstain.json on labelled questions, not by guessing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agent.coverage import CALIBRATION, FEATURES

DATASET = Path(__file__).parent / "datasets" / "abstain_calibration.jsonl"


def collect(agent: Any, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Coverage features of each question (as ask() computes them) and whether it is covered."""
    xs, ys = [], []
    for row in rows:
        *_, coverage = agent.prepare(row["question"], row["persona"], row.get("history"))
        feats = coverage.features
        xs.append([feats[name] for name in FEATURES])
        ys.append(1.0 if row["covered"] else 0.0)
    return np.asarray(xs, dtype=np.float64), np.asarray(ys)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression with balanced class weights: scikit-learn's
    ``LogisticRegression`` on standardised features (``StandardScaler``), ``C = 1 / (n * l2)``, i.e.
    the mean class-weighted log loss plus ``l2 / 2 * ||w||^2``. ``x``: (n, features), ``y``: (n,) of
    0/1. Returns the weights and bias for the raw features, as agent.coverage applies them with
    numpy (the runtime never imports scikit-learn). Raises ValueError (scikit-learn's) when ``y``
    holds one class only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    # Classes are unbalanced in small calibration sets: weight them equally.
    model = LogisticRegression(C=1.0 / (len(y) * l2), class_weight="balanced", max_iter=10_000)
    model.fit(scaler.transform(x), y)
    coef = model.coef_[0]
    raw_w = coef / scaler.scale_
    raw_b = float(model.intercept_[0] - (coef * scaler.mean_ / scaler.scale_).sum())
    return raw_w, raw_b


def best_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The threshold with the best balanced accuracy; ties go to the lower one (answer more)."""
    best, best_t = -1.0, 0.5
    for t in sorted(set(np.round(p, 4))):
        pred = p >= t
        tpr = (pred & (y == 1)).sum() / max((y == 1).sum(), 1)
        tnr = (~pred & (y == 0)).sum() / max((y == 0).sum(), 1)
        if (tpr + tnr) / 2 > best:
            best, best_t = (tpr + tnr) / 2, float(t)
    return best_t


def calibrate(agent: Any, dataset: Path = DATASET, out: Path = CALIBRATION) -> dict[str, Any]:
    from evals.run import ensure_eval_personas

    rows = [json.loads(line) for line in dataset.read_text("utf-8").splitlines() if line.strip()]
    # The rows may ask the gold set's small user personas (evals/datasets/personas/): ingested as
    # `persona eval` does, so the rule is fitted against the same set of indexed personas.
    ensure_eval_personas(agent, {row["persona"] for row in rows})
    x, y = collect(agent, rows)
    w, b = fit_logistic(x, y)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    t = best_threshold(p, y)
    pred = p >= t
    result = {
        "weights": {name: round(float(v), 6) for name, v in zip(FEATURES, w, strict=True)},
        "bias": round(float(b), 6),
        "threshold": round(t, 4),
        "fitted_on": dataset.name,
        "n": len(rows),
        "train_balanced_accuracy": round(
            float(((pred & (y == 1)).sum() / (y == 1).sum() + (~pred & (y == 0)).sum() / (y == 0).sum()) / 2), 4
        ),
    }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def configure(p: Any) -> None:
    p.add_argument("--data", default=str(DATASET), help=f"labelled questions (JSONL; default: {DATASET})")
    p.add_argument("--output", default=str(CALIBRATION), help=f"where to write the rule (default: {CALIBRATION})")


def main(args: Any) -> int:
    """Fit the abstention rule on ``--data`` against the index of PERSONA_HOME and write it."""
    from agent.pipeline import build_agent

    result = calibrate(build_agent(), Path(args.data), Path(args.output))
    print(json.dumps(result, indent=2))
    return 0
