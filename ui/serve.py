"""Serving: the chat page at / and the OpenAI-compatible API at /v1, one process, one port (uvicorn)."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from fastapi import FastAPI  # noqa: E402

from knowledge.config import Settings  # noqa: E402
from ui.api import build_api, check_exposure  # noqa: E402


def build_server(agent: Any, *, api_only: bool = False) -> FastAPI:
    """One ASGI app: ``/v1`` (ui.api, keyed by ``agent.settings.api_key``) and, unless ``api_only``, the page at ``/``.

    Gradio runs on FastAPI: the page's Blocks are mounted with ``gr.mount_gradio_app`` next to the
    API, so both share the port and the agent (one embedder, one store). The page keeps its own
    queue and answer slots; the API has its own (ui.api.API_CONCURRENCY).
    """
    root = FastAPI(title="persona-agent", docs_url=None, redoc_url=None, openapi_url=None)
    root.mount("/v1", build_api(agent, api_key=agent.settings.api_key))
    if api_only:

        @root.get("/")
        def index() -> dict[str, str]:
            return {"object": "persona-agent", "api": "/v1", "models": "/v1/models"}

        return root
    import gradio as gr

    from ui.app import PAGE_OPTIONS, build_app

    page = build_app(agent.ask_stream, settings=agent.settings)
    return gr.mount_gradio_app(
        root,
        page,
        path="",
        **PAGE_OPTIONS,
    )


def warm(agent: Any) -> dict[str, dict[str, float]]:
    """Load the embedder and the bridge's dictionary (agent.bridge) and warm every indexed persona's
    retrieval (agent.retrieve.HybridRetriever.warm), so the first question after a start (after an
    ingest: `persona ingest`, then `persona serve`) is answered as fast as the ones after it.
    Returns each persona's warm-up steps in ms.

    ``main`` runs it in a background thread: the server answers from the start, and a question asked
    before the warm-up is done is answered as without it. A persona with no index yet is skipped; any
    other failure is logged, never raised (the first question will meet and report it).
    """
    from agent.personas import list_personas
    from knowledge.errors import IndexMissingError

    log = logging.getLogger(__name__)
    done: dict[str, dict[str, float]] = {}
    try:
        agent.embedder.embed_query("warm-up")
        from agent.bridge import dictionary

        dictionary()  # the bridge's Korean-English dictionary: 1-2 s to read, once
        for card in list_personas(agent.settings):
            try:
                done[card.id] = agent.retriever.warm(card.id)
            except IndexMissingError:
                continue
    except Exception as exc:  # a warm-up is an optimisation: it must never take the server down
        log.warning(
            "warm-up stopped early (%s: %s); the first question will load what it needs", type(exc).__name__, exc
        )
    log.info("warm-up done: %s", done)
    return done


def main(host: str = "127.0.0.1", port: int = 7860, *, api_only: bool = False) -> None:
    """`persona serve`: refuse a non-loopback host without PERSONA_API_KEY (ConfigError), then serve."""
    import uvicorn

    from agent.pipeline import build_agent

    settings = Settings.from_env()
    check_exposure(host, settings.api_key)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    agent = build_agent(settings)
    app = build_server(agent, api_only=api_only)
    threading.Thread(target=warm, args=(agent,), name="persona-warm-up", daemon=True).start()
    where = f"http://{host}:{port}"
    print(f"persona: the API is at {where}/v1" + ("" if api_only else f", the chat page at {where}/"), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


__all__ = ["build_server", "main", "warm"]
