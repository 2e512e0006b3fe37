"""Tests for ui/render.py: answers, citations and source passages become safe HTML."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from knowledge.types import Answer, Citation, Usage
from ui.render import (
    Passage,
    format_usage,
    passage_context,
    persona_label,
    render_answer,
    render_body,
    render_examples,
    render_partial,
    render_question,
    render_source,
    suggestion_question,
    unsupported_spans,
)

EVIL = '<img src=x onerror="alert(1)"><script>alert(2)</script>![t](https://evil.example/t.png)'
ALLOWED_TAGS = {"div", "span", "button", "br", "mark", "blockquote", "ul", "li", "code"}
ALLOWED_ATTRS = {"class", "type", "value", "title", "lang"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    c.close()
    return c


def assert_safe(html: str) -> None:
    """Only the renderer's own tags and attributes; nothing that loads, links or runs."""
    for tag, attrs in parse(html).tags:
        assert tag in ALLOWED_TAGS, tag
        assert set(attrs) <= ALLOWED_ATTRS, attrs


def cit(n: int, quote: str = "the loss exploded.", title: str = "First Steps", source: str = "raj.txt") -> Citation:
    return Citation(n=n, source=source, title=title, quote=quote, start=10 * n, end=10 * n + len(quote))


def answer(text: str, **kw: object) -> Answer:
    base: dict[str, object] = {"citations": [], "abstained": False, "persona": "raj", "backend": "extractive"}
    base.update(kw)
    return Answer(text=text, **base)  # type: ignore[arg-type]


def test_question_is_escaped_text() -> None:
    html = render_question(EVIL + "\nsecond line")
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "<br>second line" in html
    assert_safe(html)


def test_markers_become_buttons_that_name_turn_and_number() -> None:
    html = render_body("It broke. [1] I fixed it. [2]", 3, [cit(1), cit(2, title="Fix")])
    buttons = [a for tag, a in parse(html).tags if tag == "button"]
    assert [b["value"] for b in buttons] == ["3:1", "3:2"]
    assert buttons[0]["title"] == "First Steps — raj.txt"
    assert all(b["class"] == "cite" for b in buttons)


def test_marker_without_a_verified_citation_is_not_a_button() -> None:
    html = render_body("Claim. [7]", 0, [cit(1)])
    assert "<button" not in html
    assert 'class="cite-missing"' in html and "[7]" in html


def test_hostile_answer_text_and_titles_stay_text() -> None:
    c = cit(1, title='"><img src=x onerror=alert(1)>', source="<b>x</b>.txt")
    html = render_body(EVIL + " [1]", 0, [c])
    assert_safe(html)
    text = "".join(parse(html).text)
    assert EVIL in text  # visible, as written
    assert "](https://" in text  # a markdown image is never interpreted


def test_unsupported_sentences_are_marked_and_badged() -> None:
    text = "I trained it. [1] It reached AGI. [2] Then it stopped."
    html = render_body(text, 0, [cit(1), cit(2)], unsupported=["It reached AGI. [2]"])
    assert '<span class="unsupported"' in html
    assert html.count('class="badge-unsupported"') == 1
    inner = html.split('<span class="unsupported"', 1)[1].split("</span><span class=\"badge", 1)[0]
    assert "It reached AGI." in inner and 'value="0:2"' in inner  # its marker stays clickable


def test_unsupported_spans_match_without_markers_and_skip_unknown() -> None:
    text = "A is true [1]. B is false. A is true [1]."
    assert unsupported_spans(text, ["B is false.", "not in the answer"]) == [(15, 26)]
    # The same sentence twice: each occurrence is marked once, in order.
    assert unsupported_spans(text, ["A is true [1].", "A is true [1]."]) == [(0, 14), (27, 41)]
    assert unsupported_spans("Claim one. [3]", ["Claim one. [9]"]) == [(0, 10)]


def test_abstention_is_a_callout_with_topic_suggestions() -> None:
    a = answer("I haven't written about that.", abstained=True, nearest_topics=["Exploring <Internals>", "Grokking"])
    html = render_answer(a, 0, "en")
    assert 'class="abstain"' in html and 'class="answer"' not in html
    values = [attrs["value"] for tag, attrs in parse(html).tags if tag == "button"]
    assert values == [suggestion_question("Exploring <Internals>", "en"), suggestion_question("Grokking", "en")]
    assert "&lt;Internals&gt;" in html
    assert_safe(html)
    ko = render_answer(a, 0, "ko")
    first = next(attrs["value"] for tag, attrs in parse(ko).tags if tag == "button")
    assert first == "“Exploring <Internals>”에 대해 쓴 글을 들려주세요."


