"""Hybrid retrieval over the real index: English, Korean and cross-lingual questions find their entry."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from agent.lexical import BM25
from knowledge.errors import StoreError
from knowledge.text import lexical_tokens

CASES = [
    # (persona, question, source, a phrase of the entry that answers)
    ("raj", "What went wrong in your first big training run?", "raj-diary.en.txt", "gradient clipping bug"),
    ("raj", "What did you learn when a model had supposedly unlearned a dataset?", "raj-diary.en.txt", "unlearned"),
    ("raj", "Tell me about the grokking graph at ICML", "raj-diary.en.txt", "grokking"),
    ("raj", "첫 대규모 모델 학습에서 무엇이 잘못됐나요?", "raj-diary.ko.txt", "Gradient clipping"),
    ("raj", "동료와 alignment에 대해 밤새 논쟁한 이야기를 해 주세요", "raj-diary.ko.txt", "alignment"),
    # Cross-lingual: the answer exists only in the other language's diary.
    ("raj", "그로킹 그래프를 다시 봤을 때 무엇을 깨달았나요?", "raj-diary.en.txt", "grokking"),
    ("raj", "하이퍼파라미터 실험에서 무엇을 깨달았나요?", "raj-diary.en.txt", "hyperparameter"),
    (
        "raj",
        "What did you argue about all night with a colleague regarding alignment?",
        "raj-diary.ko.txt",
        "alignment",
    ),
    (
        "intern",
        "What did the internship teach you about reproducibility?",
        "essay-internship-reflections.txt",
        "reproduce",
    ),
    ("newcomer", "신경망에 대한 호기심은 어디서 시작됐나요?", "essay-from-curiosity-to-research.txt", "YouTube"),
    ("diarist", "Why were RNNs hard to parallelize?", "research-diary-readme.txt", "parallel"),
]


@pytest.mark.parametrize(("persona", "question", "source", "phrase"), CASES, ids=[c[1][:40] for c in CASES])
def test_right_entry_in_top_3(agent: Any, persona: str, question: str, source: str, phrase: str) -> None:
    hits = agent.retriever.retrieve(question, 3, persona)
    assert any(h.chunk.source == source and phrase.lower() in h.chunk.text.lower() for h in hits), [
        (h.chunk.source, h.chunk.title) for h in hits
    ]


def test_retrieval_is_restricted_to_the_persona(agent: Any) -> None:
    for persona, sources in [
        ("intern", {"essay-internship-reflections.txt"}),
        ("raj", {"raj-diary.en.txt", "raj-diary.ko.txt"}),
    ]:
        hits = agent.retriever.retrieve("What did you learn about research?", 10, persona)
        assert hits and {h.chunk.source for h in hits} <= sources


def test_no_near_duplicates(agent: Any) -> None:
    hits = agent.retriever.retrieve("scaling law experiments", 8, "raj")
    texts = [set(lexical_tokens(h.chunk.text)) for h in hits]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            overlap = len(texts[i] & texts[j]) / max(1, len(texts[i] | texts[j]))
            assert overlap < 0.8


def test_bm25_tokenises_korean_particles() -> None:
    bm25 = BM25(["스케일링이 답이 아닐 수도 있습니다", "Gradient clipping 버그였다", "The loss exploded"])
    top = bm25.top("스케일링은 답인가요", 1)
    assert top and top[0][0] == 0
    top = bm25.top("exploding losses", 1)
    assert top and top[0][0] == 2


def test_a_term_only_one_chunk_holds_outranks_siblings_worded_alike() -> None:
    from agent.retrieve import _fuse, _unique

    docs = [
        "The calibration code for run 48213 was VIOLET-7731. We slept.",
        "The calibration code for run 55120 was AMBER-1200. The code ran.",
        "The calibration code for run 61007 was TEAL-4410. The code ran.",
        "We walked to the lab and talked about loss curves.",
    ]
    bm25 = BM25(docs)
    index = bm25._index
    question = "What was the calibration code for run 48213?"
    scores = index.scores(question)
    lexical = index.top(question, 10, scores=scores)
    assert lexical[0][0] == 0, "BM25 alone ranks the chunk with the key first"
    # Dense finds the siblings first (they say "code" twice), the target only third.
    dense = [(1, 0.86), (2, 0.85), (0, 0.84)]
    plain = _fuse(dense, lexical)
    assert plain[0][0] != 0, "two-list RRF prefers a sibling found high by both lists"
    unique = [int(r) for r in _unique(index, question, scores)]
    assert unique == [0]
    assert _fuse(dense, lexical, unique)[0][0] == 0


def test_lexical_index_round_trips_and_rejects_damage(tmp_path: Any) -> None:
    from knowledge.lexical_index import LexicalIndex

    texts = {"a" * 32: "Gradient clipping 버그였다", "b" * 32: "The loss exploded twice", "c" * 32: "스케일링이 답"}
    built = LexicalIndex.build("h1", list(texts), ["ko", "en", "ko"], lambda want: {i: texts[i] for i in want})
    built.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path, "h1")
    assert loaded is not None and loaded.terms == built.terms
    assert loaded.top("exploding losses", 3) == built.top("exploding losses", 3)
    assert loaded.row_of("b" * 32) == 1 and loaded.row_of("d" * 32) is None
    assert loaded.lang(0) == "ko" and loaded.idf("loss") == built.idf("loss")
    assert LexicalIndex.load(tmp_path, "h2") is None
    (tmp_path / "h1" / "terms.json").write_text("[", encoding="utf-8")
    assert LexicalIndex.load(tmp_path, "h1") is None


@pytest.mark.parametrize("texts", [{}, {"c" * 32: "!!! ... ---"}])
def test_a_lexical_index_with_no_words_builds_saves_and_answers_nothing(tmp_path: Path, texts: dict[str, str]) -> None:
    """Every entry marked private, or chunks without a word: bm25s refuses an empty vocabulary."""
    from knowledge.lexical_index import LexicalIndex

    ids = sorted(texts)
    index = LexicalIndex.build("head", ids, ["en"] * len(ids), lambda want: {i: texts[i] for i in want}, None)
    assert index.n == len(ids) and index.top("anything", 5) == [] and index.idf("anything") > 0
    index.save(tmp_path)
    again = LexicalIndex.load(tmp_path, "head")
    assert again is not None and again.n == len(ids) and again.top("anything", 5) == []


def _searches_counted(store: Any, searches: list[str | None]) -> Any:
    """``store`` whose ``nearest`` appends each search's language filter (None: unfiltered) to ``searches``."""

    def nearest(persona: str, vector: Any, n: int, lang: str | None = None) -> Any:
        searches.append(lang)
        return store.nearest(persona, vector, n, lang=lang)

    return type("Spy", (), {"__getattr__": lambda _, name: getattr(store, name), "nearest": staticmethod(nearest)})()


