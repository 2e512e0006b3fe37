"""Retrieval, lexical side: BM25 over one persona's chunks, with tokens that work for Korean."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from knowledge.text import lexical_tokens


class BM25:
    """Okapi BM25 with postings as numpy arrays, so a query costs O(matching postings)."""

    def __init__(self, docs: Sequence[str], k1: float = 1.4, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.n = len(docs)
        lengths = np.zeros(self.n, dtype=np.float32)
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, doc in enumerate(docs):
            counts = Counter(lexical_tokens(doc))
            lengths[i] = sum(counts.values())
            for term, tf in counts.items():
                postings[term].append((i, tf))
        self.avgdl = float(lengths.mean()) if self.n else 0.0
        # Precompute the length norm once: k1 * (1 - b + b * dl / avgdl).
        self._norm = self.k1 * (1 - self.b + self.b * lengths / (self.avgdl or 1.0))
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {
            t: (np.fromiter((d for d, _ in p), np.int64, len(p)), np.fromiter((f for _, f in p), np.float32, len(p)))
            for t, p in postings.items()
        }
        self.vocabulary = frozenset(self._postings)

    def idf(self, term: str) -> float:
        df = len(self._postings[term][0]) if term in self._postings else 0
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        scores = np.zeros(self.n, dtype=np.float32)
        for term, qtf in Counter(lexical_tokens(query)).items():
            hit = self._postings.get(term)
            if hit is None:
                continue
            ids, tf = hit
            scores[ids] += qtf * self.idf(term) * tf * (self.k1 + 1) / (tf + self._norm[ids])
        return scores

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        if self.n == 0:
            return []
        s = self.scores(query)
        k = min(k, self.n)
        idx = np.argpartition(-s, k - 1)[:k]
        ranked = sorted(((int(i), float(s[i])) for i in idx if s[i] > 0), key=lambda t: -t[1])
        return ranked
