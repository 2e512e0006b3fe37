"""The local model's figures: decode speed of the llama.cpp build, time to first token, restart after a crash.

``python -m benchmarks.local_model [--native-python PATH] [--json]`` measures, in one run:

- **decode tokens/s and prompt time** of the installed (portable) llama-cpp-python build, in a
  child interpreter that loads the bundled SmolLM2 with ``llama_cpp.Llama`` and streams a
  completion of a fixed diary prompt (1 thread, as the app runs it on 2 cores; median of 3);
  with ``--native-python``, the same measurement under another interpreter, e.g. a venv holding a
  ``-march=native`` build, for the cost of portability on this CPU;
- **time to first token** of ``ask_stream(..., backend="local")`` on the bundled writings: cold
  (the model process is started by the question) and warm;
- **restart after a crash**: the model process is killed with SIGKILL; seconds until the next
  question's model process is healthy, and that question's time to first token.

Writes benchmarks/local_model.json and prints the markdown section for BENCHMARKS.md (as
``benchmarks.load`` and ``benchmarks.api_load`` do).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import REPO_ROOT

JSON_PATH = REPO_ROOT / "benchmarks" / "local_model.json"
QUESTION = "What went wrong in your first big training run?"
# Warm runs ask other questions: llama.cpp reuses the KV cache of a repeated prompt, which would
# time a cache hit, not an answer.
WARM_QUESTIONS = (
    "What did you learn about unlearning?",
    "Why did your hyperparameter faith collapse?",
    "What did you tell your students about not knowing?",
)
REPEATS = 3
MAX_TOKENS = 128

# Runs under the interpreter being measured: only llama_cpp and the standard library.
RAW = r"""
import json, sys, time
import llama_cpp
from llama_cpp import Llama
model, prompt, max_tokens, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
info = llama_cpp.llama_print_system_info()
info = info.decode() if isinstance(info, bytes) else str(info)
llm = Llama(model_path=model, n_ctx=1024, n_threads=1, n_threads_batch=1, verbose=False, seed=0)
runs = []
for _ in range(repeats):
    llm.reset()
    t0 = time.perf_counter(); first = last = None; n = 0
    for ev in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stream=True, seed=0):
        now = time.perf_counter()
        if first is None: first = now
        last = now; n += 1
    runs.append({"prompt_s": first - t0, "tokens": n, "decode_tok_s": (n - 1) / (last - first) if n > 1 else 0.0})