def test_warm_up_loads_what_a_first_question_waits_for_and_changes_no_answer(agent: Any) -> None:
    """HybridRetriever.warm (run by ui.serve at start-up): the index is cached, Chroma has searched
    the collection, the rarer languages' vectors are read; answers are those of a cold retriever, and
    the first question after it needs no filtered Chroma search."""
    from agent.retrieve import HybridRetriever

    question = "그로킹 그래프를 다시 봤을 때 무엇을 깨달았나요?"
    cold = [r.chunk.id for r in HybridRetriever(agent.store).retrieve(question, 5, "raj")]
    warmed = HybridRetriever(agent.store)
    took = warmed.warm("raj")
    assert set(took) == {"index", "search", "vectors"} and all(v >= 0 for v in took.values())
    idx = warmed._cache["raj"]
    assert len(idx.langs) == 2  # raj writes in English and Korean: one language's vectors are read
    largest = max(idx.lang_counts, key=lambda lang: idx.lang_counts[lang])
    assert set(idx.vectors) == set(idx.langs) - {largest} and not idx.loading
    searches: list[str | None] = []
    warmed.store = _searches_counted(agent.store, searches)
    assert [r.chunk.id for r in warmed.retrieve(question, 5, "raj")] == cold
    assert searches == [None]  # one unfiltered search; no per-language search with a where filter


