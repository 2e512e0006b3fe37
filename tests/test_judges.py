"""Evaluation step: tests for the judges — the offline checker judge, and the LLM judge against a real
HTTP server of the test's own that speaks the OpenAI chat completions API (canned replies)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from evals.judges import (
    CLAIMS_PROMPT,
    CheckerJudge,
    JudgeReplyError,
    LLMJudge,
    parse_claims,
    parse_json,
    parse_verdicts,
)

Reply = tuple[int, str]  # (HTTP status, message content or error text)


class CannedOpenAI:
    """POST /v1/chat/completions answered by ``reply(request_body)``; every request is kept."""

    def __init__(self, reply: Callable[[dict[str, Any]], Reply]) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append(body)
                status, content = outer.reply(body)
                if status == 200:
                    payload: dict[str, Any] = {
                        "id": "chatcmpl-canned",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", ""),
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                else:
                    payload = {"error": {"message": content, "type": "server_error", "code": None}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def is_claims_request(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"] == CLAIMS_PROMPT


def two_claims_one_supported(body: dict[str, Any]) -> Reply:
    """The claim step finds two claims; the verdict step supports the first only."""
    if is_claims_request(body):
        return 200, '{"claims": ["The loss exploded in week two.", "The run used 64 GPUs."]}'
    return 200, json.dumps(
        {"verdicts": [{"claim": 1, "supported": True, "passage": 1}, {"claim": 2, "supported": False, "passage": None}]}
    )


@pytest.fixture
def canned() -> Iterator[Callable[[Callable[[dict[str, Any]], Reply]], CannedOpenAI]]:
    servers: list[CannedOpenAI] = []

    def start(reply: Callable[[dict[str, Any]], Reply]) -> CannedOpenAI:
        server = CannedOpenAI(reply)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


def judge_for(server: CannedOpenAI, **kw: Any) -> LLMJudge:
    return LLMJudge(model="judge-test", base_url=server.base_url, timeout=10, max_retries=0, **kw)


PASSAGES = ["In week two, the loss exploded. It was a gradient clipping bug.", "16 GPUs, estimated 3-week run."]


# --- the LLM judge over HTTP --------------------------------------------------------------------


def test_llm_judge_extracts_claims_then_verifies_them(canned: Any) -> None:
    server = canned(two_claims_one_supported)
    verdict = judge_for(server).judge(
        "What went wrong?", "The loss exploded in week two [1]. We had 64 GPUs.", PASSAGES
    )
    assert verdict.available and verdict.faithfulness == 0.5
    assert [(c.claim, c.supported, c.passage) for c in verdict.claims] == [
        ("The loss exploded in week two.", True, 1),
        ("The run used 64 GPUs.", False, None),
    ]
    claims_req, verdict_req = server.requests
    assert claims_req["model"] == verdict_req["model"] == "judge-test"
    assert claims_req["temperature"] == 0 and claims_req["response_format"] == {"type": "json_object"}
    assert "[1]" not in claims_req["messages"][1]["content"]  # markers are not claims
    assert "[1] In week two, the loss exploded." in verdict_req["messages"][1]["content"]
    assert "2. The run used 64 GPUs." in verdict_req["messages"][1]["content"]
    assert verdict.to_dict()["status"] == "ok"


def test_llm_judge_unparseable_reply_makes_the_item_unavailable(canned: Any) -> None:
    server = canned(lambda body: (200, "Sure! The answer looks fine to me."))
    verdict = judge_for(server).judge("q", "The loss exploded.", PASSAGES)
    assert not verdict.available and verdict.faithfulness is None
    assert "unparseable" in verdict.error and verdict.to_dict()["status"] == "unavailable"


def test_llm_judge_verdicts_without_any_usable_value_are_unavailable(canned: Any) -> None:
    def reply(body: dict[str, Any]) -> Reply:
        return (200, '{"claims": ["A claim."]}') if is_claims_request(body) else (200, '{"verdicts": [{"x": 1}]}')

    verdict = judge_for(canned(reply)).judge("q", "A claim.", PASSAGES)
    assert not verdict.available and "no usable verdict" in verdict.error


def test_llm_judge_http_error_makes_the_item_unavailable(canned: Any) -> None:
    server = canned(lambda body: (500, "the model crashed"))
    verdict = judge_for(server).judge("q", "The loss exploded.", PASSAGES)
    assert not verdict.available and "InternalServerError" in verdict.error
    assert len(server.requests) == 1  # max_retries=0: one attempt


def test_llm_judge_drops_response_format_when_the_server_refuses_it(canned: Any) -> None:
    def reply(body: dict[str, Any]) -> Reply:
        if "response_format" in body:
            return 400, "response_format is not supported"
        return two_claims_one_supported(body)

    server = canned(reply)
    judge = judge_for(server)
    assert judge.judge("q", "The loss exploded.", PASSAGES).faithfulness == 0.5
    assert judge.judge("q", "The loss exploded.", PASSAGES).faithfulness == 0.5
    # One refused request, then plain requests only (the judge remembers).
    assert ["response_format" in r for r in server.requests] == [True, False, False, False, False]


def test_llm_judge_no_claims_and_empty_answer(canned: Any) -> None:
    server = canned(lambda body: (200, '```json\n{"claims": []}\n```'))
    judge = judge_for(server)
    assert judge.judge("q", "Hmm.", PASSAGES).faithfulness is None
    assert judge.judge("q", "Hmm.", PASSAGES).available
    assert judge.judge("q", "  [1] ", PASSAGES).claims == ()
    assert len(server.requests) == 2  # an empty answer costs no request


def test_llm_judge_from_env() -> None:
    assert LLMJudge.from_env({}) is None
    j = LLMJudge.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "PERSONA_CHAT_MODEL": "chat"})
    assert j is not None and j.model == "chat" and j.base_url == "http://127.0.0.1:9/v1"
    j = LLMJudge.from_env({"OPENAI_API_KEY": "k", "PERSONA_JUDGE_MODEL": "judge", "PERSONA_CHAT_MODEL": "chat"})
    assert j is not None and j.model == "judge" and j.api_key == "k"
    j = LLMJudge.from_env({"OPENAI_API_KEY": "k"})
    assert j is not None and j.model == "gpt-4o-mini"


# --- reply parsing -------------------------------------------------------------------------------


def test_parse_json_finds_the_object_in_fences_and_prose() -> None:
    assert parse_json('{"a": 1}') == {"a": 1}
    assert parse_json('Here you go:\n```json\n{"a": 2}\n```') == {"a": 2}
    assert parse_json('The verdicts are {"a": 3} as requested.') == {"a": 3}
    assert parse_json("[1, 2]") == [1, 2]
    with pytest.raises(JudgeReplyError):
        parse_json("no json at all {")


def test_parse_claims_and_verdicts() -> None:
    assert parse_claims('{"claims": ["a", "b"]}') == ["a", "b"]
    assert parse_claims('["a"]') == ["a"]
    with pytest.raises(JudgeReplyError):
        parse_claims('{"claims": "a"}')
    with pytest.raises(JudgeReplyError):
        parse_claims('{"claims": [{"text": "a"}]}')
    # Out of order, a string verdict, a passage out of range, a claim left without a verdict.
    got = parse_verdicts(
        '{"verdicts": [{"claim": 2, "supported": "yes", "passage": 9}, {"claim": 1, "supported": false}]}', 3, 2
    )
    assert got == [(False, None), (True, None), (None, None)]
    # No claim numbers: taken in order.
    assert parse_verdicts('[{"verdict": 1, "passage": 2}, {"verdict": 0}]', 2, 2) == [(True, 2), (False, None)]
    with pytest.raises(JudgeReplyError):
        parse_verdicts('{"verdicts": []}', 1, 1)


# --- the offline checker judge ---------------------------------------------------------------------


class StubChecker:
    """Scores by a rule the test controls: 0.9 (unsupported) for sentences with "64", else 0.1."""

    threshold = 0.5

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str], str]] = []

    def sentence_scores(self, sentences: list[str], passages: list[str], question: str = "") -> list[float]:
        self.calls.append((sentences, passages, question))
        return [0.9 if "64" in s else 0.1 for s in sentences]


def test_checker_judge_uses_the_checkers_threshold_and_skips_non_claims() -> None:
    stub = StubChecker()
    judge = CheckerJudge(stub)
    v = judge.judge("q", "Here is what I wrote about that: The loss exploded. [1] We had 64 GPUs. [2]", PASSAGES)
    assert [(c.claim, c.supported) for c in v.claims] == [("The loss exploded.", True), ("We had 64 GPUs.", False)]
    assert v.faithfulness == 0.5 and v.available
    assert stub.calls == [(["The loss exploded.", "We had 64 GPUs."], PASSAGES, "q")]
    assert judge.scores(["anything"], []) == [1.0]  # no passage: nothing supports it
    assert judge.scores([], PASSAGES) == []
    assert judge.supported(["fine", "64"], PASSAGES) == [True, False]


def test_checker_judge_with_the_real_checker() -> None:
    judge = CheckerJudge()
    copied, invented = judge.supported(
        ["It was a gradient clipping bug.", "The run used 512 TPUs in Zurich."],
        ["In week two, the loss exploded. Seeing logs filled with NaN, I panicked. It was a gradient clipping bug."],
        "What went wrong in your first big training run?",
    )
    assert copied and not invented


# --- a real small model ---------------------------------------------------------------------------------

from tests.llm_servers import llama_server  # noqa: E402,F401  (fixture: a real llama.cpp server)


@pytest.mark.slow
def test_llm_judge_smoke_with_smollm2(llama_server: Any) -> None:  # noqa: F811
    """SmolLM2 is weak: whatever it replies, the judge returns a verdict or "unavailable", never raises."""
    judge = LLMJudge(model="smollm2", base_url=llama_server.base_url, timeout=120, max_retries=0, max_tokens=128)
    judge.max_passage_chars = 400
    v = judge.judge("What went wrong?", "The loss exploded in week two. It was a gradient clipping bug.", PASSAGES)
    assert v.available or v.error
    assert v.faithfulness is None or 0.0 <= v.faithfulness <= 1.0


# --- both judges on the same labelled examples ----------------------------------------------------------


def test_compare_judges_agreement_and_each_against_labels() -> None:
    from evals.judges import compare_judges

    def rec(label: str, c_label: str, c_score: float, llm: str | None, faith: float | None) -> dict[str, Any]:
        return {
            "label": label,
            "checker_label": c_label,
            "checker_score": c_score,
            "llm_label": llm,
            "llm_faithfulness": faith,
            "llm_status": "ok" if llm else "unavailable",
        }

    records = [
        rec("supported", "supported", 0.1, "supported", 1.0),
        rec("hallucinated", "hallucinated", 0.9, "supported", 1.0),
        rec("hallucinated", "hallucinated", 0.8, "hallucinated", 0.5),
        rec("supported", "hallucinated", 0.7, "supported", 1.0),
        rec("supported", "supported", 0.2, None, None),  # LLM unavailable: left out of both sides
    ]
    cmp = compare_judges(records)
    assert cmp["n"] == 5 and cmp["both_decided"] == 4 and cmp["llm_unavailable"] == 1
    assert cmp["agreement"] == 0.5
    assert cmp["checker"]["balanced_accuracy"] == 0.75 and cmp["checker"]["auroc"] == 1.0
    assert cmp["llm"]["balanced_accuracy"] == 0.75 and cmp["llm"]["auroc"] == 0.75


def test_detect_with_the_judge_writes_both_verdicts_and_compares(
    canned: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from evals.__main__ import main

    server = canned(two_claims_one_supported)  # the LLM finds one claim of each answer unsupported
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("PERSONA_JUDGE_MODEL", "judge-test")
    monkeypatch.setenv("PERSONA_MAX_RETRIES", "0")
    rows = [
        {"id": "a", "context": PASSAGES[0], "answer": "It was a gradient clipping bug.", "label": "supported"},
        {"id": "b", "context": PASSAGES[0], "answer": "The run used 512 TPUs in Zurich.", "label": "hallucinated"},
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["detect", "--judge", "--input", str(src), "--output", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [g["id"] for g in got] == ["a", "b"]
    assert [g["label"] for g in got] == ["supported", "hallucinated"]  # the offline checker
    assert all(g["llm"]["status"] == "ok" and g["llm"]["label"] == "hallucinated" for g in got)
    assert len(server.requests) == 4  # claims + verdicts, per answer
    printed = capsys.readouterr().out
    assert "agreement 0.500" in printed and "checker  vs labels (n=2): balanced accuracy 1.000" in printed
    assert "llm      vs labels (n=2): balanced accuracy 0.500" in printed


def test_detect_with_the_judge_but_no_llm_is_a_clear_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from evals.__main__ import main

    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "context": "c", "answer": "x"}\n', encoding="utf-8")
    assert main(["detect", "--judge", "--input", str(src), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "--judge needs an OpenAI-compatible model" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