print(json.dumps({"system_info": info, "prompt_tokens": len(llm.tokenize(prompt.encode())), "runs": runs}))
"""


def _prompt() -> str:
    from knowledge.config import BUNDLED_SOURCES

    text = (BUNDLED_SOURCES / "raj-diary.en.txt").read_text("utf-8")
    return "Summarise this diary entry in two sentences.\n\n" + text[:1200] + "\n\nSummary:"


def raw_decode(python: str, model: Path) -> dict[str, Any]:
    """Decode figures of the llama_cpp build importable by ``python`` (a path to an interpreter)."""
    out = subprocess.run(
        [python, "-c", RAW, str(model), _prompt(), str(MAX_TOKENS), str(REPEATS)],
        capture_output=True, text=True, timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{python} could not run llama_cpp (exit {out.returncode}): {out.stderr[-800:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    from agent.backends.native import features, problems

    feats = features(data["system_info"])
    return {
        "python": python,
        "features": sorted(k for k, v in feats.items() if v),
        "portable": not problems(data["system_info"]),
        "prompt_tokens": data["prompt_tokens"],
        "prompt_s": statistics.median(r["prompt_s"] for r in data["runs"]),
        "decode_tok_s": statistics.median(r["decode_tok_s"] for r in data["runs"]),
        "runs": data["runs"],
    }


def backend_figures() -> dict[str, Any]:
    """Time to first token of the local backend (cold, warm) and its restart after SIGKILL."""
    from agent.personas import get_persona
    from agent.pipeline import build_agent
    from knowledge.config import Settings
    from knowledge.ingest import ingest
    from knowledge.types import Answer

    home = Path(tempfile.mkdtemp(prefix="bench-local-"))
    settings = Settings.from_env().replace(home=home, max_tokens=64, context_tokens=1024, temperature=0.0)
    agent = build_agent(settings)
    card = get_persona("raj", settings)
    ingest(agent.store, card.id, card.source_paths(), root=card.sources_dir, chunk_tokens=settings.chunk_tokens)
    backend = agent.backend("local")

    def first_token(question: str = QUESTION) -> tuple[float, Answer]:
        started = time.perf_counter()
        first: float | None = None
        final = None
        for item in agent.ask_stream(question, backend="local"):
            if isinstance(item, Answer):
                final = item
            elif first is None:
                first = time.perf_counter() - started
        assert final is not None
        return (first if first is not None else float("nan")), final

    cold, _ = first_token()
    warm = [first_token(q)[0] for q in WARM_QUESTIONS]
    os.kill(backend.server.pid, signal.SIGKILL)
    backend.server.died(wait=5.0)
    started = time.perf_counter()
    backend.server.ensure()
    restart = time.perf_counter() - started
    os.kill(backend.server.pid, signal.SIGKILL)
    backend.server.died(wait=5.0)
    after_crash, answer = first_token()
    return {
        "ttft_cold_s": cold,
        "ttft_warm_s": statistics.median(warm),
        "restart_s": restart,
        "ttft_after_crash_s": after_crash,
        "answer_after_crash_cited": bool(answer.citations),
        "model_process_starts": backend.server.starts,
        "model_process_crashes": backend.server.crashes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.local_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--native-python", help="an interpreter whose llama_cpp is a -march=native build, to compare")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/local_model.json")
    args = parser.parse_args(argv)
    from agent.backends.local import bundled_model_path
    from benchmarks.machine import describe

    model = bundled_model_path()
    result: dict[str, Any] = {"machine": describe(), "model": model.name, "threads": 1}
    result["portable"] = raw_decode(sys.executable, model)
    if args.native_python:
        result["native"] = raw_decode(args.native_python, model)
    result["backend"] = backend_figures()
    if not args.no_write:
        JSON_PATH.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
    else:
        print(render(result))
    return 0


def render(r: dict[str, Any]) -> str:
    """The "Local model" section of BENCHMARKS.md from a local_model.json result."""
    lines = [
        "## Local model: portable build, time to first token, restart after a crash\n",
        "Written by `python -m benchmarks.local_model` (raw figures in `benchmarks/local_model.json`). "
        "llama-cpp-python is built by `make local` for x86-64-v3 (AVX2/FMA/F16C; no AVX-512, no AMX, "
        "never `-march=native`: agent/backends/native.py). Decode speed: the bundled SmolLM2 loaded with "
        f"`llama_cpp.Llama`, one thread, a {r['portable']['prompt_tokens']}-token diary prompt, "
        f"{MAX_TOKENS} tokens, median of "
        f"{REPEATS}. CPU: {r['machine'].get('cpu', '?')}.\n",
        "| build | compiled-in features | prompt (s) | decode (tokens/s) |",
        "|---|---|---|---|",
    ]
    for name in ("portable", "native"):
        if name in r:
            b = r[name]
            lines.append(
                f"| {name} | {' '.join(b['features'])} | {b['prompt_s']:.2f} | {b['decode_tok_s']:.1f} |"
            )
    if "native" in r:
        ratio = r["portable"]["decode_tok_s"] / r["native"]["decode_tok_s"]
        lines.append(f"\nPortable / native decode speed on this CPU: {ratio:.2f}.")
    b = r["backend"]
    lines += [
        "\n| local backend (`ask_stream`, model in a child process) | seconds |",
        "|---|---|",
        f"| time to first token, cold (the question starts the model process) | {b['ttft_cold_s']:.2f} |",
        f"| time to first token, warm (model process running; median of {len(WARM_QUESTIONS)} other questions) "
        f"| {b['ttft_warm_s']:.2f} |",
        f"| restart: SIGKILL'd process to a healthy new one | {b['restart_s']:.2f} |",
        f"| time to first token of the next question after a crash (fresh process) | {b['ttft_after_crash_s']:.2f} |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
