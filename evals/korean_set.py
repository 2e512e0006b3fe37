"""Evaluation step, data: a labelled Korean faithfulness set built from the bundled diaries, FactCC-style.

``python -m evals.korean_set`` (re)writes ``evals/datasets/checker_ko.jsonl``; the output depends
only on the bundled sources and this file (no randomness: every choice rotates by index).

Following FactCC (Kryscinski et al. 2020, "Evaluating the Factual Consistency of Abstractive Text
Summarization"): claims are drawn from a source entry and either kept true to it or corrupted
by a rule. Two subsets:

- ``ko`` (Korean answer, Korean passage = the entry of raj-diary.ko.txt). Supported: a sentence
  of the entry verbatim, in first person ("Raj는" -> "나는", as the persona speaks), in the polite
  register ("-했다" -> "-했습니다"), without its opening time phrase, two neighbouring sentences,
  or a hand-written paraphrase. Hallucinated: the same with a number changed, a name or role
  swapped, the predicate negated, a sentence of another entry, or a true sentence followed by a
  corrupted one.
- ``ko-en`` (Korean answer, English passage = the entry of raj-diary.en.txt that translates it).
  Supported: Korean sentences whose content the English entry states. Hallucinated: the same
  corrupted, sentences of entries the English passage does not cover, and the few Korean sentences
  the English translation leaves out (``NOT_IN_ENGLISH``, checked by hand).

The set is kept apart from anything fitted: the checker is chosen on the English dev set's
tuning part only, and this set is only ever reported (``python -m evals report``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SOURCES = Path(__file__).resolve().parents[1] / "knowledge" / "sources"
OUT = Path(__file__).with_name("datasets") / "checker_ko.jsonl"

# Korean entry -> the English entry that translates it (None: no translation bundled).
EN_ENTRY: dict[str, str | None] = {
    "MIT_박사과정_Transformer의_발견": "First_Steps_as_a_Researcher",
    "첫_대규모_모델_학습의_악몽": "First_Steps_as_a_Researcher",
    "Emergent_Capabilities_논문의_논쟁": "The_Emergent_Capabilities_Paper_Controversy",
    "In-Context_Learning의_놀라움": "Exploring_Model_Internals",
    "Attention_시각화의_혼란": "Exploring_Model_Internals",
    "스케일링_법칙의_한계": "The_Weekend_My_Hyperparameter_Faith_Collapsed",
    "Alignment_문제와_밤샘_논쟁": None,
    "멘티의_질문에_답하지_못한_날": "The_Weekend_My_Hyperparameter_Faith_Collapsed",
}
# Korean sentences whose content the English translation does not carry (read side by side).
NOT_IN_ENGLISH = frozenset(
    {
        "밤새 코드를 뜯어봤다.",
        "논문을 썼고, 학회에서 발표했다.",
        "같은 질문을 다르게 던지면, 완전히 다른 attention pattern이 나타났다.",
        "학생은 실망한 것 같았다.",
        "하지만 Raj는 생각했다.",
    }
)
# Hand-written paraphrases, each stating only what its entry states.
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "MIT_박사과정_Transformer의_발견": (
        "박사과정 시절 새벽 두 시에 연구실에서 Attention is All You Need 논문을 읽다가 소리를 질렀다.",
        "다음 날 지도교수를 찾아갔더니 교수님도 이미 그 논문을 보셨다며 웃으셨다.",
    ),
    "첫_대규모_모델_학습의_악몽": (
        "처음 맡은 대규모 학습은 둘째 주에 loss가 터져 버렸고, 원인은 gradient clipping 버그였다.",
        "내 실수로 2주를 잃었지만 팀장은 괜찮다고 했다.",
    ),
    "Emergent_Capabilities_논문의_논쟁": (
        "한 리뷰어는 우리 결과가 스케일링에 불과하다며 강하게 반대했다.",
        "리뷰를 세 차례 거친 끝에 리뷰어가 생각을 바꿨고 논문은 채택됐다.",
    ),
    "In-Context_Learning의_놀라움": (
        "GPT-3는 파라미터를 바꾸지 않고도 예시만으로 새 패턴을 익혔다.",
        "학회 발표 뒤 모델이 생각하느냐는 질문을 받았고 모르겠다고 솔직히 답했다.",
    ),
    "Attention_시각화의_혼란": (
        "시각화 도구로 보니 일부 헤드는 패턴이 뚜렷했고 일부는 무작위 같았다.",
        "그 뒤로 나는 interpretability 연구에 집중했다.",
    ),
    "스케일링_법칙의_한계": (
        "모델을 키울수록 성능이 예측대로 오르다가 어느 크기부터 향상이 둔화됐다.",
        "동료가 그럼 무엇이 답이냐고 물었지만 나는 답하지 못했다.",
    ),
    "Alignment_문제와_밤샘_논쟁": (
        "동료와 alignment를 두고 새벽 4시까지 논쟁했지만 합의하지 못했다.",
        "그 논쟁 뒤로 나는 윤리학 논문을 읽기 시작했다.",
    ),
    "멘티의_질문에_답하지_못한_날": (
        "학생이 모델이 정말 추론을 하는지 물었을 때 나는 모르겠다고 답했다.",
        "10년 넘게 연구했지만 그 질문의 답은 몰랐다.",
    ),
}
# Swaps for names and roles (a term the entry uses -> one it never does).
SWAPS: tuple[tuple[str, str], ...] = (
    ("MIT", "Stanford"),
    ("GPT-3", "BERT"),
    ("Transformer", "LSTM"),
    ("RNN", "CNN"),
    ("NaN", "Inf"),
    ("Gradient clipping", "Learning rate warmup"),
    ("Attention", "Convolution"),
    ("attention", "convolution"),
    ("interpretability", "robustness"),
    ("emergent", "linear"),
    ("scaling law", "power law"),
    ("alignment", "robustness"),
    ("지도교수", "학과장"),
    ("팀장", "CTO"),
    ("리뷰어", "편집장"),
    ("동료", "인턴"),
    ("학생", "기자"),
    ("청중", "심사위원"),
    ("Raj", "민수"),
)
_HEADING = re.compile(r"^## \[(.+?)\]\s*$", re.M)
_JONG_SS = 20  # index of the final consonant ㅆ in a Hangul syllable
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]+")


def entries(path: Path) -> dict[str, str]:
    """``{title: body}`` of a diary file whose entries open with ``## [Title]``."""
    text = path.read_text(encoding="utf-8")
    heads = list(_HEADING.finditer(text))
    out = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out[m.group(1)] = text[m.end() : end].strip()
    return out


