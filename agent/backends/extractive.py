"""Backend ``extractive``: answers with the writer's own sentences, each span cited once; no LLM.

An answer is a short first-person lead in the asker's language that fits the question kind,
then at most ``Settings.max_passages`` contiguous spans (one per passage, the best first), each
followed by one ``[n]``. A span never starts or ends inside quoted speech, so a marker never lands
inside it. The writer's third-person self-references ("Raj learned") read as first person in the
answer's words (agent.voice); the citation still quotes the source verbatim.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from agent.backends import AnswerRequest
from agent.citations import MARKER, cite
from agent.compose import FOLLOW, Scored, Sentence, Span, complement, rerank_views, select_spans
from agent.coverage import name_list
from agent.question import answer_type, asks_next, without_frame
from agent.views import states_view
from agent.voice import self_names, to_first_person
from knowledge.text import has_hangul, latin_tokens, lexical_tokens
from knowledge.types import Answer, Chunk, Citation, SentenceSupport

LEADS = {
    "fact": {"en": "Here's how I wrote it down:", "ko": "제가 적어 둔 그대로 말씀드리면:"},
    "view": {"en": "My view, as I wrote it:", "ko": "제 생각은 이렇습니다:"},
}
LEADS_OTHER_LANG = {
    "fact": {"en": "I wrote this down in Korean:", "ko": "이 이야기는 제가 영어로 적어 두었어요:"},
    "view": {"en": "I wrote my view down in Korean:", "ko": "제 생각은 영어로 적어 두었어요:"},
}
UNADDRESSED = {
    "en": "I haven't written about {topic} directly; the nearest view I have written down:",
    "ko": "{topic}에 대해 직접 쓴 적은 없지만, 가장 가까운 제 생각은 이렇습니다:",
}
UNADDRESSED_OTHER_LANG = {
    "en": "I haven't written about {topic} directly; the nearest view I have written down is in Korean:",
    "ko": "{topic}에 대해 직접 쓴 적은 없지만, 가장 가까운 제 생각은 영어로 적어 두었어요:",
}

# A fact question presupposing an event the writings never tell ("Why did you quit your PhD?";
# agent.question.unwritten_event, and unwritten_event_ko for Korean): the answer says so, then quotes what
# the writings do say.
UNWRITTEN = "I never wrote that I {event}; what I did write:"
UNWRITTEN_OTHER_LANG = "I never wrote that I {event}; what I did write is in Korean:"
# agent.question.unwritten_event_ko: the event in the past ("박사과정을 그만뒀다").
UNWRITTEN_KO = "{event}고 쓴 적은 없어요. 제가 쓴 것은 이렇습니다:"
UNWRITTEN_KO_OTHER_LANG = "{event}고 쓴 적은 없어요. 제가 쓴 것은 영어로 적어 두었어요:"


# Opens a quote from the other language's telling of the story (agent.compose.complement), in the
# asker's language: a framing line, not a claim.
ALSO_WROTE = {"en": "In Korean, I also wrote:", "ko": "영어로는 이렇게도 썼어요:"}


def lead_for(kind: str, lang: str, other_lang: bool, unaddressed: tuple[str, ...] = (), event: str = "") -> str:
    """The first-person lead of an answer: ``kind`` of question (fact or view; other kinds read as
    fact), ``lang`` of the asker, ``other_lang`` when the quoted writing is in the other language,
    the view question's ``unaddressed`` topics, which the lead names, and a fact question's
    presupposed ``event`` the writings never tell ("quit my PhD"), which the lead says was never
    written."""
    lang = lang if lang in ("en", "ko") else "en"
    if kind == "fact" and event:
        if lang == "ko":
            return (UNWRITTEN_KO_OTHER_LANG if other_lang else UNWRITTEN_KO).format(event=event)
        return (UNWRITTEN_OTHER_LANG if other_lang else UNWRITTEN).format(event=event)
    if kind == "view" and unaddressed:
        return (UNADDRESSED_OTHER_LANG if other_lang else UNADDRESSED)[lang].format(
            topic=name_list(unaddressed[:2], lang)
        )
    table = LEADS_OTHER_LANG if other_lang else LEADS
    return table["view" if kind == "view" else "fact"][lang]


def outside_speech(chunk: Chunk, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` widened within ``chunk`` so that neither end falls inside double-quoted speech.

    Straight quotes alternate; a span starting after an odd number of them starts inside a
    quotation and is moved back to its opening mark, one ending inside it is moved to its closing mark.
    """
    text = chunk.text
    a, b = start - chunk.start, end - chunk.start

    def inside(pos: int) -> bool:
        straight = text[:pos].count('"')
        opened = text[:pos].count("“") - text[:pos].count("”")
        return straight % 2 == 1 or opened > 0

    if inside(a):
        opening = max(text.rfind('"', 0, a), text.rfind("“", 0, a))
        if opening >= 0:
            a = opening
    if inside(b):
        closing = [i for i in (text.find('"', b), text.find("”", b)) if i >= 0]
        if closing:
            b = min(closing) + 1
    return a + chunk.start, b + chunk.start


