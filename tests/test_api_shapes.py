"""ui.api's pure parts: request validation, history cleaning, citation shapes, the exposure check."""

from __future__ import annotations

import pytest

from knowledge.errors import ConfigError
from knowledge.types import Citation
from ui.api import APIError, check_exposure, citation_url, parse_request, sources_block, strip_answer, url_citations

C1 = Citation(n=1, source="raj-diary.en.txt", title="First Steps", quote="It was a gradient\nclipping bug.",
              start=628, end=659)
SOURCES = "\n\nSources:\n[1] T — f, characters 1-2: “x”"
C2 = Citation(n=2, source="my notes/a b.md", title="Notes", quote="Start over.", start=10, end=21)


def test_the_last_user_message_is_the_question_and_system_messages_are_ignored() -> None:
    req = parse_request({
        "model": "raj",
        "messages": [
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "What went wrong?"},
            {"role": "assistant", "content": f"<think>plan</think>It was a bug. [1]{SOURCES}"},
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Why?"}, {"type": "text", "text": "Really?"}]},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 50,
        "temperature": 0,
        "backend": "extractive",
    })
    assert req.question == "Why?\nReally?"
    assert req.history == [
        {"role": "user", "content": "What went wrong?"},
        {"role": "assistant", "content": "It was a bug."},
    ]
    assert req.stream and req.include_usage and req.backend == "extractive"
    assert req.options == {"max_tokens": 50, "temperature": 0.0}
    assert all("pirate" not in m["content"] for m in req.history)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "raj", "messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"model": "raj", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
         "messages[0].content[0].type"),
        ({"model": "raj", "messages": [{"role": "user", "content": "x"}], "max_tokens": True}, "max_tokens"),
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
def test_bad_fields_are_named(body: dict[str, object], param: str) -> None:
    with pytest.raises(APIError) as err:
        parse_request(body)
    assert err.value.status == 400 and err.value.param == param
    assert err.value.body()["error"]["param"] == param


def test_strip_answer_keeps_plain_answers() -> None:
    assert strip_answer("Nothing to strip here.") == "Nothing to strip here."
    assert strip_answer("One [1]. Two [2].") == "One. Two."


def test_sources_block_and_annotations_locate_every_marker() -> None:
    body = "It was a bug [1]. I started over [2] [1]."
    content = body + sources_block([C1, C2])
    notes = url_citations(content, len(body), "raj", [C1, C2])
    assert [content[a["url_citation"]["start_index"] : a["url_citation"]["end_index"]] for a in notes] == [
        "[1]", "[2]", "[1]"]
    assert notes[1]["url_citation"]["url"] == "persona://raj/my%20notes/a%20b.md#char=10,21"
    assert citation_url("raj", C1) == "persona://raj/raj-diary.en.txt#char=628,659"
    assert "[1] First Steps — raj-diary.en.txt, characters 628-659: “It was a gradient clipping bug.”" in content
    assert sources_block([]) == ""


def test_a_public_host_needs_a_key() -> None:
    check_exposure("127.0.0.1", None)
    check_exposure("localhost", None)
    check_exposure("0.0.0.0", "secret")
    with pytest.raises(ConfigError, match="PERSONA_API_KEY"):
        check_exposure("0.0.0.0", None)
    with pytest.raises(ConfigError, match="PERSONA_API_KEY"):
        check_exposure("192.168.1.5", "")
