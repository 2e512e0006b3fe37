"""Benchmark step, runtime guard: CPU time of the faithfulness checker on a 5-sentence answer, passages warm.

The target (issue 15): at most 150 ms of CPU per 5-sentence answer once its passages are embedded
(``FaithfulnessChecker.warm``, which the answer path can do right after retrieval). CPU time is
``time.process_time`` (every thread of the process), so a second core does not hide work.
Every trial scores 5 sentences never scored before (the checker caches embeddings by text), drawn
from the bundled writings, against 3 entries of the English diary. Two ways are timed:

- ``batch``: ``checker.sentence_scores(five_sentences, passages)``, one embedding call;
- ``per_sentence``: agent.verify's ``CheckerJudge.support`` once per sentence, as verification calls it.

``python -m benchmarks.checker_guard`` writes benchmarks/checker_guard_results.json and prints a
markdown snippet for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("checker_guard_results.json")
SOURCES = Path(__file__).resolve().parents[1] / "knowledge" / "sources"
TARGET_MS = 150.0
SENTENCES = 5


def _material() -> tuple[list[str], list[str]]:
    """(3 passages: entries of the English diary, sentences to score from all the bundled writings)."""
    from agent.checker import sentences_of
    from evals.korean_set import entries

    passages = list(entries(SOURCES / "raj-diary.en.txt").values())[:3]
    pool: list[str] = []
    for path in sorted(SOURCES.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        pool.extend(s for s in sentences_of(text) if 30 <= len(s) <= 220 and not s.startswith("#"))
    return passages, list(dict.fromkeys(pool))


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
        "min_ms": round(ordered[0], 1),
    }


def run(trials: int = 12) -> dict[str, Any]:
    """Time ``trials`` answers each way; returns CPU and wall figures in milliseconds."""
    from agent.checker import FaithfulnessChecker
    from agent.verify import CheckerJudge, LexicalEmbeddingJudge

    passages, pool = _material()
    need = 2 * trials * SENTENCES + SENTENCES
    if len(pool) < need:
        raise RuntimeError(f"only {len(pool)} distinct sentences in the bundled writings, {need} needed")
    checker = FaithfulnessChecker()
    judge = CheckerJudge(checker, LexicalEmbeddingJudge())
    checker.warm(passages)
    checker.sentence_scores(pool[:SENTENCES], passages)  # loads the model: not part of any trial
    fresh = iter(pool[SENTENCES:])
    out: dict[str, Any] = {
        "trials": trials,
        "sentences": SENTENCES,
        "passages": len(passages),
        # Other jobs on the machine inflate CPU time too (cache sharing, OpenMP spinning): say how busy it was.
        "load_average_start": round(os.getloadavg()[0], 2),
    }
    for way in ("batch", "per_sentence"):
        cpu, wall = [], []
        for _ in range(trials):
            answer = [next(fresh) for _ in range(SENTENCES)]
            c0, w0 = time.process_time(), time.perf_counter()
            if way == "batch":
                checker.sentence_scores(answer, passages)
            else:
                for sentence in answer:
                    judge.support(sentence, passages)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        out[way] = {"cpu": _stats(cpu), "wall": _stats(wall)}
    out["target_cpu_ms"] = TARGET_MS
    out["met"] = out["batch"]["cpu"]["median_ms"] <= TARGET_MS
    return out


def markdown(r: dict[str, Any]) -> str:
    rows = [
        "| way | CPU median | CPU p90 | wall median |",
        "|---|---|---|---|",
    ]
    for way, label in (("batch", "one call, 5 sentences"), ("per_sentence", "5 calls (agent.verify)")):
        rows.append(
            f"| {label} | {r[way]['cpu']['median_ms']} ms | {r[way]['cpu']['p90_ms']} ms | "
            f"{r[way]['wall']['median_ms']} ms |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.checker_guard", description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=12, help="answers timed each way (default 12)")
    p.add_argument("--no-write", action="store_true", help=f"print only; do not write {RESULTS.name}")
    args = p.parse_args(argv)
    from benchmarks.machine import describe

    result = {"machine": describe(), **run(args.trials)}
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    print(f"target: batch CPU median <= {TARGET_MS:.0f} ms: {'met' if result['met'] else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
