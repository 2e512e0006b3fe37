"""Test fixture: a real `chroma run` server on a free 127.0.0.1 port, stopped after the module.

Import it into a test module: ``from tests.chroma_server import chroma_server``. The process
handling (free port, heartbeat polling, terminate) lives in benchmarks/chroma_server.py, which the
benchmark uses for the same workload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.chroma_server import ChromaServer

__all__ = ["ChromaServer", "chroma_server"]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A running server with an empty data directory; ``.url`` is what PERSONA_CHROMA_URL takes."""
    path: Path = tmp_path_factory.mktemp("chroma-server")
    server = ChromaServer(path / "data", log=path / "chroma.log").start(timeout=120)
    try:
        yield server
    finally:
        server.stop()
