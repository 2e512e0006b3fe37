"""Cross-lingual term bridge (agent.bridge): a question's foreign words meet the writings' own words."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agent.bridge import source_words, target_words, translate_rows


def test_source_words_are_the_questions_content_words_and_their_target_language() -> None:
    lang, words = source_words("박사과정과 인턴십의 차이는 뭐였나요?")
    assert lang == "en" and "인턴십" in words and "차이" in words and "뭐" not in words
    lang, words = source_words("Should we trust a sudden big jump in benchmark scores?")
    assert lang == "ko" and "benchmark" in words and "should" not in words and "we" not in words


def test_target_words_keep_one_token_words_of_the_other_language_sorted() -> None:
    words, tokens = target_words("en", "the internship taught me the difference. internships!", [])
    assert words == ["difference", "internship", "internships", "taught"]
    assert tokens[1] == tokens[2]  # one lexical token for the singular and the plural
    words, _ = target_words("ko", "", ["벤치마크", "모", "model", "점수"])
    assert words == ["벤치마크", "점수"]


def test_translate_takes_the_nearest_token_only_with_a_margin_over_the_next() -> None:
    words = ["internship", "internships", "mentors", "career"]
    tokens = ["internship", "internship", "mentor", "career"]
    targets = np.eye(4, dtype=np.float32)
    near = np.asarray([[0.90, 0.89, 0.20, 0.10]], dtype=np.float32)  # the two forms of one token lead
    assert translate_rows(near, targets, words, tokens, margin=0.01) == ["internship"]
    tied = np.asarray([[0.10, 0.0, 0.895, 0.89]], dtype=np.float32)  # two tokens within the margin
    assert translate_rows(tied, targets, words, tokens, margin=0.01) == [None]
    assert translate_rows(tied, targets, words, tokens, margin=0.001) == ["mentors"]
    assert translate_rows(np.zeros((0, 4), dtype=np.float32), targets, words, tokens) == []


def test_a_korean_question_to_english_writings_meets_their_words(agent: Any) -> None:
    """With the real embedder: the intern's English essay, asked in Korean; Raj's Korean question
    about the weekend he told only in his English diary; words the writings already use (Raj's
    Korean "스케일링") are not translated, nor is an English question to writings in English."""
    assert "internship" in agent.bridge("intern", "박사과정과 인턴십의 차이는 뭐였나요?")
    raj = agent.bridge("raj", "주말에 새 scaling law 논문대로 하이퍼파라미터 실험을 해 보셨다면서요, 결과가 어땠어요?")
    assert "hyperparameter" in raj
    assert agent.bridge("raj", "스케일링이 답이라고 생각하세요?") == []
    # An English question to writings that hold English is not bridged into Korean.
    assert agent.bridge("raj", "Tell me about your years at DeepMind.") == []


def test_two_nouns_side_by_side_are_also_read_as_one_compound() -> None:
    """compounds(): adjacent nouns, a noun-forming suffix kept with its noun (가능 + 성), written
    without the space; a particle or a verb between two nouns ends the run."""
    from agent.bridge import compounds

    found = compounds("해석 가능성 연구의 목적은 모델 성능을 높이는 건가요?")
    assert ("해석가능성", "해석", "가능성") in found and ("가능성연구", "가능성", "연구") in found
    assert ("모델성능", "모델", "성능") in found
    assert not any(c.startswith("연구목적") for c, _, _ in found)  # 의 between them
    assert compounds("Is interpretability about performance?") == []


def test_a_compound_that_translates_stands_for_its_parts(agent: Any) -> None:
    """With the real embedder and dictionary: 해석 -> "explanations" and 가능 -> "possibilities"
    each alone; the compound 해석가능성 is the newcomer's "interpretability", which replaces both."""
    words = agent.bridge("newcomer", "해석 가능성 연구의 목적은 모델 성능을 높이는 건가요?")
    assert "interpretability" in words
    assert "explanations" not in words and "possibilities" not in words
    # A compound whose translation is only its second noun's (환각문제 -> "problems", as 문제 ->
    # "problem") stands for nothing more: the first noun keeps its own.
    words = agent.bridge("diarist", "환각 문제는 왜 생기나요?")
    assert "hallucinations" in words, words


