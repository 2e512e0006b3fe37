"""Hybrid retrieval over the real index: English, Korean and cross-lingual questions find their entry."""

from __future__ import annotations

from typing import Any

import pytest

from agent.lexical import BM25
from knowledge.text import lexical_tokens

CASES = [
    # (persona, question, source, a phrase of the entry that answers)
    ("raj", "What went wrong in your first big training run?", "raj-diary.en.txt", "gradient clipping bug"),
    ("raj", "What did you learn when a model had supposedly unlearned a dataset?", "raj-diary.en.txt", "unlearned"),
    ("raj", "Tell me about the grokking graph at ICML", "raj-diary.en.txt", "grokking"),
    ("raj", "첫 대규모 모델 학습에서 무엇이 잘못됐나요?", "raj-diary.ko.txt", "Gradient clipping"),
    ("raj", "동료와 alignment에 대해 밤새 논쟁한 이야기를 해 주세요", "raj-diary.ko.txt", "alignment"),
    # Cross-lingual: the answer exists only in the other language's diary.
    ("raj", "그로킹 그래프를 다시 봤을 때 무엇을 깨달았나요?", "raj-diary.en.txt", "grokking"),
    ("raj", "하이퍼파라미터 실험에서 무엇을 깨달았나요?", "raj-diary.en.txt", "hyperparameter"),
    ("raj", "What did you argue about all night with a colleague regarding alignment?", "raj-diary.ko.txt", "alignment"),
    ("intern", "What did the internship teach you about reproducibility?", "essay-internship-reflections.txt", "reproduce"),
    ("newcomer", "신경망에 대한 호기심은 어디서 시작됐나요?", "essay-from-curiosity-to-research.txt", "YouTube"),
    ("diarist", "Why were RNNs hard to parallelize?", "research-diary-readme.txt", "parallel"),
]


@pytest.mark.parametrize(("persona", "question", "source", "phrase"), CASES, ids=[c[1][:40] for c in CASES])
def test_right_entry_in_top_3(agent: Any, persona: str, question: str, source: str, phrase: str) -> None:
    hits = agent.retriever.retrieve(question, 3, persona)
    assert any(h.chunk.source == source and phrase.lower() in h.chunk.text.lower() for h in hits), [
        (h.chunk.source, h.chunk.title) for h in hits
    ]


def test_retrieval_is_restricted_to_the_persona(agent: Any) -> None:
    for persona, sources in [("intern", {"essay-internship-reflections.txt"}), ("raj", {"raj-diary.en.txt", "raj-diary.ko.txt"})]:
        hits = agent.retriever.retrieve("What did you learn about research?", 10, persona)
        assert hits and {h.chunk.source for h in hits} <= sources


def test_no_near_duplicates(agent: Any) -> None:
    hits = agent.retriever.retrieve("scaling law experiments", 8, "raj")
    texts = [set(lexical_tokens(h.chunk.text)) for h in hits]
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            overlap = len(texts[i] & texts[j]) / max(1, len(texts[i] | texts[j]))
            assert overlap < 0.8


def test_bm25_tokenises_korean_particles() -> None:
    bm25 = BM25(["스케일링이 답이 아닐 수도 있습니다", "Gradient clipping 버그였다", "The loss exploded"])
    top = bm25.top("스케일링은 답인가요", 1)
    assert top and top[0][0] == 0
    top = bm25.top("exploding losses", 1)
    assert top and top[0][0] == 2
