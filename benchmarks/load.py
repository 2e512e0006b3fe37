"""Benchmark step, load: concurrent chat sessions against the running page, each a distinct two-turn conversation.

Each session is its own gradio_client.Client (its own browser session and gr.State). Correctness is
checked per session (both turns answered, only its own questions in its chat); latency is the wall
time of each answer as a client sees it, queueing included. ``python -m benchmarks.load`` writes
benchmarks/load_results.json and prints a markdown snippet for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent.backends.model_server import free_port

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

RESULTS = Path(__file__).with_name("load_results.json")
FOLLOW_UP = {"en": "Why was that?", "ko": "왜 그랬나요?"}
_TAG = re.compile(r"<[^>]+>")
_CITE_TITLE = re.compile(r'<button type="button" class="cite" value="(\d+):\d+" title="([^"]*)"')


@dataclass(frozen=True)
class Conversation:
    persona: str
    lang: str
    questions: tuple[str, ...]


@dataclass
class Session:
    conversation: Conversation
    latencies: list[float] = field(default_factory=list)  # seconds per answer
    asked: list[str] = field(default_factory=list)  # the user messages of the returned chat
    answered: int = 0  # turns that ended with a finished answer
    cited: list[set[str]] = field(default_factory=list)  # per turn: the cited entries ("title — source")
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.answered == len(self.conversation.questions) and self.own_questions_only

    @property
    def own_questions_only(self) -> bool:
        return self.asked == list(self.conversation.questions)

    @property
    def follow_up_on_topic(self) -> bool:
        """The second answer cites an entry the first one cited: the follow-up stayed in this conversation."""
        return len(self.cited) >= 2 and bool(self.cited[0] & self.cited[1])


def conversations(n: int, settings: Any = None) -> list[Conversation]:
    """``n`` distinct two-turn conversations: each persona's example questions, then a follow-up."""
    from agent.personas import list_personas
    from knowledge.text import detect_lang

    pool = []
    for card in list_personas(settings):
        if card.bundled:
            for q in (*card.examples_en, *card.examples_ko):
                lang = detect_lang(q)
                pool.append(Conversation(card.id, lang, (q, FOLLOW_UP[lang])))
    if n > len(pool):
        raise ValueError(f"only {len(pool)} distinct conversations available, {n} asked for")
    # Interleave personas so concurrent sessions talk to different ones.
    by_persona: dict[str, list[Conversation]] = {}
    for c in pool:
        by_persona.setdefault(c.persona, []).append(c)
    mixed = [
        c for rank in range(max(map(len, by_persona.values()))) for v in by_persona.values() for c in v[rank : rank + 1]
    ]
    return mixed[:n]


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # Gradio 6 messages: a list of {"type": "text", "text": ...}
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every client: httpx otherwise builds one, loading the CA bundle
    (~30 ms of CPU), for each request gradio_client makes, and the 20 clients' threads then take
    more CPU than the page they measure (py-spy, issue 14)."""
    return ssl.create_default_context()


def run_session(url: str, conv: Conversation, backend: str, start: threading.Barrier | None = None) -> Session:
    from gradio_client import Client

    session = Session(conv)
    try:
        # gradio_client hands ssl_verify to httpx's verify=, which takes a (still verifying) context.
        client = Client(url, verbose=False, ssl_verify=_tls())  # type: ignore[arg-type]
        if start is not None:
            start.wait(timeout=120)  # every session asks at the same moment
        chat: list[dict[str, Any]] = []
        for turn, question in enumerate(conv.questions):
            t0 = time.perf_counter()
            chat, box = client.predict(question, conv.persona, backend, api_name="/ask")
            session.latencies.append(time.perf_counter() - t0)
            last = _text(chat[-1]) if chat else ""
            if box == "" and "answer-meta" in last and "streaming" not in last:
                session.answered += 1
            session.cited.append({t for n, t in _CITE_TITLE.findall(last) if int(n) == turn})
        session.asked = [html.unescape(_TAG.sub("", _text(m))).strip() for m in chat if m.get("role") == "user"]
    except Exception as exc:  # a failed session is a result to report, not a crash of the benchmark
        session.error = f"{type(exc).__name__}: {exc}"
    return session


def run_sessions(url: str, convs: Sequence[Conversation], backend: str = "extractive") -> list[Session]:
    """One thread and one client per conversation, all started together."""
    results: list[Session | None] = [None] * len(convs)
    barrier = threading.Barrier(len(convs))

    def work(i: int) -> None:
        results[i] = run_session(url, convs[i], backend, barrier)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(convs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p95 is a latency that happened)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarise(sessions: Sequence[Session], wall: float, backend: str) -> dict[str, Any]:
    first = [s.latencies[0] for s in sessions if s.latencies]
    second = [s.latencies[1] for s in sessions if len(s.latencies) > 1]
    every = first + second
    return {
        "backend": backend,
        "sessions": len(sessions),
        "answers": sum(s.answered for s in sessions),
        "sessions_ok": sum(s.ok for s in sessions),
        "cross_session_leaks": sum(not s.own_questions_only for s in sessions if not s.error),
        "follow_ups_on_topic": sum(s.follow_up_on_topic for s in sessions),
        "errors": [s.error for s in sessions if s.error],
        "wall_s": round(wall, 2),
        "answers_per_s": round(len(every) / wall, 2) if wall else None,
        "p50_s": round(percentile(every, 50), 3),
        "p95_s": round(percentile(every, 95), 3),
        "first_turn_p50_s": round(percentile(first, 50), 3),
        "follow_up_p50_s": round(percentile(second, 50), 3),
        "max_s": round(max(every, default=float("nan")), 3),
    }


def markdown(result: dict[str, Any], machine: str = "") -> str:
    r = result
    return "\n".join(
        [
            f"### Load: {r['sessions']} concurrent chat sessions on the page ({r['backend']} backend)",
            "",
            f"Each session is its own Gradio client with a distinct two-turn conversation (an example question,"
            f" then a follow-up), all started at once{(' on ' + machine) if machine else ''}.",
            "",
            "| answers | sessions correct | cross-session leaks | p50 | p95 | max | throughput |",
            "|---|---|---|---|---|---|---|",
            f"| {r['answers']}/{2 * r['sessions']} | {r['sessions_ok']}/{r['sessions']} | {r['cross_session_leaks']} "
            f"| {r['p50_s']:.2f} s | {r['p95_s']:.2f} s | {r['max_s']:.2f} s | {r['answers_per_s']:.2f} answers/s |",
            "",
            f"Latency is per answer as a client sees it, queueing included (the page runs 4 answers at a time)."
            f" {r['follow_ups_on_topic']}/{r['sessions']} follow-ups cite an entry their first answer cited.",
        ]
    )


def _index_bundled(home: Path) -> Any:
    from agent.personas import list_personas
    from agent.pipeline import build_agent
    from knowledge.config import Settings
    from knowledge.ingest import ingest

    settings = Settings.from_env().replace(home=home)
    agent = build_agent(settings)
    from ui.cli import warm_sentences

    for card in list_personas(settings):
        if card.bundled:
            ingest(agent.store, card.id, card.source_paths(), root=card.sources_dir, chunk_tokens=settings.chunk_tokens)
            warm_sentences(agent, card.id)  # as `persona ingest` does: the served page starts warm
    return agent


# The page in a process of its own, as `persona serve` runs it: the 20 clients' threads (this
# process) do not take the server's GIL. Warmed by one answer per persona first, as a running
# server would be (the first answer of a persona loads its index and builds its lexical index).
_SERVER = """
import json, sys
from agent.pipeline import build_agent
from ui.app import build_app, launch
port, backend, first = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
agent = build_agent()
for persona, question in first:
    agent.ask(question, persona=persona, backend=backend)
