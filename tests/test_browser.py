"""The chat page in a real browser: Debian's Chromium driven by Playwright against the real app and index."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from knowledge.config import BUNDLED_SOURCES
from tests.ui_server import (
    BOT,
    CHROMIUM,
    USER,
    answers,
    ask,
    launch_chromium,
    open_page,
    serve,
    wait_for_answers,
    watch_streaming,
)

pytestmark = [
    pytest.mark.slow,
    # Gradio's queue calls pandas APIs that pandas 3 deprecates: noise from a dependency, not ours.
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():  # pragma: no cover
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium", allow_module_level=True)

HANGUL = re.compile(r"[\uac00-\ud7a3]")

GARDEN_NOTE = """# Tomato summer

This summer my tomato plants grew taller than the garden fence. I labelled the tomato bed with a sign that read \
<img src=x onerror="window.__xssImg=1"> because the kids thought it was funny. Next to the basil I pinned a note \
saying <script>window.__xssScript=1</script> in big letters. The tomato plants gave fruit in August \
![tomato](https://evil.example/track.png) and we ate them with basil.

# Winter reading

In winter I read about soil and compost, and I planned next year's beds.
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def app_url(agent_factory: Callable[..., Any]) -> Iterator[str]:
    """The real page over the real agent and the session's index of the four bundled personas."""
    from ui.app import build_app

    with serve(build_app(agent_factory().ask_stream)) as url:
        yield url


@pytest.fixture()
def page(browser: Any, app_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    yield open_page(context, app_url)
    context.close()


def test_example_question_streams_a_cited_answer(page: Any) -> None:
    watch_streaming(page)  # the answer must show up unfinished before it is complete
    example = page.locator('button.example[lang="en"]').first
    question = example.inner_text()
    example.click()
    wait_for_answers(page, 1)
    assert page.locator(USER).last.inner_text().strip() == question
    bot = page.locator(BOT).last
    # A short first-person lead fitting the question, then the cited words (agent.backends.extractive).
    assert any(lead in bot.inner_text() for lead in ("Here's how I wrote it down:", "My view, as I wrote it:"))
    assert bot.locator("button.cite").count() >= 1
    assert "extractive" in bot.locator(".answer-meta").inner_text()
    assert page.evaluate("() => window.__sawStreaming === true")


def test_citation_opens_the_passage_highlighted_in_its_entry(page: Any) -> None:
    page.locator('button.example[lang="en"]').first.click()
    wait_for_answers(page, 1)
    cite = page.locator(f"{BOT} button.cite").first
    source = cite.get_attribute("title").split(" — ")[-1]
    cite.click()
    mark = page.locator("#sources mark")
    mark.wait_for(timeout=10_000)
    file_line = page.locator("#sources .src-file").inner_text()
    assert file_line.startswith(source)
    start, end = (int(x.replace(",", "")) for x in re.findall(r"[\d,]+", file_line.split("characters")[1]))
    text = (BUNDLED_SOURCES / source).read_text("utf-8")
    assert mark.inner_text() == text[start:end]  # the exact quoted passage is the one highlighted
    context = page.locator("#sources .src-context").inner_text()
    assert len(context) > len(mark.inner_text()) + 200  # shown inside its surrounding text
    assert page.locator("#sources .src-title").inner_text().strip()


def test_switching_persona_changes_examples_and_answers(page: Any) -> None:
    page.locator('button.example[lang="en"]').first.click()
    wait_for_answers(page, 1)
    page.locator("#persona label", has_text="The Diarist").click()
    page.wait_for_function("() => document.querySelector('#examples').innerText.includes('AGI')")
    assert page.locator(BOT).count() == 0  # each persona keeps its own conversation
    page.locator('button.example[lang="en"]').first.click()
    wait_for_answers(page, 1)
    titles = page.locator(f"{BOT} button.cite").evaluate_all("els => els.map(e => e.title)")
    assert titles and all("research-diary-readme.txt" in t for t in titles)
    page.locator("#persona label", has_text="Raj").click()
    page.wait_for_function("() => document.querySelector('#examples').innerText.includes('unlearning')")
    assert page.locator(BOT).count() == 1  # Raj's conversation is still there


def test_korean_question_gets_a_korean_answer(page: Any) -> None:
    ask(page, "첫 대규모 학습에서 무엇이 잘못됐나요?")
    wait_for_answers(page, 1)
    bot = page.locator(BOT).last
    assert HANGUL.search(bot.locator(".answer").inner_text())
    titles = bot.locator("button.cite").evaluate_all("els => els.map(e => e.title)")
    assert any("raj-diary.ko.txt" in t for t in titles)


def test_abstention_is_a_callout_with_clickable_topics(page: Any) -> None:
    ask(page, "What is your favourite pizza topping?")
    wait_for_answers(page, 1)
    bot = page.locator(BOT).last
    assert bot.locator(".abstain").count() == 1
    assert bot.locator("button.cite").count() == 0
    topic = bot.locator("button.suggest").first
    suggestion = topic.get_attribute("value")
    assert topic.inner_text() in suggestion
    topic.click()
    wait_for_answers(page, 2)
    assert page.locator(USER).last.inner_text().strip() == suggestion


def test_retry_clear_and_readable_errors(page: Any) -> None:
    page.locator('button.example[lang="en"]').first.click()
    wait_for_answers(page, 1)
    watch_streaming(page)
    page.click("#retry")
    page.wait_for_function("() => window.__sawStreaming")  # a new answer is on its way...
    wait_for_answers(page, 1)
    assert page.locator(BOT).count() == 1  # the retried answer replaced the old one
    ask(page, "   ")
    toast = page.get_by_text("the question is empty")
    toast.wait_for(timeout=10_000)
    assert "Traceback" not in page.locator("body").inner_text()
    assert page.locator(BOT).count() == 1  # a failed question leaves the conversation as it was
    page.click("#clear")
    page.wait_for_function("() => !document.querySelector('[data-testid=\"bot\"]')")
    assert "Click a citation" in page.locator("#sources").inner_text()


def test_two_browsers_keep_separate_histories(browser: Any, app_url: str) -> None:
    first, second = browser.new_context(), browser.new_context()
    try:
        a, b = open_page(first, app_url), open_page(second, app_url)
        ask(a, "What did you learn about unlearning?")
        ask(b, "Do you think scaling is the answer?")  # both in flight at once
        wait_for_answers(a, 1)
        wait_for_answers(b, 1)
        assert a.locator(USER).all_inner_texts() == ["What did you learn about unlearning?"]
        assert b.locator(USER).all_inner_texts() == ["Do you think scaling is the answer?"]
        b.reload(wait_until="load")
        b.wait_for_selector("button.example")
        assert b.locator(BOT).count() == 0  # a new session starts empty...
        assert answers(a).count() == 1  # ...and the other session is untouched
    finally:
        first.close()
        second.close()


@pytest.fixture(scope="module")
def garden_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A user persona whose note holds HTML, a script and a remote markdown image, ingested for real."""
    from agent.personas import save_user_persona
    from agent.pipeline import build_agent
    from knowledge.config import Settings
    from knowledge.ingest import ingest
    from ui.app import build_app

    root = tmp_path_factory.mktemp("garden")
    notes = root / "notes"
    notes.mkdir()
    (notes / "garden.md").write_text(GARDEN_NOTE, encoding="utf-8")
    settings = Settings.from_env().replace(home=root / "home")
    agent = build_agent(settings)
    save_user_persona(settings, "gardener", notes, ["garden.md"], name="The Gardener")
    ingest(agent.store, "gardener", [notes / "garden.md"], root=notes, chunk_tokens=settings.chunk_tokens)
    with serve(build_app(agent.ask_stream)) as url:
        yield url


def test_html_in_sources_renders_inert(browser: Any, garden_url: str) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    hosts: set[str] = set()
    context.on("request", lambda r: hosts.add(r.url.split("/")[2]))
    try:
        page = open_page(context, garden_url)
        page.locator("#persona label", has_text="The Gardener").click()
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('The Gardener')")
        ask(page, "How tall did your tomato plants grow this summer?")
        wait_for_answers(page, 1)
        page.locator(f"{BOT} button.cite").last.click()
        page.locator("#sources mark").wait_for(timeout=10_000)
        page.wait_for_timeout(300)  # time for an onerror handler to have fired, were the <img> real
        found = page.evaluate(
            """() => ({
                 imgX: document.querySelectorAll('img[src="x"]').length,
                 remoteImg: [...document.images].filter(i => i.src.includes('evil.example')).length,
                 scripts: document.querySelectorAll('#chat script, #sources script').length,
                 flags: [window.__xssImg, window.__xssScript],
               })"""
        )
        assert found == {"imgX": 0, "remoteImg": 0, "scripts": 0, "flags": [None, None]}
        # The extractive backend does not quote sentences the ingest scan flags (see
        # test_security), so the markup reaches the page through the sources panel, which
        # shows the passage around the quote: there it must be text, not tags.
        panel = page.locator("#sources .src-context").inner_text()
        assert '<img src=x onerror="window.__xssImg=1">' in panel  # shown as the text it is
        assert "<script>window.__xssScript=1</script>" in panel
        assert "![tomato](https://evil.example/track.png)" in panel
        assert hosts == {garden_url.split("/")[2]}  # nothing was fetched from anywhere else
    finally:
        context.close()
