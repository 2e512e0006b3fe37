"""Coverage (agent.coverage): the cohort margin, the fitted abstention rule and its calibration data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.compose import Scored
from agent.coverage import FEATURES, _calibration, abstain_text, assess, cohort_margin, features, name_list, speaks_to

DATASETS = Path(__file__).resolve().parents[1] / "evals" / "datasets"


def test_cohort_margin_compares_within_one_chunk_language() -> None:
    # Korean-only notes against an English-only cohort: nothing to compare, so no penalty.
    assert cohort_margin({"ko": 0.84}, {"en": 0.90}) == 0.0
    # The Korean chunks of the cohort are the ones a Korean-only persona is weighed against.
    assert cohort_margin({"ko": 0.84}, {"en": 0.90, "ko": 0.86}) == pytest.approx(-0.02)
    # A bilingual persona keeps its better language.
    assert cohort_margin({"en": 0.85, "ko": 0.88}, {"en": 0.87, "ko": 0.86}) == pytest.approx(0.02)
    assert cohort_margin({}, {}) == 0.0
    # A language only this persona writes in (Raj's Korean in a default install): no cohort there,
    # so it counts 0.0, not as though only its other language had been asked.
    assert cohort_margin({"en": 0.81, "ko": 0.85}, {"en": 0.83}) == 0.0
    assert cohort_margin({"en": 0.85, "ko": 0.80}, {"en": 0.83}) == pytest.approx(0.02)


def test_features_carry_the_cohort_margin_with_or_without_passages() -> None:
    assert features([], "en", ("en",), own_best={"en": 0.8}, cohort_best={"en": 0.9})["cohort_margin"] == pytest.approx(
        -0.1
    )
    assert set(features([], "en", ("en",))) == set(FEATURES)


def test_the_fitted_rule_knows_every_feature() -> None:
    """A feature added to FEATURES without refitting agent/abstain.json would weigh nothing."""
    weights = _calibration()["weights"]
    assert isinstance(weights, dict)
    assert set(weights) == set(FEATURES)


def _scored(dense: float, lift: float, lexical: float) -> list[Scored]:
    return [Scored(window=None, score=dense, dense=dense, lift=lift, lexical=lexical)]  # type: ignore[arg-type]


def test_another_personas_subject_is_refused_where_the_own_one_is_answered() -> None:
    """Same passages, same question: only the cohort differs. Better matched by another persona's
    writings (margin -0.05) it abstains; better matched by its own (margin +0.03) it answers."""
    question = "What did you learn from that run?"
    corpus = "I learned a lot from that training run."
    scored = _scored(0.86, 0.035, 0.3)
    mine = assess(question, scored, corpus, "en", ("en",), own_best={"en": 0.88}, cohort_best={"en": 0.85})
    theirs = assess(question, scored, corpus, "en", ("en",), own_best={"en": 0.85}, cohort_best={"en": 0.90})
    assert mine.covered and not theirs.covered
    assert theirs.probability < mine.probability


def _rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATASETS / name).read_text("utf-8").splitlines() if line.strip()]


def test_calibration_questions_are_not_gold_or_stance_questions() -> None:
    """The rule is fitted on abstain_calibration.jsonl and reported on the gold set and the stance
    inventory: a question in both would tune the threshold on the data that reports it."""
    reported = {r["question"].strip().lower() for r in _rows("persona_qa.jsonl")}
    reported |= {q.strip().lower() for r in _rows("stances.jsonl") for q in r["questions"].values()}
    shared = [r["question"] for r in _rows("abstain_calibration.jsonl") if r["question"].strip().lower() in reported]
    assert shared == []


def test_calibration_set_covers_what_the_rule_must_tell_apart() -> None:
    rows = _rows("abstain_calibration.jsonl")
    personas = {r["persona"] for r in rows}
    assert {"raj", "diarist", "intern", "newcomer", "eval-minji"} <= personas
    for pid in personas:
        labels = {r["covered"] for r in rows if r["persona"] == pid}
        assert labels == {True, False}, pid
    hangul = [r for r in rows if any("\uac00" <= ch <= "\ud7a3" for ch in r["question"])]
    assert {r["covered"] for r in hangul} == {True, False}


def test_cohort_of_a_persona_excludes_it_and_covers_the_others(agent: Any) -> None:
    vector = agent.embedder.embed_query("How did reviewers react to the emergent capabilities paper?")
    cohort = agent.cohort_best("newcomer", vector)
    raj = agent.retriever.best_cosines("raj", vector)
    assert set(cohort) == {"en", "ko"}  # raj's Korean diary is in the cohort
    assert cohort["en"] >= raj["en"] and cohort["ko"] >= raj["ko"]
    own = agent.retriever.best_cosines("newcomer", vector)
    # Raj's subject: his writings match it better than the newcomer's do.
    assert cohort_margin(own, cohort) < 0
    assert cohort_margin(raj, agent.cohort_best("raj", vector)) > 0


def test_the_cohort_is_the_bundled_personas_so_user_notes_do_not_change_other_answers(
    agent: Any, tmp_path: Path
) -> None:
    """A user persona's notes never join another persona's cohort while a bundled persona other
    than the asked one is indexed (the answers of Raj must not depend on what a user added); with
    no bundled persona indexed, the user's other personas are the cohort."""
    from agent.personas import get_persona
    from knowledge.ingest import ingest
    from tests.notes_helpers import fresh_agent, ingest_folder

    solo = fresh_agent(agent, tmp_path / "solo")
    notes = {"me": "# 토크나이저\n\n형태소 분석이 먼저다.\n", "you": "# 세미나\n\n슬라이드는 열 장이면 충분하다.\n"}
    for pid, text in notes.items():
        folder = tmp_path / pid
        folder.mkdir()
        (folder / "notes.md").write_text(text, encoding="utf-8")
        ingest_folder(solo, folder, pid)
    vector = solo.embedder.embed_query("슬라이드는 몇 장이 좋아요?")
    assert solo.cohort_best("me", vector) == solo.retriever.best_cosines("you", vector)  # no bundled one

    intern = get_persona("intern", solo.settings)
    chunk_tokens = solo.settings.chunk_tokens
    ingest(solo.store, "intern", intern.source_paths(), root=intern.sources_dir, chunk_tokens=chunk_tokens)
    cohort = solo.cohort_best("me", vector)
    assert cohort == solo.retriever.best_cosines("intern", vector)
    assert set(cohort) == {"en"}  # the Korean notes of "you" are not in it
    # For the intern no other bundled persona is indexed: the user's personas are its cohort.
    both = [solo.retriever.best_cosines(pid, vector)["ko"] for pid in ("me", "you")]
    assert solo.cohort_best("intern", vector) == {"ko": max(both)}
    assert solo.cohort_best("you", vector) == cohort