launch(build_app(agent.ask_stream), "127.0.0.1", port, block=True, quiet=True)
"""


def _cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system, every thread) used so far by process ``pid`` (default: this one).
    Unlike latency, it hardly moves with the machine's load: the work per answer, not the wait."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (proc(5))


def _warm_up(convs: Sequence[Conversation]) -> list[tuple[str, str]]:
    """One question per persona of ``convs`` (its last conversation's first), to warm the page up with."""
    return list({c.persona: (c.persona, c.questions[0]) for c in convs}.values())


def _serve_in_child(home: Path, port: int, backend: str, first: list[tuple[str, str]]) -> Any:
    """Start the page in a child process on ``port``; returns the Popen once the page answers."""
    import subprocess
    import urllib.request

    env = {**os.environ, "PERSONA_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False"}
    child = subprocess.Popen([sys.executable, "-c", _SERVER, str(port), backend, json.dumps(first)], env=env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the page process exited with {child.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5):
                return child
        except OSError:
            time.sleep(0.5)
    child.terminate()
    raise RuntimeError("the page did not start within 600 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--backend", default="extractive")
    parser.add_argument("--home", type=Path, help="an indexed PERSONA_HOME (default: index into a temporary one)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="serve the page from this process, sharing its GIL with the clients (the figures before issue 14)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from knowledge.config import Settings

    with tempfile.TemporaryDirectory(prefix="persona-load-") as tmp:
        home = args.home or Path(tmp)
        if args.home is None:
            print("indexing the bundled writings into a temporary home…", file=sys.stderr)
            _index_bundled(home).store  # noqa: B018  # indexed and warmed, as `persona ingest` does
        convs = conversations(args.sessions, Settings.from_env().replace(home=home))
        port = free_port()
        if args.in_process:
            from agent.pipeline import build_agent
            from ui.app import build_app, launch

            agent = build_agent(Settings.from_env().replace(home=home))
            for persona, question in _warm_up(convs):
                agent.ask(question, persona=persona, backend=args.backend)
            app = build_app(agent.ask_stream)
            launch(app, "127.0.0.1", port, block=False, quiet=True)
            stop = app.close
        else:
            child = _serve_in_child(home, port, args.backend, _warm_up(convs))

            def stop() -> None:
                child.terminate()
                child.wait(timeout=30)

        load_before = round(os.getloadavg()[0], 2)
        server_pid = None if args.in_process else child.pid
        try:
            cpu0, server0 = _cpu_s(), _cpu_s(server_pid)
            t0 = time.perf_counter()
            sessions = run_sessions(f"http://127.0.0.1:{port}/", convs, args.backend)
            wall = time.perf_counter() - t0
            cpu1, server1 = _cpu_s(), _cpu_s(server_pid)
        finally:
            stop()
    result = summarise(sessions, wall, args.backend)
    result["server"] = "this process" if args.in_process else "a child process"
    answers = max(1, result["answers"])
    if not args.in_process:  # with the page in this process, its CPU and the clients' are one figure
        result["server_cpu_ms_per_answer"] = round((server1 - server0) / answers * 1000, 1)
        result["client_cpu_ms_per_answer"] = round((cpu1 - cpu0) / answers * 1000, 1)
    result["cpus"] = os.cpu_count()
    result["load_average_1m_before"] = load_before
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    result["sessions_detail"] = [
        {**asdict(s.conversation), "latencies_s": [round(x, 3) for x in s.latencies], "ok": s.ok, "error": s.error}
        for s in sessions
    ]
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(markdown(result, f"{result['cpus']} cores"))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0 if result["sessions_ok"] == result["sessions"] else 1


if __name__ == "__main__":
    sys.exit(main())
