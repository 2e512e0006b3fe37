"""Sources -> entries: read a writing and split it into diary entries or essay sections, with offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from knowledge import privacy
from knowledge.decode import Decoded, DecodeError, clean, decode_bytes, normalise
from knowledge.text import detect_lang
from knowledge.types import Entry

SUPPORTED_SUFFIXES = (".txt", ".md")
MAX_FILE_BYTES = 5_000_000  # a diary is text: anything larger is more likely a dump than writing

# `## [Title_With_Underscores]`: the diary heading (also without the space CommonMark needs). Markdown
# headings are read too, as CommonMark reads them (markdown-it-py: `#` … `######`, setext, inside
# block quotes, never inside code), so a user's own notes split at their headings.
# A heading may end in `{private}` (knowledge/privacy.py): still a heading, the marker not in the title.
_DIARY_HEADING = re.compile(r"^##[ \t]*\[(?P<title>[^\]\n]*)\][ \t]*" + privacy.HEADING_SUFFIX + "$", re.MULTILINE)
_DIARY_TITLE = re.compile(r"\A\[(?P<title>[^\]\n]*)\]\s*(?P<private>(?i:\{private\}))?\s*\Z")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<body>.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_LINE_END = re.compile(r"\r\n|\r|\n")  # the line ends markdown-it knows
_TITLE_END = re.compile(r"[.!?:,;)\]]$")
MAX_TITLE = 120  # characters: a longer line is prose even when capitalised like a title


class LoadError(Exception):
    """A file that cannot be read as writing; ``reason`` says why in a few words.

    ``retract`` is True when the file is there but holds nothing to index (0 bytes, or only white
    space and invisible characters): whatever was indexed from it before is removed. Otherwise (a
    failed read, a bad encoding, too large) what was indexed before is kept.
    """

    def __init__(self, path: Path, reason: str, *, retract: bool = False) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason
        self.retract = retract


@dataclass(frozen=True)
class Document:
    """A whole source file: its text as read (see knowledge/decode.py), its encoding and its entries.

    ``text == open(path, encoding=encoding).read()``; every entry offset is into ``text``.
    """

    source: str
    text: str
    entries: list[Entry]  # the public ones: entries marked private are left out
    private: bool = False
    private_entries: tuple[str, ...] = ()  # titles of the entries left out as private
    encoding: str = "utf-8"


def read_decoded(path: Path) -> Decoded:
    """The file decoded (knowledge/decode.py), or LoadError for anything that is not text of a sane size."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(path, f"cannot read ({exc.strerror})") from None
    if size == 0:
        raise LoadError(path, "empty file", retract=True)
    if size > MAX_FILE_BYTES:
        raise LoadError(path, f"too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot read ({exc.strerror})") from None
    try:
        decoded = decode_bytes(raw)
    except DecodeError as exc:
        raise LoadError(path, exc.reason) from None
    if not decoded.norm.strip():
        raise LoadError(path, "only white space", retract=True)
    return decoded


def read_text(path: Path) -> str:
    """The file's text as ``open(path, encoding=<its encoding>).read()`` gives it, or LoadError."""
    return read_decoded(path).text


def load_document(path: Path, source: str | None = None) -> Document:
    """Read and split one file; ``source`` names it in citations (default: the file name).

    Raises LoadError (see ``read_decoded``). Indented code blocks count only in ``.md`` files: in
    a plain ``.txt`` an indented paragraph is still prose.
    """
    decoded = read_decoded(path)
    source = source or path.name
    rules = privacy.load_rules(privacy.root_of(path, source))
    private, body_start = _front_matter(decoded.norm)
    found = _split_view(decoded.norm, source, body_start, indented_code=path.suffix.lower() == ".md")
    public, hidden = privacy.split_private(decoded.norm, source, found.entries, rules)
    return Document(
        source=source,
        text=decoded.text,
        entries=_to_source(decoded, public, found.code),
        private=private or rules.file_private(source),
        private_entries=tuple(hidden),
        encoding=decoded.encoding,
    )


