"""Answer backends: one protocol, a registry by name (extractive, openai, local, auto)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from knowledge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from agent.personas import PersonaCard
    from knowledge.config import Settings
    from knowledge.types import Answer, Retrieved


@dataclass(frozen=True)
class AnswerRequest:
    """Everything a backend needs to answer one turn."""

    question: str  # as the user asked it
    standalone: str  # the question rewritten to stand alone (follow-ups resolved)
    persona: PersonaCard
    passages: list[Retrieved]
    history: list[dict[str, str]] = field(default_factory=list)
    lang: str = "en"  # language of the question: the answer's language
    context: dict[str, Any] = field(default_factory=dict)  # signals computed by ask(), e.g. relevance


class AnswerBackend(Protocol):
    """Streams an answer: text pieces as they are produced, then exactly one final ``Answer``."""

    name: str

    def stream(self, request: AnswerRequest) -> Iterator[str | Answer]: ...


def _extractive(settings: Settings, services: Any) -> AnswerBackend:
    from agent.backends.extractive import ExtractiveBackend

    return ExtractiveBackend(services)


BACKENDS: dict[str, Callable[[Settings, Any], AnswerBackend]] = {
    "extractive": _extractive,
}


def register(name: str, factory: Callable[[Settings, Any], AnswerBackend]) -> None:
    BACKENDS[name] = factory


def resolve_name(name: str | None, settings: Settings) -> str:
    """``auto`` (the default): openai when a key or base URL is configured, else extractive."""
    _load_optional()
    name = (name or settings.backend or "auto").strip().lower()
    if name == "auto":
        return (
            "openai" if (settings.openai_api_key or settings.openai_base_url) and "openai" in BACKENDS else "extractive"
        )
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}: choose one of auto, {', '.join(sorted(BACKENDS))}")
    return name


def get_backend(name: str, settings: Settings, services: Any) -> AnswerBackend:
    _load_optional()
    factory = BACKENDS.get(name)
    if factory is None:
        raise ConfigError(f"unknown backend {name!r}: choose one of auto, {', '.join(sorted(BACKENDS))}")
    return factory(settings, services)


def _load_optional() -> None:
    """Register the LLM backends if their modules exist; they import their heavy libraries lazily."""
    import importlib

    for module in ("agent.backends.openai", "agent.backends.local"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
