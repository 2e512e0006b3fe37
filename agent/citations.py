"""Citations: parse ``[n]`` markers, and build citations whose quotes are verified against their passage."""

from __future__ import annotations

import re

from knowledge.decode import clean, normalise
from knowledge.types import Chunk, Citation

MARKER = re.compile(r"\[(\d{1,3})\]")


class CitationMismatch(ValueError):
    """A quote that is not, verbatim, in the passage it claims to come from."""


def markers(text: str) -> list[int]:
    """The citation numbers used in ``text``, in order of first use."""
    return list(dict.fromkeys(int(m.group(1)) for m in MARKER.finditer(text)))


def cite(n: int, chunk: Chunk, start: int, end: int) -> Citation:
    """A citation of ``chunk.text`` between file offsets ``start`` and ``end``, checked verbatim."""
    if not (chunk.start <= start < end <= chunk.end):
        raise CitationMismatch(f"[{n}] offsets {start}-{end} fall outside passage {chunk.start}-{chunk.end}")
    quote = chunk.text[start - chunk.start : end - chunk.start]
    return Citation(n=n, source=chunk.source, title=chunk.title, quote=quote, start=start, end=end, chunk_id=chunk.id)


def locate(quote: str, chunk: Chunk) -> Citation | None:
    """Find ``quote`` verbatim (then ignoring runs of white space, then in NFC without invisible
    characters) in ``chunk``; the citation quotes the passage as saved. None if absent."""
    quote = quote.strip()
    if not quote:
        return None
    i = chunk.text.find(quote)
    if i >= 0:
        return cite(0, chunk, chunk.start + i, chunk.start + i + len(quote))
    pattern = r"\s+".join(re.escape(w) for w in quote.split())
    m = re.search(pattern, chunk.text)
    if m:
        return cite(0, chunk, chunk.start + m.start(), chunk.start + m.end())
    # A note saved in NFD or with zero-width characters: match the normalised views (a model writes
    # NFC) and cite the span of the passage as saved (knowledge/decode.py).
    norm, starts, ends = normalise(chunk.text)
    if starts:
        m = re.search(r"\s+".join(re.escape(w) for w in clean(quote).split()), norm)
        if m:
            return cite(0, chunk, chunk.start + starts[m.start()], chunk.start + ends[m.end() - 1])
    return None
