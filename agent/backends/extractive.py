"""Backend ``extractive``: answers with the writer's own sentences, each cited; no LLM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.backends import AnswerRequest
from agent.citations import cite
from agent.compose import Scored, select
from agent.types import Answer, Citation, SentenceSupport

LEADS = {
    "en": "Here is what I wrote about that:",
    "ko": "제가 쓴 글에서 그대로 옮기면 이렇습니다:",
}
LEADS_OTHER_LANG = {
    "en": "I wrote about this in Korean; in my own words:",
    "ko": "이 이야기는 영어로 썼는데, 제가 쓴 그대로 옮기면:",
}


class ExtractiveBackend:
    """Composes a first-person answer from the most relevant sentences of the retrieved passages."""

    name = "extractive"

    def __init__(self, services: Any = None) -> None:
        self.services = services

    def stream(self, request: AnswerRequest) -> Iterator[str | Answer]:
        scored: list[Scored] = request.context["scored"]
        chosen = select(scored, request.lang)
        if chosen and chosen[0].lang != request.lang:
            lead = LEADS_OTHER_LANG.get(request.lang, LEADS_OTHER_LANG["en"])
        else:
            lead = LEADS.get(request.lang, LEADS["en"])
        yield lead
        parts = [lead]
        citations: list[Citation] = []
        for n, s in enumerate(chosen, start=1):
            chunk = request.passages[s.passage].chunk
            c = cite(n, chunk, s.start, s.end)
            citations.append(c)
            piece = f" {c.quote} [{n}]"
            parts.append(piece)
            yield piece
        yield Answer(
            text="".join(parts),
            citations=citations,
            abstained=False,
            persona=request.persona.id,
            backend=self.name,
            question=request.question,
            # Verbatim quotes checked against their passage: support is exact, not estimated.
            support=[SentenceSupport(sentence=c.quote, citations=(c.n,), score=1.0, supported=True) for c in citations],
        )
