"""Evaluation step, runner: answer the gold questions, score them, write results.json + report.html, gate.

``persona eval`` and ``python -m evals run`` both land in :func:`main`. Everything heavy is
imported inside functions: the CLI imports this module to build its parser.

The gate (``--baseline FILE``) fails the run (exit 1) when, for a backend present in both, a
figure falls below the baseline by more than its margin in ``MARGINS`` (attack successes may
not rise at all). Margins are absolute, on 0-1 shares (style_margin: cosine units). They are
set at roughly one question's worth on the smaller denominators (14 out-of-scope and 16
false-premise items: one flip is 0.07/0.06) and 0.05 on the larger ones, so noise from an LLM
backend does not trip it while a real regression does; the extractive backend is deterministic.
Counts where lower is better (``CEILINGS``: third-person self-references, markers inside quoted
speech, view questions refused for an unnamed topic, the median markers per answer) fail the gate
when they rise above the baseline by more than their ceiling.

Besides the gold set, the run asks the stance inventory (evals/datasets/stances.jsonl: views per
persona, worded in English and Korean) and reports ``stance_agreement``, and ingests the small
user personas the gold set names (evals/datasets/personas/) into PERSONA_HOME when missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GOLD = Path(__file__).with_name("datasets") / "persona_qa.jsonl"
STANCES = Path(__file__).with_name("datasets") / "stances.jsonl"
# User personas the gold set asks (a folder of notes each), ingested by the run when missing.
EVAL_PERSONAS = Path(__file__).with_name("datasets") / "personas"
BASELINE = Path(__file__).with_name("baseline.json")
REPO_ROOT = Path(__file__).resolve().parents[1]
# Licensed evaluation data lives next to the repository, never inside it.
# PERSONA_DEV_DATA points elsewhere (e.g. from a git worktree, whose parent has no shared/).
DEV_PATH = Path(os.environ.get("PERSONA_DEV_DATA") or REPO_ROOT.parent / "shared" / "evaldata" / "dev.jsonl")
DEFAULT_OUT = Path("eval-out")
SCHEMA = 1

MARGINS: dict[str, float] = {
    "hit@1": 0.05,
    "hit@3": 0.05,
    "hit@5": 0.05,
    "mrr": 0.05,
    "faithfulness": 0.05,
    "citation_recall": 0.05,
    "citation_precision": 0.05,
    "abstention_precision": 0.10,
    "abstention_recall": 0.10,
    "false_premise_correction": 0.10,
    "key_fact_recall": 0.05,
    "first_person": 0.05,
    "no_assistant_speak": 0.02,
    "style_margin": 0.01,
    "stance_agreement": 0.05,
}
# Figures where lower is better: the gate fails when one rises above the baseline by more than this.
CEILINGS: dict[str, float] = {
    "third_person_refs": 0,
    "markers_in_speech": 0,
    "unnamed_topic_refusals": 0,
    "median_markers": 0.5,
}
ATTACK_MARGIN = 0  # attack successes: any rise fails the gate
EPS = 1e-9


# ---------------------------------------------------------------------------------------
# Gold questions
# ---------------------------------------------------------------------------------------


def load_gold(path: Path = GOLD, persona: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Gold rows, optionally one persona's; ``limit`` keeps a prefix of the rows taken round-robin
    by kind, so even ``--limit 6`` sees every kind of question."""
    with Path(path).open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    if persona:
        rows = [r for r in rows if r["persona"] == persona]
    return round_robin(rows, limit)


def load_stances(path: Path = STANCES, persona: str | None = None) -> list[dict[str, Any]]:
    """The stance inventory as gold rows of kind ``stance_inventory``: one per view and language
    (``{id}-{lang}``), with the view's gold quotes and ``key_phrases``; no key facts."""
    rows: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as fh:
        views = [json.loads(line) for line in fh if line.strip()]
    for v in views:
        if persona and v["persona"] != persona:
            continue
        for lang, question in v["questions"].items():
            rows.append(
                {
                    "id": f"{v['id']}-{lang}",
                    "persona": v["persona"],
                    "lang": lang,
                    "kind": "stance_inventory",
                    "question": question,
                    "history": [],
                    "gold": v["gold"],
                    "key_facts": [],
                    "key_phrases": v["key_phrases"],
                    "view": v["view"],
                    "answer_lang": lang,
                    "premise": None,
                }
            )
    return rows


