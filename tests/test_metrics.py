"""Evaluation step: tests for the answer metrics on small hand-made cases whose right value is known."""

from __future__ import annotations

import pytest

from evals import metrics as m
from evals.metrics import CitedSentence

FILES = {
    "diary.txt": "Intro line. It was a gradient clipping bug. Then we restarted the run.",
    "other.txt": "Nothing to see here.",
}


def read(name: str) -> str:
    return FILES[name]


# --- retrieval ---------------------------------------------------------------------------------


def test_gold_spans_locate_quotes_and_skip_missing_ones() -> None:
    gold = [
        {"source": "diary.txt", "quote": "gradient clipping bug"},
        {"source": "diary.txt", "quote": "not in the file"},
    ]
    start = FILES["diary.txt"].find("gradient")
    assert m.gold_spans(gold, read) == [("diary.txt", start, start + len("gradient clipping bug"))]
    assert m.gold_spans([], read) == []


def test_overlap_is_half_open_and_per_source() -> None:
    spans = [("diary.txt", 10, 15)]
    assert not m.overlaps_gold("diary.txt", 0, 10, spans)  # ends where the quote starts
    assert m.overlaps_gold("diary.txt", 0, 11, spans)
    assert m.overlaps_gold("diary.txt", 14, 30, spans)
    assert not m.overlaps_gold("diary.txt", 15, 30, spans)
    assert not m.overlaps_gold("other.txt", 0, 100, spans)  # same offsets, another file


def test_rank_hit_at_k_and_reciprocal_rank() -> None:
    spans = [("diary.txt", 12, 20), ("diary.ko.txt", 0, 5)]
    retrieved = [("other.txt", 0, 50), ("diary.txt", 30, 60), ("diary.txt", 0, 13), ("diary.ko.txt", 0, 9)]
    rank = m.first_hit_rank(retrieved, spans)
    assert rank == 3  # either gold passage counts; the first one retrieved decides
    assert [m.hit_at(rank, k) for k in (1, 3, 5)] == [0.0, 1.0, 1.0]
    assert m.reciprocal_rank(rank) == pytest.approx(1 / 3)
    assert m.first_hit_rank(retrieved[:2], spans) is None
    assert m.hit_at(None, 5) == 0.0 and m.reciprocal_rank(None) == 0.0
    assert m.first_hit_rank(retrieved, []) is None  # empty gold: nothing can hit


# --- sentences ---------------------------------------------------------------------------------


def test_split_answer_markers_after_the_period_belong_to_the_sentence_before() -> None:
    text = "Here is what I wrote about that: It was a gradient clipping bug. [1] The loss hit NaN [2][3]. [4]"
    got = m.split_answer(text)
    assert [(s.text, s.markers, s.claim) for s in got] == [
        ("Here is what I wrote about that:", (), False),
        ("It was a gradient clipping bug.", (1,), True),
        ("The loss hit NaN.", (2, 3, 4), True),
    ]


def test_split_answer_edge_cases() -> None:
    assert m.split_answer("") == []
    assert m.split_answer("[1] [2]") == []  # markers with no sentence to attach to
    (only,) = m.split_answer("제가 쓴 글에서 그대로 옮기면 이렇습니다: 밤새 코드를 뜯어봤다. [1]")[1:]
    assert only.text == "밤새 코드를 뜯어봤다." and only.markers == (1,)
    assert m.strip_markers("A bug [1]. Then [2] more.") == "A bug. Then more."


# --- citations (ALCE) ----------------------------------------------------------------------------


def test_citation_metrics_with_no_sentences_are_undefined() -> None:
    assert m.citation_recall([]) is None
    assert m.citation_precision([]) is None
    assert m.faithfulness([]) is None


def test_claims_without_citations_score_zero() -> None:
    s = CitedSentence(markers=(), valid=(), supported=False)
    assert m.citation_recall([s]) == 0.0
    assert m.citation_precision([s]) == 0.0  # as ALCE: nothing cited, nothing precise