def test_the_coverage_rules_best_cosines_reuse_the_dense_search_of_the_same_question(agent: Any) -> None:
    """ask() searches Chroma once per question: best_cosines after retrieve (same vector) reads the
    index's memo; another vector searches again; the memo keeps the last DENSE_MEMO searches."""
    from agent.retrieve import DENSE_MEMO, HybridRetriever

    retriever = HybridRetriever(agent.store)
    calls: list[str | None] = []
    retriever.store = _searches_counted(agent.store, calls)
    question = "What went wrong in your first big training run?"
    vector = agent.embedder.embed_query(question)
    hits = retriever.retrieve(question, 5, "raj", vector=vector)
    best = retriever.best_cosines("raj", vector)
    assert len(calls) == 1 and hits and set(best) == {"en", "ko"}
    assert best == HybridRetriever(agent.store).best_cosines("raj", vector)  # the memo holds what a search gives
    retriever.best_cosines("raj", agent.embedder.embed_query("Who was your advisor?"))
    assert len(calls) == 2
    idx = retriever._cache["raj"]
    for i in range(DENSE_MEMO + 3):
        retriever.best_cosines("raj", [float(i + 1)] + list(vector)[1:])
    assert len(idx.dense_memo) == DENSE_MEMO


def test_store_warm_on_an_empty_collection_is_a_no_op(agent: Any) -> None:
    assert agent.store.warm("nobody-indexed-this") is False


def test_serve_warm_up_warms_every_indexed_persona(agent: Any) -> None:
    from agent.personas import list_personas
    from ui.serve import warm

    done = warm(agent)
    assert set(done) == {c.id for c in list_personas(agent.settings)}
    assert all(set(steps) == {"index", "search", "vectors"} for steps in done.values())


def test_a_one_shot_process_waits_for_the_background_vector_read_before_exiting(agent: Any) -> None:
    """The first question of a cold retriever reads a rarer language's vectors in a background
    thread; it is not a daemon, so a `persona ask` that ends first does not kill it inside Chroma
    (a daemon thread there crashed the process with SIGSEGV at exit)."""
    import threading

    from agent.retrieve import HybridRetriever

    release = threading.Event()
    get_vectors = agent.store.get_vectors

    def slow(persona: str, ids: Any) -> Any:  # a large store: the read is still going
        release.wait(30)
        return get_vectors(persona, ids)

    fresh = HybridRetriever(agent.store)
    fresh.store = type(
        "Slow", (), {"__getattr__": lambda _, name: getattr(agent.store, name), "get_vectors": staticmethod(slow)}
    )()
    idx = fresh.index("raj")
    vector = agent.embedder.embed_query("Attention 시각화")
    # A language short in the unfiltered search is searched exactly over its own vectors, which a
    # background thread reads while Chroma's filtered search answers this first time.
    hits = fresh._exact("raj", idx, vector, "ko")
    readers = [t for t in threading.enumerate() if t.name == "persona-vectors-ko"]
    assert hits and len(readers) == 1 and readers[0].is_alive()
    assert not readers[0].daemon
    release.set()
    readers[0].join(30)
    assert "ko" in idx.vectors


def _store_with(agent: Any, **overrides: Any) -> Any:
    """``agent.store`` with some methods replaced (a seam for faults and counts)."""
    return type("Store", (), {"__getattr__": lambda _, name: getattr(agent.store, name), **overrides})()


def test_a_failed_background_vector_read_is_tried_again(agent: Any) -> None:
    """A read that fails (a store gone for a moment) frees its language: the next query that needs
    it starts the read again, where before every later query fell to Chroma's filtered search."""
    from agent.retrieve import HybridRetriever

    calls: list[int] = []
    get_vectors = agent.store.get_vectors

    def flaky(persona: str, ids: Any) -> Any:
        calls.append(len(ids))
        if len(calls) == 1:
            raise StoreError("store briefly unreachable")
        return get_vectors(persona, ids)

    fresh = HybridRetriever(agent.store)
    fresh.store = _store_with(agent, get_vectors=staticmethod(flaky))
    idx = fresh.index("raj")
    vector = agent.embedder.embed_query("Attention 시각화")

    def reader_done() -> None:
        for t in [t for t in threading.enumerate() if t.name == "persona-vectors-ko"]:
            t.join(30)

    assert fresh._exact("raj", idx, vector, "ko")  # Chroma's filtered search answers meanwhile
    reader_done()
    assert "ko" not in idx.vectors and "ko" not in idx.loading
    assert fresh._exact("raj", idx, vector, "ko")
    reader_done()
    assert len(calls) == 2 and "ko" in idx.vectors


