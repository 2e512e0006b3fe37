"""knowledge/decode.py and the loader on notes as people save them: encodings, BOMs, line endings,
Unicode forms, invisible characters, and markdown structure (code, front matter, setext, block quotes).

The offset contract: ``open(path, encoding=doc.encoding).read()[start:end] == quote`` for every
entry and chunk, whatever mix of BOM, newline form, NFC/NFD and invisible characters the file holds,
and the normalised view of what is indexed is the same as the clean file's.
"""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from knowledge.chunking import chunk_entries
from knowledge.decode import COMPOSES_WITH_PREVIOUS, DecodeError, clean, decode_bytes, normalise
from knowledge.loaders import LoadError, load_document, split_entries
from tests.notes_helpers import assert_citations_resolve, encodings, fresh_agent, ingest_folder
from tests.notes_helpers import clean as clean_spec

CLEAN_NOTE = (
    "## [첫_대규모_학습]\n처음 대규모 모델을 학습했을 때 손실이 폭발했다. 원인은 워밍업이 빠진 것이었다.\n\n"
    "## [Megatron_Runs]\nI trained Megatron on 512 GPUs. The pipeline kept stalling, so I rewrote the scheduler.\n\n"
    "## [Café_Notes]\nWe met at the café and argued about naïve scaling laws for two hours.\n"
)
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]


def _variant(clean_text: str, bom: bool, newline: str, form: str, invisible: list[tuple[int, str]]) -> str:
    """The clean note as someone's editor might save it: BOM, newline form, NFC/NFD, invisible characters."""
    words = clean_text.split(" ")
    for pos, ch in invisible:
        i = pos % len(words)
        w = words[i]
        cut = len(w) // 2
        words[i] = w[:cut] + ch + w[cut:]
    text = unicodedata.normalize(form, " ".join(words)).replace("\n", newline)
    return ("\ufeff" if bom else "") + text


VARIANTS = st.builds(
    _variant,
    st.just(CLEAN_NOTE),
    st.booleans(),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(["NFC", "NFD"]),
    st.lists(st.tuples(st.integers(0, 200), st.sampled_from(INVISIBLE)), max_size=6),
)
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "utf-16-le-bom", "cp949"])
PROPS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16-le-bom":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    if encoding == "cp949":  # a legacy Korean editor: no BOM, no NFD jamo, no invisible characters
        return clean(text).replace("é", "e").replace("ï", "i").encode("cp949")
    return text.encode(encoding)


@PROPS
@given(text=VARIANTS, encoding=ENCODINGS)
@example(text=_variant(CLEAN_NOTE, True, "\r\n", "NFD", [(3, "\u200b")]), encoding="utf-8")
@example(text=_variant(CLEAN_NOTE, True, "\r", "NFD", [(0, "\ufeff"), (5, "\u00ad")]), encoding="utf-16")
def test_offsets_round_trip_and_what_is_indexed_is_the_clean_files(
    tmp_path_factory: Any, text: str, encoding: str
) -> None:
    path = tmp_path_factory.mktemp("variant") / "note.md"
    path.write_bytes(_encode(text, encoding))
    doc = load_document(path)
    with open(path, encoding=doc.encoding) as f:
        as_read = f.read()
    assert doc.text == as_read, "the text is the file as text mode reads it in its reported encoding"
    chunks = chunk_entries(doc.text, doc.entries, "p", 32)
    for e in doc.entries:
        assert as_read[e.start : e.end] == e.text
    for c in chunks:
        assert as_read[c.start : c.end] == c.text
    expected_source = CLEAN_NOTE if encoding != "cp949" else clean(CLEAN_NOTE).replace("é", "e").replace("ï", "i")
    reference = load_document_from_text(tmp_path_factory, expected_source)
    assert [e.title for e in doc.entries] == [e.title for e in reference.entries]
    assert [clean(e.text) for e in doc.entries] == [clean(e.text) for e in reference.entries]


