"""Chunks + vectors -> Chroma: one collection per persona and embedder, and a committed manifest.

Only chunks named by the committed manifest are visible to search. An ingest adds and embeds
new chunks first, commits the manifest second and deletes what is no longer named last, so an
ingest that dies half-way leaves the previous index exactly as usable as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from knowledge.errors import ConfigError, StoreError
from knowledge.types import Chunk

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.config import Settings
    from knowledge.embedders import Embedder

MANIFESTS = "persona-manifests"
HEAD = "::head"  # id suffix of a persona's head record: a hash of its committed manifest, written last
# Records per Chroma write or read by ids: under the embedded store's max batch size (5,461 in
# chromadb 1.5.9, `client.get_max_batch_size()`) and SQLite's variable limit.
BATCH = 5000


@dataclass
class FileRecord:
    source: str
    sha256: str
    ids: list[str]
    chunk_tokens: int


@dataclass
class Manifest:
    """The committed state of one persona's index: per file, its hash and its chunk ids."""

    collection: str
    files: dict[str, FileRecord] = field(default_factory=dict)

    @property
    def ids(self) -> set[str]:
        return {i for rec in self.files.values() for i in rec.ids}


def collection_name(persona: str, embedder_id: str) -> str:
    raw = f"p-{persona}--{embedder_id}"
    name = re.sub(r"[^a-zA-Z0-9._-]", "-", raw)[:500]
    return name if len(name) >= 3 else name + "---"


def manifest_hash(manifest: Manifest) -> str:
    rows = sorted((r.source, r.sha256, r.chunk_tokens, r.ids) for r in manifest.files.values())
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()


def lexical_home(settings: Settings) -> Path:
    """Where the saved lexical (BM25) indexes live: beside the embedded store's ``chroma/``
    directory, or, for a Chroma server, in a local cache keyed by the server's URL."""
    if settings.chroma_url:
        key = hashlib.sha256(settings.chroma_url.rstrip("/").encode("utf-8")).hexdigest()[:16]
        return settings.home / "cache" / "lexical" / key
    return settings.index_dir / "lexical"