def told(sentences: Iterable[Sentence], reply: str, names: tuple[str, ...], min_tokens: int = 2) -> list[Sentence]:
    """The ``sentences`` the previous ``reply`` already told: every lexical token of the sentence,
    made first person as answers quote it (agent.voice.to_first_person: "Raj는" is "나는" there), is
    one of the reply's. The reply's Latin words count as English reads them too
    (knowledge.text.latin_tokens): in a Korean reply quoting English, Kiwi splits "sequences" into
    "sequ" and "enc". A sentence of fewer than ``min_tokens`` tokens tells nothing by itself and is
    left out."""
    body = MARKER.sub(" ", reply)
    have = set(lexical_tokens(body)) | set(latin_tokens(body))
    out = []
    for s in sentences:
        toks = set(lexical_tokens(to_first_person(s.text, names)))
        if len(toks) >= max(min_tokens, 1) and toks <= have:
            out.append(s)
    return out


def told_at(scored: Sequence[Scored], reply: str, names: tuple[str, ...]) -> tuple[int, int] | None:
    """``(passage, start)``: the passage of ``scored`` whose sentences the previous ``reply`` told
    most of (:func:`told`), and the file offset of the last of them it told, or of the last of the
    sentences right after it that the reply holds verbatim; None when it told none."""
    sentences = list(dict.fromkeys(s for x in scored for s in x.window.sentences))
    said = told(sentences, reply, names)
    if not said:
        return None
    passage = Counter(s.passage for s in said).most_common(1)[0][0]
    last = max(s.start for s in said if s.passage == passage)
    # A short line told verbatim right after it ("교수님, 이거 봐야 해요!", one token once stop words
    # go) was told too: the story goes on after it, not from it again.
    for s in sorted((s for s in sentences if s.passage == passage and s.start > last), key=lambda s: s.start):
        if to_first_person(s.text, names).strip() not in reply:
            break
        last = s.start
    return passage, last


def continuation(scored: Sequence[Scored], at: tuple[int, int], entry_of: Sequence[object] = ()) -> list[Scored] | None:
    """For a follow-up asking what came next, after a reply that told passage ``at[0]`` up to the
    sentence at offset ``at[1]`` (:func:`told_at`): the windows of that passage and of the passages
    of the same entry (``entry_of[passage]``: an entry key per passage; the pipeline adds an
    entry's next chunk for such a follow-up) that open on the first sentence after it first (their
    score raised by 1.0, far past any other window: the story goes on from where the reply left
    it), then the entry's other windows, whose sentences a span may go on through. None when
    nothing follows in these passages (the caller knows whether the entry ends there); [] when no
    window opens on what follows."""
    passage, last = at

    def same(p: int) -> bool:
        return p == passage or (passage < len(entry_of) and p < len(entry_of) and entry_of[p] == entry_of[passage])

    sentences = list(dict.fromkeys(s for x in scored for s in x.window.sentences))
    after = sorted({(s.start, s.passage) for s in sentences if same(s.passage) and s.start > last})
    if not after:
        return None
    mine = [x for x in scored if same(x.window.passage)]
    going = [x for x in mine if (x.window.sentences[0].start, x.window.passage) == after[0]]
    if not going:
        return []
    raised = [Scored(x.window, x.score + 1.0, x.dense, x.lift, x.lexical, x.view) for x in going]
    return sorted(raised, key=lambda x: -x.score) + [x for x in mine if x not in going]


