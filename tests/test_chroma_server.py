"""Store as a server: ingest, ask and re-ingest through a real `chroma run`, and a clear error when it is down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.chroma_server import ChromaServer, free_port
from knowledge.config import Settings
from knowledge.errors import StoreError
from tests.chroma_server import chroma_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("raj", "What went wrong in your first big training run back in 2019?"),
    ("raj", "첫 대규모 모델 학습에서 무엇이 잘못됐나요?"),
    ("intern", "What did the internship teach you about reproducibility?"),
    ("diarist", "Why were RNNs hard to parallelize?"),
    ("newcomer", "Where did your curiosity about neural networks start?"),
]


@pytest.fixture(scope="module")
def server_agent(chroma_server: ChromaServer, tmp_path_factory: pytest.TempPathFactory) -> Any:  # noqa: F811
    """An Agent whose store is the server."""
    from agent.pipeline import Agent

    settings = Settings.from_env().replace(home=tmp_path_factory.mktemp("home"), chroma_url=chroma_server.url)
    return Agent(settings)


@pytest.fixture(scope="module")
def first_ingest(server_agent: Any) -> list[Any]:
    """The four bundled personas ingested through the server, once for the module."""
    from knowledge.ingest import ingest

    chunk_tokens = server_agent.settings.chunk_tokens
    return [
        ingest(server_agent.store, c.id, c.source_paths(), root=c.sources_dir, chunk_tokens=chunk_tokens)
        for c in _cards(server_agent)
    ]


def test_ingest_through_the_server_embeds_every_chunk(server_agent: Any, first_ingest: list[Any]) -> None:
    reports = first_ingest
    assert {r.persona for r in reports} >= {"raj", "intern", "diarist", "newcomer"}
    for r in reports:
        assert r.chunks > 0 and r.embedded == r.chunks and not r.skipped
        # The chunks live on the server, named by the committed manifest.
        assert server_agent.store.count(r.persona) == r.chunks
        assert len(server_agent.store.manifest(r.persona).ids) == r.chunks


def test_data_is_on_the_server_not_under_persona_home(
    server_agent: Any,
    first_ingest: list[Any],
    chroma_server: ChromaServer,  # noqa: F811
) -> None:
    assert not (server_agent.settings.index_dir / "chroma").exists()
    assert any(chroma_server.path.iterdir())


@pytest.mark.parametrize(("persona", "question"), QUESTIONS, ids=[q for _, q in QUESTIONS])
def test_answers_through_the_server_cite_the_source_text(
    server_agent: Any, first_ingest: list[Any], persona: str, question: str
) -> None:
    answer = server_agent.ask(question, persona=persona, backend="extractive")
    assert not answer.abstained and answer.citations
    card_dir = {c.id: c.sources_dir for c in _cards(server_agent)}[persona]
    for c in answer.citations:
        assert (card_dir / c.source).read_text("utf-8")[c.start : c.end] == c.quote


def test_reingest_through_the_server_embeds_nothing(server_agent: Any, first_ingest: list[Any]) -> None:
    from knowledge.ingest import ingest

    for card in _cards(server_agent):
        chunk_tokens = server_agent.settings.chunk_tokens
        report = ingest(
            server_agent.store, card.id, card.source_paths(), root=card.sources_dir, chunk_tokens=chunk_tokens
        )
        assert report.embedded == 0 and report.added == 0 and report.removed == 0
        assert report.unchanged == report.chunks > 0


def test_server_going_down_is_a_store_error(tmp_path: Path) -> None:
    """A server that stops under a running agent: the next question fails with StoreError, not a traceback."""
    from agent.pipeline import Agent

    server = ChromaServer(tmp_path / "data").start(timeout=120)
    try:
        agent = Agent(Settings.from_env().replace(home=tmp_path / "home", chroma_url=server.url))
        agent.store.count("raj")  # connected and working
    finally:
        server.stop()
    with pytest.raises(StoreError, match="Chroma server"):
        agent.ask("What went wrong in your first big training run?", persona="raj", backend="extractive")


def test_no_server_at_the_url_is_a_store_error(tmp_path: Path) -> None:
    from knowledge.store import make_client

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreError, match="chroma run"):
        make_client(Settings.from_env().replace(home=tmp_path, chroma_url=url))


def test_cli_with_the_server_down_prints_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PERSONA_HOME": str(tmp_path), "PERSONA_CHROMA_URL": f"http://127.0.0.1:{free_port()}"}
    proc = subprocess.run(
        [sys.executable, "-m", "ui", "ask", "--backend", "extractive", "What went wrong?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("persona: error: cannot reach the Chroma server")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _cards(agent: Any) -> list[Any]:
    from agent.personas import list_personas

    return list_personas(agent.settings)


def test_lexical_index_of_a_server_store_is_cached_locally_per_server(tmp_path: Path) -> None:
    from knowledge.store import lexical_home

    base = Settings().replace(home=tmp_path)
    one = lexical_home(base.replace(chroma_url="http://127.0.0.1:8000"))
    other = lexical_home(base.replace(chroma_url="http://10.0.0.2:8000"))
    assert one != other and one.parent == other.parent == tmp_path / "cache" / "lexical"
    assert lexical_home(base) == base.index_dir / "lexical", "embedded: beside the chroma/ directory"
