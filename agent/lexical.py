"""Retrieval, lexical side: the seam over BM25 (bm25s, via knowledge.lexical_index), with Korean-aware tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from knowledge.lexical_index import LexicalIndex
from knowledge.text import detect_lang


class Lexical(Protocol):
    """What retrieval and the pipeline ask of a lexical index (rows are the index's chunk order)."""

    @property
    def vocabulary(self) -> frozenset[str]: ...

    def idf(self, term: str) -> float: ...

    def doc_freq(self, term: str) -> int: ...

    def top(self, query: str, k: int, lang: str | None = None) -> list[tuple[int, float]]: ...


class BM25:
    """BM25 over an in-memory list of texts (row i is ``docs[i]``): bm25s, k1=1.4, b=0.75, Lucene idf.

    For callers that hold texts rather than a store; a persona's index is a
    ``knowledge.lexical_index.LexicalIndex`` saved by ingest.
    """

    def __init__(self, docs: Sequence[str]) -> None:
        ids = [f"{i:032x}" for i in range(len(docs))]
        texts = dict(zip(ids, docs, strict=True))
        self._index = LexicalIndex.build(
            "memory", ids, [detect_lang(d) for d in docs], lambda want: {i: texts[i] for i in want}
        )
        self.n = len(docs)

    @property
    def vocabulary(self) -> frozenset[str]:
        return self._index.vocabulary

    def idf(self, term: str) -> float:
        return self._index.idf(term)

    def doc_freq(self, term: str) -> int:
        return self._index.doc_freq(term)

    def top(self, query: str, k: int, lang: str | None = None) -> list[tuple[int, float]]:
        """The ``k`` best rows with a positive score, best first, as (row, score)."""
        return self._index.top(query, k, lang)
