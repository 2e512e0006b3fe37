"""Benchmark step, ground truth: the gold questions and the hit@k rule shared by every system."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge.config import REPO_ROOT

GOLD_PATH = REPO_ROOT / "evals" / "datasets" / "persona_qa.jsonl"


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    persona: str
    kind: str
    question: str
    history: tuple[dict[str, str], ...]
    gold: tuple[tuple[str, str], ...]  # (source, quote)

    @property
    def scored(self) -> bool:
        """Counted in hit@k: out-of-scope questions have no gold passage."""
        return self.kind != "out_of_scope" and bool(self.gold)


def load_gold(path: Path = GOLD_PATH) -> list[GoldQuestion]:
    out = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        out.append(
            GoldQuestion(
                id=row["id"],
                persona=row["persona"],
                kind=row["kind"],
                question=row["question"],
                history=tuple(row.get("history") or ()),
                gold=tuple((g["source"], g["quote"]) for g in row.get("gold") or ()),
            )
        )
    return out


def is_hit(retrieved: Iterable[tuple[str, str]], gold: Sequence[tuple[str, str]]) -> bool:
    """A (source, text) is a hit when its source is a gold source and that gold quote lies in its text;
    a hit on any gold passage counts (both diaries may be gold)."""
    return any(src == g_src and quote in text for src, text in retrieved for g_src, quote in gold)


def hit_rates(rows: Iterable[tuple[str, bool]]) -> dict[str, float]:
    """``{persona: share of hits, ..., "all": overall}`` from (persona, hit) pairs."""
    per: dict[str, list[bool]] = {}
    for persona, hit in rows:
        per.setdefault(persona, []).append(hit)
    out = {p: round(sum(h) / len(h), 3) for p, h in sorted(per.items())}
    every = [h for hs in per.values() for h in hs]
    out["all"] = round(sum(every) / len(every), 3) if every else float("nan")
    return out


def sample(questions: Sequence[GoldQuestion], n: int) -> list[GoldQuestion]:
    """``n`` questions spread evenly over the file (so over personas and kinds), deterministic."""
    if n >= len(questions):
        return list(questions)
    step = len(questions) / n
    return [questions[int(i * step)] for i in range(n)]
