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
    (
        # "Note for AI assistants:", "SYSTEM NOTE TO THE ASSISTANT", "Attention AI:", "AI agents reading this"
        "addressed-to-ai",
        re.compile(
            r"\b(?:notes?|messages?|instructions?|reminders?|directives?)\s+(?:for|to)\s+(?:the\s+|any\s+|all\s+)?"
            r"(?:ai|assistants?|llms?|language\s+models?|chatbots?|ai\s+(?:assistants?|agents?|models?))\b"
            r"|\b(?:attention|dear|hey)\s+(?:ai|assistants?|llms?|chatbots?|language\s+models?)\b"
            r"|\b(?:ai|llm)\s+(?:agents?|assistants?|models?|systems?)\s+(?:reading|processing|parsing)\s+this\b"
            r"|\b(?:assistant|ai|llm|model)\s+(?:instructions?|notes?|directives?|commands?)\s*:",
            re.I,
        ),
    ),
    (
        "system-override",
        re.compile(r"\b(?:system|admin|developer)\s+(?:override|note|message|instruction|command)s?\s*[:!]", re.I),
    ),
    (
        # Directions about "every answer" are addressed to whoever answers, not written by a diarist.
        "answer-directive",
        re.compile(
            r"\b(?:append|add|sign|prefix|end|start|begin)\b[^.\n]{0,40}\b(?:every|each|your|all)\s+"
            r"(?:answers?|replies|reply|responses?)\b",
            re.I,
        ),
    ),
    ("exfiltration", re.compile(r"!\[[^\]]*\]\(\s*https?://", re.I)),
    ("html", re.compile(r"<\s*(script|iframe|img|object|embed|svg|style|link|meta)\b", re.I)),
    ("override-ko", re.compile(r"(이전|위의|앞의|모든)\s*(지시|명령|지침|규칙).{0,10}(무시|잊)")),
    ("role-ko", re.compile(r"(지금부터|이제부터)\s*(너는|당신은)|역할을\s*(맡아|바꿔)|시스템\s*프롬프트")),
    # "AI에게:", "AI 참고:", "[AI 어시스턴트에게: …]": a note addressed to a model.
    (
        "addressed-to-ai-ko",
        re.compile(r"(?:AI|LLM|인공지능|어시스턴트|챗봇|언어\s*모델)\s*(?:에게|님께|님|참고|주의|지시)\s*[:：]", re.I),
    ),
    ("answer-directive-ko", re.compile(r"(?:답변|대답|응답)\s*(?:끝|마지막|맨\s*끝|맨\s*앞|처음)에")),
]


def instruction_like(text: str) -> str | None:
    """The kind of the first instruction-like phrase in ``text`` (e.g. one sentence), else None."""
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return None


def scan_injection(doc: Document) -> list[dict[str, str]]:
    """One warning per entry that holds instruction-like text: {"title", "warning", "excerpt"}."""
    found: list[dict[str, str]] = []
    for entry in doc.entries:
        for kind, pattern in _PATTERNS:
            # The title too: an abstention names the nearest entries by their titles.
            m = pattern.search(entry.text) or pattern.search(entry.title)
            if m:
                excerpt = m.string[max(0, m.start() - 20) : m.end() + 20].replace("\n", " ")
                found.append({"title": entry.title, "warning": kind, "excerpt": excerpt})
    return found
