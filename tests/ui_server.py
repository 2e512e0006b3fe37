"""Chat page for browser tests: serve build_app on a free 127.0.0.1 port, drive Debian's Chromium, take the screenshot.

Regenerate docs/screenshot.png with ``python -m tests.ui_server --out docs/screenshot.png`` (indexes the
bundled writings into a temporary PERSONA_HOME first, unless ``--home`` names an indexed one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.backends.model_server import free_port

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = "/usr/bin/chromium"
# Headless and quiet: no GPU, no QUIC, no background traffic to Google services (offline machines).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BOT = '[data-testid="bot"]'
USER = '[data-testid="user"]'
ANSWER_TIMEOUT_MS = 60_000  # the first answer also loads the embedder


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Launch ``app`` (a gr.Blocks from ui.app.build_app) in background threads; yield its URL."""
    from ui.app import launch

    port = free_port()
    launch(app, "127.0.0.1", port, block=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_page(target: Any, url: str, **context: Any) -> Any:
    """A new page on ``url`` (from a Browser or a BrowserContext), once the page's widgets are up."""
    page = target.new_page(**context)
    # "load", not "networkidle": Gradio keeps a connection open.
    page.goto(url, wait_until="load")
    page.wait_for_selector("button.example", timeout=30_000)
    return page


def answers(page: Any) -> Any:
    """Finished answers: each one ends with its usage line."""
    return page.locator(f"{BOT} .answer-meta")


def wait_for_answers(page: Any, count: int, timeout: int = ANSWER_TIMEOUT_MS) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=\"bot\"] .answer-meta').length >= n",
        arg=count,
        timeout=timeout,
    )


def watch_streaming(page: Any) -> None:
    """Set ``window.__sawStreaming`` once an unfinished (still streaming) answer shows on the page."""
    page.evaluate(
        """() => {
             window.__sawStreaming = false;
             if (window.__streamWatch) return;
             window.__streamWatch = new MutationObserver(() => {
               if (document.querySelector('[data-testid="bot"] .answer.streaming')) window.__sawStreaming = true;
             });
             window.__streamWatch.observe(document.body, {subtree: true, childList: true});
           }"""
    )


def ask(page: Any, question: str) -> None:
    """Type a question and send it; wait_for_answers() waits for the reply."""
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")


def index_bundled(home: Path) -> Any:
    """Index the bundled personas into ``home`` (as `persona ingest` does); return the Agent."""
    from agent.personas import list_personas
    from agent.pipeline import build_agent
    from knowledge.config import Settings
    from knowledge.ingest import ingest

    settings = Settings.from_env().replace(home=home)
    agent = build_agent(settings)
    for card in list_personas(settings):
        ingest(agent.store, card.id, card.source_paths(), root=card.sources_dir, chunk_tokens=settings.chunk_tokens)
    return agent


SCREENSHOT_QUESTION = "Do you think scaling is the answer?"  # a view question: the product's core


def take_screenshot(url: str, out: Path, question: str = SCREENSHOT_QUESTION) -> None:
    """A real answer to ``question`` with its sources panel open, as a user would see it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_page(browser, url, viewport={"width": 1440, "height": 900})
            ask(page, question)
            wait_for_answers(page, 1)
            cites = page.locator(f"{BOT} button.cite")
            cites.nth(min(1, cites.count() - 1)).click()
            page.wait_for_selector("#sources mark", timeout=10_000)
            page.mouse.move(0, 0)  # no hover styles in the picture
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the chat page screenshot.")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshot.png"))
    parser.add_argument("--home", type=Path, help="an indexed PERSONA_HOME (default: index into a temporary one)")
    parser.add_argument(
        "--question", default=SCREENSHOT_QUESTION, help=f"what to ask (default: {SCREENSHOT_QUESTION!r})"
    )
    args = parser.parse_args(argv)
    from agent.pipeline import build_agent
    from knowledge.config import Settings
    from ui.app import build_app

    with tempfile.TemporaryDirectory(prefix="persona-shot-") as tmp:
        if args.home:
            agent = build_agent(Settings.from_env().replace(home=args.home))
        else:
            agent = index_bundled(Path(tmp))
        agent.ask(args.question)  # load the embedder first: on a busy machine the page would time out
        with serve(build_app(agent.ask_stream)) as url:
            take_screenshot(url, args.out, args.question)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
