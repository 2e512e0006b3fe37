"""Evaluation step, model selection: fit and choose the checker on the tuning part of dev, report both parts.

Honest model selection (issue 15): the labelled dev set is split once by ``evals.split`` into a
tuning part and a locked part. Everything that is chosen — which pooled signals
(``CANDIDATE_SPECS``), the L2 strength ``C`` of the logistic regression, whether a contradiction
lifts the probability (``CONTRADICTION_FLOORS``), the Platt calibration and the decision
threshold — is chosen on the tuning part alone, by repeated stratified grouped k-fold
cross-validation (groups = contexts, so answers to one source never straddle folds). The whole
selection is itself cross-validated (nested CV) to estimate what it is worth before the locked
part is read. ``python -m evals report`` then evaluates the locked part with the installed
calibration, once; nothing here reads the locked part.

scikit-learn does the fitting (``StandardScaler``, ``LogisticRegression``, ``CalibratedClassifierCV``,
``StratifiedGroupKFold``); the fitted numbers are written to calibration.json and applied by
agent.checker with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.checker import (
    FEATURE_NAMES,
    ClaimFeatures,
    FaithfulnessChecker,
    claim_features,
    floor_score,
    pool_features,
)
from evals.metrics_cls import auroc, balanced_accuracy, f1

# Candidate answer-level inputs, written down before any figure was seen: the per-claim floor
# alone, then similarity and bigram novelty added, their maxima (one invented sentence in a
# long answer), and the contradiction cue as a learned input.
CANDIDATE_SPECS: dict[str, tuple[str, ...]] = {
    "words": ("novel_words:mean",),
    "words+sim": ("novel_words:mean", "sim_gap:mean"),
    "words+sim_max": ("novel_words:mean", "sim_gap:max"),
    "bigrams+sim_max": ("novel_bigrams:mean", "sim_gap:max"),
    "words+bigrams+sim": ("novel_words:mean", "novel_bigrams:mean", "sim_gap:mean", "sim_gap:max"),
    "words+bigrams_max+sim_max": ("novel_words:mean", "novel_bigrams:max", "sim_gap:max"),
    "all": (
        "novel_words:mean",
        "novel_words:max",
        "novel_bigrams:mean",
        "novel_bigrams:max",
        "sim_gap:mean",
        "sim_gap:max",
        "contradiction:max",
    ),
    "words+sim+contradiction": ("novel_words:mean", "sim_gap:mean", "sim_gap:max", "contradiction:max"),
}
# Used when the answer and the passages are in different scripts: word overlap is void there.
SEMANTIC_SPEC: tuple[str, ...] = ("sim_gap:mean", "sim_gap:max")
C_GRID: tuple[float, ...] = (0.1, 1.0, 10.0)
# The contradiction rule (a claim with a number or name the passages never mention, or a flipped
# negation of a near-copy, is at least this likely hallucinated) is a requirement of the runtime
# guard, not a tuned choice: on the tuning part it changed macro AUROC by -0.005..+0.001 across
# candidates (within noise), and dev has too few such swaps to weigh it. None would switch it off.
CONTRADICTION_FLOORS: tuple[float | None, ...] = (0.75,)
FOLDS = 5
REPEATS = 5  # shuffles of the grouped k-fold CV used to choose
NESTED_REPEATS = 1  # shuffles of the outer CV that estimates the whole selection (each runs the full selection)
TIE = 0.005  # macro AUROC within this of the best: the simpler candidate wins


@dataclass
class Example:
    """One labelled answer with its precomputed claim features (label 1 = hallucinated)."""

    id: str
    slice: str
    label: int
    group: str
    features: ClaimFeatures
    floor: float

    @property
    def contradicted(self) -> bool:
        rows = self.features.rows
        return bool(len(rows)) and bool(rows[:, FEATURE_NAMES.index("contradiction")].max() > 0)


def featurize(rows: Sequence[dict[str, Any]], checker: FaithfulnessChecker) -> list[Example]:
    """Claim features for labelled JSONL rows (id, context, answer, label, source_dataset)."""
    from agent.checker import split_sentences
    from evals.split import group_key

    out: list[Example] = []
    for r in rows:
        answer = str(r["answer"])
        passages = [r["context"]] if isinstance(r["context"], str) else list(r["context"])
        sents = [answer[a:b] for a, b in split_sentences(answer)]
        out.append(
            Example(
                id=str(r["id"]),
                slice=str(r.get("source_dataset") or "all"),
                label=1 if r.get("label") == "hallucinated" else 0,
                group=group_key(r),
                features=claim_features(sents, checker.context(passages), checker.embedder),
                floor=floor_score(answer, "\n".join(passages)),
            )
        )
    return out


@dataclass(frozen=True)
class Config:
    """One candidate: pooled inputs, L2 strength and the contradiction rule."""

    spec_name: str
    c: float
    contradiction_floor: float | None

    @property
    def spec(self) -> tuple[str, ...]:
        return CANDIDATE_SPECS[self.spec_name]

    def size(self) -> tuple[int, float, int]:
        """Simplicity order for ties: fewer inputs, stronger regularisation (smaller C), no extra rule."""
        return (len(self.spec), self.c, 0 if self.contradiction_floor is None else 1)


def design(examples: Sequence[Example], spec: Sequence[str]) -> np.ndarray:
    return np.array([pool_features(e.features.rows, e.features.lengths, spec) for e in examples])


def _pipeline(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))


def macro_balanced_threshold(scores: np.ndarray, labels: np.ndarray, slices: Sequence[str]) -> float:
    """One global threshold (score >= threshold: hallucinated) maximising the mean over slices
    of the balanced accuracy; candidates are midpoints between adjacent distinct scores, the
    lowest of equally good ones wins. Vectorised: counts come from sorted scores per slice."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels).astype(bool)
    sl = np.asarray(slices)
    uniq = np.unique(scores)
    cands = np.concatenate([[uniq[0] - 1e-9], (uniq[1:] + uniq[:-1]) / 2.0, [uniq[-1] + 1e-9]])
    per_slice = []
    for s in np.unique(sl):
        m = sl == s
        pos = np.sort(scores[m & labels])
        neg = np.sort(scores[m & ~labels])
        recalls = []
        if len(pos):
            recalls.append((len(pos) - np.searchsorted(pos, cands, side="left")) / len(pos))
        if len(neg):
            recalls.append(np.searchsorted(neg, cands, side="left") / len(neg))
        per_slice.append(np.mean(recalls, axis=0))
    macro = np.mean(per_slice, axis=0)
    return float(cands[int(np.argmax(macro >= macro.max() - 1e-12))])


