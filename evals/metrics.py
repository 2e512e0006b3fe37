"""Evaluation step, answer metrics: pure functions over plain data (retrieval, support, citations, abstention, voice).

Definitions (the report and results.json use these names):

- ``hit@k`` / ``mrr``: over questions with gold passages. A retrieved chunk is a gold hit when its
  source equals a gold source and the gold quote's span in that file overlaps the chunk's
  ``[start, end)``; the rank is the first hit's position (1-based). Empty gold: no value.
- ``faithfulness``: pooled over the claim-making sentences of the answers that did not abstain,
  the share the offline checker supports (hallucination score < its threshold) against the
  passages the answer cites (all of them: "is what it says backed by what it shows?").
  An answer that cites nothing supports none of its claims.
- ``citation_recall`` / ``citation_precision``: ALCE (Gao et al. 2023) with the checker in place of
  NLI, averaged over answers. Recall: a claim sentence counts when the concatenation of *its own*
  cited passages supports it (no citation, or a citation of a passage that does not exist: not
  supported). Precision: a citation is irrelevant when the sentence is not supported by its
  citations jointly, or (several citations) when it alone does not support the sentence and the
  others without it still do. An answer with claims but no citations has precision 0 (as ALCE).
- ``abstention_precision`` / ``abstention_recall``: positive = should abstain (``out_of_scope``).
  False-premise questions are left out: refusing and correcting are both right for them.
- ``false_premise_correction``: a false-premise answer corrects when it abstains, or does not
  affirm the premise. Affirming: a sentence uses a *foreign* premise term (a word of the premise
  that the question uses and the persona's writings never do, e.g. "DeepMind") without a
  negation in that sentence. With no foreign term (the premise distorts something written, or
  the question words it in Korean) the answer must state at least one of the item's key facts.
- ``key_fact_recall``: share of the key facts found (case-insensitive) in the answer text; for
  cross-lingual items a fact found in a cited quote counts too.
- ``first_person``: share of answers with a first-person marker of the answer's language
  (en: I/my/me/mine/myself; ko: 저/제/나/내 as words, with or without a particle).
- ``no_assistant_speak``: share of answers free of assistant phrases ("As an AI", "Certainly!").
- ``style_margin``: cosine of the answer's embedding to its persona's chunk centroid minus the
  highest cosine to another persona's centroid; mean over answers that did not abstain.
- ``stance_agreement``: over the stance inventory (evals/datasets/stances.jsonl, kind
  ``stance_inventory``), answers that state the view asked for: not abstained, a citation from the
  view's entry, and one of its key phrases in the answer or its cited quotes.
- ``abstention_*``: positive = should abstain: ``out_of_scope`` and ``off_persona`` (another
  persona's subject asked of this one).
- Voice (lower is better, not gated as shares): ``third_person_refs`` (the writer's own name used
  outside quoted speech in the answer's words, summed), ``markers_in_speech`` (``[n]`` inside
  double-quoted speech, summed), ``median_markers`` and ``median_words`` (per answer that did not
  abstain), and ``burrows_delta`` (evals.run: Burrows' Delta, Burrows 2002, between a persona's
  answers and its own writing, next to the nearest other persona's; faststylometry).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.checker import claim_text, split_sentences

Span = tuple[str, int, int]  # (source, start, end): a gold quote or a chunk in its file
KS = (1, 3, 5)

MARKER = re.compile(r"\[(\d{1,3})\]")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d{1,3}\])+")
# "Here is what I wrote about that: In 2019, ..." is a framing clause and a claim: a colon
# followed by white space ends a sentence, so the framing part is seen as making no claim.
_COLON = re.compile(r"(?<=:)\s+")


# ---------------------------------------------------------------------------------------
# Retrieval
# ---------------------------------------------------------------------------------------


def gold_spans(gold: Iterable[Mapping[str, Any]], read: Callable[[str], str]) -> list[Span]:
    """``(source, start, end)`` of each gold quote (``read(source)`` gives the file's text).

    A quote not found verbatim in its file yields no span (the dataset tests catch that case).
    """
    spans: list[Span] = []
    for g in gold:
        source, quote = str(g["source"]), str(g["quote"])
        try:
            i = read(source).find(quote)
        except OSError:
            continue
        if i >= 0 and quote:
            spans.append((source, i, i + len(quote)))
    return spans


def overlaps_gold(source: str, start: int, end: int, spans: Iterable[Span]) -> bool:
    """True when ``[start, end)`` of ``source`` overlaps a gold span of the same source."""
    return any(s == source and start < e and b < end for s, b, e in spans)


def first_hit_rank(retrieved: Sequence[Span], spans: Sequence[Span]) -> int | None:
    """1-based rank of the first retrieved chunk that is a gold hit; None when none is."""
    for rank, (source, start, end) in enumerate(retrieved, start=1):
        if overlaps_gold(source, start, end, spans):
            return rank
    return None


def hit_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank else 0.0


# ---------------------------------------------------------------------------------------
# Sentences and citations
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerSentence:
    text: str  # the sentence without its [n] markers
    markers: tuple[int, ...]  # its citation numbers, in order of use
    claim: bool  # makes a checkable claim (framing lines and fillers do not)


def strip_markers(text: str) -> str:
    """``text`` without ``[n]`` markers and the spaces they leave ("bug [1]." -> "bug.")."""
    body = re.sub(r"\s+([.,!?;:。！？])", r"\1", MARKER.sub("", text))
    return re.sub(r"[ \t]{2,}", " ", body).strip()


def split_answer(text: str) -> list[AnswerSentence]:
    """Sentences of an answer with their markers. A marker written after the period
    ("... bug. [1]") belongs to the sentence before it, as readers take it; and one marker closing
    a run of claim sentences ("It exploded. It was a bug. [1]": one quoted span, one marker) covers
    the unmarked claims of that run, back to the previous marker or the framing line that opens the
    run. A framing line inside the run (the quote's own "I wrote in my notes:" between its claims)
    is part of it: only one that opens the answer or follows a marker ends the run."""
    out: list[AnswerSentence] = []
    for a, b in split_sentences(text):
        for part in _COLON.split(text[a:b]):
            lead = _LEADING_MARKERS.match(part)
            if lead and out:
                prev = out[-1]
                extra = tuple(int(m) for m in MARKER.findall(lead.group(0)))
                out[-1] = AnswerSentence(prev.text, tuple(dict.fromkeys(prev.markers + extra)), prev.claim)
                part = part[lead.end() :]
            body = strip_markers(part)
            markers = tuple(dict.fromkeys(int(m) for m in MARKER.findall(part)))
            if not re.search(r"[^\W_]", body):
                if markers and out:
                    prev = out[-1]
                    out[-1] = AnswerSentence(prev.text, tuple(dict.fromkeys(prev.markers + markers)), prev.claim)
                continue
            out.append(AnswerSentence(body, markers, bool(claim_text(body))))
    carry: tuple[int, ...] = ()
    for i in range(len(out) - 1, -1, -1):
        s = out[i]
        if s.markers:
            carry = s.markers
        elif not s.claim:
            if i == 0 or out[i - 1].markers or not out[i - 1].claim:
                carry = ()  # it opens a run: the claims before it belong elsewhere
        elif carry:
            out[i] = AnswerSentence(s.text, carry, s.claim)
    return out


@dataclass(frozen=True)
class CitedSentence:
    """One claim sentence as ALCE sees it, with the judge's verdicts already made.

    ``valid[i]``: passage ``markers[i]`` exists. ``supported``: the concatenation of the cited
    passages supports the sentence. ``alone[i]`` / ``without[i]``: passage i alone supports it /
    the other citations without i support it (only read when several citations and supported).
    """

    markers: tuple[int, ...]
    valid: tuple[bool, ...]
    supported: bool
    alone: tuple[bool, ...] = ()
    without: tuple[bool, ...] = ()

    @property
    def recalled(self) -> bool:
        return bool(self.markers) and all(self.valid) and self.supported


def citation_recall(sentences: Sequence[CitedSentence]) -> float | None:
    """Share of claim sentences supported by their own citations; None without claims."""
    if not sentences:
        return None
    return sum(s.recalled for s in sentences) / len(sentences)


def relevant_citations(s: CitedSentence) -> int:
    """How many of the sentence's citations are relevant (ALCE's two conditions)."""
    if not s.recalled:
        return 0
    if len(s.markers) == 1:
        return 1
    return sum(1 for a, w in zip(s.alone, s.without, strict=True) if a or not w)


def citation_precision(sentences: Sequence[CitedSentence]) -> float | None:
    """Share of citations that are relevant; None without claims, 0 when claims cite nothing."""
    if not sentences:
        return None
    total = sum(len(s.markers) for s in sentences)
    if total == 0:
        return 0.0
    return sum(relevant_citations(s) for s in sentences) / total


def faithfulness(supported: Sequence[bool]) -> float | None:
    """Share of claim sentences supported; None when there is no claim."""
    return sum(supported) / len(supported) if supported else None


# ---------------------------------------------------------------------------------------
# Abstention and false premises
# ---------------------------------------------------------------------------------------


def abstention_scores(pairs: Iterable[tuple[bool, bool]]) -> tuple[float | None, float | None]:
    """(precision, recall) of abstaining from ``(should_abstain, abstained)`` pairs.

    Precision is None when nothing abstained, recall None when nothing should have.
    """
    tp = fp = fn = 0
    for should, did in pairs:
        tp += should and did
        fp += did and not should
        fn += should and not did
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


_STOP = frozenset(
    """the a an and or of in on at to for with from by was were is are be been has have had
    his her their its your you our my me this that these those who which what about into than
    then there very just only really work works worked using used""".split()
)
_NEG = re.compile(
    r"\b(?:not|no|never|none|nothing|neither|nor|cannot|didn't|don't|doesn't|wasn't|weren't|haven't|hasn't"
    r"|isn't|aren't|won't|wouldn't)\b|n['’]t\b|않|없|아니|아닌|안 |못",
    re.I,
)
_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def premise_terms(premise: str | None, corpus: str, question: str | None = None) -> list[str]:
    """Stems of the premise's words (3+ letters, not function words) that ``corpus`` never uses
    and, when ``question`` is given, that the question itself uses: the asker's false term
    ("DeepMind", "rejected"), not a word of the premise's paraphrase ("made", "gave")."""
    if not premise:
        return []
    lowered = corpus.lower()
    asked = None if question is None else question.lower()
    out: list[str] = []
    for w in _WORDS.findall(premise):
        lw = w.lower()
        if len(lw) < 3 or lw in _STOP:
            continue
        stem = _stem(lw)
        if stem not in lowered and (asked is None or re.search(rf"(?<![a-z0-9]){re.escape(stem)}", asked)):
            out.append(stem)
    return list(dict.fromkeys(out))


def affirms_premise(answer: str, terms: Sequence[str]) -> bool:
    """A sentence of the answer uses a premise term with no negation in that sentence."""
    if not terms:
        return False
    for a, b in split_sentences(answer):
        sentence = answer[a:b]
        uses = any(re.search(rf"(?<![A-Za-z0-9]){re.escape(t)}", sentence, re.I) for t in terms)
        if uses and not _NEG.search(sentence):
            return True
    return False


def premise_corrected(answer: str, abstained: bool, terms: Sequence[str], key_facts_found: int) -> bool:
    """See the module docstring: abstains, or neither affirms a foreign premise term nor (when
    the premise has none) fails to state any key fact."""
    if abstained:
        return True
    if terms:
        return not affirms_premise(answer, terms)
    return key_facts_found > 0


# ---------------------------------------------------------------------------------------
# Key facts and voice
# ---------------------------------------------------------------------------------------


def key_facts_found(facts: Sequence[str], answer: str, quotes: Sequence[str] = ()) -> list[str]:
    """The facts found, case-insensitively, in the answer (or in ``quotes`` when given)."""
    hay = [answer.lower(), *(q.lower() for q in quotes)]
    return [f for f in facts if any(f.lower() in h for h in hay)]


def key_fact_recall(facts: Sequence[str], answer: str, quotes: Sequence[str] = ()) -> float | None:
    """Share of ``facts`` found; None when the item lists none."""
    if not facts:
        return None
    return len(key_facts_found(facts, answer, quotes)) / len(facts)


# Korean first-person pronouns as words, optionally with a particle: 저는, 제가, 제 생각, 내가, 나도.
_KO_FIRST = re.compile(r"(?<![\w])(?:저|제|나|내)(?:는|가|의|를|도|에게|한테|게)?(?![\w])")
# "I" must be the capital pronoun: a lower-case "i" in "i.e." is no first person.
_EN_I = re.compile(r"\bI\b")
_EN_OTHER = re.compile(r"\b(?:my|me|mine|myself)\b", re.I)

ASSISTANT_SPEAK = re.compile(
    r"\bas an? (?:ai|a\.i\.|artificial intelligence|language model|assistant)\b"
    r"|\bi(?:'m| am) (?:just )?an? (?:ai|assistant|language model|chatbot|virtual assistant)\b"
    r"|\bas a (?:large )?language model\b"
    r"|(?:^|[.!?]\s+)(?:certainly|sure|absolutely|of course)!"
    r"|\bi hope (?:this|that) helps\b|\bgreat question\b|\bhappy to help\b|\bhow can i (?:help|assist)\b"
    r"|저는\s*(?:ai|인공지능|어시스턴트|언어\s*모델|챗봇)|ai\s*(?:로서|어시스턴트)|도움이\s*되(?:었으면|셨으면|길)",
    re.I | re.M,
)


def markers_in_speech(text: str) -> int:
    """``[n]`` markers that sit inside double-quoted speech (straight or curly quotes)."""
    count = 0
    inside = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            inside = not inside
        elif ch == "“":
            inside = True
        elif ch == "”":
            inside = False
        elif ch == "[" and inside:
            m = MARKER.match(text, i)
            if m:
                count += 1
                i = m.end()
                continue
        i += 1
    return count


def third_person_refs(text: str, names: Sequence[str]) -> int:
    """The writer's ``names`` used outside double-quoted speech in ``text`` (an answer with its
    markers). Quoted sources are not excused: an extractive answer's words are its quotes, rewritten
    into first person (agent.voice), and must not name the writer either."""
    if not names:
        return 0
    mask: list[bool] = []
    inside = False
    for ch in text:
        if ch == '"':
            inside = not inside
            mask.append(True)
            continue
        if ch == "“":
            inside = True
        mask.append(inside)
        if ch == "”":
            inside = False
    pattern = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(n) for n in names) + r")(?![A-Za-z])")
    return sum(1 for m in pattern.finditer(text) if not mask[m.start()])


