"""Coverage: do the writings answer this question at all, and does it rest on a premise they lack?

The abstention rule is a logistic model over a few retrieval signals; its weights and threshold
are fitted on labelled questions by ``python -m evals calibrate-abstain`` and stored in
``agent/abstain.json``, not guessed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from agent.compose import Scored

CALIBRATION = Path(__file__).with_name("abstain.json")
FEATURES = ("best_dense", "top3_lift", "best_lexical", "cross")

# Words that start with a capital letter in a question for grammar's sake, not because they name something.
_GENERIC = frozenset(
    """I I'm I've I'd What Why How When Where Who Which Whose Tell Do Did Does Is Are Was Were Can Could Would
    Should Have Has Had Please Describe Explain Give Say List Share Talk Any Your You Professor Dr Mr Ms
    Okay OK So And But Then Also In On At For About From With Yes No Hi Hello Hey""".split()
)
_PROPER = re.compile(r"\b(?:[A-Z][a-zA-Z0-9]*(?:[-'][A-Za-z0-9]+)*|[A-Z]{2,}[a-z]?|\d{4}s?|GPT-?\d+(?:\.\d+)?)\b")


@dataclass(frozen=True)
class Coverage:
    covered: bool
    probability: float  # that the writings answer the question
    features: dict[str, float]
    unknown_terms: tuple[str, ...] = ()  # names/numbers of the question that no writing mentions

    @property
    def false_premise(self) -> bool:
        return bool(self.unknown_terms)


@lru_cache(maxsize=1)
def _calibration() -> dict[str, object]:
    if CALIBRATION.exists():
        return json.loads(CALIBRATION.read_text("utf-8"))  # type: ignore[no-any-return]
    # Before calibration: a rule that abstains only when nothing stands out at all.
    return {"weights": {"best_lift": 60.0, "best_lexical": 2.0}, "bias": -2.0, "threshold": 0.5}


def features(scored: list[Scored], question_lang: str = "en", persona_langs: tuple[str, ...] = ()) -> dict[str, float]:
    """Signals of coverage. ``cross`` marks a question the writings can only answer in another
    language: cosines across languages run lower for the same relevance, so the rule must know."""
    if not scored:
        return {name: 0.0 for name in FEATURES}
    by_lift = sorted((s.lift for s in scored), reverse=True)
    return {
        "best_dense": max(s.dense for s in scored),
        "top3_lift": sum(by_lift[:3]) / min(3, len(by_lift)),
        "best_lexical": max(s.lexical for s in scored),
        "cross": 0.0 if question_lang in persona_langs else 1.0,
    }


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

    "Tell me about your years at DeepMind" -> ("DeepMind",) when no entry mentions DeepMind:
    the answer must not play along.
    """
    lowered = corpus_text.lower()
    found: list[str] = []
    for m in _PROPER.finditer(question):
        term = m.group(0)
        if term in _GENERIC or len(term) < 2:
            continue
        if m.start() == 0 or question[: m.start()].rstrip().endswith((".", "?", "!", '"')):
            # A sentence-initial capital is grammar; only all-caps or digits still count there.
            if not (term.isupper() or any(ch.isdigit() for ch in term)):
                continue
        # "NaNs" is the "NaN" the diary mentions: a plural is not a new name.
        variants = {term.lower(), term.lower().removesuffix("s"), term.lower().removesuffix("'s")}
        if not any(v and v in lowered for v in variants):
            found.append(term)
    return tuple(dict.fromkeys(found))


def assess(
    question: str,
    scored: list[Scored],
    corpus_text: str,
    question_lang: str = "en",
    persona_langs: tuple[str, ...] = (),
) -> Coverage:
    feats = features(scored, question_lang, persona_langs)
    p = probability(feats)
    unknown = unknown_terms(question, corpus_text)
    return Coverage(covered=p >= threshold() and not unknown, probability=p, features=feats, unknown_terms=unknown)


def abstain_text(lang: str, topics: list[str], unknown: tuple[str, ...]) -> str:
    """An in-character refusal that names what the writer did write about."""
    listed = ", ".join(f"“{t}”" for t in topics[:3])
    if lang == "ko":
        if unknown:
            head = f"{', '.join(unknown)}에 대해서는 제가 쓴 글에 아무 내용도 없어서, 그렇다고 말할 수 없어요."
        else:
            head = "그 주제에 대해서는 제가 쓴 적이 없어서, 제 생각이라고 말씀드릴 수 없어요."
        return head + (f" 제가 쓴 것 중 가장 가까운 주제는 {listed}입니다." if listed else "")
    if unknown:
        head = f"I haven't written anything about {', '.join(unknown)}, so I can't confirm that."
    else:
        head = "I haven't written about that, so I can't tell you what I think of it."
    return head + (f" The nearest things I did write about: {listed}." if listed else "")
