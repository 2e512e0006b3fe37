"""Entries -> chunks: token-sized, sentence-aligned pieces that never cross an entry boundary."""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterable

from knowledge.text import count_tokens, split_sentences
from knowledge.types import Chunk, Entry

DEFAULT_MAX_TOKENS = 320


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def chunk_id(persona: str, source: str, title: str, text: str, occurrence: int) -> str:
    """Deterministic: the same text in the same entry of the same file keeps its id across
    ingests even when an edit above it shifts its offsets, so it is not embedded again. The file
    name counts in NFC: a name rewritten in NFD by a sync tool keeps its chunks' ids."""
    key = "\x1f".join((persona, unicodedata.normalize("NFC", source), title, content_hash(text), str(occurrence)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def chunk_entries(
    file_text: str, entries: Iterable[Entry], persona: str, max_tokens: int = DEFAULT_MAX_TOKENS
) -> list[Chunk]:
    """Pack each entry's sentences greedily into chunks of at most ``max_tokens`` tokens.

    A chunk is ``file_text[start:end]`` exactly. A sentence longer than the budget is cut at
    white space (or, failing that, between characters) so no chunk exceeds it.
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    chunks: list[Chunk] = []
    seen: Counter[tuple[str, str, str]] = Counter()
    for entry in entries:
        for start, end in _pack(file_text, entry, max_tokens):
            text = file_text[start:end]
            key = (entry.source, entry.title, text)
            occurrence = seen[key]
            seen[key] += 1
            chunks.append(
                Chunk(
                    id=chunk_id(persona, entry.source, entry.title, text, occurrence),
                    persona=persona,
                    source=entry.source,
                    title=entry.title,
                    start=start,
                    end=end,
                    text=text,
                    lang=entry.lang,
                    content_hash=content_hash(text),
                    entry_index=entry.index,
                )
            )
    return chunks


def _pack(file_text: str, entry: Entry, max_tokens: int) -> list[tuple[int, int]]:
    pieces: list[tuple[int, int]] = []
    for s, e in split_sentences(entry.text, entry.start):
        if count_tokens(file_text[s:e]) <= max_tokens:
            pieces.append((s, e))
        else:
            pieces.extend(_split_long(file_text, s, e, max_tokens))
    spans: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    for s, e in pieces:
        if cur is None:
            cur = (s, e)
        elif count_tokens(file_text[cur[0] : e]) <= max_tokens:
            cur = (cur[0], e)
        else:
            spans.append(cur)
            cur = (s, e)
    if cur is not None:
        spans.append(cur)
    return spans


def _split_long(file_text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence into pieces within budget, preferring white space."""
    out: list[tuple[int, int]] = []
    s = start
    while s < end:
        # Largest e with tokens(file_text[s:e]) <= max_tokens, by binary search on characters.
        lo, hi = s + 1, end
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count_tokens(file_text[s:mid]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        e = lo
        if e < end:
            space = file_text.rfind(" ", s + 1, e)
            if space > s + (e - s) // 2:
                e = space
        piece = file_text[s:e]
        stripped_end = s + len(piece.rstrip())
        if stripped_end > s:
            out.append((s, stripped_end))
        s = e
        while s < end and file_text[s].isspace():
            s += 1
    return out
