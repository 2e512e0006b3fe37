"""Evaluation step: tests for the runner and the report on a 5-question subset of the gold set."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals import run
from evals.metrics import METRICS
from knowledge.types import Answer, Chunk, Citation, Retrieved
from tests.test_judges import CannedOpenAI, StubChecker, two_claims_one_supported

PLANTED = "<script>alert('pwned')</script>"


class PlantedBackend:
    """The extractive backend with markup planted at the end of every answer."""

    name = "planted"

    def __init__(self, services: Any) -> None:
        from agent.backends.extractive import ExtractiveBackend

        self.inner = ExtractiveBackend(services)

    def stream(self, request: Any) -> Iterator[str | Answer]:
        for item in self.inner.stream(request):
            if isinstance(item, Answer):
                yield dataclasses.replace(item, text=f"{item.text} {PLANTED}", backend=self.name)
            else:
                yield item


@pytest.fixture(scope="module")
def small_run(agent: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    from agent.backends import BACKENDS
    from evals.judges import LLMJudge

    server = CannedOpenAI(lambda body: two_claims_one_supported(body))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(BACKENDS, "planted", lambda settings, services: PlantedBackend(services))
            judge = LLMJudge(model="judge-test", base_url=server.base_url, timeout=10, max_retries=0)
            results = run.run_eval(
                agent, ["extractive", "planted"], limit=5, attacks=False, dev=None, llm_judge=judge, progress=False
            )
    finally:
        server.close()
    out = tmp_path_factory.mktemp("eval-out")
    run.write_outputs(results, out)
    yield results, out


def test_results_json_has_every_section_and_metric(small_run: tuple[dict[str, Any], Path]) -> None:
    results, out = small_run
    data = json.loads((out / "results.json").read_text("utf-8"))
    assert {"meta", "overall", "by_backend", "by_persona", "by_lang", "by_kind", "per_backend", "attacks"} <= set(data)
    assert {"checker_dev", "items"} <= set(data)
    assert data["meta"]["n_questions"] == 5 and data["meta"]["backends"] == ["extractive", "planted"]
    assert set(data["by_backend"]) == {"extractive", "planted"}
    for figures in (data["overall"], *data["by_backend"].values(), *data["by_kind"].values()):
        assert set(METRICS) <= set(figures)
    # The subset takes one question of each kind round-robin: five kinds, not five facts.
    assert set(data["per_backend"]["extractive"]["by_kind"]) == {
        "fact",
        "cross_lingual",
        "stance",
        "out_of_scope",
        "false_premise",
    }
    assert data["checker_dev"] == {"available": False, "reason": "skipped (--no-dev)"}
    assert data["attacks"]["extractive"]["skipped"].startswith("off")
    assert len(data["items"]) == 10
    item = next(i for i in data["items"] if i["kind"] == "fact" and i["backend"] == "extractive")
    assert item["citations"] and item["retrieved"] and item["sentences"]
    assert {"rank", "citation_recall", "key_fact_recall", "style_margin"} <= set(item["scores"])
    ext = data["by_backend"]["extractive"]
    # Verbatim quotes of the retrieved passages: the checker supports them, each citation is needed.
    assert ext["faithfulness"] == 1.0 and ext["citation_recall"] == 1.0 and ext["citation_precision"] == 1.0
    assert ext["abstention_recall"] == 1.0  # the out-of-scope question is refused


def test_llm_judge_figures_sit_beside_the_offline_ones(small_run: tuple[dict[str, Any], Path]) -> None:
    results, out = small_run
    ext = results["by_backend"]["extractive"]
    assert ext["llm_faithfulness"] == 0.5 and ext["faithfulness"] == 1.0
    spoke = [i for i in results["items"] if not i["abstained"]]
    assert spoke and all(i["llm_judge"]["status"] == "ok" for i in spoke)
    refused = [i for i in results["items"] if i["abstained"]]
    assert all(i["llm_judge"]["status"] == "skipped" for i in refused)
    assert "llm_faithfulness" in (out / "report.html").read_text("utf-8")


def test_report_is_self_contained_with_plots_and_escapes_markup(small_run: tuple[dict[str, Any], Path]) -> None:
    results, out = small_run
    html = (out / "report.html").read_text("utf-8")
    assert html.count("data:image/png;base64,") >= 4  # by kind and by language, per backend
    assert PLANTED not in html and "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert 'src="http' not in html and "src='http" not in html  # nothing loaded from elsewhere
    planted = [i for i in results["items"] if i["backend"] == "planted" and not i["abstained"]]
    assert planted and all(PLANTED in i["answer"] for i in planted)  # results keep the answer as it was


def test_report_plots_the_checker_roc_when_dev_figures_exist(small_run: tuple[dict[str, Any], Path]) -> None:
    from evals.report import render

    results, _ = small_run
    dev = {
        "available": True,
        "n": 4,
        "path": "dev.jsonl",
        "threshold": 0.5,
        "n_locked": 4,
        "checker_locked": {
            "slices": {"s": {"n": 4, "auroc": 1.0, "balanced_accuracy": 1.0, "f1": 1.0}},
            "macro": {"auroc": 1.0, "balanced_accuracy": 1.0, "f1": 1.0},
            "pooled": {"auroc": 1.0, "balanced_accuracy": 1.0, "f1": 1.0},
        },
        "roc": {"checker": [[0, 0], [0, 1], [1, 1]], "floor": [[0, 0], [0.5, 0.5], [1, 1]]},
    }
    with_dev = render({**results, "checker_dev": dev})
    assert with_dev.count("data:image/png;base64,") == render(results).count("data:image/png;base64,") + 1
    assert "Faithfulness checker on dev" in with_dev


def test_dev_figures_note_a_missing_dev_set(tmp_path: Path) -> None:
    got = run.dev_figures(tmp_path / "dev.jsonl")
    assert got["available"] is False and str(tmp_path / "dev.jsonl") in got["reason"]


def test_load_gold_limit_covers_every_kind_and_persona_filter() -> None:
    rows = run.load_gold(limit=6)
    assert len({r["kind"] for r in rows}) == 6
    assert {r["persona"] for r in run.load_gold(persona="intern")} == {"intern"}
    assert run.load_gold(limit=0) == []
    assert len(run.load_gold()) == 187
    stances = run.load_stances()
    assert len(stances) == 68 and {r["kind"] for r in stances} == {"stance_inventory"}
    assert {r["lang"] for r in stances} == {"en", "ko"} and all(r["key_phrases"] for r in stances)


def _chunk(cid: str, text: str, start: int = 0) -> Chunk:
    return Chunk(cid, "raj", "diary.txt", "Title", start, start + len(text), text, "en", "h")


def test_score_item_counts_a_citation_of_a_missing_passage_as_unsupported_and_irrelevant() -> None:
    from evals.judges import CheckerJudge

    text = "It was a gradient clipping bug."
    source = f"Intro. {text}"
    chunk = _chunk("c1", source)
    answer = Answer(
        text=f"Here is what I wrote about that: {text} [1] It used 64 GPUs. [2] I restarted it. [3]",
        citations=[
            Citation(1, "diary.txt", "Title", text, 7, 7 + len(text), "c1"),
            Citation(2, "diary.txt", "Title", "Intro.", 0, 6, "gone"),  # its passage is nowhere
        ],
        abstained=False,
        persona="raj",
        backend="test",
    )
    row = {
        "id": "t",
        "kind": "fact",
        "question": "What went wrong?",
        "gold": [{"source": "diary.txt", "quote": "gradient clipping"}],
        "key_facts": ["gradient clipping", "NaN"],
        "answer_lang": "en",
    }
    rec = run.score_item(
        row, answer, [Retrieved(chunk, 1.0)], read=lambda s: source, corpus=source, judge=CheckerJudge(StubChecker())
    )
    s = rec["scores"]
    assert s["rank"] == 1 and s["gold_cited"] is True
    assert s["claims"] == 3 and s["supported_claims"] == 2  # "64" is what the stub checker rejects
    # [1] supported; [2] cites a missing passage; [3] has no citation object at all.
    assert s["citation_recall"] == pytest.approx(1 / 3)
    assert s["citation_precision"] == pytest.approx(1 / 3)
    assert s["key_fact_recall"] == 0.5 and s["first_person"] is True
    assert [c["missing"] for c in rec["citations"]] == [False, True]
    assert [x.get("cited_supported") for x in rec["sentences"]] == [None, True, False, False]


def test_persona_eval_command_writes_both_files(indexed_home: Path, tmp_path: Path) -> None:
    from ui.cli import main

    out = tmp_path / "out"
    code = main(
        ["eval", "--backend", "extractive", "--limit", "2", "--no-attacks", "--no-dev", "--quiet", "--out", str(out)]
    )
    assert code == 0
    assert (out / "results.json").is_file() and (out / "report.html").is_file()
    assert json.loads((out / "results.json").read_text("utf-8"))["meta"]["n_questions"] == 2


def test_python_m_evals_run_takes_the_same_options() -> None:
    from evals.__main__ import build_parser

    args = build_parser().parse_args(
        ["run", "--backend", "extractive", "--persona", "raj", "--out", "x", "--limit", "3", "--baseline", "b.json"]
    )
    assert (args.backend, args.persona, args.out, args.limit, args.baseline) == ("extractive", "raj", "x", 3, "b.json")
    assert args.judge is False and args.attacks is None and args.dev is True


def test_judge_without_a_configured_model_is_an_error(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from ui.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(["eval", "--judge", "--limit", "1"]) == 2
    assert "OPENAI_BASE_URL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("source", "quote", "said"),
    [
        (
            "Last week, a PhD student asked a question. Raj paused. After ten years, he did not know.",
            "Raj paused.",
            "I paused.",
        ),
        (
            "지난주, 박사과정 학생이 물었다. Raj는 멈췄다. 10년 넘게 연구했지만, 답을 몰랐다.",
            "Raj는 멈췄다.",
            "나는 멈췄다.",
        ),
    ],
)
def test_the_writers_own_words_in_the_first_person_are_supported_by_the_third_person_source(
    source: str, quote: str, said: str
) -> None:
    """The answer says "I paused." where the diary says "Raj paused." (agent.voice): the real checker
    judges it against the passage read in the writer's voice; without the writer's name it cannot."""
    from evals.judges import CheckerJudge

    start = source.index(quote)
    answer = Answer(
        text=f"Here is what I wrote: {said} [1]",
        citations=[Citation(1, "diary.txt", "Title", quote, start, start + len(quote), "c1")],
        abstained=False,
        persona="raj",
        backend="test",
    )
    row = {"id": "t", "kind": "fact", "question": "What did you do?", "gold": [], "key_facts": [], "answer_lang": "en"}
    judge = CheckerJudge()

    def supported(names: tuple[str, ...]) -> int:
        rec = run.score_item(
            row,
            answer,
            [Retrieved(_chunk("c1", source), 1.0)],
            read=lambda s: source,
            corpus=source,
            judge=judge,
            names=names,
        )
        assert rec["scores"]["claims"] == 1
        return int(rec["scores"]["supported_claims"])

    assert supported(("Raj",)) == 1
    assert supported(()) == 0
