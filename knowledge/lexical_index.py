"""Chunks -> lexical index: BM25 (bm25s) over one persona's committed chunks, saved next to its vectors.

Ingest writes it when it commits a manifest (keyed by the manifest head), so a query loads it
(memory-mapped) instead of re-tokenising the corpus. Each saved index keeps every chunk's token
ids, so the next ingest re-tokenises only the chunks it has not seen and rebuilds the sparse matrix.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.text import lexical_tokens

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the files written change
K1, B = 1.4, 0.75  # Robertson & Zaragoza (2009) "The Probabilistic Relevance Framework: BM25 and Beyond"
_TOKENIZER_DISTS = ("kiwipiepy", "kiwipiepy-model", "PyStemmer")  # what lexical_tokens runs on
_LANGS = ("en", "ko")


def _bm25s() -> Any:
    """bm25s, imported on first use; it sets its logger to DEBUG on import, which would print a
    line per index build under any logging setup: ours keeps it at WARNING."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@functools.lru_cache(maxsize=1)
def tokenizer_fingerprint() -> str:
    """A hash of what decides ``lexical_tokens``: knowledge/text.py's source and the versions of
    kiwipiepy, kiwipiepy-model and PyStemmer. An index saved with another tokeniser is rebuilt
    instead of silently mismatching. Read from files, not by running the tokeniser: running it on
    a Korean probe loaded Kiwi's model (2-5 s) on every cold start, even for an English question."""
    h = hashlib.sha256(Path(__file__).with_name("text.py").read_bytes())
    for dist in _TOKENIZER_DISTS:
        try:
            h.update(f"{dist}=={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}: absent".encode())
    return h.hexdigest()[:16]


def document_text(title: str, text: str) -> str:
    """What BM25 indexes for a chunk: its entry title and its text."""
    return f"{title}\n{text}"


