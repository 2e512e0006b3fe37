"""agent.views: the view inventory is the sentences that state a position, with entry and date."""

from __future__ import annotations

from typing import Any

from agent.views import build_inventory, states_view
from knowledge.types import Chunk

DIARY = (
    "Last year, I ran scaling law experiments. Performance improved predictably. At the team meeting, I said, "
    '"Scaling might not be the answer." A colleague asked, "Then what is?"'
)
KO = '3개월 전, 동료와 alignment에 대해 밤새 논쟁했다. 하지만 Raj는 깨달았다. "이건 기술 문제가 아니야. 철학 문제야."'


def _chunk(text: str, start: int = 0, title: str = "Scaling", cid: str = "c1", lang: str = "en") -> Chunk:
    return Chunk(cid, "raj", "d.txt", title, start, start + len(text), text, lang, "h")  # type: ignore[arg-type]


def test_view_sentences_are_found_with_offsets_and_the_entrys_date() -> None:
    views = build_inventory([_chunk(DIARY, start=100)])
    assert [v.text for v in views] == ['At the team meeting, I said, "Scaling might not be the answer."']
    v = views[0]
    assert DIARY[v.start - 100 : v.end - 100] == v.text and v.when == "Last year" and v.title == "Scaling"


def test_korean_views_keep_quoted_speech_whole() -> None:
    views = build_inventory([_chunk(KO, title="Alignment", lang="ko")])
    texts = [v.text for v in views]
    assert '"이건 기술 문제가 아니야. 철학 문제야."' in texts and "하지만 Raj는 깨달았다." in texts
    assert all(v.when == "3개월 전" for v in views)


def test_narration_is_not_a_view() -> None:
    assert not states_view("Performance improved predictably.")
    assert not states_view("16 GPUs, estimated 3-week training time.")
    assert states_view("I am skeptical that scaling language modeling alone leads to AGI.")
    assert states_view("Admitting you don't know—that's the professor's job.")


def test_hedges_attitude_and_evaluative_superlatives_state_a_view() -> None:
    # Likelihood, affect and evaluation (Hyland 2005) mark a stance as "I believe" does.
    assert states_view("LLMs will likely remain useful as components.")
    assert states_view("I would get frustrated with methods that ran expensive updates for marginal gains.")
    assert states_view("You're missing out on some of the clearest explanations available anywhere.")
    # A bare "I don't know" states no position on anything in particular.
    assert not states_view("Honestly... I don't know.")
    assert not states_view("I watched the series on neural networks last spring.")


def test_deterministic() -> None:
    chunks = [_chunk(DIARY), _chunk(KO, start=500, title="Alignment", cid="c2", lang="ko")]
    assert build_inventory(chunks) == build_inventory(list(reversed(chunks)))


def test_a_large_personas_view_question_weighs_only_the_views_of_the_chunks_the_search_ranks(
    agent_factory: Any, monkeypatch: Any
) -> None:
    """Above VIEW_POOL_CHUNKS, views_first embeds the views of the searched chunks only (not the
    whole inventory, nor a views x views matrix of it), and still leads with the entry that states
    the view; at or below it, every view is weighed."""
    import agent.pipeline as pipeline

    question = "What do you think of RLHF as a way to align models?"
    small = agent_factory()
    vector = small.embedder.embed_query(question)
    passages = small.retriever.retrieve(question, 5, "raj", vector=vector)
    idx = small.retriever.index("raj")
    chunks, views = small._view_pool("raj", question, vector, passages)
    assert chunks is idx.chunks and views is idx.views

    monkeypatch.setattr(pipeline, "VIEW_POOL_CHUNKS", 3)
    large = pipeline.Agent(small.settings)  # its own retriever (build_agent keeps one Agent per Settings)
    large.retriever.depth = 1  # the search's first of each language (20 by default)
    embedded: list[int] = []
    embed = large.sentences.embed

    def count(texts: Any) -> Any:
        embedded.append(len(texts))
        return embed(texts)

    monkeypatch.setattr(large.sentences, "embed", count)
    pool, _ = large._view_pool("raj", question, vector, passages)
    lidx = large.retriever.index("raj")
    assert 3 < len(pool) < lidx.lexical.n and {r.chunk.id for r in passages} <= {c.id for c in pool}
    ranked, _ = large.views_first("raj", question, vector, passages)
    # The pool's views, less the written answers to questions this one does not ask (asked_here).
    assert len(embedded) == 1 and 0 < embedded[0] <= len(build_inventory(pool)) < len(lidx.views)
    assert ranked[0].chunk.title == "Alignment 문제와 밤샘 논쟁"


def _retrieved(title: str, cid: str, start: int) -> Any:
    from knowledge.types import Retrieved

    return Retrieved(chunk=_chunk("One sentence here. Another one there.", start, title, cid), score=0.0)


def _window(passage: int, score: float) -> Any:
    from agent.compose import Scored, Sentence, Window

    sentence = Sentence("One sentence here.", 0, 18, passage, "en", 0)
    return Scored(Window((sentence,)), score, 0.8, score, 0.0)


def test_settle_lead_fuses_the_view_ranking_with_the_window_scores() -> None:
    """An entry the windows rank first and the view ranking second overtakes one the view ranking
    puts first but the windows third; an entry's chunks stay together and in order."""
    from agent.pipeline import settle_lead

    passages = [
        _retrieved("A", "a1", 0),
        _retrieved("B", "b1", 100),
        _retrieved("A", "a2", 200),
        _retrieved("C", "c1", 300),
    ]
    scored = [_window(0, 0.01), _window(1, 0.09), _window(3, 0.05)]
    settled = settle_lead(passages, scored)
    assert [r.chunk.id for r in settled] == ["b1", "a1", "a2", "c1"]