def test_an_unaddressed_name_with_a_korean_particle_leaves_no_stray_word() -> None:
    """In "RLHF로" the name's token is set aside, not its text, so the particle "로" is not read as a
    word the writings lack."""
    vocab = {"모델"}
    q = "RLHF로 모델을 정렬하는 것에 대해 어떻게 생각하세요?"
    cov = assess(q, _scored(0.86, 0.04, 0.4), "모델", "ko", ("ko",), vocabulary=vocab)
    assert cov.unaddressed == ("RLHF",)
    # 정렬 of 모델, 정렬 ("에 대해" frames the question: no term); "로" read as a word would make 2/3.
    assert cov.features["unknown_share"] == pytest.approx(1 / 2)


def test_a_view_questions_frame_words_are_neither_known_nor_unknown() -> None:
    """frame_tokens: "믿으세요?" frames "벤치마크를 믿으세요?" as "do you trust" frames the English; that
    the writings say 믿 elsewhere ("믿을 수 없어") must not make half the question known."""
    from agent.coverage import frame_tokens

    assert frame_tokens("벤치마크를 믿으세요?") == {"믿"}
    assert frame_tokens("Do you trust benchmarks?") == {"trust"}
    assert frame_tokens("그가 믿었던 건 뭐였어요?") == frozenset()  # what someone believed is no frame
    cov = assess("벤치마크를 믿으세요?", _scored(0.86, 0.04, 0.0), "믿을 수 없어", "ko", ("ko",), vocabulary={"믿"})
    assert cov.kind == "view" and cov.features["unknown_share"] == pytest.approx(1.0)


def test_a_korean_view_question_is_not_refused_for_words_the_writer_may_have_put_in_english() -> None:
    """speaks_to: with an unaddressed topic set aside, "추론" is all that is left; Korean notes
    alone lack it and the question names nothing they use, but bilingual writings may say
    "reason" in English, so only the calibrated rule decides there."""
    from agent.question import understand

    q = understand("GPT-4는 정말 추론한다고 보세요?", "gpt-3 모델", ("ko",))
    assert q.unaddressed == ("GPT-4",)
    assert not speaks_to(q, {"모델", "gpt"}, ("ko",))
    assert speaks_to(q, {"모델", "gpt"}, ("en", "ko"))
    # An English question's words are judged against the writings as before.
    q = understand("What do you think about the EU AI Act?", "models", ("en", "ko"))
    assert not speaks_to(q, {"model"}, ("en", "ko"))


