"""Benchmark step, store as a server: start `chroma run` on a free port, and the same workload through it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.backends.model_server import free_port


def chroma_executable() -> str:
    """The `chroma` script of this interpreter's environment (the chromadb package installs it)."""
    local = Path(sys.executable).parent / "chroma"
    found = str(local) if local.exists() else shutil.which("chroma")
    if not found:
        raise RuntimeError("the `chroma` command is not installed: `pip install chromadb` provides it")
    return found


class ChromaServer:
    """A `chroma run --path DIR --host 127.0.0.1 --port N` process, ready once its heartbeat answers."""

    def __init__(self, path: Path, port: int | None = None, log: Path | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or path.parent / f"chroma-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ChromaServer:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:  # the child keeps its own handle to the file
            self.proc = subprocess.Popen(
                [chroma_executable(), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.proc.returncode}; see {self.log}")
            if self.alive():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma run did not answer its heartbeat within {timeout:.0f} s; see {self.log}")

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory, from /proc (Linux)."""
        if self.proc is None:
            return float("nan")
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
        return float("nan")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> ChromaServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(path).start()
    try:
        yield server
    finally:
        server.stop()


def server_workload(workdir: Path, questions: int = 20, k: int = 5) -> dict[str, Any]:
    """Ingest the bundled personas through a Chroma server, re-ingest, ask, then stop the server and
    check that the next call fails with StoreError. The figures sit beside the embedded store's."""
    from agent.personas import list_personas
    from agent.pipeline import Agent
    from benchmarks.gold import load_gold, sample
    from benchmarks.stats import percentile
    from knowledge.config import Settings
    from knowledge.errors import StoreError
    from knowledge.ingest import ingest

    base = Settings.from_env().replace(home=workdir / "server-home")
    cards = list_personas(base)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    with running(workdir / "server-data") as server:
        out["server_start_s"] = round(time.perf_counter() - t0, 2)
        agent = Agent(base.replace(chroma_url=server.url))
        agent.embedder.embed_query("warm-up")
        t0 = time.perf_counter()
        chunks = sum(
            ingest(agent.store, c.id, c.source_paths(), root=c.sources_dir, chunk_tokens=base.chunk_tokens).embedded
            for c in cards
        )
        out["ingest_s"] = round(time.perf_counter() - t0, 3)
        out["chunks"] = chunks
        t0 = time.perf_counter()
        out["reingest_embedded"] = sum(
            ingest(agent.store, c.id, c.source_paths(), root=c.sources_dir, chunk_tokens=base.chunk_tokens).embedded
            for c in cards
        )
        out["reingest_s"] = round(time.perf_counter() - t0, 3)
        asked = sample([q for q in load_gold() if q.scored], questions)
        for c in cards:
            agent.retriever.retrieve("warm-up", k, c.id)
        latencies, bad, total = [], 0, 0
        sources = {c.id: c.sources_dir for c in cards}
        for q in asked:
            t0 = time.perf_counter()
            agent.retriever.retrieve(q.question, k, q.persona)
            latencies.append((time.perf_counter() - t0) * 1000)
            answer = agent.ask(q.question, persona=q.persona, backend="extractive", history=list(q.history))
            for cit in answer.citations:
                total += 1
                bad += (sources[q.persona] / cit.source).read_text("utf-8")[cit.start : cit.end] != cit.quote
        out["query_p50_ms"] = round(percentile(latencies, 50), 2)
        out["query_p95_ms"] = round(percentile(latencies, 95), 2)
        out["citations_checked"], out["citations_bad"] = total, bad
        out["server_peak_rss_mb"] = server.peak_rss_mb()
    try:
        agent.retriever.index(cards[0].id)  # reads the manifest from the stopped server
        out["down_error"] = "no error"
    except StoreError as exc:
        out["down_error"] = f"StoreError: {exc}"
    except Exception as exc:  # reported, not raised: the table shows what a user would see
        out["down_error"] = f"{type(exc).__name__} (not a StoreError): {exc}"
    return out