def load_document_from_text(tmp_path_factory: Any, text: str) -> Any:
    path = tmp_path_factory.mktemp("clean") / "note.md"
    path.write_text(text, encoding="utf-8")
    return load_document(path)


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(
        st.one_of(
            st.text(max_size=8),
            st.sampled_from(
                [
                    "\r\n",
                    "\r",
                    "\u200b",
                    "\ufeff",
                    "\u00ad",
                    "e\u0301",
                    "\u1100\u1161\u11a8",
                    "가\u11a8",
                    "\u0b47\u0b3e",
                ]
            ),
        ),
        max_size=30,
    ).map("".join)
)
def test_the_normalised_view_is_clean_and_maps_back(text: str) -> None:
    norm, starts, ends = normalise(text)
    assert norm == clean(text) == clean_spec(text)
    if not starts:
        return
    assert len(starts) == len(ends) == len(norm)
    for i, ch in enumerate(norm):
        piece = text[starts[i] : ends[i]]
        assert ch in clean(piece), "each normalised character comes from the piece it maps to"
    assert all(a <= b for a, b in zip(starts, starts[1:], strict=False)), "the map is monotonic"


def test_the_composition_table_matches_the_unicode_database() -> None:
    computed = {chr(c) for c in range(0x1161, 0x1176)} | {chr(c) for c in range(0x11A8, 0x11C3)}
    for c in range(0x110000):
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<") and len(d.split()) == 2:
            second = chr(int(d.split()[1], 16))
            if unicodedata.combining(second) == 0:
                computed.add(second)
    assert computed == set(COMPOSES_WITH_PREVIOUS)


# --- encodings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        ("노트 ## [제목]\n본문".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "본문".encode(), "utf-8"),
        ("Windows 메모장\r\n본문".encode("utf-16"), "utf-16"),
        (codecs.BOM_UTF16_BE + "본문".encode("utf-16-be"), "utf-16"),
        ("처음 대규모 모델을 학습했을 때 손실이 폭발했다. 원인은 워밍업이었다.".encode("cp949"), "cp949"),
        ("한국어 메모를 EUC-KR로 저장했다. 학습률을 낮췄더니 안정됐다.".encode("euc-kr"), "cp949"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be", "cp949", "euc-kr"],
)
def test_encodings_people_have_are_detected(raw: bytes, encoding: str) -> None:
    decoded = decode_bytes(raw)
    assert decoded.encoding == encoding
    assert "\r" not in decoded.text and "\ufeff" not in decoded.norm


@pytest.mark.parametrize(
    "raw",
    [
        "café au lait".encode("latin-1"),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR",
        "Grüße aus München, schönen Tag".encode("cp1252"),
    ],
    ids=["latin-1", "binary", "cp1252"],
)
def test_undecodable_files_are_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        decode_bytes(raw)
    assert "UTF-8" in err.value.reason or "binary" in err.value.reason


