"""Knowledge step: tests for the lexical tokens (Kiwi for Korean, Snowball for English) in knowledge/text.py."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from knowledge.text import lexical_tokens, morphemes, stem_en


def test_korean_particles_and_endings_are_dropped() -> None:
    # The same noun under three particles gives one token; the ending of the verb is gone.
    for phrase in ("모델이 컸다", "모델을 키웠다", "모델은 작았다"):
        assert lexical_tokens(phrase)[0] == "모델"
    assert "이" not in lexical_tokens("스케일링이 중요하다")
    assert lexical_tokens("스케일링이 중요하다") == ["스케일링", "중요"]


def test_korean_question_words_and_light_verbs_are_not_tokens() -> None:
    toks = lexical_tokens("당신은 무엇을 했나요?")
    assert toks == []


def test_latin_words_inside_korean_take_the_english_path() -> None:
    toks = lexical_tokens("Gradient clipping 버그였다. GPU 16개로 training runs를 돌렸다")
    assert {"gradient", "clip", "버그", "gpu", "16", "train", "run"} <= set(toks)


def test_english_snowball_stems_and_stop_words() -> None:
    assert lexical_tokens("The runs were running") == ["run", "run"]
    assert stem_en("model’s") == stem_en("model's") == "model"
    # Acronym plurals meet their singular (Snowball alone keeps the s of "llms" and "gpus").
    assert stem_en("llms") == "llm" and stem_en("gpus") == "gpu"
    assert stem_en("bias") == stem_en("biases")


def test_morpheme_offsets_point_into_the_text() -> None:
    text = "그녀는 2015년에 베를린으로 이사했다."
    for m in morphemes(text):
        if m.tag in ("NNG", "NNP", "SN"):
            assert text[m.start : m.end] == m.form
    assert "베를린" in lexical_tokens(text)


def test_english_text_does_not_load_kiwi() -> None:
    code = (
        "import sys; from knowledge.text import lexical_tokens; lexical_tokens('plain English text');"
        "sys.exit(1 if 'kiwipiepy' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_tokens_are_the_same_from_many_threads() -> None:
    texts = [f"{i}번째 실험에서 모델이 학습을 멈췄다. Run {i} stopped." for i in range(40)]
    morphemes.cache_clear()
    serial = [lexical_tokens(t) for t in texts]
    morphemes.cache_clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lexical_tokens, texts))
    assert parallel == serial


def test_latin_tokens_share_with_an_english_question_what_kiwi_tokens_share() -> None:
    """On every Korean sentence of the bundled diary, against every English token of the English
    diary: the Kiwi-free tokens meet an English question exactly where lexical_tokens does."""
    from knowledge.config import BUNDLED_SOURCES
    from knowledge.text import has_hangul, latin_tokens, lexical_tokens, split_sentences

    english = set(lexical_tokens((BUNDLED_SOURCES / "raj-diary.en.txt").read_text("utf-8")))
    korean = (BUNDLED_SOURCES / "raj-diary.ko.txt").read_text("utf-8")
    sentences = [korean[a:b] for a, b in split_sentences(korean)]
    with_latin = [s for s in sentences if has_hangul(s) and any("a" <= c.lower() <= "z" for c in s)]
    assert len(with_latin) >= 5, "the probe needs Korean sentences with Latin words"
    for s in sentences:
        assert set(latin_tokens(s)) & english == set(lexical_tokens(s)) & english, s


def test_korean_about_is_no_search_term() -> None:
    # "에 대해" (about) frames a question; Kiwi gives its stem 대하, which matched any entry that
    # says "alignment에 대해" to "언러닝에 대해 어떻게 생각하세요?".
    assert lexical_tokens("언러닝(unlearning)에 대해 어떻게 생각하세요?") == ["언러닝", "unlearn"]
    assert "관하" not in lexical_tokens("alignment에 관해서 밤새 논쟁했다")


def test_a_quoted_title_ending_in_a_question_mark_does_not_end_the_sentence() -> None:
    # The intern's "... this LinkedIn popular paper - "Were RNNs All We Needed?" a seemingly ancient
    # idea in the age of Transformers." was cut after the title, and a Korean answer opened on
    # "a seemingly ancient idea ...".
    from knowledge.text import split_sentences

    text = 'I read the paper "Were RNNs All We Needed?" a seemingly ancient idea. He asked, "Why?" Then he left.'
    assert [text[a:b] for a, b in split_sentences(text)] == [
        'I read the paper "Were RNNs All We Needed?" a seemingly ancient idea.',
        'He asked, "Why?"',
        "Then he left.",
    ]
    # Notes written all in lower case still split at their full stops.
    notes = "went to the lab. the run failed again."
    assert [notes[a:b] for a, b in split_sentences(notes)] == ["went to the lab.", "the run failed again."]
