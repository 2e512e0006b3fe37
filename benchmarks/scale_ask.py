"""Benchmark step, the whole answer path on a scale persona: what a serving process does, timed.

`python -m benchmarks.scale_ask --persona synth-1000000 [--no-warm]` opens the store that
`python -m benchmarks.synth` built under benchmarks/out/scale-home (embedded), gives the persona a
card there (``personas/<id>.toml``, as `persona ingest PATH --persona NAME` would), and times, in
this one fresh process, the steps a `persona serve` process takes: the warm-up
(``HybridRetriever.warm``, unless --no-warm), the first fact question through ``Agent.ask`` (the
extractive backend: retrieval, question understanding, the coverage rule, composition), the first
view question, then six more questions (their median). After each step: resident memory (VmRSS and
its peak VmHWM, MB, from /proc: Linux only) and whether every chunk or the persona's whole text was
loaded (above ``agent.retrieve.SCAN_CHUNKS`` neither should be). JSON to stdout.

``benchmarks.synth`` times ``HybridRetriever.retrieve`` alone; this is the rest of the answer path at
the same sizes.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.serve_memory import rss_mb

FACT = "What was the calibration code for run 12345?"
VIEW = "What do you think of scaling up models?"
MORE = (
    "체크포인트 12345은 어떤 태그로 저장했나요?",
    "Which dataset did the team use for run 20417?",
    "What went wrong in the training run?",
    "학습률은 어떻게 정했나요?",
    "Do you think bigger models reason better?",
    "What did the reviewer say about the paper?",
)


def measure(agent: Any, persona: str, warm: bool = True) -> dict[str, Any]:
    """Time ``agent`` (an ``agent.pipeline.Agent`` whose store holds ``persona``) through the steps
    above. Returns ``{"persona", "chunks", "warm_s", "first_fact_s", "first_view_s",
    "next_p50_s", "steps_mb": {step: {"VmRSS": MB, "VmHWM": MB}}, "loaded_all_chunks": bool,
    "loaded_whole_text": bool, "answers": [first 80 characters of each answer]}``; seconds are
    wall-clock."""
    steps: dict[str, Any] = {"start": rss_mb()}
    t = time.perf_counter()
    agent.embedder.embed_query("warm-up")
    idx = agent.retriever.index(persona)
    if warm:
        agent.retriever.warm(persona)
    warm_s = time.perf_counter() - t
    steps["warm" if warm else "index"] = rss_mb()
    answers: list[str] = []

    def ask(question: str) -> float:
        t0 = time.perf_counter()
        answer = agent.ask(question, persona=persona, backend="extractive")
        answers.append(answer.text[:80])
        return time.perf_counter() - t0

    first_fact = ask(FACT)
    steps["first_fact"] = rss_mb()
    first_view = ask(VIEW)
    steps["first_view"] = rss_mb()
    more = [ask(q) for q in MORE]
    steps["next_six"] = rss_mb()
    return {
        "persona": persona,
        "chunks": idx.lexical.n,
        "warm_s": round(warm_s, 3) if warm else None,
        "first_fact_s": round(first_fact, 3),
        "first_view_s": round(first_view, 3),
        "next_p50_s": round(statistics.median(more), 3),
        "steps_mb": steps,
        "loaded_all_chunks": "chunks" in idx.__dict__,
        "loaded_whole_text": "corpus_text" in idx.__dict__,
        "answers": answers,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.scale_ask --persona synth-1000000 [--no-warm] [--home DIR]`: JSON to stdout."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_ask", description=__doc__)
    parser.add_argument("--persona", default="synth-10000", help="a persona the scale run built (%(default)s)")
    parser.add_argument("--no-warm", action="store_true", help="ask without the warm-up first")
    parser.add_argument(
        "--home", type=Path, default=Path(__file__).resolve().parent / "out" / "scale-home", help="the scale run's home"
    )
    args = parser.parse_args(argv)

    from agent.personas import save_user_persona
    from agent.pipeline import Agent
    from knowledge.config import Settings

    settings = Settings.from_env().replace(home=args.home, chroma_url=None)
    save_user_persona(settings, args.persona, args.home, [], name=args.persona)
    print(json.dumps(measure(Agent(settings), args.persona, warm=not args.no_warm), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
