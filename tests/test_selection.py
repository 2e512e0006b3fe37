"""Evaluation step: tests for model selection (evals.selection) on small synthetic feature sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.checker import FEATURE_NAMES, ClaimFeatures, LogisticModel, pool_features
from evals.metrics_cls import balanced_accuracy
from evals.selection import (
    CANDIDATE_SPECS,
    Config,
    Example,
    design,
    fit_logistic,
    macro_balanced_threshold,
    nested_cv,
    repeated_cv,
    select,
)


def _examples(n: int = 80, seed: int = 0) -> list[Example]:
    """Two slices; novel_bigrams tells the labels apart (noisily), the other features are noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = i % 2
        rows = rng.uniform(0, 1, size=(2, len(FEATURE_NAMES)))
        rows[:, FEATURE_NAMES.index("novel_bigrams")] = np.clip(0.3 + 0.35 * label + rng.normal(0, 0.2, 2), 0, 1)
        rows[:, FEATURE_NAMES.index("contradiction")] = 0.0
        cf = ClaimFeatures(["a", "b"], rows, np.array([5.0, 7.0]), [0, 0], [True, True])
        out.append(Example(f"e{i}", f"slice{i % 4 // 2}", label, f"g{i // 4}", cf, float(rng.uniform())))
    return out


def _brute_threshold(scores: np.ndarray, labels: np.ndarray, slices: list[str]) -> float:
    sl = np.asarray(slices)
    uniq = np.unique(scores)
    cands = np.concatenate([[uniq[0] - 1e-9], (uniq[1:] + uniq[:-1]) / 2.0, [uniq[-1] + 1e-9]])
    best_t, best = float(cands[0]), -1.0
    for t in cands:
        ba = np.mean([balanced_accuracy(scores[sl == s] >= t, labels[sl == s]) for s in np.unique(sl)])
        if ba > best + 1e-12:
            best_t, best = float(t), float(ba)
    return best_t


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.booleans(), st.sampled_from(["a", "b", "c"])), min_size=2, max_size=40
    )
)
def test_vectorised_threshold_matches_the_definition(items: list[tuple[int, bool, str]]) -> None:
    scores = np.array([s / 6 for s, _, _ in items])
    labels = np.array([y for _, y, _ in items])
    slices = [s for _, _, s in items]
    fast = macro_balanced_threshold(scores, labels, slices)
    slow = _brute_threshold(scores, labels, slices)

    def macro(t: float) -> float:
        sl = np.asarray(slices)
        return float(np.mean([balanced_accuracy(scores[sl == s] >= t, labels[sl == s]) for s in np.unique(sl)]))

    assert macro(fast) == pytest.approx(macro(slow))


def test_the_stored_model_reproduces_scikit_learn() -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from evals.selection import _splits

    ex = _examples()
    spec = CANDIDATE_SPECS["bigrams+sim_max"]
    model = LogisticModel.from_json(fit_logistic(ex, spec, c=1.0))
    x = design(ex, spec)
    y = np.array([e.label for e in ex])
    ref = CalibratedClassifierCV(
        make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)),
        method="sigmoid",
        cv=_splits(ex, 0),
        ensemble=False,
    ).fit(x, y)
    ours = np.array([model.probability(row) for row in x])
    assert np.allclose(ours, ref.predict_proba(x)[:, 1], atol=1e-6)
    assert model.coef[0] > 0  # more novel bigrams: more likely hallucinated


def test_pool_features_weights_by_length_and_takes_maxima() -> None:
    rows = np.zeros((2, len(FEATURE_NAMES)))
    rows[:, FEATURE_NAMES.index("sim_gap")] = [0.1, 0.4]
    got = pool_features(rows, np.array([3.0, 1.0]), ("sim_gap:mean", "sim_gap:max"))
    assert got == pytest.approx([0.175, 0.4])
    assert pool_features(rows[:0], np.array([]), ("sim_gap:mean",)).tolist() == [0.0]


def test_cv_finds_the_signal_and_selection_prefers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import evals.selection as sel

    # A smaller grid keeps the nested CV quick; the procedure is the same.
    monkeypatch.setattr(sel, "C_GRID", (1.0,))
    ex = _examples()
    signal = repeated_cv(ex, Config("bigrams+sim_max", 1.0, None), repeats=2)
    noise = repeated_cv(ex, Config("words", 1.0, None), repeats=2)
    assert signal["macro"]["auroc"] > 0.8 > 0.65 > noise["macro"]["auroc"]
    config, table = select(ex, repeats=1)
    assert any(item.startswith("novel_bigrams") for item in config.spec)
    assert len(table) == len(sel.candidates()) == len(CANDIDATE_SPECS) * len(sel.CONTRADICTION_FLOORS)
    nested = nested_cv(ex, repeats=1, inner_repeats=1)
    assert nested["macro"]["auroc"] > 0.75 and len(nested["chosen_in_outer_folds"]) == 5


def test_unknown_feature_in_a_calibration_is_refused() -> None:
    bad = {"spec": ["nope:mean"], "mean": [0], "scale": [1], "coef": [1], "intercept": 0, "platt_a": -1, "platt_b": 0}
    with pytest.raises(ValueError, match="unknown feature 'nope:mean'"):
        LogisticModel.from_json(bad)
