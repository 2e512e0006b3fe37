"""The extractive backend's composition: one span per passage, one marker each, never inside quoted
speech, at most ``max_passages`` passages, a first-person lead, first person in the answer's words."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agent.backends import AnswerRequest
from agent.backends.extractive import ExtractiveBackend, lead_for, outside_speech
from agent.compose import Scored, Sentence, Window, speech_whole
from agent.coverage import Coverage
from agent.personas import get_persona
from agent.voice import self_names, to_first_person
from knowledge.text import split_sentences
from knowledge.types import Answer, Chunk, Retrieved

TEXT = (
    "In week two, the loss exploded. It was a gradient clipping bug. At the team meeting, I said, \"I'm sorry. "
    'My mistake cost us two weeks." That day, Raj learned: failure is part of learning.'
)
OTHER = "Last year, I ran scaling law experiments. Scaling might not be the answer. Raj couldn't answer."


def _chunk(cid: str, text: str, start: int = 0, title: str = "First Steps") -> Chunk:
    return Chunk(cid, "raj", "diary.txt", title, start, start + len(text), text, "en", "h")


def _sentences(chunk: Chunk, passage: int) -> list[Sentence]:
    spans = speech_whole(chunk.text, split_sentences(chunk.text, chunk.start), chunk.start)
    return [
        Sentence(chunk.text[s - chunk.start : e - chunk.start], s, e, passage, "en", i)
        for i, (s, e) in enumerate(spans)
    ]


def _scored(sents: list[Sentence], score: float, lexical: float = 0.5) -> Scored:
    return Scored(Window(tuple(sents)), score, 0.8, 0.05, lexical)


def _answer(
    scored: list[Scored],
    chunks: list[Chunk],
    kind: str = "fact",
    max_passages: int = 2,
    question: str = "What went wrong?",
    history: list[dict[str, str]] | None = None,
    entry_ends: set[int] | None = None,
    **cov: object,
):
    backend = ExtractiveBackend(SimpleNamespace(settings=SimpleNamespace(max_passages=max_passages)))
    request = AnswerRequest(
        question=question,
        standalone=question,
        history=history or [],
        persona=get_persona("raj"),
        passages=[Retrieved(c, 1.0) for c in chunks],
        lang="en",
        context={
            "scored": scored,
            "coverage": Coverage(True, 0.9, {}, kind=kind, **cov),  # type: ignore[arg-type]
            "entry_ends": entry_ends or set(),
        },
    )
    items = list(backend.stream(request))
    assert isinstance(items[-1], Answer)
    return items[-1]


def test_speech_is_kept_whole_as_one_sentence() -> None:
    chunk = _chunk("a", TEXT)
    texts = [s.text for s in _sentences(chunk, 0)]
    assert 'At the team meeting, I said, "I\'m sorry. My mistake cost us two weeks."' in texts


def test_one_span_per_passage_one_marker_first_person_and_verbatim_citation() -> None:
    a, b = _chunk("a", TEXT), _chunk("b", OTHER, start=1000, title="Scaling")
    sa, sb = _sentences(a, 0), _sentences(b, 1)
    scored = [_scored(sa[2:4], 0.30), _scored(sa[1:3], 0.29), _scored(sb[:2], 0.29), _scored(sb[1:], 0.1)]
    answer = _answer(scored, [a, b])
    assert len(answer.citations) == 2 and answer.text.count("[") == 2
    first = answer.citations[0]
    assert first.quote == TEXT[first.start : first.end] and "Raj learned" in first.quote
    assert "I learned: failure is part of learning. [1]" in answer.text and "Raj" not in answer.text
    assert answer.text.startswith("Here's how I wrote it down:")


def test_at_most_max_passages() -> None:
    a, b = _chunk("a", TEXT), _chunk("b", OTHER, start=1000, title="Scaling")
    sa, sb = _sentences(a, 0), _sentences(b, 1)
    scored = [_scored(sa[:2], 0.30), _scored(sb[:2], 0.30)]
    assert len(_answer(scored, [a, b], max_passages=1).citations) == 1
    assert len(_answer(scored, [a, b], max_passages=2).citations) == 2


def test_a_span_ending_inside_speech_is_widened_to_the_closing_quote() -> None:
    chunk = _chunk("a", 'He said, "So you\'ve seen it too. The world is about to change." Then he left.')
    start, end = outside_speech(chunk, 0, chunk.text.index("seen it too.") + len("seen it too."))
    assert chunk.text[start:end].endswith('change."')
    start, end = outside_speech(chunk, chunk.text.index("The world"), len(chunk.text))
    assert chunk.text[start:].startswith('"So you')


def test_leads_fit_the_question_kind_and_language() -> None:
    assert lead_for("view", "en", False) == "My view, as I wrote it:"
    assert lead_for("view", "ko", False).startswith("제 생각은")
    assert lead_for("fact", "en", True) == "I wrote this down in Korean:"
    assert "RLHF" in lead_for("view", "en", False, ("RLHF",)) and "directly" in lead_for("view", "en", False, ("X",))
    assert lead_for("view", "ko", False, ("RLHF",)).startswith("RLHF에 대해 직접 쓴 적은 없지만")
    # The nearest view written in the other language says so, as the other leads do.
    assert lead_for("view", "en", True, ("RLHF",)).endswith("is in Korean:")
    assert lead_for("view", "ko", True, ("RLHF",)).endswith("영어로 적어 두었어요:")


def test_self_names_are_people_not_roles() -> None:
    assert self_names("Raj") == ("Raj",) and self_names("The Diarist") == ()


def test_a_view_question_prefers_the_window_whose_view_holds_its_terms() -> None:
    from agent.compose import rerank_views
    from agent.views import states_view

    def sent(text: str, start: int) -> Sentence:
        return Sentence(text=text, start=start, end=start + len(text), passage=0, lang="en", position=start)

    story = Window(
        (sent("No. I don't know either.", 0), sent("Admitting you don't know—that's the professor's job.", 30))
    )
    view = Window((sent("The gains plateaued.", 90), sent('I said, "Scaling might not be the answer."', 120)))
    scored = [Scored(story, 0.060, 0.878, 0.045, 0.16), Scored(view, 0.054, 0.842, 0.009, 0.16)]
    from knowledge.text import lexical_tokens

    # keyed by whatever stems lexical_tokens gives (Snowball: "scaling" -> "scale")
    idf = {lexical_tokens("scaling")[0]: 2.0, lexical_tokens("models")[0]: 1.0}
    ranked = rerank_views(scored, "Is scaling up models the road to superintelligence?", idf, states_view)
    assert ranked[0].window is view
    # Without any question term the writings use, the order is the retriever's.
    assert rerank_views(scored, "Is it?", idf, states_view)[0].window is story


def test_a_view_questions_lead_passage_opens_the_answer_and_only_a_chosen_view_joins_it() -> None:
    from agent.compose import select_spans

    lead, hub, other = _chunk("a", TEXT), _chunk("b", OTHER, 500, "Hyperparameters"), _chunk("c", OTHER, 900, "X")
    lead_s, hub_s, other_s = _sentences(lead, 0), _sentences(hub, 1), _sentences(other, 2)
    # The hub passage's window outscores the lead's (a sentence close to every question).
    scored = [
        _scored(hub_s[:2], 0.085),
        _scored(other_s[:2], 0.080),
        _scored(lead_s[-2:], 0.075),
        _scored(lead_s[:2], 0.040),
    ]
    assert [sp.passage for sp in select_spans(scored, "en")] == [1, 2]  # no lead: the best windows
    assert [sp.passage for sp in select_spans(scored, "en", lead={0})] == [0]  # neither holds a chosen view
    scored[1] = Scored(scored[1].window, 0.080, 0.8, 0.05, 0.5, view=True)
    spans = select_spans(scored, "en", lead={0})
    assert [sp.passage for sp in spans] == [0, 2] and spans[0].end == lead.end
    # Through the backend: a view question whose windows carry a chosen view is led by passage 0.
    scored[2] = Scored(scored[2].window, 0.075, 0.8, 0.05, 0.5, view=True)
    answer = _answer(sorted(scored, key=lambda x: -x.score), [lead, hub, other], kind="view")
    assert answer.citations[0].title == "First Steps"
    # A fact question keeps the best window, wherever it is.
    assert _answer(sorted(scored, key=lambda x: -x.score), [lead, hub, other]).citations[0].title == "Hyperparameters"


def test_a_fact_answer_goes_on_to_what_came_of_the_setup_and_a_view_answer_does_not() -> None:
    from agent.compose import FOLLOW, select_spans

    story = (
        "Last year, I wrote a paper on emergent capabilities. One reviewer strongly objected. "
        "I wrote a rebuttal. I analyzed more data and created new graphs. "
        "After three review rounds, the reviewer finally changed their position. When the paper was accepted, I cried."
    )
    chunk = _chunk("a", story, title="The Emergent Capabilities Paper Controversy")
    sents = _sentences(chunk, 0)
    assert FOLLOW >= 2 and len(sents) == 6
    # The setup scores best; every other window is far below it (no near tie to join).
    scored = [_scored(sents[:2], 0.07)] + [_scored(sents[i : i + 2], 0.03) for i in range(1, 5)]
    plain = select_spans(scored, "en")
    assert plain[0].end == sents[1].end  # the setup the question names, and no more
    spans = select_spans(scored, "en", follow=FOLLOW)
    assert spans[0].start == sents[0].start and spans[0].end == sents[1 + FOLLOW].end
    # Through the backend: a fact question quotes on past the setup; a view question does not.
    fact = _answer(scored, [chunk])
    assert "I analyzed more data" in fact.citations[0].quote and fact.text.count("[1]") == 1
    view = _answer([Scored(s.window, s.score, 0.8, 0.05, 0.5, view=True) for s in scored], [chunk], kind="view")
    assert "I analyzed more data" not in view.citations[0].quote
    # Past the passage's end there is nothing to add.
    assert select_spans([_scored(sents[4:], 0.07)], "en", follow=FOLLOW)[0].end == chunk.end


def test_a_term_the_writer_used_decides_between_near_tied_windows() -> None:
    """compose.LEXICAL_WEIGHT: the window holding the question's rare terms outranks a window whose
    cosine is a little higher but which shares none of them."""
    import numpy as np

    from agent.compose import LEXICAL_WEIGHT, score_windows

    def sent(text: str, start: int) -> Sentence:
        return Sentence(text=text, start=start, end=start + len(text), passage=0, lang="en", position=start)

    near = Window((sent("One reviewer strongly objected to it.", 0),))
    answer = Window((sent("After three review rounds, it went through.", 50),))

    class Cache:  # a window's cosine with the question: 0.86 for ``near``, 0.85 for ``answer``
        def embed(self, texts: list[str]) -> np.ndarray:
            q = np.array([1.0, 0.0])
            out = []
            for t in texts:
                cos = 0.86 if t.startswith("One") else 0.85
                out.append(cos * q + np.sqrt(1 - cos * cos) * np.array([0.0, 1.0]))
            return np.asarray(out)

    from knowledge.text import lexical_tokens

    idf = {t: 3.0 for t in lexical_tokens("review rounds")} | {t: 0.5 for t in lexical_tokens("paper took")}
    q = "How many review rounds did the paper take?"
    ranked = score_windows(q, [1.0, 0.0], [near, answer], Cache(), idf)  # type: ignore[arg-type]
    assert LEXICAL_WEIGHT > 0.05 and ranked[0].window is answer
    # Without the terms (an idf knowing none of them, all weigh alike) the cosine decides.
    assert score_windows("Which one?", [1.0, 0.0], [near, answer], Cache(), {})[0].window is near  # type: ignore[arg-type]


def test_a_light_verb_of_the_question_weighs_nothing_in_the_term_overlap() -> None:
    """compose.LIGHT_VERBS: "get" of "What kind of compute did you get to use?" is rare in a small
    persona's writings, so by IDF alone "I would get frustrated ..." outranked the sentence about
    the compute; the light verb is left out of the question's terms."""
    import numpy as np

    from agent.compose import LIGHT_VERBS, score_windows
    from knowledge.text import lexical_tokens

    def sent(text: str, start: int) -> Sentence:
        return Sentence(text=text, start=start, end=start + len(text), passage=0, lang="en", position=start)

    frustrated = Window((sent("I would get frustrated with every compute budget.", 0),))
    answer = Window((sent("We had that sort of compute: nodes of H100s.", 60),))

    class Cache:  # equal cosines: the term overlap decides
        def embed(self, texts: list[str]) -> np.ndarray:
            return np.asarray([[0.85, float(np.sqrt(1 - 0.85**2))] for _ in texts])

    idf = {"get": 3.0, "comput": 1.0, "sort": 1.0, "kind": 1.0, "use": 1.0}
    q = "What sort of compute did you get to use?"
    assert "get" in LIGHT_VERBS and "get" in lexical_tokens(q)
    ranked = score_windows(q, [1.0, 0.0], [frustrated, answer], Cache(), idf)  # type: ignore[arg-type]
    assert ranked[0].window is answer, [(r.window.text, r.lexical) for r in ranked]


