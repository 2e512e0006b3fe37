"""Retrieval: dense (Chroma) and lexical (BM25) results fused by reciprocal rank, near-duplicates removed."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from agent.question import word_begins, word_in
from agent.views import View, build_inventory
from knowledge.decode import clean
from knowledge.errors import IndexMissingError
from knowledge.lexical_index import LexicalIndex, document_text
from knowledge.store import manifest_hash
from knowledge.text import detect_lang, lexical_tokens
from knowledge.types import Chunk, Retrieved

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.store import Store

RRF_K = 60  # the constant of Cormack et al. (2009): damps the weight of the very top ranks


def rrf(rank: int) -> float:
    """Reciprocal-rank fusion's vote for 0-based ``rank``: 1 / (RRF_K + rank + 1) (Cormack, Clarke
    and Buettcher 2009, "Reciprocal rank fusion outperforms Condorcet and individual rank learning
    methods"). A fused score is the sum of one item's votes over the rankings that hold it."""
    return 1.0 / (RRF_K + rank + 1)


DENSE_MEMO = 16  # dense searches kept per index (agent.retrieve._PersonaIndex.dense_memo)
NEAR_DUPLICATE = 0.8  # Jaccard of token sets above which two chunks say the same thing
UNIQUE_DF = 1  # a query term held by at most this many chunks names them: an exact match of its own
# A language short of ``depth`` rows among the first ``4 x depth`` dense results is looked for
# among the first ``WIDEN x 4 x depth`` next, still unfiltered, before an exact search of it: at
# 1,000,000 chunks (a fifth Korean) a Korean question's 80 nearest held fewer than 20 English ones.
WIDEN = 8
# A language's stored vectors are kept in memory for ``_exact`` only up to this many rows (384 MB
# at 384 dimensions, float32); a larger one is searched by Chroma's filtered search each time.
# Reading the 800,000 English vectors of the 1,000,000-chunk benchmark store took 1.35 GB.
EXACT_ROWS = 250_000
log = logging.getLogger(__name__)


class Retriever(Protocol):
    def retrieve(self, query: str, k: int, persona: str) -> list[Retrieved]: ...


# Up to this many chunks ``_PersonaIndex.has_word`` searches the whole lower-cased text (the bundled
# personas have 8-33 chunks); beyond, it reads only the chunks the BM25 postings point to, at most
# WORD_CHECK_ROWS of them for one word.
SCAN_CHUNKS = 256
WORD_CHECK_ROWS = 2048


