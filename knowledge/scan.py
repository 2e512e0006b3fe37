"""Ingest-time scan: flags instruction-like text planted in a source (indirect prompt injection)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.loaders import Document

# Phrases addressed to a model rather than written by a diarist. English and Korean.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "override",
        re.compile(
            r"\b(ignore|disregard|forget)\b.{0,40}\b(previous|prior|above|all|earlier)\b.{0,20}\b(instructions?|rules|prompts?)",
            re.I,
        ),
    ),
    ("role", re.compile(r"\b(you are now|from now on,? you|act as|pretend to be|new persona)\b", re.I)),
    (
        "prompt-leak",
        re.compile(r"\b(system prompt|reveal (your|the) (prompt|instructions)|print (your|the) instructions)\b", re.I),
    ),
    (
        "addressed-to-ai",
        re.compile(
            r"\b(assistant|AI|language model|LLM|chatbot)\s*[:,]\s*(please\s+)?"
            r"(ignore|say|reply|respond|output|print)\b",
            re.I,
        ),
    ),
    ("exfiltration", re.compile(r"!\[[^\]]*\]\(\s*https?://", re.I)),
    ("html", re.compile(r"<\s*(script|iframe|img|object|embed|svg|style|link|meta)\b", re.I)),
    ("override-ko", re.compile(r"(이전|위의|앞의|모든)\s*(지시|명령|지침|규칙).{0,10}(무시|잊)")),
    ("role-ko", re.compile(r"(지금부터|이제부터)\s*(너는|당신은)|역할을\s*(맡아|바꿔)|시스템\s*프롬프트")),
]


def scan_injection(doc: Document) -> list[dict[str, str]]:
    """One warning per entry that holds instruction-like text: {"title", "warning", "excerpt"}."""
    found: list[dict[str, str]] = []
    for entry in doc.entries:
        for kind, pattern in _PATTERNS:
            m = pattern.search(entry.text)
            if m:
                excerpt = entry.text[max(0, m.start() - 20) : m.end() + 20].replace("\n", " ")
                found.append({"title": entry.title, "warning": kind, "excerpt": excerpt})
    return found
