"""Tests for ui/app.py with a small deterministic fake ask_stream: streaming, history, sources, errors, limits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from agent.personas import get_persona, save_user_persona
from knowledge.config import Settings
from knowledge.errors import BackendError, InputError
from knowledge.types import Answer, Citation
from tests.ui_server import serve
from ui import app as ui_app
from ui.app import ANSWER_CONCURRENCY, GENERIC_ERROR, ChatController, Turn, available_backends, build_app

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

NOTE = (
    "# First run\n\nWe trained for weeks on sixteen GPUs. In week two, the loss exploded. "
    "It was a clipping bug, and I started again.\n\n# Later\n\nSomething else entirely.\n"
)
QUOTE = "In week two, the loss exploded."


class FakeStream:
    """ask_stream stand-in: yields fixed pieces, then an Answer citing QUOTE in ana's note; records calls."""

    def __init__(self, *, fail: Exception | None = None, final: bool = True, gate: threading.Event | None = None):
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.final = final
        self.gate = gate

    def __call__(
        self, question: str, *, persona: str, backend: str | None = None, history: Any = None
    ) -> Iterator[Any]:
        self.calls.append({"question": question, "persona": persona, "backend": backend, "history": history})
        yield "Here is what I wrote: "
        if self.gate is not None and not self.gate.wait(10):
            raise RuntimeError("gave up waiting for the other request")
        if self.fail is not None:
            raise self.fail
        yield f"{QUOTE} [1]"
        if self.final:
            start = NOTE.index(QUOTE)
            c = Citation(1, "note.md", "First run", QUOTE, start, start + len(QUOTE))
            text = f"Here is what I wrote: {QUOTE} [1]"
            yield Answer(text=text, citations=[c], abstained=False, persona=persona, backend=backend or "extractive")


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """A PERSONA_HOME with one user persona, "ana", whose note is NOTE."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "note.md").write_text(NOTE, encoding="utf-8")
    (tmp_path / "secret.txt").write_text("TOP SECRET", encoding="utf-8")
    s = Settings(home=tmp_path / "home")
    save_user_persona(s, "ana", folder, ["note.md"], name="Ana")
    return s


def controller(settings: Settings, stream: FakeStream) -> ChatController:
    return ChatController(stream, settings, [get_persona("raj", settings), get_persona("ana", settings)])


def assistant(update: tuple[Any, ...]) -> str:
    return update[0][-1]["content"]


def test_respond_streams_pieces_then_the_cited_answer(settings: Settings) -> None:
    stream = FakeStream()
    updates = list(controller(settings, stream).respond("What broke?", {}, "ana", "extractive"))
    assert "streaming" in assistant(updates[0]) and "Here is" not in assistant(updates[0])  # shown at once
    assert "Here is what I wrote:" in assistant(updates[1]) and "streaming" in assistant(updates[1])
    chat, convs, box, error = updates[-1]
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert 'class="cite" value="0:1"' in chat[1]["content"] and "streaming" not in chat[1]["content"]
    assert [t.question for t in convs["ana"]] == ["What broke?"]
    assert box == "" and error == ""
    assert stream.calls[0] == {"question": "What broke?", "persona": "ana", "backend": "extractive", "history": []}


def test_history_is_plain_text_and_kept_per_persona(settings: Settings) -> None:
    stream = FakeStream()
    ui = controller(settings, stream)
    convs = list(ui.respond("What broke?", {}, "ana", "extractive"))[-1][1]
    convs = list(ui.respond("And then?", convs, "ana", "extractive"))[-1][1]
    assert stream.calls[1]["history"] == [
        {"role": "user", "content": "What broke?"},
        {"role": "assistant", "content": f"Here is what I wrote: {QUOTE} [1]"},
    ]
    convs = list(ui.respond("Hello Raj", convs, "raj", "extractive"))[-1][1]
    assert stream.calls[2]["history"] == []  # another persona, another conversation
    assert [len(convs["ana"]), len(convs["raj"])] == [2, 1]
    chat, examples, panel = ui.switch("ana", convs)
    assert isinstance(chat, gr.Chatbot) and len(chat.value) == 4 and chat.label == "Ana"
    assert "Click a citation" in panel
    raj = get_persona("raj", settings)
    assert raj.examples_en[0].replace('"', "&quot;") in ui.switch("raj", convs)[1]
    assert "No example questions" in examples  # ana's card has none


def test_source_panel_shows_the_quote_marked_in_its_entry(settings: Settings) -> None:
    ui = controller(settings, FakeStream())
    convs = list(ui.respond("What broke?", {}, "ana", "extractive"))[-1][1]
    html = ui.source_html(convs, "ana", "0:1")
    assert f"<mark>{QUOTE}</mark>" in html
    assert "sixteen GPUs." in html and "clipping bug" in html  # the surrounding text of the entry
    assert "Something else" not in html  # ...and not the next entry
    assert "First run" in html and "note.md" in html
    bad = {"x": "could not be read", "5:1": "no longer in this conversation", "0:9": "no source [9]"}
    for ref, message in bad.items():
        assert message in ui.source_html(convs, "ana", ref)


def test_source_outside_the_persona_folder_is_never_read(settings: Settings) -> None:
    ui = controller(settings, FakeStream())
    c = Citation(1, "../secret.txt", "Secret", "TOP", 0, 3)
    answer = Answer(text="x [1]", citations=[c], abstained=False, persona="ana", backend="extractive")
    html = ui.source_html({"ana": [Turn("q", answer)]}, "ana", "0:1")
    assert "TOP SECRET" not in html and "<mark>TOP</mark>" in html and "persona ingest" in html


def test_persona_error_restores_the_chat_and_reports_its_message(settings: Settings) -> None:
    ui = controller(settings, FakeStream())
    before = list(ui.respond("What broke?", {}, "ana", "extractive"))[-1]
    ui.ask_stream = FakeStream(fail=BackendError("the server at <http://x> is down: start it"))
    updates = list(ui.respond("Again?", before[1], "ana", "extractive"))
    chat, convs, box, error = updates[-1]
    assert chat == before[0] and convs == before[1]  # as it was before the failed question
    assert box == "Again?"  # back in the box, to edit and resend
    assert error == "the server at <http://x> is down: start it"
    with pytest.raises(gr.Error) as raised:
        ui.report_error(error)
    assert raised.value.message == "the server at &lt;http://x&gt; is down: start it"
    ui.report_error("")  # no error, nothing raised


def test_unexpected_error_is_logged_and_shown_generically(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    ui = controller(settings, FakeStream(fail=KeyError("internal detail")))
    with caplog.at_level(logging.ERROR, logger="ui.app"):
        error = list(ui.respond("What broke?", {}, "ana", None))[-1][3]
    assert error == GENERIC_ERROR and "internal detail" not in error
    assert any(r.exc_info and "internal detail" in str(r.exc_info[1]) for r in caplog.records)
    ui.ask_stream = FakeStream(final=False)
    assert list(ui.respond("What broke?", {}, "ana", None))[-1][3] == GENERIC_ERROR  # no final Answer


def test_input_error_from_the_agent_is_readable(settings: Settings) -> None:
    ui = controller(settings, FakeStream(fail=InputError("the question is empty: ask something")))
    assert list(ui.respond("  ", {}, "ana", None))[-1][3] == "the question is empty: ask something"


def test_ask_event_retry_and_clear(settings: Settings) -> None:
    stream = FakeStream()
    ui = controller(settings, stream)
    event = gr.EventData(None, {"question": "Example question?"})
    convs = list(ui.ask_event({}, "ana", "extractive", event))[-1][1]
    assert stream.calls[-1]["question"] == "Example question?"
    convs = list(ui.respond("Second?", convs, "ana", "extractive"))[-1][1]
    chat, convs, _, _ = list(ui.retry(convs, "ana", "local"))[-1]
    assert [t.question for t in convs["ana"]] == ["Example question?", "Second?"]
    assert stream.calls[-1]["question"] == "Second?" and stream.calls[-1]["backend"] == "local"
    assert stream.calls[-1]["history"][0]["content"] == "Example question?"  # without the replaced turn
    assert convs["ana"][-1].answer.backend == "local" and len(chat) == 4
    chat, convs, panel = ui.clear({**convs, "raj": convs["ana"]}, "ana")
    assert chat == [] and "ana" not in convs and "raj" in convs and "Click a citation" in panel
    assert list(ui.retry(convs, "ana", None))[-1][0] == []  # nothing to retry: nothing happens


def test_build_app_configures_safe_rendering_and_concurrency(settings: Settings) -> None:
    app = build_app(FakeStream(), settings=settings, backends=["extractive", "openai"])
    assert app._queue.max_size == ui_app.QUEUE_SIZE
    assert app._queue.default_concurrency_limit == ANSWER_CONCURRENCY > 1
    answering = [f for f in app.fns.values() if f.name in {"respond", "ask_event", "retry"}]
    assert len(answering) == 5  # submit, Ask button, examples/suggestions, Retry button, the chat's retry icon
    assert {(f.concurrency_limit, f.concurrency_id) for f in answering} == {(ANSWER_CONCURRENCY, "answer")}
    props = {c["props"].get("elem_id"): c["props"] for c in app.get_config_file()["components"]}
    assert props["chat"]["render_markdown"] is False and props["chat"]["sanitize_html"] is True
    assert props["chat"]["latex_delimiters"] == []
    assert [c[1] for c in props["backend"]["choices"]] == ["extractive", "openai"]
    assert [c[1] for c in props["persona"]["choices"]][:1] == ["raj"] and "ana" in str(props["persona"]["choices"])
    assert props["persona"]["choices"][0][0].startswith("Raj — A machine-learning professor")


def test_available_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    import agent.backends

    monkeypatch.setattr(agent.backends, "BACKENDS", {"extractive": agent.backends.BACKENDS["extractive"]})
    present: set[str] = set()
    monkeypatch.setattr(ui_app.importlib.util, "find_spec", lambda name, *a: object() if name in present else None)
    assert available_backends(Settings(openai_api_key="sk-test")) == ["extractive"]  # no openai backend module
    present.update({"llama_cpp", "agent.backends.openai", "agent.backends.local"})
    assert available_backends(Settings()) == ["extractive", "local"]  # openai needs a key or a base URL
    assert available_backends(Settings(openai_base_url="http://127.0.0.1:8080/v1")) == ["extractive", "openai", "local"]
    present.discard("llama_cpp")
    assert available_backends(Settings(openai_api_key="sk-test")) == ["extractive", "openai"]


def test_answers_stream_over_http_and_run_side_by_side(settings: Settings) -> None:
    from gradio_client import Client

    # The first request holds its slot until the second one has started: with one slot for
    # everyone the second could never start, and the first would give up waiting (no answer).
    second_started = threading.Event()

    class Gated(FakeStream):
        def __call__(self, question: str, **kw: Any) -> Iterator[Any]:
            if question == "second":
                second_started.set()
            return super().__call__(question, **kw)

    app = build_app(Gated(gate=second_started), settings=settings)
    with serve(app) as url:
        client = Client(url, verbose=False)
        first = client.submit("first", "ana", "extractive", api_name="/ask")
        second = client.submit("second", "ana", "extractive", api_name="/ask")
        for job in (first, second):
            job.result(timeout=30)
        results = [job.outputs() for job in (first, second)]
    for outputs in results:
        last = [chat[-1]["content"][0]["text"] if chat else "" for chat, _box in outputs]
        assert "streaming" in last[0]  # the page gets the answer piece by piece...
        assert any("Here is what I wrote" in t and "streaming" in t for t in last)
        assert 'class="cite"' in last[-1]  # ...then the cited answer (a failed one ends with an empty chat)


class PiecesStream:
    """ask_stream stand-in: ``pieces`` words, ``gap`` seconds apart, then an Answer of them all."""

    def __init__(self, pieces: int, gap: float) -> None:
        self.pieces, self.gap = pieces, gap

    def __call__(self, question: str, *, persona: str, backend: str | None = None, history: Any = None) -> Any:
        import time

        words = [f"w{i} " for i in range(self.pieces)]
        for w in words:
            yield w
            time.sleep(self.gap)
        yield Answer(text="".join(words), citations=[], abstained=False, persona=persona, backend="extractive")


def test_pieces_ready_together_go_out_as_one_update(settings: Settings) -> None:
    ui = ChatController(PiecesStream(12, 0.0), settings, [get_persona("ana", settings)])
    updates = list(ui.respond("What broke?", {}, "ana", "extractive"))
    partial = [u for u in updates[1:-1] if "streaming" in assistant(u)]
    assert len(partial) < 12  # coalesced: each update re-sends the whole chat
    assert "w0" in assistant(updates[1])  # the first piece still shows at once
    assert "w11" in assistant(updates[-1]) and "streaming" not in assistant(updates[-1])  # nothing lost


def test_pieces_apart_in_time_each_show(settings: Settings) -> None:
    ui = ChatController(PiecesStream(3, ui_app.STREAM_INTERVAL * 1.5), settings, [get_persona("ana", settings)])
    updates = list(ui.respond("What broke?", {}, "ana", "extractive"))
    partial = [assistant(u) for u in updates[1:-1]]
    assert len(partial) == 3 and "w2" in partial[-1]