def test_a_term_only_the_entry_title_holds_counts_in_part_for_its_windows() -> None:
    """compose.TITLE_SHARE: "What did you learn about writing?" and two windows of equal cosine,
    one in the section titled "A New Perspective on Writing" (whose sentences never say "writing"):
    that one ranks first; Scored.lexical stays the window's own."""
    import numpy as np

    from agent.compose import LEXICAL_WEIGHT, TITLE_SHARE, score_windows

    def sent(text: str, passage: int) -> Sentence:
        return Sentence(text=text, start=0, end=len(text), passage=passage, lang="en", position=0)

    other = Window((sent("I ran jobs on many nodes.", 0),))
    headed = Window((sent("My notes could help others walking the same path.", 1),))

    class Cache:  # every window at cosine 0.85 with the question
        def embed(self, texts: list[str]) -> np.ndarray:
            return np.asarray([[0.85, np.sqrt(1 - 0.85**2)] for _ in texts])

    q = "What did you learn about writing?"
    titles = ["5. How The Internship Re-wired My Research Mindset", "4. A New Perspective on Writing"]
    ranked = score_windows(q, [1.0, 0.0], [other, headed], Cache(), {}, passage_prior=0.0, titles=titles)  # type: ignore[arg-type]
    assert ranked[0].window is headed and ranked[0].lexical == ranked[1].lexical
    assert ranked[0].score - ranked[1].score > 0 and TITLE_SHARE < 1
    assert ranked[0].score - ranked[1].score <= LEXICAL_WEIGHT * TITLE_SHARE
    plain = score_windows(q, [1.0, 0.0], [other, headed], Cache(), {}, passage_prior=0.0)  # type: ignore[arg-type]
    assert plain[0].score == plain[1].score


def test_verbs_of_saying_frame_a_view_question_not_its_topic() -> None:
    """The question "Can a model be said to think?" must not match every "I said" of a diary's dialogue."""
    from agent.compose import question_terms

    idf = {"model": 1.0, "said": 1.8, "think": 2.3, "tell": 1.5}
    assert question_terms("Can a language model be said to think?", idf) == {"model": 1.0, "think": 2.3}
    assert "tell" not in question_terms("Would you tell students to think twice?", idf)


