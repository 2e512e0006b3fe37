"""LangChain-native edges of the pipeline: a ``BaseRetriever`` over one persona and a ``BaseChatModel`` per persona.

Imported on first use (``from agent import PersonaRetriever, ChatPersona``), never by ``import
agent``: it imports LangChain. Both follow LangChain 1.x's interfaces and pass the standard suites of
the ``langchain-tests`` package (tests/test_interop.py); tool calling, structured output and images
are not offered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from agent.personas import DEFAULT_PERSONA
from knowledge.config import Settings
from knowledge.errors import InputError
from knowledge.text import count_tokens
from knowledge.types import Answer, Citation

# Backends whose streamed pieces are their final text; the LLM backends' text is verified (and may
# be renumbered or shortened) after generation, so it is emitted once final.
LIVE_BACKENDS = frozenset({"extractive"})


def _agent(settings: Settings | None) -> Any:
    from agent.pipeline import build_agent

    return build_agent(settings)


def _document(chunk: Any, score: float) -> Document:
    return Document(
        id=chunk.id,
        page_content=chunk.text,
        metadata={
            "persona": chunk.persona,
            "source": chunk.source,
            "title": chunk.title,
            "start": chunk.start,
            "end": chunk.end,
            "lang": chunk.lang,
            "score": score,
        },
    )


class PersonaRetriever(BaseRetriever):
    """Hybrid retrieval (dense + BM25, reciprocal-rank fusion) over one persona's indexed writings.

    ``invoke(query)`` -> up to ``k`` Documents, best first; ``page_content`` is the passage and
    ``metadata`` carries ``source`` (file under the persona's folder), ``title``, ``start`` / ``end``
    (character offsets: ``open(source).read()[start:end] == page_content``), ``persona``, ``lang``
    and the fused ``score``. ``invoke(query, k=3)`` overrides ``k`` for one call.
    Raises UnknownPersonaError for an unknown persona, IndexMissingError before `persona ingest`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    persona: str = DEFAULT_PERSONA
    k: int = 5
    settings: Settings | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        from agent.personas import get_persona

        agent = _agent(self.settings)
        card = get_persona(self.persona, agent.settings)
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty: pass the text to search the persona's writings for")
        vector = agent.embedder.embed_query(query)
        found = agent.retriever.retrieve(query, k or self.k, card.id, vector=vector)
        return [_document(r.chunk, float(r.score)) for r in found]


def _split_messages(messages: Sequence[BaseMessage]) -> tuple[str, list[dict[str, str]]]:
    """(question, history): the last human message, and the human/AI turns before it.

    System messages are ignored: the persona's own instructions and guards are never replaced.
    """
    turns: list[dict[str, str]] = []
    for m in messages:
        role = {"human": "user", "ai": "assistant"}.get(m.type)
        if role is None:
            continue
        text = m.text if isinstance(m.text, str) else str(m.content)
        turns.append({"role": role, "content": text})
    while turns and turns[-1]["role"] != "user":
        turns.pop()  # a trailing AI turn (a prefill) has nothing to answer
    if not turns:
        raise InputError("no human message to answer: the last human message is the question")
    return turns[-1]["content"], turns[:-1]


def citation_dicts(citations: Sequence[Citation]) -> list[dict[str, Any]]:
    return [
        {"n": c.n, "source": c.source, "title": c.title, "quote": c.quote, "start": c.start, "end": c.end}
        for c in citations
    ]


class ChatPersona(BaseChatModel):
    """One persona as a LangChain chat model: messages in, a cited answer out.

    The last human message is the question, earlier human/AI turns the history. The answer's text
    carries ``[n]`` markers; ``response_metadata`` holds ``citations`` (``n``, ``source``, ``title``,
    ``quote``, ``start``, ``end``), ``abstained``, ``unsupported``, ``persona`` and ``backend``;
    ``usage_metadata`` counts tokens with tiktoken. ``stream`` yields the text as it is produced (the
    extractive backend) or once verified (LLM backends), then a last chunk with the metadata.
    ``stop`` sequences cut the text at the first occurrence, as OpenAI does; ``model=`` in a call
    asks another persona. Raises UnknownPersonaError, InputError (no human message, an oversize
    question, one that does not fit an LLM's window) and BackendError (the LLM server failed).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    persona: str = Field(default=DEFAULT_PERSONA, alias="model")  # ChatPersona(model="raj") as with ChatOpenAI
    backend: str | None = None  # extractive | openai | local; None: the configured default
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    # LangChain's standard parameters, accepted for compatibility: the LLM backends take their
    # timeout and retries from PERSONA_TIMEOUT and PERSONA_MAX_RETRIES.
    timeout: float | None = None
    max_retries: int | None = None
    streaming: bool = False
    settings: Settings | None = None

    @property
    def _llm_type(self) -> str:
        return "persona-agent"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"persona": self.persona, "backend": self.backend}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        persona = kwargs.get("model") or self.persona
        params = LangSmithParams(ls_provider="persona-agent", ls_model_name=persona, ls_model_type="chat")
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _events(
        self, messages: list[BaseMessage], persona: str
    ) -> tuple[Iterator[Any], str, list[dict[str, str]], bool]:
        from agent.backends import resolve_name

        question, history = _split_messages(messages)
        agent = _agent(self.settings)
        name = resolve_name(self.backend, agent.settings)
        options: dict[str, Any] = {}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        stream = agent.ask_stream(question, persona=persona, backend=name, history=history, options=options)
        return stream, question, history, name in LIVE_BACKENDS

    def _metadata(self, answer: Answer) -> dict[str, Any]:
        return {
            "model_name": answer.persona,
            "model_provider": "persona-agent",
            "persona": answer.persona,
            "backend": answer.backend,
            "citations": citation_dicts(answer.citations),
            "abstained": answer.abstained,
            "unsupported": list(answer.unsupported),
            "finish_reason": "length" if answer.incomplete else "stop",
        }

    @staticmethod
    def _usage(answer: Answer, question: str, history: list[dict[str, str]], text: str) -> UsageMetadata:
        prompt = answer.usage.prompt_tokens or count_tokens(question) + sum(count_tokens(m["content"]) for m in history)
        completion = count_tokens(text)
        return UsageMetadata(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        stops = [s for s in (stop or self.stop or []) if s]
        # ``model=`` in invoke/stream asks another persona for this call (LangChain's model override).
        events, question, history, live = self._events(messages, kwargs.get("model") or self.persona)
        sent = ""
        cut = False
        try:
            for item in events:
                if isinstance(item, Answer):
                    answer = item
                    break
                if not live or cut or not isinstance(item, str) or not item:
                    continue
                piece, cut = _until_stop(sent, item, stops)
                if piece:
                    sent += piece
                    if run_manager:
                        run_manager.on_llm_new_token(piece)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
            else:  # pragma: no cover - the pipeline always ends with an Answer
                raise RuntimeError("the answer stream ended without an Answer")
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        if not live:
            piece, _ = _until_stop("", answer.text, stops)
            if piece:
                sent = piece
                if run_manager:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        last = AIMessageChunk(
            content="",
            response_metadata=self._metadata(answer),
            usage_metadata=self._usage(answer, question, history, sent),
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=last)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = ""
        last: AIMessageChunk | None = None
        for chunk in self._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
            part = chunk.message
            if isinstance(part, AIMessageChunk) and part.chunk_position == "last":
                last = part
            else:
                text += part.text
        assert last is not None
        message = AIMessage(
            content=text, response_metadata=dict(last.response_metadata), usage_metadata=last.usage_metadata
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        # The pipeline is synchronous (embedding, retrieval, a blocking HTTP stream): run it in a thread.
        iterator = self._stream(messages, stop=stop, **kwargs)
        while True:
            chunk: ChatGenerationChunk | None = await run_in_executor(None, next, iterator, None)
            if chunk is None:
                break
            if run_manager and chunk.message.text:
                await run_manager.on_llm_new_token(chunk.message.text)
            yield chunk


def _until_stop(sent: str, piece: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``piece`` cut before the first stop sequence in ``sent + piece`` (and whether one was hit)."""
    if not stops:
        return piece, False
    whole = sent + piece
    hits = [i for i in (whole.find(s) for s in stops) if i >= 0]
    if not hits:
        return piece, False
    return whole[len(sent) : max(min(hits), len(sent))], True


__all__ = ["ChatPersona", "PersonaRetriever"]
