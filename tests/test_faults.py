"""Faults: an ingest killed with SIGKILL and restarted, questions during an ingest, servers that are down."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evals.attacks import Sandbox
from knowledge.chunking import chunk_entries
from knowledge.config import REPO_ROOT, Settings
from knowledge.errors import BackendError, StoreError
from knowledge.ingest import discover
from knowledge.loaders import load_document

CHUNK_TOKENS = 32  # small chunks: many embedding batches from a small folder
BASE_FILES, NEW_FILES = 6, 24
BATCH = 64  # knowledge.ingest.EMBED_BATCH: what one landed batch holds
PROGRESS = re.compile(r"(\d+)/(\d+)")
TOPICS = ["tokenizer", "optimizer", "checkpoint", "dataloader", "scheduler", "evaluation", "attention", "sampler"]
QUESTION = "What happened to the learning rate warmup in the first run?"


def diary(i: int) -> str:
    """A generated diary file: two entries of four sentences, every sentence distinct."""
    entries = []
    for j in range(2):
        n, topic = i * 2 + j, TOPICS[(i + j) % len(TOPICS)]
        entries.append(
            f"## [Day_{n}_{topic}]\n"
            f"On day {n} I rewrote the {topic} code for run {n * 7} and measured it twice. "
            f"The {topic} change cut step time by {n % 9 + 1} percent on the small cluster. "
            f"Loss after {1000 + n * 13} steps was {2 + (n % 50) / 100:.2f}, a little better than before. "
            f"Tomorrow I will check whether the {topic} result holds with {n % 4 + 2} seeds.\n"
        )
    return "\n".join(entries)


WARMUP = (
    "## [The_Warmup_Bug]\nIn the first run the learning rate warmup was skipped by a config typo. "
    "The loss spiked at step 40 and never recovered. Fixing the warmup made the second run stable.\n"
)


def persona_cli(home: Path, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PERSONA_HOME": str(home), "PERSONA_CHUNK_TOKENS": str(CHUNK_TOKENS)}
    return subprocess.Popen([sys.executable, "-m", "ui", *args], env=env, cwd=REPO_ROOT, **popen)


def source_chunks(folder: Path) -> list[Any]:
    """Every chunk the folder's files make: what a complete index must hold, no more, no less."""
    out = []
    for path in discover(folder):
        doc = load_document(path, path.relative_to(folder).as_posix())
        out.extend(chunk_entries(doc.text, doc.entries, "lab", CHUNK_TOKENS))
    return out


def assert_consistent(store: Any, folder: Path) -> None:
    expected = source_chunks(folder)
    manifest = store.manifest("lab")
    assert manifest.ids == {c.id for c in expected}, "nothing missing, nothing extra"
    assert store.count("lab") == len(expected) == len(manifest.ids)
    stored = store.get_chunks("lab", sorted(store.existing_ids("lab")))
    spans = Counter((c.source, c.start, c.end) for c in stored)
    assert max(spans.values()) == 1, "no passage is stored twice"
    texts = {p.relative_to(folder).as_posix(): p.read_text("utf-8") for p in discover(folder)}
    assert all(texts[c.source][c.start : c.end] == c.text for c in stored)


def assert_answer_from(answer: Any, ids: set[str], folder: Path) -> None:
    assert not answer.abstained and answer.citations, answer.text
    for c in answer.citations:
        assert c.chunk_id in ids, "cited from the committed index, not from chunks still being written"
        assert (folder / c.source).read_text("utf-8")[c.start : c.end] == c.quote