# When the previous reply told a story up to the end of its entry: what came next was not written.
ENTRY_ENDS = {
    "en": "That's where I stopped writing about it: I didn't write down what came after.",
    "ko": "그 이야기는 거기까지만 적어 두었어요. 그 뒤의 일은 쓰지 않았어요.",
}


def _entry_ends(request: AnswerRequest, backend: str) -> Iterator[str | Answer]:
    """The honest reply to "And then?" after the last line of an entry: nothing is quoted again."""
    text = ENTRY_ENDS["ko" if request.lang == "ko" else "en"]
    yield text
    yield Answer(
        text=text, citations=[], abstained=True, persona=request.persona.id, backend=backend, question=request.question
    )


def _holds_topic(span: Span, question: str) -> bool:
    """Whether a further span of a view answer holds a word of the question outside its opinion
    frame (agent.question.without_frame): "What do you think about unlearning?" shares "think" with
    'So is the model "thinking"?', which says nothing about unlearning. A span in another script
    than the question's words is kept (it shares them through the bridge's translations, which
    select_spans has weighed already)."""
    words = set(lexical_tokens(without_frame(question)))
    if has_hangul(question) != has_hangul(" ".join(s.text for s in span.sentences)):
        return True
    return bool(words & {t for s in span.sentences for t in lexical_tokens(s.text)})


