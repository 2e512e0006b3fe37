"""The OpenAI-compatible API: every persona as a model, under /v1 beside the chat page (build_api(agent) -> FastAPI).

Shapes follow OpenAI's Chat Completions API (https://platform.openai.com/docs/api-reference/chat):
``GET /v1/models`` and ``POST /v1/chat/completions`` (streamed as server-sent events, ``data: [DONE]``
last), errors as ``{"error": {"message", "type", "param", "code"}}``. Citations travel three ways so
that any client keeps them: ``[n]`` markers and a plain-text "Sources" block in ``content``,
``message.annotations`` of type ``url_citation`` locating each ``[n]``, and a top-level ``citations``
list with the exact offsets.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote as url_quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.backends import resolve_name
from agent.personas import get_persona, list_personas
from agent.reasoning import strip_reasoning
from knowledge.errors import (
    BackendError,
    ConfigError,
    IndexMissingError,
    InputError,
    PersonaError,
    StoreError,
    UnknownPersonaError,
)
from knowledge.text import count_tokens
from knowledge.types import Answer, Citation

log = logging.getLogger(__name__)

API_KEY_ENV = "PERSONA_API_KEY"
# Answers computed at once by the API; more requests wait their turn (the page has its own slots).
API_CONCURRENCY = 4
MAX_BODY_BYTES = 1_000_000
OWNER = "persona-agent"
SOURCES_HEADING = "Sources:"
# Backends whose streamed pieces are already the final text; the others are verified (and may be
# renumbered or shortened) after generation, so the API sends their text once it is final.
LIVE_BACKENDS = frozenset({"extractive"})
_ROLES = ("system", "developer", "user", "assistant")
_MARKER = re.compile(r"\[(\d{1,3})\]")


class APIError(Exception):
    """An error answered in OpenAI's shape: HTTP ``status``, ``type``, ``code`` and the ``param`` at fault."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


# --- the request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat completion request."""

    persona: str
    question: str
    history: list[dict[str, str]]
    stream: bool = False
    include_usage: bool = False
    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature for LLM backends


def _text_of(content: Any, where: str) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise APIError(400, f"{where} must be a string or a list of text parts", param=where)
    parts: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise APIError(
                400,
                f"{where}[{j}].type {kind!r} is not supported: personas read text only "
                "(send {\"type\": \"text\", \"text\": ...})",
                param=f"{where}[{j}].type",
            )
        parts.append(part["text"])
    return "\n".join(parts)


def strip_answer(text: str) -> str:
    """An earlier assistant turn as history: no reasoning, no Sources block, no ``[n]`` markers."""
    text = strip_reasoning(text)
    head, sep, _ = text.partition("\n\n" + SOURCES_HEADING + "\n")
    text = head if sep else text
    return re.sub(r"\s*\[\d{1,3}\]", "", text).strip()


def _positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise APIError(400, f"{name} must be a positive whole number, not {value!r}", param=name)
    return value


