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


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 5000) -> tuple[np.ndarray, float]:
    """Plain gradient descent on standardised features; returns weights for the raw features."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mu) / sd
    w = np.zeros(z.shape[1])
    b = 0.0
    # Classes are unbalanced in small calibration sets: weight them equally.
    cw = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = (p - y) * cw
        w -= 0.1 * (z.T @ g / len(y) + l2 * w)
        b -= 0.1 * g.mean()
    raw_w = w / sd
    raw_b = b - float((w * mu / sd).sum())
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
