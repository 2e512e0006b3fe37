"""Loaders on the bundled files and on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.config import BUNDLED_SOURCES
from knowledge.loaders import LoadError, load_document, split_entries

EN = BUNDLED_SOURCES / "raj-diary.en.txt"
KO = BUNDLED_SOURCES / "raj-diary.ko.txt"


def test_diary_entry_counts_and_titles() -> None:
    en = load_document(EN)
    ko = load_document(KO)
    assert len(en.entries) == 6
    assert len(ko.entries) == 8
    assert en.entries[0].title == "First Steps as a Researcher"
    assert en.entries[4].title == "The Day I Realized Unlearning Isn't Really Forgetting"
    assert ko.entries[1].title == "첫 대규모 모델 학습의 악몽"
    assert {e.lang for e in en.entries} == {"en"}
    assert {e.lang for e in ko.entries} == {"ko"}


@pytest.mark.parametrize("path", sorted(BUNDLED_SOURCES.glob("*.txt")), ids=lambda p: p.name)
def test_offsets_round_trip_and_cover_the_file(path: Path) -> None:
    doc = load_document(path)
    assert doc.entries, "every bundled file has entries"
    covered = [False] * len(doc.text)
    previous_end = 0
    for entry in doc.entries:
        assert doc.text[entry.start : entry.end] == entry.text
        assert entry.start >= previous_end, "entries are in order and do not overlap"
        previous_end = entry.end
        for i in range(entry.start, entry.end):
            covered[i] = True
    # What no entry holds is heading lines only: every word of the writing is in some entry.
    outside_lines = "".join(ch if not c else "\n" for ch, c in zip(doc.text, covered, strict=True)).split("\n")
    titles = {e.title for e in doc.entries}
    for line in (ln.strip() for ln in outside_lines):
        if line:
            heading = line[4:-1].replace("_", " ").strip() if line.startswith("## [") else line
            assert heading in titles, f"text outside every entry: {line!r}"


def test_essay_sections_use_their_headings() -> None:
    doc = load_document(BUNDLED_SOURCES / "essay-internship-reflections.txt")
    titles = [e.title for e in doc.entries]
    assert "1. From Theory to Reproducibility" in titles
    assert "5. How The Internship Re-wired My Research Mindset" in titles


def test_markdown_headings_and_front_matter(tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("---\nprivate: true\n---\n# Monday\nWe trained.\n\n# Tuesday\nIt broke.\n", encoding="utf-8")
    doc = load_document(note)
    assert doc.private is True
    assert [e.title for e in doc.entries] == ["Monday", "Tuesday"]
    assert [e.text for e in doc.entries] == ["We trained.", "It broke."]


def test_malformed_headings_still_load() -> None:
    text = "## [Unclosed heading\nbody one\n## []\nbody two\n## [ok_title]\n\n"
    entries = split_entries(text, "x.txt")
    assert all(e.title and e.text for e in entries)
    joined = "\n".join(e.text for e in entries)
    assert "body one" in joined and "body two" in joined
    for e in entries:
        assert text[e.start : e.end] == e.text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"   \n\t\n", "only white space"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "binary"),
        (b"caf\xe9 au lait", "not UTF-8"),
    ],
)
def test_bad_files_raise_with_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(LoadError) as err:
        load_document(path)
    assert reason in err.value.reason


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    path.write_bytes(b"a" * 5_000_001)
    with pytest.raises(LoadError, match="too large"):
        load_document(path)


def test_a_saved_web_pages_long_title_heads_its_section() -> None:
    """A title line over 80 characters (a saved blog post's) heads the section after it instead of
    being read as prose, so the byline above it is not made the section's title."""
    prose = "Covering the journey from initial curiosity about neural networks to how they make decisions."
    text = (
        "Back to All Posts\n\nPublished on August 18, 2025\n\n"
        "From Curiosity to Research Pt. 1 - From Using LLMS to Understanding The Internals\n\n"
        f"{prose}\n"
    )
    entries = split_entries(text, "post.txt")
    assert [e.title for e in entries] == [
        "Back to All Posts",
        "From Curiosity to Research Pt. 1 - From Using LLMS to Understanding The Internals",
    ]
    assert entries[1].text == prose and "Published on August 18, 2025" in entries[0].text
    bundled = load_document(BUNDLED_SOURCES / "essay-from-curiosity-to-research.txt")
    assert "Published on August 18, 2025" not in [e.title for e in bundled.entries]


def test_dated_lines_over_prose_still_head_diary_entries() -> None:
    body = "Today I trained a small model on the new data and the loss went down faster than I expected."
    text = f"March 3, 2024\n{body}\n\nMarch 4, 2024\n{body}\n"
    assert [e.title for e in split_entries(text, "d.txt")] == ["March 3, 2024", "March 4, 2024"]
    # A capitalised line of 120 characters or more is prose, not a title.
    long = " ".join(["Word"] * 30)
    assert [e.title for e in split_entries(f"Intro\n{long}\n", "x.txt")] == ["Intro"]


def test_only_title_like_lines_name_no_topic() -> None:
    """agent.pipeline.only_titles: a navigation line or a byline is not a topic a refusal names; a
    short note of prose is ("We read a paper ..." is one sentence of nine words)."""
    from agent.pipeline import only_titles

    assert only_titles("Back to All Posts\n\nPublished on August 18, 2025")
    assert not only_titles("We read a paper about sparse autoencoders on Friday.")
    assert not only_titles("sparse autoencoders for vision")
    assert not only_titles("")