def test_evaluative_words_frame_a_view_question_not_its_topic() -> None:
    """ "Is bigger always better for language models?" must not match "neural is better than
    statistical": the question's topic is size, not the judging."""
    from agent.compose import question_terms
    from knowledge.text import lexical_tokens

    idf = {t: 1.0 for t in lexical_tokens("bigger always better language models worth blogging")}
    terms = question_terms("Is bigger always better for language models?", idf)
    assert set(terms) == set(lexical_tokens("bigger language models"))
    assert set(question_terms("Is it worth blogging?", idf, unknown=True)) == set(lexical_tokens("blogging"))
    # "like" brings in examples: the written question 'So is the model "thinking"?' holds the
    # topic of "Do you think models like GPT-3 are actually thinking?" (asked_here's share).
    liking = question_terms("Do you think models like GPT-3 are thinking?", idf, unknown=True)
    assert set(liking) == set(lexical_tokens("models GPT-3 thinking"))


def _window(passage: int, lang: str, text: str, start: int) -> Window:
    return Window((Sentence(text=text, start=start, end=start + len(text), passage=passage, lang=lang, position=0),))


def test_the_askers_language_is_preferred_between_two_tellings_not_against_a_story_told_once() -> None:
    """An English question; the Korean window scores a little higher. Without a twin in English
    (told_once) it is quoted; with one, the English telling is (SAME_LANGUAGE)."""
    from agent.compose import SAME_LANGUAGE, select_spans

    ko = Scored(_window(1, "ko", "동료와 alignment에 대해 밤새 논쟁했다.", 100), 0.081, 0.87, 0.04, 0.2)
    en = Scored(_window(0, "en", "A colleague asked, 'Then what is?'", 0), 0.081 - SAME_LANGUAGE / 2, 0.88, 0.04, 0.2)
    scored = [ko, en]
    assert select_spans(scored, "en", max_passages=1)[0].passage == 0
    assert select_spans(scored, "en", max_passages=1, told_once={1})[0].passage == 1


def test_a_story_only_the_korean_diary_tells_is_quoted_for_an_english_question(agent: Any) -> None:
    """Raj's all-night alignment argument is only in his Korean diary: an English question about it
    is answered from that entry, not from an English entry that merely has a colleague in it."""
    q = "Tell me about the all-night argument you had with a colleague about alignment."
    _, _, _, _, passages, scored, _ = agent.prepare(q, "raj", None)
    once = agent.told_once("raj", passages, "en", scored)
    assert any(passages[i].chunk.title == "Alignment 문제와 밤샘 논쟁" for i in once)
    assert all(passages[i].chunk.lang == "ko" for i in once)
    answer = agent.ask(q, persona="raj", backend="extractive")
    assert [c.title for c in answer.citations][:1] == ["Alignment 문제와 밤샘 논쟁"]
    # A story both diaries tell keeps its English telling.
    answer = agent.ask("What went wrong in your first big training run?", persona="raj", backend="extractive")
    assert answer.citations and answer.citations[0].source == "raj-diary.en.txt"


def _sents(texts: list[str], passage: int = 0) -> list[Sentence]:
    out, pos = [], 0
    for i, t in enumerate(texts):
        out.append(Sentence(text=t, start=pos, end=pos + len(t), passage=passage, lang="en", position=i))
        pos += len(t) + 1
    return out


def test_a_near_tied_window_does_not_put_a_sentence_in_front_that_holds_nothing_more() -> None:
    """The sentence "He smiled and said, ..." ends the story before; the window that adds it in front of "I was
    assigned ..." ties on the question's terms. It joins only when the span's first sentence leans
    back on it (speech, "But ...", "Their ...") or it holds a chosen view."""
    from agent.compose import select_spans, stands_alone

    s = _sents(['He smiled and said, "The world is about to change."', "I was assigned a run.", "16 GPUs."])
    best = Scored(Window(tuple(s[1:])), 0.112, 0.89, 0.04, 0.38)
    wider = Scored(Window(tuple(s)), 0.111, 0.89, 0.04, 0.38)
    assert [x.text for x in select_spans([best, wider], "en")[0].sentences] == [s[1].text, s[2].text]
    # More of the question in the wider window: it joins.
    richer = Scored(Window(tuple(s)), 0.111, 0.89, 0.04, 0.5)
    assert len(select_spans([best, richer], "en")[0].sentences) == 3
    # A chosen view in it: it joins.
    view = Scored(Window(tuple(s)), 0.111, 0.89, 0.04, 0.38, view=True)
    assert len(select_spans([best, view], "en")[0].sentences) == 3
    # The span would open on a sentence that leans back: it joins.
    t = _sents(["The team lead looked up.", "Their advice was simple.", "Verify first."])
    assert not stands_alone(t[1]) and stands_alone(t[0])
    best = Scored(Window(tuple(t[1:])), 0.112, 0.89, 0.04, 0.38)
    wider = Scored(Window(tuple(t)), 0.111, 0.89, 0.04, 0.38)
    assert len(select_spans([best, wider], "en")[0].sentences) == 3
    leaners = ['"I\'m sorry."', "But it broke.", "하지만 나는 깨달았다.", "그런 날이 있다.", "Some days it works."]
    for leaning in leaners:
        assert not stands_alone(_sents([leaning])[0])


def test_no_twin_look_ups_for_a_persona_above_the_view_pool_bound(agent: Any, monkeypatch: Any) -> None:
    """Each twin look-up is two of Chroma's filtered searches (seconds each at 1,000,000 chunks):
    above VIEW_POOL_CHUNKS, told_once makes none."""
    import agent.pipeline as pipeline

    q = "Tell me about the all-night argument you had with a colleague about alignment."
    _, _, _, _, passages, scored, _ = agent.prepare(q, "raj", None)
    assert agent.told_once("raj", passages, "en", scored)
    monkeypatch.setattr(pipeline, "VIEW_POOL_CHUNKS", 0)
    monkeypatch.setattr(agent, "_twin", lambda *a: pytest.fail("a twin look-up above the bound"))
    assert agent.told_once("raj", passages, "en", scored) == set()


@pytest.mark.parametrize("kind", ["fact", "view"])
def test_a_span_ending_on_the_line_that_introduces_speech_goes_on_through_the_speech(kind: str) -> None:
    text = (
        "I presented the paper at a conference. Someone in the audience asked a question. "
        '"So does the model think?" I answered honestly. "I don\'t know." Then we went for dinner. '
        "The food was fine."
    )
    chunk = _chunk("a", text)
    sents = _sentences(chunk, 0)
    # The best window ends on "I answered honestly." (fact answers also go on through FOLLOW
    # sentences; the last sentence is then the speech itself or what follows it).
    end = 4 if kind == "view" else 2
    rest = [_scored(sents[i : i + 2], 0.0) for i in range(len(sents) - 1)]  # every sentence is in some window
    answer = _answer([_scored(sents[:end], 0.2), *rest], [chunk], kind=kind)
    quote = answer.citations[0].quote
    assert "I answered honestly." in quote and "I don't know." in quote
    assert "The food was fine." not in quote
    # A line of narration hands over to the speech after it too ("... changed their position." ->
    # "You were right."); a line that is speech itself does not hand over to the next speech.
    answer = _answer([_scored(sents[:2], 0.2), *rest], [chunk], kind="view")
    assert answer.citations[0].quote.endswith('"So does the model think?"')
    said = _chunk("b", 'I said, "Scaling might not be the answer." "Then what is?" Nobody knew.')
    ssents = _sentences(said, 0)
    answer = _answer([_scored(ssents[:1], 0.2)], [said], kind="view")
    assert answer.citations[0].quote == 'I said, "Scaling might not be the answer."'
    from agent.compose import hands_over

    assert hands_over("After three review rounds, the reviewer finally changed their position.")
    assert hands_over("Raj answered honestly.") and not hands_over('"This is just scaling."')


