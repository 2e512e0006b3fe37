"""The research-persona agent: ``from agent import ask``.

Importing this package loads no model, no store and no UI library: the names below are
resolved on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Answer",
    "Citation",
    "ChatPersona",
    "PersonaError",
    "PersonaRetriever",
    "ask",
    "ask_stream",
    "list_personas",
]

if TYPE_CHECKING:  # pragma: no cover
    from agent.interop import ChatPersona, PersonaRetriever
    from agent.personas import list_personas
    from agent.pipeline import ask, ask_stream
    from knowledge.errors import PersonaError
    from knowledge.types import Answer, Citation

_LAZY = {
    "ask": "agent.pipeline",
    "ask_stream": "agent.pipeline",
    "list_personas": "agent.personas",
    "Answer": "knowledge.types",
    "Citation": "knowledge.types",
    "PersonaError": "knowledge.errors",
    # LangChain-native classes: importing them imports LangChain, so only on first use.
    "PersonaRetriever": "agent.interop",
    "ChatPersona": "agent.interop",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agent' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
