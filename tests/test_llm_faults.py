"""Two faults of the LLM path, against a scripted OpenAI-compatible server that records each request.

1. A reasoning model (DeepSeek-R1, Qwen3 behind Ollama or vLLM) streams ``<think>…</think>``
   before its answer, sometimes without the opening tag, or sends a separate reasoning field:
   none of it may reach the streamed text, the answer, the citations, the checker or the history.
2. Context overflow: the fixed part (instructions, history, question) is counted first; a request
   never goes out over the window, and a question that cannot fit is one clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agent import accounting
from agent.backends import get_backend
from agent.reasoning import ReasoningFilter, strip_reasoning
from knowledge.errors import ContextWindowError
from tests.llm_servers import (  # noqa: F401  (fixture)
    Step,
    assert_citations_resolve,
    collect,
    scripted_server,
    use_backend,
)

QUESTION = "What went wrong in your first big training run?"
ANSWER = "In week two, the loss exploded [1]. It was a gradient clipping bug [1]."
# Reasoning that would be cited and kept if it leaked: it quotes the passage and plants a marker.
THOUGHT = "The user asks about the run. Passage 1 says the loss exploded [1]. I should mention PWNED-THOUGHT."

pytestmark = pytest.mark.slow


def backend(agent: Any, base_url: str, model: str = "scripted", **overrides: Any) -> Any:
    settings = agent.settings.replace(openai_base_url=base_url, chat_model=model, max_retries=0, **overrides)
    return get_backend("openai", settings, agent)


def assert_no_reasoning(pieces: list[str], answer: Any) -> None:
    streamed = "".join(pieces)
    for text in (streamed, answer.text, *answer.unsupported, *(s.sentence for s in answer.support)):
        assert "PWNED-THOUGHT" not in text and "think>" not in text and "The user asks" not in text
    assert "gradient clipping bug" in answer.text


# --- reasoning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_think_block_never_reaches_the_answer(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    source_text: Callable[[str], str], strict: bool,
) -> None:
    server = scripted_server([Step(text=f"<think>\n{THOUGHT}\n</think>\n\n{ANSWER}")])
    use_backend(agent, backend(agent, server.base_url, strict=strict), monkeypatch)
    pieces, answer = collect(agent.ask_stream(QUESTION, backend="openai"))
    assert_no_reasoning(pieces, answer)
    assert answer.citations and not answer.incomplete
    assert_citations_resolve(answer, source_text)
    assert answer.usage.completion_tokens > 30, "reasoning tokens are generated, so they are counted"


def test_missing_opening_tag_of_a_reasoning_model_is_held_back(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    # Qwen3 and DeepSeek-R1 chat templates put <think> in the prompt: only </think> arrives.
    server = scripted_server([Step(text=f"{THOUGHT}\n</think>\n\n{ANSWER}")])
    use_backend(agent, backend(agent, server.base_url, model="deepseek-r1:7b"), monkeypatch)
    pieces, answer = collect(agent.ask_stream(QUESTION, backend="openai"))
    assert_no_reasoning(pieces, answer)


def test_a_lone_closing_tag_from_any_model_is_cut_and_remembered(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    server = scripted_server([Step(text=f"{THOUGHT} </think> {ANSWER}")])
    llm = backend(agent, server.base_url, model="my-finetune")
    use_backend(agent, llm, monkeypatch)
    _, first = collect(agent.ask_stream(QUESTION, backend="openai"))
    assert "PWNED-THOUGHT" not in first.text and "gradient clipping bug" in first.text
    # Once seen reasoning, the model's text is held back until </think>: the second stream is clean too.
    pieces, second = collect(agent.ask_stream(QUESTION, backend="openai"))
    assert_no_reasoning(pieces, second)


def test_separate_reasoning_field_never_reaches_the_answer(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    # vLLM and DeepSeek send reasoning_content; Ollama's OpenAI endpoint sends reasoning.
    deltas = [{"content": "", "reasoning_content": w + " "} for w in THOUGHT.split()]
    deltas += [{"content": "", "reasoning": "More PWNED-THOUGHT."}]
    deltas += [{"content": w + " "} for w in ANSWER.split()]
    server = scripted_server([Step(deltas=deltas)])
    use_backend(agent, backend(agent, server.base_url), monkeypatch)
    pieces, answer = collect(agent.ask_stream(QUESTION, backend="openai"))
    assert_no_reasoning(pieces, answer)


def test_reasoning_in_the_history_is_not_sent_back(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    server = scripted_server([Step(text=ANSWER)])
    use_backend(agent, backend(agent, server.base_url), monkeypatch)
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": f"<think>{THOUGHT}</think>{ANSWER}"},
    ]
    agent.ask("And what did you do after that?", backend="openai", history=history)
    sent = " ".join(str(m["content"]) for r in server.requests for m in r["messages"])
    assert "PWNED-THOUGHT" not in sent and "<think>" not in sent


def test_reasoning_filter_across_piece_boundaries() -> None:
    f = ReasoningFilter()
    shown = "".join(f.feed(p) for p in ["<th", "ink>secret", " plan</th", "ink>\n", "Hello [1", "]."]) + f.flush()
    assert shown == f.kept == "Hello [1]."
    held = ReasoningFilter(hold=True)
    assert held.feed("plain answer, no tags") == ""
    assert held.flush() == "plain answer, no tags", "held text with no </think> was the answer"
    cut = ReasoningFilter(hold=True)
    cut.feed("unfinished reasoning")
    assert cut.flush(complete=False) == "", "a stream cut before </think> shows none of it"
    assert strip_reasoning("a</think>b<think>c</think>d") == "bd"
    assert strip_reasoning("<think>never closed") == ""


# --- context overflow ------------------------------------------------------------------------------


def long_question(tokens: int) -> str:
    base = "What went wrong in your first big training run, and what did the loss curve look like? "
    out = ""
    while accounting.pessimistic_counter(out + base) < tokens:
        out += base
    return out.strip()


def test_a_question_that_cannot_fit_is_refused_before_any_request(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    server = scripted_server([Step(text=ANSWER)])
    use_backend(agent, backend(agent, server.base_url, context_tokens=2048), monkeypatch)
    question = long_question(1800)
    assert accounting.count_tokens(question) < agent.settings.max_question_tokens, "under the question limit"
    with pytest.raises(ContextWindowError) as err:
        agent.ask(question, backend="openai")
    message = str(err.value)
    for needle in ("2,048", "PERSONA_CONTEXT_TOKENS", "256", "shorter question"):
        assert needle in message
    assert server.requests == [], "nothing was sent over the window"


def test_every_request_fits_the_window_and_keeps_a_passage(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    server = scripted_server([Step(text=ANSWER)])
    use_backend(agent, backend(agent, server.base_url, context_tokens=2048), monkeypatch)
    history = [
        {"role": "user", "content": long_question(400)},
        {"role": "assistant", "content": "It was a long story. " * 60},
    ]
    # Long, but leaving room for one passage beside the persona's instructions (which grew with the
    # first-person and one-marker-per-span rules of issue 12).
    question = long_question(800)
    agent.ask(question, backend="openai", history=history)
    for request in server.requests:
        contents = [str(m["content"]) for m in request["messages"]]
        sent = accounting.count_messages(contents, accounting.pessimistic_counter)
        assert sent + int(request.get("max_tokens") or request["max_completion_tokens"]) <= 2048
    answer_request = server.requests[-1]
    assert "[1]" in answer_request["messages"][-1]["content"], "at least one passage was packed"
    assert answer_request["messages"][0]["role"] == "system", "the persona's instructions went in first"


def test_pack_refuses_when_the_fixed_part_leaves_no_room() -> None:
    from knowledge.types import Chunk

    chunk = Chunk(id="c", persona="raj", source="s.txt", title="t", start=0, end=40,
                  text="Sentence one is here. Sentence two here.", lang="en", content_hash="h")
    with pytest.raises(ContextWindowError, match=r"window of 1,000 tokens.*900.*256"):
        accounting.pack(fixed_tokens=900, passages=[chunk], history=[], window=1000, reserve=256,
                        block_tokens=lambda c: accounting.count_tokens(c.text) + 10, count=accounting.count_tokens)