class _PersonaIndex:
    """Everything derived from one committed manifest of a persona, built once per manifest head.

    The lexical index (loaded memory-mapped, as ingest saved it) is all a search needs; the
    chunks themselves, the view inventory, the corpus text and the idf table are loaded or
    derived on first use and kept until the next ingest replaces this object.
    """

    def __init__(self, store: Store, persona: str, lexical: LexicalIndex) -> None:
        self.store = store
        self.persona = persona
        self.lexical = lexical
        self.head = lexical.head
        counts = np.bincount(lexical.langs, minlength=len(lexical.lang_names))
        self.lang_counts = {lexical.lang_names[i]: int(n) for i, n in enumerate(counts) if n}
        self.langs = tuple(sorted(self.lang_counts))
        # Per language (None: all), rows into the index and their unit vectors, loaded on first need.
        self.vectors: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
        self.loading: set[str | None] = set()  # languages whose vectors a background thread is reading
        self._fetched: dict[int, Chunk] = {}  # chunks read by row for results, while ``chunks`` is not loaded
        # The last few dense searches by query vector: ask() reads one twice (retrieve, then the
        # coverage rule's best cosines), and a new ingest makes a new index, so none goes stale.
        self.dense_memo: OrderedDict[bytes, dict[str | None, list[tuple[int, float]]]] = OrderedDict()
        self.words: dict[str, bool] = {}  # has_word's answers from the postings
        # agent.bridge's target words by language: (words, their lexical tokens, unit vectors,
        # their hubness or None).
        self.bridge_targets: dict[str, tuple[list[str], list[str], Any, Any]] = {}
        self._lock = threading.Lock()

    @cached_property
    def chunks(self) -> list[Chunk]:
        """Every committed chunk, in row order (one read of the whole collection)."""
        ids = [self.lexical.chunk_id(r) for r in range(self.lexical.n)]
        got = {c.id: c for c in self.store.get_chunks(self.persona, ids)}
        return [got[i] for i in ids if i in got]

    @cached_property
    def by_id(self) -> dict[str, int]:
        return {c.id: n for n, c in enumerate(self.chunks)}

    @cached_property
    def visible(self) -> set[str]:
        return {self.lexical.chunk_id(r) for r in range(self.lexical.n)}

    @cached_property
    def entries(self) -> dict[tuple[str, int], list[Chunk]]:
        """The chunks of each entry, keyed by ``(source, entry_index)``, in file order."""
        out: dict[tuple[str, int], list[Chunk]] = {}
        for c in self.chunks:
            out.setdefault((c.source, c.entry_index), []).append(c)
        for lst in out.values():
            lst.sort(key=lambda c: c.start)
        return out

    @cached_property
    def views(self) -> list[View]:
        """The view inventory (agent.views) of these chunks."""
        return build_inventory(self.chunks)

    @cached_property
    def corpus_text(self) -> str:
        """Every chunk's title and text, normalised as a question is (knowledge.decode.clean)."""
        return clean("\n".join(document_text(c.title, c.text) for c in self.chunks))

    @cached_property
    def corpus_lower(self) -> str:
        """``corpus_text`` lower-cased, once per index (agent.question looks names up in it)."""
        return self.corpus_text.lower()

    def has_word(self, word: str) -> bool:
        """``word`` (lower-case), or its plural or possessive, is a whole word of these writings
        (agent.question.Writings; ``agent.question.word_in`` on ``corpus_lower``).

        Up to ``SCAN_CHUNKS`` chunks (or once ``corpus_lower`` is loaded anyway) that text is
        searched. Beyond, loading every chunk's text on a persona's first question would take
        minutes and gigabytes at a million chunks, so the BM25 postings narrow the search: only the
        chunks holding every lexical token of ``word`` (or of it with "s" or "es") are read
        (``chunks_at``) and searched, at most ``WORD_CHECK_ROWS`` of them; a word held by more chunks
        than that counts as written without reading them all. A word that is, or with "s" or "es"
        makes, a word with no lexical token (a stop word, one letter: "thi" + "s") counts as written
        when the writings hold English. Also unlike the text search, a fragment of a contraction
        ("won" of "won't", "ve" of "I've") is not found: the tokeniser keeps the contraction whole.
        Answers are kept per index (``words``)."""
        if "corpus_lower" in self.__dict__ or self.lexical.n <= SCAN_CHUNKS:
            return word_in(word, self.corpus_lower)
        with self._lock:
            known = self.words.get(word)
        if known is None:
            known = self._word_in_postings(word)
            with self._lock:
                if len(self.words) > 100_000:  # a bound on memory for a long-running process
                    self.words.clear()
                self.words[word] = known
        return known

    def begins_word(self, prefix: str) -> bool:
        """A word of these writings begins with ``prefix`` (lower-case) and goes on by two letters or
        more (agent.question.Writings; ``agent.question.word_begins`` on ``corpus_lower``). Beyond
        ``SCAN_CHUNKS`` chunks the BM25 vocabulary is scanned instead: a lexical token that begins
        with the prefix's stem and is longer by two or more."""
        if "corpus_lower" in self.__dict__ or self.lexical.n <= SCAN_CHUNKS:
            return word_begins(prefix, self.corpus_lower)
        stems = lexical_tokens(prefix)
        if len(stems) != 1:
            return False
        return any(t.startswith(stems[0]) and len(t) >= len(stems[0]) + 2 for t in self.lexical.vocabulary)

    def _word_in_postings(self, word: str) -> bool:
        # word_in also accepts the word followed by "s", "es" or "'s", which may stem otherwise
        # ("capabilitie" + "s"): the chunks holding the tokens of any of these forms are candidates.
        found: list[np.ndarray] = []
        for form in (word, word + "s", word + "es"):
            toks = list(dict.fromkeys(lexical_tokens(form)))
            if not toks:
                # A stop word or a single letter has no postings: it counts as written when the
                # writings hold English (the language of the stop-word list).
                return "en" in self.langs
            postings = sorted((self.lexical.rows_with(t) for t in toks), key=len)
            rows = postings[0]
            for other in postings[1:]:
                rows = np.intersect1d(rows, other, assume_unique=True)
            found.append(rows)
        rows = np.unique(np.concatenate(found))
        for lo in range(0, min(len(rows), WORD_CHECK_ROWS), 256):
            batch = [int(r) for r in rows[lo : lo + 256]]
            for c in self.chunks_at(batch).values():
                if word_in(word, clean(document_text(c.title, c.text)).lower()):
                    return True
        return len(rows) > WORD_CHECK_ROWS

    @cached_property
    def idf(self) -> dict[str, float]:
        """BM25 idf of every term of the index (the same values the lexical side scores with)."""
        return {t: self.lexical.idf(t) for t in self.lexical.terms}

    def chunks_at(self, rows: Sequence[int]) -> dict[int, Chunk]:
        """The chunks of ``rows``: from memory when every chunk is loaded, else read by id (and kept)."""
        if "chunks" in self.__dict__ and len(self.chunks) == self.lexical.n:
            return {r: self.chunks[r] for r in rows}
        with self._lock:
            want = [r for r in dict.fromkeys(rows) if r not in self._fetched]
        if want:
            got = {c.id: c for c in self.store.get_chunks(self.persona, [self.lexical.chunk_id(r) for r in want])}
            with self._lock:
                if len(self._fetched) > 50_000:  # a bound on memory for a long-running process
                    self._fetched.clear()
                for r in want:
                    c = got.get(self.lexical.chunk_id(r))
                    if c is not None:
                        self._fetched[r] = c
        with self._lock:
            return {r: self._fetched[r] for r in rows if r in self._fetched}


