"""agent.voice: the writer's third-person self-references become first person, outside quoted speech."""

from __future__ import annotations

from agent.voice import self_references, to_first_person

RAJ = ("Raj",)


def test_english_subject_possessive_and_his() -> None:
    assert to_first_person("That day, Raj learned: failure is part of learning.", RAJ) == (
        "That day, I learned: failure is part of learning."
    )
    assert to_first_person("Raj wrote in his notes: x.", RAJ) == "I wrote in my notes: x."
    assert to_first_person("From that day on, Raj's experiment plans changed.", RAJ) == (
        "From that day on, my experiment plans changed."
    )
    assert to_first_person("Raj's first instinct was skepticism.", RAJ) == "My first instinct was skepticism."
    assert to_first_person("The advisor told Raj to wait.", RAJ) == "The advisor told me to wait."


def test_quoted_speech_is_left_alone() -> None:
    text = 'He smiled and said, "So you\'ve seen it too, Raj. The world is about to change."'
    assert to_first_person(text, RAJ) == text
    assert self_references(text, RAJ) == []


def test_korean_particles() -> None:
    assert to_first_person("그날 Raj는 배웠다.", RAJ) == "그날 나는 배웠다."
    assert (
        to_first_person("Transformer 구조는 Raj가 배운 모든 걸 뒤집었다.", RAJ)
        == "Transformer 구조는 내가 배운 모든 걸 뒤집었다."
    )
    assert to_first_person('교수는 말했다. "Raj, 너도 봤구나."', RAJ) == '교수는 말했다. "Raj, 너도 봤구나."'


def test_no_names_no_change() -> None:
    assert to_first_person("Raj learned.", ()) == "Raj learned."
    assert self_references("Rajesh came.", RAJ) == []