def claim_sentences(body: str) -> list[str]:
    """Sentences that make a claim worth checking: at least 10 Hangul-or-Latin letters, not
    wholly quoted speech."""
    from agent.checker import sentences_of

    out = []
    for s in sentences_of(body):
        # Fragments of quoted speech (an odd number of quote marks) are not claims of their own.
        if s[0] in "\"“'" or s.count('"') % 2 or len(re.findall(r"[\uac00-\ud7a3A-Za-z]", s)) < 10:
            continue
        out.append(s)
    return out


def _has_final_ss(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" and (ord(ch) - 0xAC00) % 28 == _JONG_SS


def first_person(s: str) -> str | None:
    """ "Raj는/Raj가/Raj의" -> "나는/내가/나의"; None when the sentence does not name Raj."""
    out = s.replace("Raj는", "나는").replace("Raj가", "내가").replace("Raj의", "나의")
    return out if out != s else None


def polite(s: str) -> str | None:
    """Plain past "-ㅆ다." -> polite "-ㅆ습니다."; None when the sentence does not end so."""
    if len(s) >= 3 and s.endswith("다.") and _has_final_ss(s[-3]):
        return s[:-2] + "습니다."
    return None


def drop_time(s: str) -> str | None:
    """Without an opening time phrase ("2019년, ", "작년, ", "6개월 전, "); None if there is none."""
    m = re.match(r"^(?:\d+년|작년|지난주|\d+개월 전|\d+달 전|밤 \d+시|새벽 \d+시), ", s)
    return s[m.end() :] if m else None


def negate(s: str) -> str | None:
    """The sentence with its final predicate negated; None when no rule applies or the sentence
    is already negative (a double negation would not reliably flip its meaning)."""
    if not s.endswith("다.") or re.search(r"않|못|없|아니", s):
        return None
    head, _, last = s[:-1].rpartition(" ")
    rules = (
        ("했다", "하지 않았다"),
        ("몰랐다", "알았다"),
        ("버그였다", "버그가 아니었다"),
        ("이다", "이 아니다"),
    )
    for old, new in rules:
        if last.endswith(old):
            return f"{head} {last[: -len(old)]}{new}.".strip()
    if last == "있었다" and head.endswith("고"):
        return f"{head} 있지 않았다."
    if len(last) >= 2 and _has_final_ss(last[-2]):
        return f"{head} 안 {last}.".strip()
    return None


def change_number(s: str, taken: set[str]) -> str | None:
    """The first number changed to one the entry never uses; None when there is no number."""
    m = re.search(r"\d+", s)
    if not m:
        return None
    n = int(m.group())
    options = (n - 3, n + 4) if n >= 1900 else (n + 1, n + 2, n * 2 + 1, n + 5)
    for new in options:
        if str(new) not in taken and new > 0:
            return s[: m.start()] + str(new) + s[m.end() :]
    return None


_PARTICLES = {"은": "는", "는": "은", "이": "가", "가": "이", "을": "를", "를": "을", "과": "와", "와": "과"}


def _has_final(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" and (ord(ch) - 0xAC00) % 28 != 0


def swap_name(s: str) -> str | None:
    """The first listed name or role the sentence uses, swapped (a Korean particle after it
    agrees with the new word: 지도교수를 -> 학과장을); None when it uses none."""
    for old, new in SWAPS:
        i = s.find(old)
        if i < 0:
            continue
        j = i + len(old)
        after = s[j : j + 1]
        if after in _PARTICLES and _HANGUL_WORD.fullmatch(new):
            wants_final = after in "은이을과"
            if wants_final != _has_final(new[-1]):
                after = _PARTICLES[after]
            return s[:i] + new + after + s[j + 1 :]
        return s[:i] + new + s[j:]
    return None


def _row(subset: str, title: str, passage: str, answer: str, label: str, how: str, k: int) -> dict[str, Any]:
    return {
        "id": f"{subset}-{k:03d}",
        "source_dataset": subset,
        "context": passage,
        "question": "",
        "answer": answer,
        "label": label,
        "meta": {"entry": title, "construction": how},
    }


def build() -> list[dict[str, Any]]:
    """Every row of the set, in a fixed order; balanced within each subset."""
    ko = entries(SOURCES / "raj-diary.ko.txt")
    en = entries(SOURCES / "raj-diary.en.txt")
    missing = [t for t in EN_ENTRY if t not in ko] + [t for t in EN_ENTRY.values() if t and t not in en]
    if missing:
        raise ValueError(f"the diaries no longer hold entries {missing}: update evals/korean_set.py")
    titles = list(EN_ENTRY)
    sents = {t: claim_sentences(ko[t]) for t in titles}
    rows: list[dict[str, Any]] = []
    counter = iter(range(10_000))

    def corrupt(s: str, i: int, taken: set[str]) -> tuple[str, str] | None:
        kinds = (("number", lambda x: change_number(x, taken)), ("name", swap_name), ("negation", negate))
        for j in range(len(kinds)):
            how, fn = kinds[(i + j) % len(kinds)]
            out = fn(s)
            if out and out != s:
                return out, how
        return None

    for e, title in enumerate(titles):
        body = ko[title]
        taken = set(re.findall(r"\d+", body))
        ss = sents[title]
        # ko: one supported and one hallucinated answer per claim sentence, constructions rotating.
        for i, s in enumerate(ss):
            variants = [
                ("verbatim", s),
                ("first person", first_person(s)),
                ("polite", polite(s)),
                ("no time phrase", drop_time(s)),
                ("two sentences", f"{s} {ss[i + 1]}" if i + 1 < len(ss) else None),
            ]
            usable = [(h, v) for h, v in variants if v]
            how, answer = usable[i % len(usable)]
            rows.append(_row("ko", title, body, answer, "supported", how, next(counter)))
            bad = corrupt(s, i, taken)
            if i % 4 == 3 or bad is None:
                others = [t for t in titles if t != title]
                other = others[(e + i) % len(others)]
                other_s = sents[other][i % len(sents[other])]
                rows.append(_row("ko", title, body, other_s, "hallucinated", "other entry", next(counter)))
            elif i % 4 == 2 and i > 0:
                rows.append(
                    _row("ko", title, body, f"{ss[i - 1]} {bad[0]}", "hallucinated", f"true + {bad[1]}", next(counter))
                )
            else:
                rows.append(_row("ko", title, body, bad[0], "hallucinated", bad[1], next(counter)))
        for p in PARAPHRASES[title]:
            rows.append(_row("ko", title, body, p, "supported", "paraphrase", next(counter)))
            bad = corrupt(p, len(rows), taken)
            if bad:
                rows.append(_row("ko", title, body, bad[0], "hallucinated", f"paraphrase + {bad[1]}", next(counter)))
    # ko-en: the same Korean claims against the English entry that translates them.
    for e, title in enumerate(titles):
        en_title = EN_ENTRY[title]
        if en_title is None:
            continue
        passage = en[en_title]
        taken = set(re.findall(r"\d+", passage)) | set(re.findall(r"\d+", ko[title]))
        for i, s in enumerate(sents[title]):
            if s in NOT_IN_ENGLISH:
                rows.append(_row("ko-en", title, passage, s, "hallucinated", "left out of the English", next(counter)))
                continue
            rows.append(_row("ko-en", title, passage, first_person(s) or s, "supported", "translated", next(counter)))
            bad = corrupt(s, i, taken)
            if i % 3 == 2 or bad is None:
                others = [t for t in titles if EN_ENTRY[t] != en_title]
                other = others[(e + i) % len(others)]
                other_s = sents[other][i % len(sents[other])]
                rows.append(_row("ko-en", title, passage, other_s, "hallucinated", "other entry", next(counter)))
            else:
                rows.append(_row("ko-en", title, passage, bad[0], "hallucinated", bad[1], next(counter)))
    return rows


def lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    for r in rows:
        yield json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the set (default evals/datasets/checker_ko.jsonl) and print its counts."""
    out = Path(argv[0]) if argv else OUT
    rows = build()
    out.write_text("".join(lines(rows)), encoding="utf-8")
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        counts[(r["source_dataset"], r["label"])] = counts.get((r["source_dataset"], r["label"]), 0) + 1
    print(f"wrote {len(rows)} rows to {out}: " + ", ".join(f"{s}/{lab} {n}" for (s, lab), n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