# The indexes one piece of work (a question: Agent.prepare) has used, by (retriever, persona):
# ``HybridRetriever.snapshot``.
_PINNED: ContextVar[dict[tuple[int, str], _PersonaIndex] | None] = ContextVar("persona_pinned_indexes", default=None)


class HybridRetriever:
    """Dense + BM25 over one persona's committed chunks, and the persona's view inventory."""

    def __init__(self, store: Store, depth: int = 20, exact_match: bool = True) -> None:
        self.store = store
        self.depth = depth
        # Fuse a third list, the chunks holding a query term no other chunk holds (see ``_unique``).
        self.exact_match = exact_match
        self._cache: dict[str, _PersonaIndex] = {}
        self._lock = threading.Lock()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Within this block, :meth:`index` checks each persona's manifest head once and then
        returns the index it found: one question reads one version of the writings, and answering
        it reads the head once per persona instead of at every step (9-15 reads, 20-30 ms, per
        question on the bundled personas; each one an HTTP round trip through a Chroma server).
        Blocks nest (an inner one shares the outer one's indexes); per thread and context."""
        if _PINNED.get() is not None:
            yield
            return
        token = _PINNED.set({})
        try:
            yield
        finally:
            _PINNED.reset(token)

    def index(self, persona: str) -> _PersonaIndex:
        """The persona's index for its committed manifest (within :meth:`snapshot`, the one it
        found first for this persona)."""
        pinned = _PINNED.get()
        if pinned is None:
            return self._index(persona)
        key = (id(self), persona)
        if key not in pinned:
            pinned[key] = self._index(persona)
        return pinned[key]

    def _index(self, persona: str) -> _PersonaIndex:
        """The persona's index for its committed manifest, replaced only when the manifest changed.

        The lexical index is the one ingest saved for the manifest's head. A store ingested by an
        older version (or whose saved index is missing or damaged) has it built here once, from the
        store's chunks, and saved, with a logged warning: nothing stored is lost, it only costs
        that one query the build.
        """
        # The head (one record read by id) says whether the manifest changed since it was cached:
        # reading the whole manifest costs 160 ms at 2,000 files.
        head = self.store.manifest_head(persona)
        with self._lock:
            cached = self._cache.get(persona)
        if head is not None and cached is not None and cached.head == head:
            return cached
        with self._lock:
            cached = self._cache.get(persona)
            if head is not None and cached is not None and cached.head == head:
                return cached
            manifest = None
            if head is None:  # committed before heads were written: the manifest's hash stands in
                manifest = self.store.manifest(persona)
                head = manifest_hash(manifest)
                if cached is not None and cached.head == head and manifest.files:
                    return cached
            base = self.store.lexical_path(persona)
            lexical = LexicalIndex.load(base, head) if base is not None else None
            if lexical is None:
                from knowledge.ingest import update_lexical

                manifest = manifest or self.store.manifest(persona)
                if manifest.files and base is not None:
                    log.warning(
                        "no saved lexical index for %s at this manifest (ingested by an older version, or "
                        "the saved one is missing or damaged): building it from the store, once",
                        persona,
                    )
                lexical = update_lexical(self.store, persona, manifest) if manifest.files else None
            if lexical is None or lexical.n == 0:
                raise IndexMissingError(
                    f"persona {persona!r} has no index yet: run `persona ingest` "
                    f"(or `persona ingest PATH --persona {persona}` for your own notes)"
                )
            built = _PersonaIndex(self.store, persona, lexical)
            self._cache[persona] = built
            return built

    def warm(self, persona: str) -> dict[str, float]:
        """Do now what the first question to ``persona`` would otherwise wait for; returns ms per step.

        Steps, in the order a question needs them: ``index`` (the manifest head and the saved
        lexical index, memory-mapped), ``search`` (Store.warm: Chroma opens the collection's vector
        index; this was most of a new process's first query: 0.6 s at 1k chunks, 1.5 s at 100k),
        ``vectors`` (the stored vectors of every language but the largest, which ``_exact`` searches
        when a rarer language falls short of ``depth`` in the dense results; until they are read, such
        a query pays Chroma's filtered search, 550 ms at 100k). Meant for a background thread at
        start-up (ui.serve) or after an ingest: a question asked meanwhile is answered as it would be
        without it, only not yet faster. Raises IndexMissingError for a persona with no index.
        """
        import time

        took: dict[str, float] = {}
        t0 = time.perf_counter()
        idx = self.index(persona)
        took["index"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        self.store.warm(persona, self.depth * 4)
        took["search"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        if len(idx.langs) > 1:
            largest = max(idx.lang_counts, key=lambda lang: idx.lang_counts[lang])
            for lang in sorted(idx.langs):
                with self._lock:
                    start = lang != largest and lang not in idx.vectors and lang not in idx.loading
                    if start:
                        idx.loading.add(lang)
                if start:
                    try:
                        self._load_vectors(persona, idx, lang)
                    finally:
                        with self._lock:
                            idx.loading.discard(lang)  # loaded, or free for ``_exact`` to try again
        took["vectors"] = (time.perf_counter() - t0) * 1000
        return {k: round(v, 1) for k, v in took.items()}

    def retrieve(self, query: str, k: int, persona: str, vector: Sequence[float] | None = None) -> list[Retrieved]:
        idx = self.index(persona)
        if vector is None:
            vector = self.store.embedder.embed_query(query)
        lex = idx.lexical
        scores = lex.scores(query)
        # The embedder prefers passages in the query's own language by a margin larger than
        # the gap between right and wrong passages (and BM25 cannot cross languages at all), so
        # each language is ranked on its own, dense and lexical fused by reciprocal rank, and
        # the per-language lists are interleaved: a Korean question still finds the English
        # entry that answers it.
        qlang = detect_lang(query)
        langs = sorted(idx.langs, key=lambda lang: lang != qlang)  # the question's own language leads
        dense = self._dense(persona, idx, vector)
        unique = _unique(lex, query, scores) if self.exact_match else np.zeros(0, dtype=np.int64)
        per_lang: list[list[tuple[int, float, float | None, float | None]]] = []
        for lang in langs if len(langs) > 1 else (None,):
            lexical = lex.top(query, self.depth * 2, lang, scores=scores)
            code = lex.lang_names.index(lang) if lang in lex.lang_names else -1
            exact = [int(r) for r in unique if lang is None or lex.langs[r] == code][: self.depth]
            per_lang.append(_fuse(dense[lang], lexical, exact))
        merged: list[tuple[int, float, float | None, float | None]] = []
        for rank in range(max((len(lst) for lst in per_lang), default=0)):
            merged.extend(lst[rank] for lst in per_lang if rank < len(lst))

        chunks = idx.chunks_at([m[0] for m in merged])
        out: list[Retrieved] = []
        kept_tokens: list[set[int]] = []
        for row, fused, dense_sim, lex_score in merged:
            chunk = chunks.get(row)
            if chunk is None:  # deleted from the store under a committed manifest: nothing to show
                continue
            # The row's tokens as ingest stored them (title and text): no tokeniser runs here, so an
            # English question never loads Kiwi for the Korean chunks it retrieves.
            tokens = lex.row_terms(row)
            if any(_jaccard(tokens, t) >= NEAR_DUPLICATE for t in kept_tokens):
                continue
            kept_tokens.append(tokens)
            out.append(Retrieved(chunk=chunk, score=fused, dense=dense_sim, lexical=lex_score))
            if len(out) >= k:
                break
        return out

    def candidates(self, persona: str, query: str, vector: Sequence[float]) -> list[Chunk]:
        """The chunks either side of the hybrid search ranks in its first ``depth`` of each
        language: the dense hits (the search ``retrieve`` made for ``vector``, read again from the
        memo) and the BM25 top ``depth`` of ``query``, in that order, each once. Reads only those
        chunks from the store, so it costs the same at a million chunks as at a thousand."""
        idx = self.index(persona)
        rows = [row for hits in self._dense(persona, idx, vector).values() for row, _ in hits]
        rows += [row for row, _ in idx.lexical.top(query, self.depth, None)]
        rows = list(dict.fromkeys(rows))
        got = idx.chunks_at(rows)
        return [got[r] for r in rows if r in got]

    def chunk_by_id(self, persona: str, chunk_id: str) -> Chunk | None:
        """One visible chunk of ``persona`` by id, read on its own (None when the index has no such row)."""
        idx = self.index(persona)
        row = idx.lexical.row_of(chunk_id)
        return None if row is None else idx.chunks_at([row]).get(row)

    def next_in_entry(self, persona: str, chunk: Chunk) -> Chunk | Literal[False] | None:
        """The chunk that follows ``chunk`` within its entry; False when ``chunk`` ends its entry;
        None when that is not known: a persona above ``SCAN_CHUNKS`` chunks, whose chunks are never
        all loaded for this (a store read of every chunk per follow-up would cost seconds there)."""
        idx = self.index(persona)
        if idx.lexical.n > SCAN_CHUNKS:
            return None
        later = [c for c in idx.entries.get((chunk.source, chunk.entry_index), []) if c.start >= chunk.end]
        return later[0] if later else False

    def best_cosines(self, persona: str, vector: Sequence[float]) -> dict[str, float]:
        """The highest cosine between ``vector`` and the persona's visible chunks, per chunk
        language ({"en": 0.86, "ko": 0.84}); the same dense search ``retrieve`` makes.

        Raises IndexMissingError when the persona has no index."""
        idx = self.index(persona)
        best: dict[str, float] = {}
        for key, hits in self._dense(persona, idx, vector).items():
            lang = key if key is not None else idx.langs[0]
            if hits:
                best[lang] = max(sim for _, sim in hits)
        return best

    def _dense(
        self, persona: str, idx: _PersonaIndex, vector: Sequence[float]
    ) -> dict[str | None, list[tuple[int, float]]]:
        """The ``depth`` nearest visible rows of each language (key None: one language only), with cosines;
        the same vector's search again is read from the index's ``dense_memo``.

        Chroma is asked for ids and distances only, with no ``where`` filter, and the languages
        are split here: Chroma's filter on the language cost 90 ms at 1k chunks and 550 ms at
        100k, this 2-8 ms. A language short of ``depth`` in that one search (a rare one, far from
        the question's language) is looked for among the first ``WIDEN`` times as many results,
        still unfiltered, and then, if still short, searched exactly over its own vectors (``_exact``).
        """
        key = np.asarray(vector, dtype=np.float32).tobytes()
        with idx._lock:
            memo = idx.dense_memo.get(key)
        if memo is not None:
            return {lang: list(hits) for lang, hits in memo.items()}
        lex = idx.lexical
        split = len(idx.langs) > 1
        need: dict[str | None, int] = {None: min(self.depth, lex.n)}
        if split:
            need = {lang: min(self.depth, count) for lang, count in idx.lang_counts.items()}
        out: dict[str | None, list[tuple[int, float]]] = {}
        first = self.depth * 4
        for n in (first, max(first, min(first * WIDEN, lex.n))):
            out = {key: [] for key in need}
            for cid, sim in self.store.nearest(persona, vector, n):
                row = lex.row_of(cid)  # a chunk the committed manifest does not name has no row
                if row is None:
                    continue
                hits = out[lex.lang(row) if split else None]
                if len(hits) < self.depth:
                    hits.append((row, sim))
            if all(len(out[lang]) >= need[lang] for lang in need) or first >= lex.n:
                break
        for lang, hits in out.items():
            if len(hits) < need[lang]:
                out[lang] = self._exact(persona, idx, vector, lang)
        with idx._lock:
            idx.dense_memo[key] = {lang: list(hits) for lang, hits in out.items()}
            while len(idx.dense_memo) > DENSE_MEMO:
                idx.dense_memo.popitem(last=False)
        return out

    def _load_vectors(self, persona: str, idx: _PersonaIndex, lang: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Read one language's (None: all) rows and unit vectors from the store and keep them on ``idx``."""
        lex = idx.lexical
        rows = np.arange(lex.n) if lang is None else np.flatnonzero(lex.langs == lex.lang_names.index(lang))
        loaded = (rows, self.store.get_vectors(persona, [lex.chunk_id(int(r)) for r in rows]))
        with self._lock:
            idx.vectors[lang] = loaded
        return loaded

    def _load_in_background(self, persona: str, idx: _PersonaIndex, lang: str) -> None:
        """``_load_vectors`` for ``_exact``'s background thread: a failure is logged, and the
        language is freed so that a later query starts the read again (queries meanwhile use
        Chroma's filtered search, as before the read)."""
        try:
            self._load_vectors(persona, idx, lang)
        except Exception as exc:  # noqa: BLE001 - a thread has no caller to raise to
            log.warning("reading the %s vectors of %s failed (%s); will try again", lang, persona, exc)
        finally:
            with self._lock:
                idx.loading.discard(lang)

    def _exact(
        self, persona: str, idx: _PersonaIndex, vector: Sequence[float], lang: str | None
    ) -> list[tuple[int, float]]:
        """The exact ``depth`` nearest rows of one language (None: all), by cosine over its vectors.

        The vectors are read from the store once per index. Until they are (12k vectors took 4.6 s
        at 100k chunks, which would be the first query's cost after every ingest), a language is
        searched by Chroma's own filtered search instead, and the vectors are read in the background;
        a read that fails is tried again by the next such query. A language of more than
        ``EXACT_ROWS`` rows is never read whole: Chroma's filtered search serves it every time.
        """
        lex = idx.lexical
        small = (lex.n if lang is None else idx.lang_counts.get(lang, 0)) <= EXACT_ROWS
        with self._lock:
            loaded = idx.vectors.get(lang)
            start = loaded is None and lang is not None and lang not in idx.loading and small
            if start:
                idx.loading.add(lang)
        if loaded is None and (lang is not None or not small):
            if start:
                # Not a daemon: the interpreter waits for the read before it exits. A daemon thread
                # still inside Chroma when a one-shot process (`persona ask`) shut down crashed it
                # with SIGSEGV (seen at 100k chunks in benchmarks.synth).
                threading.Thread(
                    target=self._load_in_background,
                    args=(persona, idx, lang),
                    name=f"persona-vectors-{lang}",
                    daemon=False,
                ).start()
            hits = []
            for cid, sim in self.store.nearest(persona, vector, self.depth, lang=lang):
                row = lex.row_of(cid)
                if row is not None:
                    hits.append((row, sim))
            return hits
        if loaded is None:
            loaded = self._load_vectors(persona, idx, lang)
        rows, mat = loaded
        if not len(rows):
            return []
        q = np.asarray(vector, dtype=np.float32)
        sims = mat @ (q / (np.linalg.norm(q) or 1.0))
        top = np.argpartition(-sims, min(self.depth, len(sims)) - 1)[: self.depth]
        return [(int(rows[i]), float(sims[i])) for i in top[np.argsort(-sims[top])]]


def _unique(lex: LexicalIndex, query: str, scores: np.ndarray) -> np.ndarray:
    """Rows holding a query term that at most ``UNIQUE_DF`` chunks hold, by BM25 score, best first.

    Why a list of its own: a term found in one chunk (a run number, a ticket, a code name) is the
    most specific evidence a question can give, and BM25 gives it its largest idf, but reciprocal-
    rank fusion keeps only ranks. A chunk worded like the question but without that term (a sibling
    entry from the same template) is found by both the dense and the lexical side and outranks the
    one chunk that holds it, found by the lexical side alone; dense retrievers are known to miss
    such rare exact terms (Sciavolino et al. 2021, "Simple Entity-Centric Questions Challenge Dense
    Retrievers"), so the exact match is fused as a third ranker, as RRF fuses any number of them
    (Cormack et al. 2009).
    """
    rows = [lex.rows_with(t) for t in set(lexical_tokens(query)) if 0 < lex.doc_freq(t) <= UNIQUE_DF]
    if not rows:
        return np.zeros(0, dtype=np.int64)
    hit = np.unique(np.concatenate(rows))
    return hit[np.argsort(-scores[hit], kind="stable")]


def _fuse(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]], exact: Sequence[int] = ()
) -> list[tuple[int, float, float | None, float | None]]:
    """Rows ranked by reciprocal-rank fusion (Cormack et al. 2009) of the dense and lexical lists
    and the exact-match list (``_unique``), as (row, fused score, cosine or None, BM25 score or None)."""
    fused: dict[int, float] = {}
    dense_score: dict[int, float] = {}
    lex_score: dict[int, float] = {}
    for rank, (row, sim) in enumerate(dense):
        fused[row] = fused.get(row, 0.0) + rrf(rank)
        dense_score[row] = sim
    for rank, (row, score) in enumerate(lexical):
        fused[row] = fused.get(row, 0.0) + rrf(rank)
        lex_score[row] = score
    for rank, row in enumerate(exact):
        fused[row] = fused.get(row, 0.0) + rrf(rank)
    ranked = sorted(fused, key=lambda r: -fused[r])
    return [(r, fused[r], dense_score.get(r), lex_score.get(r)) for r in ranked]


def _jaccard(a: set[int], b: set[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