def test_a_language_larger_than_exact_rows_is_never_read_whole(agent: Any, monkeypatch: Any) -> None:
    import agent.retrieve as retrieve

    monkeypatch.setattr(retrieve, "EXACT_ROWS", 0)
    fresh = retrieve.HybridRetriever(agent.store)
    read: list[int] = []
    fresh.store = _store_with(agent, get_vectors=staticmethod(lambda persona, ids: read.append(len(ids))))
    idx = fresh.index("raj")
    hits = fresh._exact("raj", idx, agent.embedder.embed_query("Attention 시각화"), "ko")
    assert hits and all(idx.lexical.lang(row) == "ko" for row, _ in hits)
    assert not [t for t in threading.enumerate() if t.name == "persona-vectors-ko"]
    assert read == [] and "ko" not in idx.vectors


def test_a_language_short_in_the_first_dense_results_is_looked_for_in_wider_ones(agent: Any, monkeypatch: Any) -> None:
    """The first unfiltered search (4 x depth) holds too few of a language; a wider one, still
    unfiltered, is asked before any exact search. Here depth 2 (8 results) over Raj's chunks, with
    the first search made to return English chunks only."""
    import agent.retrieve as retrieve

    monkeypatch.setattr(retrieve, "WIDEN", 4)
    fresh = retrieve.HybridRetriever(agent.store, depth=2)
    idx = fresh.index("raj")
    sizes: list[tuple[int, str | None]] = []
    nearest = agent.store.nearest

    def spy(persona: str, vector: Any, n: int, lang: str | None = None) -> Any:
        sizes.append((n, lang))
        got = nearest(persona, vector, n, lang=lang)
        if len(sizes) == 1:  # the first search: English only, as for a Korean question at 1M chunks
            got = [(cid, sim) for cid, sim in got if idx.lexical.lang(idx.lexical.row_of(cid)) == "en"]
        return got

    fresh.store = _store_with(agent, nearest=staticmethod(spy))
    dense = fresh._dense("raj", idx, agent.embedder.embed_query("Attention 시각화"))
    assert sizes == [(8, None), (min(32, idx.lexical.n), None)]
    assert len(dense["ko"]) == 2 and len(dense["en"]) == 2


def _large(agent: Any, persona: str, monkeypatch: Any) -> Any:
    """A fresh index of ``persona`` that takes itself for a large one (``SCAN_CHUNKS`` = 0)."""
    import agent.retrieve as retrieve

    monkeypatch.setattr(retrieve, "SCAN_CHUNKS", 0)
    small = agent.retriever.index(persona)
    return retrieve._PersonaIndex(small.store, persona, small.lexical)


@pytest.mark.parametrize("persona", ["raj", "diarist", "intern", "newcomer"])
def test_word_look_ups_from_the_postings_agree_with_searching_the_whole_text(
    agent: Any, persona: str, monkeypatch: Any
) -> None:
    """A large persona's vocabulary look-ups (agent.question._known, as understand() makes them)
    read only the chunks the BM25 postings point to; on the bundled writings they give what
    searching the whole lower-cased text gives, for every word of the gold and calibration
    questions and of the writings themselves. Not compared: words a variant of which is a stop
    word or one letter (no postings: counted as written in English writings), and fragments of a
    contraction ("won" of "won't", "ve" of "I've"), both documented on ``has_word``."""
    import re

    from agent.question import CorpusWords, _known, _variants

    datasets = Path(__file__).parents[1] / "evals" / "datasets"
    words: set[str] = set()
    for name in ("persona_qa.jsonl", "stances.jsonl", "abstain_calibration.jsonl"):
        text = (datasets / name).read_text("utf-8").lower()
        words.update(re.findall(r"\b[a-z][a-z0-9]*\b", text))
    whole = CorpusWords(agent.retriever.index(persona).corpus_lower)
    words.update(re.findall(r"\b[a-z][a-z0-9]*\b", whole.corpus_lower))
    large = _large(agent, persona, monkeypatch)

    def postings_free(w: str) -> bool:
        return any(not lexical_tokens(f) for v in _variants(w) if v for f in (v, v + "s", v + "es"))

    compared = [w for w in sorted(words) if not postings_free(w)]
    assert len(compared) > 1000
    differ = [w for w in compared if _known(w, whole) != _known(w, large)]
    contraction = [w for w in differ if re.search(rf"(?<![a-z0-9]){w}'[a-z]|[a-z]'{w}(?![a-z0-9])", whole.corpus_lower)]
    assert differ == contraction
    assert "corpus_text" not in large.__dict__ and "chunks" not in large.__dict__


