"""Composition: pick the writer's own sentences that answer a question, with offsets for citing."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.types import Retrieved
from knowledge.text import detect_lang, lexical_tokens, split_sentences


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # offsets in the source file
    end: int
    passage: int  # index into the retrieved passages
    lang: str
    position: int  # order within the passage


@dataclass(frozen=True)
class Scored:
    window: Window
    score: float  # combined relevance used for ranking
    dense: float  # raw cosine with the question
    lift: float  # cosine above the mean of its language's candidates
    lexical: float  # share of the question's (IDF-weighted) terms it contains


class SentenceCache:
    """Embeddings of sentences already seen: the same passages come back question after question."""

    def __init__(self, embedder: object, size: int = 20000) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vecs = self._embedder.embed_documents(missing)  # type: ignore[attr-defined]
            with self._lock:
                for t, v in zip(missing, vecs, strict=True):
                    self._cache[t] = np.asarray(v, dtype=np.float32)
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        with self._lock:
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)


def candidate_sentences(passages: Sequence[Retrieved], min_chars: int = 12) -> list[Sentence]:
    out: list[Sentence] = []
    for p, r in enumerate(passages):
        c = r.chunk
        for pos, (s, e) in enumerate(split_sentences(c.text, c.start)):
            text = c.text[s - c.start : e - c.start]
            if len(text) < min_chars or text.startswith("#"):
                continue
            out.append(Sentence(text=text, start=s, end=e, passage=p, lang=detect_lang(text), position=pos))
    return out


@dataclass(frozen=True)
class Window:
    """A run of consecutive sentences of one passage: the unit an extractive answer quotes."""

    sentences: tuple[Sentence, ...]

    @property
    def passage(self) -> int:
        return self.sentences[0].passage

    @property
    def lang(self) -> str:
        return self.sentences[0].lang

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


def windows(sentences: Sequence[Sentence], size: int = 4) -> list[Window]:
    """Every run of up to ``size`` consecutive sentences within one passage."""
    by_passage: dict[int, list[Sentence]] = {}
    for s in sentences:
        by_passage.setdefault(s.passage, []).append(s)
    out: list[Window] = []
    for sents in by_passage.values():
        for i in range(len(sents)):
            out.append(Window(tuple(sents[i : i + size])))
    return out


def score_windows(
    question: str,
    question_vec: Sequence[float],
    wins: Sequence[Window],
    cache: SentenceCache,
    idf: dict[str, float] | None = None,
    passage_prior: float = 0.01,
) -> list[Scored]:
    """Rank windows by cosine lifted above their language's mean (the embedder favours the
    question's language by more than the gap between right and wrong passages), plus term
    overlap and a small prior for the retriever's own ranking of their passage."""
    if not wins:
        return []
    # A window's vector is the mean of its sentences' vectors: each sentence is embedded once and
    # cached, so a window costs nothing new and the next question over the same passages is free.
    texts = list(dict.fromkeys(s.text for w in wins for s in w.sentences))
    row = {t: i for i, t in enumerate(texts)}
    sent_vecs = cache.embed(texts)
    vecs = np.stack([sent_vecs[[row[s.text] for s in w.sentences]].mean(axis=0) for w in wins])
    q = np.asarray(question_vec, dtype=np.float32)
    sims = vecs @ q / (np.linalg.norm(vecs, axis=1) * (np.linalg.norm(q) or 1.0) + 1e-9)
    by_lang: dict[str, list[float]] = {}
    for w, sim in zip(wins, sims, strict=True):
        by_lang.setdefault(w.lang, []).append(float(sim))
    mean = {lang: sum(v) / len(v) for lang, v in by_lang.items()}
    qterms = set(lexical_tokens(question))
    # A term the writings never use is as rare as can be: it weighs like the rarest known term,
    # so "football" in "Who won the football world cup?" counts against coverage.
    rarest = max((idf or {}).values(), default=1.0)
    weights = {t: (idf or {}).get(t, rarest) for t in qterms}
    total = sum(weights.values()) or 1.0
    out = []
    for w, sim in zip(wins, sims, strict=True):
        terms = set(lexical_tokens(w.text))
        lex = sum(wt for t, wt in weights.items() if t in terms) / total
        lift = float(sim) - mean[w.lang]
        score = lift + 0.03 * lex + passage_prior / (1 + w.passage)
        out.append(Scored(window=w, score=score, dense=float(sim), lift=lift, lexical=lex))
    return sorted(out, key=lambda x: -x.score)


MARGIN = 0.04  # a second window must score within this of the best to join the answer
GAP = 3  # sentences between two chosen windows of one passage that are quoted to join them


def select(scored: Sequence[Scored], question_lang: str, max_windows: int = 2) -> list[Sentence]:
    """The sentences of the best window(s), preferring the question's language when it is a
    near tie, never two windows of one passage that overlap; in reading order."""
    if not scored:
        return []
    top = scored[0].score
    ranked = sorted(scored, key=lambda x: -(x.score + (0.01 if x.window.lang == question_lang else 0.0)))
    chosen: list[Window] = []
    for cand in ranked:
        if len(chosen) >= max_windows or cand.score < top - MARGIN:
            break
        if chosen and (cand.window.lang != chosen[0].lang or any(_overlaps(cand.window, c) for c in chosen)):
            continue
        chosen.append(cand.window)
    sentences = sorted({s for w in chosen for s in w.sentences}, key=lambda s: (s.passage, s.start))
    # Two windows of one passage a few sentences apart tell one story: quoting the sentences
    # between them keeps it whole ("...the loss exploded. ... It was a gradient clipping bug.").
    by_passage: dict[int, list[Sentence]] = {}
    for cand in scored:
        for s in cand.window.sentences:
            by_passage.setdefault(s.passage, [])
            if s not in by_passage[s.passage]:
                by_passage[s.passage].append(s)
    filled = set(sentences)
    for a, b in zip(sentences, sentences[1:], strict=False):
        if a.passage != b.passage:
            continue
        between = [s for s in by_passage[a.passage] if a.start < s.start < b.start]
        if len(between) <= GAP:
            filled.update(between)
    return sorted(filled, key=lambda s: (s.passage, s.start))


def _overlaps(a: Window, b: Window) -> bool:
    return (
        a.passage == b.passage
        and a.sentences[0].start <= b.sentences[-1].start
        and b.sentences[0].start <= a.sentences[-1].start
    )
