"""Coverage: do the writings answer this question at all, and does it rest on a premise they lack?

The abstention rule is a logistic model over a few retrieval signals; its weights and threshold
are fitted on labelled questions by ``python -m evals calibrate-abstain`` and stored in
``agent/abstain.json``, not guessed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from agent.compose import Scored
from agent.question import Question, Writings, understand, without_frame
from knowledge.text import english_lemmas, has_hangul, lexical_tokens

CALIBRATION = Path(__file__).with_name("abstain.json")
FEATURES = ("best_dense", "top3_lift", "best_lexical", "cross", "unknown_share", "view", "cohort_margin")


@dataclass(frozen=True)
class Coverage:
    covered: bool
    probability: float  # that the writings answer the question
    features: dict[str, float]
    unknown_terms: tuple[str, ...] = ()  # terms of a premise or an outside question that no writing mentions
    kind: str = "fact"  # agent.question.KINDS
    unaddressed: tuple[str, ...] = ()  # a view question's topics the writings never name
    event: str = ""  # an event a fact question presupposes that the writings never tell (agent.question)

    @property
    def false_premise(self) -> bool:
        return bool(self.unknown_terms)


@lru_cache(maxsize=1)
def _calibration() -> dict[str, object]:
    if CALIBRATION.exists():
        return json.loads(CALIBRATION.read_text("utf-8"))  # type: ignore[no-any-return]
    # Before calibration: a rule that abstains only when nothing stands out at all.
    return {"weights": {"best_lift": 60.0, "best_lexical": 2.0}, "bias": -2.0, "threshold": 0.5}


def features(
    scored: list[Scored],
    question_lang: str = "en",
    persona_langs: tuple[str, ...] = (),
    question: str = "",
    vocabulary: frozenset[str] | set[str] | None = None,
    is_view: bool = False,
    own_best: dict[str, float] | None = None,
    cohort_best: dict[str, float] | None = None,
    skip: frozenset[str] = frozenset(),
    also_known: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Signals of coverage. ``cross`` marks a question the writings can only answer in another
    language: cosines across languages run lower for the same relevance, so the rule must know.
    ``unknown_share``: the share of the question's content words the writings never use, in any of
    their dictionary forms (knowledge.text.lemma_tokens: "larger" is known to writings that say
    "large") (0 when
    the question is in another language than the writings, or no ``vocabulary`` is given); the
    tokens in ``skip`` are left out of it, and those in ``also_known`` count as used (the English
    words whose Korean equivalents the writings use, agent.bridge.known_across, and the Hangul
    spellings of the writings' English words, agent.bridge.spelled).
    ``view``: 1 for a view question (agent.question), whose opinion frame matches nothing.
    ``cohort_margin`` (cosine units): :func:`cohort_margin` of ``own_best`` and ``cohort_best``."""
    cross = 0.0 if question_lang in persona_langs else 1.0
    margin = cohort_margin(own_best or {}, cohort_best or {})
    unknown = 0.0
    if vocabulary is not None and question and not cross:
        words = [t for t in lexical_tokens(question) if t not in _FRAME and t not in skip]
        if words:
            # An English word whose dictionary form the writings use is known ("larger" of a question,
            # "large-scale" of the writings): Snowball stems leave comparatives and irregular verbs apart.
            lemmas = english_lemmas(question) if not has_hangul(question) else {}
            unknown = sum(
                1
                for t in words
                if t not in vocabulary and t not in also_known and not lemmas.get(t, frozenset()) & vocabulary
            ) / len(words)
    if not scored:
        return {name: 0.0 for name in FEATURES} | {
            "cross": cross,
            "unknown_share": unknown,
            "view": float(is_view),
            "cohort_margin": margin,
        }
    by_lift = sorted((s.lift for s in scored), reverse=True)
    return {
        "best_dense": max(s.dense for s in scored),
        "top3_lift": sum(by_lift[:3]) / min(3, len(by_lift)),
        "best_lexical": max(s.lexical for s in scored),
        "cross": cross,
        "unknown_share": unknown,
        "view": float(is_view),
        "cohort_margin": margin,
    }


