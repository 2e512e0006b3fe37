"""Helpers for the tests of notes as people save them: a fresh on-disk index per test, the real ingest and ask()."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from agent.personas import save_user_persona
from knowledge.ingest import IngestReport, discover, ingest


def fresh_agent(shared: Any, home: Path) -> Any:
    """A real Agent with its own PERSONA_HOME (a new Chroma store on disk), sharing the session's
    loaded embedder so the model is not loaded again for every test."""
    from agent.pipeline import Agent

    agent = Agent(shared.settings.replace(home=home, chroma_url=None))
    agent.__dict__["embedder"] = shared.embedder
    agent.__dict__["sentences"] = shared.sentences
    return agent


def ingest_folder(agent: Any, folder: Path, persona: str = "me") -> IngestReport:
    """What `persona ingest FOLDER --persona NAME` does: ingest every note, then write the persona's card."""
    files = discover(folder)
    report = ingest(agent.store, persona, files, root=folder, chunk_tokens=agent.settings.chunk_tokens)
    save_user_persona(agent.settings, persona, folder, [p.relative_to(folder).as_posix() for p in files])
    return report


def assert_citations_resolve(answer: Any, folder: Path, encodings: dict[str, str]) -> None:
    """The README's promise: open(path, encoding=<reported>).read()[start:end] == quote, for every citation."""
    for c in answer.citations:
        with open(folder / c.source, encoding=encodings.get(c.source, "utf-8")) as f:
            assert f.read()[c.start : c.end] == c.quote, c


def clean(text: str) -> str:
    """What knowledge.decode.clean promises, written out independently: NFC, one newline form,
    U+200B-U+200D, U+2060, U+FEFF and U+00AD removed."""
    text = re.sub("[\u200b\u200c\u200d\u2060\ufeff\u00ad]", "", text.replace("\r\n", "\n").replace("\r", "\n"))
    return unicodedata.normalize("NFC", text)


def encodings(report: IngestReport) -> dict[str, str]:
    """The encoding reported for each file read (``encodings`` in `persona ingest --json`)."""
    return dict(getattr(report, "encodings", {}))