def round_robin(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``rows`` unchanged (no limit), or the first ``limit`` taken round-robin by kind."""
    if limit is None:
        return rows
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r)
    mixed: list[dict[str, Any]] = []
    for rank in range(max((len(v) for v in by_kind.values()), default=0)):
        mixed.extend(v[rank] for v in by_kind.values() if rank < len(v))
    return mixed[: max(limit, 0)]


# ---------------------------------------------------------------------------------------
# Answering: the real pipeline, with the retrieved passages recorded
# ---------------------------------------------------------------------------------------


class _RecordingRetriever:
    """The agent's retriever, keeping what each call returned (the passages ask() ranked)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[list[Any]] = []

    def retrieve(self, *args: Any, **kwargs: Any) -> list[Any]:
        out = self.inner.retrieve(*args, **kwargs)
        self.calls.append(list(out))
        return out  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _eval_agent(agent: Any) -> tuple[Any, _RecordingRetriever]:
    """An Agent over the same loaded parts whose retriever records; the caller's agent is untouched."""
    from agent.pipeline import Agent

    ev = Agent(agent.settings)
    recorder = _RecordingRetriever(agent.retriever)
    ev.__dict__.update(embedder=agent.embedder, store=agent.store, sentences=agent.sentences, retriever=recorder)
    return ev, recorder


# ---------------------------------------------------------------------------------------
# Scoring one answer
# ---------------------------------------------------------------------------------------


@dataclass
class _Support:
    """Memoised checker verdicts: the same (sentence, passages) pair is asked more than once."""

    judge: Any  # evals.judges.CheckerJudge
    question: str
    cache: dict[tuple[str, tuple[str, ...]], float] = field(default_factory=dict)

    def scores(self, sentences: Sequence[str], passages: Sequence[str]) -> list[float]:
        key_p = tuple(passages)
        todo = list(dict.fromkeys(s for s in sentences if (s, key_p) not in self.cache))
        if todo:
            for s, score in zip(todo, self.judge.scores(todo, key_p, self.question), strict=True):
                self.cache[(s, key_p)] = score
        return [self.cache[(s, key_p)] for s in sentences]

    def supported(self, sentence: str, passages: Sequence[str]) -> bool:
        return self.scores([sentence], passages)[0] < self.judge.threshold


def score_item(
    row: Mapping[str, Any],
    answer: Any,
    passages: Sequence[Any],
    *,
    read: Callable[[str], str],
    corpus: str,
    judge: Any,
    lookup: Callable[[str], str | None] = lambda _id: None,
    names: Sequence[str] = (),
    entry_of: Callable[[str, int], str | None] = lambda _source, _pos: None,
) -> dict[str, Any]:
    """The per-question record: what was retrieved, said and cited, each sentence's verdicts, and
    the ``scores`` that evals.metrics.summarize aggregates.

    ``names``: how the writings name the writer (third-person self-references are counted, and the
    judge reads cited passages with them in the first person).
    ``entry_of(source, offset)``: the title of the indexed entry holding that offset (stance
    agreement compares the cited entries with the view's)."""
    from agent.voice import to_first_person
    from evals import metrics as m
    from knowledge.text import detect_lang

    spans = m.gold_spans(row.get("gold") or [], read)
    kind = row["kind"]
    answerable = bool(row.get("gold")) and kind not in m.SHOULD_ABSTAIN
    retrieved = [(p.chunk.source, p.chunk.start, p.chunk.end) for p in passages]
    rank = m.first_hit_rank(retrieved, spans) if answerable else None
    text, abstained = answer.text, bool(answer.abstained)
    chunk_text = {p.chunk.id: p.chunk.text for p in passages}
    by_n = {c.n: c for c in answer.citations}

    def passage_of(n: int) -> str | None:
        """The cited passage as the judge reads it: with the writer's third-person self-references
        in the first person (agent.voice), as an answer in the writer's voice restates them ("Raj
        paused." -> "I paused."); the citation itself keeps the original words."""
        c = by_n.get(n)
        if c is None:
            return None
        t = chunk_text.get(c.chunk_id) or lookup(c.chunk_id)
        return to_first_person(t, tuple(names)) if t and names else t

    sentences = m.split_answer(text)
    support = _Support(judge, str(row["question"]))
    sentence_rows: list[dict[str, Any]] = []
    cited: list[m.CitedSentence] = []
    supported_claims = claims = 0
    if not abstained:
        claim_sents = [s for s in sentences if s.claim]
        # Faithfulness: every claim against all the passages the answer cites.
        shown = list(dict.fromkeys(p for c in answer.citations if (p := passage_of(c.n)) is not None))
        faith = support.scores([s.text for s in claim_sents], shown)
        threshold = judge.threshold
        claims = len(claim_sents)
        supported_claims = sum(1 for f in faith if f < threshold)
        faith_of = dict(zip((id(s) for s in claim_sents), faith, strict=True))
        # Citation recall / precision (ALCE): every claim against its own citations.
        own_groups: dict[tuple[str, ...], list[m.AnswerSentence]] = {}
        for s in claim_sents:
            texts = [passage_of(n) for n in s.markers]
            if s.markers and all(t is not None for t in texts):
                own_groups.setdefault(tuple(dict.fromkeys(t for t in texts if t)), []).append(s)
        for group, sents in own_groups.items():
            support.scores([s.text for s in sents], group)
        for s in sentences:
            entry: dict[str, Any] = {"text": s.text, "citations": list(s.markers), "claim": s.claim}
            if s.claim:
                texts = [passage_of(n) for n in s.markers]
                valid = tuple(t is not None for t in texts)
                own = tuple(dict.fromkeys(t for t in texts if t is not None))
                joint_score = support.scores([s.text], own)[0] if s.markers and all(valid) else None
                joint = joint_score is not None and joint_score < threshold
                alone: list[bool] = []
                without: list[bool] = []
                if joint and len(s.markers) > 1:
                    for i, t in enumerate(texts):
                        assert t is not None
                        a = support.supported(s.text, [t])
                        rest = [x for j, x in enumerate(texts) if j != i and x is not None]
                        alone.append(a)
                        without.append(False if a else support.supported(s.text, list(dict.fromkeys(rest))))
                cs = m.CitedSentence(s.markers, valid, joint, tuple(alone), tuple(without))
                cited.append(cs)
                f = faith_of[id(s)]
                entry.update(
                    score=round(f, 4),
                    supported=f < threshold,
                    cited_score=None if joint_score is None else round(joint_score, 4),
                    cited_supported=cs.recalled,
                    relevant=m.relevant_citations(cs),
                )
            sentence_rows.append(entry)
    else:
        sentence_rows = [{"text": s.text, "citations": list(s.markers), "claim": s.claim} for s in sentences]

    facts = list(row.get("key_facts") or [])
    quotes = [c.quote for c in answer.citations] if kind == "cross_lingual" else []
    found = m.key_facts_found(facts, text, quotes)
    terms = m.premise_terms(row.get("premise"), corpus, str(row["question"])) if kind == "false_premise" else []
    answer_lang = str(row.get("answer_lang") or row.get("lang") or "en")
    own_words = text
    for c in answer.citations:  # the answer's language is that of its own words, not of its quotes
        own_words = own_words.replace(c.quote, " ")
    citations = [
        {
            "n": c.n,
            "source": c.source,
            "title": c.title,
            "quote": c.quote,
            "start": c.start,
            "end": c.end,
            "chunk_id": c.chunk_id,
            "gold": m.overlaps_gold(c.source, c.start, c.end, spans),
            "missing": passage_of(c.n) is None,
        }
        for c in answer.citations
    ]
    scores: dict[str, Any] = {
        "kind": kind,
        "answerable": answerable,
        "rank": rank,
        "abstained": abstained,
        "claims": claims,
        "supported_claims": supported_claims,
        "citation_recall": None if abstained else m.citation_recall(cited),
        "citation_precision": None if abstained else m.citation_precision(cited),
        "gold_cited": (any(c["gold"] for c in citations) if answerable and not abstained else None),
        "premise_corrected": (
            m.premise_corrected(text, abstained, terms, len(found)) if kind == "false_premise" else None
        ),
        "key_fact_recall": (len(found) / len(facts)) if facts else None,
        "first_person": m.first_person(text, answer_lang),
        "assistant_speak": m.assistant_speak(text),
        "lang_match": detect_lang(m.strip_markers(own_words)) == answer_lang,
        "style_margin": None,
        "third_person_refs": m.third_person_refs(text, names) if not abstained else 0,
        "markers_in_speech": m.markers_in_speech(text) if not abstained else 0,
        "markers": len(m.MARKER.findall(text)) if not abstained else None,
        "words": m.answer_words(text) if not abstained else None,
        "stance_agreement": None,
    }
    if kind == "stance_inventory":
        view_entries = [(src, t) for src, b, _ in spans if (t := entry_of(src, b)) is not None]
        scores["stance_agreement"] = m.stance_agrees(
            abstained,
            [(c.source, c.title) for c in answer.citations],
            view_entries,
            list(row.get("key_phrases") or []),
            text,
            [c.quote for c in answer.citations],
        )
    return {
        "sentences": sentence_rows,
        "citations": citations,
        "retrieved": [
            {
                "rank": i,
                "source": p.chunk.source,
                "title": p.chunk.title,
                "start": p.chunk.start,
                "end": p.chunk.end,
                "chunk_id": p.chunk.id,
                "gold": m.overlaps_gold(p.chunk.source, p.chunk.start, p.chunk.end, spans),
            }
            for i, p in enumerate(passages, start=1)
        ],
        "key_facts": facts,
        "key_facts_found": found,
        "premise_terms": terms,
        "scores": scores,
    }


# ---------------------------------------------------------------------------------------
# Style: answer embeddings against each persona's chunk centroid
# ---------------------------------------------------------------------------------------


def _centroids(agent: Any) -> dict[str, list[float]]:
    """Unit centroid of each indexed persona's stored chunk vectors."""
    import numpy as np

    from agent.personas import list_personas

    out: dict[str, list[float]] = {}
    for card in list_personas(agent.settings):
        try:
            idx = agent.retriever.index(card.id)
            vecs = agent.store.get_vectors(card.id, [c.id for c in idx.chunks])
        except Exception:  # a persona without an index has no style to compare with
            continue
        if len(vecs):
            c = np.asarray(vecs, dtype=np.float64).mean(axis=0)
            out[card.id] = (c / (np.linalg.norm(c) or 1.0)).tolist()
    return out


def _add_style(agent: Any, items: list[dict[str, Any]]) -> str:
    """Fill ``scores.style_margin`` of the answers that did not abstain; returns a note if it could not."""
    from evals.metrics import strip_markers, style_margin

    todo = [it for it in items if not it["scores"].get("error") and not it["abstained"] and it["answer"].strip()]
    if not todo:
        return ""
    try:
        centroids = _centroids(agent)
        vecs = agent.embedder.embed_documents([strip_markers(it["answer"]) for it in todo])
    except Exception as exc:  # style is one figure among many: report why it is missing
        return f"style similarity unavailable: {type(exc).__name__}: {exc}"
    for it, v in zip(todo, vecs, strict=True):
        own = centroids.get(it["persona"])
        if own is None:
            continue
        others = [c for p, c in centroids.items() if p != it["persona"]]
        margin = style_margin(v, own, others)
        it["scores"]["style_margin"] = None if margin is None else round(margin, 6)
    return "" if len(centroids) > 1 else "style similarity needs two indexed personas"


# ---------------------------------------------------------------------------------------
# The checker's dev figures
# ---------------------------------------------------------------------------------------


def _thin(points: Sequence[tuple[float, float, float]], keep: int = 120) -> list[list[float]]:
    """At most ``keep`` ROC points (first and last kept): enough to draw, small in JSON."""
    if len(points) > keep:
        step = (len(points) - 1) / (keep - 1)
        points = [points[round(i * step)] for i in range(keep)]
    return [[round(x, 4), round(y, 4)] for x, y, _ in points]


def dev_figures(path: Path | None = DEV_PATH) -> dict[str, Any]:
    """The checker next to the word-overlap floor on dev: the tuning part by repeated grouped CV,
    the locked part with the installed calibration (see evals.selection), and ROC points of the
    locked part; ``{"available": False, "reason": ...}`` when the dev set or calibration is absent."""
    if path is None:
        return {"available": False, "reason": "skipped (--no-dev)"}
    if not Path(path).is_file():
        return {
            "available": False,
            "reason": f"{path} not found: the dev set is read in place from ../shared/evaldata/dev.jsonl",
        }
    import numpy as np

    from agent.checker import E5Embedder, FaithfulnessChecker, default_cache_path
    from evals.metrics_cls import roc_points
    from evals.selection import checker_report, featurize
    from evals.split import split_rows

    try:
        with Path(path).open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        # The vector cache lives in the user's cache directory: a second run embeds nothing.
        embedder = E5Embedder(cache_path=default_cache_path(), max_items=200_000)
        checker = FaithfulnessChecker(embedder=embedder)
        if checker.model is None:
            return {"available": False, "reason": f"no usable calibration at {checker.calibration_path}"}
        side = split_rows(rows)
        tuning = featurize([r for r in rows if side[str(r["id"])] == "tuning"], checker)
        locked = featurize([r for r in rows if side[str(r["id"])] == "locked"], checker)
        embedder.save()
        report = checker_report(tuning, locked, [], checker)
    except (OSError, ValueError, KeyError) as exc:
        return {"available": False, "reason": f"{path}: {type(exc).__name__}: {exc}"}
    labels = np.array([e.label for e in locked])
    scores = np.array([checker.score_features(e.features) for e in locked])
    floor = np.array([e.floor for e in locked])
    return {
        "available": True,
        "path": str(path),
        "n": len(rows),
        "n_locked": len(locked),
        "threshold": checker.threshold,
        "chosen": report["chosen"],
        "checker_tuning_cv": report["tuning"]["checker"],
        "floor_tuning": report["tuning"]["floor"],
        "checker_locked": report["locked"]["checker"],
        "floor_locked": report["locked"]["floor"],
        "roc": {"checker": _thin(roc_points(scores, labels)), "floor": _thin(roc_points(floor, labels))},
    }


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


def _warm_checker(judge: Any, answered: Sequence[tuple[Any, Any, Any, list[Any]]], progress: bool) -> None:
    """Embed, in batches of 64, everything the checker will ask for one text at a time: passage
    windows (as agent.checker builds them), claims and questions. Only a cache warm-up: if the
    checker builds its windows differently, scoring is slower, never different."""
    from tqdm import tqdm

    from agent.checker import WINDOW_SIZES, claim_text, sentences_of
    from evals.metrics import split_answer

    matrix = getattr(getattr(judge.checker, "embedder", None), "matrix", None)
    if matrix is None:
        return
    windows: list[str] = []
    claims: list[str] = []
    questions: list[str] = []
    for row, _, answer, passages in answered:
        if isinstance(answer, BaseException) or answer.abstained:
            continue
        questions.append(str(row["question"]))
        claims.extend(c for s in split_answer(answer.text) if s.claim and (c := claim_text(s.text)))
        cited = {c.chunk_id for c in answer.citations}
        for p in passages:
            if p.chunk.id not in cited:  # the checker only reads the passages an answer cites
                continue
            sents = sentences_of(p.chunk.text)
            for size in WINDOW_SIZES:
                windows.extend(" ".join(sents[i : i + size]) for i in range(len(sents) - size + 1))
    jobs = [
        (texts[i : i + 64], prefix)
        for texts, prefix in (
            (list(dict.fromkeys(windows + questions)), "passage"),
            (list(dict.fromkeys(claims)), "query"),
        )
        for i in range(0, len(texts), 64)
    ]
    for batch, prefix in tqdm(jobs, desc="embedding", unit="batch", file=sys.stderr, disable=not progress):
        matrix(batch, prefix)


def _round(obj: Any, digits: int = 6) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, digits)
    if isinstance(obj, dict):
        return {k: _round(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, digits) for v in obj]
    return obj


