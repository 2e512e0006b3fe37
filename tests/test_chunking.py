"""Chunking: exact substrings, within entries, within the token budget, covering the text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.chunking import chunk_entries
from knowledge.config import BUNDLED_SOURCES
from knowledge.loaders import load_document, split_entries
from knowledge.text import count_tokens

WORDS = st.sampled_from(
    [
        "loss",
        "exploded.",
        "그날",
        "Raj는",
        "배웠다.",
        "gradient",
        "clipping",
        "bug!",
        "왜지?",
        "NaN",
        "\n",
        "  ",
        "—",
        "2019,",
    ]
)
BODY = st.lists(st.one_of(WORDS, st.text(min_size=1, max_size=12)), min_size=0, max_size=120).map(" ".join)
DIARY = st.lists(st.tuples(st.text(alphabet="abc_ 가나", min_size=1, max_size=10), BODY), min_size=1, max_size=5).map(
    lambda items: "\n\n".join(f"## [{t}]\n{b}" for t, b in items)
)


def _check(text: str, max_tokens: int) -> None:
    entries = split_entries(text, "f.txt")
    chunks = chunk_entries(text, entries, "p", max_tokens)
    for c in chunks:
        assert text[c.start : c.end] == c.text, "a chunk is an exact substring with its offsets"
        assert c.text.strip() == c.text and c.text
        assert count_tokens(c.text) <= max_tokens
        owners = [e for e in entries if e.start <= c.start and c.end <= e.end]
        assert len(owners) == 1, "a chunk never crosses an entry boundary"
        assert owners[0].title == c.title
    # Every non-space character of every entry is in some chunk.
    for e in entries:
        covered = set()
        for c in chunks:
            if e.start <= c.start and c.end <= e.end:
                covered.update(range(c.start, c.end))
        missing = [i for i in range(e.start, e.end) if not text[i].isspace() and i not in covered]
        assert not missing
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids)), "chunk ids are unique"
    again = chunk_entries(text, entries, "p", max_tokens)
    assert [c.id for c in again] == ids, "chunk ids are deterministic"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(DIARY, BODY), max_tokens=st.integers(min_value=8, max_value=120))
def test_chunking_properties(text: str, max_tokens: int) -> None:
    _check(text, max_tokens)


@pytest.mark.parametrize("path", sorted(BUNDLED_SOURCES.glob("*.txt")), ids=lambda p: p.name)
@pytest.mark.parametrize("max_tokens", [16, 64, 200])
def test_bundled_files_chunk_cleanly(path, max_tokens: int) -> None:  # type: ignore[no-untyped-def]
    _check(path.read_text("utf-8"), max_tokens)


def test_an_edit_elsewhere_keeps_chunk_ids() -> None:
    doc = load_document(BUNDLED_SOURCES / "raj-diary.en.txt")
    before = chunk_entries(doc.text, doc.entries, "raj")
    edited = doc.text.replace("## [The_Emergent", "## [A_New_Entry]\nSomething new happened.\n\n## [The_Emergent")
    after = chunk_entries(edited, split_entries(edited, "raj-diary.en.txt"), "raj")
    kept = {c.id for c in before} & {c.id for c in after}
    assert len(kept) == len(before), "no existing chunk changed its id"
    moved = [c for c in after if c.id in kept and c.start != next(b.start for b in before if b.id == c.id)]
    assert moved, "chunks after the insertion moved"
