"""View inventory: the sentences of a persona's writings that state a position, with entry and date.

Built deterministically from the indexed chunks (no LLM) whenever a persona's index is loaded or
changes (``HybridRetriever.index`` rebuilds it with the BM25 index after every ingest), and used
twice: view questions retrieve the passages that hold the best-matching views first, and the
extractive backend composes from windows that contain a view.

A sentence states a view when it carries a stance cue: a first-person epistemic or evaluative
verb ("I believe", "I am skeptical", "My view"), a realisation the diaries report ("Raj realized:",
"That day, I learned:"), a normative or evaluative predicate ("is essential", "is not the answer",
"matters", "is insufficient"), or their Korean counterparts (깨달았다, 생각했다, 문제야, 역할이야,
~일 수도 있다, 회의적). The cue lists follow the stance-marker inventory of Biber & Finegan
("Styles of stance in English", *Text* 9, 1989): epistemic, attitudinal and modal markers, with
Hyland's hedges and attitude markers ("Metadiscourse", 2005). A line of speech is a view only when
the writer says it (:func:`speaker_is_other`): the reviewer's "This is just scaling." is not.

The writer's answer to a question the writing puts (someone asks, or the writer wonders) is a view
too, with that question kept as its ``prompt``: "Someone in the audience asked, "So is the model
'thinking'?" Raj answered honestly. "I don't know. But something similar is happening."" The
answer alone ("I don't know ...") is close to any question; the question it answers says what it
is a view on. The answer is the first of the next ``ANSWER_REACH`` sentences that is the writer's
speech or states a view, before another question; the question must be a whole sentence of at
least ``QUESTION_WORDS`` words ("Why?" prompts nothing in particular).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.compose import speech_whole
from knowledge.text import detect_lang, korean_morphemes, split_sentences
from knowledge.types import Chunk

_EN_CUES = re.compile(
    r"\b(?:I (?:think|believe|suspect|doubt|see (?:it|them|this)|treat|follow|am (?:skeptical|convinced|sure)"
    r"|learnt|learned|realized|realised|now feel|feel|would like you to know|hope|want)"
    r"|(?:my|our) (?:view|claim|position|belief|lesson|point)|here is my view|the claim is|the point is"
    r"|(?:realized|realised|learned|learnt|wrote|thought|notes)\s*:|that's why|that's the|is the (?:right|essential)"
    r"|might not be|may not be|is not|are not|isn't|do not|does not|cannot|won't|not \w+ but"
    r"|is essential|is rare|is singular|is central|(?:is|are) insufficient|matters|make(?:s)? all the difference"
    r"|is (?:needed|necessary|important|key|crucial|useful|the answer|part of)|(?:more|less) (?:interesting|"
    r"important|hyped)|the most interesting|the next frontier|I(?:'m| am) approaching|should|must|need to"
    r"|the irony|a profound lesson|the timeless value|prescient|insufficient|a useful counterweight"
    r"|I (?:was|am|remain) skeptical|maybe we|no learning is"
    # Hedges and attitude markers (Hyland, "Metadiscourse", 2005): likelihood, affect, evaluative
    # superlatives, felt necessity. Not a bare "I don't know": a view on no topic in particular, it
    # came close to every question and joined unrelated passages to answers.
    r"|likely|probably|perhaps|arguably"
    r"|frustrat\w*|fascinat\w*|I (?:truly |really )?(?:appreciate|admire|love)|incredible|remarkable"
    r"|(?:the|some of the) (?:clearest|best|worst|greatest|most \w+|least \w+)|(?:I|we) needed|very much needed)(?!\w)",
    re.IGNORECASE,
)
_KO_CUES = re.compile(
    r"깨달았|배웠|생각했|생각한다|믿는다|회의적|문제야|문제다|역할이야|역할이다|아니야|아니다|아닐\s*수도|"
    r"일\s*수도|모른다|몰라|모르겠|중요하|필요하|답이\s*아|라는\s*것을|뿐이다|않는다|못한다|철학"
    # Obligation, the counterpart of the English "should", "must", "need to": 의심부터 해야 한다.
    r"|야\s*(?:한다|합니다)"
)
_DATE = re.compile(
    r"\b(?:19|20)\d{2}\b|(?:last|this|next) (?:year|week|month)|\w+ (?:months?|weeks?|years?) ago"
    r"|(?:19|20)\d{2}년|작년|지난주|지난달|올해|\d+\s*(?:개월|주|년)\s*전",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class View:
    """One sentence that states a position.

    ``start``/``end``: offsets of the sentence in its source file (``text == file[start:end]``).
    ``when``: the entry's first date expression ("2019", "Last year", "3개월 전"), or "".
    """

    persona: str
    source: str
    title: str
    chunk_id: str
    start: int
    end: int
    text: str
    lang: str
    when: str = ""
    prompt: str = ""  # the question in the writing this view answers, when it answers one

    @property
    def embedded(self) -> str:
        """What the view ranking embeds and matches terms against (agent.pipeline.Agent.views_first):
        "entry title: [question it answers] sentence"; the title carries the topic a short view leaves
        implicit ("Alignment 문제와 밤샘 논쟁: 이건 기술 문제가 아니야.")."""
        return f"{self.title}: {self.prompt} {self.text}" if self.prompt else f"{self.title}: {self.text}"

    @property
    def own(self) -> str:
        """The view's own words, without its entry's title: the question it answers and the sentence."""
        return f"{self.prompt} {self.text}" if self.prompt else self.text


ANSWER_REACH = 3  # sentences after a question in which the writer's answer to it is looked for
QUESTION_WORDS = 3  # shortest question (in words) whose answer is kept as a view on it
_QUESTION_END = re.compile(r"\?[\"”’']?\s*$")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


def _question(text: str) -> bool:
    """A whole sentence that asks (it ends on a question mark, maybe inside the quote), of at least
    ``QUESTION_WORDS`` words, not a list item."""
    return bool(_QUESTION_END.search(text)) and len(text.split()) >= QUESTION_WORDS and not _LIST_MARK.match(text)


_OTHER_EN = re.compile(
    r"^\s*(?:(?:at|in|on|after|then|later|finally)\b[^,]*,\s*)?(?:one|a|an|the|someone|somebody|another|his|her|their"
    r"|he|she|they|everyone)\b",
    re.IGNORECASE,
)
_FIRST_EN = re.compile(r"\b(?:I|me|my|we|us|our)\b")
_QUOTE_MARKS = '"“'


def speaker_is_other(lead_in: str) -> bool:
    """True when ``lead_in`` (the words that introduce a line of speech: the sentence's own words
    before the quote, or the sentence before) gives it to someone other than the writer: an English
    subject that is not the writer ("One reviewer strongly objected.", "A colleague asked,") with no
    first person in it; a Korean subject that is a common noun ("리뷰어 중 한 명이", "팀장이"),
    not a pronoun (나는) nor a name (Raj는). A subject left out (Korean "팀 미팅에서 말했다.") or
    no lead-in at all is the writer's."""
    if not lead_in.strip():
        return False
    if detect_lang(lead_in) == "ko":
        morphs = korean_morphemes(lead_in)
        for i, (_form, tag) in enumerate(morphs):
            if tag in ("JKS", "JX") and i > 0:
                return morphs[i - 1][1] in ("NNG", "NNB")
        return False
    return bool(_OTHER_EN.match(lead_in)) and not _FIRST_EN.search(lead_in)