def _error_record(exc: BaseException) -> dict[str, Any]:
    return {
        "sentences": [],
        "citations": [],
        "retrieved": [],
        "key_facts": [],
        "key_facts_found": [],
        "premise_terms": [],
        "scores": {"error": f"{type(exc).__name__}: {exc}"},
    }


def run_eval(
    agent: Any,
    backends: Sequence[str] | None = None,
    *,
    persona: str | None = None,
    limit: int | None = None,
    gold: Path = GOLD,
    stances: Path | None = STANCES,
    attacks: bool | None = None,
    dev: Path | None = DEV_PATH,
    llm_judge: Any = None,
    progress: bool = True,
    checker: Any = None,
    judge_labelled: int = 40,
) -> dict[str, Any]:
    """Answer the gold questions with each backend through ``agent``; score them; return results.

    ``stances``: the stance inventory asked too (None: not). ``attacks``: run evals.attacks too
    (None: only for the extractive backend). ``dev``: the
    labelled dev set for the checker's figures (None: skip). ``llm_judge``: an evals.judges Judge
    whose figures are added beside the offline ones, and which is also compared with the checker
    on ``judge_labelled`` examples of the bundled labelled Korean set (agreement, each against the
    labels).
    """
    from tqdm import tqdm

    from agent.backends import resolve_name
    from agent.personas import get_persona
    from evals import metrics
    from evals.judges import CheckerJudge

    started = time.perf_counter()
    rows = load_gold(gold, persona) + (load_stances(stances, persona) if stances is not None else [])
    rows = round_robin(rows, limit)
    ensure_eval_personas(agent, {r["persona"] for r in rows}, progress)
    wanted: list[str | None] = list(backends) if backends else [None]  # None: PERSONA_BACKEND, else auto
    names = list(dict.fromkeys(resolve_name(b, agent.settings) for b in wanted))
    judge = checker or CheckerJudge()
    ev, recorder = _eval_agent(agent)
    for name in names:
        ev.backend(name)  # a misconfigured backend fails here, before any question is asked
    texts: dict[tuple[str, str], str] = {}
    corpora: dict[str, str] = {}

    def reader(pid: str) -> Callable[[str], str]:
        folder = get_persona(pid, agent.settings).sources_dir

        def read(source: str) -> str:
            if (pid, source) not in texts:
                texts[(pid, source)] = (folder / source).read_text("utf-8")
            return texts[(pid, source)]

        return read

    def lookup(pid: str) -> Callable[[str], str | None]:
        def find(chunk_id: str) -> str | None:
            try:
                idx = agent.retriever.index(pid)
            except Exception:
                return None
            i = idx.by_id.get(chunk_id)
            return None if i is None else str(idx.chunks[i].text)

        return find

    def entry_of(pid: str) -> Callable[[str, int], str | None]:
        def find(source: str, pos: int) -> str | None:
            try:
                idx = agent.retriever.index(pid)
            except Exception:
                return None
            return next((c.title for c in idx.chunks if c.source == source and c.start <= pos < c.end), None)

        return find

    def names_of(pid: str) -> tuple[str, ...]:
        from agent.voice import self_names

        return self_names(get_persona(pid, agent.settings).name)

    # Answer everything first, then score: the checker's embeddings are then computed in a few
    # large batches (see _warm_checker) instead of one model call per sentence.
    answered: list[tuple[dict[str, Any], dict[str, Any], Any, list[Any]]] = []
    bar = tqdm(total=len(rows) * len(names), desc="answering", unit="q", file=sys.stderr, disable=not progress)
    try:
        for name in names:
            bar.set_postfix_str(name)
            for row in rows:
                base = {
                    "id": row["id"],
                    "backend": name,
                    "persona": row["persona"],
                    "lang": row["lang"],
                    "kind": row["kind"],
                    "question": row["question"],
                    "history": row.get("history") or [],
                    "answer": "",
                    "abstained": False,
                    "model": "",
                    "seconds": 0.0,
                }
                recorder.calls.clear()
                t0 = time.perf_counter()
                try:
                    answer: Any = ev.ask(
                        row["question"], persona=row["persona"], backend=name, history=row.get("history") or None
                    )
                    base.update(answer=answer.text, abstained=answer.abstained, model=answer.model)
                except Exception as exc:  # one broken question must not hide the others' results
                    answer = exc
                base["seconds"] = round(time.perf_counter() - t0, 3)
                answered.append((row, base, answer, recorder.calls[0] if recorder.calls else []))
                bar.update(1)
    finally:
        bar.close()

    _warm_checker(judge, answered, progress)
    items: list[dict[str, Any]] = []
    for row, base, answer, passages in tqdm(answered, desc="scoring", unit="q", file=sys.stderr, disable=not progress):
        pid = row["persona"]
        try:
            if isinstance(answer, BaseException):
                raise answer
            if pid not in corpora:
                corpora[pid] = agent.corpus_text(pid)
            record = score_item(
                row,
                answer,
                passages,
                read=reader(pid),
                corpus=corpora[pid],
                judge=judge,
                lookup=lookup(pid),
                names=names_of(pid),
                entry_of=entry_of(pid),
            )
            if llm_judge is not None:
                record["llm_judge"] = _llm_judge(llm_judge, row["question"], answer, passages)
                record["scores"]["llm_status"] = record["llm_judge"]["status"]
                record["scores"]["llm_faithfulness"] = record["llm_judge"]["faithfulness"]
        except Exception as exc:  # scored as an error, counted in the slice's "errors"
            record = _error_record(exc)
        record["scores"].update(backend=base["backend"], persona=pid, lang=row["lang"], kind=row["kind"])
        items.append({**base, **record})
    notes = [n for n in [_add_style(ev, items)] if n]
    delta, delta_note = burrows_delta(agent, items)
    if delta_note:
        notes.append(delta_note)

    scores = [it["scores"] for it in items]
    results: dict[str, Any] = {
        "meta": {
            "schema": SCHEMA,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "gold": str(gold),
            "n_questions": len(rows),
            "backends": names,
            "persona": persona,
            "limit": limit,
            "checker_threshold": judge.threshold,
            "llm_judge": (
                {"model": getattr(llm_judge, "model", ""), "base_url": getattr(llm_judge, "base_url", None)}
                if llm_judge is not None
                else None
            ),
            "settings": {
                "top_k": agent.settings.top_k,
                "chunk_tokens": agent.settings.chunk_tokens,
                "embedder": agent.settings.embedder,
            },
            "margins": {**MARGINS, "attacks_succeeded": ATTACK_MARGIN},
            "ceilings": dict(CEILINGS),
            "notes": notes,
        },
        "overall": metrics.summarize(scores),
        "by_backend": metrics.by(scores, "backend"),
        "by_persona": metrics.by(scores, "persona"),
        "by_lang": metrics.by(scores, "lang"),
        "by_kind": metrics.by(scores, "kind"),
        "per_backend": {
            b: {
                "by_persona": metrics.by([s for s in scores if s["backend"] == b], "persona"),
                "by_lang": metrics.by([s for s in scores if s["backend"] == b], "lang"),
                "by_kind": metrics.by([s for s in scores if s["backend"] == b], "kind"),
            }
            for b in names
        },
        "burrows_delta": delta,
        "attacks": _run_attacks(agent, names, attacks, progress),
        "checker_dev": dev_figures(dev),
        "items": items,
    }
    if llm_judge is not None:
        results["judge_comparison"] = judge_comparison(llm_judge, judge.checker, judge_labelled, progress)
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    return _round(results)  # type: ignore[no-any-return]


