"""Start-up: a cold extractive `persona ask` imports only what it uses; sentence vectors persist on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from knowledge.embedders import PersistentEmbeddings

# Libraries an extractive CLI answer has no use for: the page, the API server, LangChain, the
# OpenAI client, scikit-learn, the tokenizer (a short question needs no token count), the
# faithfulness checker (it guards LLM answers), the eval harness's scoring and Kiwi.
NOT_ON_THE_EXTRACTIVE_PATH = (
    "gradio",
    "fastapi",
    "uvicorn",
    "langchain_core",
    "langchain_openai",
    "langchain_chroma",
    "openai",
    "sklearn",
    "tiktoken",
    "agent.checker",
    "agent.verify",
    "evals.checker",
    # Kiwi's model (2-5 s): an English question to raj retrieves Korean passages, but matching them
    # needs no Korean analysis (the saved lexical index holds their tokens; knowledge.text.latin_tokens).
    "kiwipiepy",
)

_PROBE = """
import io, json, sys, contextlib
from ui.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["ask", "--backend", "extractive", "--persona", "raj", "--json", sys.argv[1]])
answer = json.loads(out.getvalue())
print(json.dumps({"code": code, "citations": len(answer["citations"]), "abstained": answer["abstained"],
                  "loaded": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}))
"""


def _run(code: str, *args: str, home: Path | None = None) -> dict[str, Any]:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    if home is not None:
        env["PERSONA_HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_importing_the_cli_loads_nothing_heavy() -> None:
    heavy = NOT_ON_THE_EXTRACTIVE_PATH
    probe = f"import json, sys, ui.cli\nprint(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_cold_extractive_ask_imports_only_what_it_uses(indexed_home: Path) -> None:
    result = _run(
        _PROBE,
        "What went wrong in your first big training run?",
        json.dumps(NOT_ON_THE_EXTRACTIVE_PATH),
        home=indexed_home,
    )
    assert result["code"] == 0 and not result["abstained"] and result["citations"] >= 1
    assert result["loaded"] == []


class CountingEmbedder:
    """A deterministic fake at the Embedder seam: vectors from the text's characters, calls counted."""

    id = "counting"

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return [[len(t) / 4.0, float(sum(map(ord, t)) % 97) / 8.0, 0.5] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0, 0.0]


def test_persistent_embeddings_reuse_vectors_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "vectors.sqlite"
    first = CountingEmbedder()
    a = PersistentEmbeddings(first, path).embed_documents(["alpha", "beta", "alpha"])
    assert first.embedded == ["alpha", "beta"]  # a repeated text is embedded once
    second = CountingEmbedder()  # a fresh process: nothing in memory, the file on disk
    b = PersistentEmbeddings(second, path).embed_documents(["beta", "gamma", "alpha"])
    assert second.embedded == ["gamma"]
    import numpy as np

    # Stored as float32: what comes back is the float32 value of what the model returned.
    assert b[0] == a[1] and b[2] == a[0] == a[2]
    assert np.allclose(b[1], np.float32(CountingEmbedder().embed_documents(["gamma"])[0]))


def test_an_unusable_cache_file_only_costs_time(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    inner = CountingEmbedder()
    cached = PersistentEmbeddings(inner, blocker / "vectors.sqlite")
    assert cached.embed_documents(["x", "yy"])[1] == inner.embed_documents(["yy"])[0]  # exact in float32
    assert cached.embed_documents(["x"]) and inner.embedded.count("x") == 2  # no cache: embedded each time


@pytest.mark.parametrize("question", ["Why?", "그 다음엔 무엇을 배웠나요?"])
def test_short_questions_are_not_tokenised(question: str) -> None:
    code = (
        "import sys, json\nfrom agent.pipeline import clean_question\n"
        "clean_question(sys.argv[1], 2000)\nprint(json.dumps({'tiktoken': 'tiktoken' in sys.modules}))"
    )
    assert _run(code, question) == {"tiktoken": False}


def test_a_question_over_the_cap_in_tokens_is_still_refused() -> None:
    from agent.pipeline import clean_question
    from knowledge.errors import InputError

    # 30 Korean syllables: 90 UTF-8 bytes, more than 20 tokens, fewer than 20 * 8 characters.
    with pytest.raises(InputError, match="too long"):
        clean_question("가" * 30, 20)


def test_quick_json_takes_the_cold_figures_from_either_measurement() -> None:
    from benchmarks.run import _cold

    quick = {"cold_ask": {"cold_ask_ms": 1800.0, "cold_floor_ms": 1200.0}}
    full = {"startup": {"cold": {"cold_ask_ms": 2500.0, "cold_floor_ms": 1000.0}}}
    assert _cold(quick) == {"cold_ask_s": 1.8, "cold_floor_s": 1.2}
    assert _cold(full) == {"cold_ask_s": 2.5, "cold_floor_s": 1.0}
    assert _cold({}) == {}  # a run without the start-up measurement adds no keys