def test_an_undecodable_file_is_skipped_naming_it_and_keeps_what_was_indexed(agent: Any, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    note = folder / "lab.md"
    note.write_text("# Lab\nThe cluster was down for nine hours in March.\n", encoding="utf-8")
    fresh = fresh_agent(agent, tmp_path / "home")
    ingest_folder(fresh, folder)
    ids = set(fresh.store.manifest("me").files["lab.md"].ids)
    note.write_bytes("# Lab\nThe café cluster was down.\n".encode("latin-1"))  # re-saved by a legacy editor
    report = ingest_folder(fresh, folder)
    skipped = {s["file"]: s["reason"] for s in report.skipped}
    assert "UTF-8" in skipped["lab.md"] and "kept" in skipped["lab.md"]
    assert set(fresh.store.manifest("me").files["lab.md"].ids) == ids


def test_a_cp949_korean_note_is_ingested_and_cited_in_its_encoding(agent: Any, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    text = (
        "## [첫_대규모_학습]\r\n처음 대규모 모델을 학습했을 때 손실이 갑자기 폭발했다. "
        "원인은 워밍업을 빼먹은 것이었다.\r\n"
    )
    (folder / "일기.txt").write_bytes(text.encode("cp949"))
    fresh = fresh_agent(agent, tmp_path / "home")
    report = ingest_folder(fresh, folder)
    assert encodings(report) == {"일기.txt": "cp949"}
    answer = fresh.ask("처음 대규모 모델을 학습했을 때 손실이 왜 폭발했나요?", persona="me")
    assert not answer.abstained and answer.citations and answer.citations[0].title == "첫 대규모 학습"
    assert_citations_resolve(answer, folder, encodings(report))


def test_a_utf16_note_from_windows_notepad_is_ingested_and_cited(agent: Any, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    text = "## [Cluster_Outage]\r\nThe cluster went down for nine hours because the cooling failed.\r\n"
    (folder / "diary.txt").write_bytes(text.encode("utf-16"))
    fresh = fresh_agent(agent, tmp_path / "home")
    report = ingest_folder(fresh, folder)
    assert encodings(report) == {"diary.txt": "utf-16"}
    answer = fresh.ask("Why did the cluster go down?", persona="me")
    assert answer.citations and answer.citations[0].title == "Cluster Outage"
    assert_citations_resolve(answer, folder, encodings(report))


# --- markdown structure -------------------------------------------------------------------------


def _titles(text: str, name: str = "n.md") -> list[str]:
    return [e.title for e in split_entries(text, name, indented_code=name.endswith(".md"))]


def test_setext_headings_split_entries() -> None:
    text = "Training Notes\n==============\nWe trained for three days.\n\nEval Notes\n----------\nThe eval was noisy.\n"
    assert _titles(text) == ["Training Notes", "Eval Notes"]


def test_headings_inside_block_quotes_split_entries() -> None:
    text = "> ## Quoted heading\n> We quoted the paper here.\n\n# Plain heading\nAnd then wrote our own view.\n"
    assert _titles(text) == ["Quoted heading", "Plain heading"]


@pytest.mark.parametrize(
    "code",
    [
        "```bash\n# install\npip install x\n```\n",
        "~~~\n# install\npip install x\n~~~\n",
        "    # install\n    pip install x\n",
        "````\n```\n# install\n```\npip install x\n````\n",
    ],
    ids=["backticks", "tildes", "indented", "nested-fence"],
)
def test_code_is_never_a_heading_nor_an_entry(code: str) -> None:
    text = f"# Setup\nWe set up the machine.\n\n{code}\nIt worked in the end.\n"
    entries = split_entries(text, "n.md")
    assert {e.title for e in entries} == {"Setup"}
    assert not any("install" in e.text for e in entries)
    assert "It worked in the end." in " ".join(e.text for e in entries)


def test_an_indented_paragraph_in_a_txt_file_is_still_prose() -> None:
    text = "Lab Notes\n    I indent my paragraphs the old way, and this one says the run diverged.\n"
    entries = split_entries(text, "n.txt", indented_code=False)
    assert any("diverged" in e.text for e in entries)


@pytest.mark.parametrize(
    "front",
    [
        "---\nprivate: true\n---\n",
        "\ufeff---\nprivate: true\n---\n",
        "---\r\nprivate: true\r\n---\r\n",
        "\ufeff---\r\nprivate: yes\r\n---\r\n",
        "---\rprivate: 'true'\r---\r",
    ],
    ids=["plain", "bom", "crlf", "bom-crlf", "cr"],
)
def test_private_front_matter_whatever_the_marks(tmp_path: Path, front: str) -> None:
    path = tmp_path / "n.md"
    path.write_bytes((front + "# Plans\nI plan to leave the lab.\n").encode("utf-8"))
    assert load_document(path).private


def test_front_matter_is_not_read_as_a_setext_heading(tmp_path: Path) -> None:
    path = tmp_path / "n.md"
    path.write_bytes(b"\xef\xbb\xbf---\r\ntitle: Notes\r\n---\r\nWe trained the model for three days.\r\n")
    doc = load_document(path)
    assert not doc.private and [e.text for e in doc.entries] == ["We trained the model for three days."]


def test_diary_headings_with_crlf_and_a_private_suffix(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_bytes(b"## [Open_Day]\r\nWe trained.\r\n## [Secret_Day] {private}\r\nIt broke.\r\n")
    doc = load_document(path)
    assert [e.title for e in doc.entries] == ["Open Day"] and doc.private_entries == ("Secret Day",)
    assert [e.text for e in doc.entries] == ["We trained."]


def test_emptied_files_are_retractions_and_unreadable_ones_are_not(tmp_path: Path) -> None:
    for raw, retract in [(b"", True), (b"  \r\n", True), (b"\xef\xbb\xbf\xe2\x80\x8b\n", True), (b"caf\xe9", False)]:
        path = tmp_path / "n.md"
        path.write_bytes(raw)
        with pytest.raises(LoadError) as err:
            load_document(path)
        assert err.value.retract is retract, raw


def test_the_private_manifest_is_read_whatever_its_marks(tmp_path: Path) -> None:
    name = unicodedata.normalize("NFD", "비밀.md")
    (tmp_path / name).write_text("# 계획\n연구실을 떠날 계획이다.\n", encoding="utf-8")
    (tmp_path / "diary.md").write_text("# Open\nWe trained.\n\n# Secret\nIt broke.\n", encoding="utf-8")
    (tmp_path / ".persona-private").write_bytes("\ufeff비밀.md\r\ndiary.md#Secret\r\n".encode())
    assert load_document(tmp_path / name).private
    doc = load_document(tmp_path / "diary.md")
    assert doc.private_entries == ("Secret",) and [e.title for e in doc.entries] == ["Open"]


QUESTIONS = ["처음 대규모 모델을 학습했을 때 손실이 왜 폭발했나요?", "What happened when you trained Megatron?"]


@pytest.fixture(scope="module")
def clean_answers(agent: Any, tmp_path_factory: Any) -> list[Any]:
    folder = tmp_path_factory.mktemp("clean-notes")
    (folder / "note.md").write_text(CLEAN_NOTE, encoding="utf-8")
    fresh = fresh_agent(agent, tmp_path_factory.mktemp("clean-home"))
    ingest_folder(fresh, folder)
    return [fresh.ask(q, persona="me") for q in QUESTIONS]


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(text=VARIANTS)
@example(text=_variant(CLEAN_NOTE, True, "\r\n", "NFD", [(17, "\u200b"), (40, "\u00ad")]))
def test_answers_over_a_saved_variant_match_the_clean_files(
    agent: Any, tmp_path_factory: Any, clean_answers: list[Any], text: str
) -> None:
    folder = tmp_path_factory.mktemp("variant-notes")
    (folder / "note.md").write_bytes(text.encode("utf-8"))
    fresh = fresh_agent(agent, tmp_path_factory.mktemp("variant-home"))
    report = ingest_folder(fresh, folder)
    for question, expected in zip(QUESTIONS, clean_answers, strict=True):
        answer = fresh.ask(question, persona="me")
        assert answer.abstained == expected.abstained
        assert clean(answer.text) == clean(expected.text)
        assert [(c.title, clean(c.quote)) for c in answer.citations] == [
            (c.title, clean(c.quote)) for c in expected.citations
        ]
        assert_citations_resolve(answer, folder, encodings(report))


def test_an_llm_quote_in_nfc_is_located_in_a_passage_saved_in_nfd() -> None:
    """agent/citations.locate, which the LLM backends' verifier uses: a model writes NFC."""
    from agent.citations import locate
    from knowledge.types import Chunk

    saved = unicodedata.normalize("NFD", "손실이 갑자기 폭발했다. 원인은 워밍업이었다.") + " Mega\u200btron stalled."
    chunk = Chunk("x", "me", "n.md", "t", 40, 40 + len(saved), saved, "ko", "h")
    for quote in ("갑자기 폭발했다", "원인은 워밍업이었다.", "Megatron stalled."):
        found = locate(quote, chunk)
        assert found is not None, quote
        assert saved[found.start - 40 : found.end - 40] == found.quote and clean(found.quote) == quote
    assert locate("손실이 줄었다", chunk) is None
