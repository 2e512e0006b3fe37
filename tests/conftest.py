"""Shared fixtures: one real on-disk index of the bundled writings for the whole session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from knowledge.config import BUNDLED_SOURCES, Settings

# Tests must not reach a real OpenAI account, nor depend on the developer's environment.
for _name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PERSONA_BACKEND", "PERSONA_CHROMA_URL", "PERSONA_EMBEDDER"):
    os.environ.pop(_name, None)
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def indexed_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A PERSONA_HOME with the four bundled personas ingested; also exported as PERSONA_HOME."""
    from agent.personas import list_personas
    from agent.pipeline import build_agent
    from knowledge.ingest import ingest

    home = tmp_path_factory.mktemp("persona-home")
    settings = Settings.from_env().replace(home=home)
    agent = build_agent(settings)
    for card in list_personas(settings):
        ingest(agent.store, card.id, card.source_paths(), root=card.sources_dir, chunk_tokens=settings.chunk_tokens)
    previous = os.environ.get("PERSONA_HOME")
    os.environ["PERSONA_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("PERSONA_HOME", None)
    else:
        os.environ["PERSONA_HOME"] = previous


@pytest.fixture(scope="session")
def agent_factory(indexed_home: Path) -> Callable[..., Any]:
    """Agents over the shared index; keyword arguments override Settings fields."""
    from agent.pipeline import build_agent

    def make(**overrides: Any) -> Any:
        return build_agent(Settings.from_env().replace(home=indexed_home, **overrides))

    return make


@pytest.fixture(scope="session")
def agent(agent_factory: Callable[..., Any]) -> Any:
    return agent_factory()


@pytest.fixture(scope="session")
def source_text() -> Callable[[str], str]:
    cache: dict[str, str] = {}

    def read(name: str) -> str:
        if name not in cache:
            cache[name] = (BUNDLED_SOURCES / name).read_text("utf-8")
        return cache[name]

    return read
