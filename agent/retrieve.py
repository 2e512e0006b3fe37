"""Retrieval: dense (Chroma) and lexical (BM25) results fused by reciprocal rank, near-duplicates removed."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from agent.lexical import BM25
from agent.views import View, build_inventory
from knowledge.errors import IndexMissingError
from knowledge.text import detect_lang, lexical_tokens
from knowledge.types import Chunk, Retrieved

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.store import Store

RRF_K = 60  # the constant of Cormack et al. (2009): damps the weight of the very top ranks
NEAR_DUPLICATE = 0.8  # Jaccard of token sets above which two chunks say the same thing


class Retriever(Protocol):
    def retrieve(self, query: str, k: int, persona: str) -> list[Retrieved]: ...


@dataclass
class _PersonaIndex:
    signature: tuple[tuple[str, str, int], ...]
    chunks: list[Chunk]
    by_id: dict[str, int]
    visible: set[str]
    bm25: BM25
    langs: tuple[str, ...]
    lang_counts: dict[str, int]
    head: str | None = None  # the store's manifest head when this was built (None: no head stored)
    views: list[View] = field(default_factory=list)  # the view inventory (agent.views), rebuilt with the index
    # Per language (None: all), rows into ``chunks`` and their unit vectors, loaded on first need.
    vectors: dict[str | None, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


class HybridRetriever:
    """Dense + BM25 over one persona's committed chunks, and the persona's view inventory."""

    def __init__(self, store: Store, depth: int = 20) -> None:
        self.store = store
        self.depth = depth
        self._cache: dict[str, _PersonaIndex] = {}
        self._lock = threading.Lock()

    def index(self, persona: str) -> _PersonaIndex:
        """The persona's committed chunks and BM25 index, rebuilt only when the manifest changed."""
        # The head (one record read by id) says whether the manifest changed since it was cached:
        # reading the whole manifest costs 160 ms at 2,000 files. Read before the manifest, so a
        # commit landing in between makes the next call read again rather than miss it.
        head = self.store.manifest_head(persona)
        with self._lock:
            cached = self._cache.get(persona)
        if head is not None and cached is not None and cached.head == head:
            return cached
        manifest = self.store.manifest(persona)
        if not manifest.files:
            raise IndexMissingError(
                f"persona {persona!r} has no index yet: run `persona ingest` "
                f"(or `persona ingest PATH --persona {persona}` for your own notes)"
            )
        signature = tuple(sorted((r.source, r.sha256, r.chunk_tokens) for r in manifest.files.values()))
        with self._lock:
            cached = self._cache.get(persona)
            if cached is not None and cached.signature == signature:
                cached.head = head
                return cached
            ids = [i for r in sorted(manifest.files.values(), key=lambda r: r.source) for i in r.ids]
            chunks = self.store.get_chunks(persona, ids)
            order = {cid: n for n, cid in enumerate(ids)}
            chunks.sort(key=lambda c: order.get(c.id, 0))
            built = _PersonaIndex(
                signature=signature,
                chunks=chunks,
                by_id={c.id: n for n, c in enumerate(chunks)},
                visible=set(ids),
                bm25=BM25([f"{c.title}\n{c.text}" for c in chunks]),
                langs=tuple(sorted({c.lang for c in chunks})),
                lang_counts=dict(Counter(c.lang for c in chunks)),
                head=head,
                views=build_inventory(chunks),
            )
            self._cache[persona] = built
            return built

    def retrieve(self, query: str, k: int, persona: str, vector: Sequence[float] | None = None) -> list[Retrieved]:
        idx = self.index(persona)
        if vector is None:
            vector = self.store.embedder.embed_query(query)
        lexical = idx.bm25.top(query, self.depth * 2)
        # The embedder prefers passages in the query's own language by a margin larger than
        # the gap between right and wrong passages (and BM25 cannot cross languages at all), so
        # each language is ranked on its own, dense and lexical fused by reciprocal rank, and
        # the per-language lists are interleaved: a Korean question still finds the English
        # entry that answers it.
        per_lang: list[list[Retrieved]] = []
        # The question's own language leads the interleaving.
        qlang = detect_lang(query)
        langs = sorted(idx.langs, key=lambda lang: lang != qlang)
        dense = self._dense(persona, idx, vector)
        for lang in langs if len(langs) > 1 else (None,):
            lex = [(i, sc) for i, sc in lexical if lang is None or idx.chunks[i].lang == lang]
            per_lang.append(_fuse(dense[lang], lex, idx.chunks))
        merged: list[Retrieved] = []
        for rank in range(max((len(lst) for lst in per_lang), default=0)):
            merged.extend(lst[rank] for lst in per_lang if rank < len(lst))

        out: list[Retrieved] = []
        kept_tokens: list[set[str]] = []
        for r in merged:
            tokens = set(lexical_tokens(r.chunk.text))
            if any(_jaccard(tokens, t) >= NEAR_DUPLICATE for t in kept_tokens):
                continue
            kept_tokens.append(tokens)
            out.append(r)
            if len(out) >= k:
                break
        return out

    def _dense(
        self, persona: str, idx: _PersonaIndex, vector: Sequence[float]
    ) -> dict[str | None, list[tuple[Chunk, float]]]:
        """The ``depth`` nearest visible chunks of each language (key None: one language only).

        The chunks are in memory already, so Chroma is asked for ids and distances only, with no
        ``where`` filter, and the languages are split here: Chroma's filter on the language cost
        90 ms at 1k chunks and 550 ms at 100k, this 2-8 ms. A language short of ``depth`` in that
        one search (a rare one, far from the question's language) is searched exactly over its
        own vectors instead.
        """
        split = len(idx.langs) > 1
        need: dict[str | None, int] = {None: min(self.depth, len(idx.chunks))}
        if split:
            need = {lang: min(self.depth, count) for lang, count in idx.lang_counts.items()}
        out: dict[str | None, list[tuple[Chunk, float]]] = {key: [] for key in need}
        for cid, sim in self.store.nearest(persona, vector, self.depth * 4):
            pos = idx.by_id.get(cid)  # a chunk the committed manifest does not name is not in by_id
            if pos is None:
                continue
            hits = out[idx.chunks[pos].lang if split else None]
            if len(hits) < self.depth:
                hits.append((idx.chunks[pos], sim))
        for key, hits in out.items():
            if len(hits) < need[key]:
                out[key] = self._exact(persona, idx, vector, key)
        return out

    def _exact(
        self, persona: str, idx: _PersonaIndex, vector: Sequence[float], lang: str | None
    ) -> list[tuple[Chunk, float]]:
        """The exact ``depth`` nearest chunks of one language (None: all), by cosine over its vectors."""
        with self._lock:
            loaded = idx.vectors.get(lang)
        if loaded is None:
            rows = np.asarray([i for i, c in enumerate(idx.chunks) if lang is None or c.lang == lang], dtype=np.int64)
            loaded = (rows, self.store.get_vectors(persona, [idx.chunks[i].id for i in rows]))
            with self._lock:
                idx.vectors[lang] = loaded
        rows, mat = loaded
        if not len(rows):
            return []
        q = np.asarray(vector, dtype=np.float32)
        sims = mat @ (q / (np.linalg.norm(q) or 1.0))
        top = np.argpartition(-sims, min(self.depth, len(sims)) - 1)[: self.depth]
        return [(idx.chunks[int(rows[i])], float(sims[i])) for i in top[np.argsort(-sims[top])]]


def _fuse(dense: list[tuple[Chunk, float]], lexical: list[tuple[int, float]], chunks: list[Chunk]) -> list[Retrieved]:
    fused: dict[str, float] = {}
    dense_score: dict[str, float] = {}
    lex_score: dict[str, float] = {}
    chunk_of: dict[str, Chunk] = {}
    for rank, (chunk, sim) in enumerate(dense):
        fused[chunk.id] = fused.get(chunk.id, 0.0) + 1.0 / (RRF_K + rank + 1)
        dense_score[chunk.id] = sim
        chunk_of[chunk.id] = chunk
    for rank, (i, score) in enumerate(lexical):
        chunk = chunks[i]
        fused[chunk.id] = fused.get(chunk.id, 0.0) + 1.0 / (RRF_K + rank + 1)
        lex_score[chunk.id] = score
        chunk_of.setdefault(chunk.id, chunk)
    ranked = sorted(fused, key=lambda cid: -fused[cid])
    return [
        Retrieved(chunk=chunk_of[c], score=fused[c], dense=dense_score.get(c), lexical=lex_score.get(c)) for c in ranked
    ]


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