class LexicalIndex:
    """BM25 over the chunks of one committed manifest, rows in manifest order.

    ``ids``: (n,) ``S32`` chunk ids by row; ``langs``: (n,) uint8 codes into ``lang_names``;
    the tokens of row i are ``terms[tok[ptr[i]:ptr[i+1]]]``. Scoring is bm25s's eager sparse BM25
    (Lù 2024, "BM25S: Orders of magnitude faster lexical search via eager sparse scoring"), method
    "lucene", k1=1.4, b=0.75; idf = ln(1 + (N - df + 0.5) / (df + 0.5)) (Lucene's, never negative).
    """

    def __init__(
        self,
        head: str,
        ids: np.ndarray,
        langs: np.ndarray,
        terms: list[str],
        ptr: np.ndarray,
        tok: np.ndarray,
        bm25: Any,
        lang_names: Sequence[str] = _LANGS,
        order: np.ndarray | None = None,
    ) -> None:
        self.head = head
        self.ids = ids
        self.langs = langs
        self.lang_names = tuple(lang_names)
        self.terms = terms
        self.ptr = ptr
        self.tok = tok
        self.bm25 = bm25
        self.n = len(ids)
        self.term_id = {t: i for i, t in enumerate(terms)}
        self.df = np.diff(np.asarray(bm25.scores["indptr"]))[: len(terms)].astype(np.int64)
        # Rows sorted by id, for binary search: saved with the index, so a load builds no dict.
        self.order = order if order is not None else np.argsort(ids, kind="stable")
        self.sorted_ids = self.ids[self.order]

    # --- building --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        head: str,
        ids: Sequence[str],
        langs: Sequence[str],
        text_of: Callable[[list[str]], dict[str, str]],
        previous: LexicalIndex | None = None,
        tokens_of: Callable[[str], Sequence[str] | None] | None = None,
    ) -> LexicalIndex:
        """The index of ``ids`` (rows in that order, ``langs`` theirs), re-tokenising only the ids
        ``previous`` does not hold; ``text_of(ids) -> {id: text}`` supplies the text of the others.

        ``tokens_of(id)``, if given, may return an id's tokens (``lexical_tokens`` of its text) from
        elsewhere, or None to have its text tokenised here; only benchmarks.synth uses it, for
        fillers whose tokens it assembles from pre-tokenised sentences.
        """
        bm25s = _bm25s()

        terms: list[str] = list(previous.terms) if previous is not None else []
        term_id = dict(previous.term_id) if previous is not None else {}
        old_row: dict[bytes, int] = {}
        if previous is not None:
            old_row = {bytes(c): r for r, c in enumerate(previous.ids)}
        keys = [i.encode("ascii") for i in ids]
        given: dict[str, Sequence[str]] = {}
        missing = []
        for i, k in zip(ids, keys, strict=True):
            if k in old_row:
                continue
            got = tokens_of(i) if tokens_of is not None else None
            if got is None:
                missing.append(i)
            else:
                given[i] = got
        texts = text_of(missing) if missing else {}
        docs: list[np.ndarray] = []
        for cid, key in zip(ids, keys, strict=True):
            row = old_row.get(key)
            if row is not None and previous is not None:
                docs.append(previous.tok[previous.ptr[row] : previous.ptr[row + 1]])
                continue
            toks = []
            seq = given.pop(cid, None)
            for t in seq if seq is not None else lexical_tokens(texts[cid]):
                j = term_id.get(t)
                if j is None:
                    j = term_id[t] = len(terms)
                    terms.append(t)
                toks.append(j)
            docs.append(np.asarray(toks, dtype=np.int32))
        # Terms no chunk holds any more are dropped, so df and the vocabulary stay those of the corpus.
        used = np.zeros(len(terms), dtype=bool)
        for d in docs:
            used[d] = True
        remap = np.cumsum(used) - 1
        terms = [t for t, u in zip(terms, used, strict=True) if u]
        docs = [remap[d].astype(np.int32) for d in docs]
        lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        ptr = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        tok = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int32)
        bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
        vocab = {t: i for i, t in enumerate(terms)}
        if terms:
            bm25.index(([d.tolist() for d in docs], vocab), show_progress=False)
        else:
            # Nothing to index (no chunks left, e.g. every entry marked private, or none with a word):
            # bm25s cannot index an empty vocabulary, so it gets one document holding "", a term
            # lexical_tokens never emits. Our rows (self.n) stay those of ``ids``; every score is 0.
            bm25.index(([[0]], {"": 0}), show_progress=False)
        codes = {name: n for n, name in enumerate(_LANGS)}
        names = list(_LANGS) + sorted({lang for lang in langs if lang not in codes})
        codes = {name: n for n, name in enumerate(names)}
        lang_arr = np.asarray([codes[lang] for lang in langs], dtype=np.uint8)
        return cls(head, np.asarray(keys, dtype="S32"), lang_arr, terms, ptr, tok, bm25, names)

    # --- persistence -----------------------------------------------------------------------

    def save(self, base: Path) -> Path:
        """Write the index to ``base/<head>`` (atomically: a temporary directory renamed into
        place) and remove older heads' directories. Returns the directory."""
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
        self.bm25.save(str(tmp / "bm25s"), show_progress=False)
        np.save(tmp / "ids.npy", self.ids)
        np.save(tmp / "langs.npy", self.langs)
        np.save(tmp / "order.npy", self.order)
        np.save(tmp / "ptr.npy", self.ptr)
        np.save(tmp / "tok.npy", self.tok)
        (tmp / "terms.json").write_text(json.dumps(self.terms, ensure_ascii=False), encoding="utf-8")
        meta = {
            "format": FORMAT,
            "head": self.head,
            "rows": self.n,
            "tokenizer": tokenizer_fingerprint(),
            "langs": list(self.lang_names),
        }
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")  # written last: marks it complete
        final = base / self.head
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for other in base.iterdir():
            if other != final and other.is_dir():
                shutil.rmtree(other, ignore_errors=True)
        return final

    @classmethod
    def load(cls, base: Path, head: str | None = None) -> LexicalIndex | None:
        """The index saved for ``head`` (None: the newest saved one), memory-mapped; None when there
        is none, it is incomplete or corrupt, or it was made by another tokeniser (logged)."""
        bm25s = _bm25s()

        path = base / head if head is not None else _newest(base)
        if path is None or not (path / "meta.json").exists():
            return None
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("tokenizer") != tokenizer_fingerprint():
                log.info("lexical index at %s was written by another version: it will be rebuilt", path)
                return None
            bm25 = bm25s.BM25.load(str(path / "bm25s"), mmap=True, show_progress=False)
            ids = np.load(path / "ids.npy", mmap_mode="r")
            langs = np.load(path / "langs.npy")
            order = np.load(path / "order.npy", mmap_mode="r")
            ptr = np.load(path / "ptr.npy", mmap_mode="r")
            tok = np.load(path / "tok.npy", mmap_mode="r")
            terms = json.loads((path / "terms.json").read_text(encoding="utf-8"))
            if not (len(ids) == len(langs) == len(ptr) - 1 == meta["rows"] and ptr[-1] == len(tok)):
                raise ValueError("row counts disagree")
            return cls(str(meta["head"]), ids, langs, terms, ptr, tok, bm25, meta["langs"], order)
        except Exception as exc:  # a damaged file costs a rebuild from the store, never the index
            log.warning("lexical index at %s is unreadable (%s): rebuilding it from the store", path, exc)
            return None

    # --- querying --------------------------------------------------------------------------

    @functools.cached_property
    def vocabulary(self) -> frozenset[str]:
        """Every term of the index (built once: ask() reads it for every question)."""
        return frozenset(self.terms)

    def idf(self, term: str) -> float:
        """Lucene's BM25 idf of ``term`` over this index (as bm25s scores it); unseen terms get df 0."""
        j = self.term_id.get(term)
        df = int(self.df[j]) if j is not None else 0
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def doc_freq(self, term: str) -> int:
        j = self.term_id.get(term)
        return int(self.df[j]) if j is not None else 0

    def rows_with(self, term: str) -> np.ndarray:
        """The rows whose text holds ``term`` (its postings, read from the BM25 matrix's column)."""
        j = self.term_id.get(term)
        if j is None:
            return np.zeros(0, dtype=np.int64)
        ptr = self.bm25.scores["indptr"]
        return np.asarray(self.bm25.scores["indices"][int(ptr[j]) : int(ptr[j + 1])], dtype=np.int64)

    def scores(self, query: str) -> np.ndarray:
        """(n,) float32 BM25 scores of every row for ``query`` (zeros when no term is known)."""
        ids = [self.term_id[t] for t in lexical_tokens(query) if t in self.term_id]
        if not ids or not self.n:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float32)

    def top(
        self, query: str, k: int, lang: str | None = None, scores: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best rows (of one language, if given) with a positive score, best first;
        ``scores``: this query's ``scores(query)`` when the caller has them already."""
        s = self.scores(query) if scores is None else scores
        if lang is not None:
            code = self.lang_names.index(lang) if lang in self.lang_names else -1
            s = np.where(self.langs == code, s, 0.0)
        hit = np.flatnonzero(s > 0)
        if not len(hit):
            return []
        if len(hit) > k:
            hit = hit[np.argpartition(-s[hit], k - 1)[:k]]
        hit = hit[np.argsort(-s[hit], kind="stable")]
        return [(int(i), float(s[i])) for i in hit]

    def row_of(self, chunk_id: str) -> int | None:
        """The row of ``chunk_id`` (None: not in this index), by binary search over the sorted ids."""
        key = chunk_id.encode("ascii", "replace")
        pos = int(np.searchsorted(self.sorted_ids, key))
        if pos < self.n and self.sorted_ids[pos] == key:
            return int(self.order[pos])
        return None

    def row_terms(self, row: int) -> set[int]:
        """The distinct term ids of ``row`` (its title and text as ingest tokenised them)."""
        return set(self.tok[int(self.ptr[row]) : int(self.ptr[row + 1])].tolist())

    def chunk_id(self, row: int) -> str:
        return bytes(self.ids[row]).decode("ascii")

    def lang(self, row: int) -> str:
        return self.lang_names[int(self.langs[row])]


def _newest(base: Path) -> Path | None:
    if not base.is_dir():
        return None
    done = [p for p in base.iterdir() if p.is_dir() and (p / "meta.json").exists()]
    return max(done, key=lambda p: (p / "meta.json").stat().st_mtime, default=None)