def _front_matter(text: str) -> tuple[bool, int]:
    """``private: true`` in YAML-style front matter marks the whole file private (``text`` normalised)."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return False, 0
    private = any(
        line.split(":", 1)[0].strip().lower() == "private"
        and line.split(":", 1)[1].strip().strip("'\"").lower() in {"true", "yes", "on", "1"}
        for line in m.group("body").splitlines()
        if ":" in line
    )
    return private, m.end()


def split_entries(text: str, source: str, body_start: int = 0, *, indented_code: bool = True) -> list[Entry]:
    """Entries of ``text``, with offsets into ``text`` (which may hold CRLF, NFD or invisible characters).

    Structure is read from the normalised view (knowledge/decode.py): at diary headings
    ``## [Title]`` if there are any, else markdown headings (ATX, setext, inside block quotes), else
    essay sections. Code blocks are never headings and never part of an entry. ``body_start`` is
    an offset into the normalised view (where front matter ends).
    """
    norm, starts, ends = normalise(text)
    decoded = Decoded(text=text, encoding="utf-8", norm=norm, starts=starts, ends=ends)
    found = _split_view(norm, source, body_start, indented_code=indented_code)
    return _to_source(decoded, found.entries, found.code)


@dataclass(frozen=True)
class _Found:
    entries: list[Entry]  # offsets into the normalised view
    code: list[tuple[int, int]]  # code blocks: spans of the normalised view


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in _LINE_END.finditer(text)] + [len(text)]


def _split_view(norm: str, source: str, body_start: int, *, indented_code: bool) -> _Found:
    """Entries of the normalised view ``norm``: parse it with markdown-it (CommonMark), front matter blanked."""
    from markdown_it import MarkdownIt

    lines = _line_starts(norm)
    # Blank the front matter (keeping its line ends) so the parser does not read it as a heading.
    blanked = _blank(norm, [(0, body_start)]) if body_start else norm
    md = MarkdownIt("commonmark")
    if not indented_code:
        md.disable("code")
    headings: list[tuple[int, int, str, bool]] = []  # (start, body start, title, diary)
    code: list[tuple[int, int]] = []
    tokens = md.parse(blanked)
    for i, tok in enumerate(tokens):
        if tok.map is None:
            continue
        first, last = tok.map
        if tok.type in {"fence", "code_block"}:
            code.append((lines[min(first, len(lines) - 1)], _line_end(norm, lines, last)))
        elif tok.type == "heading_open":
            title = " ".join(tokens[i + 1].content.split())
            diary = _DIARY_TITLE.match(title)
            if diary:
                title = _diary_title(diary.group("title")) + (" {private}" if diary.group("private") else "")
            headings.append((lines[first], _line_end(norm, lines, last), title, bool(diary)))
    prose = _blank(blanked, code)
    # `##[Title]` (no space) is not a CommonMark heading but is a diary heading here, as it always was.
    marked = {h[0] for h in headings if h[3]}
    for m in _DIARY_HEADING.finditer(prose, body_start):
        if m.start() not in marked:
            headings.append((m.start(), m.end(), _diary_title(m.group("title")), True))
    headings.sort()
    if any(d for *_, d in headings):
        headings = [h for h in headings if h[3]]
    headings = [h for h in headings if h[0] >= body_start]
    if headings:
        entries = _entries_from_headings(prose, source, [(s, e, t) for s, e, t, _ in headings], body_start)
    else:
        entries = _sections(prose, source, body_start)
    return _Found(entries=entries, code=code)


def _line_end(text: str, lines: list[int], last: int) -> int:
    """The offset where line ``last - 1`` ends, before its line break (``lines`` from ``_line_starts``)."""
    end = lines[min(last, len(lines) - 1)]
    if end > 0 and text[end - 1] == "\n":
        end -= 1
    if end > 0 and text[end - 1] == "\r":
        end -= 1
    return end


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the characters in ``spans`` turned into spaces, line ends kept (offsets unchanged)."""
    if not spans:
        return text
    chars = list(text)
    for s, e in spans:
        for i in range(s, e):
            if chars[i] not in "\r\n":
                chars[i] = " "
    return "".join(chars)


def _to_source(decoded: Decoded, entries: list[Entry], code: list[tuple[int, int]]) -> list[Entry]:
    """Entries of the normalised view as entries of the text as read: code blocks cut out (a piece
    before and after each keeps the entry's title and index), offsets mapped back, white space trimmed."""
    text = decoded.text
    out: list[Entry] = []
    for entry in entries:
        cuts = sorted((max(s, entry.start), min(e, entry.end)) for s, e in code if s < entry.end and e > entry.start)
        pos = entry.start
        pieces: list[tuple[int, int]] = []
        for s, e in cuts:
            pieces.append((pos, s))
            pos = max(pos, e)
        pieces.append((pos, entry.end))
        for s, e in pieces:
            piece = decoded.norm[s:e]
            if not piece.strip():
                continue
            s += len(piece) - len(piece.lstrip())
            e = s + len(piece.strip())
            ts, te = decoded.source_span(s, e)
            while ts < te and text[ts].isspace():
                ts += 1
            while te > ts and text[te - 1].isspace():
                te -= 1
            if ts < te:
                body = text[ts:te]
                out.append(replace(entry, start=ts, end=te, text=body, lang=detect_lang(clean(body))))  # type: ignore[arg-type]
    return out


