"""Sources -> entries: read a writing and split it into diary entries or essay sections, with offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agent.types import Entry
from knowledge import privacy
from knowledge.text import detect_lang

SUPPORTED_SUFFIXES = (".txt", ".md")
MAX_FILE_BYTES = 5_000_000  # a diary is text: anything larger is more likely a dump than writing

# `## [Title_With_Underscores]`: the diary heading. Markdown headings `# Title` … `###### Title`
# are read too, so a user's own notes split at their headings.
# A heading may end in `{private}` (knowledge/privacy.py): still a heading, the marker not in the title.
_DIARY_HEADING = re.compile(r"^##[ \t]*\[(?P<title>[^\]\n]*)\][ \t]*" + privacy.HEADING_SUFFIX + "$", re.MULTILINE)
_MD_HEADING = re.compile(r"^#{1,6}[ \t]+(?P<title>[^\n]*?)[ \t#]*" + privacy.HEADING_SUFFIX + "$", re.MULTILINE)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<body>.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_TITLE_END = re.compile(r"[.!?:,;)\]]$")


class LoadError(Exception):
    """A file that cannot be read as writing; ``reason`` says why in a few words."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Document:
    """A whole source file: its exact text and its entries."""

    source: str
    text: str
    entries: list[Entry]  # the public ones: entries marked private are left out
    private: bool = False
    private_entries: tuple[str, ...] = ()  # titles of the entries left out as private


def read_text(path: Path) -> str:
    """The file's text, or LoadError for anything that is not UTF-8 text of a sane size."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(path, f"cannot read ({exc.strerror})") from None
    if size == 0:
        raise LoadError(path, "empty file")
    if size > MAX_FILE_BYTES:
        raise LoadError(path, f"too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot read ({exc.strerror})") from None
    if b"\x00" in raw[:8192]:
        raise LoadError(path, "binary file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(path, f"not UTF-8 text (bad byte at offset {exc.start}); re-save it as UTF-8") from None
    if text.startswith("\ufeff"):
        # Keep offsets true to the file as Python reads it: a BOM is blanked, not removed.
        text = " " + text[1:]
    if not text.strip():
        raise LoadError(path, "only white space")
    return text


def load_document(path: Path, source: str | None = None) -> Document:
    """Read and split one file; ``source`` names it in citations (default: the file name)."""
    text = read_text(path)
    source = source or path.name
    private, body_start = _front_matter(text)
    rules = privacy.load_rules(privacy.root_of(path, source))
    entries, hidden = privacy.split_private(text, source, split_entries(text, source, body_start), rules)
    return Document(
        source=source,
        text=text,
        entries=entries,
        private=private or rules.file_private(source),
        private_entries=tuple(hidden),
    )


def _front_matter(text: str) -> tuple[bool, int]:
    """``private: true`` in YAML-style front matter marks the whole file private."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return False, 0
    private = any(
        line.split(":", 1)[0].strip().lower() == "private"
        and line.split(":", 1)[1].strip().lower() in {"true", "yes", "1"}
        for line in m.group("body").splitlines()
        if ":" in line
    )
    return private, m.end()


def split_entries(text: str, source: str, body_start: int = 0) -> list[Entry]:
    """Entries of a file: at diary headings if it has any, else markdown headings, else sections."""
    headings = [(m.start(), m.end(), _diary_title(m.group("title"))) for m in _DIARY_HEADING.finditer(text, body_start)]
    if not headings:
        headings = [(m.start(), m.end(), m.group("title").strip()) for m in _MD_HEADING.finditer(text, body_start)]
    if headings:
        return _entries_from_headings(text, source, headings, body_start)
    return _sections(text, source, body_start)


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

    def is_prose(i: int) -> bool:
        s = line(i)
        return len(s) >= 80 and not s.startswith(("-", "*", "•"))

    def is_heading(i: int) -> bool:
        s = line(i)
        return (
            len(s) < 80
            and not _TITLE_END.search(s)
            and not s.startswith(("-", "*", "•", "$"))
            and _looks_like_title(s)
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


def _looks_like_title(s: str) -> bool:
    """Numbered ("2. No Learning is Not Learning") or mostly capitalised words."""
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