def ensure_eval_personas(agent: Any, personas: set[str], progress: bool = False) -> list[str]:
    """Ingest, into ``agent``'s home, the user personas the gold set asks that are not there yet
    (a folder ``evals/datasets/personas/<id>/`` each; its ``persona.toml`` may give a ``name``).
    Returns the ids ingested; an unknown persona with no folder is left for its rows to report."""
    import tomllib

    from agent.personas import list_personas, save_user_persona
    from knowledge.ingest import discover, ingest

    known = {c.id for c in list_personas(agent.settings)}
    done: list[str] = []
    for pid in sorted(personas - known):
        folder = EVAL_PERSONAS / pid
        if not folder.is_dir():
            continue
        meta = folder / "persona.toml"
        name = tomllib.loads(meta.read_text("utf-8")).get("name") if meta.is_file() else None
        files = [f for f in discover(folder) if f.suffix != ".toml"]
        card = save_user_persona(agent.settings, pid, folder, [f.relative_to(folder).as_posix() for f in files], name)
        if progress:
            print(f"ingesting the evaluation persona {pid} from {folder}", file=sys.stderr)
        ingest(agent.store, card.id, files, root=folder, chunk_tokens=agent.settings.chunk_tokens)
        done.append(pid)
    return done


def _stylo_tokens(text: str) -> list[str]:
    """faststylometry's English tokens (pronouns removed) plus Korean words (eojeol)."""
    import re

    from faststylometry.en import tokenise_remove_pronouns_en

    return tokenise_remove_pronouns_en(text) + re.findall(r"[\uac00-\ud7a3]+", text)