def answer_words(text: str) -> int:
    """Length of an answer in words (white-space separated, markers removed)."""
    return len(strip_markers(text).split())


def stance_agrees(
    abstained: bool,
    cited_entries: Sequence[tuple[str, str]],
    view_entries: Sequence[tuple[str, str]],
    key_phrases: Sequence[str],
    answer: str,
    quotes: Sequence[str] = (),
) -> bool:
    """The answer states the view: it did not abstain, cites a passage of one of the view's entries
    (``(source, title)`` pairs) and holds one of ``key_phrases`` (case-insensitive) in its text
    or cited quotes."""
    if abstained:
        return False
    if not set(cited_entries) & set(view_entries):
        return False
    hay = [answer.lower(), *(q.lower() for q in quotes)]
    return any(k.lower() in h for k in key_phrases for h in hay)


def first_person(text: str, lang: str) -> bool:
    """A first-person marker of ``lang`` (en or ko) in ``text``."""
    if lang == "ko":
        return bool(_KO_FIRST.search(text))
    return bool(_EN_I.search(text) or _EN_OTHER.search(text))


def assistant_speak(text: str) -> bool:
    return bool(ASSISTANT_SPEAK.search(text))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def style_margin(answer: Sequence[float], own: Sequence[float], others: Sequence[Sequence[float]]) -> float | None:
    """cos(answer, own centroid) - max cos(answer, another persona's centroid); None without others."""
    if not others:
        return None
    return cosine(answer, own) - max(cosine(answer, o) for o in others)