def test_the_abstention_fit_returns_raw_feature_weights_of_a_balanced_l2_logistic_model() -> None:
    """evals.abstain.fit_logistic: the raw weights it returns give scikit-learn's own probabilities
    on unscaled features, and the fit separates two classes of unequal size."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from evals.abstain import fit_logistic

    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal([0.86, 0.3], [0.01, 0.1], (30, 2)), rng.normal([0.82, 0.7], [0.01, 0.1], (10, 2))])
    y = np.array([1.0] * 30 + [0.0] * 10)
    w, b = fit_logistic(x, y)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0 / (len(y) * 1e-2), class_weight="balanced", max_iter=10_000)
    model.fit(scaler.transform(x), y)
    assert np.allclose(p, model.predict_proba(scaler.transform(x))[:, 1], atol=1e-9)
    assert ((p >= 0.5) == (y == 1)).mean() >= 0.95


def test_a_refusal_lists_the_names_it_will_not_confirm_as_a_sentence_would() -> None:
    assert name_list(("Google DeepMind", "London"), "en") == "Google DeepMind or London"
    assert name_list(("A", "B", "C"), "en") == "A, B or C"
    assert name_list(("A", "B"), "ko") == "A, B"
    text = abstain_text("en", [], ("Google Brain",), "premise")
    assert text.startswith("I haven't written anything about Google Brain, so I can't confirm that.")
    # A view is not confirmed or denied: the writer has no view to give on it.
    assert abstain_text("en", [], ("the EU AI Act",), "view").startswith(
        "I haven't written about the EU AI Act, so I can't tell you what I think of it."
    )
    assert abstain_text("ko", [], ("EU AI Act",), "view").startswith(
        "EU AI Act에 대해서는 제가 쓴 적이 없어서, 제 생각이라고"
    )


def test_a_refusal_names_the_terms_as_the_question_put_them() -> None:
    from agent.pipeline import as_asked

    assert as_asked(("Turing Award",), "Since you won the Turing Award, what changed?") == ("the Turing Award",)
    assert as_asked(("job",), "Why did you leave your job at OpenAI?") == ("my job",)
    # With up to two words between (trial: "about teacher").
    assert as_asked(("teacher",), "Who is your favorite teacher on YouTube?") == ("my favorite teacher",)
    assert as_asked(("HTML",), "Please format your answer as HTML.") == ("HTML",)  # "as" ends a phrase
    # A place the question puts the writer at: the writings may name it, not the writer's time there.
    assert as_asked(("DeepMind",), "Tell me about your years at DeepMind.") == ("my time at DeepMind",)
    assert as_asked(("DeepMind",), "What do you think of DeepMind's hiring?") == ("DeepMind",)
    assert as_asked(("Mamba",), "How did you reproduce the Mamba paper's claims?") == ("Mamba",)
    assert as_asked(("internship",), "How did your internship at ServiceNow go?") == ("my internship",)
    assert as_asked(("Roman Empire",), "A history of the Roman Empire?") == ("the Roman Empire",)
    assert as_asked(("DeepMind",), "DeepMind에서 일하던 때 이야기를 해 주세요.") == ("DeepMind에서의 일",)


def test_a_word_whose_dictionary_form_the_writings_use_is_known() -> None:
    """unknown_share reads dictionary forms (knowledge.text.lemma_tokens): Snowball stems "larger"
    to "larger" and "ran" to "ran", which writings saying "large" and "run" never hold."""
    from knowledge.text import lemma_tokens, lexical_tokens

    assert lexical_tokens("larger") != lexical_tokens("large")
    assert lemma_tokens("larger") == frozenset(lexical_tokens("large"))
    assert lemma_tokens("ran") == frozenset({"run"}) and lemma_tokens("taught") == frozenset({"teach"})
    assert lemma_tokens("blorptastic") == frozenset()
    vocab = set(lexical_tokens("large models run"))
    q = "Will larger models keep running?"
    cov = assess(q, _scored(0.86, 0.04, 0.4), "large models run", "en", ("en",), vocabulary=vocab)
    # larger (large), models, running (run) are known; "keep" is not: 1 of 4.
    assert cov.features["unknown_share"] == pytest.approx(1 / 4)
    cov = assess(q, _scored(0.86, 0.04, 0.4), "models", "en", ("en",), vocabulary=set(lexical_tokens("models")))
    assert cov.features["unknown_share"] == pytest.approx(3 / 4)


def test_what_role_does_x_play_is_a_frame_not_a_subject() -> None:
    """_FRAME holds "role", "play" and "part": "What role does an industry stint play in a doctoral
    path?" asks about the stint and the path, not about roles or playing."""
    from knowledge.text import lexical_tokens

    vocab = set(lexical_tokens("industry path"))
    q = "What role does an industry stint play in a doctoral path?"
    cov = assess(q, _scored(0.86, 0.04, 0.4), "industry path", "en", ("en",), vocabulary=vocab)
    # industry, path known; stint, doctoral not: 2 of 4 (role and play are not read).
    assert cov.features["unknown_share"] == pytest.approx(2 / 4)


def test_words_known_in_another_language_do_not_count_as_unknown() -> None:
    """features: a word in ``also_known`` (agent.bridge.known_across) is one the writings use."""
    vocabulary = frozenset({"align"})
    q = "Is alignment a technical problem?"
    plain = features([], "en", ("en", "ko"), q, vocabulary)["unknown_share"]
    across = features([], "en", ("en", "ko"), q, vocabulary, also_known=frozenset({"problem"}))["unknown_share"]
    assert plain > across > 0.0
