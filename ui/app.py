"""The chat page: build_app(ask_stream) -> gr.Blocks; main() launches it on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def build_app(ask_stream: Callable[..., Iterator[Any]] | None = None) -> Any:
    import gradio as gr

    from agent.personas import list_personas
    from agent.types import Answer

    if ask_stream is None:
        from agent.pipeline import build_agent

        ask_stream = build_agent().ask_stream
    cards = list_personas()

    def respond(message: str, history: list[dict[str, Any]], persona: str) -> Iterator[str]:
        text = ""
        for item in ask_stream(message, persona=persona, history=history):
            if isinstance(item, Answer):
                text = item.text
                if item.citations:
                    text += "\n\n" + "\n".join(f"[{c.n}] {c.title} ({c.source}): “{c.quote}”" for c in item.citations)
            else:
                text += item
            yield text

    with gr.Blocks(title="Research persona") as app:
        persona = gr.Dropdown(choices=[(f"{c.name}", c.id) for c in cards], value=cards[0].id, label="Persona")
        gr.ChatInterface(respond, additional_inputs=[persona])
    return app


def main(host: str = "127.0.0.1", port: int = 7860) -> None:
    app = build_app()
    app.queue(default_concurrency_limit=4).launch(server_name=host, server_port=port, share=False)