def test_a_translation_is_matched_as_the_token_it_has_alone(agent: Any) -> None:
    """score_windows(extra=...): the bridge's Korean word 벤치마크, read in a run of other words, is
    split by Kiwi (벤치, 마크) and would match no Korean sentence; its own token does."""
    from agent.compose import Sentence, SentenceCache, Window, score_windows
    from knowledge.text import lexical_tokens

    assert "벤치마크" not in lexical_tokens("Trust a jump in scores? 돌아가 벤치마크")
    text = "벤치마크 점수가 하룻밤 사이에 5점이나 올랐다."
    win = Window((Sentence(text=text, start=0, end=len(text), passage=0, lang="ko", position=0),))
    q = "Should we trust a sudden big jump in benchmark scores?"
    vec = agent.embedder.embed_query(q)
    idf = {"벤치마크": 2.0, "점수": 1.0}
    cache = SentenceCache(agent.embedder)
    plain = score_windows(q, vec, [win], cache, idf)[0]
    bridged = score_windows(q, vec, [win], cache, idf, extra=tuple(lexical_tokens("벤치마크")))[0]
    assert plain.lexical == 0.0 and bridged.lexical > 0.0


def test_a_hub_target_loses_to_the_translation_once_its_hubness_is_discounted() -> None:
    """translate_rows(hub=...): CSLS. A target close to every source-language word leads on cosine and
    drops behind the right word once half its hubness is subtracted; hubness is the mean cosine to
    the k nearest reference words."""
    from agent.bridge import hubness

    words, tokens = ["blue1brown", "interest", "theory"], ["blue1brown", "interest", "theory"]
    targets = np.eye(3, dtype=np.float32)
    source = np.asarray([[0.90, 0.88, 0.10]], dtype=np.float32)
    assert translate_rows(source, targets, words, tokens) == ["blue1brown"]
    reference = np.asarray([[0.9, 0.1, 0.1], [0.85, 0.0, 0.2], [0.8, 0.2, 0.0]], dtype=np.float32)
    hub = hubness(targets, reference, k=2)
    assert hub.shape == (3,) and hub[0] == pytest.approx(0.875) and hub[1] == pytest.approx(0.15)
    assert translate_rows(source, targets, words, tokens, hub=hub) == ["interest"]
    assert hubness(targets, np.zeros((0, 3), dtype=np.float32)).tolist() == [0.0, 0.0, 0.0]


def test_the_reference_sample_is_the_bundled_writings_words_of_one_language() -> None:
    from agent.bridge import reference_words

    ko, en = reference_words("ko"), reference_words("en")
    assert ko and en and len(set(ko)) == len(ko) and len(en) <= 400
    assert "모델" in ko and all(any("가" <= c <= "힣" for c in w) for w in ko)
    assert "research" in en and not any(any("가" <= c <= "힣" for c in w) for w in en)


def test_a_dictionary_translation_wins_without_a_margin_and_only_among_its_glosses() -> None:
    """translate_rows(allowed=...): the dictionary's equivalents choose among the writings' words, and the
    embedder ranks only those; a row without a gloss among the targets falls back to the margin."""
    words = ["overwhelming", "rapid", "industrial", "career"]
    tokens = ["overwhelm", "rapid", "industri", "career"]
    targets = np.eye(4, dtype=np.float32)
    rows = np.asarray([[0.880, 0.885, 0.1, 0.1], [0.1, 0.1, 0.50, 0.90]], dtype=np.float32)
    # Without the dictionary: "rapid" leads "overwhelming" by less than the margin; "career" wins.
    assert translate_rows(rows, targets, words, tokens, margin=0.01) == [None, "career"]
    allowed = [frozenset({"overwhelm", "crush"}), frozenset({"industri"})]
    assert translate_rows(rows, targets, words, tokens, margin=0.01, allowed=allowed) == ["overwhelming", "industrial"]
    # A word without a dictionary entry (None) is left to the embedder and its margin; a word the
    # dictionary knows whose equivalents the writings lack is not translated: "career" leads row 1
    # by far, and still is no translation of a word the dictionary says means "factory".
    assert translate_rows(rows, targets, words, tokens, margin=0.01, allowed=[None, None]) == [None, "career"]
    factory = [None, frozenset({"factori"})]
    assert translate_rows(rows, targets, words, tokens, margin=0.01, allowed=factory) == [None, None]
    # Derived forms that Snowball stems apart still meet: "verification" (verif) and "verify" (verifi).
    allowed = [frozenset({"verif"}), None]
    verify = translate_rows(
        rows, targets, ["verify", "rapid", "industrial", "career"], ["verifi", *tokens[1:]], 0.01, None, allowed
    )
    assert verify == ["verify", "career"]