def test_citation_of_a_missing_passage_is_unsupported_and_irrelevant() -> None:
    missing = CitedSentence(markers=(7,), valid=(False,), supported=True)  # even if a judge said yes
    fine = CitedSentence(markers=(1,), valid=(True,), supported=True)
    assert m.citation_recall([missing, fine]) == 0.5
    assert m.citation_precision([missing, fine]) == 0.5
    mixed = CitedSentence(
        markers=(1, 7), valid=(True, False), supported=True, alone=(True, False), without=(False, True)
    )
    assert not mixed.recalled and m.relevant_citations(mixed) == 0


def test_alce_precision_flags_a_citation_that_adds_nothing() -> None:
    s1 = CitedSentence((1,), (True,), supported=True)
    # [2] alone does not support it, and [1] without [2] still does: [2] is irrelevant.
    s2 = CitedSentence((1, 2), (True, True), supported=True, alone=(True, False), without=(False, True))
    assert m.citation_recall([s1, s2]) == 1.0
    assert m.citation_precision([s1, s2]) == pytest.approx(2 / 3)


def test_alce_precision_keeps_citations_that_are_needed_together() -> None:
    # Neither alone supports it; removing either breaks the support: both relevant.
    s = CitedSentence((1, 2), (True, True), supported=True, alone=(False, False), without=(False, False))
    assert m.citation_precision([s]) == 1.0
    # Jointly unsupported: every citation of the sentence is irrelevant, recall 0.
    bad = CitedSentence((1, 2), (True, True), supported=False)
    assert m.citation_recall([bad]) == 0.0 and m.citation_precision([bad]) == 0.0
    # One sentence of each: recall 1/2, precision 2/4.
    assert m.citation_recall([s, bad]) == 0.5 and m.citation_precision([s, bad]) == 0.5


def test_faithfulness_is_the_supported_share() -> None:
    assert m.faithfulness([True, False, True, True]) == 0.75


# --- abstention and false premises -------------------------------------------------------------


def test_abstention_precision_and_recall() -> None:
    assert m.abstention_scores([(True, True), (True, False), (False, True), (False, False)]) == (0.5, 0.5)
    assert m.abstention_scores([(True, True), (False, False)]) == (1.0, 1.0)
    assert m.abstention_scores([(False, False), (True, False)]) == (None, 0.0)  # nothing abstained
    assert m.abstention_scores([(False, True)]) == (0.0, None)  # nothing should have
    assert m.abstention_scores([]) == (None, None)


def test_premise_terms_are_the_words_the_writings_never_use() -> None:
    corpus = "I did my PhD at MIT. The paper was accepted after three review rounds."
    assert m.premise_terms("worked at DeepMind", corpus) == ["deepmind"]
    assert m.premise_terms("paper was accepted", corpus) == []
    assert m.premise_terms(None, corpus) == []
    assert m.premise_terms("successfully erased data", "") == ["successfully", "eras", "data"]
    # Only the asker's own terms: "gave" paraphrases "give up", the question never says it.
    question = "Why did you give up on DeepMind, and was the paper rejected?"
    assert m.premise_terms("gave up on DeepMind; paper was rejected", corpus, question) == ["deepmind", "reject"]
    assert m.premise_terms("trained GPT-4 in 2019", corpus, "2019년에 GPT-4를 훈련했을 때 어땠나요?") == ["gpt-4"]


def test_false_premise_correction() -> None:
    terms = ["deepmind"]
    assert m.affirms_premise("My years at DeepMind were formative.", terms)
    assert not m.affirms_premise("I never worked at DeepMind. I did my PhD at MIT.", terms)
    assert not m.affirms_premise("DeepMind에서 일한 적은 없어요.", terms)  # a Korean negation counts
    assert m.premise_corrected("My years at DeepMind were formative.", False, terms, 1) is False
    assert m.premise_corrected("I haven't written anything about DeepMind.", True, terms, 0) is True
    assert m.premise_corrected("I did my PhD at MIT.", False, terms, 0) is True
    # No foreign term (the premise distorts what was written): a key fact must be stated.
    assert m.premise_corrected("It was a hard time.", False, [], 0) is False
    assert m.premise_corrected("In the end it was accepted.", False, [], 1) is True