def test_a_span_never_ends_on_a_colon_that_hands_over_to_nothing() -> None:
    """ "Here is my view:" closing a passage is left out of the quote; "The reasons were:" with a
    sentence after it goes on through that sentence."""
    alone = _chunk("a", "I am skeptical that scaling alone leads to AGI. Here is my view:")
    sents = _sentences(alone, 0)
    answer = _answer([_scored(sents, 0.2)], [alone], kind="view")
    assert answer.citations[0].quote == "I am skeptical that scaling alone leads to AGI."
    more = _chunk(
        "b", "The run failed twice. The reasons were: A bad learning rate and a clipping bug. Then we fixed it."
    )
    sents = _sentences(more, 0)
    rest = [_scored(sents[i : i + 2], 0.0) for i in range(len(sents) - 1)]
    answer = _answer([_scored(sents[:2], 0.2), *rest], [more], kind="view")
    assert answer.citations[0].quote.endswith("A bad learning rate and a clipping bug.")


def test_the_lead_opens_on_its_chosen_view_unless_another_of_its_windows_is_far_ahead() -> None:
    from agent.compose import VIEW_LEAD_GAP, select_spans

    lead = _chunk("a", TEXT)
    s = _sentences(lead, 0)
    view_window = Scored(Window(tuple(s[-2:])), 0.10, 0.8, 0.05, 0.0, view=True)
    # Near the view's window (the story around a view often outscores it): the view opens.
    near = _scored(s[:2], 0.10 + VIEW_LEAD_GAP / 2)
    spans = select_spans(sorted([near, view_window], key=lambda x: -x.score), "en", lead={0})
    assert spans[0].sentences[-1] == s[-1]
    # Far ahead (it holds the question's terms, the view's window none): that window opens.
    far = _scored(s[:2], 0.10 + VIEW_LEAD_GAP * 1.5)
    spans = select_spans(sorted([far, view_window], key=lambda x: -x.score), "en", lead={0})
    assert spans[0].sentences[0] == s[0] and s[-1] not in spans[0].sentences


def test_a_span_opening_on_a_sentence_that_leans_back_opens_one_sentence_earlier() -> None:
    from agent.compose import select_spans, stands_alone

    text = (
        'Six months ago, I built a tool. Raj realized: "We have no idea what is happening." '
        "From that day on, I began focusing on interpretability research. Later I wrote a paper."
    )
    s = _sentences(_chunk("a", text), 0)
    assert not stands_alone(s[2]) and stands_alone(s[0]) and stands_alone(s[3])
    spans = select_spans([_scored(s[2:3], 0.2), _scored(s[0:2], 0.01)], "en")
    assert spans[0].sentences[0] == s[1] and spans[0].sentences[-1] == s[2]
    # Korean: "그날부터 ..." (from that day) leans back too.
    assert not stands_alone(Sentence("그날부터 interpretability 연구에 집중하기 시작했다.", 0, 10, 0, "ko", 0))


def test_a_view_answer_whose_lead_states_no_view_goes_on_to_what_came_of_the_story() -> None:
    story = (
        "Last year, I wrote a paper on emergent capabilities. One reviewer strongly objected. "
        "I wrote a rebuttal. After three review rounds, the reviewer finally changed their position."
    )
    lead, other = _chunk("a", story), _chunk("b", OTHER, 900, "Scaling")
    s, o = _sentences(lead, 0), _sentences(other, 1)
    scored = [
        _scored(s[:2], 0.20),
        _scored(s[2:4], 0.01),
        Scored(Window(tuple(o[1:2])), 0.05, 0.8, 0.05, 0.5, view=True),
    ]
    said = _answer(scored, [lead, other], kind="view").citations[0].quote
    assert said.startswith("Last year") and said.endswith("changed their position.")
    # The lead holding a chosen view states it: no story after it.
    scored[0] = Scored(scored[0].window, 0.20, 0.8, 0.05, 0.5, view=True)
    said = _answer(scored, [lead, other], kind="view").citations[0].quote
    assert said.endswith("strongly objected.")


def test_a_label_line_is_never_quoted_nor_crossed_by_a_span() -> None:
    """A page's tag line and a section heading are labels: no candidate sentence, and no window or
    span runs across one (the quote would open on "careerllmaimachine learningresearch", or run on
    into the next section)."""
    from agent.compose import candidate_sentences, label_line, select_spans, windows

    text = (
        "Covering the journey from curiosity to understanding.\n\ncareerllmaimachine learningresearch\n\n"
        "My journey started on YouTube. I watched every video twice.\nThe Dream: Contributing\n"
        "I hope to contribute one day.\nWhere\n- Massively parallel training: all tokens interact at once.\n"
    )
    chunk = _chunk("a", text)
    sents = candidate_sentences([Retrieved(chunk, 1.0)])
    assert [s.text for s in sents] == [
        "Covering the journey from curiosity to understanding.",
        "My journey started on YouTube.",
        "I watched every video twice.",
        "I hope to contribute one day.",
        "- Massively parallel training: all tokens interact at once.",
    ]
    # "Where" introduces the list after it: no label, so the last two lines make one block.
    assert [s.block for s in sents] == [0, 1, 1, 2, 2]
    assert all(len({s.block for s in w.sentences}) == 1 for w in windows(sents))
    # The best window is the YouTube one; nothing before the tag line nor after the heading joins it.
    scored = [_scored(list(w.sentences), 0.9 if "YouTube" in w.text else 0.5) for w in windows(sents)]
    (span,) = select_spans(scored, "en", follow=3)
    assert text[span.start : span.end] == "My journey started on YouTube. I watched every video twice."
    # Notes written without full stops, line after line, are prose, not labels.
    notes = "- tried lr 3e-4\n- loss went down\n"
    assert not any(label_line(notes, s, e) for s, e in split_sentences(notes))
    # A heading put as a question, in title case, is one (when asked for); a one-line paragraph asked
    # in prose is not. It stays a sentence of its block, marked, and no quote holds it.
    essay = "I hope to help.\n\nWhat's Next?\n\nI will post more.\n\nBetter late than never?\n\nThanks to all.\n"
    heads = [essay[s:e] for s, e in split_sentences(essay) if label_line(essay, s, e, questions=True)]
    assert heads == ["What's Next?"]
    assert not any(label_line(essay, s, e) for s, e in split_sentences(essay))
    sents = candidate_sentences([Retrieved(_chunk("e", essay), 1.0)])
    assert [s.text for s in sents if s.heading] == ["What's Next?"] and len({s.block for s in sents}) == 1
    scored = [
        _scored(list(w.sentences), 0.9 if w.sentences[0].text.startswith("What") else 0.5) for w in windows(sents)
    ]
    for span in select_spans(scored, "en", follow=2):
        assert "What's Next?" not in essay[span.start : span.end]
    across = [_scored(sents[:3], 0.9)]
    assert [s.text for s in select_spans(across, "en", follow=2)[0].sentences] == ["I hope to help."]


def test_a_lesson_question_is_told_as_a_lesson_only_within_the_questions_event() -> None:
    """boost_lessons: of one entry's windows, the one holding "Raj learned:" overtakes the story's
    opening by LESSON_BOOST; another entry's lesson is never lifted. asks_lesson tells the question
    kind in English and Korean."""
    from agent.compose import LESSON_BOOST, asks_lesson, boost_lessons

    assert asks_lesson("What did you learn from your first big training run?")
    assert asks_lesson("What lesson did the review fight teach you?")
    assert asks_lesson("첫 대규모 학습에서 무엇을 배웠나요?")
    assert not asks_lesson("What went wrong in your first big training run?")
    assert not asks_lesson("How did you start learning about neural networks?")
    opening = Scored(
        _window(0, "en", "In 2019, I was assigned my first large-scale model training.", 0), 0.11, 0.89, 0.05, 0.3
    )
    lesson = Scored(_window(0, "en", "That day, Raj learned: failure is part of learning.", 300), 0.09, 0.88, 0.04, 0.3)
    other = Scored(_window(1, "en", 'Raj realized: "We have no idea what is happening."', 0), 0.10, 0.88, 0.04, 0.3)
    entry = ["First Steps", "Exploring Model Internals"]
    out = boost_lessons([opening, other, lesson], lambda a, b: entry[a] == entry[b])
    assert out[0].window is lesson.window and out[0].score == pytest.approx(0.09 + LESSON_BOOST)
    assert next(s for s in out if s.window is other.window).score == pytest.approx(0.10)
    assert boost_lessons([], lambda a, b: True) == []


