"""Domain types shared by every step: chunks, retrieved passages, citations, answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Lang = Literal["en", "ko"]


@dataclass(frozen=True)
class Entry:
    """One diary entry or essay section: the unit a chunk never crosses."""

    source: str  # file name under the persona's source folder
    title: str
    start: int  # offset of the entry body in the file
    end: int
    text: str  # == file_text[start:end]
    lang: Lang
    index: int  # position of the entry in its file


@dataclass(frozen=True)
class Chunk:
    """A token-sized piece of one entry; ``text == file_text[start:end]``."""

    id: str
    persona: str
    source: str
    title: str
    start: int
    end: int
    text: str
    lang: Lang
    content_hash: str
    entry_index: int = 0

    def metadata(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "source": self.source,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "lang": self.lang,
            "content_hash": self.content_hash,
            "entry_index": self.entry_index,
        }

    @classmethod
    def from_record(cls, id: str, text: str, meta: dict[str, Any]) -> Chunk:
        return cls(
            id=id,
            persona=str(meta["persona"]),
            source=str(meta["source"]),
            title=str(meta["title"]),
            start=int(meta["start"]),
            end=int(meta["end"]),
            text=text,
            lang=meta.get("lang", "en"),
            content_hash=str(meta["content_hash"]),
            entry_index=int(meta.get("entry_index", 0)),
        )


@dataclass(frozen=True)
class Retrieved:
    """A chunk with the scores that ranked it."""

    chunk: Chunk
    score: float  # fused score (higher is better)
    dense: float | None = None  # cosine similarity to the query, if the dense side saw it
    lexical: float | None = None  # BM25 score, if the lexical side saw it


@dataclass(frozen=True)
class Citation:
    """``[n]`` in an answer: a verbatim quote with its offsets in its source file."""

    n: int
    source: str
    title: str
    quote: str
    start: int
    end: int
    chunk_id: str = ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None: model not in the price table


@dataclass(frozen=True)
class SentenceSupport:
    """The checker's verdict on one sentence of an answer."""

    sentence: str
    citations: tuple[int, ...]
    score: float  # support in [0, 1], higher is better supported
    supported: bool


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation]
    abstained: bool
    persona: str
    backend: str
    question: str = ""
    unsupported: list[str] = field(default_factory=list)  # sentences the checker could not support
    support: list[SentenceSupport] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    incomplete: bool = False  # the backend stopped mid-answer
    model: str = ""
    nearest_topics: list[str] = field(default_factory=list)  # set when abstaining

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
