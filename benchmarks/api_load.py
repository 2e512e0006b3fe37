"""Benchmark step, API: an answer through /v1 next to ``ask()``, then 20 concurrent API clients while the page serves.

``python -m benchmarks.api_load`` starts a real `persona serve` (page and API on one port) as a
subprocess and:

1. latency: the same questions asked in turn through ``ask()`` in this process and through the
   API with the official openai client (non-streamed; and streamed, time to first text), both
   warmed, medians over the questions;
2. load: ``--clients`` (default 20) openai clients, half streaming, each with its own question,
   all started at once; every answer must equal, byte for byte, the answer its question got
   alone (no cross-talk); meanwhile a Gradio client asks the page a question and a prober
   fetches the page's /config every half second.

Writes benchmarks/api_results.json and prints a markdown snippet for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

RESULTS = Path(__file__).with_name("api_results.json")


def _percentile(values: list[float], q: float) -> float:
    from benchmarks.load import percentile

    return percentile(values, q)


def _ask_api(client: Any, persona: str, question: str, stream: bool) -> tuple[str, float, float]:
    """(content, seconds to the whole answer, seconds to the first text) as the client sees them."""
    t0 = time.perf_counter()
    first = float("nan")
    if not stream:
        r = client.chat.completions.create(model=persona, messages=[{"role": "user", "content": question}])
        elapsed = time.perf_counter() - t0
        return r.choices[0].message.content or "", elapsed, elapsed
    parts: list[str] = []
    for chunk in client.chat.completions.create(
        model=persona, messages=[{"role": "user", "content": question}], stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            if not parts:
                first = time.perf_counter() - t0
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts), time.perf_counter() - t0, first


def latency(agent: Any, client: Any, asks: list[tuple[str, str]], backend: str, rounds: int = 2) -> dict[str, Any]:
    """ask() and the API on the same questions, alternating, each question warmed in both first.

    A first answer to a question embeds its candidate sentences (the agent's sentence cache), in
    this process for ask() and in the server for the API: both are warmed so the two compare alike.
    """
    for persona, question in asks:
        agent.ask(question, persona=persona, backend=backend)
        _ask_api(client, persona, question, stream=False)
    direct, api, api_stream, api_first = [], [], [], []
    for persona, question in asks * rounds:
        t0 = time.perf_counter()
        agent.ask(question, persona=persona, backend=backend)
        direct.append(time.perf_counter() - t0)
        api.append(_ask_api(client, persona, question, stream=False)[1])
        _, whole, first = _ask_api(client, persona, question, stream=True)
        api_stream.append(whole)
        api_first.append(first)
    med = statistics.median
    return {
        "questions": len(asks),
        "rounds": rounds,
        "ask_p50_s": round(med(direct), 3),
        "api_p50_s": round(med(api), 3),
        "api_stream_p50_s": round(med(api_stream), 3),
        "api_stream_first_text_p50_s": round(med(api_first), 3),
        "api_overhead_p50_ms": round(1000 * med([a - d for a, d in zip(api, direct, strict=True)]), 1),
    }


def load(
    url: str, asks: list[tuple[str, str]], expected: dict[int, str], page_question: tuple[str, str]
) -> dict[str, Any]:
    import httpx
    import openai

    n = len(asks)
    barrier = threading.Barrier(n + 1)
    results: list[dict[str, Any]] = [{} for _ in range(n)]
    stop = threading.Event()
    page_times: list[float] = []
    page_failures: list[str] = []
    page_answer: dict[str, Any] = {}

    def client_work(i: int) -> None:
        persona, question = asks[i]
        stream = i % 2 == 1
        try:
            client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=600)
            barrier.wait(timeout=120)
            content, whole, first = _ask_api(client, persona, question, stream)
            results[i] = {"ok": content == expected[i], "stream": stream, "s": whole, "first_s": first}
        except Exception as exc:  # a failed client is a result to report
            results[i] = {"ok": False, "stream": stream, "error": f"{type(exc).__name__}: {exc}"}

    def probe() -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = http.get(url + "/config")
                    if r.status_code != 200:
                        page_failures.append(str(r.status_code))
                except httpx.HTTPError as exc:
                    page_failures.append(type(exc).__name__)
                page_times.append(time.perf_counter() - t0)
                stop.wait(0.5)

    def page_session() -> None:
        from benchmarks.load import Conversation, run_session

        persona, question = page_question
        session = run_session(url + "/", Conversation(persona, "en", (question,)), "extractive")
        page_answer.update(ok=session.ok, s=session.latencies[0] if session.latencies else None, error=session.error)

    threads = [threading.Thread(target=client_work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    prober = threading.Thread(target=probe)
    page = threading.Thread(target=page_session)
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    prober.start()
    page.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    page.join()
    stop.set()
    prober.join()
    every = [r["s"] for r in results if "s" in r]
    streamed_first = [r["first_s"] for r in results if r.get("stream") and "first_s" in r]
    return {
        "clients": n,
        "streaming_clients": sum(1 for r in results if r.get("stream")),
        "answers_identical_to_solo": sum(1 for r in results if r.get("ok")),
        "errors": [r["error"] for r in results if r.get("error")],
        "wall_s": round(wall, 2),
        "answers_per_s": round(len(every) / wall, 2) if wall else None,
        "p50_s": round(_percentile(every, 50), 3),
        "p95_s": round(_percentile(every, 95), 3),
        "max_s": round(max(every, default=float("nan")), 3),
        "stream_first_text_p50_s": round(_percentile(streamed_first, 50), 3),
        "page_config_requests": len(page_times),
        "page_config_failures": page_failures,
        "page_config_p50_s": round(_percentile(page_times, 50), 3),
        "page_config_max_s": round(max(page_times, default=float("nan")), 3),
        "page_answer": page_answer,
    }


def markdown(r: dict[str, Any]) -> str:
    lat, ld = r["latency"], r["load"]
    page = ld["page_answer"]
    return "\n".join(
        [
            f"### The API next to ask(), and {ld['clients']} concurrent API clients ({r['backend']} backend)",
            "",
            f"Same run, same questions ({lat['questions']}, {lat['rounds']} rounds), alternating, each warmed in "
            "both first; medians:",
            "",
            "| ask() in process | API, whole answer | API streamed, whole | API streamed, first text "
            "| API − ask(), per question |",
            "|---|---|---|---|---|",
            f"| {lat['ask_p50_s']:.3f} s | {lat['api_p50_s']:.3f} s | {lat['api_stream_p50_s']:.3f} s "
            f"| {lat['api_stream_first_text_p50_s']:.3f} s | {lat['api_overhead_p50_ms']:.0f} ms |",
            "",
            f"{ld['clients']} openai clients ({ld['streaming_clients']} streaming), each its own question, started "
            f"at once on {r['cpus']} cores (load average {r['load_average_1m']} at the end); the API answers "
            f"4 at a time, the rest queue:",
            "",
            "| answers identical to solo | errors | p50 | p95 | max | first streamed text p50 | throughput |",
            "|---|---|---|---|---|---|---|",
            f"| {ld['answers_identical_to_solo']}/{ld['clients']} | {len(ld['errors'])} | {ld['p50_s']:.2f} s "
            f"| {ld['p95_s']:.2f} s | {ld['max_s']:.2f} s | {ld['stream_first_text_p50_s']:.2f} s "
            f"| {ld['answers_per_s']:.2f} answers/s |",
            "",
            f"Meanwhile the page: {ld['page_config_requests']} fetches of /config, "
            f"{len(ld['page_config_failures'])} failed, p50 {ld['page_config_p50_s']:.3f} s, max "
            f"{ld['page_config_max_s']:.2f} s; a chat on the page answered "
            + (f"in {page['s']:.2f} s." if page.get("ok") else f"with an error: {page.get('error')}."),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=8, help="questions for the latency comparison")
    parser.add_argument("--home", type=Path, help="an indexed PERSONA_HOME (default: index into a temporary one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import openai

    from agent.pipeline import build_agent
    from benchmarks.load import _index_bundled, conversations
    from knowledge.config import Settings
    from tests.api_server import persona_serve

    backend = "extractive"
    with tempfile.TemporaryDirectory(prefix="persona-api-load-") as tmp:
        if args.home:
            home = args.home
            agent = build_agent(Settings.from_env().replace(home=home))
        else:
            print("indexing the bundled writings into a temporary home…", file=sys.stderr)
            home = Path(tmp) / "home"
            agent = _index_bundled(home)
        convs = conversations(args.clients + 1, agent.settings)
        asks = [(c.persona, c.questions[0]) for c in convs[: args.clients]]
        page_question = (convs[-1].persona, convs[-1].questions[0])
        env = {"PERSONA_BACKEND": backend, "PERSONA_API_KEY": ""}
        with persona_serve(home, Path(tmp), env=env) as served:
            client = openai.OpenAI(base_url=served.base_url, api_key="x", max_retries=0, timeout=600)
            print("measuring ask() next to the API…", file=sys.stderr)
            lat = latency(agent, client, asks[: args.questions], backend)
            print("solo answers for the load's questions…", file=sys.stderr)
            expected = {i: _ask_api(client, p, q, stream=False)[0] for i, (p, q) in enumerate(asks)}
            print(f"{args.clients} clients at once…", file=sys.stderr)
            ld = load(served.url, asks, expected, page_question)
    result = {
        "backend": backend,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "latency": lat,
        "load": ld,
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    print(f"\nwrote {args.out}", file=sys.stderr)
    ok = ld["answers_identical_to_solo"] == ld["clients"] and not ld["page_config_failures"]
    return 0 if ok and ld["page_answer"].get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