def test_a_questions_setting_is_told_apart_from_what_it_asks() -> None:
    """setting: a clause of time (English when/after/while/before, at the start only before a comma;
    Korean -ㄹ 때, -은 후, -고 나서, -면서) sets the scene; asked_terms are the other known terms."""
    from agent.compose import asked_terms, setting

    q = "What did your advisor say when you ran to him about the Transformer paper?"
    assert setting(q) == "when you ran to him about the Transformer paper"
    assert setting("When you doubled the model size, performance dropped. Why?") == "When you doubled the model size"
    assert setting("When did you read the paper?") == ""
    assert setting("What happened in your first large-scale training run?") == ""
    ko = "첫 대규모 학습에서 Loss가 폭발했을 때"
    assert setting(ko + " 팀장님이 뭐라고 하셨어요?") == ko
    assert setting("attention pattern 시각화 도구를 만들고 나서 무엇을 깨달으셨어요?").endswith("만들고 나서")
    assert setting("GPT-3로 실험하면서 뭘 발견하셨어요?") == "GPT-3로 실험하면서"
    assert setting("그 때문에 힘들었나요?") == ""  # 때문 is a cause, not a time
    idf = {"advisor": 2.3, "transform": 1.8, "paper": 1.5, "ran": 2.3}
    assert asked_terms(q, idf) == {"advisor": 2.3}
    assert asked_terms("What did your advisor say about the paper?", idf) == {}


def test_what_is_asked_decides_between_the_windows_of_the_story_the_setting_locates() -> None:
    """boost_asked: within the best window's entry, a window holding the asked terms gains
    LEXICAL_WEIGHT times their share; another entry's window holding them gains nothing."""
    from agent.compose import LEXICAL_WEIGHT, boost_asked

    setup = Scored(_window(0, "en", "In week two, the loss exploded.", 0), 0.12, 0.89, 0.05, 0.6)
    asked = Scored(_window(0, "en", 'The team lead replied, "It\'s fine."', 300), 0.09, 0.88, 0.04, 0.3)
    other = Scored(_window(1, "en", "The team lead of another story.", 0), 0.10, 0.88, 0.04, 0.3)
    entry = ["First Steps", "Elsewhere"]
    out = boost_asked([setup, other, asked], {"lead": 2.0, "team": 1.0}, lambda a, b: entry[a] == entry[b])
    assert out[0].window is asked.window and out[0].score == pytest.approx(0.09 + LEXICAL_WEIGHT)
    assert out[0].lexical == 0.3  # the abstention rule's share is left alone
    assert next(s for s in out if s.window is other.window).score == pytest.approx(0.10)
    assert boost_asked([setup], {}, lambda a, b: True) == [setup]
    # A story told in the other language holds the asked terms as their dictionary equivalents.
    debate = Scored(_window(0, "ko", "새벽 4시, 둘 다 지쳤다.", 0), 0.12, 0.85, 0.05, 0.2)
    reading = Scored(_window(0, "ko", "다음 날부터 윤리학 논문을 읽기 시작했다.", 40), 0.08, 0.84, 0.04, 0.0)
    terms = {"read": 1.0, "start": 1.0}
    same = lambda a, b: True  # noqa: E731
    assert boost_asked([debate, reading], terms, same)[0].window is debate.window
    out = boost_asked(
        [debate, reading], terms, same, equivalents={"read": frozenset({"읽"}), "start": frozenset({"시작"})}
    )
    assert out[0].window is reading.window and out[0].score == pytest.approx(0.08 + LEXICAL_WEIGHT)


def test_an_english_questions_asked_terms_find_their_korean_equivalents(agent: Any) -> None:
    """Raj told his all-night alignment argument only in Korean: asked what he started reading the
    day after, the answer quotes the line that says so, through the dictionary's equivalents."""
    answer = agent.ask(
        "What did you begin to read once the alignment argument was over?", persona="raj", backend="extractive"
    )
    assert answer.citations and "윤리학 논문을 읽기 시작했다" in answer.citations[0].quote


def test_a_short_line_naming_the_speaker_opens_the_speech_it_introduces() -> None:
    """candidate_sentences: "팀장이 답했다." is under min_chars, yet it says who speaks next; it opens
    the speech's sentence instead of being dropped. A short line before narration is still dropped."""
    from agent.compose import candidate_sentences

    text = '처음부터 다시 시작해야 했다. 팀장이 답했다. "괜찮아. 다들 한 번은 망가뜨려." 왜지? 원인은 끝내 찾지 못했다.'
    chunk = Chunk("k", "raj", "diary.ko.txt", "악몽", 100, 100 + len(text), text, "ko", "h")
    sents = candidate_sentences([Retrieved(chunk, 1.0)])
    texts = [s.text for s in sents]
    assert '팀장이 답했다. "괜찮아. 다들 한 번은 망가뜨려."' in texts
    assert [s.speaker for s in sents] == [False, True, False]
    assert "왜지?" not in " ".join(texts)
    for s in sents:
        assert text[s.start - 100 : s.end - 100] == s.text


def test_what_raj_learned_from_his_first_training_run_is_the_lesson_not_the_story_before_it(agent: Any) -> None:
    """With the real embedder: the question's words match the run's opening, two stories into the
    entry; the answer quotes what he learned from it."""
    answer = agent.ask("What did you learn from your first big training run?", persona="raj", backend="extractive")
    assert not answer.abstained
    assert "failure is part of learning" in answer.text
    assert "advisor" not in answer.text


def test_a_view_joins_a_leads_answer_only_holding_as_much_of_the_question() -> None:
    """select_spans with a lead: a chosen view of another passage, within MARGIN, joins only when
    it holds at least the lead's share of the question's terms, in any language (across languages
    the terms are the bridge's translations)."""
    from agent.compose import select_spans

    lead, other = _chunk("a", TEXT), _chunk("b", OTHER, 500, "Hyperparameters")
    lead_s, other_s = _sentences(lead, 0), _sentences(other, 1)
    lead_w = Scored(Window(tuple(lead_s[-2:])), 0.080, 0.8, 0.05, 0.4, view=True)
    weaker = Scored(Window(tuple(other_s[:2])), 0.075, 0.8, 0.05, 0.2, view=True)
    assert [sp.passage for sp in select_spans([lead_w, weaker], "en", lead={0})] == [0]
    same = Scored(weaker.window, 0.075, 0.8, 0.05, 0.4, view=True)
    assert [sp.passage for sp in select_spans([lead_w, same], "en", lead={0})] == [0, 1]
    # Asked in Korean of English windows: the share decides as well.
    assert [sp.passage for sp in select_spans([lead_w, weaker], "ko", lead={0})] == [0]
    assert [sp.passage for sp in select_spans([lead_w, same], "ko", lead={0})] == [0, 1]