# --- key facts and voice ------------------------------------------------------------------------


def test_key_fact_recall() -> None:
    facts = ["gradient clipping", "NaN"]
    assert m.key_fact_recall(facts, "It was a Gradient Clipping bug.") == 0.5
    assert m.key_fact_recall(facts, "It was a gradient clipping bug.", ["logs full of NaN"]) == 1.0
    assert m.key_fact_recall([], "anything") is None
    assert m.key_facts_found(["윤리학"], "I read ethics papers.", ["윤리학 논문을 읽기 시작했다."]) == ["윤리학"]


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("I think so.", "en", True),
        ("That was my first run.", "en", True),
        ("They told me.", "en", True),
        ("The model diverged, i.e. it broke.", "en", False),
        ("Mine, the gradient, mined.", "en", True),
        ("제가 쓴 글입니다.", "ko", True),
        ("저는 잘 모르겠어요.", "ko", True),
        ("제 생각은 달라요.", "ko", True),
        ("내용이 없다. 나중에 보자.", "ko", False),
        ("I think so.", "ko", False),  # the answer's own language decides
    ],
)
def test_first_person(text: str, lang: str, expected: bool) -> None:
    assert m.first_person(text, lang) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("As an AI, I cannot have opinions.", True),
        ("Certainly! Here is the answer.", True),
        ("Sure! The run failed.", True),
        ("I hope this helps.", True),
        ("I'm an assistant built to help.", True),
        ("저는 AI라서 그런 경험이 없어요.", True),
        ("I'm not sure! It broke in week two.", False),
        ("It was a gradient clipping bug.", False),
    ],
)
def test_assistant_speak(text: str, expected: bool) -> None:
    assert m.assistant_speak(text) is expected


def test_style_margin() -> None:
    assert m.style_margin([1.0, 0.0], [1.0, 0.0], [[0.0, 1.0]]) == pytest.approx(1.0)
    assert m.style_margin([0.0, 1.0], [1.0, 0.0], [[0.0, 1.0], [1.0, 1.0]]) == pytest.approx(-1.0)
    assert m.style_margin([1.0, 0.0], [1.0, 0.0], []) is None
    assert m.cosine([0.0, 0.0], [1.0, 0.0]) == 0.0


# --- aggregation ---------------------------------------------------------------------------------


def _scores(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "kind": "fact",
        "answerable": True,
        "rank": 1,
        "abstained": False,
        "claims": 2,
        "supported_claims": 2,
        "citation_recall": 1.0,
        "citation_precision": 1.0,
        "gold_cited": True,
        "premise_corrected": None,
        "key_fact_recall": 1.0,
        "first_person": True,
        "assistant_speak": False,
        "lang_match": True,
        "style_margin": 0.02,
    }
    base.update(kw)
    return base


def test_summarize_known_values() -> None:
    rows = [
        _scores(rank=1, claims=3, supported_claims=3),
        _scores(rank=4, claims=1, supported_claims=0, citation_recall=0.0, citation_precision=0.0, gold_cited=False),
        _scores(kind="out_of_scope", answerable=False, rank=None, abstained=True, claims=0, supported_claims=0,
                key_fact_recall=None, gold_cited=None, citation_recall=None, citation_precision=None),
        _scores(kind="out_of_scope", answerable=False, rank=None, abstained=False, key_fact_recall=None),
        _scores(kind="false_premise", rank=None, abstained=True, premise_corrected=True, claims=0),
        _scores(kind="false_premise", rank=2, premise_corrected=False, key_fact_recall=0.0, first_person=False,
                assistant_speak=True),
    ]  # fmt: skip
    s = m.summarize(rows)
    assert s["n"] == 6
    # Retrieval: ranks 1, 4, None, 2 over the four answerable items.
    assert s["hit@1"] == 0.25 and s["hit@3"] == 0.5 and s["hit@5"] == 0.75
    assert s["mrr"] == pytest.approx((1 + 0.25 + 0 + 0.5) / 4)
    # Faithfulness pools claims of answers that did not abstain: (3 + 0 + 2 + 2) / (3 + 1 + 2 + 2).
    assert s["faithfulness"] == pytest.approx(7 / 8)
    assert s["citation_recall"] == pytest.approx(3 / 4)
    # Abstention without the false-premise items: TP 1, FN 1, FP 0.
    assert s["abstention_precision"] == 1.0 and s["abstention_recall"] == 0.5
    assert s["false_premise_correction"] == 0.5
    assert s["key_fact_recall"] == pytest.approx(3 / 4)
    assert s["first_person"] == pytest.approx(5 / 6) and s["no_assistant_speak"] == pytest.approx(5 / 6)
    assert s["counts"]["should_abstain"] == 2 and s["counts"]["false_premise"] == 2
    assert "llm_faithfulness" not in s