def parse_request(body: Any) -> ChatRequest:
    """Validate a chat completion body; APIError(400) names the field at fault.

    The last message must come from the user: it is the question. Earlier user and assistant turns
    become the history; ``system`` / ``developer`` messages are accepted and ignored (the persona's
    own instructions and guards are never replaced).
    """
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise APIError(400, "model is required: a persona id from GET /v1/models, e.g. \"raj\"", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages must be a non-empty list of {\"role\", \"content\"} objects", param="messages")
    turns: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise APIError(400, f"messages[{i}] must be an object with role and content", param=f"messages[{i}]")
        role = m.get("role")
        if role not in _ROLES:
            raise APIError(
                400,
                f"messages[{i}].role {role!r} is not supported: use one of {', '.join(_ROLES)} "
                "(personas do not call tools)",
                param=f"messages[{i}].role",
            )
        text = _text_of(m.get("content"), f"messages[{i}].content")
        if role in ("user", "assistant"):
            turns.append({"role": role, "content": text})
    if not turns or turns[-1]["role"] != "user":
        raise APIError(400, "the last message must be a user message: it is the question", param="messages")
    question = turns[-1]["content"]
    history = [
        {"role": t["role"], "content": strip_answer(t["content"]) if t["role"] == "assistant" else t["content"]}
        for t in turns[:-1]
    ]
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise APIError(400, f"stream must be true or false, not {stream!r}", param="stream")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise APIError(400, "stream_options must be an object", param="stream_options")
    n = body.get("n")
    if n not in (None, 1):
        raise APIError(400, f"n must be 1: a persona gives one answer, not {n!r}", param="n")
    if body.get("tools"):
        raise APIError(400, "tools are not supported: personas answer from their writings only", param="tools")
    options: dict[str, Any] = {}
    max_tokens = _positive_int(body, "max_completion_tokens") or _positive_int(body, "max_tokens")
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise APIError(400, f"temperature must be a number from 0 to 2, not {temperature!r}", param="temperature")
        options["temperature"] = float(temperature)
    backend = body.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise APIError(400, "backend must be one of extractive, openai, local", param="backend")
    return ChatRequest(
        persona=model,
        question=question,
        history=history,
        stream=bool(stream),
        include_usage=bool((stream_options or {}).get("include_usage")),
        backend=backend,
        options=options,
    )


# --- the answer as OpenAI shapes ----------------------------------------------------------------


def citation_url(persona: str, c: Citation) -> str:
    """``persona://raj/raj-diary.en.txt#char=453,513``: source and offsets as an RFC 5147 fragment."""
    return f"persona://{persona}/{url_quote(c.source)}#char={c.start},{c.end}"


def sources_block(citations: Sequence[Citation]) -> str:
    """The plain-text Sources block appended to ``content`` (empty without citations)."""
    if not citations:
        return ""
    lines = ["", "", SOURCES_HEADING]
    for c in citations:
        quote = " ".join(c.quote.split())
        lines.append(f"[{c.n}] {c.title} — {c.source}, characters {c.start}-{c.end}: “{quote}”")
    return "\n".join(lines)


def url_citations(content: str, body_end: int, persona: str, citations: Sequence[Citation]) -> list[dict[str, Any]]:
    """One ``url_citation`` per ``[n]`` in the answer body (``content[:body_end]``), in order."""
    by_n = {c.n: c for c in citations}
    out: list[dict[str, Any]] = []
    for m in _MARKER.finditer(content, 0, body_end):
        c = by_n.get(int(m.group(1)))
        if c is None:
            continue
        out.append({
            "type": "url_citation",
            "url_citation": {
                "start_index": m.start(),
                "end_index": m.end(),
                "title": c.title,
                "url": citation_url(persona, c),
            },
        })
    return out


def citation_list(citations: Sequence[Citation]) -> list[dict[str, Any]]:
    return [
        {"n": c.n, "source": c.source, "title": c.title, "quote": c.quote, "start": c.start, "end": c.end}
        for c in citations
    ]


@dataclass
class Completion:
    """Everything the final chunk (or the whole response) carries, from one pipeline answer."""

    body: str  # the answer text, with [n]
    answer: Answer

    @property
    def tail(self) -> str:
        return sources_block(self.answer.citations)

    @property
    def content(self) -> str:
        return self.body + self.tail

    def extras(self) -> dict[str, Any]:
        return {
            "citations": citation_list(self.answer.citations),
            "abstained": self.answer.abstained,
            "unsupported": list(self.answer.unsupported),
            "backend": self.answer.backend,
        }

    def annotations(self) -> list[dict[str, Any]]:
        return url_citations(self.content, len(self.body), self.answer.persona, self.answer.citations)

    def usage(self, request: ChatRequest) -> dict[str, int]:
        used = self.answer.usage
        prompt = used.prompt_tokens or sum(count_tokens(m["content"]) for m in request.history) + count_tokens(
            request.question
        )
        completion = count_tokens(self.content)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @property
    def finish_reason(self) -> str:
        return "length" if self.answer.incomplete else "stop"


# --- running the pipeline off the event loop ------------------------------------------------------


AskStream = Callable[..., Iterator[Any]]


async def _pipeline_events(
    run: Callable[[], Iterator[Any]], stop: threading.Event, slots: threading.Semaphore
) -> AsyncIterator[Any]:
    """The items of ``run()`` (a sync generator), produced on one worker thread, as an async iterator.

    One thread per answer, start to end: the LLM backends keep per-answer state in thread-locals,
    which a thread pool handing each ``next()`` to a different thread would mix up. The thread
    holds one of ``slots`` while it answers (released however the answer ends, even if the client
    left before its response began). ``stop`` set (the client went away) closes the generator,
    releasing the upstream HTTP stream.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, item))
        except RuntimeError:  # the event loop is gone (server shutting down)
            stop.set()

    def work() -> None:
        try:
            with slots:
                if stop.is_set():
                    return
                gen = run()
                try:
                    for item in gen:
                        if stop.is_set():
                            break
                        put("item", item)
                finally:
                    close = getattr(gen, "close", None)
                    if close is not None:
                        close()
        except BaseException as exc:  # handed to the request, which answers with a clear error
            put("error", exc)
        else:
            put("end", None)

    threading.Thread(target=work, name="persona-api-answer", daemon=True).start()
    while True:
        kind, item = await queue.get()
        if kind == "end":
            return
        if kind == "error":
            raise item
        yield item


def map_error(exc: BaseException, persona: str) -> APIError:
    """A pipeline failure as an OpenAI-shaped error; never a stack trace."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, UnknownPersonaError):
        return APIError(404, str(exc), code="model_not_found", param="model")
    if isinstance(exc, InputError):
        return APIError(400, str(exc), code="invalid_question", param="messages")
    if isinstance(exc, ConfigError):
        return APIError(400, str(exc), code="invalid_configuration", param="backend")
    if isinstance(exc, BackendError):
        down = any(w in str(exc) for w in ("cannot reach", "did not answer", "server error", "rate-limiting"))
        return APIError(503 if down else 502, str(exc), type="upstream_error", code="upstream_unavailable")
    if isinstance(exc, (IndexMissingError, StoreError)):
        return APIError(503, str(exc), type="server_error", code="index_unavailable")
    if isinstance(exc, PersonaError):
        return APIError(400, str(exc))
    log.error("answering for persona %s failed", persona, exc_info=exc)
    return APIError(500, "the server failed while answering; it has been logged", type="server_error",
                    code="internal_error")


# --- the app -----------------------------------------------------------------------------------


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n"


def build_api(agent: Any, *, api_key: str | None = None, concurrency: int = API_CONCURRENCY) -> FastAPI:
    """The /v1 application over ``agent`` (an ``agent.pipeline.Agent``); mount it at ``/v1``.

    ``api_key``: when set, every request needs ``Authorization: Bearer <key>`` (compared in
    constant time, ``hmac.compare_digest``); otherwise 401. No CORS headers are sent.
    """
    settings = agent.settings
    api = FastAPI(title="persona-agent API", docs_url=None, redoc_url=None, openapi_url=None)
    slots = threading.BoundedSemaphore(concurrency)
    expected = ("Bearer " + api_key).encode() if api_key else None

    @api.middleware("http")
    async def authorize(request: Request, call_next: Any) -> Any:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return APIError(
                    401, "a valid API key is required: send 'Authorization: Bearer $PERSONA_API_KEY'",
                    code="invalid_api_key",
                ).response()
        return await call_next(request)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: f"no such endpoint: {request.url.path}", 405: f"{request.method} is not allowed here"}
        return APIError(exc.status_code, message.get(exc.status_code, str(exc.detail))).response()

    @api.get("/models")
    def models() -> dict[str, Any]:
        cards = list_personas(settings)
        return {
            "object": "list",
            "data": [
                {"id": c.id, "object": "model", "created": 0, "owned_by": OWNER, "name": c.name, "bio": c.bio}
                for c in cards
            ],
        }

    @api.get("/models/{model_id}")
    def model(model_id: str) -> Any:
        try:
            c = get_persona(model_id, settings)
        except UnknownPersonaError as exc:
            return APIError(404, str(exc), code="model_not_found", param="model").response()
        return {"id": c.id, "object": "model", "created": 0, "owned_by": OWNER, "name": c.name, "bio": c.bio}

    @api.post("/chat/completions")
    async def chat_completions(request: Request) -> Any:
        try:
            size = int(request.headers.get("content-length") or 0)
        except ValueError:
            size = 0
        if size > MAX_BODY_BYTES:
            return APIError(413, f"the request body is {size:,} bytes; the limit is {MAX_BODY_BYTES:,}").response()
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return APIError(413, f"the request body is over the limit of {MAX_BODY_BYTES:,} bytes").response()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return APIError(400, f"the request body is not valid JSON ({exc})").response()
        try:
            req = parse_request(body)
            card = get_persona(req.persona, settings)
            backend = resolve_name(req.backend, settings)
        except (APIError, PersonaError) as exc:
            return map_error(exc, str(body.get("model") if isinstance(body, dict) else "")).response()
        stop = threading.Event()

        def run() -> Iterator[Any]:
            return agent.ask_stream(
                req.question, persona=card.id, backend=backend, history=req.history, options=req.options
            )

        events = _pipeline_events(run, stop, slots).__aiter__()
        live = backend in LIVE_BACKENDS
        try:
            first = await events.__anext__()  # errors before the first piece become proper HTTP errors
        except StopAsyncIteration:
            return map_error(RuntimeError("the answer stream ended without an answer"), card.id).response()
        except asyncio.CancelledError:
            stop.set()
            raise
        except BaseException as exc:
            return map_error(exc, card.id).response()
        meta = {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "created": int(time.time()), "model": card.id}
        if not req.stream:
            try:
                completion = await _collect(first, events, live)
            except asyncio.CancelledError:
                stop.set()
                raise
            except BaseException as exc:
                return map_error(exc, card.id).response()
            return JSONResponse(_response(meta, completion, req))
        return StreamingResponse(
            _stream(meta, req, first, events, live, stop, card.id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return api


async def _collect(first: Any, events: AsyncIterator[Any], live: bool) -> Completion:
    """The whole answer: the same pieces a stream would send, joined."""
    pieces: list[str] = []
    item = first
    while True:
        if isinstance(item, Answer):
            return Completion(body="".join(pieces) if live else item.text, answer=item)
        if isinstance(item, str):
            pieces.append(item)
        item = await events.__anext__()


def _response(meta: dict[str, Any], completion: Completion, req: ChatRequest) -> dict[str, Any]:
    message = {
        "role": "assistant",
        "content": completion.content,
        "refusal": None,
        "annotations": completion.annotations(),
    }
    return {
        **meta,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": completion.finish_reason}],
        "usage": completion.usage(req),
        **completion.extras(),
    }


async def _stream(
    meta: dict[str, Any],
    req: ChatRequest,
    first: Any,
    events: AsyncIterator[Any],
    live: bool,
    stop: threading.Event,
    persona: str,
) -> AsyncIterator[bytes]:
    """SSE chunks: the role, text deltas, the Sources block, then the citations and annotations, [DONE]."""
    head = {**meta, "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**head, "choices": [choice], **extra})

    sent: list[str] = []
    try:
        yield chunk({"role": "assistant", "content": ""})
        item = first
        while not isinstance(item, Answer):
            if isinstance(item, str) and item and live:
                sent.append(item)
                yield chunk({"content": item})
            item = await events.__anext__()
        completion = Completion(body="".join(sent) if live else item.text, answer=item)
        if not live and completion.body:
            yield chunk({"content": completion.body})
        if completion.tail:
            yield chunk({"content": completion.tail})
        yield chunk({"annotations": completion.annotations()}, completion.finish_reason, **completion.extras())
        if req.include_usage:
            yield _sse({**head, "choices": [], "usage": completion.usage(req)})
        yield b"data: [DONE]\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        stop.set()  # the client left: stop the answer's thread at its next piece
        raise
    except BaseException as exc:
        # Mid-stream: the status line is gone already; OpenAI streams the error as an event.
        yield _sse(map_error(exc, persona).body())
        yield b"data: [DONE]\n\n"
    finally:
        stop.set()


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to serve the API on a non-loopback interface without a key (ConfigError, one line)."""
    if api_key:
        return
    if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127."):
        return
    raise ConfigError(
        f"refusing to serve on {host} without an API key: export {API_KEY_ENV}=<a long random secret> "
        "(e.g. `export PERSONA_API_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')`), "
        "or bind --host 127.0.0.1"
    )


__all__ = ["APIError", "ChatRequest", "build_api", "check_exposure", "parse_request", "sources_block"]