def test_a_view_lead_holding_none_of_the_questions_terms_gives_way_to_a_view_that_does() -> None:
    """The view ranking's lead entry quotes none of the question's terms while another entry's view
    window does ("임포스터 신드롬에 대해 어떻게 생각하세요?" led with a lesson about old papers): that
    entry leads. A lead holding any of the terms keeps its place."""
    from agent.pipeline import lead_with_terms

    a, b = _chunk("a", TEXT), _chunk("b", OTHER, start=1000, title="Scaling")
    sa, sb = _sentences(a, 0), _sentences(b, 1)
    passages = [Retrieved(a, 1.0), Retrieved(b, 0.9)]
    other = Scored(Window(tuple(sb[:2])), 0.29, 0.8, 0.05, 0.3, view=True)
    bare = Scored(Window(tuple(sa[3:])), 0.30, 0.8, 0.05, 0.0, view=True)
    assert [r.chunk.id for r in lead_with_terms(passages, [bare, other])] == ["b", "a"]
    holding = Scored(bare.window, 0.30, 0.8, 0.05, 0.1, view=True)
    assert [r.chunk.id for r in lead_with_terms(passages, [holding, other])] == ["a", "b"]
    # A window holding a chosen view and a term goes before one that merely holds a term; with no
    # such view window, the one holding a term leads ("카파시에 대해 어떻게 생각하세요?": the section
    # on Karpathy, whose lines state no view the inventory knows).
    plain = Scored(other.window, 0.29, 0.8, 0.05, 0.3, view=False)
    assert [r.chunk.id for r in lead_with_terms(passages, [bare, plain])] == ["b", "a"]
    c = _chunk("c", OTHER, start=2000, title="Other")
    viewed = Scored(Window(tuple(_sentences(c, 2)[:2])), 0.20, 0.8, 0.05, 0.1, view=True)
    three = [*passages, Retrieved(c, 0.8)]
    assert [r.chunk.id for r in lead_with_terms(three, [bare, plain, viewed])][0] == "c"
    # The backend leads with the first passage's entry, as given.
    assert _answer([bare, other], [a, b], kind="view").citations[0].title == "First Steps"


def test_a_span_never_ends_on_the_first_line_of_another_story() -> None:
    """A diary that runs its stories together: the quote of the conference answer stops before
    "Six months ago, ..." opens the next story, which it does not tell."""
    from agent.compose import opens_story

    text = (
        'Someone in the audience asked, "So is the model thinking?" I answered honestly. '
        '"I don\'t know. But something similar is happening." Six months ago, I built a tool to '
        "visualize attention patterns. Some heads looked random."
    )
    chunk = _chunk("a", text)
    sents = _sentences(chunk, 0)
    answer = _answer([_scored(sents[:4], 0.2)], [chunk], kind="view")
    quote = answer.citations[0].quote
    assert quote.endswith('something similar is happening."') and "Six months ago" not in quote
    assert all(opens_story(s) for s in ("One weekend, I ran experiments.", "3개월 전, 동료와 논쟁했다.", "In 2022, I"))
    assert not any(
        opens_story(s) for s in ("I ran experiments last week.", "That day, Raj learned: failure.", "그날 나는 배웠다.")
    )
    # A span of that one line alone is kept: it is what the window holds.
    alone = _answer([_scored(sents[3:4], 0.2)], [chunk], kind="view")
    assert alone.citations[0].quote.startswith("Six months ago")


def test_a_fact_answer_and_its_windows_stay_within_one_story() -> None:
    """An event's answer goes on through what came of it (compose.FOLLOW), but not into the next
    story; a window running across a story's first line is not quoted, and two windows of one
    entry either side of it are not joined into one quote."""
    from agent.compose import select_spans

    text = (
        'Someone in the audience asked, "So is the model thinking?" I answered honestly. '
        '"I don\'t know. But something similar is happening." Six months ago, I built a tool to '
        "visualize attention patterns. When I saw the results, I was confused."
    )
    chunk = _chunk("a", text)
    sents = _sentences(chunk, 0)
    answer = _answer([_scored(sents[:3], 0.2), _scored(sents[3:], 0.1)], [chunk], kind="fact")
    quote = answer.citations[0].quote
    assert quote.endswith('something similar is happening."') and "Six months ago" not in quote
    across = Scored(Window(tuple(sents[2:4])), 0.3, 0.8, 0.05, 0.3)
    within = Scored(Window(tuple(sents[3:5])), 0.2, 0.8, 0.05, 0.3)
    assert [sp.sentences for sp in select_spans([across, within], "en")] == [tuple(sents[3:5])]
    before = Scored(Window(tuple(sents[1:3])), 0.2, 0.8, 0.05, 0.3)
    after = Scored(Window(tuple(sents[3:5])), 0.19, 0.8, 0.05, 0.3)
    spans = select_spans([before, after], "en")
    assert [sp.sentences for sp in spans] == [tuple(sents[1:3])]


def test_story_around_is_the_story_that_holds_an_offset() -> None:
    from agent.compose import story_around

    text = "Admitting it is my job. One weekend, I ran tests. It worked. Last year, I wrote a paper."
    assert story_around(text, 100, 100) == "Admitting it is my job. "
    assert story_around(text, 100, 100 + text.index("It worked")) == "One weekend, I ran tests. It worked. "
    assert story_around(text, 100, 100 + text.index("Last year")) == "Last year, I wrote a paper."
    assert story_around("No story opens here. At all.", 0, 5) == "No story opens here. At all."


def test_a_view_answer_quotes_the_story_the_question_is_about_within_a_many_story_entry(agent: Any) -> None:
    """Raj's hyperparameter entry tells the professor's "I don't know either" and the weekend the
    team's "secret recipe" fell: a question about the recipe is answered with that story's view,
    and no quote runs from one story into the other."""
    answer = agent.ask(
        "Should a lab keep trusting its secret recipe of tuning tricks?", persona="raj", backend="extractive"
    )
    quote = answer.citations[0].quote
    assert "mythologizing lucky configurations" in quote
    assert "professor" not in quote.lower()


def test_and_then_goes_on_into_the_entrys_next_chunk_and_says_so_where_the_entry_ends() -> None:
    """The story goes on in the next chunk of the same entry (the pipeline adds it for such a
    follow-up); after the entry's last line, "And then?" is told that nothing more was written,
    and nothing is quoted again. Where the pipeline does not know the entry ends (a persona too
    large to look), the best window answers as before."""
    from agent.backends.extractive import ENTRY_ENDS

    one = "In week two, the loss exploded. I read the logs all night. It was a gradient clipping bug."
    two = 'At the team meeting, I said, "I\'m sorry." That day, Raj learned: failure is part of learning.'
    a = _chunk("a", one)
    b = Chunk("b", "raj", "diary.txt", "First Steps", len(one) + 1, len(one) + 1 + len(two), two, "en", "h")
    sa, sb = _sentences(a, 0), _sentences(b, 1)
    scored = [_scored(sa[:2], 0.3), _scored(sa[1:], 0.2), _scored(sb, 0.1)]
    reply = "Here's how I wrote it down: " + to_first_person(one, ("Raj",)) + " [1]"
    history = [{"role": "user", "content": "What went wrong?"}, {"role": "assistant", "content": reply}]
    nxt = _answer(scored, [a, b], question="And then?", history=history)
    assert nxt.citations[0].quote.startswith("At the team meeting") and not nxt.abstained
    last = "Here's how I wrote it down: " + to_first_person(two, ("Raj",)) + " [1]"
    history = [{"role": "user", "content": "What went wrong?"}, {"role": "assistant", "content": last}]
    end = _answer(scored, [a, b], question="And then?", history=history, entry_ends={1})
    assert end.abstained and end.text == ENTRY_ENDS["en"] and end.citations == []
    unknown = _answer(scored, [a, b], question="And then?", history=history)
    assert not unknown.abstained and unknown.citations


def test_and_then_after_the_last_line_of_raj_s_first_training_run(agent: Any) -> None:
    """With the bundled writings: the lesson ends its entry; "And then?" says so, in the asker's
    language, instead of quoting the lesson again."""
    from agent.backends.extractive import ENTRY_ENDS

    first = agent.ask("What did you learn from your first big training run?", persona="raj", backend="extractive")
    history = [
        {"role": "user", "content": "What did you learn from your first big training run?"},
        {"role": "assistant", "content": first.text},
    ]
    then = agent.ask("And then?", persona="raj", backend="extractive", history=history)
    assert then.abstained and then.text == ENTRY_ENDS["en"]