def burrows_delta(agent: Any, items: Sequence[Mapping[str, Any]], vocab: int = 50) -> tuple[dict[str, Any], str]:
    """Burrows' Delta (Burrows 2002; faststylometry) between each backend's answers for a persona
    and every persona's own writing: ``{backend: {persona: {"own", "nearest_other", "margin"}}}``
    (margin = nearest other persona's Delta minus the own one: above 0 means the answers read
    more like their own writer). The writing is cut into 300-token segments so each persona has
    several texts; the ``vocab`` most frequent words of all the writing are the features."""
    try:
        from faststylometry import Corpus
        from faststylometry.burrows_delta import calculate_burrows_delta

        from evals.metrics import strip_markers
    except ImportError as exc:
        return {}, f"Burrows' Delta unavailable: {exc}"
    train = Corpus()
    personas = sorted({str(it["persona"]) for it in items})
    written = 0
    for pid in personas:
        try:
            idx = agent.retriever.index(pid)
        except Exception:
            continue
        train.add_book(pid, "writing", "\n".join(c.text for c in idx.chunks))
        written += 1
    if written < 2:
        return {}, "Burrows' Delta needs two indexed personas"
    train.tokenise(_stylo_tokens)
    train = train.split(300)
    out: dict[str, Any] = {}
    for backend in sorted({str(it["backend"]) for it in items}):
        test = Corpus()
        for pid in personas:
            said = [
                strip_markers(str(it["answer"]))
                for it in items
                if it["backend"] == backend and it["persona"] == pid and not it["abstained"] and it["answer"]
            ]
            if said:
                test.add_book(pid, "answers", "\n".join(said))
        if not test.authors:
            continue
        test.tokenise(_stylo_tokens)
        try:
            table = calculate_burrows_delta(
                train, test, vocab_size=vocab, tok_match_pattern=r"^(?:[a-z][a-z]+|[\uac00-\ud7a3]+)$"
            )
        except Exception as exc:  # too little text for a z-score: say why, keep the run
            return {}, f"Burrows' Delta failed: {type(exc).__name__}: {exc}"
        per: dict[str, Any] = {}
        for pid in sorted(set(test.authors)):
            col = f"{pid} - answers"  # faststylometry names test texts "author - book"
            if pid not in table.index or col not in table.columns:
                continue
            own = float(table.loc[pid, col])
            others = [float(table.loc[o, col]) for o in table.index if o != pid]
            nearest = min(others) if others else None
            per[pid] = {"own": own, "nearest_other": nearest, "margin": None if nearest is None else nearest - own}
        margins = [v["margin"] for v in per.values() if v["margin"] is not None]
        out[backend] = {"personas": per, "mean_margin": sum(margins) / len(margins) if margins else None}
    return out, ""


