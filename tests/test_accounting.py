"""Accounting: tiktoken counts, prices, context windows, packing that keeps offsets exact."""

from __future__ import annotations

import pytest

from agent import accounting
from knowledge.config import BUNDLED_SOURCES
from knowledge.text import count_tokens
from knowledge.types import Chunk, Usage


def _chunk(text: str, start: int = 0) -> Chunk:
    return Chunk(
        id="c", persona="raj", source="raj-diary.en.txt", title="t", start=start, end=start + len(text),
        text=text, lang="en", content_hash="h",
    )


def test_prices_for_known_models_and_none_for_unknown() -> None:
    assert accounting.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert accounting.cost("gpt-4o-mini-2024-07-18", 1000, 0) == pytest.approx(0.00015)
    assert accounting.price("gpt-4o") == (2.50, 10.00)  # not gpt-4o-mini's, despite the shared prefix
    assert accounting.cost("smollm2", 1000, 1000) is None
    assert accounting.cost("llama3.1:8b", 1000, 1000) is None


def test_usage_is_priced_only_against_openai() -> None:
    assert accounting.usage("gpt-4o-mini", 100, 10).cost_usd is not None
    assert accounting.usage("gpt-4o-mini", 100, 10, priced=False).cost_usd is None


def test_usages_add_up() -> None:
    a, b = Usage(10, 2, 0.5), Usage(5, 1, 0.25)
    assert accounting.add(a, b) == Usage(15, 3, 0.75)
    assert accounting.add(a, Usage()) == a
    assert accounting.add(a, Usage(1, 1, None)).cost_usd is None


def test_context_windows() -> None:
    assert accounting.context_window("gpt-4o-mini") == 128_000
    assert accounting.context_window("smollm2") == 2048
    assert accounting.context_window("SmolLM2-135M-Instruct.Q4_1") == 2048
    assert accounting.context_window("mystery-model") == 4096
    assert accounting.context_window("smollm2", 1024) == 1024
    assert accounting.completion_budget(2048) == 256
    assert accounting.completion_budget(128_000) == 512
    assert accounting.completion_budget(2048, 5000) == 1024  # never more than half the window


def test_message_counts_use_tiktoken() -> None:
    assert accounting.count_messages(["hello world"]) == count_tokens("hello world") + 4 + 3


def test_pessimistic_counter_allows_for_korean() -> None:
    ko = (BUNDLED_SOURCES / "raj-diary.ko.txt").read_text("utf-8")[:1000]
    en = (BUNDLED_SOURCES / "raj-diary.en.txt").read_text("utf-8")[:1000]
    assert accounting.pessimistic_counter(ko) > 1.5 * count_tokens(ko)
    assert accounting.pessimistic_counter(en) == count_tokens(en)
    assert accounting.counter_for("gpt-4o") is count_tokens
    assert accounting.counter_for("smollm2") is accounting.pessimistic_counter


def test_trim_keeps_whole_sentences_and_exact_offsets() -> None:
    file_text = (BUNDLED_SOURCES / "raj-diary.en.txt").read_text("utf-8")
    start = file_text.index("In 2017")
    end = file_text.index("failure is part of learning.") + len("failure is part of learning.")
    chunk = _chunk(file_text[start:end], start)
    cut = accounting.trim_chunk(chunk, 40, count_tokens)
    assert cut is not None and count_tokens(cut.text) <= 40
    assert cut.text == file_text[cut.start : cut.end]
    assert cut.text.endswith(("!", ".", "?", '"'))
    assert accounting.trim_chunk(chunk, 2, count_tokens) is None


def test_pack_fits_the_window() -> None:
    chunks = [_chunk("Sentence one is here. Sentence two is here. " * 20, 1000 * i) for i in range(4)]
    history = [{"role": "user", "content": "old " * 50}, {"role": "assistant", "content": "reply " * 50},
               {"role": "user", "content": "recent question"}]
    packed = accounting.pack(
        fixed_tokens=100, passages=chunks, history=history, window=800, reserve=200,
        block_tokens=lambda c: count_tokens(c.text) + 10, count=count_tokens,
    )
    assert packed.prompt_tokens <= 800 - 200
    assert packed.history[-1]["content"] == "recent question"  # newest first
    assert packed.dropped >= 1 and len(packed.passages) >= 1
    for c in packed.passages:
        assert c.end - c.start == len(c.text)


def test_pack_keeps_everything_when_it_fits() -> None:
    chunks = [_chunk("Short.", 0), _chunk("Also short.", 100)]
    packed = accounting.pack(
        fixed_tokens=50, passages=chunks, history=[], window=128_000, reserve=512,
        block_tokens=lambda c: count_tokens(c.text), count=count_tokens,
    )
    assert packed.passages == chunks and packed.dropped == 0 and not packed.trimmed