class ExtractiveBackend:
    """Composes a first-person answer from the most relevant spans of the retrieved passages."""

    name = "extractive"

    def __init__(self, services: Any = None) -> None:
        self.services = services

    def _max_passages(self) -> int:
        settings = getattr(self.services, "settings", None)
        return int(getattr(settings, "max_passages", 2) or 2)

    def _idf(self, persona: str) -> dict[str, float] | None:
        idf = getattr(self.services, "idf", None)
        try:
            return idf(persona) if callable(idf) else None
        except Exception:  # no index for this persona (a test's stand-in services): no reranking
            return None

    def stream(self, request: AnswerRequest) -> Iterator[str | Answer]:
        scored: list[Scored] = request.context["scored"]
        coverage = request.context.get("coverage")
        kind = getattr(coverage, "kind", "fact")
        unaddressed = tuple(getattr(coverage, "unaddressed", ()) or ())
        if kind == "view":
            scored = rerank_views(scored, request.standalone, self._idf(request.persona.id), states_view)
        # A view question's passages come in the order the view ranking settled on (agent.pipeline:
        # Agent.views_first, which marks the windows holding its chosen views, then settle_lead and
        # lead_with_terms): the first passage's entry (all its retrieved chunks) leads.
        led: set[int] | None = None
        if kind == "view" and any(x.view for x in scored) and request.passages:
            entry_of = [(r.chunk.source, r.chunk.title) for r in request.passages]
            led = {i for i, e in enumerate(entry_of) if e == entry_of[0]}
        # "What happened after that?": the story goes on from where the previous answer left it,
        # instead of quoting the same lines again.
        previous = next((m["content"] for m in reversed(request.history) if m.get("role") == "assistant"), "")
        at = (
            told_at(scored, previous, self_names(request.persona.name))
            if previous and asks_next(request.question)
            else None
        )
        if at is not None:
            entries = [(r.chunk.source, r.chunk.entry_index) for r in request.passages]
            going_on = continuation(scored, at, entries)
            if going_on is None and at[0] in (request.context.get("entry_ends") or ()):
                # The pipeline knows this passage ends its entry (``context["entry_ends"]``).
                yield from _entry_ends(request, self.name)
                return
            if going_on:
                scored, kind, led = going_on, "fact", None
        # A question about an event names its setup; what came of it follows (compose.FOLLOW).
        # A view answer whose lead entry states no view outright tells it through a story: what
        # came of it follows, as for an event ("One reviewer objected ... I wrote a rebuttal." ->
        # "After three review rounds, the reviewer finally changed their position.").
        untold = led is not None and not any(x.view and x.window.passage in led for x in scored)
        follow = 0 if kind == "view" and not untold else FOLLOW
        told_once = request.context.get("told_once", ())
        asked_for = answer_type(request.standalone)  # who/where: a further passage must name one

        def spans_of(candidates: list[Scored]) -> list[Span]:
            return select_spans(
                candidates,
                request.lang,
                self._max_passages(),
                lead=led,
                follow=follow,
                told_once=told_once,
                answer_type=asked_for,
            )

        spans = spans_of(scored)
        if previous and at is None and spans:
            # Another follow-up ("Why?") whose answer would only say again what the last reply
            # quoted: the windows it did not tell answer instead (their best, as ever), if any. Not
            # when the follow-up's own words are in what was told ("Why did it explode?" after "the
            # loss exploded ... It was a gradient clipping bug."): the answer is there.
            names_told = self_names(request.persona.name)
            # A line of one word ("These would support:") the reply holds was told with the rest.
            told_before = set(told((s for x in scored for s in x.window.sentences), previous, names_told, 1))
            told_terms = {t for s in told_before for t in lexical_tokens(to_first_person(s.text, names_told))}
            own = set(lexical_tokens(request.question))
            if not own & told_terms and all(set(sp.sentences) <= told_before for sp in spans):
                fresh = [x for x in scored if not set(x.window.sentences) <= told_before]
                if fresh:
                    spans = spans_of(fresh)
        if led is not None:
            spans = spans[:1] + [sp for sp in spans[1:] if _holds_topic(sp, request.standalone)]
        added: list[Span] = []
        embed = getattr(getattr(self.services, "sentences", None), "embed", None)
        if kind == "fact" and at is None and len(spans) < self._max_passages() and callable(embed):
            # The other diary's telling of the story, when only it holds what the question asks.
            langs = [r.chunk.lang for r in request.passages]
            extra = complement(spans, scored, request.context.get("equivalents") or {}, embed, langs)
            if extra is not None and all(sp.passage != extra.window.passage for sp in spans):
                # Its passage's other windows only lend their sentences (what the span may go on
                # into: "하지만 나는 생각했다." -> the thought that follows), never the quote.
                same = [x for x in scored if x.window.passage == extra.window.passage and x is not extra]
                pool = [replace(x, score=extra.score - 1.0) for x in same]
                added = select_spans([extra, *pool], extra.window.lang, 1)
                spans += added
        other = bool(spans) and spans[0].lang != request.lang
        lead = lead_for(kind, request.lang, other, unaddressed, str(getattr(coverage, "event", "") or ""))
        yield lead
        parts = [lead]
        citations: list[Citation] = []
        support: list[SentenceSupport] = []
        names = self_names(request.persona.name)
        for n, sp in enumerate(spans, start=1):
            chunk = request.passages[sp.passage].chunk
            start, end = outside_speech(chunk, sp.start, sp.end)
            c = cite(n, chunk, start, end)
            citations.append(c)
            said = to_first_person(c.quote, names)
            also = f" {ALSO_WROTE.get(request.lang, ALSO_WROTE['en'])}" if sp in added else ""
            piece = f"{also} {said} [{n}]"
            parts.append(piece)
            yield piece
            # The words are the quote's own, or the quote with the writer's name made first person.
            support.append(SentenceSupport(sentence=said, citations=(c.n,), score=1.0, supported=True))
        yield Answer(
            text="".join(parts),
            citations=citations,
            abstained=False,
            persona=request.persona.id,
            backend=self.name,
            question=request.question,
            support=support,
        )