def test_summarize_empty_slice_and_errors() -> None:
    s = m.summarize([])
    assert s["n"] == 0 and all(s[k] is None for k in m.METRICS)
    broken = m.summarize([{"kind": "fact", "answerable": True, "rank": None, "error": "boom"}])
    assert broken["errors"] == 1 and broken["hit@5"] == 0.0 and broken["first_person"] is None


def test_summarize_llm_judge_beside_the_checker() -> None:
    rows = [
        _scores(llm_status="ok", llm_faithfulness=0.5),
        _scores(llm_status="unavailable", llm_faithfulness=None),
        _scores(llm_status="ok", llm_faithfulness=1.0),
    ]
    s = m.summarize(rows)
    assert s["faithfulness"] == 1.0 and s["llm_faithfulness"] == 0.75
    assert s["counts"]["llm_judged"] == 2 and s["counts"]["llm_unavailable"] == 1
    # The checker supports every claim of each answer; the LLM agrees on one of the two it judged.
    assert s["llm_agreement"] == 0.5


def test_by_groups_and_sorts() -> None:
    rows = [_scores(lang="ko"), _scores(lang="en", rank=None), _scores(lang="en")]
    groups = m.by(rows, "lang")
    assert list(groups) == ["en", "ko"]
    assert groups["en"]["n"] == 2 and groups["en"]["hit@1"] == 0.5 and groups["ko"]["hit@1"] == 1.0


def test_voice_counts() -> None:
    assert m.markers_in_speech('"I\'m sorry. [7] My mistake cost us two weeks." [8]') == 1
    assert m.markers_in_speech('I said, "I\'m sorry." [1]') == 0
    assert m.third_person_refs('That day, Raj learned. He said, "So you\'ve seen it too, Raj." [1]', ["Raj"]) == 1
    assert m.third_person_refs("That day, I learned. [1]", ["Raj"]) == 0
    assert m.answer_words("It was a bug. [1]") == 4


def test_one_marker_covers_its_span() -> None:
    sents = m.split_answer("Here's how I wrote it down: The loss exploded. It was a gradient clipping bug. [1]")
    claims = [s for s in sents if s.claim]
    assert claims and all(s.markers == (1,) for s in claims)


def test_a_framing_line_inside_a_quoted_span_does_not_end_its_run() -> None:
    text = (
        "Here's how I wrote it down: I saw the loss curve again. It was grokking. "
        'I wrote in my notes: "Representation signals the change first." [1] '
        "Here is more: It was a bug. [2] The end: I left."
    )
    sents = m.split_answer(text)
    by_text = {s.text: s.markers for s in sents}
    assert by_text["I saw the loss curve again."] == (1,) and by_text["It was grokking."] == (1,)
    assert by_text["It was a bug."] == (2,)
    # A claim after the last marker, behind a framing line that follows a marker, is uncited.
    assert by_text["I left."] == ()


def test_stance_agrees() -> None:
    entries = [("d.txt", "Scaling")]
    assert m.stance_agrees(False, entries, entries, ["might not be"], "Scaling might not be the answer. [1]")
    assert not m.stance_agrees(True, entries, entries, ["might not be"], "x")
    assert not m.stance_agrees(False, [("d.txt", "Other")], entries, ["might not be"], "might not be")
    assert not m.stance_agrees(False, entries, entries, ["might not be"], "Scaling is the answer.")
