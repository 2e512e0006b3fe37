"""Answer -> page: HTML-safe rendering of questions, answers, citations and source passages for the chat page.

Every string that comes from a user, a model or a source file goes through ``html.escape`` before it
is put into markup; the only tags on the page are the ones built here. Markdown is never
interpreted (the chat renders these strings as HTML), so ``![x](https://host/img.png)`` and
``<img onerror=...>`` in a diary or an answer arrive as visible, inert text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from knowledge.types import Answer, Citation, Usage

MARKER = re.compile(r"\[(\d{1,3})\]")  # the same markers agent.citations parses
CONTEXT_CHARS = 400  # characters of surrounding text shown on each side of a quote

SUGGEST_TEMPLATES = {
    "en": "What did you write about “{topic}”?",
    "ko": "“{topic}”에 대해 쓴 글을 들려주세요.",
}


def _text(value: str) -> str:
    """Escaped text with line breaks kept (the chat strips raw newlines from HTML)."""
    return escape(value, quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def _attr(value: str) -> str:
    return escape(value, quote=True)


# --- chat messages ------------------------------------------------------------------------


def render_question(question: str) -> str:
    """A user's message: plain text, nothing interpreted."""
    return f'<div class="question">{_text(question)}</div>'


def render_partial(text: str) -> str:
    """An answer while it streams: markers are shown but not yet clickable (citations come last)."""
    pieces = []
    for i, part in enumerate(MARKER.split(text)):
        pieces.append(f'<span class="cite-pending">[{int(part)}]</span>' if i % 2 else _text(part))
    return f'<div class="answer streaming">{"".join(pieces)}<span class="cursor">▍</span></div>'


def _cite_button(turn: int, n: int, citation: Citation | None) -> str:
    if citation is None:
        # A marker without a verified citation is shown for what it is, never as a source.
        return f'<span class="cite-missing" title="no verified source for this marker">[{n}]</span>'
    title = _attr(f"{citation.title} — {citation.source}")
    return f'<button type="button" class="cite" value="{turn}:{n}" title="{title}">[{n}]</button>'


def _inline(text: str, turn: int, cites: dict[int, Citation]) -> str:
    """Escaped text whose ``[n]`` markers become buttons that open the sources panel."""
    out = []
    for i, part in enumerate(MARKER.split(text)):
        if i % 2:
            n = int(part)
            out.append(_cite_button(turn, n, cites.get(n)))
        else:
            out.append(_text(part))
    return "".join(out)


def unsupported_spans(text: str, sentences: Iterable[str]) -> list[tuple[int, int]]:
    """Where the checker's unsupported sentences sit in ``text`` (non-overlapping, in order)."""
    spans: list[tuple[int, int]] = []
    for sentence in sentences:
        found = None
        for probe in (sentence.strip(), MARKER.sub("", sentence).strip()):
            if not probe:
                continue
            at = 0
            while (i := text.find(probe, at)) >= 0:
                if not any(s < i + len(probe) and i < e for s, e in spans):
                    found = (i, i + len(probe))
                    break
                at = i + 1
            if found:
                break
        if found:
            spans.append(found)
    return sorted(spans)


def render_body(text: str, turn: int, citations: Sequence[Citation], unsupported: Iterable[str] = ()) -> str:
    """The answer text: clickable citations, unsupported sentences underlined and badged."""
    cites = {c.n: c for c in citations}
    out = []
    pos = 0
    for start, end in unsupported_spans(text, unsupported):
        out.append(_inline(text[pos:start], turn, cites))
        out.append(
            '<span class="unsupported" title="The cited passages do not support this sentence">'
            f"{_inline(text[start:end], turn, cites)}</span>"
            '<span class="badge-unsupported">unsupported</span>'
        )
        pos = end
    out.append(_inline(text[pos:], turn, cites))
    return "".join(out)


def format_usage(answer: Answer) -> str:
    """One short line: backend, model, tokens and cost of this answer."""
    usage: Usage = answer.usage
    parts = [answer.backend or "unknown backend"]
    if answer.model:
        parts.append(answer.model)
    tokens = usage.prompt_tokens + usage.completion_tokens
    if tokens:
        parts.append(f"{usage.prompt_tokens:,} + {usage.completion_tokens:,} tokens")
        parts.append(f"${usage.cost_usd:.4f}" if usage.cost_usd is not None else "cost unknown")
    else:
        parts.append("0 tokens · no LLM cost" if answer.backend == "extractive" else "0 tokens")
    return " · ".join(parts)


def suggestion_question(topic: str, lang: str) -> str:
    return SUGGEST_TEMPLATES.get(lang, SUGGEST_TEMPLATES["en"]).format(topic=topic)


def render_answer(answer: Answer, turn: int, lang: str = "en") -> str:
    """A finished answer (or abstention) with its usage line; ``turn`` numbers its citation buttons."""
    meta = f'<div class="answer-meta">{_text(format_usage(answer))}</div>'
    if answer.abstained:
        topics = "".join(
            f'<button type="button" class="suggest" value="{_attr(suggestion_question(t, lang))}">{_text(t)}</button>'
            for t in answer.nearest_topics
        )
        label = "Nearest topics I did write about:" if lang != "ko" else "제가 쓴 가장 가까운 주제:"
        suggestions = f'<div class="topics"><span class="topics-label">{label}</span> {topics}</div>' if topics else ""
        return (
            '<div class="abstain"><div class="abstain-label">Not in my writings</div>'
            f'<div class="abstain-text">{_text(answer.text)}</div>{suggestions}</div>{meta}'
        )
    body = render_body(answer.text, turn, answer.citations, answer.unsupported)
    note = ""
    if answer.incomplete:
        note = '<div class="incomplete-note">The answer stopped early: the backend was interrupted.</div>'
    return f'<div class="answer">{body}</div>{note}{meta}'


