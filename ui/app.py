"""The chat page: build_app(ask_stream) -> gr.Blocks; main() launches it on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

# Before gradio is imported: otherwise it looks up its analytics host at start.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from agent.personas import PersonaCard, get_persona, list_personas  # noqa: E402
from knowledge.config import Settings  # noqa: E402
from knowledge.errors import PersonaError  # noqa: E402
from knowledge.text import detect_lang  # noqa: E402
from knowledge.types import Answer, Citation  # noqa: E402
from ui.render import (  # noqa: E402
    SOURCES_PLACEHOLDER,
    Passage,
    passage_context,
    persona_label,
    render_answer,
    render_examples,
    render_partial,
    render_question,
    render_source,
    render_source_error,
)

log = logging.getLogger(__name__)

AskStream = Callable[..., Iterator[Any]]
Conversations = dict[str, list["Turn"]]  # persona id -> its turns, for one browser session
# What an answer event yields: chat messages, conversations, the text box, an error message ("" if none).
AnswerUpdate = tuple[list[dict[str, str]], Conversations, str, str]

# Several people at once: up to ANSWER_CONCURRENCY answers run in parallel (a slow LLM answer
# holds one slot, not the page); beyond QUEUE_SIZE waiting events new ones are refused politely.
ANSWER_CONCURRENCY = 4
# Streamed text reaches the page at most this often (seconds): each update re-sends and re-renders
# the whole chat, so an extractive answer's pieces, ready within a millisecond of each other, went
# out as four updates where one does (issue 14: twenty sessions at once on 2 cores).
STREAM_INTERVAL = 0.1
QUEUE_SIZE = 64
GENERIC_ERROR = (
    "Something went wrong while answering, and it has been logged. "
    "Try again, or switch the backend to “extractive”."
)

# One delegated listener for every button the server renders as HTML (citations, suggested
# topics, example questions): the HTML carries no script, so clicks reach Python through the
# sources panel's custom events 'cite' and 'ask'. The listener survives re-renders (installed once).
BRIDGE_JS = """
window.__personaTrigger = trigger;
if (!window.__personaBridge) {
  window.__personaBridge = true;
  document.addEventListener('click', (event) => {
    const el = event.target instanceof Element
      ? event.target.closest('button.cite, button.suggest, button.example') : null;
    if (!el) return;
    event.preventDefault();
    event.stopPropagation();
    if (el.classList.contains('cite')) {
      document.querySelectorAll('button.cite.active').forEach((b) => b.classList.remove('active'));
      el.classList.add('active');
      window.__personaTrigger('cite', {ref: el.value});
    } else {
      window.__personaTrigger('ask', {question: el.value});
    }
  }, true);
}
"""

CSS = """
.gradio-container { max-width: 1500px !important; }
#title h1 { margin-bottom: 0; font-weight: 600; }
#title p { margin-top: 2px; color: var(--body-text-color-subdued); }
#persona .wrap { flex-direction: column; gap: 6px; }
#persona label { width: 100%; box-sizing: border-box; align-items: flex-start; line-height: 1.35; font-size: 0.9em; }
#chat .answer, #chat .question { line-height: 1.6; }
#chat .answer.streaming .cursor { animation: persona-blink 1s steps(1) infinite; color: var(--color-accent); }
@keyframes persona-blink { 50% { opacity: 0; } }
button.cite {
  all: unset; cursor: pointer; color: var(--color-accent); font-weight: 600; font-size: 0.8em;
  vertical-align: super; line-height: 1; padding: 0 2px; border-radius: 4px;
}
button.cite:hover, button.cite.active { background: var(--color-accent-soft); }
button.cite:focus-visible, button.suggest:focus-visible, button.example:focus-visible {
  outline: 2px solid var(--color-accent); outline-offset: 1px;
}
.cite-pending, .cite-missing { color: var(--body-text-color-subdued); font-size: 0.8em; vertical-align: super; }
.unsupported {
  text-decoration: underline dotted #d97706; text-decoration-thickness: 2px; text-underline-offset: 3px;
}
.badge-unsupported {
  display: inline-block; margin-left: 4px; padding: 0 6px; border-radius: 999px; font-size: 0.68em;
  font-weight: 600; letter-spacing: 0.03em; text-transform: uppercase; vertical-align: middle;
  background: #fef3c7; color: #92400e; border: 1px solid #fcd34d;
}
.answer-meta { margin-top: 6px; font-size: 0.72em; color: var(--body-text-color-subdued); opacity: 0.85; }
.incomplete-note { margin-top: 4px; font-size: 0.8em; color: #b45309; }
.abstain {
  border-left: 3px solid var(--border-color-primary); background: var(--background-fill-secondary);
  padding: 8px 12px; border-radius: 6px; color: var(--body-text-color-subdued);
}
.abstain-label { font-size: 0.7em; font-weight: 700; letter-spacing: 0.05em; text-transform: uppercase; }
.abstain-text { font-style: italic; margin: 2px 0 6px; }
.topics-label { font-size: 0.8em; }
button.suggest, button.example {
  all: unset; cursor: pointer; box-sizing: border-box; border: 1px solid var(--border-color-primary);
  background: var(--background-fill-primary); color: var(--body-text-color);
}
button.suggest {
  display: inline-block; margin: 4px 4px 0 0; padding: 1px 10px; border-radius: 999px; font-size: 0.85em;
}
button.example {
  display: block; width: 100%; margin: 5px 0; padding: 6px 10px; border-radius: 8px; font-size: 0.88em;
  text-align: left;
}
button.suggest:hover, button.example:hover { border-color: var(--color-accent); background: var(--color-accent-soft); }
.ex-head { margin: 8px 0 2px; font-size: 0.78em; font-weight: 600; color: var(--body-text-color-subdued); }
#sources { min-height: 200px; }
.sources-empty { color: var(--body-text-color-subdued); font-size: 0.9em; padding: 12px 4px; }
.cite-sample { color: var(--color-accent); font-weight: 600; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 12px 14px; }
.src-head { font-weight: 600; font-size: 1.02em; }
.src-n { color: var(--color-accent); }
.src-file {
  margin: 2px 0 10px; font-size: 0.78em; color: var(--body-text-color-subdued); font-family: var(--font-mono);
}
.src-context {
  margin: 0; padding: 8px 12px; border-left: 3px solid var(--color-accent); white-space: pre-wrap;
  line-height: 1.6; font-size: 0.92em; max-height: 480px; overflow: auto; background: var(--background-fill-secondary);
}
.src-context mark { background: #fde68a; color: #1f2937; padding: 1px 2px; border-radius: 3px; }
.src-warning { margin-top: 8px; font-size: 0.8em; color: #b45309; }
.src-others { margin-top: 12px; font-size: 0.85em; }
.src-others-label { font-size: 0.78em; font-weight: 600; color: var(--body-text-color-subdued); }
.src-others ul { margin: 4px 0 0; padding-left: 0; list-style: none; }
"""


@dataclass(frozen=True)
class Turn:
    """One question and its final answer, kept in the browser session's gr.State."""

    question: str
    answer: Answer
    lang: str = "en"


def available_backends(settings: Settings) -> list[str]:
    """Backends a user can pick: extractive always; openai when configured; local when llama_cpp imports."""
    from agent.backends import BACKENDS

    names = ["extractive"]
    if (settings.openai_api_key or settings.openai_base_url) and _backend_present("openai", BACKENDS):
        names.append("openai")
    if importlib.util.find_spec("llama_cpp") is not None and _backend_present("local", BACKENDS):
        names.append("local")
    return names


def _backend_present(name: str, registry: dict[str, Any]) -> bool:
    # Listed only if selecting it can work: registered already, or its module exists to register it.
    return name in registry or importlib.util.find_spec(f"agent.backends.{name}") is not None


def _default_backend(settings: Settings, choices: Sequence[str]) -> str:
    from agent.backends import resolve_name

    try:
        name = resolve_name(None, settings)
    except PersonaError:
        return choices[0]
    return name if name in choices else choices[0]


def read_passage(card: PersonaCard, citation: Citation) -> Passage | None:
    """The quote in its surrounding text, read from the persona's source file (None if unreadable)."""
    from knowledge.loaders import LoadError, load_document

    root = card.sources_dir.resolve()
    path = (root / citation.source).resolve()
    if not path.is_relative_to(root):  # a tampered index must not read files outside the folder
        return None
    try:
        doc = load_document(path, citation.source)
    except (LoadError, OSError):
        return None
    bounds = next(((e.start, e.end) for e in doc.entries if e.start <= citation.start < e.end), None)
    return passage_context(doc.text, citation, bounds=bounds)


class ChatController:
    """The page's behaviour, independent of the widgets: every method is a Gradio event handler.

    Nothing per user lives here: conversations arrive and leave as gr.State values, so two
    browser sessions never see each other's chats.
    """

    def __init__(self, ask_stream: AskStream, settings: Settings, cards: Sequence[PersonaCard]) -> None:
        self.ask_stream = ask_stream
        self.settings = settings
        self.cards = {c.id: c for c in cards}

    def card(self, persona: str) -> PersonaCard:
        card = self.cards.get(persona)
        return card if card is not None else get_persona(persona, self.settings)

    # --- rendering ---------------------------------------------------------------------

    @staticmethod
    def messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for i, turn in enumerate(turns):
            out.append({"role": "user", "content": render_question(turn.question)})
            out.append({"role": "assistant", "content": render_answer(turn.answer, i, turn.lang)})
        return out

    @staticmethod
    def history(turns: Sequence[Turn]) -> list[dict[str, str]]:
        """Earlier turns as the agent takes them (plain text, not the page's HTML)."""
        out: list[dict[str, str]] = []
        for turn in turns:
            out.append({"role": "user", "content": turn.question})
            out.append({"role": "assistant", "content": turn.answer.text})
        return out

    def examples_html(self, persona: str) -> str:
        card = self.card(persona)
        return render_examples(card.examples_en, card.examples_ko)

    # --- events ------------------------------------------------------------------------

    def respond(
        self, question: str, convs: Conversations | None, persona: str, backend: str | None
    ) -> Iterator[AnswerUpdate]:
        """Stream one answer into the chat; yields (chat messages, conversations, text box, error message)."""
        yield from self._answer(question, convs or {}, persona, backend, replace_last=False)

    def retry(
        self, convs: Conversations | None, persona: str, backend: str | None
    ) -> Iterator[AnswerUpdate]:
        """Ask the last question again (e.g. after switching backend); the new answer replaces the old."""
        convs = convs or {}
        turns = convs.get(persona) or []
        if not turns:
            gr.Info("Nothing to retry yet: ask a question first.")
            yield self.messages(turns), convs, "", ""
            return
        yield from self._answer(turns[-1].question, convs, persona, backend, replace_last=True)

    def ask_event(
        self, convs: Conversations | None, persona: str, backend: str | None, evt: gr.EventData
    ) -> Iterator[AnswerUpdate]:
        """A click on an example question or a suggested topic (the page script sends its text)."""
        question = evt._data.get("question") if isinstance(evt._data, dict) else None
        yield from self.respond(question if isinstance(question, str) else "", convs, persona, backend)

    def _answer(
        self, question: str, convs: Conversations, persona: str, backend: str | None, *, replace_last: bool
    ) -> Iterator[AnswerUpdate]:
        question = question if isinstance(question, str) else ""
        turns = list(convs.get(persona) or [])
        earlier = turns[:-1] if replace_last else turns
        chat = self.messages(earlier)
        asked = {"role": "user", "content": render_question(question)}
        yield [*chat, asked, {"role": "assistant", "content": render_partial("")}], convs, "", ""
        text = ""
        final: Answer | None = None
        shown = 0.0  # when the chat was last updated with partial text
        try:
            stream = self.ask_stream(question, persona=persona, backend=backend or None, history=self.history(earlier))
            for item in stream:
                if isinstance(item, Answer):
                    final = item
                elif isinstance(item, str):
                    text += item
                    # Pieces closer together than STREAM_INTERVAL go out as one update (the final
                    # answer carries whatever is left): every update re-sends the chat.
                    if time.monotonic() - shown >= STREAM_INTERVAL:
                        shown = time.monotonic()
                        yield [*chat, asked, {"role": "assistant", "content": render_partial(text)}], convs, "", ""
            if final is None:
                raise RuntimeError("the answer stream ended without a final Answer")
        except PersonaError as exc:
            # Expected failures (no index, bad input, backend down): the message says how to fix it.
            # The chat is put back as it was and the question back in the box, to edit and resend.
            yield self.messages(turns), convs, question, str(exc)
            return
        except Exception:
            log.exception("answering %r (persona %s, backend %s) failed", question[:200], persona, backend)
            yield self.messages(turns), convs, question, GENERIC_ERROR
            return
        done = [*earlier, Turn(question=question, answer=final, lang=detect_lang(question))]
        yield self.messages(done), {**convs, persona: done}, "", ""

    @staticmethod
    def report_error(message: str | None) -> None:
        """Raise the failed answer's message as gr.Error, in an event of its own.

        Raised from the answer event itself, the error would also cover the chat with Gradio's
        error overlay; from this output-less follow-up event only the readable toast shows.
        """
        if message:
            raise gr.Error(escape(message), title="Could not answer", print_exception=False)

    def clear(self, convs: Conversations | None, persona: str) -> tuple[list[dict[str, str]], Conversations, str]:
        """Forget the conversation with the current persona (this session only)."""
        convs = dict(convs or {})
        convs.pop(persona, None)
        return [], convs, SOURCES_PLACEHOLDER

    def switch(self, persona: str, convs: Conversations | None) -> tuple[Any, str, str]:
        """Show the picked persona's conversation and examples; each persona keeps its own history."""
        try:
            card = self.card(persona)
        except PersonaError as exc:
            raise gr.Error(escape(str(exc)), print_exception=False) from None
        messages: list[Any] = self.messages((convs or {}).get(persona) or [])  # Gradio's MessageDict shape
        return gr.Chatbot(value=messages, label=card.name), self.examples_html(persona), SOURCES_PLACEHOLDER

    def show_source(self, convs: Conversations | None, persona: str, evt: gr.EventData) -> str:
        """The sources panel for the clicked ``[n]`` (the page script sends "turn:n")."""
        ref = evt._data.get("ref") if isinstance(evt._data, dict) else None
        return self.source_html(convs, persona, ref if isinstance(ref, str) else "")

    def source_html(self, convs: Conversations | None, persona: str, ref: str) -> str:
        try:
            turn_s, n_s = ref.split(":", 1)
            turn_i, n = int(turn_s), int(n_s)
        except ValueError:
            return render_source_error("That citation could not be read; click it again.")
        turns = (convs or {}).get(persona) or []
        if not 0 <= turn_i < len(turns):
            return render_source_error("That answer is no longer in this conversation.")
        answer = turns[turn_i].answer
        citation = next((c for c in answer.citations if c.n == n), None)
        if citation is None:
            return render_source_error(f"Answer {turn_i + 1} has no source [{n}].")
        try:
            card = self.card(answer.persona or persona)
            passage = read_passage(card, citation)
        except PersonaError:
            card, passage = None, None
        except Exception:  # an unreadable source must not break the page: show the quote alone
            log.exception("reading the source of citation %s failed", ref)
            card, passage = None, None
        return render_source(
            citation, passage, turn=turn_i, others=answer.citations, persona_name=card.name if card else ""
        )


def build_app(
    ask_stream: AskStream | None = None,
    *,
    settings: Settings | None = None,
    backends: Sequence[str] | None = None,
) -> gr.Blocks:
    """The page, not launched. ``ask_stream`` defaults to the real agent built from ``settings``."""
    if settings is None:
        owner = getattr(ask_stream, "__self__", None)  # an Agent's bound ask_stream carries its Settings
        settings = getattr(owner, "settings", None) or Settings.from_env()
    if ask_stream is None:
        from agent.pipeline import build_agent

        ask_stream = build_agent(settings).ask_stream
    cards = list_personas(settings)
    ui = ChatController(ask_stream, settings, cards)
    choices = list(backends) if backends else available_backends(settings)
    first = cards[0]

    with gr.Blocks(title="Ask a researcher") as app:
        convs = gr.State({})  # per browser session: persona id -> list[Turn]
        gr.Markdown(
            "# Ask a researcher\nAnswers in the researcher's own words, each claim cited to the passage it quotes.",
            elem_id="title",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=260):
                persona = gr.Radio(
                    choices=[(persona_label(c.name, c.bio), c.id) for c in cards],
                    value=first.id,
                    label="Persona",
                    elem_id="persona",
                )
                examples = gr.HTML(ui.examples_html(first.id), elem_id="examples", js_on_load=None)
                backend = gr.Dropdown(
                    choices=choices,
                    value=_default_backend(settings, choices),
                    label="Backend",
                    info="extractive quotes the writings (no LLM); openai and local write with a model",
                    elem_id="backend",
                )
            with gr.Column(scale=5, min_width=360):
                chat = gr.Chatbot(
                    value=[],
                    label=first.name,
                    elem_id="chat",
                    height=560,
                    # Messages are HTML built (and escaped) by ui.render: no markdown, so a source's
                    # ![img](https://…) or <script> stays inert text; the sanitizer stays on as well.
                    render_markdown=False,
                    sanitize_html=True,
                    allow_tags=False,
                    latex_delimiters=[],
                    feedback_options=None,
                    buttons=[],
                    placeholder="Pick a persona, then ask a question or click an example.",
                )
                with gr.Row():
                    msg = gr.Textbox(
                        placeholder="Ask in English or Korean…",
                        show_label=False,
                        container=False,
                        scale=5,
                        elem_id="question",
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                with gr.Row():
                    retry = gr.Button("Retry", size="sm", elem_id="retry")
                    clear = gr.Button("Clear", size="sm", elem_id="clear")
            with gr.Column(scale=4, min_width=280):
                gr.Markdown("### Sources")
                sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="sources", js_on_load=BRIDGE_JS)

        failure = gr.State("")  # the last answer's error message, if it failed
        answer_event: dict[str, Any] = {
            "outputs": [chat, convs, msg, failure],
            "concurrency_limit": ANSWER_CONCURRENCY,
            "concurrency_id": "answer",  # submit, examples, suggestions and retry share the slots
            "show_progress": "hidden",  # the answer itself streams in, with its own cursor
        }
        hidden: dict[str, Any] = {"api_visibility": "undocumented"}  # one documented endpoint: /ask
        for event in (
            msg.submit(ui.respond, [msg, convs, persona, backend], api_name="ask", **answer_event),
            send.click(ui.respond, [msg, convs, persona, backend], **answer_event, **hidden),
            sources.ask(ui.ask_event, [convs, persona, backend], trigger_mode="once", **answer_event, **hidden),
            retry.click(ui.retry, [convs, persona, backend], **answer_event, **hidden),
            chat.retry(ui.retry, [convs, persona, backend], **answer_event, **hidden),  # the chat's own ↻ icon
        ):
            # Queued: an error raised by an unqueued follow-up never reaches the page.
            event.then(ui.report_error, [failure], None, **hidden)
        clear.click(ui.clear, [convs, persona], [chat, convs, sources], queue=False, **hidden)
        chat.clear(ui.clear, [convs, persona], [chat, convs, sources], queue=False, **hidden)  # the chat's 🗑 icon
        persona.change(ui.switch, [persona, convs], [chat, examples, sources], queue=False, **hidden)
        sources.cite(ui.show_source, [convs, persona], [sources], concurrency_limit=8, show_progress="hidden", **hidden)

    app.queue(default_concurrency_limit=ANSWER_CONCURRENCY, max_size=QUEUE_SIZE)
    app.persona_controller = ui  # type: ignore[attr-defined]  # for tests and tools
    return app


# How the page is served, whether launched alone (``launch``) or mounted beside the API (ui/serve.py).
PAGE_OPTIONS: dict[str, Any] = {
    "show_error": False,  # our handlers raise gr.Error with readable messages; nothing else leaks
    "css": CSS,
    "ssr_mode": False,
    "mcp_server": False,
    "pwa": False,
    "enable_monitoring": False,
    "footer_links": ["gradio", "settings"],
}


def launch(
    app: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, *, block: bool = True, quiet: bool = False
) -> Any:
    """Serve the page: local only unless ``host`` says otherwise, never shared, no analytics."""
    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        quiet=quiet,
        **PAGE_OPTIONS,
    )


def main(host: str = "127.0.0.1", port: int = 7860) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes, one line each
    launch(build_app(), host, port)


__all__ = ["ChatController", "Turn", "available_backends", "build_app", "launch", "main", "read_passage"]