def make_client(settings: Settings) -> Any:
    """A Chroma client: HttpClient for PERSONA_CHROMA_URL, else a PersistentClient under PERSONA_HOME."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in {"http", "https"} or not url.hostname:
            raise ConfigError(f"PERSONA_CHROMA_URL={settings.chroma_url!r} is not a URL like http://127.0.0.1:8000")
        try:
            return chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:  # chromadb raises plain ValueError/ConnectionError here
            raise StoreError(
                f"cannot reach the Chroma server at {settings.chroma_url} ({exc}): start it with "
                "`chroma run --path DIR --host 127.0.0.1 --port 8000`, or unset PERSONA_CHROMA_URL"
            ) from None
    path = settings.index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class Store:
    """The vector store for every persona, for one embedder."""

    def __init__(self, client: Any, embedder: Embedder, lexical_dir: Path | None = None) -> None:
        self._client = client
        self.embedder = embedder
        # Saved lexical indexes, one directory per collection (None: kept in memory only).
        self.lexical_dir = lexical_dir
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder) -> Store:
        return cls(make_client(settings), embedder, lexical_home(settings))

    def lexical_path(self, persona: str) -> Path | None:
        """The directory of ``persona``'s saved lexical indexes (one subdirectory per manifest head)."""
        if self.lexical_dir is None:
            return None
        return self.lexical_dir / collection_name(persona, self.embedder.id)

    # --- collections ---------------------------------------------------------------------

    def _collection(self, persona: str) -> Any:
        name = collection_name(persona, self.embedder.id)
        with self._lock:
            col = self._collections.get(name)
            if col is None:
                col = self._call(
                    self._client.get_or_create_collection,
                    name=name,
                    embedding_function=_ChromaAdapter(self.embedder),
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"embedder": self.embedder.id, "persona": persona},
                )
                self._collections[name] = col
            return col

    def _manifests(self) -> Any:
        with self._lock:
            col = self._collections.get(MANIFESTS)
            if col is None:
                col = self._call(
                    self._client.get_or_create_collection,
                    name=MANIFESTS,
                    embedding_function=_ChromaAdapter(self.embedder),
                )
                self._collections[MANIFESTS] = col
            return col

    @staticmethod
    def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, StoreError):
            raise
        except Exception as exc:
            kind = type(exc).__name__
            if "connect" in str(exc).lower() or kind in {"ConnectError", "ConnectionError", "ConnectTimeout"}:
                raise StoreError(
                    f"the Chroma server did not answer ({kind}): check that it is running and that "
                    "PERSONA_CHROMA_URL points at it"
                ) from exc
            raise

    # --- manifest ------------------------------------------------------------------------

    def manifest(self, persona: str) -> Manifest:
        name = collection_name(persona, self.embedder.id)
        got = self._call(self._manifests().get, where={"collection": name}, include=["documents", "metadatas"])
        m = Manifest(collection=name)
        for doc, meta in zip(got["documents"] or [], got["metadatas"] or [], strict=True):
            m.files[str(meta["source"])] = FileRecord(
                source=str(meta["source"]),
                sha256=str(meta["sha256"]),
                ids=json.loads(doc),
                chunk_tokens=int(meta.get("chunk_tokens", 0)),
            )
        return m

    def commit(self, manifest: Manifest, removed_sources: Iterable[str]) -> None:
        """Make ``manifest`` the visible state: upsert one record per file (``BATCH`` per call: a
        persona of more files than Chroma takes in one call is committed in several), drop the
        records of removed files, then write the head, which readers compare."""
        col = self._manifests()
        recs = list(manifest.files.values())
        for i in range(0, len(recs), BATCH):
            part = recs[i : i + BATCH]
            self._call(
                col.upsert,
                ids=[f"{manifest.collection}::{r.source}" for r in part],
                documents=[json.dumps(r.ids) for r in part],
                metadatas=[
                    {
                        "collection": manifest.collection,
                        "source": r.source,
                        "sha256": r.sha256,
                        "chunk_tokens": r.chunk_tokens,
                    }
                    for r in part
                ],
                embeddings=[[0.0] * 1 + [1.0] for _ in part],
            )
        gone = [f"{manifest.collection}::{s}" for s in removed_sources]
        for i in range(0, len(gone), BATCH):
            self._call(col.delete, ids=gone[i : i + BATCH])
        # Written last, so a reader that sees the new head also sees every record it stands for;
        # readers compare heads (one record, read by id) instead of reading the whole manifest.
        self._call(
            col.upsert,
            ids=[manifest.collection + HEAD],
            documents=[manifest_hash(manifest)],
            metadatas=[{"head_of": manifest.collection}],  # no "collection" key: manifest() skips it
            embeddings=[[0.0, 1.0]],
        )

    def manifest_head(self, persona: str) -> str | None:
        """The hash of the committed manifest; None for an index committed before heads were written."""
        name = collection_name(persona, self.embedder.id)
        got = self._call(self._manifests().get, ids=[name + HEAD], include=["documents"])
        docs = got["documents"] or []
        return str(docs[0]) if docs else None

    def has_index(self, persona: str) -> bool:
        return bool(self.manifest(persona).files)

    # --- chunks --------------------------------------------------------------------------

    def existing_ids(self, persona: str, ids: Sequence[str] | None = None) -> set[str]:
        col = self._collection(persona)
        if ids is not None and not ids:
            return set()
        if ids is None:
            return set(self._call(col.get, include=[])["ids"])
        ids = list(ids)
        found: set[str] = set()
        for i in range(0, len(ids), BATCH):  # keeps each SQLite query under its variable limit
            found.update(self._call(col.get, ids=ids[i : i + BATCH], include=[])["ids"])
        return found

    def add(self, persona: str, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        """Write ``chunks`` with their vectors (same order), ``BATCH`` per Chroma call."""
        for i in range(0, len(chunks), BATCH):
            part = chunks[i : i + BATCH]
            self._call(
                self._collection(persona).upsert,
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[c.metadata() for c in part],
                embeddings=[list(e) for e in embeddings[i : i + BATCH]],
            )

    def update_metadata(self, persona: str, chunks: Sequence[Chunk]) -> None:
        for i in range(0, len(chunks), BATCH):
            part = chunks[i : i + BATCH]
            self._call(
                self._collection(persona).update, ids=[c.id for c in part], metadatas=[c.metadata() for c in part]
            )

    def get_chunks(self, persona: str, ids: Sequence[str]) -> list[Chunk]:
        if not ids:
            return []
        out: list[Chunk] = []
        col = self._collection(persona)
        ids = list(ids)
        for i in range(0, len(ids), BATCH):  # keeps each SQLite query under its variable limit
            got = self._call(col.get, ids=ids[i : i + BATCH], include=["documents", "metadatas"])
            out.extend(
                Chunk.from_record(id_, doc, meta)
                for id_, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            )
        return out

    def get_vectors(self, persona: str, ids: Sequence[str]) -> Any:
        """The stored vectors of ``ids`` in that order, as one float32 matrix with unit-length rows."""
        import numpy as np

        col = self._collection(persona)
        ids = list(ids)
        found: dict[str, Any] = {}
        for i in range(0, len(ids), BATCH):  # keeps each SQLite query under its variable limit
            got = self._call(col.get, ids=ids[i : i + BATCH], include=["embeddings"])
            found.update(zip(got["ids"], got["embeddings"], strict=True))
        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        mat = np.asarray([found[i] for i in ids], dtype=np.float32)
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        return mat / np.where(norms == 0, 1.0, norms)

    def delete(self, persona: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        col = self._collection(persona)
        for i in range(0, len(ids), BATCH):
            self._call(col.delete, ids=ids[i : i + BATCH])

    def count(self, persona: str) -> int:
        return int(self._call(self._collection(persona).count))

    def query(
        self, persona: str, vector: Sequence[float], k: int, visible: set[str], lang: str | None = None
    ) -> list[tuple[Chunk, float]]:
        """The ``k`` nearest visible chunks (of one language, if given) with their cosine similarity."""
        col = self._collection(persona)
        total = max(1, self.count(persona))
        n = min(total, max(k * 2, k + 8))
        while True:
            got = self._call(
                col.query,
                query_embeddings=[list(vector)],
                n_results=n,
                where={"lang": lang} if lang else None,
                include=["documents", "metadatas", "distances"],
            )
            hits = [
                (Chunk.from_record(id_, doc, meta), 1.0 - float(dist))
                for id_, doc, meta, dist in zip(
                    got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
                )
                if id_ in visible
            ]
            # Invisible chunks (an ingest under way or interrupted) can crowd the top: ask for more.
            if len(hits) >= k or n >= total or len(got["ids"][0]) < n:
                return hits[:k]
            n = min(total, n * 4)

    def warm(self, persona: str, n: int = 80) -> bool:
        """Make the next search of ``persona``'s collection as fast as the ones after it: read one
        stored vector and search the collection with it for ``n`` ids, so Chroma opens the
        collection's vector index (the HNSW files of an embedded store, the segment of a server's)
        and SQLite reads the pages a search touches. Nothing is returned or kept on our side.

        Returns False when the collection holds no vector yet. Raises StoreError as every read does.
        """
        col = self._collection(persona)
        got = self._call(col.get, limit=1, include=["embeddings"])
        rows = got.get("embeddings")
        if rows is None or len(rows) == 0:
            return False
        self._call(col.query, query_embeddings=[list(rows[0])], n_results=max(1, n), include=["distances"])
        return True

    def nearest(
        self, persona: str, vector: Sequence[float], n: int, lang: str | None = None
    ) -> list[tuple[str, float]]:
        """Ids of the ``n`` nearest chunks (visible or not) with their cosine similarity, nothing else.

        For callers that hold the chunks already: fetching documents and metadata costs Chroma
        far more than the search (12 ms against 2 ms at 100k chunks), and a ``where`` filter
        more still (500 ms at 100k), so this asks for neither unless ``lang`` is given (chunks of
        that language only: for a language the caller cannot yet search itself).
        """
        got = self._call(
            self._collection(persona).query,
            query_embeddings=[list(vector)],
            n_results=max(1, n),
            where={"lang": lang} if lang else None,
            include=["distances"],
        )
        return [(id_, 1.0 - float(dist)) for id_, dist in zip(got["ids"][0], got["distances"][0], strict=True)]


class _ChromaAdapter:
    """Our Embedder as a chromadb EmbeddingFunction, so Chroma never falls back to its default
    model (which would try to download weights)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def __call__(self, input: list[str]) -> list[Any]:
        import numpy as np

        return [np.asarray(v, dtype=np.float32) for v in self._embedder.embed_documents(list(input))]

    def embed_query(self, input: list[str]) -> list[Any]:
        import numpy as np

        return [np.asarray(self._embedder.embed_query(t), dtype=np.float32) for t in input]

    @staticmethod
    def name() -> str:
        return "persona-agent"

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self._embedder.id}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> _ChromaAdapter:
        from knowledge.config import Settings
        from knowledge.embedders import get_embedder

        return _ChromaAdapter(get_embedder(Settings.from_env()))

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def is_legacy(self) -> bool:
        return False