def cohort_margin(own_best: dict[str, float], cohort_best: dict[str, float]) -> float:
    """How much better this persona's writings match the question than the other personas' do:
    for each chunk language both sides have, this persona's best cosine less the best cosine of
    any other persona's chunk in that language; the largest of these (cosine units, about
    -0.1..0.1 with the bundled embedder). A language of this persona's that no other persona
    writes in counts 0.0: no cohort there, no evidence either way (Raj is the only bundled persona
    with Korean chunks, and a Korean question to him was weighed against his English chunks
    alone). 0.0 when there are no other personas. The cohort is the bundled personas
    (``Agent.cohort_best``), so user notes never move another persona's margin.

    Cohort normalisation, as in speaker verification's cohort/T-norm scoring (Auckenthaler et al.
    2000, "Score normalization for text-independent speaker verification systems"): a raw cosine
    says little on its own (every question sits near 0.83-0.88 to every chunk with the offline
    embedder), but a question another persona's writings answer better is another persona's
    subject. Comparing within one chunk language keeps the embedder's same-language preference
    out of it: an English question to Korean notes is weighed against other Korean chunks.
    ``own_best`` / ``cohort_best``: {lang: best cosine}, as ``HybridRetriever.best_cosines``."""
    if not cohort_best:
        return 0.0
    margins = [own_best[lang] - cohort_best[lang] if lang in cohort_best else 0.0 for lang in own_best]
    return max(margins) if margins else 0.0


def probability(feats: dict[str, float]) -> float:
    cal = _calibration()
    weights = cal["weights"]
    assert isinstance(weights, dict)
    z = float(cal.get("bias", 0.0)) + sum(float(w) * feats.get(name, 0.0) for name, w in weights.items())  # type: ignore[arg-type]
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def threshold() -> float:
    return float(_calibration().get("threshold", 0.5))  # type: ignore[arg-type]


def unknown_terms(question: str, corpus_text: str) -> tuple[str, ...]:
    """Names, acronyms and years in the question that appear nowhere in the persona's writings.

    "Tell me about your years at DeepMind" -> ("DeepMind",) when no entry mentions DeepMind.
    Whether such a term is a premise, a topic of a view question or an outside subject is
    decided by agent.question.understand.
    """
    from agent.question import foreign_names

    return foreign_names(question, corpus_text.lower())


# Words that frame an opinion question rather than name its subject ("What role does X play in Y?":
# X and Y are the subject).
_FRAME = frozenset(
    lexical_tokens(
        "what do you think make feel believe view take opinion position stance thoughts agree consider expect see "
        "would say recommend how should is it worth okay wise true better possible really actually about of on "
        "road way answer good bad right wrong always ever never next best most role play part"
    )
)


def speaks_to(
    q: Question,
    vocabulary: frozenset[str] | set[str],
    persona_langs: tuple[str, ...],
    also_known: frozenset[str] = frozenset(),
) -> bool:
    """False when a view question names nothing the writings use once its unaddressed topics and
    its opinion frame are set aside ("What do you think about the EU AI Act?"); True otherwise,
    and always when the question's language is not one of the writings' (words cannot be compared).
    A Korean word of a Korean question to writings that hold English too is not judged by it: the
    writer may have used its English ("GPT-4는 정말 추론한다고 보세요?" to Raj, whose Korean diary
    never says 추론 and whose English one says "reason"); the calibrated rule decides alone then.
    An English word in ``also_known`` is used (agent.bridge.known_across: the writer used its Korean)."""
    if q.kind != "view" or not q.unaddressed or q.lang not in persona_langs:
        return True
    topic = set(lexical_tokens(" ".join(q.unaddressed)))
    frame = frame_tokens(q.text)
    rest = [t for t in lexical_tokens(q.text) if t not in topic and t not in _FRAME and t not in frame]
    other = q.lang == "ko" and "en" in persona_langs
    return any(t in vocabulary or t in also_known or (other and has_hangul(t)) for t in rest)


@lru_cache(maxsize=256)
def frame_tokens(question: str) -> frozenset[str]:
    """The lexical tokens of ``question`` only its opinion frame holds (agent.question.without_frame):
    "믿" of "벤치마크를 믿으세요?", "trust" of "Do you trust benchmarks?". Cached: assess and
    speaks_to both ask for one question's."""
    return frozenset(lexical_tokens(question)) - frozenset(lexical_tokens(without_frame(question)))