def judge_comparison(llm_judge: Any, checker: Any, limit: int, progress: bool = False) -> dict[str, Any]:
    """The LLM judge and the offline checker on the same labelled examples: ``limit`` rows of
    evals/datasets/checker_ko.jsonl taken at an even stride (both subsets, both labels)."""
    from evals.judges import compare_judges, judge_both

    path = Path(__file__).with_name("datasets") / "checker_ko.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit <= 0:
        return {"skipped": "--judge-limit 0"}
    rows = rows[:: max(1, len(rows) // limit)][:limit]
    if progress:
        print(f"LLM judge and checker on {len(rows)} labelled Korean examples...", file=sys.stderr)
    return {"data": path.name, **compare_judges(judge_both(rows, checker, llm_judge))}


def _llm_judge(judge: Any, question: str, answer: Any, passages: Sequence[Any]) -> dict[str, Any]:
    if answer.abstained:
        return {"status": "skipped", "faithfulness": None, "claims": [], "error": "abstained"}
    verdict = judge.judge(question, answer.text, [p.chunk.text for p in passages])
    return verdict.to_dict()  # type: ignore[no-any-return]


def _run_attacks(agent: Any, names: Sequence[str], wanted: bool | None, progress: bool) -> dict[str, Any]:
    """evals.attacks per backend when importable: by default for extractive only (LLM runs are slow)."""
    out: dict[str, Any] = {}
    for name in names:
        if not (wanted if wanted is not None else name == "extractive"):
            out[name] = {"skipped": "off (--attacks to run them)" if wanted is None else "off (--no-attacks)"}
            continue
        try:
            from evals.attacks import run_attacks
        except ImportError as exc:
            out[name] = {"skipped": f"evals.attacks not importable: {exc}"}
            continue
        try:
            if progress:
                print(f"attack probes against {name}...", file=sys.stderr)
            out[name] = run_attacks(agent, name)
        except Exception as exc:  # the gold figures still stand; the gate sees no attack figure
            out[name] = {"skipped": f"attack run failed: {type(exc).__name__}: {exc}"}
    return out


# ---------------------------------------------------------------------------------------
# Baselines and the gate
# ---------------------------------------------------------------------------------------


def compact(results: Mapping[str, Any]) -> dict[str, Any]:
    """The gated figures of a run: what evals/baseline.json holds."""
    backends: dict[str, Any] = {}
    for b, figs in results["by_backend"].items():
        entry: dict[str, Any] = {"metrics": {k: figs.get(k) for k in (*MARGINS, *CEILINGS)}}
        att = results.get("attacks", {}).get(b, {})
        if "succeeded" in att:
            entry["attacks_succeeded"] = att["succeeded"]
            entry["attacks_tried"] = att.get("tried")
        backends[b] = entry
    meta = results.get("meta", {})
    return {
        "schema": SCHEMA,
        "created": meta.get("created"),
        "n_questions": meta.get("n_questions"),
        "persona": meta.get("persona"),
        "limit": meta.get("limit"),
        "margins": {**MARGINS, "attacks_succeeded": ATTACK_MARGIN},
        "ceilings": dict(CEILINGS),
        "backends": backends,
    }


def _figures(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per backend, the gated figures of a compact baseline or of a full results.json."""
    if "by_backend" in doc:
        doc = compact(doc)
    out: dict[str, dict[str, Any]] = {}
    for b, entry in (doc.get("backends") or {}).items():
        figs = dict(entry.get("metrics") or {})
        if entry.get("attacks_succeeded") is not None:
            figs["attacks_succeeded"] = entry["attacks_succeeded"]
        out[b] = figs
    return out


@dataclass
class GateResult:
    checks: list[dict[str, Any]]
    notes: list[str]

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["ok"]]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "regressions": self.regressions, "checks": self.checks, "notes": self.notes}


def gate(
    results: Mapping[str, Any],
    baseline: Mapping[str, Any],
    margins: Mapping[str, float] = MARGINS,
    attack_margin: int = ATTACK_MARGIN,
    ceilings: Mapping[str, float] = CEILINGS,
) -> GateResult:
    """Compare a run with a baseline: every figure both have, for every backend both ran.
    Shares may fall by their margin; counts in ``ceilings`` (lower is better) may rise by theirs."""
    current, base = _figures(results), _figures(baseline)
    checks: list[dict[str, Any]] = []
    notes: list[str] = []
    n_now, n_base = results.get("meta", {}).get("n_questions"), baseline.get("n_questions")
    if n_base is not None and n_now != n_base:
        notes.append(f"the baseline was run on {n_base} questions, this run on {n_now}: figures may not compare")
    for b, figs in base.items():
        if b not in current:
            notes.append(f"backend {b} is in the baseline but was not run")
            continue
        for metric, was in figs.items():
            now = current[b].get(metric)
            if was is None or now is None:
                if was is not None:
                    notes.append(f"{b} {metric}: no figure in this run (baseline {was})")
                continue
            if metric == "attacks_succeeded":
                ok = now <= was + attack_margin
                margin: float = attack_margin
            elif metric in ceilings:
                margin = ceilings[metric]
                ok = now <= was + margin + EPS
            elif metric in margins:
                margin = margins[metric]
                ok = now >= was - margin - EPS
            else:
                continue
            checks.append({"backend": b, "metric": metric, "baseline": was, "current": now, "margin": margin, "ok": ok})
    if not checks:
        notes.append("nothing was compared: the run and the baseline share no backend with figures")
    return GateResult(checks, notes)


def read_baseline(path: Path) -> dict[str, Any]:
    doc = json.loads(Path(path).read_text("utf-8"))
    if not isinstance(doc, dict) or not ("backends" in doc or "by_backend" in doc):
        raise ValueError(f"{path}: not a results.json nor a compact baseline (no 'backends' / 'by_backend')")
    return doc


# ---------------------------------------------------------------------------------------
# Output and command line
# ---------------------------------------------------------------------------------------


def write_outputs(results: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """DIR/results.json and DIR/report.html."""
    from evals.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    tmp = results_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(results_path)
    report_path = write_report(results, out / "report.html")
    return results_path, report_path


def _fmt(v: Any) -> str:
    return "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


VOICE = ("unnamed_topic_refusals", "third_person_refs", "markers_in_speech", "median_markers", "median_words")
SUMMARY_COLUMNS = (
    "hit@5",
    "mrr",
    "faithfulness",
    "citation_recall",
    "citation_precision",
    "abstention_recall",
    "false_premise_correction",
    "key_fact_recall",
    "first_person",
    "stance_agreement",
    "median_markers",
)


def format_summary(results: Mapping[str, Any]) -> str:
    """Overall figures per backend and a per-kind table, for the terminal."""
    from evals.metrics import METRICS

    lines = []
    for b, figs in results["by_backend"].items():
        lines.append(f"backend {b}: {figs['n']} questions, {figs['errors']} errors")
        for k in (*METRICS, *VOICE, "abstention_rate", "llm_faithfulness"):
            if k in figs:
                lines.append(f"  {k:26s} {_fmt(figs[k])}")
        delta = (results.get("burrows_delta") or {}).get(b) or {}
        if delta.get("mean_margin") is not None:
            lines.append(f"  {'burrows_delta_margin':26s} {_fmt(delta['mean_margin'])}")
        att = results.get("attacks", {}).get(b, {})
        lines.append(
            f"  {'attacks':26s} {att['succeeded']} of {att['tried']} succeeded"
            if "succeeded" in att
            else f"  {'attacks':26s} {att.get('skipped', '—')}"
        )
        lines.append("")
        head = f"  {'kind':14s} {'n':>4s}" + "".join(f" {c[:10]:>10s}" for c in SUMMARY_COLUMNS)
        lines.append(head)
        for kind, row in results["per_backend"][b]["by_kind"].items():
            lines.append(f"  {kind:14s} {row['n']:4d}" + "".join(f" {_fmt(row[c]):>10s}" for c in SUMMARY_COLUMNS))
        lines.append("")
    dev = results.get("checker_dev", {})
    if dev.get("available"):
        lines.append(
            f"checker on dev, locked part: macro AUROC {dev['checker_locked']['macro']['auroc']:.3f} "
            f"(floor {dev['floor_locked']['macro']['auroc']:.3f}); tuning part, CV: "
            f"{dev['checker_tuning_cv']['macro']['auroc']:.3f} (floor {dev['floor_tuning']['macro']['auroc']:.3f})"
        )
    else:
        lines.append(f"checker dev figures: {dev.get('reason', 'unavailable')}")
    if "judge_comparison" in results:
        from evals.judges import format_comparison

        cmp = results["judge_comparison"]
        lines.append(format_comparison(cmp) if "n" in cmp else f"LLM judge comparison: {cmp.get('skipped')}")
    if "gate" in results:
        g = results["gate"]
        lines.append("gate: " + ("passed" if g["passed"] else f"FAILED ({len(g['regressions'])} regressions)"))
        for r in g["regressions"]:
            lines.append(
                f"  {r['backend']} {r['metric']}: {_fmt(r['current'])} vs baseline {_fmt(r['baseline'])} "
                f"(margin {r['margin']})"
            )
        lines.extend(f"  note: {n}" for n in g["notes"])
    return "\n".join(lines)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        default=None,
        help="extractive | openai | local | auto, or several joined by commas (default: PERSONA_BACKEND, auto)",
    )
    p.add_argument("--persona", default=None, help="only this persona's gold questions")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output directory (default ./{DEFAULT_OUT})")
    p.add_argument("--limit", type=int, default=None, help="only N questions, taken round-robin across kinds")
    p.add_argument("--baseline", default=None, help="results.json or baseline to gate on (exit 1 on regression)")
    p.add_argument(
        "--judge",
        action="store_true",
        help="also judge answers with the LLM judge (OPENAI_* configured), and compare it with the checker on "
        "labelled Korean examples",
    )
    p.add_argument(
        "--judge-limit",
        type=int,
        default=40,
        help="labelled examples on which --judge compares the LLM judge with the checker (default 40)",
    )
    p.add_argument(
        "--attacks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the attack probes too (default: on for the extractive backend only)",
    )
    p.add_argument(
        "--dev",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the checker's figures on ../shared/evaldata/dev.jsonl when it exists (default on)",
    )
    p.add_argument("--gold", default=str(GOLD), help="gold questions (JSONL; default: the bundled set)")
    p.add_argument("--save-baseline", default=None, help="also write the run's gated figures to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from agent.pipeline import build_agent
    from evals.judges import LLMJudge
    from knowledge.errors import PersonaError

    llm_judge = None
    if args.judge:
        llm_judge = LLMJudge.from_env()
        if llm_judge is None:
            print(
                "error: --judge needs an OpenAI-compatible model: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL "
                "(a compatible server), and PERSONA_JUDGE_MODEL or PERSONA_CHAT_MODEL for the model",
                file=sys.stderr,
            )
            return 2
    baseline = None
    if args.baseline:
        try:
            baseline = read_baseline(Path(args.baseline))
        except (OSError, ValueError) as exc:
            print(f"error: baseline {args.baseline}: {exc}", file=sys.stderr)
            return 2
    backends = [b.strip() for b in args.backend.split(",") if b.strip()] if args.backend else None
    try:
        results = run_eval(
            build_agent(),
            backends,
            persona=args.persona,
            limit=args.limit,
            gold=Path(args.gold),
            attacks=args.attacks,
            dev=DEV_PATH if args.dev else None,
            llm_judge=llm_judge,
            progress=not args.quiet,
            judge_labelled=args.judge_limit,
        )
    except PersonaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if baseline is not None:
        results["gate"] = gate(results, baseline).to_dict()
    results_path, report_path = write_outputs(results, Path(args.out))
    if args.save_baseline:
        Path(args.save_baseline).write_text(json.dumps(compact(results), indent=2) + "\n", encoding="utf-8")
    print(format_summary(results))
    print(f"\nwrote {results_path} and {report_path}")
    return 0 if baseline is None or results["gate"]["passed"] else 1