def states_view(sentence: str) -> bool:
    """True when ``sentence`` carries a stance cue (see the module docstring)."""
    if detect_lang(sentence) == "ko":
        return bool(_KO_CUES.search(sentence))
    return bool(_EN_CUES.search(sentence))


def build_inventory(chunks: Sequence[Chunk]) -> list[View]:
    """Every view sentence of ``chunks``, in reading order; deterministic for the same chunks.

    A chunk's date is the first date expression of its text (entries carry one in their first
    lines; a later chunk of the same entry inherits the entry's, keyed on source and title).
    """
    out: list[View] = []
    entry_date: dict[tuple[str, str], str] = {}
    for c in sorted(chunks, key=lambda c: (c.source, c.start)):
        key = (c.source, c.title)
        if key not in entry_date:
            m = _DATE.search(c.text)
            entry_date[key] = m.group(0) if m else ""
        previous = ""
        asked, since = "", ANSWER_REACH  # the last question the writing put, and sentences since
        for s, e in speech_whole(c.text, split_sentences(c.text, c.start), c.start):
            text, before = c.text[s - c.start : e - c.start], previous
            previous = text
            since += 1
            question = _question(text)
            if question:
                asked, since = text, 0
            if len(text) < 12 or text.startswith("#"):
                continue
            quote_at = min((i for i in (text.find(q) for q in _QUOTE_MARKS) if i >= 0), default=-1)
            speech = False
            # Speech is the writer's view only when the writer says it: the reviewer's "This is just
            # scaling. It's not emergent." is what the writer argued against.
            if quote_at >= 0:
                # Words before the quote introduce speech only when they hand over to it ('A
                # colleague asked, "..."'); else the quote marks a phrase ('The field is not just
                # "scaling".'). A line that opens on speech is introduced
                # by the sentence before, unless that is speech too.
                own = text[:quote_at].rstrip()
                speech = not own or own.endswith((",", ":"))
                lead_in = (own if own.endswith((",", ":")) else "") if own else before
                if lead_in[:1] not in _QUOTE_MARKS and speaker_is_other(lead_in):
                    continue
            stated = states_view(text)
            answers = not question and since <= ANSWER_REACH and (speech or stated)
            if not answers and not stated:
                continue
            prompt = asked if answers else ""
            if answers:
                since = ANSWER_REACH + 1  # one answer per question
            out.append(
                View(
                    persona=c.persona,
                    source=c.source,
                    title=c.title,
                    chunk_id=c.id,
                    start=s,
                    end=e,
                    text=text,
                    lang=detect_lang(text),
                    when=entry_date[key],
                    prompt=prompt,
                )
            )
    return out