def assess(
    question: str,
    scored: list[Scored],
    corpus_text: str | Writings,
    question_lang: str = "en",
    persona_langs: tuple[str, ...] = (),
    understood: Question | None = None,
    vocabulary: frozenset[str] | set[str] | None = None,
    own_best: dict[str, float] | None = None,
    cohort_best: dict[str, float] | None = None,
    also_known: frozenset[str] = frozenset(),
) -> Coverage:
    """Whether to answer: a premise, outside or off-topic question abstains; a view question
    naming a topic the writings lack is answered from the nearest stated view when the calibrated
    relevance rule says the retrieved passages address it. ``corpus_text``: the writings (their
    text, or a :class:`agent.question.Writings` such as the persona's index), read only when
    ``understood`` is not given. ``own_best`` / ``cohort_best``: the
    best chunk cosine per language of this persona and of the other indexed personas
    (:func:`cohort_margin`); without them the margin is 0. ``also_known``: question words the
    writings use in another language (agent.bridge.known_across), counted as theirs."""
    q = understood or understand(question, corpus_text, persona_langs or (question_lang,))
    # The names the writings lack are the question kind's business (a premise, an outside subject,
    # a view's unaddressed topic): the unknown-word share reads the rest of the question. Their
    # tokens are left out, not their text: cutting "RLHF" out of "RLHF로" would leave the particle
    # "로" to be read as a word the writings lack.
    skip = frozenset(lexical_tokens(" ".join(q.foreign)))
    if q.kind == "view":
        # Nor is a view question's opinion frame read ("믿으세요?" of "벤치마크를 믿으세요?", "do you
        # trust"): the writings using 믿 or "trust" somewhere says nothing of the topic.
        skip |= frame_tokens(q.text)
    feats = features(
        scored,
        question_lang,
        persona_langs,
        q.text,
        vocabulary,
        q.kind == "view",
        own_best,
        cohort_best,
        skip,
        also_known,
    )
    p = probability(feats)
    if q.kind in ("premise", "outside"):
        blocked = q.premise or q.foreign
        return Coverage(False, p, feats, unknown_terms=blocked, kind=q.kind)
    relevant = p >= threshold()
    if vocabulary is not None and not speaks_to(q, vocabulary, persona_langs or (question_lang,), also_known):
        relevant = False
    return Coverage(relevant, p, feats, kind=q.kind, unaddressed=q.unaddressed, event=q.event)


def name_list(names: Sequence[str], lang: str) -> str:
    """Names as a refusal says them: "A", "A or B", "A, B or C" in English; "A, B" in Korean
    (whose "or", 이나/나, would depend on the last syllable)."""
    if lang == "ko" or len(names) < 2:
        return ", ".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def abstain_text(lang: str, topics: list[str], unknown: tuple[str, ...], kind: str = "fact") -> str:
    """An in-character refusal in the asker's language (``lang``) that names what the writer did
    write about (``topics``, at most three), and the ``unknown`` terms of a premise it will not
    confirm (as the question said them: agent.pipeline.as_asked). ``kind`` (agent.question.KINDS)
    picks the wording: a view question's refusal says the writer cannot give a view on them, a
    premise's that they cannot confirm it."""
    listed = ", ".join(f"“{t}”" for t in topics[:3])
    names = name_list(unknown, lang)
    if lang == "ko":
        if unknown and kind == "outside":
            head = f"{names}에 대해서는 제가 쓴 글이 없어서, 제가 말씀드릴 수 있는 게 없어요."
        elif unknown and kind == "view":
            head = f"{names}에 대해서는 제가 쓴 적이 없어서, 제 생각이라고 말씀드릴 수 없어요."
        elif unknown:
            head = f"{names}에 대해서는 제가 쓴 글에 아무 내용도 없어서, 그렇다고 말할 수 없어요."
        elif kind == "view":
            head = "그 주제에 대해서는 제가 쓴 적이 없어서, 제 생각이라고 말씀드릴 수 없어요."
        else:
            head = "그 이야기는 제가 쓴 적이 없어서 말씀드릴 수 없어요."
        return head + (f" 제가 쓴 것 중 가장 가까운 주제는 {listed}입니다." if listed else "")
    if unknown and kind == "outside":
        head = f"I haven't written about {names}, so that's outside what I can speak to."
    elif unknown and kind == "view":
        head = f"I haven't written about {names}, so I can't tell you what I think of it."
    elif unknown:
        head = f"I haven't written anything about {names}, so I can't confirm that."
    elif kind == "view":
        head = "I haven't written about that, so I can't tell you what I think of it."
    else:
        head = "I haven't written about that, so I can't tell you."
    return head + (f" The nearest things I did write about: {listed}." if listed else "")