def _apply_rule(p: np.ndarray, examples: Sequence[Example], floor: float | None) -> np.ndarray:
    if floor is None:
        return p
    hit = np.array([e.contradicted for e in examples])
    return np.where(hit, np.maximum(p, floor), p)


_SPLIT_CACHE: dict[tuple[tuple[str, ...], int, int], list[tuple[np.ndarray, np.ndarray]]] = {}


def _splits(examples: Sequence[Example], seed: int, folds: int = FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (slice x label) grouped k-fold splits; memoised, as every candidate reuses them."""
    key = (tuple(e.id for e in examples), seed, folds)
    if key not in _SPLIT_CACHE:
        _SPLIT_CACHE[key] = _make_splits(examples, seed, folds)
    return _SPLIT_CACHE[key]


def _make_splits(examples: Sequence[Example], seed: int, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.array([e.label for e in examples])
    groups = np.array([e.group for e in examples])
    # Stratify on slice and label together, so that every fold holds every slice.
    strata = np.array([f"{e.slice}:{e.label}" for e in examples])
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(np.zeros(len(y)), strata, groups)]


def cv_scores(
    examples: Sequence[Example], config: Config, seed: int, folds: int = FOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities and, per example, the threshold chosen on its training folds."""
    x = design(examples, config.spec)
    y = np.array([e.label for e in examples])
    sl = [e.slice for e in examples]
    scores = np.zeros(len(y))
    thresholds = np.zeros(len(y))
    for tr, te in _splits(examples, seed, folds):
        model = _pipeline(config.c).fit(x[tr], y[tr])
        p_tr = _apply_rule(model.predict_proba(x[tr])[:, 1], [examples[i] for i in tr], config.contradiction_floor)
        p_te = _apply_rule(model.predict_proba(x[te])[:, 1], [examples[i] for i in te], config.contradiction_floor)
        scores[te] = p_te
        thresholds[te] = macro_balanced_threshold(p_tr, y[tr], [sl[i] for i in tr])
    return scores, thresholds


def evaluate_scores(
    scores: np.ndarray, labels: np.ndarray, slices: Sequence[str], thresholds: np.ndarray | float
) -> dict[str, Any]:
    """Per-slice, macro (mean over slices) and pooled AUROC / balanced accuracy / F1."""
    sl = np.asarray(slices)
    pred = scores >= thresholds
    per: dict[str, dict[str, float]] = {}
    for s in sorted(set(sl.tolist())):
        m = sl == s
        per[s] = {
            "n": int(m.sum()),
            "auroc": auroc(scores[m], labels[m]),
            "balanced_accuracy": balanced_accuracy(pred[m], labels[m]),
            "f1": f1(pred[m], labels[m]),
        }
    keys = ("auroc", "balanced_accuracy", "f1")
    macro = {k: float(np.mean([per[s][k] for s in per])) for k in keys}
    pooled = {
        "auroc": auroc(scores, labels),
        "balanced_accuracy": balanced_accuracy(pred, labels),
        "f1": f1(pred, labels),
    }
    return {"slices": per, "macro": macro, "pooled": pooled}


def mean_reports(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Element-wise mean of evaluate_scores results (repeated CV)."""

    def avg(dicts: list[dict[str, float]]) -> dict[str, float]:
        return {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}

    return {
        "slices": {s: avg([r["slices"][s] for r in runs]) for s in runs[0]["slices"]},
        "macro": avg([r["macro"] for r in runs]),
        "pooled": avg([r["pooled"] for r in runs]),
    }


def repeated_cv(examples: Sequence[Example], config: Config, repeats: int = REPEATS, seed: int = 0) -> dict[str, Any]:
    """Mean over ``repeats`` shuffles of grouped k-fold CV figures for one candidate."""
    y = np.array([e.label for e in examples])
    sl = [e.slice for e in examples]
    runs = []
    for r in range(repeats):
        s, t = cv_scores(examples, config, seed=seed + r)
        runs.append(evaluate_scores(s, y, sl, t))
    return mean_reports(runs)


def candidates() -> list[Config]:
    return [Config(n, c, f) for n in CANDIDATE_SPECS for c in C_GRID for f in CONTRADICTION_FLOORS]


def select(examples: Sequence[Example], repeats: int = REPEATS, seed: int = 0) -> tuple[Config, list[dict[str, Any]]]:
    """The candidate with the best repeated-CV macro AUROC (the simplest one within ``TIE``),
    macro balanced accuracy breaking exact ties; plus the table of every candidate's figures."""
    table = []
    for config in candidates():
        rep = repeated_cv(examples, config, repeats, seed)
        table.append({"config": config, "auroc": rep["macro"]["auroc"], "bacc": rep["macro"]["balanced_accuracy"]})
    best = max(row["auroc"] for row in table)
    near = [row for row in table if row["auroc"] >= best - TIE]
    chosen = min(near, key=lambda row: (row["config"].size(), -row["auroc"], -row["bacc"]))
    return chosen["config"], table


def nested_cv(examples: Sequence[Example], repeats: int = NESTED_REPEATS, inner_repeats: int = 1) -> dict[str, Any]:
    """Estimate of the whole procedure (selection included) on the tuning part: each outer
    training part runs ``select`` on its own, and its choice is scored on the outer test fold."""
    y = np.array([e.label for e in examples])
    sl = [e.slice for e in examples]
    runs = []
    chosen: list[str] = []
    for r in range(repeats):
        scores = np.zeros(len(y))
        thresholds = np.zeros(len(y))
        for tr, te in _splits(examples, seed=1000 + r):
            train = [examples[i] for i in tr]
            config, _ = select(train, repeats=inner_repeats, seed=100 + r)
            chosen.append(f"{config.spec_name} C={config.c} floor={config.contradiction_floor}")
            x_tr, x_te = design(train, config.spec), design([examples[i] for i in te], config.spec)
            model = _pipeline(config.c).fit(x_tr, y[tr])
            p_tr = _apply_rule(model.predict_proba(x_tr)[:, 1], train, config.contradiction_floor)
            p_te = _apply_rule(model.predict_proba(x_te)[:, 1], [examples[i] for i in te], config.contradiction_floor)
            scores[te] = p_te
            thresholds[te] = macro_balanced_threshold(p_tr, y[tr], [sl[i] for i in tr])
        runs.append(evaluate_scores(scores, y, sl, thresholds))
    return {**mean_reports(runs), "chosen_in_outer_folds": chosen}


def fit_logistic(examples: Sequence[Example], spec: Sequence[str], c: float, seed: int = 0) -> dict[str, Any]:
    """Fit StandardScaler + LogisticRegression with sigmoid calibration on out-of-fold decisions
    (``CalibratedClassifierCV(ensemble=False)`` over grouped folds); the numbers for
    agent.checker.LogisticModel."""
    from sklearn.calibration import CalibratedClassifierCV

    x = design(examples, spec)
    y = np.array([e.label for e in examples])
    cal = CalibratedClassifierCV(_pipeline(c), method="sigmoid", cv=_splits(examples, seed), ensemble=False)
    cal.fit(x, y)
    fitted = cal.calibrated_classifiers_[0]
    pipe = fitted.estimator
    scaler, logreg = pipe[0], pipe[-1]
    sigmoid = fitted.calibrators[0]
    return {
        "spec": list(spec),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": logreg.coef_[0].tolist(),
        "intercept": float(logreg.intercept_[0]),
        "platt_a": float(sigmoid.a_),
        "platt_b": float(sigmoid.b_),
    }


def fit_calibration(
    examples: Sequence[Example], config: Config, checker: FaithfulnessChecker, xling_offset: float = 0.0
) -> dict[str, Any]:
    """calibration.json content for ``config`` fitted on ``examples`` (the tuning part). The
    threshold maximises macro balanced accuracy on repeated out-of-fold probabilities."""
    from agent.checker import CALIBRATION_FORMAT, LogisticModel

    cal: dict[str, Any] = {
        "format": CALIBRATION_FORMAT,
        "model": fit_logistic(examples, config.spec, config.c),
        "semantic_model": fit_logistic(examples, SEMANTIC_SPEC, config.c),
        "contradiction_floor": config.contradiction_floor,
        "xling_offset": round(xling_offset, 6),
    }
    model = LogisticModel.from_json(cal["model"])
    # Out-of-fold decisions through the final calibration: the threshold is not chosen in-sample.
    y = np.array([e.label for e in examples])
    sl = [e.slice for e in examples]
    pooled_s, pooled_y, pooled_sl = [], [], []
    for r in range(REPEATS):
        x = design(examples, config.spec)
        dec = np.zeros(len(y))
        for tr, te in _splits(examples, seed=r):
            dec[te] = _pipeline(config.c).fit(x[tr], y[tr]).decision_function(x[te])
        p = 1.0 / (1.0 + np.exp(model.platt_a * dec + model.platt_b))
        pooled_s.append(_apply_rule(p, examples, config.contradiction_floor))
        pooled_y.append(y)
        pooled_sl.extend(sl)
    cal["threshold"] = round(macro_balanced_threshold(np.concatenate(pooled_s), np.concatenate(pooled_y), pooled_sl), 6)
    checker.load_calibration(cal)
    return cal


def chosen_config(checker: FaithfulnessChecker) -> Config:
    """The candidate recorded in the installed calibration (raises KeyError on an old file)."""
    chosen = checker.calibration["selection"]["chosen"]
    return Config(chosen["spec"], float(chosen["C"]), chosen["contradiction_floor"])


def checker_report(
    tuning: Sequence[Example],
    locked: Sequence[Example],
    korean: Sequence[Example],
    checker: FaithfulnessChecker,
) -> dict[str, Any]:
    """Figures next to the word-overlap floor: the tuning part by repeated grouped CV of the
    installed candidate, the locked part and the Korean set with the installed calibration.
    The floor's threshold is chosen on the tuning part too; no figure here feeds back into a fit."""
    y_t = np.array([e.label for e in tuning])
    sl_t = [e.slice for e in tuning]
    floor_t = np.array([e.floor for e in tuning])
    floor_thr = macro_balanced_threshold(floor_t, y_t, sl_t)
    config = chosen_config(checker)

    def held_out(examples: Sequence[Example]) -> dict[str, Any]:
        y = np.array([e.label for e in examples])
        sl = [e.slice for e in examples]
        scores = np.array([checker.score_features(e.features) for e in examples])
        floor = np.array([e.floor for e in examples])
        return {
            "checker": evaluate_scores(scores, y, sl, checker.threshold),
            "floor": evaluate_scores(floor, y, sl, floor_thr),
        }

    report: dict[str, Any] = {
        "chosen": checker.calibration["selection"]["chosen"],
        "threshold": checker.threshold,
        "floor_threshold": floor_thr,
        "tuning": {
            "checker": repeated_cv(tuning, config),
            "floor": evaluate_scores(floor_t, y_t, sl_t, floor_thr),
        },
        "tuning_nested_cv": checker.calibration["selection"].get("tuning_nested_cv"),
    }
    if locked:
        report["locked"] = held_out(locked)
    if korean:
        report["korean"] = held_out(korean)
    return report
