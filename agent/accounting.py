"""Accounting step: tokens counted with tiktoken, cost from a price table, the prompt packed to the model's window."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from knowledge.errors import ContextWindowError
from knowledge.text import count_tokens, split_sentences
from knowledge.types import Chunk, Usage

Counter = Callable[[str], int]

# OpenAI list prices in USD per million tokens (input, output), as published for the standard
# tier. A dated snapshot ("gpt-4o-mini-2024-07-18") is priced as its family. Longest prefix wins,
# so "gpt-4o-mini" is never billed as "gpt-4o".
PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
}

# Context windows by model-name prefix. Unknown models get a conservative 4096: Ollama's and
# llama.cpp's servers default to small windows and silently drop the start of a longer prompt.
WINDOWS: dict[str, int] = {
    "gpt-5": 272_000,
    "gpt-4.1": 1_000_000,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-3.5-turbo": 16_385,
    "o4-mini": 200_000,
    "o3": 200_000,
    "smollm2": 2048,
    "smollm": 2048,
    "gemma-3-270m": 4096,
}
DEFAULT_WINDOW = 4096
# Per-message framing tokens of the chat format (role markers), as OpenAI's cookbook counts them.
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3

_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _family(model: str, table: dict[str, object]) -> str | None:
    name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" -> "gpt-4o"
    matches = [p for p in table if name == p or name.startswith(p + "-") or name.startswith(p + ":")]
    return max(matches, key=len) if matches else None


def price(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens, or None for a model not in the table."""
    family = _family(model, PRICES)  # type: ignore[arg-type]
    return PRICES[family] if family else None


def cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    p = price(model)
    if p is None:
        return None
    return round((prompt_tokens * p[0] + completion_tokens * p[1]) / 1_000_000, 8)


def is_openai_model(model: str) -> bool:
    return price(model) is not None


def context_window(model: str, setting: int | None = None) -> int:
    """The model's context window in tokens: the setting if given, else the table, else 4096."""
    if setting:
        return setting
    family = _family(model, WINDOWS)  # type: ignore[arg-type]
    if family:
        return WINDOWS[family]
    name = model.lower()
    return next((w for key, w in WINDOWS.items() if key in name), DEFAULT_WINDOW)


def completion_budget(window: int, setting: int | None = None) -> int:
    """Tokens reserved for the answer: the setting, else 512 (256 for windows of 2048 or less)."""
    if setting:
        return min(setting, window // 2)
    return 256 if window <= 2048 else 512


def pessimistic_counter(text: str) -> int:
    """Token count for a model whose tokenizer we do not have.

    cl100k undercounts Korean for small open models by about 1.8x (SmolLM2: 1470 tokens for
    1000 characters of the Korean diary, cl100k 816); one extra token per Hangul syllable
    keeps the packed prompt inside their window.
    """
    return count_tokens(text) + len(_HANGUL.findall(text))


def counter_for(model: str) -> Counter:
    return count_tokens if is_openai_model(model) else pessimistic_counter


def count_messages(contents: Sequence[str], count: Counter = count_tokens) -> int:
    """Prompt tokens of a chat request: every message's text plus the chat format's framing."""
    return sum(count(c) + MESSAGE_OVERHEAD for c in contents) + REPLY_PRIMING


def usage(model: str, prompt_tokens: int, completion_tokens: int, *, priced: bool = True) -> Usage:
    """Usage with cost when ``priced`` (talking to OpenAI itself) and the model is in the table."""
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost(model, prompt_tokens, completion_tokens) if priced else None,
    )


def add(a: Usage, b: Usage) -> Usage:
    """The usage of two calls (e.g. condensing a follow-up, then answering)."""
    if not (b.prompt_tokens or b.completion_tokens):
        return a
    if not (a.prompt_tokens or a.completion_tokens):
        return b
    both = a.cost_usd is not None and b.cost_usd is not None
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cost_usd=round((a.cost_usd or 0.0) + (b.cost_usd or 0.0), 8) if both else None,
    )


@dataclass(frozen=True)
class Packed:
    """What fits in the window: passages (the last possibly trimmed) and the most recent history."""

    passages: list[Chunk]
    history: list[dict[str, str]]
    dropped: int  # retrieved passages left out
    trimmed: bool  # the last passage was cut at a sentence boundary
    prompt_tokens: int  # estimated tokens of the whole prompt


def trim_chunk(chunk: Chunk, max_tokens: int, count: Counter) -> Chunk | None:
    """The longest run of the chunk's leading sentences within ``max_tokens``; offsets stay exact."""
    best: Chunk | None = None
    for _, end in split_sentences(chunk.text, chunk.start):
        text = chunk.text[: end - chunk.start]
        if count(text) > max_tokens:
            break
        best = dataclasses.replace(chunk, text=text, end=end)
    return best


def pack(
    *,
    fixed_tokens: int,
    passages: Sequence[Chunk],
    history: Sequence[dict[str, str]],
    window: int,
    reserve: int,
    block_tokens: Callable[[Chunk], int],
    count: Counter,
    min_passage_tokens: int = 48,
    history_share: float = 0.25,
) -> Packed:
    """Fit the prompt into ``window - reserve`` tokens; never more.

    The fixed part is counted first: the system prompt and the question (``fixed_tokens``), which
    always go in. Then the recent history, newest first, up to a quarter of what is left (a
    follow-up needs the last turn, rarely more; older turns are dropped first); then the passages
    in retrieval order, the first that does not fit cut at a sentence boundary.

    Raises ContextWindowError (naming the window, the sizes and the settings to change) when the
    fixed part and the answer's reserve leave no room for even one shortened passage: an answer
    without passages cannot be cited, and a request over the window makes servers such as Ollama
    silently cut the start of the prompt (the persona's instructions and guards).
    """
    budget = window - reserve - fixed_tokens
    if passages:
        first = passages[0]
        overhead = block_tokens(first) - count(first.text)
        if budget < overhead + min(min_passage_tokens, count(first.text)):
            raise ContextWindowError(
                f"the question does not fit the model's context window of {window:,} tokens: the persona's "
                f"instructions and the question take {fixed_tokens:,}, the answer needs {reserve:,} more, "
                f"leaving {max(budget, 0):,} for the passages (at least {overhead + min_passage_tokens:,} needed): "
                "ask a shorter question, or raise PERSONA_CONTEXT_TOKENS if the model's window is larger "
                "(or lower PERSONA_MAX_TOKENS)"
            )
    kept_history: list[dict[str, str]] = []
    history_budget = int(max(budget, 0) * history_share)
    for message in reversed(history):
        cost_ = count(message["content"]) + MESSAGE_OVERHEAD
        if cost_ > history_budget:
            break
        kept_history.insert(0, message)
        history_budget -= cost_
        budget -= cost_
    chosen: list[Chunk] = []
    trimmed = False
    for chunk in passages:
        need = block_tokens(chunk)
        if need <= budget:
            chosen.append(chunk)
            budget -= need
            continue
        overhead = need - count(chunk.text)
        if budget - overhead >= min(min_passage_tokens, count(chunk.text)):
            cut = trim_chunk(chunk, budget - overhead, count)
            if cut is not None:
                chosen.append(cut)
                budget -= block_tokens(cut)
                trimmed = True
        return Packed(chosen, kept_history, len(passages) - len(chosen), trimmed, window - reserve - budget)
    return Packed(chosen, kept_history, 0, trimmed, window - reserve - budget)