def test_and_then_goes_on_into_the_next_chunk_of_the_interns_last_section(agent: Any) -> None:
    """With the bundled writings: the intern's last section is two chunks; next_in_entry finds the
    second after the first and nothing after the second, and "And then?" after the first's last
    lines quotes the second's."""
    idx = agent.retriever.index("intern")
    (first, second) = next(v for v in idx.entries.values() if len(v) == 2)
    assert agent.retriever.next_in_entry("intern", first) == second
    assert agent.retriever.next_in_entry("intern", second) is False
    q = "Who are you grateful to?"
    answer = agent.ask(q, persona="intern", backend="extractive")
    assert answer.citations and answer.citations[0].end <= first.end
    history = [{"role": "user", "content": q}, {"role": "assistant", "content": answer.text}]
    then = agent.ask("And then?", persona="intern", backend="extractive", history=history)
    assert [c.chunk_id for c in then.citations] == [second.id]


def test_a_further_view_joins_only_holding_a_word_of_the_question_outside_its_frame() -> None:
    """ "What do you think about unlearning?" shares "think" with 'So is the model "thinking"?': the
    opinion frame is no topic (agent.question.without_frame), so that passage stays out; asked about
    thinking, it joins."""
    from agent.question import without_frame

    assert without_frame("What do you think about unlearning?").split() == ["about", "unlearning?"]
    assert "think" in without_frame("Can a language model be said to think?")
    lead = _chunk("a", 'Raj wrote: "We didn\'t erase the memory. We trained it not to speak about unlearning."')
    other = _chunk("b", 'Someone asked, "So is the model thinking?" Raj answered honestly.', 500, "Internals")
    lead_w = Scored(Window(tuple(_sentences(lead, 0))), 0.080, 0.8, 0.05, 0.5, view=True)
    other_w = Scored(Window(tuple(_sentences(other, 1))), 0.079, 0.8, 0.05, 0.5, view=True)
    alone = _answer([lead_w, other_w], [lead, other], kind="view", question="What do you think about unlearning?")
    assert [c.title for c in alone.citations] == ["First Steps"]
    both = _answer(
        [lead_w, other_w], [lead, other], kind="view", question="What do you think about unlearning and thinking?"
    )
    assert [c.title for c in both.citations] == ["First Steps", "Internals"]


def test_a_follow_up_asking_what_came_next_goes_on_from_where_the_last_answer_left_the_story() -> None:
    """ "What happened after that?" after an answer that quoted the first lines of a story quotes the
    lines after them, not the same ones again (the reply says "I" where the writing says "Raj").
    Without such a reply, or for a follow-up that asks something else, the best window answers."""
    from agent.backends.extractive import asks_next

    chunk = _chunk(
        "a",
        "In week two, the loss exploded. I read the logs all night. It was a gradient clipping bug. "
        'Raj had to start over from scratch. At the team meeting, I said, "I\'m sorry." The team lead '
        'replied, "It\'s fine." That day, Raj learned: failure is part of learning. Then we trained again.',
    )
    sents = _sentences(chunk, 0)
    scored = [_scored(sents[:2], 0.3), *(_scored(sents[i : i + 2], 0.1) for i in range(1, len(sents) - 1))]
    first = _answer(scored, [chunk]).citations[0].quote
    assert first.startswith("In week two") and first.endswith("start over from scratch.")
    reply = "Here's how I wrote it down: " + to_first_person(first, ("Raj",)) + " [1]"
    history = [{"role": "user", "content": "What went wrong?"}, {"role": "assistant", "content": reply}]
    nxt = _answer(scored, [chunk], question="What happened after that?", history=history).citations[0].quote
    assert nxt.startswith("At the team meeting") and "gradient clipping" not in nxt
    other = _answer(scored, [chunk], question="Why did it explode?", history=history).citations[0].quote
    assert other == first
    assert asks_next("그 다음엔 어떻게 하셨어요?") and asks_next("And then?") and not asks_next("Why did it explode?")


def test_a_view_questions_frame_is_not_its_topic(agent: Any) -> None:
    """ "What do you think about scaling?": the frame's "think" must not match 'So is the model
    "thinking"?' of the conference story; the answer is Raj's view on scaling."""
    answer = agent.ask("What do you think about scaling?", persona="raj", backend="extractive")
    assert answer.citations and "Scaling might not be the answer" in answer.citations[0].quote


def test_can_one_say_is_a_korean_frame_not_the_topic(agent: Any) -> None:
    """ "언어 모델이 생각을 한다고 말할 수 있을까요?": the frame's 말 ("can one say") must not match
    "모른다고 말하는 게 교수의 역할이야" of the student story; the answer is Raj's reply to "So is the
    model thinking?" (agent.question.without_saying)."""
    from agent.question import without_frame, without_saying

    assert "말" not in without_saying("언어 모델이 생각을 한다고 말할 수 있을까요?")
    assert without_frame("그게 맞다고 말할 수 없나요?").split() == ["그게", "맞다고"]
    assert "말했" in without_saying("교수님이 뭐라고 말했나요?")  # what someone said is no frame
    answer = agent.ask("언어 모델이 생각을 한다고 말할 수 있을까요?", persona="raj", backend="extractive")
    assert answer.citations and "비슷한 일" in answer.citations[0].quote


def test_a_follow_up_that_would_only_repeat_the_last_reply_quotes_what_it_did_not_tell(agent: Any) -> None:
    """ "Why?" after "From that day on, I began focusing on interpretability research." found the
    same two sentences and said them again word for word (trial); what the reply did not tell
    answers now: the lines before them, on why (the heads that looked random)."""
    q = "What made you focus on interpretability?"
    first = agent.ask(q, persona="raj", backend="extractive")
    history = [{"role": "user", "content": q}, {"role": "assistant", "content": first.text}]
    why = agent.ask("Why?", persona="raj", backend="extractive", history=history)
    assert first.citations and why.citations
    assert why.text.split(":", 1)[1] != first.text.split(":", 1)[1]
    assert why.citations[0].start < first.citations[0].start  # it goes back to what led there


def test_a_short_line_the_reply_told_verbatim_is_not_told_again() -> None:
    """told_at: the reply ended on '다음 날 지도교수에게 달려갔다. "교수님, 이거 봐야 해요!"'; the speech has
    too few tokens to count as told by its words, yet the reply holds it verbatim, so "그 다음엔?" goes
    on from the line after it, not from the speech (with the narration it leans on) again."""
    from agent.backends.extractive import told_at

    texts = [
        "다음 날 지도교수에게 달려갔다.",
        '"교수님, 이거 봐야 해요!"',
        "교수는 웃으며 말했다.",
        '"Raj, 너도 봤구나."',
    ]
    sents, pos = [], 0
    for i, t in enumerate(texts):
        sents.append(Sentence(text=t, start=pos, end=pos + len(t), passage=0, lang="ko", position=i))
        pos += len(t) + 1
    scored = [Scored(Window(tuple(sents)), 0.1, 0.8, 0.05, 0.3)]
    reply = '제가 적어 둔 그대로 말씀드리면: 다음 날 지도교수에게 달려갔다. "교수님, 이거 봐야 해요!" [1]'
    assert told_at(scored, reply, ("Raj",)) == (0, sents[1].start)
    assert told_at(scored, "제가 적어 둔 그대로 말씀드리면: 다음 날 지도교수에게 달려갔다. [1]", ("Raj",)) == (0, 0)


