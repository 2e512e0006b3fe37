"""Backend ``openai``: OpenAI, or any OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio), via ChatOpenAI.

LangChain and the openai client are imported on first use, never at import: ``import agent`` stays light.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from agent.backends import register
from knowledge.errors import BackendError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.config import Settings

OPENAI_URL = "https://api.openai.com/v1"
# Reasoning models accept only their default temperature.
_FIXED_TEMPERATURE = ("o1", "o3", "o4", "gpt-5")

MISSING_CONFIG = (
    "the openai backend needs OPENAI_API_KEY (for OpenAI) or OPENAI_BASE_URL (for a compatible server, "
    "e.g. http://localhost:11434/v1 for Ollama): export one, or use an offline backend: "
    "--backend extractive (no LLM) or --backend local (the bundled model)"
)


@lru_cache(maxsize=1)
def _backend_class() -> type:
    # The shared LLM machinery imports LangChain: build the class only when the backend is used.
    from agent.llm import LLMBackend

    class OpenAIBackend(LLMBackend):
        """Answers with a chat model behind the OpenAI API; retries come from the openai client."""

        name = "openai"

        def __init__(self, settings: Settings, services: Any = None) -> None:
            if not settings.openai_api_key and not settings.openai_base_url:
                raise ConfigError(MISSING_CONFIG)
            super().__init__(settings, services)
            self.model_name = settings.chat_model
            self.base_url = (settings.openai_base_url or OPENAI_URL).rstrip("/")
            # A compatible server is free to run: cost only when the bill comes from OpenAI.
            self.priced = self.base_url.startswith(OPENAI_URL)
            self._models: dict[int, Any] = {}
            self._models_lock = threading.Lock()

        def model(self, max_tokens: int) -> Any:
            with self._models_lock:
                if max_tokens not in self._models:
                    self._models[max_tokens] = self._chat_openai(max_tokens)
                return self._models[max_tokens]

        def _chat_openai(self, max_tokens: int) -> Any:
            from langchain_openai import ChatOpenAI

            s = self.settings
            extra: dict[str, Any] = {}
            if not self.model_name.lower().startswith(_FIXED_TEMPERATURE):
                extra["temperature"] = s.temperature
            if not self.priced:
                # ChatOpenAI sends OpenAI's newer max_completion_tokens; llama.cpp's server (0.3.x)
                # ignores it and generates to the end of its window. The classic name works everywhere.
                extra["extra_body"] = {"max_tokens": max_tokens}
            return ChatOpenAI(
                model=self.model_name,
                # Local servers ignore the key, but the client insists on one.
                api_key=s.openai_api_key or "not-needed",  # type: ignore[arg-type]
                base_url=self.base_url,
                timeout=s.timeout,
                # The openai client retries 408/409/429/5xx, timeouts and dropped connections with
                # exponential backoff (0.5 s doubling, jitter, Retry-After honoured); never a 401.
                max_retries=s.max_retries,
                max_completion_tokens=max_tokens,  # the field's alias: the name OpenAI's API uses
                **extra,
            )

        def map_error(self, exc: Exception) -> BackendError | None:
            return map_openai_error(exc, self.base_url, self.model_name, self.settings)

    return OpenAIBackend


def map_openai_error(exc: Exception, base_url: str, model: str, settings: Settings) -> BackendError | None:
    """One clear line for each way the API fails; None for errors this does not recognise."""
    import openai

    retries = f"after {settings.max_retries} retries" if settings.max_retries else "(retries are off)"
    if isinstance(exc, openai.AuthenticationError):
        return BackendError(
            f"{base_url} rejected the API key (401 Unauthorized): check OPENAI_API_KEY "
            "(not retried: a wrong key stays wrong)"
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return BackendError(f"{base_url} refused access to {model!r} (403): check the key's project and permissions")
    if isinstance(exc, openai.NotFoundError):
        return BackendError(f"{base_url} has no model {model!r} (404): set PERSONA_CHAT_MODEL to a model it serves")
    if isinstance(exc, openai.RateLimitError):
        return BackendError(
            f"{base_url} is rate-limiting requests (429) {retries}: wait a minute, "
            "or raise PERSONA_MAX_RETRIES"
        )
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(
            f"{base_url} did not answer within {settings.timeout:g} s {retries}: "
            "is the server overloaded? raise PERSONA_TIMEOUT for slow models"
        )
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(f"cannot reach {base_url} {retries}: is the server running? check OPENAI_BASE_URL")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500:
            return BackendError(f"{base_url} failed with a server error ({status}) {retries}: try again later")
        return BackendError(f"{base_url} refused the request ({status}): {_detail(exc)}")
    return None


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(exc)[:300]


def _factory(settings: Settings, services: Any) -> Any:
    return _backend_class()(settings, services)


register("openai", _factory)
