"""Evaluation step, judges: whether passages support an answer — the offline checker, or an LLM (claims, then verdicts).

The offline ``CheckerJudge`` is what every metric uses. The ``LLMJudge`` (the RAGAS idea, written
directly against the openai client: extract the answer's claims, then verify each against the
numbered passages) runs only when asked for and configured; its figures are reported beside the
offline ones, never in their place. Whatever goes wrong with it (an HTTP error, a reply that is not
the JSON asked for) makes that one item "judge unavailable", never the run fail.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from evals.metrics import split_answer, strip_markers

DEFAULT_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class ClaimVerdict:
    claim: str
    supported: bool | None  # None: the judge gave no usable verdict for this claim
    score: float | None = None  # the checker's hallucination score (the LLM judge gives none)
    passage: int | None = None  # 1-based passage the judge found support in, if it said


@dataclass(frozen=True)
class Judgement:
    judge: str
    claims: tuple[ClaimVerdict, ...] = ()
    error: str = ""  # set: the judge is unavailable for this item, and says why

    @property
    def available(self) -> bool:
        return not self.error

    @property
    def faithfulness(self) -> float | None:
        """Share of the decided claims that are supported; None when none was decided."""
        decided = [c.supported for c in self.claims if c.supported is not None]
        return sum(decided) / len(decided) if decided and self.available else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "faithfulness": self.faithfulness, "status": "ok" if self.available else "unavailable"}


class Judge(Protocol):
    """Decides, claim by claim, whether ``passages`` support ``answer``."""

    name: str

    def judge(self, question: str, answer: str, passages: Sequence[str]) -> Judgement: ...


# ---------------------------------------------------------------------------------------
# Offline: the calibrated faithfulness checker
# ---------------------------------------------------------------------------------------


class CheckerJudge:
    """agent.checker's FaithfulnessChecker: a sentence is supported when its hallucination score
    is below the checker's calibrated threshold."""

    name = "checker"

    def __init__(self, checker: Any = None) -> None:
        self._checker = checker

    @property
    def checker(self) -> Any:
        if self._checker is None:
            from agent.checker import get_checker  # loads nothing heavy until the first score

            self._checker = get_checker()
        return self._checker

    @property
    def threshold(self) -> float:
        return float(self.checker.threshold)

    def scores(self, sentences: Sequence[str], passages: Sequence[str], question: str = "") -> list[float]:
        """Hallucination score per sentence; with no passage nothing can support it (1.0)."""
        if not sentences:
            return []
        if not passages:
            return [1.0] * len(sentences)
        return [float(s) for s in self.checker.sentence_scores(list(sentences), list(passages), question)]

    def supported(self, sentences: Sequence[str], passages: Sequence[str], question: str = "") -> list[bool]:
        t = self.threshold
        return [s < t for s in self.scores(sentences, passages, question)]

    def judge(self, question: str, answer: str, passages: Sequence[str]) -> Judgement:
        claims = [s.text for s in split_answer(answer) if s.claim]
        scores = self.scores(claims, passages, question)
        t = self.threshold
        return Judgement(
            judge=self.name,
            claims=tuple(ClaimVerdict(c, s < t, score=round(s, 4)) for c, s in zip(claims, scores, strict=True)),
        )


# ---------------------------------------------------------------------------------------
# LLM: claims, then verdicts (RAGAS-style), with the openai client
# ---------------------------------------------------------------------------------------

CLAIMS_PROMPT = """\
You split an answer into its factual claims. Each claim is one short, self-contained sentence \
that can be checked on its own (resolve pronouns like "it" or "he"). Leave out greetings, hedges, \
questions, framing such as "Here is what I wrote", and citation markers like [1].
Reply with JSON only, in this form: {"claims": ["...", "..."]}. If the answer makes no claim, reply {"claims": []}."""

VERDICT_PROMPT = """\
You check claims against numbered passages. A claim is supported only if the passages state it or \
clearly imply it; a claim that goes beyond them, or contradicts them, is not supported. Passages may \
be in another language than the claims.
Reply with JSON only, one verdict per claim, in this form:
{"verdicts": [{"claim": 1, "supported": true, "passage": 2}, {"claim": 2, "supported": false, "passage": null}]}"""