class Progress:
    """Reads an ingest's tqdm bar from a pseudo-terminal (the bar only shows on a terminal)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = ""
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            self.text += data.decode("utf-8", "replace")
        self.done.set()

    def embedded(self) -> tuple[int, int] | None:
        found = PROGRESS.findall(self.text)
        return (int(found[-1][0]), int(found[-1][1])) if found else None

    def wait(
        self, until: Callable[[tuple[int, int]], bool], proc: subprocess.Popen[bytes], timeout: float
    ) -> tuple[int, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.embedded()
            if now is not None and until(now):
                return now
            if proc.poll() is not None:
                raise AssertionError(f"ingest ended ({proc.returncode}) before it was killed: {self.text[-500:]}")
            time.sleep(0.05)
        raise AssertionError(f"no progress after {timeout} s: {self.text[-500:]}")


@pytest.fixture()
def lab(agent: Any) -> Iterator[tuple[Any, Path]]:
    """A throwaway home (sharing the session's embedder) with a committed index of BASE_FILES files."""
    from agent.personas import save_user_persona
    from knowledge.ingest import ingest

    sandbox = Sandbox(agent)
    folder = sandbox.dir / "lab"
    folder.mkdir()
    (folder / "warmup.txt").write_text(WARMUP, encoding="utf-8")
    for i in range(BASE_FILES):
        (folder / f"day-{i:02d}.txt").write_text(diary(i), encoding="utf-8")
    ingest(sandbox.agent.store, "lab", discover(folder), root=folder, chunk_tokens=CHUNK_TOKENS)
    save_user_persona(sandbox.agent.settings, "lab", folder, [p.name for p in discover(folder)])
    yield sandbox.agent, folder
    sandbox.close()


@pytest.mark.slow
def test_sigkill_mid_ingest_then_restart_leaves_a_consistent_index(lab: tuple[Any, Path]) -> None:
    """A real `persona ingest` is killed with SIGKILL after its first embedding batch has landed;
    meanwhile this process keeps answering from the committed index; a restart completes it."""
    agent, folder = lab
    committed = agent.store.manifest("lab").ids
    home = agent.settings.home
    assert_answer_from(agent.ask(QUESTION, persona="lab"), committed, folder)
    for i in range(BASE_FILES, BASE_FILES + NEW_FILES):
        (folder / f"day-{i:02d}.txt").write_text(diary(i), encoding="utf-8")
    new_chunks = len(source_chunks(folder)) - len(committed)
    assert new_chunks > 2 * BATCH, "enough work for a kill between batches"

    master, slave = pty.openpty()
    # A terminal of zero columns gets an empty bar from tqdm: give it a real width.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    proc = persona_cli(
        home, "ingest", str(folder), "--persona", "lab", stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
    )
    os.close(slave)
    progress = Progress(master)
    try:
        progress.wait(lambda p: p[1] == new_chunks, proc, timeout=240)  # chunked, embedding under way
        during = agent.ask(QUESTION, persona="lab")  # another process, while the ingest writes
        landed, _ = progress.wait(lambda p: p[0] >= BATCH, proc, timeout=240)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert_answer_from(during, committed, folder)
    assert landed < new_chunks, "killed part-way"

    # After the kill: the committed index is exactly the old one, and still answers.
    assert agent.store.manifest("lab").ids == committed
    assert_answer_from(agent.ask(QUESTION, persona="lab"), committed, folder)

    # The restart finishes the job and embeds nothing that had already landed.
    rerun = persona_cli(
        home, "ingest", str(folder), "--persona", "lab", "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["embedded"] <= new_chunks - landed, "chunks that landed before the kill are reused"
    assert report["chunks"] == len(source_chunks(folder))
    assert_consistent(agent.store, folder)
    assert_answer_from(agent.ask(QUESTION, persona="lab"), agent.store.manifest("lab").ids, folder)


def test_llm_server_down_is_a_clear_backend_error(agent: Any, agent_factory: Callable[..., Any]) -> None:
    """Nothing listens at OPENAI_BASE_URL: one readable error, not a traceback or an empty answer."""
    from tests.llm_servers import free_port

    llm = agent_factory(openai_base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0, timeout=5.0)
    # The session's loaded model and sentence vectors: only the backend differs.
    llm.__dict__.update(embedder=agent.embedder, sentences=agent.sentences)
    with pytest.raises(BackendError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1 .*is the server running"):
        llm.ask("What went wrong in your first big training run?", backend="openai")


@pytest.mark.slow
def test_chroma_server_restarted_under_a_running_agent_recovers(tmp_path: Path, agent: Any) -> None:
    """The server goes down (StoreError, covered in test_chroma_server.py) and comes back on the same
    port and data: the same agent answers again without a restart of the app."""
    from agent.personas import save_user_persona
    from agent.pipeline import Agent
    from benchmarks.chroma_server import ChromaServer
    from knowledge.ingest import ingest

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "warmup.txt").write_text(WARMUP, encoding="utf-8")
    server = ChromaServer(tmp_path / "data").start(timeout=120)
    try:
        remote = Agent(Settings.from_env().replace(home=tmp_path / "home", chroma_url=server.url))
        remote.__dict__["embedder"] = agent.embedder  # the session's loaded model, not a second copy
        ingest(remote.store, "lab", discover(notes), root=notes, chunk_tokens=CHUNK_TOKENS)
        save_user_persona(remote.settings, "lab", notes, ["warmup.txt"])
        first = remote.ask(QUESTION, persona="lab")
        server.stop()
        with pytest.raises(StoreError):
            remote.ask(QUESTION, persona="lab")
        server = ChromaServer(tmp_path / "data", port=server.port).start(timeout=120)
        again = remote.ask(QUESTION, persona="lab")
        assert [c.quote for c in again.citations] == [c.quote for c in first.citations]
    finally:
        server.stop()