def test_answer_shows_usage_and_incomplete_note() -> None:
    a = answer("Partial. [1]", citations=[cit(1)], incomplete=True, backend="openai", model="gpt-4o-mini",
               usage=Usage(prompt_tokens=1200, completion_tokens=80, cost_usd=0.00023))
    html = render_answer(a, 0)
    assert 'class="incomplete-note"' in html
    assert "openai · gpt-4o-mini · 1,200 + 80 tokens · $0.0002" in html


def test_format_usage() -> None:
    assert format_usage(answer("x")) == "extractive · 0 tokens · no LLM cost"
    local = answer("x", backend="local", usage=Usage(10, 5, None))
    assert format_usage(local) == "local · 10 + 5 tokens · cost unknown"


def test_partial_answer_has_inert_markers_and_a_cursor() -> None:
    html = render_partial("So far <b>bold</b> [1]")
    assert "<button" not in html and "<b>" not in html
    assert '<span class="cite-pending">[1]</span>' in html and 'class="cursor"' in html


FILE = "intro. " * 100 + "In week two, the loss exploded." + " after" * 100


def test_passage_context_surrounds_the_quote_within_radius() -> None:
    start = FILE.index("In week two")
    c = cit(1, quote="In week two, the loss exploded.")
    c = Citation(1, "f.txt", "T", c.quote, start, start + len(c.quote))
    p = passage_context(FILE, c, radius=50)
    assert p is not None and p.exact
    assert p.quote == c.quote
    assert 40 <= len(p.before) <= 50 and 40 <= len(p.after) <= 50
    assert p.before[0] != " " and p.before.split(" ")[0] == "intro."  # cut at a word boundary
    assert p.clipped_before and p.clipped_after


def test_passage_context_stays_inside_its_entry() -> None:
    start = FILE.index("In week two")
    c = Citation(1, "f.txt", "T", "In week two, the loss exploded.", start, start + 31)
    p = passage_context(FILE, c, radius=400, bounds=(start - 14, start + 31 + 6))
    assert p is not None
    assert p.before == "intro. intro. " and p.after == " after"
    assert not p.clipped_before and not p.clipped_after


def test_passage_context_finds_a_moved_quote_or_gives_up() -> None:
    c = Citation(1, "f.txt", "T", "In week two, the loss exploded.", 3, 34)  # offsets from an older file
    p = passage_context(FILE, c, radius=20)
    assert p is not None and not p.exact and p.quote == c.quote
    gone = Citation(1, "f.txt", "T", "a sentence that was deleted", 3, 30)
    assert passage_context(FILE, gone) is None


def test_source_panel_marks_the_quote_and_escapes_everything() -> None:
    c = Citation(2, "notes/<evil>.md", "<script>t</script>", "the <img src=x> quote", 100, 121)
    p = Passage(before="before <b>", quote=c.quote, after=" after", clipped_before=True, clipped_after=False)
    html = render_source(c, p, turn=4, others=[cit(1), c], persona_name="Raj")
    assert_safe(html)
    assert "<mark>the &lt;img src=x&gt; quote</mark>" in html
    assert "… before &lt;b&gt;" in html
    assert "notes/&lt;evil&gt;.md · Raj · characters 100–121" in html
    others = [a["value"] for tag, a in parse(html).tags if tag == "button"]
    assert others == ["4:1"]  # the other citations of the same answer, not the one shown


def test_source_panel_without_a_readable_file_shows_the_quote() -> None:
    html = render_source(cit(1), None, turn=0)
    assert "<mark>the loss exploded.</mark>" in html and "persona ingest" in html


def test_examples_are_buttons_carrying_their_question() -> None:
    html = render_examples(['Why "scale"?'], ["왜 <스케일>?"])
    buttons = [a for tag, a in parse(html).tags if tag == "button"]
    assert [(b["lang"], b["value"]) for b in buttons] == [("en", 'Why "scale"?'), ("ko", "왜 <스케일>?")]
    assert_safe(html)
    assert "No example questions" in render_examples([], [])


def test_persona_label_is_name_and_one_line_bio() -> None:
    assert persona_label("Raj", "A professor\n  who writes.") == "Raj — A professor who writes."
    assert persona_label("Me", "") == "Me"


@given(st.text(max_size=300), st.lists(st.text(max_size=40), max_size=3))
def test_any_answer_renders_to_safe_html(text: str, titles: list[str]) -> None:
    cites = [cit(i + 1, quote=t or "q", title=t, source=t) for i, t in enumerate(titles)]
    html = render_answer(answer(text, citations=cites, unsupported=[text[:20]], nearest_topics=titles), 0)
    assert_safe(html)
    abstained = render_answer(answer(text, abstained=True, nearest_topics=titles), 0)
    assert_safe(abstained)
    assert text.replace("\r\n", "\n").replace("\n", "") in "".join(parse(abstained).text)