def test_the_dictionary_gives_one_word_equivalents_both_ways() -> None:
    from agent.bridge import dictionary, glosses

    ko_en, en_ko = dictionary()
    assert len(ko_en) > 10_000 and len(en_ko) > 5_000
    assert "theori" in glosses("이론", "en") and "overwhelm" in glosses("압도", "en")
    assert glosses("착시", "en") == frozenset()  # only "optical illusion": two words, no equivalent
    assert glosses("인턴십", "en") is None  # no entry
    assert "주말" in glosses("weekend", "ko")
    assert all(len(w) >= 2 for w in ko_en)


def test_a_korean_word_the_embedder_alone_missed_is_bridged_by_the_dictionary(agent: Any) -> None:
    """With the real embedder and dictionary: "압도" (overwhelm) and "산업체" (industry) meet the
    intern's English essay; the embedder alone took neither (no lead over the next word)."""
    assert "overwhelming" in agent.bridge("intern", "분야의 속도에 압도될 때 가장 도움이 되는 건 뭐라고 보세요?")
    assert "industrial" in agent.bridge("intern", "박사과정 중 산업체 경험은 어떤 의미가 있다고 보세요?")
    # 성공 (success) is a word the dictionary knows and Raj's English never uses: no translation,
    # where the embedder alone took its neighbour "lucky".
    assert agent.bridge("raj", "unlearning으로 문제 데이터를 완전히 지우는 데 성공하셨다면서요?") == []


def test_an_english_word_the_writer_used_only_in_korean_is_known_across() -> None:
    """known_across: "problem" is 문제 and "debate" is 논쟁 in the Korean Learners' Dictionary; writings
    whose tokens hold those headwords use the words. A verb's headword is never a token whole
    ("run" -> 달려가다), a word the writings use is not reported, and a Korean question gets none."""
    from agent.bridge import known_across
    from knowledge.text import lexical_tokens

    vocabulary = frozenset(lexical_tokens("3개월 전, 동료와 alignment에 대해 밤새 논쟁했다. 이건 기술 문제가 아니야."))
    question = "Is alignment a technical problem, or a debate we run in circles?"
    known = known_across(question, vocabulary)
    assert {"problem", "debat"} <= known and "run" not in known and "align" not in known
    assert known_across("이건 기술 문제인가요?", vocabulary) == frozenset()
    assert known_across(question, frozenset()) == frozenset()
    # With the Korean words they stand for: the terms the question shares with the Korean writings.
    from agent.bridge import across

    assert across(question, vocabulary)["debat"] == ("논쟁",) and across(question, vocabulary)["problem"] == ("문제",)


def test_a_loanword_or_name_spelled_in_hangul_meets_the_english_word_it_spells() -> None:
    """Back-transliteration by consonant-class keys: the Korean spelling of an English word has
    the English word's key (r after a vowel dropped, "ch" either ㅊ or ㅋ, a plural's "s" aside);
    a key of two classes says too little, and one matching too many words is no answer."""
    from agent.bridge import MAX_SPELLINGS, hangul_key, latin_keys, transliterated

    for hangul, english in [
        ("그로킹", "grokking"),
        ("카파시", "karpathy"),
        ("언러닝", "unlearning"),
        ("인턴십", "internship"),
        ("크리스", "chris"),
        ("어텐션", "attention"),
        ("트랜스포머", "transformer"),
    ]:
        assert hangul_key(hangul) in latin_keys(english), (hangul, english)
    assert hangul_key("그로킹") not in latin_keys("growing")
    words = ["grokking", "hallucinations", "copies", "gaps", "gpus", "karpathy", "neel"]
    tokens = ["grok", "hallucin", "copi", "gap", "gpus", "karpathi", "neel"]
    assert transliterated("그로킹", words, tokens) == {"grok"}
    assert transliterated("할루시네이션", words, tokens) == {"hallucin"}
    assert transliterated("카파시", words, tokens) == {"copi", "gap", "gpus", "karpathi"}  # the embedder picks
    assert transliterated("닐", words, tokens) is None  # N, L: too short a key
    many = [f"kap{i}s" for i in range(MAX_SPELLINGS + 1)]
    assert transliterated("카파시", many, many) is None