class JudgeReplyError(ValueError):
    """The model's reply is not the JSON that was asked for."""


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def parse_json(text: str) -> Any:
    """The JSON value in a model reply: bare, in a ``` fence, or the outermost {...} / [...] in prose."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    for open_, close in (("{", "}"), ("[", "]")):
        i, j = text.find(open_), text.rfind(close)
        if 0 <= i < j:
            candidates.append(text[i : j + 1])
    for c in candidates:
        try:
            return json.loads(c)
        except (json.JSONDecodeError, ValueError):
            continue
    raise JudgeReplyError(f"no JSON in the reply: {text[:120]!r}")


def parse_claims(text: str) -> list[str]:
    data = parse_json(text)
    if isinstance(data, Mapping):
        data = data.get("claims")
    if not isinstance(data, list):
        raise JudgeReplyError(f"expected a list of claims, got {type(data).__name__}")
    claims = [str(c).strip() for c in data if isinstance(c, (str, int, float)) and str(c).strip()]
    if len(claims) != len(data):
        raise JudgeReplyError("claims must be strings")
    return claims


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        low = v.strip().lower()
        if low in {"true", "yes", "supported", "1"}:
            return True
        if low in {"false", "no", "unsupported", "not supported", "0"}:
            return False
    return None


def parse_verdicts(text: str, n_claims: int, n_passages: int) -> list[tuple[bool | None, int | None]]:
    """(supported, passage) per claim, in claim order; a claim without a usable verdict gets (None, None)."""
    data = parse_json(text)
    if isinstance(data, Mapping):
        data = data.get("verdicts")
    if not isinstance(data, list):
        raise JudgeReplyError(f"expected a list of verdicts, got {type(data).__name__}")
    out: list[tuple[bool | None, int | None]] = [(None, None)] * n_claims
    for pos, v in enumerate(data):
        if not isinstance(v, Mapping):
            continue
        idx = v.get("claim")
        # Claims are numbered from 1; a verdict without a usable number is taken in order.
        i = idx - 1 if isinstance(idx, int) and not isinstance(idx, bool) and 1 <= idx <= n_claims else pos
        if not 0 <= i < n_claims:
            continue
        supported = _as_bool(v.get("supported", v.get("verdict")))
        passage = v.get("passage")
        ok_passage = isinstance(passage, int) and not isinstance(passage, bool) and 1 <= passage <= n_passages
        out[i] = (supported, passage if ok_passage and supported else None)
    if all(s is None for s, _ in out) and n_claims:
        raise JudgeReplyError("no usable verdict in the reply")
    return out


@dataclass
class LLMJudge:
    """Claims extracted by a chat model, each verified by it against the passages."""

    model: str
    api_key: str | None = None
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = 2
    max_passage_chars: int = 2000  # passages are cut to fit small models' context windows
    max_tokens: int = 512
    name: str = "llm"
    client: Any = field(default=None, repr=False)
    _json_mode: bool = field(default=True, repr=False)  # off once the server refuses response_format

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LLMJudge | None:
        """The judge configured by OPENAI_API_KEY / OPENAI_BASE_URL and PERSONA_JUDGE_MODEL (else
        PERSONA_CHAT_MODEL, else gpt-4o-mini); None when neither key nor base URL is set."""
        e = os.environ if env is None else env
        key, base = e.get("OPENAI_API_KEY") or None, e.get("OPENAI_BASE_URL") or None
        if not key and not base:
            return None
        model = e.get("PERSONA_JUDGE_MODEL") or e.get("PERSONA_CHAT_MODEL") or DEFAULT_MODEL

        def number(name: str, default: float) -> float:
            try:
                return float(e.get(name) or default)
            except ValueError:
                return default

        return cls(
            model=model,
            api_key=key,
            base_url=base,
            timeout=number("PERSONA_TIMEOUT", 60.0),
            max_retries=int(number("PERSONA_MAX_RETRIES", 2)),
        )

    def _client(self) -> Any:
        if self.client is None:
            from openai import OpenAI

            self.client = OpenAI(
                # A compatible server ignores the key, but the client insists on one.
                api_key=self.api_key or "not-needed",
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self.client

    def chat(self, system: str, user: str) -> str:
        """One completion; asks for a JSON object unless the server has refused that option."""
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        if self._json_mode:
            try:
                resp = self._client().chat.completions.create(**kwargs, response_format={"type": "json_object"})
                return str(resp.choices[0].message.content or "")
            except openai.BadRequestError:
                self._json_mode = False  # an older or stricter server: plain text, parsed leniently
        resp = self._client().chat.completions.create(**kwargs)
        return str(resp.choices[0].message.content or "")

    def judge(self, question: str, answer: str, passages: Sequence[str]) -> Judgement:
        text = strip_markers(answer)
        if not text:
            return Judgement(judge=self.name)
        try:
            claims = parse_claims(self.chat(CLAIMS_PROMPT, f"Question: {question}\n\nAnswer: {text}"))
            if not claims:
                return Judgement(judge=self.name)
            numbered = "\n\n".join(f"[{i}] {p[: self.max_passage_chars]}" for i, p in enumerate(passages, start=1))
            listed = "\n".join(f"{i}. {c}" for i, c in enumerate(claims, start=1))
            reply = self.chat(VERDICT_PROMPT, f"Passages:\n{numbered or '(none)'}\n\nClaims:\n{listed}")
            verdicts = parse_verdicts(reply, len(claims), len(passages))
        except JudgeReplyError as exc:
            return Judgement(judge=self.name, error=f"unparseable reply: {exc}")
        except Exception as exc:  # HTTP errors, timeouts, a missing client: this item only
            return Judgement(judge=self.name, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        return Judgement(
            judge=self.name,
            claims=tuple(ClaimVerdict(c, s, passage=p) for c, (s, p) in zip(claims, verdicts, strict=True)),
        )


# ---------------------------------------------------------------------------------------
# Both judges on the same labelled examples
# ---------------------------------------------------------------------------------------


def llm_label(judgement: Judgement) -> str | None:
    """'supported' when every decided claim is supported, 'hallucinated' when one is not;
    None when the judge was unavailable or decided nothing."""
    f = judgement.faithfulness
    if f is None:
        return None
    return "supported" if f >= 1.0 else "hallucinated"


def judge_both(rows: Sequence[Mapping[str, Any]], checker: Any, llm: Judge) -> list[dict[str, Any]]:
    """One record per row (``id``, ``context`` str or list, ``answer``, optional ``question`` and
    ``label``): the offline checker's answer score and label beside the LLM judge's verdict."""
    out = []
    for row in rows:
        passages = [row["context"]] if isinstance(row["context"], str) else list(row["context"])
        answer, question = str(row["answer"]), str(row.get("question") or "")
        verdict = checker.check(answer, passages, question)
        judgement = llm.judge(question, answer, passages)
        out.append(
            {
                "id": row["id"],
                "label": row.get("label"),
                "checker_score": round(float(verdict.score), 6),
                "checker_label": verdict.label,
                "llm_status": "ok" if judgement.available else "unavailable",
                "llm_faithfulness": judgement.faithfulness,
                "llm_label": llm_label(judgement),
                "llm_error": judgement.error,
            }
        )
    return out


def compare_judges(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Agreement of the two judges (share of equal labels, Cohen's kappa) on the records both
    decided, and each against the human labels there: balanced accuracy, and AUROC from the
    checker's score and from 1 - the LLM's faithfulness share."""
    from sklearn.metrics import cohen_kappa_score

    from evals.metrics_cls import auroc, balanced_accuracy

    both = [r for r in records if r.get("llm_label") is not None]
    out: dict[str, Any] = {
        "n": len(records),
        "both_decided": len(both),
        "llm_unavailable": sum(1 for r in records if r.get("llm_status") != "ok"),
    }
    if not both:
        return out
    c = [r["checker_label"] for r in both]
    g = [r["llm_label"] for r in both]
    out["agreement"] = sum(a == b for a, b in zip(c, g, strict=True)) / len(both)
    out["cohen_kappa"] = float(cohen_kappa_score(c, g)) if len(set(c) | set(g)) > 1 else None
    labelled = [r for r in both if r.get("label") in ("supported", "hallucinated")]
    if labelled:
        y = [r["label"] == "hallucinated" for r in labelled]
        out["labelled"] = len(labelled)
        out["checker"] = {
            "balanced_accuracy": balanced_accuracy([r["checker_label"] == "hallucinated" for r in labelled], y),
            "auroc": auroc([r["checker_score"] for r in labelled], y),
        }
        out["llm"] = {
            "balanced_accuracy": balanced_accuracy([r["llm_label"] == "hallucinated" for r in labelled], y),
            "auroc": auroc([1.0 - float(r["llm_faithfulness"]) for r in labelled], y),
        }
    return out


def format_comparison(cmp: Mapping[str, Any]) -> str:
    """The comparison in a few lines of text."""

    def f(v: Any) -> str:
        return "—" if v is None or (isinstance(v, float) and v != v) else f"{v:.3f}"

    lines = [
        f"LLM judge beside the checker: {cmp['both_decided']} of {cmp['n']} decided by both "
        f"({cmp['llm_unavailable']} LLM unavailable)"
    ]
    if "agreement" in cmp:
        lines.append(f"  agreement {f(cmp['agreement'])}, Cohen's kappa {f(cmp.get('cohen_kappa'))}")
    if "labelled" in cmp:
        for who in ("checker", "llm"):
            m = cmp[who]
            lines.append(
                f"  {who:8s} vs labels (n={cmp['labelled']}): balanced accuracy {f(m['balanced_accuracy'])}, "
                f"AUROC {f(m['auroc'])}"
            )
    return "\n".join(lines)
