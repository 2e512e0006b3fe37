"""Sources -> entries, privacy: entries marked private are left out before chunking (indexed for nothing, never quoted).

Three ways to mark a single entry private (a whole file: front matter ``private: true``):

- a heading suffix: ``## [Title] {private}``, ``# Title {private}`` or an essay heading ``Title {private}``;
- a line ``<!-- private -->`` right under the heading (anywhere in the entry hides all of it; in a
  file without headings, where each paragraph is an entry, it hides the paragraph under it);
- a manifest ``.persona-private`` in the persona's folder, one rule per line: ``notes.md`` (the whole
  file) or ``notes.md#Entry title`` (one entry; underscores, spaces and case do not matter).
  Blank lines and lines starting with ``#`` are ignored. A rule without ``/`` also matches the
  file in any sub-folder.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from knowledge.types import Entry

MANIFEST = ".persona-private"
# Appended to the loaders' heading patterns: the marker is part of the heading line, not of the title.
HEADING_SUFFIX = r"(?:(?i:\{private\})[ \t]*)?"
_SUFFIX_AT_END = re.compile(r"\{private\}[ \t]*$", re.I)
_MARKER_LINE = re.compile(r"<!--[ \t]*private[ \t]*-->", re.I)


def normalize_title(title: str) -> str:
    return " ".join(title.replace("_", " ").split()).casefold()


@dataclass(frozen=True)
class Rules:
    """The rules of one folder's ``.persona-private`` manifest."""

    files: frozenset[str] = frozenset()
    entries: frozenset[tuple[str, str]] = frozenset()  # (file rule, normalised title)

    @staticmethod
    def _matches(rule: str, source: str) -> bool:
        source = unicodedata.normalize("NFC", source)  # rules are NFC; a name saved in NFD still matches
        return rule == source or ("/" not in rule and PurePosixPath(source).name == rule)

    def file_private(self, source: str) -> bool:
        return any(self._matches(rule, source) for rule in self.files)

    def entry_private(self, source: str, title: str) -> bool:
        key = normalize_title(title)
        return any(t == key and self._matches(rule, source) for rule, t in self.entries)


def parse_rules(text: str) -> Rules:
    files: set[str] = set()
    entries: set[tuple[str, str]] = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, title = line.partition("#")
        name = name.strip().removeprefix("./")
        if sep and title.strip():
            entries.add((name, normalize_title(title)))
        elif name:
            files.add(name)
    return Rules(frozenset(files), frozenset(entries))


def root_of(path: Path, source: str) -> Path:
    """The persona's folder: ``path`` minus the relative ``source`` it is cited as."""
    parts = PurePosixPath(source).parts
    if len(parts) > 1 and path.as_posix().endswith("/" + source):
        return path.parents[len(parts) - 1]
    return path.parent


def load_rules(folder: Path) -> Rules:
    """The folder's manifest, decoded and normalised as notes are (a BOM, CRLF or NFD names do not
    hide a rule); none (or an unreadable one) means no rules."""
    from knowledge.decode import DecodeError, decode_bytes

    try:
        return parse_rules(decode_bytes((folder / MANIFEST).read_bytes()).norm)
    except (OSError, DecodeError):
        return Rules()


def _marks(line: str) -> bool:
    line = line.strip()
    return bool(_MARKER_LINE.fullmatch(line) or _SUFFIX_AT_END.search(line))


def marked_private(text: str, entry: Entry) -> bool:
    """The file says so: a ``{private}`` heading, or a line ``<!-- private -->`` (or ending in
    ``{private}``) in the entry or right above it. When in doubt more is hidden, never less: a
    marker in the middle of an entry hides all of it, and in a file without headings (where each
    paragraph is an entry) a marker line also hides the paragraph under it.
    """
    before = text[: entry.start].rstrip().rpartition("\n")[2]
    return (
        _marks(before)
        or any(_marks(line) for line in entry.text.splitlines())
        or bool(_SUFFIX_AT_END.search(entry.title))
    )


def split_private(text: str, source: str, entries: list[Entry], rules: Rules) -> tuple[list[Entry], list[str]]:
    """(public entries, titles of the private ones); entries keep their ``index`` in the file."""
    public: list[Entry] = []
    hidden: list[str] = []
    for entry in entries:
        if marked_private(text, entry) or rules.entry_private(source, entry.title):
            hidden.append(_SUFFIX_AT_END.sub("", entry.title).strip())
        else:
            public.append(entry)
    return public, hidden


def fingerprint(private_entries: list[str] | tuple[str, ...]) -> str:
    """Appended to a file's text before hashing it: making an entry private (in the manifest, the
    file unchanged) must still re-index the file. Empty when nothing is private, so hashes of files
    without private entries stay what they were."""
    return "\x00private:" + "\x1f".join(private_entries) if private_entries else ""
