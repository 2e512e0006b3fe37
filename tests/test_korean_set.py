"""Evaluation step: tests for the FactCC-style Korean labelled set (evals.korean_set)."""

from __future__ import annotations

import json
from collections import Counter

from evals import korean_set as ks


def test_the_committed_set_is_what_the_generator_writes() -> None:
    assert ks.OUT.read_text(encoding="utf-8") == "".join(ks.lines(ks.build()))


def test_both_subsets_are_near_balanced_and_ids_unique() -> None:
    rows = [json.loads(line) for line in ks.OUT.read_text(encoding="utf-8").splitlines()]
    counts = Counter((r["source_dataset"], r["label"]) for r in rows)
    for subset in ("ko", "ko-en"):
        sup, hal = counts[(subset, "supported")], counts[(subset, "hallucinated")]
        assert sup >= 30 and hal >= 30 and abs(sup - hal) <= 0.15 * (sup + hal)
    assert len({r["id"] for r in rows}) == len(rows)


def test_verbatim_answers_are_in_their_passage_and_others_not() -> None:
    rows = ks.build()
    for r in rows:
        how = r["meta"]["construction"]
        if r["source_dataset"] == "ko" and how == "verbatim":
            assert r["answer"] in r["context"]
        if how in {"number", "name", "negation", "other entry"} and r["source_dataset"] == "ko":
            assert r["answer"] not in r["context"], r
        if r["source_dataset"] == "ko-en":
            assert not any("\uac00" <= ch <= "\ud7a3" for ch in r["context"])  # the passage is English


def test_corruptions() -> None:
    assert ks.negate("2주차에 Loss가 폭발했다.") == "2주차에 Loss가 폭발하지 않았다."
    assert ks.negate("마지막에 리뷰어가 입장을 바꿨다.") == "마지막에 리뷰어가 입장을 안 바꿨다."
    assert ks.negate("원인을 찾지 못했다.") is None  # already negative
    assert ks.change_number("16개 GPU, 3주 예상 학습 시간.", {"16", "3", "17"}) == "18개 GPU, 3주 예상 학습 시간."
    assert ks.change_number("2019년, 첫 학습.", set()) == "2016년, 첫 학습."
    assert ks.swap_name("다음 날 지도교수를 찾아갔다.") == "다음 날 학과장을 찾아갔다."  # particle agrees
    assert ks.swap_name("Raj는 울었다.") == "민수는 울었다."
    assert ks.swap_name("아무 이름도 없다.") is None
    assert ks.polite("데이터를 다시 분석했다.") == "데이터를 다시 분석했습니다."
    assert ks.first_person("NaN을 보며 Raj는 패닉에 빠졌다.") == "NaN을 보며 나는 패닉에 빠졌다."
    assert ks.drop_time("2019년, 첫 대규모 모델 학습을 맡았다.") == "첫 대규모 모델 학습을 맡았다."