def test_a_short_spelling_confirms_the_embedders_pick_but_finds_nothing_alone() -> None:
    """agent.bridge.spells: a key of two classes (닐: N, L) is too short to search the writings by,
    but it tells a name the embedder chose (닐 -> "neel") from a word it chose by meaning."""
    from agent.bridge import spells

    assert spells("닐", "neel") and spells("난다", "nanda")
    assert spells("그로킹", "grokking")
    assert not spells("닐", "lilian")  # L, L, N
    assert not spells("영상", "images")
    assert not spells("나", "na")  # one class says nothing


def test_a_korean_name_the_dictionary_lacks_is_matched_by_spelling(agent: Any) -> None:
    """닐 난다: both words are too short for a search by key, the embedder finds "neel" and "nanda",
    and their spelling agrees: the writer's own words (agent.bridge.spelled), so the BM25 side
    reads them too."""
    pairs = agent._bridge(agent.retriever.index("newcomer"), "닐 난다에 대해 어떻게 생각하세요?")
    assert ("닐", "neel", True) in pairs and ("난다", "nanda", True) in pairs, pairs


def test_korean_spellings_of_names_and_loanwords_reach_the_english_writings(agent: Any) -> None:
    """With the real dictionary and embedder: words krdict lacks and the embedder alone missed."""
    assert "grokking" in agent.bridge("raj", "그로킹에 대해 어떻게 생각하세요?")
    assert "unlearning" in agent.bridge("raj", "언러닝은 정말 잊는 건가요?")
    assert "karpathy" in agent.bridge("diarist", "카파시에 대해 어떻게 생각하세요?")


def test_only_a_spelling_makes_a_question_word_one_the_writer_used() -> None:
    """agent.bridge.spelled: the tokens of question words that spell a word of the writings in the
    other script; a translation by meaning is not the writer's word."""
    from agent.bridge import spelled

    assert spelled([("그로킹", "grokking", True), ("세계", "world", False)]) == {"그로킹"}
    assert spelled([("세계", "world", False)]) == frozenset()


def test_a_korean_view_question_naming_an_english_term_by_its_hangul_spelling_is_answered(agent: Any) -> None:
    """그로킹 is the word of Raj's English grokking entry, so the question is not refused as one about
    a word he never used; a name he never wrote stays refused."""
    answer = agent.ask("그로킹에 대해 어떻게 생각하세요?", persona="raj", backend="extractive")
    assert not answer.abstained, answer.text
    assert any("Grokking" in c.title for c in answer.citations), [c.title for c in answer.citations]
    assert agent.ask("크리스 올라에 대해 어떻게 생각하세요?", persona="raj", backend="extractive").abstained


def test_a_name_spelled_in_hangul_finds_and_leads_with_its_entry(agent: Any) -> None:
    """The Hangul spelling's English word joins the BM25 query (agent.pipeline), and an entry whose
    windows hold the question's terms leads when the view ranking's lead holds none of them
    (lead_with_terms): the diarist's section on Karpathy, the intern's ServiceNow line."""
    answer = agent.ask("카파시에 대해 어떻게 생각하세요?", persona="diarist", backend="extractive")
    assert answer.citations and answer.citations[0].title == "Andrej Karpathy", answer.text
    answer = agent.ask("인턴십은 어디에서 하셨어요?", persona="intern", backend="extractive")
    assert answer.citations and "ServiceNow" in answer.citations[0].quote, answer.text


def test_a_view_question_in_a_language_the_writings_lack_is_ranked_by_its_translations_too(agent: Any) -> None:
    """Agent._with_translations: the question's vector plus that of its words' translations, each
    weighted alike, at unit length; the vector itself when nothing was translated. The view
    ranking reads it: a Korean question to the intern's English essay about being overwhelmed by
    the field's pace now quotes the paragraph that answers it."""
    import numpy as np

    question = "빠르게 변하는 분야에 압도될 때 무엇이 도움이 되나요?"
    vector = np.asarray(agent.embedder.embed_query(question), dtype=np.float64)
    pairs = agent._bridge(agent.retriever.index("intern"), question)
    assert any(word == "overwhelming" for _, word, _ in pairs), pairs
    both = np.asarray(agent._with_translations(vector, pairs))
    assert abs(np.linalg.norm(both) - 1.0) < 1e-5
    assert 0.5 < float(both @ vector / np.linalg.norm(vector)) < 0.999
    assert agent._with_translations(vector, []) == list(vector)
    answer = agent.ask(question, persona="intern", backend="extractive")
    assert any("community, collaboration" in c.quote for c in answer.citations), answer.text