def test_a_who_or_where_question_prefers_the_window_that_names_a_person_or_place() -> None:
    """agent.question.answer_type and compose.ANSWER_TYPE_BOOST: of two windows of equal cosine and
    no shared term, the one naming people wins a "who" question (Korean too) and the one naming a
    place a "where" question; a question of neither kind leaves the tie to the retriever's order."""
    import numpy as np

    from agent.compose import ANSWER_TYPE_BOOST, holds_answer_type, score_windows
    from agent.question import answer_type

    def sent(text: str, passage: int) -> Sentence:
        return Sentence(text=text, start=0, end=len(text), passage=passage, lang="en", position=0)

    plan = Window((sent("The plan was to read every day and build something small.", 0),))
    names = Window((sent("Two names kept appearing: Neel Nanda and Christopher Olah.", 1),))
    place = Window((sent("I was a visiting researcher at ServiceNow Research.", 2),))

    class Cache:  # every window at cosine 0.85 with the question
        def embed(self, texts: list[str]) -> np.ndarray:
            return np.asarray([[0.85, np.sqrt(1 - 0.85**2)] for _ in texts])

    def top(q: str) -> Window:
        wins = [plan, names, place]
        ranked = score_windows(q, [1.0, 0.0], wins, Cache(), {}, passage_prior=0.0, answer_type=answer_type(q))  # type: ignore[arg-type]
        return ranked[0].window

    assert answer_type("Whose work guided you?") == "person" and answer_type("누구의 영향을 받으셨어요?") == "person"
    assert answer_type("Where did you intern?") == "place" and answer_type("어디에서 하셨어요?") == "place"
    assert answer_type("What did you read?") is None
    assert top("Whose work guided you?") is names and top("누구의 영향을 받으셨어요?") is names
    assert top("Where did you intern?") is place
    assert not holds_answer_type("The Transformer architecture overturned it.", "person")
    assert not holds_answer_type("In 2022, I ran it.", "place")
    both = score_windows("Who?", [1.0, 0.0], [plan, names], Cache(), {}, passage_prior=0.0, answer_type="person")  # type: ignore[arg-type]
    assert abs(both[0].score - both[1].score - ANSWER_TYPE_BOOST) < 1e-6


def test_a_where_question_is_not_joined_by_a_passage_that_names_no_place() -> None:
    """select_spans(answer_type=...): a second passage within MARGIN that shares a term with a
    "where" question joins only when it names a place ("인턴십은 어디에서 하셨어요?" was answered by
    the ServiceNow line and then a paragraph of thanks that only says "internship")."""
    from agent.compose import select_spans

    place = _chunk("a", "I was a visiting researcher at ServiceNow Research during my internship.")
    thanks = _chunk("b", "I am deeply grateful to my mentors during the internship.", start=500, title="Thanks")
    both = [_scored(_sentences(place, 0), 0.10), _scored(_sentences(thanks, 1), 0.095)]
    assert [sp.passage for sp in select_spans(both, "en", 2)] == [0, 1]
    assert [sp.passage for sp in select_spans(both, "en", 2, answer_type="place")] == [0]
    named = _chunk("c", "Later I moved to Montreal to work from Mila.", start=900, title="Later")
    more = [*both, _scored(_sentences(named, 2), 0.094)]
    assert [sp.passage for sp in select_spans(more, "en", 2, answer_type="place")] == [0, 2]


def _ko_sentences(text: str, passage: int, start: int) -> list[Sentence]:
    return [Sentence(text, start, start + len(text), passage, "ko", 0)]


def test_the_other_telling_joins_only_with_what_the_first_lacks_and_only_as_its_twin() -> None:
    """agent.compose.complement: the other-language window nearest the first span, when the first
    span is its nearest in turn (mutual nearest neighbours), and holding the other language's word
    for a question term no chosen span holds."""
    from agent.compose import Span, complement

    en = _chunk("e", "The student was surprised. I said I don't know.")
    en_sents = _sentences(en, 0)
    twin_text = "학생은 실망한 것 같았다."
    twin = _scored(_ko_sentences(twin_text, 1, 500), 0.02)
    stray_text = "모델은 실망스러웠다."
    stray = _scored(_ko_sentences(stray_text, 2, 900), 0.05)
    other_en = _scored(_sentences(_chunk("o", OTHER, 300), 3), 0.1)
    first = Span(0, en_sents[0].start, en_sents[-1].end, "en", tuple(en_sents))
    # Sentence vectors: a span's or window's is their mean (compose.mean_vectors).
    vectors = {s.text: [1.0, 0.0, 0.0] for s in en_sents} | {twin_text: [0.9, 0.1, 0.0], stray_text: [0.2, 0.9, 0.0]}
    vectors |= {s.text: [0.0, 0.0, 1.0] for s in other_en.window.sentences}

    def embed(texts: Any) -> Any:
        import numpy as np

        return np.asarray([vectors[t] for t in texts], dtype=np.float32)

    scored = [_scored(en_sents, 0.3), other_en, stray, twin]
    langs = ["en", "ko", "ko", "en"]
    found = complement([first], scored, {"disappoint": ("실망",)}, embed, langs)
    assert found is twin
    # Nothing the question asks is missing: no other telling.
    assert complement([first], scored, {"surpris": ("놀라",)}, embed, langs) is None
    # The nearest Korean window has another English passage nearer than the first span: a story
    # told once, whose nearest window is no telling of it.
    vectors |= {s.text: [0.9, 0.12, 0.0] for s in other_en.window.sentences}
    assert complement([first], scored, {"disappoint": ("실망",)}, embed, langs) is None


def test_an_english_question_about_a_detail_only_the_korean_diary_keeps_quotes_it_too(agent: Any) -> None:
    """Raj's English entry says the student was surprised; only the Korean one says he seemed
    disappointed. The Korean quote is cut as any other (its passage's sentences around it are
    at hand). A story told once (unlearning) gets no Korean quote."""
    answer = agent.ask(
        "Did the student look disappointed when you told him you didn't know if models reason?",
        persona="raj",
        backend="extractive",
    )
    assert answer.citations[0].source == "raj-diary.en.txt", answer.text
    assert any(c.source == "raj-diary.ko.txt" and "실망" in c.quote for c in answer.citations[1:]), answer.text
    assert "In Korean, I also wrote:" in answer.text
    # The Korean quote goes on into the thought its last line announces ("하지만 나는 생각했다.").
    assert not answer.citations[-1].quote.rstrip().endswith("생각했다."), answer.text
    answer = agent.ask("Did unlearning really erase the data, when you checked?", persona="raj", backend="extractive")
    assert [c.source for c in answer.citations] == ["raj-diary.en.txt"], answer.text


def test_a_korean_reply_quoting_english_told_what_it_quoted() -> None:
    """agent.backends.extractive.told reads a Korean reply's Latin words as English does: Kiwi
    splits "sequences" of a mixed reply into "sequ" and "enc", and the English sentence it quoted
    seemed untold, so "왜요?" after the diarist's world-model answer quoted the same list again."""
    from agent.backends.extractive import told

    text = "These would support:\n- Planning: an agent that runs forward simulation to evaluate action sequences."
    chunk = _chunk("w", text)
    sents = _sentences(chunk, 0)
    reply = f"제 생각은 영어로 적어 두었어요: {text} [1]"
    assert [s.text for s in told(sents, reply, ("Raj",))] == [sents[1].text]  # one word tells nothing alone
    assert told(sents, reply, ("Raj",), min_tokens=1) == sents  # ... but was told with the rest
    assert told(sents, "제 생각은 영어로 적어 두었어요: These would support: [1]", ("Raj",)) == []


def test_why_after_a_view_answer_goes_on_past_what_was_quoted(agent: Any) -> None:
    """The follow-up quotes what the first answer did not tell."""
    first = agent.ask("세계 모델에 대해 어떻게 생각하세요?", persona="diarist", backend="extractive")
    history = [
        {"role": "user", "content": "세계 모델에 대해 어떻게 생각하세요?"},
        {"role": "assistant", "content": first.text},
    ]
    again = agent.ask("왜요?", persona="diarist", backend="extractive", history=history)
    told_before = {(c.start, c.end) for c in first.citations}
    assert again.citations and all((c.start, c.end) not in told_before for c in again.citations), again.text