# --- the sources panel --------------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    """A quote inside its surrounding text, cut from a source file."""

    before: str
    quote: str
    after: str
    clipped_before: bool  # text was left out before ``before``
    clipped_after: bool
    exact: bool = True  # the quote sat at its recorded offsets (else it was searched for)


def _cut_left(text: str, at: int, lo: int, start: int) -> int:
    """Move a cut at ``at`` forward to the next word boundary (before ``start``), so no word is halved."""
    if at <= lo:
        return lo
    stop = min(at + 40, start)
    cuts = [c + 1 for c in (text.find(" ", at, stop), text.find("\n", at, stop)) if c >= 0]
    return min(cuts) if cuts else at


def _cut_right(text: str, at: int, hi: int, end: int) -> int:
    """Move a cut at ``at`` back to the previous word boundary (after ``end``)."""
    if at >= hi:
        return hi
    begin = max(at - 40, end)
    cuts = [c for c in (text.rfind(" ", begin, at), text.rfind("\n", begin, at)) if c >= 0]
    return max(cuts) if cuts else at


def passage_context(
    text: str,
    citation: Citation,
    radius: int = CONTEXT_CHARS,
    bounds: tuple[int, int] | None = None,
) -> Passage | None:
    """``radius`` characters each side of the quote, kept inside ``bounds`` (its entry); None if absent.

    The recorded offsets are trusted only when they still hold the quote; a file edited since it
    was indexed is searched for the quote instead.
    """
    start, end, exact = citation.start, citation.end, True
    if not (0 <= start < end <= len(text) and text[start:end] == citation.quote):
        i = text.find(citation.quote) if citation.quote else -1
        if i < 0:
            return None
        start, end, exact = i, i + len(citation.quote), False
        bounds = None  # the entry bounds belong to the old offsets
    lo, hi = bounds if bounds and bounds[0] <= start and end <= bounds[1] else (0, len(text))
    left = _cut_left(text, max(start - radius, lo), lo, start)
    right = _cut_right(text, min(end + radius, hi), hi, end)
    return Passage(
        before=text[left:start],
        quote=text[start:end],
        after=text[end:right],
        clipped_before=left > lo,
        clipped_after=right < hi,
        exact=exact,
    )


SOURCES_PLACEHOLDER = (
    '<div class="sources-empty">Click a citation like <span class="cite-sample">[1]</span> in an answer '
    "to see the passage it quotes, highlighted in its entry.</div>"
)


def render_source(
    citation: Citation,
    passage: Passage | None,
    *,
    turn: int,
    others: Sequence[Citation] = (),
    persona_name: str = "",
) -> str:
    """The sources panel for one citation: entry title, file, and the quote marked in its context."""
    head = (
        f'<div class="src-head"><span class="src-n">[{citation.n}]</span> '
        f'<span class="src-title">{_text(citation.title)}</span></div>'
        f'<div class="src-file">{_text(citation.source)}'
        f'{" · " + _text(persona_name) if persona_name else ""}'
        f" · characters {citation.start:,}–{citation.end:,}</div>"
    )
    if passage is None:
        body = (
            f'<blockquote class="src-context"><mark>{_text(citation.quote)}</mark></blockquote>'
            '<div class="src-warning">The source file has changed or cannot be read, so only the quote is shown: '
            "run <code>persona ingest</code> again to refresh the index.</div>"
        )
    else:
        warn = ""
        if not passage.exact:
            warn = '<div class="src-warning">The file changed since it was indexed; the quote was found again.</div>'
        body = (
            '<blockquote class="src-context">'
            f"{'… ' if passage.clipped_before else ''}{_text(passage.before)}"
            f"<mark>{_text(passage.quote)}</mark>"
            f"{_text(passage.after)}{' …' if passage.clipped_after else ''}"
            f"</blockquote>{warn}"
        )
    rest = [c for c in others if c.n != citation.n]
    listing = ""
    if rest:
        items = "".join(
            f'<li>{_cite_button(turn, c.n, c)} <span class="src-other-title">{_text(c.title)}</span></li>' for c in rest
        )
        label = '<div class="src-others-label">Other sources of this answer</div>'
        listing = f'<div class="src-others">{label}<ul>{items}</ul></div>'
    return f'<div class="src-card">{head}{body}</div>{listing}'


def render_source_error(message: str) -> str:
    return f'<div class="sources-empty">{_text(message)}</div>'


# --- the persona column -------------------------------------------------------------------


def render_examples(examples_en: Sequence[str], examples_ko: Sequence[str]) -> str:
    """Example questions as buttons; a click asks the question (see the page script in ui/app.py)."""

    def group(label: str, questions: Sequence[str], lang: str) -> str:
        if not questions:
            return ""
        buttons = "".join(
            f'<button type="button" class="example" lang="{lang}" value="{_attr(q)}">{_text(q)}</button>'
            for q in questions
        )
        return f'<div class="ex-group"><div class="ex-head">{label}</div>{buttons}</div>'

    html = group("Try asking", examples_en, "en") + group("한국어로 물어보기", examples_ko, "ko")
    return f'<div class="examples">{html or "<div class=ex-head>No example questions for this persona.</div>"}</div>'


def persona_label(name: str, bio: str) -> str:
    """The picker's label for one persona: its name and one-line bio (plain text; the radio escapes it)."""
    line = " ".join(bio.split())
    return f"{name} — {line}" if line else name
