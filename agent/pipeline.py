"""The one place the steps meet: question -> retrieve -> coverage -> backend -> verified, cited answer."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from agent.backends import AnswerRequest, get_backend, resolve_name
from agent.bridge import (
    across,
    glosses,
    hubness,
    known_across,
    reference_words,
    spelled,
    target_words,
    translations,
    unit,
)
from agent.citations import MARKER
from agent.compose import (
    SAME_LANGUAGE,
    VIEW_TERMS,
    Scored,
    SentenceCache,
    asked_terms,
    asks_lesson,
    boost_asked,
    boost_lessons,
    boost_views,
    candidate_sentences,
    question_terms,
    score_windows,
    story_around,
    term_share,
    windows,
)
from agent.coverage import Coverage, abstain_text, assess
from agent.personas import DEFAULT_PERSONA, PersonaCard, get_persona, list_personas
from agent.question import answer_type, asks_next, placed_in, places, understand, without_frame, without_saying
from agent.reasoning import strip_reasoning
from agent.views import View, build_inventory, states_view
from agent.voice import self_names
from knowledge.config import Settings
from knowledge.decode import clean
from knowledge.errors import IndexMissingError, InputError
from knowledge.scan import instruction_like
from knowledge.text import count_tokens, detect_lang, has_hangul, lexical_tokens
from knowledge.types import Answer, Chunk, Retrieved

_FOLLOW_UP = re.compile(
    r"\b(it|that|this|those|these|then|there|he|she|they|them|him|her|why|next|after|before|what about|and)\b"
    r"|^(그|그때|그래서|그럼|그다음|그 다음|왜|다음|이후|그 후)",
    re.IGNORECASE,
)
log = logging.getLogger(__name__)
VIEW_LEXICAL = 0.1  # weight of term overlap against lifted cosine when matching views to a question
# Up to this many chunks a persona's whole view inventory is weighed for a view question; beyond,
# only the views of the chunks the search ranks (Agent._view_pool). The bundled personas have 8-33.
VIEW_POOL_CHUNKS = 256
# How far below the best window in the asker's language another language's window may score and
# still be looked at by Agent.told_once: the composer's preference (SAME_LANGUAGE) for the asker's language,
# plus what agent.compose.rerank_views may add to a view question's window afterwards.
TOLD_ONCE_REACH = SAME_LANGUAGE + VIEW_TERMS
# C0/C1 controls, zero-width characters, bidi overrides and the BOM: invisible, and able to hide text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# A part of a term a refusal may repeat: a word, an acronym, a number, a model-style name (GPT-4o, H100, bf16).
_NAME_PART = re.compile(
    r"[A-Za-z][a-z]*(?:[A-Z][a-z]*)*|[A-Z]{2,}[a-z]?|\d{1,4}[a-z]?|[A-Za-z]{2,}\d+(?:\.\d+)?[a-z]?|[A-Z]\d+"
)


_HANGUL_NAME = re.compile(r"[가-힣]{2,8}")

# Entries (source, title) whose chosen view the composer prefers in a view answer: the leading two.
VIEW_ENTRIES = 2


def only_titles(text: str) -> bool:
    """True when every non-blank line of ``text`` reads as a title (knowledge.loaders.looks_like_title):
    a navigation line or a byline ("Back to All Posts", "Published on August 18, 2025"), not prose."""
    from knowledge.loaders import looks_like_title

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return bool(lines) and all(looks_like_title(line) for line in lines)


def entries(passages: Sequence[Retrieved]) -> list[tuple[str, str]]:
    """The distinct entries ``(source, title)`` of ``passages``, in their order."""
    return list(dict.fromkeys((r.chunk.source, r.chunk.title) for r in passages))


PROMPT_SHARE = 0.5  # least share of a question's terms the question a written answer answers must hold


def asked_here(view: View, weights: dict[str, float]) -> View | None:
    """``view`` as the view ranking weighs it for a question of terms ``weights`` (all its terms,
    agent.compose.question_terms with ``unknown``): a written answer to a question the writing puts
    (``View.prompt``) is a view on that question only when the written question holds at least
    ``PROMPT_SHARE`` of the asker's IDF-weighted terms ("Can a language model be said to think?"
    and 'So is the model "thinking"?'); else it is a view on its own words when they state one
    (agent.views.states_view) and no view at all when they do not ("I don't know. But something
    similar is happening." alone is close to every question). A term the writings never use counts
    against the share: "Will making models ever larger keep paying off?" is not asked by
    'So is the model "thinking"?'."""
    if not view.prompt or term_share(weights, view.prompt) >= PROMPT_SHARE:
        return view
    return dataclasses.replace(view, prompt="") if states_view(view.text) else None


def settle_lead(passages: Sequence[Retrieved], scored: Sequence[Any]) -> list[Retrieved]:
    """``passages`` regrouped by entry, the entries ordered by reciprocal-rank fusion (Cormack et
    al. 2009, agent.retrieve.rrf) of two rankings: their order in ``passages`` (the view ranking,
    ``Agent.views_first``) and the best window score of each (``scored``: agent.compose.Scored over
    these passages, before any view boost). Ties keep the first ranking's order; an entry with no
    window is ranked by the first alone. Same chunks, same length; chunks of one entry keep their order.

    The view ranking judges chunks and single view sentences, the window scorer judges what would
    be quoted: "모델을 키우는 것이 초지능으로 가는 길일까요?" ranked the failed-training entry first
    by views ("그날 나는 배웠다") while its windows scored far below the scaling entry's ("모델 크기를
    2배로 키우면 ..."). Either judge alone misplaces some paraphrased questions; the fused rank
    decides which entry leads the answer."""
    from agent.retrieve import rrf

    order = entries(passages)
    best: dict[tuple[str, str], float] = {}
    for sc in scored:
        chunk = passages[sc.window.passage].chunk
        key = (chunk.source, chunk.title)
        best[key] = max(best.get(key, float("-inf")), sc.score)
    window_rank = {e: r for r, e in enumerate(sorted(best, key=lambda e: -best[e]))}
    fused = {e: rrf(i) + (rrf(window_rank[e]) if e in window_rank else 0.0) for i, e in enumerate(order)}
    settled = sorted(range(len(order)), key=lambda i: (-fused[order[i]], i))
    return [r for i in settled for r in passages if (r.chunk.source, r.chunk.title) == order[i]]


def lead_with_terms(passages: Sequence[Retrieved], scored: Sequence[Any]) -> list[Retrieved]:
    """``passages`` with another entry first when the leading entry's windows hold none of the
    question's terms (``Scored.lexical``; across languages, the bridge's translations) while a
    window holding a chosen view (``Scored.view``, after agent.compose.boost_views) does: its entry,
    that of the best such window, leads ("임포스터 신드롬에 대해 어떻게 생각하세요?" was led by a
    lesson about old papers and the imposter-syndrome paragraph only joined it). When no view
    window holds any of them, the best window that does leads in the same way ("카파시에 대해 어떻게
    생각하세요?": the diarist's section on Karpathy, not "My view"). Same chunks, same length;
    otherwise the order is kept."""
    entry = [(r.chunk.source, r.chunk.title) for r in passages]
    if not entry or any(x.lexical > 0 for x in scored if entry[x.window.passage] == entry[0]):
        return list(passages)
    # A window holding a chosen view and the question's terms; else, when no view window holds any,
    # one holding the question's terms ("카파시에 대해 어떻게 생각하세요?": the section on Karpathy,
    # whose lines the view inventory does not count as stated views, not "My view").
    holding = [x for x in scored if x.view and x.lexical > 0] or [x for x in scored if x.lexical > 0]
    if not holding:
        return list(passages)
    new = entry[max(holding, key=lambda x: x.score).window.passage]
    return sorted(passages, key=lambda r: (r.chunk.source, r.chunk.title) != new)


_NAME_WORD = re.compile(r"\b[A-Z][\w-]*")


def names_entry(question: str, title: str) -> bool:
    """True when ``question`` names the entry ``title`` whole and by a name: every lexical token of
    the title is one of the question's, and one of them comes from a capitalised word that does not
    open an English question ("What do you think of Yann LeCun?" names "Yann LeCun"; "What's your
    view?" does not name "My view"). A Korean question has no capitals but names: every capitalised
    Latin word in it counts."""
    wanted = set(lexical_tokens(title))
    terms, names = _question_names(question)
    return bool(wanted) and wanted <= terms and bool(wanted & names)


@lru_cache(maxsize=256)
def _question_names(question: str) -> tuple[frozenset[str], frozenset[str]]:
    """``(all lexical tokens, tokens of its names)`` of ``question`` for :func:`names_entry`, which
    views_first asks once per candidate passage of one question: tokenised once."""
    words = _NAME_WORD.findall(question)
    if detect_lang(question) != "ko" and words and question.lstrip().startswith(words[0]):
        words = words[1:]
    return frozenset(lexical_tokens(question)), frozenset(lexical_tokens(" ".join(words)))


def speakable(terms: Sequence[str], limit: int = 3) -> tuple[str, ...]:
    """The question's unknown terms a refusal may name: names, not codes like "PWNED-7f3a".

    Repeating an arbitrary string from the question would let anyone make the persona say it.
    """
    ok = [
        t
        for t in terms
        if len(t) <= 30
        and all(_NAME_PART.fullmatch(p) for p in re.split(r"[-' ]", t) if p)
        # Words joined by spaces only as a name ("Google Brain", "Mixture of Experts": "of" and
        # "the" between capitalised words), not a phrase ("blood pressure").
        and (
            " " not in t
            or (
                all(w[:1].isupper() or w[:1].isdigit() or w in ("of", "the") for w in t.split())
                and t.split()[0] not in ("of", "the")
            )
        )
    ]
    return tuple(ok[:limit])


_PHRASE_ENDS = (
    r"(?=\s*(?:[?.!,;:)]|$)|\s+(?:and|or|in|at|on|with|for|to|from|when|while|since|as|if|because|before|after"
    r"|during|that|which|who|go|went|gone|change|changed|has|have|had|is|was|were)\b)"
)


# Words that end a noun phrase rather than modify it: "your answer as HTML" is no "my ... HTML".
_BETWEEN_NOT = r"(?:as|of|in|on|at|to|for|from|with|by|and|or|into|about|than|like)"


def as_asked(terms: Sequence[str], question: str, at: Sequence[str] | None = None) -> tuple[str, ...]:
    """``terms`` (a refusal's unknown terms, agent.question) as an English ``question`` put them:
    with its article ("the Turing Award"), and "your job" as the writer says it, "my job" (with up
    to two words between: "your favorite teacher" -> "my favorite teacher"); a place
    the question puts the writer at (``at``: agent.question.places of it, found here when None) as
    "my time at DeepMind" ("딥마인드에서의 일"): the writings may name it without the writer ever
    being there. Other terms are returned as they are."""
    if at is None:
        at = places(question)
    out = []
    for t in terms:
        if t in at:
            prep = re.search(rf"\b(in)\s+(?:the\s+)?{re.escape(t)}\b", question)
            out.append(f"{t}에서의 일" if has_hangul(question) else f"my time {'in' if prep else 'at'} {t}")
            continue
        # Only where the term ends its noun phrase: "the Mamba paper's claims" is not "the Mamba".
        # Up to two words between ("your favorite teacher" -> "my favorite teacher").
        found = re.search(
            rf"\b(the|your)\s+((?:(?!{_BETWEEN_NOT}\b)[a-z][a-z-]*\s+){{0,2}}){re.escape(t)}\b{_PHRASE_ENDS}",
            question,
            re.IGNORECASE,
        )
        if found and not has_hangul(question):
            out.append(f"{'the' if found.group(1).lower() == 'the' else 'my'} {found.group(2)}{t}")
        else:
            out.append(t)
    return tuple(out)


def clean_question(question: object, max_tokens: int) -> str:
    """The question normalised as source text is (knowledge/decode.py ``clean``: invisible characters
    such as U+200B removed, not turned into spaces, so they never split a word; NFC), other control
    characters turned into spaces; or InputError saying what is wrong with it."""
    if not isinstance(question, str):
        raise InputError(f"the question must be text, not {type(question).__name__}")
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", clean(question))).strip()
    if not text:
        raise InputError('the question is empty: ask something, e.g. "What went wrong in your first big training run?"')
    # Count tokens only when the length could be near the cap: a 100,000-character paste is refused
    # cheaply, and a question of at most ``max_tokens`` UTF-8 bytes passes without loading the
    # tokenizer (a byte-level BPE token covers at least one byte).
    size = len(text.encode("utf-8"))
    if size > max_tokens and (len(text) > max_tokens * 8 or count_tokens(text) > max_tokens):
        raise InputError(
            f"the question is too long ({len(text):,} characters; the limit is {max_tokens:,} tokens): "
            "ask a shorter question (PERSONA_MAX_QUESTION_TOKENS raises the limit)"
        )
    return text


def normalize_history(history: Sequence[Any] | None, limit: int = 8) -> list[dict[str, str]]:
    """History as ``[{"role": "user"|"assistant", "content": str}]``; also takes (user, assistant) pairs.

    An assistant turn loses any reasoning (``<think>…</think>``) a client kept in it.
    """
    if history is not None and not isinstance(history, (list, tuple)):
        raise InputError(
            f"the history must be a list of turns like {{'role': 'user', 'content': '...'}}, "
            f"not {type(history).__name__}"
        )
    out: list[dict[str, str]] = []
    for item in history or []:
        if isinstance(item, dict):
            role, content = item.get("role"), item.get("content")
            if role == "assistant" and isinstance(content, str):
                content = strip_reasoning(content)
            if role in {"user", "assistant"} and isinstance(content, str) and content.strip():
                out.append({"role": str(role), "content": content})
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            user, bot = item
            if isinstance(user, str) and user.strip():
                out.append({"role": "user", "content": user})
            said = strip_reasoning(bot) if isinstance(bot, str) else ""
            if said.strip():
                out.append({"role": "assistant", "content": said})
    return out[-limit:]


Condenser = Callable[[str, list[dict[str, str]]], str]


def standalone_question(
    question: str, history: list[dict[str, str]], condenser: Condenser | None = None
) -> tuple[str, bool]:
    """The follow-up rewritten by the backend's LLM when it has one, else (or if that fails) by the
    heuristic (:func:`condense`); and whether the LLM wrote it (False: the heuristic did)."""
    if condenser is None or not history:
        return condense(question, history), False
    try:
        rewritten = condenser(question, history).strip()
    except Exception as exc:  # an LLM hiccup must not cost the answer: the heuristic still works
        log.info("LLM condensing failed (%s); using the heuristic", exc)
        return condense(question, history), False
    return (rewritten, True) if rewritten else (condense(question, history), False)


# Characters of the reply a follow-up is asked about that its search reads (cut at a word).
REPLY_CHARS = 200


def goes_on(question: str, history: Sequence[dict[str, str]]) -> bool:
    """A follow-up asking what came next (agent.question.asks_next) after a reply of the persona's."""
    return asks_next(question) and any(m.get("role") == "assistant" for m in history)


def condense(question: str, history: list[dict[str, str]], reply: bool = True) -> str:
    """A follow-up ("Why did that happen?", "그 다음엔?") borrows the previous question's subject and
    (``reply``) the opening of the reply it got (up to ``REPLY_CHARS``, markers removed): "그건 어떻게
    극복하셨어요?" (how did you get over *that*?) after "처음엔 임포스터 신드롬이 심했어요." asks
    about what the reply named, which the previous question never did. Without ``reply``: what the
    asker said only, which question understanding reads (agent.question: a name in the persona's
    own reply is no premise of the asker's)."""
    previous = [m["content"] for m in history if m["role"] == "user"]
    if not previous:
        return question
    short = len(question.split()) <= 6 or len(question) <= 20
    if short or _FOLLOW_UP.search(question):
        last = history[-1]["content"] if reply and history[-1]["role"] == "assistant" else ""
        said = " ".join(MARKER.sub("", last).split())
        if len(said) > REPLY_CHARS:
            said = said[:REPLY_CHARS].rsplit(" ", 1)[0]
        return " ".join(p for p in (previous[-1], said, question) if p)
    return question


class Agent:
    """Wires the real parts from one Settings; nothing heavy happens until first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._lock = threading.Lock()
        self._backends: dict[str, Any] = {}

    @cached_property
    def embedder(self) -> Any:
        from knowledge.embedders import get_embedder

        return get_embedder(self.settings)

    @cached_property
    def store(self) -> Any:
        from knowledge.store import Store

        return Store.open(self.settings, self.embedder)

    @cached_property
    def retriever(self) -> Any:
        from agent.retrieve import HybridRetriever

        return HybridRetriever(self.store)

    @cached_property
    def sentence_vectors(self) -> Any:
        """The embedder of candidate sentences and views, its vectors kept on disk under the index
        (knowledge.embedders.PersistentEmbeddings): a fresh process reuses what ``persona ingest``
        or an earlier answer embedded."""
        from knowledge.embedders import PersistentEmbeddings

        return PersistentEmbeddings(self.embedder, self.settings.index_dir / f"vectors-{self.embedder.id}.sqlite")

    @cached_property
    def sentences(self) -> SentenceCache:
        return SentenceCache(self.sentence_vectors)

    def backend(self, name: str) -> Any:
        with self._lock:
            if name not in self._backends:
                self._backends[name] = get_backend(name, self.settings, self)
            return self._backends[name]

    def corpus_text(self, persona: str) -> str:
        """The persona's writings as one text (titles and chunks, normalised as the question is: a
        name saved in NFD or with a zero-width space still counts as written); built once per
        index and kept with it (agent.retrieve), so an ask does not rebuild it."""
        return self.retriever.index(persona).corpus_text

    def idf(self, persona: str) -> dict[str, float]:
        """BM25 idf of every term of the persona's index; built once per index and kept with it."""
        return self.retriever.index(persona).idf  # shared: read it, do not change it

    # --- the pipeline --------------------------------------------------------------------

    def prepare(
        self, question: str, persona: str, history: Sequence[Any] | None, condenser: Condenser | None = None
    ) -> tuple[str, PersonaCard, list[dict[str, str]], str, list[Retrieved], list[Any], Coverage]:
        """Clean the question, understand it (agent.question), retrieve (view passages first for a
        view question), score sentence windows and assess coverage; over one snapshot of each
        persona's index (HybridRetriever.snapshot)."""
        with self.retriever.snapshot():
            return self._prepare(question, persona, history, condenser)

    def _prepare(
        self, question: str, persona: str, history: Sequence[Any] | None, condenser: Condenser | None = None
    ) -> tuple[str, PersonaCard, list[dict[str, str]], str, list[Retrieved], list[Any], Coverage]:
        text = clean_question(question, self.settings.max_question_tokens)
        card = get_persona(persona, self.settings)
        hist = normalize_history(history)
        standalone, rewritten = standalone_question(text, hist, condenser)
        vector = self.embedder.embed_query(standalone)
        idx = self.retriever.index(card.id)
        # The question's words the writings lack, with the writings' words they translate to in the
        # other language (agent.bridge).
        pairs = self._bridge(idx, standalone)
        # A name or loanword spelled in Hangul is the writings' own word (카파시 -> "karpathy"): the
        # BM25 side of the search reads it too, as it would the English spelling. Translations by
        # meaning stay out of the search (the composer's term overlap reads them below).
        spelled_words = [w for _, w, by_spelling in pairs if by_spelling]
        query = " ".join([standalone, *spelled_words])
        passages = self.retriever.retrieve(query, self.settings.top_k, card.id, vector=vector)
        if goes_on(text, hist):
            # "And then?": the story may go on in its entry's next chunk, which the search for the
            # previous answer's words need not find.
            passages = self._with_next(card.id, passages)
        # The index answers the vocabulary look-ups (has_word): a large persona's whole text is
        # never loaded for them.
        # The asker's words are understood, not the persona's own reply that a follow-up's search
        # reads (condense): a name the reply wrote one way ("LinkedIn-popular") is no premise.
        asked = standalone if rewritten else condense(text, hist, reply=False)
        understood = understand(asked, idx, idx.langs, placed=self._placed(card, idx))
        view_offsets: set[tuple[int, int]] = set()
        # The translations are what the term overlap of views and windows reads, each tokenised on
        # its own (agent.compose.score_windows).
        extra = tuple(t for _, w, _ in pairs for t in lexical_tokens(w))
        if "ko" in idx.langs:
            # An English question's words the English writings lack, by the Korean words the Korean
            # ones use for them (agent.bridge.across: "debate" -> 논쟁 of Raj's Korean diary alone).
            extra += tuple(h for heads in across(standalone, idx.lexical.vocabulary).values() for h in heads)
        best_views: dict[tuple[str, str], tuple[int, int]] = {}
        if understood.kind == "view":
            # A question in a language the writings lack meets their views by its words'
            # translations too (:meth:`_with_translations`).
            view_vector = vector if understood.lang in idx.langs else self._with_translations(vector, pairs)
            passages, best_views = self.views_first(
                card.id, without_saying(standalone), view_vector, passages, extra=extra
            )
        # A view question's terms without its opinion frame: "think" of "What do you think about
        # scaling?" is not what it asks about (agent.question.without_frame).
        termed = without_frame(standalone) if understood.kind == "view" else standalone
        scored = self._score(passages, termed, vector, card.id, extra)
        if understood.kind == "view":
            # An entry the question names by its title keeps the lead: its windows may never
            # repeat the name its title gives ("Yann LeCun." heads "His 1989 work ...").
            named = bool(passages) and names_entry(standalone, passages[0].chunk.title)
            settled = list(passages) if named else settle_lead(passages, scored)
            moved = settled[0].chunk.id != passages[0].chunk.id
            if moved and settled[0].chunk.lang != understood.lang and understood.lang in idx.langs:
                # As in views_first, which has looked for the first passage's twin already: the
                # writer's telling in the asker's language leads (two store searches, made only
                # for a new lead).
                twin = self._twin(card.id, settled[0].chunk, understood.lang)
                if twin is not None and any(r.chunk.id == twin.id for r in settled):
                    settled = sorted(settled, key=lambda r: r.chunk.id != twin.id)
            if [r.chunk.id for r in settled] != [r.chunk.id for r in passages]:
                passages = settled
                scored = self._score(passages, termed, vector, card.id, extra)  # passage indices moved
            view_offsets = {best_views[e] for e in entries(passages)[:VIEW_ENTRIES] if e in best_views}
        if view_offsets:
            scored = boost_views(scored, view_offsets)
            relead = lead_with_terms(passages, scored)
            if relead[0].chunk.id != passages[0].chunk.id:
                # The new lead is one of the first VIEW_ENTRIES entries (those whose views are
                # chosen), so the chosen views stay; the windows are scored over the new order.
                passages = relead
                scored = boost_views(self._score(passages, termed, vector, card.id, extra), view_offsets)
        elif understood.kind == "fact":
            # What is asked of the story the question's setting locates ("What did your advisor
            # say when you ran to him about ...?") decides between its windows.
            entry = [(r.chunk.source, r.chunk.title) for r in passages]
            asked_for = asked_terms(standalone, self.idf(card.id))
            scored = boost_asked(
                scored, asked_for, lambda a, b: entry[a] == entry[b], equivalents=self._equivalents(asked_for, idx)
            )
            if asks_lesson(standalone):
                scored = boost_lessons(scored, lambda a, b: entry[a] == entry[b])
        # The question's words the writer used: an English one only in Korean, or a Hangul spelling
        # of a word of the English writings (그로킹 -> "grokking"; agent.bridge.spelled).
        also_known = spelled(pairs)
        if "ko" in idx.langs:
            also_known |= known_across(text, idx.lexical.vocabulary)
        coverage = assess(
            text,
            scored,
            idx,
            detect_lang(text),
            idx.langs,
            understood=understood,
            vocabulary=idx.lexical.vocabulary,
            # An English question's words the writer used only in Korean (Raj's alignment view: "a
            # technical problem" is "기술 문제" in his Korean diary alone) are not words he never used.
            also_known=also_known,
            own_best=self.retriever.best_cosines(card.id, vector),
            cohort_best=self.cohort_best(card.id, vector),
        )
        if coverage.unaddressed:
            # The answer's lead names the topics the writings don't address: names only, never a
            # code the question planted ("XSS-0e9a" of "... inside <svg onload=alert('XSS-0e9a')>").
            coverage = dataclasses.replace(
                coverage, unaddressed=speakable(coverage.unaddressed, len(coverage.unaddressed))
            )
        return text, card, hist, standalone, passages, scored, coverage

    def _with_translations(self, vector: Sequence[float], pairs: Sequence[tuple[str, str, bool]]) -> list[float]:
        """``vector`` (the question's embedding) plus the embedding of its words' translations
        (``pairs``: agent.bridge.translations' triples; their writings' words, by the dictionary,
        a spelling or the embedder, space-joined), each at unit length and weighted alike, the sum at
        unit length; ``vector`` itself when ``pairs`` is empty. Dictionary-based query translation
        for cross-language retrieval (Ballesteros &
        Croft 1997, "Phrasal translation and query expansion techniques for cross-language
        information retrieval"), kept beside the question's own vector rather than replacing it:
        the view ranking compares the question with one short sentence at a time, where the
        embedder's cosines across languages are at their noisiest ("분야의 속도에 압도될 때 ..."
        to the intern led with imposter syndrome, not "community, collaboration, and a learning
        mindset"). Only the view ranking reads it: the abstention rule's features and the window
        scores keep the question's own vector, on which the rule was calibrated."""
        words = list(dict.fromkeys(word for _, word, _ in pairs))
        if not words:
            return list(vector)
        both = unit(np.asarray([vector, self.embedder.embed_query(" ".join(words))], dtype=np.float32))
        return [float(x) for x in unit(both.sum(axis=0, keepdims=True))[0]]

    def bridge(self, persona: str, question: str) -> list[str]:
        """The persona's words that ``question``'s content words the writings never use translate
        to, across English and Korean (agent.bridge): "인턴십" -> ["internship"]. [] for a persona
        above ``agent.retrieve.SCAN_CHUNKS`` chunks (its whole text is never loaded), one whose
        writings hold no text in the other language, and an English question to writings that hold
        English. The target words' vectors are kept per index."""
        return [word for _, word, _ in self._bridge(self.retriever.index(persona), question)]

    def _bridge(self, idx: Any, question: str) -> list[tuple[str, str, bool]]:
        """:meth:`bridge` over a persona's index (``agent.retrieve._PersonaIndex``) already at hand, as
        agent.bridge.translations' ``(question word, writings' word, by spelling)`` triples."""
        from agent.retrieve import SCAN_CHUNKS

        if idx.lexical.n > SCAN_CHUNKS:
            return []

        def targets(lang: str) -> tuple[list[str], list[str], Any, Any]:
            if lang not in idx.bridge_targets:
                words, tokens = target_words(lang, idx.corpus_lower, idx.lexical.terms)
                vecs = unit(self.sentences.embed(words)) if words else None
                # Hubness against the other language's words, whose question words are translated.
                ref = list(reference_words("ko" if lang == "en" else "en"))
                hub = hubness(vecs, unit(self.sentences.embed(ref))) if vecs is not None and ref else None
                idx.bridge_targets[lang] = (words, tokens, vecs, hub)
            return idx.bridge_targets[lang]

        return translations(question, idx.langs, lambda t: t in idx.lexical.term_id, targets, self.sentences.embed)

    def cohort_best(self, persona: str, vector: Sequence[float]) -> dict[str, float]:
        """Per chunk language, the highest cosine between ``vector`` and the cohort's chunks
        ({"en": 0.87, "ko": 0.85}; empty when there is no cohort): what the coverage rule compares
        this persona's best passage against (agent.coverage).

        The cohort is fixed: the *bundled* personas other than this one that are indexed, as a
        fixed impostor cohort in speaker verification's T-norm (Auckenthaler et al. 2000). So a
        persona's answers do not change when a user adds or removes notes of their own (a Korean
        user persona gave Raj a Korean cohort, and his Korean questions were answered or refused
        by another rule), and the eval harness, which indexes its own user personas, measures the
        rule a default install runs. Only when no bundled persona other than this one is indexed
        (a home with the user's own writings alone) are the other indexed personas the cohort."""
        others = [c for c in list_personas(self.settings) if c.id != persona]
        best = self._best_of([c.id for c in others if c.bundled], vector)
        return best if best else self._best_of([c.id for c in others if not c.bundled], vector)

    def _best_of(self, personas: Sequence[str], vector: Sequence[float]) -> dict[str, float]:
        """Per chunk language, the highest cosine between ``vector`` and any chunk of ``personas``
        (those not ingested yet are skipped); {} when none is indexed."""
        best: dict[str, float] = {}
        for other in personas:
            try:
                sims = self.retriever.best_cosines(other, vector)
            except IndexMissingError:  # a persona with a card but nothing ingested yet
                continue
            for lang, sim in sims.items():
                best[lang] = max(sim, best.get(lang, -1.0))
        return best

    def _score(
        self, passages: list[Retrieved], question: str, vector: Sequence[float], persona: str, extra: Sequence[str] = ()
    ) -> list[Any]:
        """The sentence windows of ``passages``, scored (agent.compose.score_windows); a sentence the
        ingest scan would flag (an instruction planted in a source) is never a candidate."""
        sentences = [s for s in candidate_sentences(passages) if instruction_like(s.text) is None]
        titles = [r.chunk.title for r in passages]
        return score_windows(
            question,
            vector,
            windows(sentences),
            self.sentences,
            self.idf(persona),
            extra=extra,
            titles=titles,
            answer_type=answer_type(question),
        )

    def views_first(
        self,
        persona: str,
        question: str,
        vector: Sequence[float],
        passages: list[Retrieved],
        best: int = 2,
        extra: Sequence[str] = (),
    ) -> tuple[list[Retrieved], dict[tuple[str, str], tuple[int, int]]]:
        """``passages`` (the retriever's ranking) plus the chunks of the ``best`` views (agent.views)
        matching ``question``, re-ranked by reciprocal-rank fusion (Cormack et al. 2009) of four
        lists: the retriever's ranking, the view ranking (a chunk ranks by its best view; each
        language ranked on its own, interleaved with the question's first), the chunks whose
        views hold the question's terms (each vote weighted by that share), and the entries the
        question names by their whole title (:func:`names_entry`). When the first is in
        another language than the question, its telling in the question's language (``_twin``)
        takes its place. Also returned: the offsets of the best view of each entry among them,
        keyed by ``(source, title)``; the composer prefers those of the leading entries (see
        ``_prepare``), and the first passage's entry leads a view answer
        (agent.compose.select_spans). Shapes: ``len(passages) <= len(out) <= len(passages) + best + 1``;
        offsets are ``(start, end)`` in the source file.

        A view is scored as "entry title: sentence" (``View.embedded``: the title carries the topic a
        short view leaves implicit, "Alignment 문제와 밤샘 논쟁: 이건 기술 문제가 아니야."; the
        writer's answer to a question the writing puts carries that question too): cosine lifted
        above its language's mean (as agent.compose scores windows), less its hubness, plus
        ``VIEW_LEXICAL`` times the share of the question's IDF-weighted terms (those the writings
        use) it holds, where a question term also matches a longer written word it begins
        ("align" -> "alignment"); ``extra``: the bridge's translations' tokens, matched as the
        question's own (agent.compose.score_windows)."""
        import numpy as np

        from agent.retrieve import rrf

        idx = self.retriever.index(persona)
        pool, inventory = self._view_pool(persona, question, vector, passages)
        chunk_of = {c.id: c for c in pool}
        # Only terms the writings use: a topic they never name is the question kind's business
        # (agent.question), and would otherwise drown the terms a view can match.
        weights = question_terms(question, self.idf(persona), extra)
        whole = question_terms(question, self.idf(persona), extra, unknown=True)
        views = [v for v in (asked_here(v, whole) for v in inventory) if v and instruction_like(v.text) is None]
        if not views:
            return passages, {}
        texts = [v.embedded for v in views]
        vecs = self.sentences.embed(texts)
        q = np.asarray(vector, dtype=np.float32)
        unit = vecs / (np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-9)
        sims = unit @ (q / (np.linalg.norm(q) or 1.0))
        # Hubness correction (CSLS, Conneau et al. 2018, "Word translation without parallel data"):
        # a view close to the views of every other entry is close to every question too; subtract
        # its mean cosine to its k nearest views of other entries.
        pair = unit @ unit.T
        titles = np.asarray([v.title for v in views])
        pair[titles[:, None] == titles[None, :]] = -1.0
        k = min(5, len(views) - 1)
        hub = np.sort(pair, axis=1)[:, -k:].mean(axis=1) if k > 0 else np.zeros(len(views))
        sims = sims - hub
        langs = {v.lang for v in views}
        means = {
            lang: float(np.mean([s for v, s in zip(views, sims, strict=True) if v.lang == lang])) for lang in langs
        }
        lifted = [float(sim) - means[v.lang] for v, sim in zip(views, sims, strict=True)]
        lexical = [term_share(weights, text) for text in texts]  # "entry title: sentence", as embedded
        scores = [x + VIEW_LEXICAL * y for x, y in zip(lifted, lexical, strict=True)]
        # The question's terms in the view sentence itself (not its entry's title): "Is scaling the
        # road to superintelligence?" -> "Scaling might not be the answer."
        own = [term_share(weights, v.own) for v in views]
        # Each language's views are ranked on their own and the lists interleaved, the question's
        # language first, as the retriever interleaves its per-language lists (agent.retrieve): a
        # Korean question about a view both diaries state is led by the Korean entry.
        qlang = detect_lang(question)
        per_lang = [
            sorted((i for i in range(len(views)) if views[i].lang == lang), key=lambda i: -scores[i])
            for lang in sorted(langs, key=lambda lang: lang != qlang)
        ]
        order = [lst[r] for r in range(max(map(len, per_lang))) for lst in per_lang if r < len(lst)]
        # A chunk's view rank is the rank of its best view; the retriever's rank is its place in
        # ``passages``. Either ranker alone misplaces the entry a paraphrased question is about (a
        # hub view like "I don't know either" matches many questions; the retriever misses a view
        # worded far from the question), so the two are fused by reciprocal rank (Cormack et al.
        # 2009, agent.retrieve.rrf) over the retrieved chunks and the chunks of the ``best`` views.
        view_rank: dict[str, int] = {}
        for rank, i in enumerate(order):
            view_rank.setdefault(views[i].chunk_id, rank)
        candidates = list(passages)
        for i in order[:best]:
            cid = views[i].chunk_id
            if cid in chunk_of and all(r.chunk.id != cid for r in candidates):
                candidates.append(Retrieved(chunk=chunk_of[cid], score=scores[i]))
        unseen = len(candidates)
        by_view = sorted(range(len(candidates)), key=lambda j: view_rank.get(candidates[j].chunk.id, len(views)))
        v_rank = {j: r for r, j in enumerate(by_view)}
        fused = {j: rrf(j if j < len(passages) else unseen) + rrf(v_rank[j]) for j in range(len(candidates))}
        # A third ranker: the chunks whose views (with their entry's title) hold the question's
        # terms, by that share, each vote weighted by it; a chunk holding none is not ranked by it
        # (a paraphrase shares no term at all). The small embedder's cosine is a weak judge of a
        # view; a term the writer used is strong evidence ("Is scaling the road to ...?" ->
        # "Scaling might not be the answer."; "align models" -> "Alignment 문제와 밤샘 논쟁").
        held: dict[str, float] = {}
        for v, x in zip(views, lexical, strict=True):
            if x > 0:
                held[v.chunk_id] = max(held.get(v.chunk_id, 0.0), x)
        by_terms = sorted(
            (j for j in range(len(candidates)) if candidates[j].chunk.id in held),
            key=lambda j: -held[candidates[j].chunk.id],
        )
        for r, j in enumerate(by_terms):
            fused[j] += held[candidates[j].chunk.id] * rrf(r)
        # A fourth: the entries the question names by their whole title, a name ("What do you think
        # of Yann LeCun?" -> the entry "Yann LeCun"; "OpenAI's research priorities" -> "OpenAI").
        named = [j for j in range(len(candidates)) if names_entry(question, candidates[j].chunk.title)]
        for r, j in enumerate(named):
            fused[j] += rrf(r)
        reordered = [candidates[j] for j in sorted(fused, key=lambda j: (-fused[j], j))]
        if reordered and reordered[0].chunk.lang != qlang and qlang in idx.langs:
            # The writer told the same story in the asker's language too (Raj's two diaries): that
            # telling leads, so an English question is answered in English.
            twin = self._twin(persona, reordered[0].chunk, qlang)
            if twin is not None:
                reordered = [Retrieved(chunk=twin, score=reordered[0].score)] + [
                    r for r in reordered if r.chunk.id != twin.id
                ]
        # The composer prefers the windows holding the best view (by the view score) of each of
        # the entries of the ``best`` leading passages: the sentence where the writer states the
        # view asked about, wherever in its entry it sits.
        offsets: dict[tuple[str, str], tuple[int, int]] = {}
        for entry in dict.fromkeys((r.chunk.source, r.chunk.title) for r in reordered):
            mine = [i for i, v in enumerate(views) if (v.source, v.title) == entry]
            if mine:
                # Within an entry the title adds the same terms to every view: the view score with
                # the sentence's own terms in place of its title's, and those of the story it sits in
                # (an entry that tells several stories: the one the question's terms are in).
                story = {i: term_share(weights, self._story_of(views[i], chunk_of)) for i in mine}
                top = max(mine, key=lambda i: lifted[i] + VIEW_LEXICAL * (own[i] + story[i]))
                offsets[entry] = (views[top].start, views[top].end)
        return reordered, offsets

    @staticmethod
    def _named(terms: Sequence[str], at: Sequence[str]) -> tuple[str, ...]:
        """The unknown ``terms`` a refusal may name (:func:`speakable`), and the Korean proper nouns
        among the places the question puts the writer at (``at``: agent.question.places, Kiwi's NNP,
        "스탠포드"), which speakable's Latin name parts leave out."""
        hangul = [t for t in at if t in terms and _HANGUL_NAME.fullmatch(t)]
        return tuple(t for t in terms if t in speakable(terms) or t in hangul)[:3]

    @staticmethod
    def _placed(card: PersonaCard, idx: Any) -> Callable[[str], bool] | None:
        """Whether the persona's writings place the writer at a name (agent.question.placed_in), for
        a persona up to SCAN_CHUNKS chunks (its whole text is read); None beyond."""
        from agent.retrieve import SCAN_CHUNKS

        if idx.lexical.n > SCAN_CHUNKS:
            return None
        names = self_names(card.name)
        return lambda name: placed_in(name, idx.corpus_text, names)

    @staticmethod
    def _equivalents(terms: dict[str, float], idx: Any) -> dict[str, frozenset[str]]:
        """For each of ``terms`` (a question's lexical tokens), its equivalents in the persona's other
        language that the writings use (agent.bridge.glosses: "read" -> 읽, "start" -> 시작); {} for
        a persona written in one language only the question is in."""
        out: dict[str, frozenset[str]] = {}
        vocabulary = idx.lexical.vocabulary
        for t in terms:
            other = "en" if has_hangul(t) else "ko"
            if other in idx.langs:
                found = (glosses(t, other) or frozenset()) & vocabulary
                if found:
                    out[t] = frozenset(found)
        return out

    @staticmethod
    def _story_of(view: View, chunk_of: dict[str, Chunk]) -> str:
        """The story of its chunk that ``view`` sits in (agent.compose.story_around); the view's own
        words when its chunk is not at hand."""
        chunk = chunk_of.get(view.chunk_id)
        if chunk is None or not chunk.start <= view.start < chunk.end:
            return view.own
        return story_around(chunk.text, chunk.start, view.start)

    def _view_pool(
        self, persona: str, question: str, vector: Sequence[float], passages: list[Retrieved]
    ) -> tuple[list[Chunk], list[View]]:
        """The chunks whose views ``views_first`` weighs, and those views: all of the persona's
        (the index's chunks and its kept inventory) up to ``VIEW_POOL_CHUNKS``; beyond it, the
        retrieved ``passages`` and the chunks the hybrid search ranks in its first ``depth`` of
        each language (``HybridRetriever.candidates``), with their inventory built now. Weighing
        every view of a large persona would embed all of them on its first view question and hold
        a views x views matrix for the hubness correction (hundreds of GB at 100,000 chunks); the
        pool keeps both bounded."""
        idx = self.retriever.index(persona)
        if idx.lexical.n <= VIEW_POOL_CHUNKS:
            return idx.chunks, idx.views
        pool = {r.chunk.id: r.chunk for r in passages}
        for c in self.retriever.candidates(persona, question, vector):
            pool.setdefault(c.id, c)
        chunks = list(pool.values())
        return chunks, build_inventory(chunks)

    def told_once(
        self, persona: str, passages: Sequence[Retrieved], lang: str, scored: Sequence[Scored] = ()
    ) -> set[int]:
        """The indices of ``passages`` in another language than ``lang`` that have no telling in
        ``lang`` (no :meth:`_twin`) in writings that hold ``lang``: a story only one of Raj's
        diaries tells. The composer's preference for the asker's language (agent.compose.select_spans)
        is there to choose between two tellings of one story, so it does not hold against these.

        With ``scored`` (the windows, agent.compose.score_windows), only the passages whose best
        window comes within ``TOLD_ONCE_REACH`` of the best window in ``lang`` are looked at: the
        preference decides nothing for the others, and each look is two nearest-neighbour
        searches in the store. Empty above ``VIEW_POOL_CHUNKS`` chunks (those searches are Chroma's
        filtered ones, seconds each at 1,000,000 chunks)."""
        idx = self.retriever.index(persona)
        if lang not in idx.langs or len(idx.langs) < 2 or idx.lexical.n > VIEW_POOL_CHUNKS:
            # Above VIEW_POOL_CHUNKS, as for the view pool: each twin look-up is two of Chroma's
            # filtered searches, seconds each at 1,000,000 chunks (benchmarks.scale_ask there: the
            # next questions' median was 23 s with them, 0.26 s without).
            return set()
        near = set(range(len(passages)))
        if scored:
            best: dict[int, float] = {}
            for sc in scored:
                best.setdefault(sc.window.passage, sc.score)
            mine = max((v for p, v in best.items() if passages[p].chunk.lang == lang), default=float("-inf"))
            near = {p for p, v in best.items() if v >= mine - TOLD_ONCE_REACH}
        return {
            i
            for i, r in enumerate(passages)
            if i in near and r.chunk.lang != lang and self._twin(persona, r.chunk, lang) is None
        }

    def _title_in(self, persona: str, chunk: Chunk, lang: str) -> str:
        """The title a refusal names for ``chunk`` when asked in ``lang``: that of its telling in
        ``lang`` (:meth:`_twin`) when the writings tell it in both languages, else its own ("첫
        대규모 모델 학습의 악몽" is "First Steps as a Researcher" to an English question; an entry
        only the Korean diary holds keeps its Korean title)."""
        if chunk.lang == lang or lang not in self.retriever.index(persona).langs:
            return chunk.title
        twin = self._twin(persona, chunk, lang)
        return twin.title if twin is not None and instruction_like(twin.title) is None else chunk.title

    def _with_next(self, persona: str, passages: list[Retrieved]) -> list[Retrieved]:
        """``passages`` with, after each, the next chunk of its entry when there is one and it is
        not among them already (agent.retrieve.HybridRetriever.next_in_entry), at the same score."""
        have = {r.chunk.id for r in passages}
        out: list[Retrieved] = []
        for r in passages:
            out.append(r)
            nxt = self.retriever.next_in_entry(persona, r.chunk)
            if isinstance(nxt, Chunk) and nxt.id not in have:
                have.add(nxt.id)
                out.append(Retrieved(nxt, r.score))
        return out

    def _twin(self, persona: str, chunk: Chunk, lang: str) -> Chunk | None:
        """The chunk of ``lang`` that tells what ``chunk`` tells: the two are each other's nearest
        neighbour across the languages (mutual nearest neighbours, the criterion of bitext mining,
        e.g. Artetxe & Schwenk 2019, "Margin-based parallel corpus mining with multilingual
        sentence embeddings"), by their stored passage vectors; None when there is no such pair."""
        store = self.retriever.store
        near = store.nearest(persona, store.get_vectors(persona, [chunk.id])[0].tolist(), 1, lang=lang)
        if not near or (twin := self.retriever.chunk_by_id(persona, near[0][0])) is None:
            return None
        back = store.nearest(persona, store.get_vectors(persona, [twin.id])[0].tolist(), 1, lang=chunk.lang)
        return twin if back and back[0][0] == chunk.id else None

    def ask_stream(
        self,
        question: str,
        *,
        persona: str = DEFAULT_PERSONA,
        backend: str | None = None,
        history: Sequence[Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text as it is produced, then the final verified ``Answer``.

        ``options``: per-request generation settings for the LLM backends, ``max_tokens`` (int) and
        ``temperature`` (float); the extractive backend has no use for them.
        """
        name = resolve_name(backend, self.settings)
        # A backend with an LLM may rewrite follow-ups itself (``condense(question, history) -> str``).
        condenser = getattr(self.backend(name), "condense", None)
        with self.retriever.snapshot():  # no yield inside: a generator may resume in another context
            text, card, hist, standalone, passages, scored, coverage = self.prepare(
                question, persona, history, condenser
            )
            lang = detect_lang(text)
            told_once = self.told_once(card.id, passages, lang, scored) if coverage.covered else set()
            idx = self.retriever.index(card.id)
            equivalents = across(standalone, idx.lexical.vocabulary) if "ko" in idx.langs else {}
            # Passages that end their entry: after the last line of a story, "And then?" is told so.
            ends = (
                {i for i, r in enumerate(passages) if self.retriever.next_in_entry(card.id, r.chunk) is False}
                if coverage.covered and goes_on(text, hist)
                else set()
            )
            # A planted entry's title may be an instruction too: the refusal never names it. Nor does
            # it name a passage of title-like lines only (a saved page's "Back to All Posts /
            # Published on August 18, 2025"): a navigation line or a byline is not a topic. Inside
            # the snapshot, so _title_in's index look-ups reuse the one already read.
            topics = (
                []
                if coverage.covered
                else list(
                    dict.fromkeys(
                        self._title_in(card.id, r.chunk, lang)
                        for r in passages
                        if instruction_like(r.chunk.title) is None and not only_titles(r.chunk.text)
                    )
                )
            )
        if not coverage.covered:
            at = places(text)  # once: what the refusal may name, and how
            message = abstain_text(
                lang, topics, as_asked(self._named(coverage.unknown_terms, at), text, at), coverage.kind
            )
            yield message
            yield Answer(
                text=message,
                citations=[],
                abstained=True,
                persona=card.id,
                backend=name,
                question=text,
                nearest_topics=topics[:3],
            )
            return
        request = AnswerRequest(
            question=text,
            standalone=standalone,
            persona=card,
            passages=passages,
            history=hist,
            lang=lang,
            context={
                "scored": scored,
                "coverage": coverage,
                "options": dict(options or {}),
                "told_once": told_once,
                "entry_ends": ends,
                # An English question's words the English writings lack, by the Korean words the
                # Korean ones use for them (agent.compose.complement).
                "equivalents": equivalents,
            },
        )
        yield from self.backend(name).stream(request)

    def ask(
        self,
        question: str,
        *,
        persona: str = DEFAULT_PERSONA,
        backend: str | None = None,
        history: Sequence[Any] | None = None,
    ) -> Answer:
        final: Answer | None = None
        for item in self.ask_stream(question, persona=persona, backend=backend, history=history):
            if isinstance(item, Answer):
                final = item
        assert final is not None, "a backend ended without an Answer"
        return final


_agents: dict[Settings, Agent] = {}
_agents_lock = threading.Lock()


def build_agent(settings: Settings | None = None) -> Agent:
    """The composition root; one Agent per distinct Settings is kept for the process."""
    settings = settings or Settings.from_env()
    with _agents_lock:
        agent = _agents.get(settings)
        if agent is None:
            agent = _agents[settings] = Agent(settings)
        return agent


def ask(
    question: str,
    *,
    persona: str = DEFAULT_PERSONA,
    backend: str | None = None,
    history: list[Any] | None = None,
) -> Answer:
    """Ask a persona a question; the answer cites the passages it rests on.

    ``backend``: ``extractive`` (no LLM), ``openai`` (OpenAI or a compatible server), ``local``
    (the bundled GGUF model) or ``auto``/None (openai if configured, else extractive).
    ``history``: earlier turns as ``[{"role": ..., "content": ...}]`` for follow-up questions.
    """
    return build_agent().ask(question, persona=persona, backend=backend, history=history)


def ask_stream(
    question: str,
    *,
    persona: str = DEFAULT_PERSONA,
    backend: str | None = None,
    history: list[Any] | None = None,
) -> Iterator[str | Answer]:
    """Like :func:`ask`, streamed: text pieces as they arrive, then the final ``Answer``."""
    return build_agent().ask_stream(question, persona=persona, backend=backend, history=history)