def test_a_large_personas_first_question_reads_no_whole_text(agent_factory: Any, monkeypatch: Any) -> None:
    """ask() on a persona above ``SCAN_CHUNKS`` answers its vocabulary checks from the postings:
    neither every chunk nor the whole text is loaded, and the answer and its kind are those of
    the small-persona path ("your years at DeepMind" is still a premise; the training-run question
    still answers from the entry it did)."""
    import agent.pipeline as pipeline
    import agent.retrieve as retrieve

    small = agent_factory()
    before = [small.ask(q, persona="raj", backend="extractive") for q in _FIRST]
    monkeypatch.setattr(retrieve, "SCAN_CHUNKS", 0)
    monkeypatch.setattr(pipeline, "VIEW_POOL_CHUNKS", 0)
    large = pipeline.Agent(small.settings)  # its own retriever, so its own index objects
    after = [large.ask(q, persona="raj", backend="extractive") for q in _FIRST]
    idx = large.retriever.index("raj")
    assert "corpus_text" not in idx.__dict__ and "chunks" not in idx.__dict__ and idx.words
    assert [a.text for a in after] == [b.text for b in before]
    assert "DeepMind" in after[0].text and not after[0].citations
    assert after[1].citations


_FIRST = ("Tell me about your years at DeepMind.", "What went wrong in your first big training run?")


def test_one_question_reads_each_personas_manifest_head_once(agent: Any) -> None:
    """Agent.prepare answers over one snapshot of each index (HybridRetriever.snapshot): the
    manifest head is read once per persona it consults, not at every step (there were 9-15 reads
    per question). Raj's question consults him and his cohort, the other bundled personas
    (Agent.cohort_best), not the user personas other tests have ingested."""
    from agent.personas import list_personas

    agent.ask("warm-up", persona="raj", backend="extractive")
    reads: list[str] = []
    head = agent.store.manifest_head
    retriever = agent.retriever
    spied = _store_with(agent, manifest_head=staticmethod(lambda persona: reads.append(persona) or head(persona)))
    original, retriever.store = retriever.store, spied
    try:
        agent.prepare("Is scaling up models the road to superintelligence?", "raj", None)
    finally:
        retriever.store = original
    assert sorted(reads) == sorted({c.id for c in list_personas(agent.settings) if c.bundled})


def test_outside_a_snapshot_every_look_up_sees_a_new_ingest(agent: Any) -> None:
    """The index is still checked against the store at each look-up outside a snapshot, and a
    snapshot ends with its block."""
    retriever = agent.retriever
    reads: list[str] = []
    head = agent.store.manifest_head
    spied = _store_with(agent, manifest_head=staticmethod(lambda persona: reads.append(persona) or head(persona)))
    original, retriever.store = retriever.store, spied
    try:
        with retriever.snapshot():
            first = retriever.index("raj")
            with retriever.snapshot():  # nested: shares the outer block's indexes
                assert retriever.index("raj") is first
            assert retriever.index("raj") is first
        assert reads == ["raj"]
        retriever.index("raj")
        retriever.index("raj")
        assert reads == ["raj"] * 3
    finally:
        retriever.store = original


@pytest.mark.parametrize("persona", ["diarist", "raj"])
def test_a_large_personas_clipping_look_up_agrees_with_searching_the_whole_text(
    agent: Any, persona: str, monkeypatch: Any
) -> None:
    """begins_word from the BM25 vocabulary (a large persona) against the whole-text search, for
    clippings of the writings' words and for prefixes they do not begin."""
    from agent.question import CorpusWords, clipped

    whole = CorpusWords(agent.retriever.index(persona).corpus_lower)
    large = _large(agent, persona, monkeypatch)
    for word in ("repo", "info", "stats", "hallu", "interp", "zzzz", "deepm"):
        assert clipped(word, whole) == clipped(word, large), word
    if persona == "diarist":
        assert clipped("repo", large) and not clipped("zzzz", large)
