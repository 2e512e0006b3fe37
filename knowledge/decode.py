"""Sources -> text: the one place a file's bytes are decoded and its text normalised for matching.

The offset contract (README "Cited answers", docs/ARCHITECTURE.md "Contracts"): a file is read as
Python's text mode reads it with the encoding reported for it and the default newline mode,

    open(path, encoding=decoded.encoding).read()          # == Decoded.text

so ``\\r\\n`` and ``\\r`` are read as ``\\n`` and a UTF-8 BOM stays in the text as U+FEFF at offset 0
(``encoding="utf-8"`` works for every UTF-8 file, BOM or not). Every chunk, entry and citation offset
is an offset into that text. Matching (headings, front matter, privacy markers, the injection scan,
BM25, embeddings) runs on the *normalised view* instead: NFC, invisible characters removed (not turned
into spaces), with a map from each normalised character back to the span of the text it came from.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

# Invisible characters that split or disguise words when kept and mean nothing when removed:
# zero-width space / non-joiner / joiner, word joiner, BOM (zero-width no-break space), soft hyphen.
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
_INVISIBLE_RE = re.compile("[" + "".join(sorted(INVISIBLE)) + "]")

# The encodings a file may be in, as the names ``open(..., encoding=...)`` takes.
UTF8, UTF16, UTF32, CP949 = "utf-8", "utf-16", "utf-32", "cp949"
# charset-normalizer names of the legacy Korean encodings; CP949 (Windows "Korean") is a superset of EUC-KR.
_KOREAN = frozenset({"cp949", "euc_kr", "johab", "iso2022_kr"})


class DecodeError(ValueError):
    """Bytes that are not text in an encoding the loader accepts; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean(text: str) -> str:
    """``text`` for matching: one newline form (``\\n``), invisible characters removed, then NFC.

    The same function serves source text and questions, so "Mega\\u200btron" typed or saved
    anywhere matches "Megatron", and a Korean word saved in NFD (macOS) matches the NFC one typed.
    """
    text = universal_newlines(text)
    if _INVISIBLE_RE.search(text):
        text = _INVISIBLE_RE.sub("", text)
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def universal_newlines(text: str) -> str:
    """``\\r\\n`` and lone ``\\r`` as ``\\n``: what Python's text mode (``newline=None``) does on read."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def detect_encoding(raw: bytes) -> str:
    """The encoding of ``raw``: a BOM decides first, then strict UTF-8, then charset-normalizer.

    Returns one of ``utf-8`` (with or without BOM), ``utf-16`` / ``utf-32`` (with BOM, as Windows
    "Unicode" saves) or ``cp949`` (legacy Korean, CP949 / EUC-KR, as judged by charset-normalizer,
    https://github.com/jawah/charset_normalizer). Raises DecodeError for anything else.
    """
    if raw.startswith(codecs.BOM_UTF8):
        return UTF8
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return UTF32
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return UTF16
    if b"\x00" in raw[:8192]:
        raise DecodeError("binary file (contains NUL bytes)")
    try:
        raw.decode("utf-8")
        return UTF8
    except UnicodeDecodeError as exc:
        bad = exc.start
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    guess = best.encoding if best is not None else None
    if guess in _KOREAN:
        try:
            raw.decode(CP949)
            return CP949
        except UnicodeDecodeError:
            pass
    looks = f"; it looks like {guess}" if guess else ""
    raise DecodeError(
        f"not UTF-8 text (bad byte at offset {bad}), nor UTF-16 with a BOM or Korean CP949/EUC-KR{looks}: "
        "re-save it as UTF-8"
    )


# Starters (combining class 0) that canonical composition can merge into the character before
# them: the second half of every two-character canonical decomposition that is a starter (Indic
# two-part vowels and length marks, Unicode 15 UnicodeData.txt), plus Hangul vowel and final jamo
# (composed algorithmically, Unicode 15 section 3.12). tests/test_notes_decode.py recomputes it.
COMPOSES_WITH_PREVIOUS = (
    frozenset(
        "\u09be\u09d7\u0b3e\u0b56\u0b57\u0bbe\u0bd7\u0cc2\u0cd5\u0cd6\u0d3e\u0d57\u0dcf\u0ddf\u0fb5\u0fb7\u102e"
        "\u1b35\U00011127\U0001133e\U00011357\U000114b0\U000114ba\U000114bd\U000115af\U00011930"
    )
    | frozenset(map(chr, range(0x1161, 0x1176)))
    | frozenset(map(chr, range(0x11A8, 0x11C3)))
)


@dataclass(frozen=True)
class Decoded:
    """A file's text as read (``text``), its ``encoding``, and the normalised view (``norm``).

    ``norm`` is ``clean(text)`` computed piecewise so that each of its characters knows the span of
    ``text`` it came from: ``source_span(s, e)`` maps a span of ``norm`` to the span of ``text``
    holding the same characters (a composed syllable maps to all of its jamo). Newlines are never
    composed or removed, so line ``k`` of ``norm`` is line ``k`` of ``text``.
    """

    text: str
    encoding: str
    norm: str
    # For each character of ``norm``: the start / end offset in ``text`` of the piece it came from.
    # Empty when ``norm == text`` (the common case: nothing to compose or remove).
    starts: tuple[int, ...] = field(default=(), repr=False)
    ends: tuple[int, ...] = field(default=(), repr=False)

    @property
    def bom(self) -> bool:
        return self.text.startswith("\ufeff")

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of ``text`` that the span ``norm[start:end]`` (non-empty) was made from."""
        if not self.starts:
            return start, end
        return self.starts[start], self.ends[end - 1]


def normalise(text: str) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """(``clean(text)``, and for each of its characters the (start, end) of its piece of ``text``).

    Pieces are cut where composition cannot reach across: before every starter that cannot merge
    into the character before it. Invisible characters belong to no piece and do not cut one. A
    ``\\r\\n`` or lone ``\\r`` (text not read in text mode) becomes one ``\\n`` spanning it.
    """
    if "\r" not in text and not _INVISIBLE_RE.search(text) and unicodedata.is_normalized("NFC", text):
        return text, (), ()
    joins = COMPOSES_WITH_PREVIOUS
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    piece: list[str] = []
    p_start = p_end = 0

    def flush() -> None:
        if piece:
            composed = unicodedata.normalize("NFC", "".join(piece))
            out.append(composed)
            starts.extend([p_start] * len(composed))
            ends.extend([p_end] * len(composed))
            piece.clear()

    for i, ch in enumerate(text):
        if ch in INVISIBLE:
            continue
        if ch == "\r" or (ch == "\n" and i and text[i - 1] == "\r"):
            flush()
            if ch == "\r" and text[i + 1 : i + 2] == "\n":
                continue  # the \n after it closes the newline
            out.append("\n")
            starts.append(i - 1 if ch == "\n" else i)
            ends.append(i + 1)
            continue
        if piece and (unicodedata.combining(ch) or ch in joins):
            piece.append(ch)
            p_end = i + 1
            continue
        flush()
        piece.append(ch)
        p_start, p_end = i, i + 1
    flush()
    return "".join(out), tuple(starts), tuple(ends)


def decode_bytes(raw: bytes) -> Decoded:
    """Decode ``raw`` (see ``detect_encoding``) as text mode would and build its normalised view."""
    encoding = detect_encoding(raw)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:  # a BOM followed by bytes that are not that encoding
        raise DecodeError(f"not {encoding} text after its byte-order mark (bad byte at offset {exc.start})") from None
    text = universal_newlines(text)
    norm, starts, ends = normalise(text)
    return Decoded(text=text, encoding=encoding, norm=norm, starts=starts, ends=ends)


def read_decoded(path: Path) -> Decoded:
    """``decode_bytes`` of a file's bytes; OSError propagates (the caller decides what a failed read means)."""
    return decode_bytes(path.read_bytes())