# ---------------------------------------------------------------------------------------
# Aggregation over a slice of scored items
# ---------------------------------------------------------------------------------------

# Every figure results.json reports per slice, in display order; all are "higher is better".
METRICS = (
    "hit@1",
    "hit@3",
    "hit@5",
    "mrr",
    "faithfulness",
    "citation_recall",
    "citation_precision",
    "gold_cited",
    "abstention_precision",
    "abstention_recall",
    "false_premise_correction",
    "key_fact_recall",
    "first_person",
    "no_assistant_speak",
    "lang_match",
    "style_margin",
    "stance_agreement",
)
SHOULD_ABSTAIN = frozenset({"out_of_scope", "off_persona"})


def _median(values: Iterable[float | int | None]) -> float | None:
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def _mean(values: Iterable[float | bool | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def summarize(scores: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Slice figures from per-item ``scores`` dicts (as evals.run builds them).

    Keys read: ``answerable``, ``rank``, ``abstained``, ``kind``, ``claims``, ``supported_claims``,
    ``citation_recall``, ``citation_precision``, ``gold_cited``, ``premise_corrected``,
    ``key_fact_recall``, ``first_person``, ``assistant_speak``, ``lang_match``, ``style_margin``,
    ``error``, and optionally ``llm_faithfulness`` / ``llm_status``. A figure with nothing to
    measure in the slice is None.
    """
    answered = [s for s in scores if not s.get("error")]
    retrieval = [s for s in scores if s.get("answerable")]
    out: dict[str, Any] = {"n": len(scores)}
    for k in KS:
        out[f"hit@{k}"] = _mean(hit_at(s.get("rank"), k) for s in retrieval)
    out["mrr"] = _mean(reciprocal_rank(s.get("rank")) for s in retrieval)
    spoke = [s for s in answered if not s.get("abstained")]
    claims = sum(int(s.get("claims", 0)) for s in spoke)
    out["faithfulness"] = sum(int(s.get("supported_claims", 0)) for s in spoke) / claims if claims else None
    out["citation_recall"] = _mean(s.get("citation_recall") for s in spoke)
    out["citation_precision"] = _mean(s.get("citation_precision") for s in spoke)
    out["gold_cited"] = _mean(s.get("gold_cited") for s in spoke if s.get("answerable"))
    judged = [s for s in scores if s.get("kind") != "false_premise"]
    pairs = [(s.get("kind") in SHOULD_ABSTAIN, bool(s.get("abstained"))) for s in judged]
    out["abstention_precision"], out["abstention_recall"] = abstention_scores(pairs)
    premises = [s for s in scores if s.get("kind") == "false_premise"]
    out["false_premise_correction"] = _mean(s.get("premise_corrected") for s in premises)
    out["key_fact_recall"] = _mean(s.get("key_fact_recall") for s in scores)
    out["first_person"] = _mean(s.get("first_person") for s in answered)
    out["no_assistant_speak"] = _mean(not s.get("assistant_speak") for s in answered)
    out["lang_match"] = _mean(s.get("lang_match") for s in answered)
    out["style_margin"] = _mean(s.get("style_margin") for s in spoke)
    out["stance_agreement"] = _mean(s.get("stance_agreement") for s in answered)
    # Views asked with a topic the writings never name: refusing them is the failure the issue names.
    out["unnamed_topic_refusals"] = sum(1 for s in answered if s.get("kind") == "unnamed_topic" and s.get("abstained"))
    out["third_person_refs"] = sum(int(s.get("third_person_refs") or 0) for s in spoke)
    out["markers_in_speech"] = sum(int(s.get("markers_in_speech") or 0) for s in spoke)
    out["median_markers"] = _median(s.get("markers") for s in spoke)
    out["median_words"] = _median(s.get("words") for s in spoke)
    out["abstention_rate"] = _mean(bool(s.get("abstained")) for s in scores)
    out["errors"] = len(scores) - len(answered)
    out["counts"] = {
        "retrieval": len(retrieval),
        "claims": claims,
        "should_abstain": sum(1 for should, _ in pairs if should),
        "abstain_judged": len(pairs),
        "false_premise": len(premises),
        "key_facts": sum(1 for s in scores if s.get("key_fact_recall") is not None),
    }
    if any("llm_status" in s for s in scores):
        by_llm = [s for s in scores if s.get("llm_status") == "ok"]
        out["llm_faithfulness"] = _mean(s.get("llm_faithfulness") for s in by_llm)
        # Answer level: both call the answer fully supported, or both find an unsupported claim.
        both = [s for s in by_llm if s.get("llm_faithfulness") is not None and s.get("claims")]
        out["llm_agreement"] = _mean(
            (s.get("supported_claims") == s.get("claims")) == (s.get("llm_faithfulness") == 1.0) for s in both
        )
        out["counts"]["llm_judged"] = len(by_llm)
        out["counts"]["llm_unavailable"] = sum(1 for s in scores if s.get("llm_status") == "unavailable")
    return out


def by(scores: Sequence[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """``summarize`` per value of ``key`` (persona, lang, kind, backend), in sorted order."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for s in scores:
        groups.setdefault(str(s.get(key)), []).append(s)
    return {k: summarize(v) for k, v in sorted(groups.items())}