def _diary_title(raw: str) -> str:
    title = raw.replace("_", " ").strip()
    return re.sub(r"\s+", " ", title) or "Untitled"


def _entries_from_headings(
    text: str, source: str, headings: list[tuple[int, int, str]], body_start: int
) -> list[Entry]:
    entries: list[Entry] = []
    preamble_end = headings[0][0]
    if text[body_start:preamble_end].strip():
        entries.extend(_sections(text[:preamble_end], source, body_start))
    for i, (_, head_end, title) in enumerate(headings):
        end = headings[i + 1][0] if i + 1 < len(headings) else len(text)
        entry = _make_entry(text, source, title or "Untitled", head_end, end, len(entries))
        if entry is not None:
            entries.append(entry)
    return entries


def _make_entry(text: str, source: str, title: str, start: int, end: int, index: int) -> Entry | None:
    body = text[start:end]
    if not body.strip():
        return None
    s = start + (len(body) - len(body.lstrip()))
    e = start + len(body.rstrip())
    return Entry(source=source, title=title, start=s, end=e, text=text[s:e], lang=detect_lang(text[s:e]), index=index)  # type: ignore[arg-type]


def _sections(text: str, source: str, body_start: int) -> list[Entry]:
    """Essays: a short line followed by a paragraph is a section heading; without headings,
    each prose paragraph starts a block (with the bullets and short lines after it)."""
    lines: list[tuple[int, int]] = []  # (start, end) of non-empty lines
    pos = body_start
    for raw in text[body_start:].splitlines(keepends=True):
        stripped = raw.strip()
        if stripped:
            lead = len(raw) - len(raw.lstrip())
            lines.append((pos + lead, pos + lead + len(stripped)))
        pos += len(raw)

    def line(i: int) -> str:
        return text[lines[i][0] : lines[i][1]]

    def is_title(s: str) -> bool:
        # A long title is still a title ("From Curiosity to Research Pt. 1 - From Using LLMS to
        # Understanding The Internals", a saved web page's): mostly capitalised words, no end stop.
        return len(s) < 80 or (len(s) < MAX_TITLE and looks_like_title(s) and not _TITLE_END.search(s))

    def is_prose(i: int) -> bool:
        s = line(i)
        return len(s) >= 80 and not s.startswith(("-", "*", "•")) and not is_title(s)

    def is_heading(i: int) -> bool:
        s = line(i)
        return (
            len(s) < MAX_TITLE
            and not _TITLE_END.search(s)
            and not s.startswith(("-", "*", "•", "$"))
            and looks_like_title(s)
            and i + 1 < len(lines)
            and is_prose(i + 1)
        )

    # Each group: (title or None, first line index, last line index)
    groups: list[tuple[str | None, int, int]] = []
    i = 0
    while i < len(lines):
        if is_heading(i):
            j = i + 1
            while j + 1 < len(lines) and not is_heading(j + 1):
                j += 1
            groups.append((line(i), i + 1, j))
            i = j + 1
            continue
        j = i
        while j + 1 < len(lines) and not is_heading(j + 1) and not is_prose(j + 1):
            j += 1
        groups.append((None, i, j))
        i = j + 1

    entries: list[Entry] = []
    for title, first, last in groups:
        start, end = lines[first][0], lines[last][1]
        # A block of only punctuation ("---") has no lead phrase: it still needs a title.
        entry = _make_entry(text, source, title or _lead_title(text[start:end]) or "Untitled", start, end, len(entries))
        if entry is not None:
            entries.append(entry)
    return entries


def looks_like_title(s: str) -> bool:
    """True for a line that reads as a title: numbered ("2. No Learning is Not Learning") or mostly
    capitalised words (at least 60% of its words over three letters; "Back to All Posts",
    "Published on August 18, 2025")."""
    if re.match(r"^\d+[.)]\s+\S", s):
        return True
    words = [w for w in re.findall(r"[^\W\d_][\w'’-]*", s) if len(w) > 3]
    return bool(words) and sum(w[0].isupper() for w in words) / len(words) >= 0.6


def _lead_title(block: str) -> str:
    """A title for a block without heading: its lead phrase ("The LLM ceiling: …" -> "The LLM ceiling")."""
    first = block.strip().splitlines()[0].lstrip("-*• ").strip()
    m = re.match(r"(.{3,60}?)(?:[:.](?:\s|$)|\s[—–-]\s)", first)
    if m:
        return m.group(1).strip()
    words = first.split()
    return " ".join(words[:8]) + ("…" if len(words) > 8 else "")