def test_settle_lead_keeps_the_view_rankings_lead_on_a_tie_or_without_windows() -> None:
    from agent.pipeline import settle_lead

    passages = [_retrieved("A", "a1", 0), _retrieved("B", "b1", 100)]
    # A: view rank 0, window rank 1; B: view rank 1, window rank 0 -> the same fused score.
    assert [r.chunk.id for r in settle_lead(passages, [_window(0, 0.01), _window(1, 0.09)])] == ["a1", "b1"]
    assert [r.chunk.id for r in settle_lead(passages, [])] == ["a1", "b1"]


def test_an_entry_is_named_by_its_whole_title_as_a_name() -> None:
    from agent.pipeline import names_entry

    assert names_entry("What do you think of Yann LeCun?", "Yann LeCun")
    assert names_entry("How would you characterise OpenAI's research priorities?", "OpenAI")
    assert names_entry("OpenAI의 연구 우선순위를 어떻게 보세요?", "OpenAI")
    # The title's words as ordinary words, or only part of the title: not named.
    assert not names_entry("What is your view?", "My view")
    assert not names_entry("What's your view of the field?", "My view")
    assert not names_entry("What do you think of Anthropic?", "Anthropic (again)")
    assert not names_entry("What do you think of Yann?", "Yann LeCun")


def test_speech_is_a_view_only_when_the_writer_says_it() -> None:
    from agent.views import speaker_is_other

    assert speaker_is_other("One reviewer strongly objected.")
    assert speaker_is_other("A colleague asked,")
    assert speaker_is_other("리뷰어 중 한 명이 강하게 반대했다.")
    assert not speaker_is_other("At the team meeting, I said,")
    assert not speaker_is_other("Raj wrote in his notes:")
    assert not speaker_is_other("나는 솔직히 답했다.")
    assert not speaker_is_other("하지만 Raj는 깨달았다.")
    assert not speaker_is_other("팀 미팅에서 말했다.")  # the subject left out is the writer
    text = (
        'Last year, I wrote a paper. One reviewer strongly objected. "This is just scaling. It\'s not emergent." '
        'At the team meeting, I said, "Scaling might not be the answer." '
        'The field is not just "scaling".'
    )
    views = [v.text for v in build_inventory([_chunk(text)])]
    assert views == [
        'At the team meeting, I said, "Scaling might not be the answer."',
        'The field is not just "scaling".',
    ]


def test_a_korean_obligation_states_a_view_and_a_past_one_does_not() -> None:
    """The Korean "-야 한다" is the counterpart of "should" / "must" (a modal stance marker, as the
    English cues have it); "-야 했다" tells what had to be done then, a narration."""
    assert states_view("너무 좋은 점수는 의심부터 해야 한다.")
    assert states_view("데이터를 먼저 봐야 합니다.")
    assert not states_view("처음부터 다시 시작해야 했다.")


def test_is_not_states_a_view_as_isnt_does() -> None:
    """The full "is not" is a cue as its contraction "isn't" is: the diarist's contrast of two narratives."""
    assert states_view(
        'The narrative is not "neural is better than statistical" — it is "each step removed a bottleneck."'
    )
    assert states_view("Scaling isn't the answer.")
    assert not states_view("The loss exploded in week two.")


def test_a_written_answer_keeps_the_question_it_answers() -> None:
    """The writer's answer to a question the writing puts is a view with that question as its prompt,
    even when the answer alone states nothing ("I don't know ..."); a question of fewer than
    QUESTION_WORDS words ("Why?") prompts nothing, and another's answer is no view."""
    text = (
        "I presented at a conference. Someone in the audience asked, \"So is the model 'thinking'?\" "
        'Raj answered honestly. "I don\'t know. But something similar is happening." Then it broke. "Why?" '
        'I reanalyzed the data. I said, "Scaling might not be the answer." A colleague asked, "Then what '
        'is the answer?" The reviewer replied, "Nobody knows."'
    )
    views = build_inventory([_chunk(text)])
    by_text = {v.text: v for v in views}
    answer = by_text['"I don\'t know. But something similar is happening."']
    assert answer.prompt == "Someone in the audience asked, \"So is the model 'thinking'?\""
    assert answer.embedded == f"Scaling: {answer.prompt} {answer.text}" and answer.own.startswith("Someone")
    assert by_text['I said, "Scaling might not be the answer."'].prompt == ""
    assert not any("Nobody knows" in v.text for v in views)


def test_a_written_answer_is_a_view_only_on_the_question_it_answers() -> None:
    """agent.pipeline.asked_here: the answer with its prompt when the written question holds at
    least PROMPT_SHARE of the asker's terms (terms the writings never use count against it); else
    the sentence alone when it states a view, else nothing."""
    from dataclasses import replace

    from agent.compose import question_terms
    from agent.pipeline import asked_here

    idf = {"model": 1.0, "think": 2.0, "know": 1.5, "research": 1.2}
    (answer,) = [
        v for v in build_inventory([_chunk('Someone asked, "Does the model think?" I answered. "I don\'t know."')])
    ]
    assert answer.prompt and answer.text == '"I don\'t know."'
    asked = question_terms("Can a language model be said to think?", idf, unknown=True)
    assert asked_here(answer, asked) == answer
    other = question_terms("Will making models ever larger keep paying off?", idf, unknown=True)
    assert asked_here(answer, other) is None
    stated = replace(answer, text='"No. That\'s why we do research."')
    assert asked_here(stated, other) == replace(stated, prompt="")
