"""Prompt -> model -> parse: the LCEL chain the LLM backends share, its prompts and its streaming guards.

Imported only by the LLM backends, when they first answer: it imports LangChain and Jinja2.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from agent import accounting
from agent.backends import AnswerRequest
from agent.personas import PersonaCard
from agent.reasoning import ReasoningFilter, reasoning_model, strip_reasoning
from agent.verify import EchoGuard, Judge, QuoteFinder, Verified, get_judge, verify
from agent.voice import self_names
from knowledge.config import Settings
from knowledge.errors import BackendError
from knowledge.text import count_tokens, detect_lang, lexical_tokens
from knowledge.types import Answer, Chunk, SentenceSupport, Usage

log = logging.getLogger(__name__)

MAX_SENTENCES = 5
CONDENSE_MAX_TOKENS = 64
_MARKER = re.compile(r"\[(\d{1,3})\]")
_PARTIAL_MARKER = re.compile(r"\[\d{0,3}")


# --- prompts as data -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    # StrictUndefined: a variable the caller forgot is an error, not an empty string in the prompt.
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _load_template(name: str) -> str:
    return resources.files("prompts").joinpath("templates", name).read_text("utf-8")


def render(template: str, **variables: Any) -> str:
    """Render prompts/templates/<name>; an unknown variable raises jinja2.UndefinedError."""
    return _env().get_template(template).render(**variables).strip()


@lru_cache(maxsize=1)
def _messages() -> dict[str, dict[str, str]]:
    return tomllib.loads(resources.files("prompts").joinpath("templates", "messages.toml").read_text("utf-8"))


def message(kind: str, lang: str) -> str:
    """A fixed text (refusal, not_covered, language) in the answer's language, English if missing."""
    table = _messages()[kind]
    return table.get(lang) or table["en"]


def strip_markers(text: str) -> str:
    return re.sub(r"\s*\[\d{1,3}\]", "", text)


@dataclass(frozen=True)
class Prompt:
    system: str
    history: list[dict[str, str]]
    user: str
    passages: list[Chunk]  # as numbered in the prompt, possibly trimmed to fit
    prompt_tokens: int  # tiktoken count, for Usage


def system_prompt(card: PersonaCard, lang: str) -> str:
    return render(
        "system.jinja",
        name=card.name,
        bio=card.bio,
        voice=" ".join(card.voice.split()),
        stance=" ".join(card.stance.split()),
        language=message("language", lang),
        max_sentences=MAX_SENTENCES,
    )


def passage_block(n: int, chunk: Chunk) -> str:
    return render("passage.jinja", p={"n": n, "source": chunk.source, "title": chunk.title, "text": chunk.text})


def user_prompt(card: PersonaCard, question: str, passages: Sequence[Chunk], lang: str) -> str:
    blocks = [passage_block(i, c) for i, c in enumerate(passages, start=1)]
    return render("context.jinja", blocks=blocks, question=question, language=message("language", lang), name=card.name)


def condense_prompt(question: str, history: Sequence[dict[str, str]], lang: str) -> str:
    turns = [{"role": m["role"], "content": strip_markers(strip_reasoning(m["content"]))} for m in history]
    return render("condense.jinja", history=turns, question=question, language=message("language", lang))


def build_prompt(request: AnswerRequest, window: int, reserve: int, count: accounting.Counter) -> Prompt:
    """System prompt, recent history and numbered passages, packed to fit ``window - reserve``.

    The whole request is counted again once assembled (with the model's ``count``): passages are
    dropped from the end until it fits, so a request never goes out over the window.
    Raises ContextWindowError when the instructions, question and reserve alone do not fit.
    """
    lang = request.lang if request.lang in _messages()["language"] else "en"
    system = system_prompt(request.persona, lang)
    frame = user_prompt(request.persona, request.question, [], lang)
    history = [{"role": m["role"], "content": strip_markers(strip_reasoning(m["content"]))} for m in request.history]
    fixed = accounting.count_messages([system, frame], count)
    packed = accounting.pack(
        fixed_tokens=fixed,
        passages=[r.chunk for r in request.passages],
        history=history,
        window=window,
        reserve=reserve,
        block_tokens=lambda c: count(passage_block(99, c)) + 1,
        count=count,
    )
    if packed.dropped or packed.trimmed:
        log.info("context window %d: %d passage(s) left out, last trimmed: %s", window, packed.dropped, packed.trimmed)
    passages = list(packed.passages)
    while True:
        user = user_prompt(request.persona, request.question, passages, lang)
        contents = [system, *(m["content"] for m in packed.history), user]
        if accounting.count_messages(contents, count) + reserve <= window or not passages:
            break
        passages.pop()  # the estimate per block was short: the last passage goes
    total = accounting.count_messages(contents, count)
    if total + reserve > window or (request.passages and not passages):
        raise accounting.ContextWindowError(
            f"the question does not fit the model's context window of {window:,} tokens: the prompt takes "
            f"{total:,} and the answer needs {reserve:,} more: ask a shorter question, or raise "
            "PERSONA_CONTEXT_TOKENS if the model's window is larger (or lower PERSONA_MAX_TOKENS)"
        )
    return Prompt(system, packed.history, user, passages, accounting.count_messages(contents))


def to_messages(prompt: Prompt) -> list[BaseMessage]:
    history: list[BaseMessage] = [
        HumanMessage(m["content"]) if m["role"] == "user" else AIMessage(m["content"]) for m in prompt.history
    ]
    return [SystemMessage(prompt.system), *history, HumanMessage(prompt.user)]


def answer_chain(model: BaseChatModel, on_finish: Callable[[str], None] | None = None) -> Runnable[Prompt, str]:
    """prompt -> model -> parse, in LCEL; streams text pieces.

    The parser also reports the model's ``finish_reason`` ("stop", "length") to ``on_finish``: a
    stream that ends without one was cut off (a server that died between two chunks).
    """

    def parse(chunks: Iterator[Any]) -> Iterator[str]:  # AIMessageChunk from the model
        for chunk in chunks:
            reason = chunk.response_metadata.get("finish_reason")
            if reason and on_finish is not None:
                on_finish(str(reason))
            if chunk.text:
                yield chunk.text

    return RunnableLambda(to_messages) | model | RunnableGenerator(parse)


def condense_chain(model: BaseChatModel) -> Runnable[Any, str]:
    return RunnableLambda(lambda text: [HumanMessage(text)]) | model | StrOutputParser()


# --- streaming guards ------------------------------------------------------------------------------


class MarkerFilter:
    """Passes streamed text through, holding back a possible ``[n`` until it closes, and dropping
    markers that point to no given passage, so the stream never shows a made-up citation."""

    def __init__(self, passages: int) -> None:
        self.passages = passages
        self._buf = ""

    def feed(self, piece: str) -> str:
        self._buf += piece
        out: list[str] = []
        while self._buf:
            i = self._buf.find("[")
            if i < 0:
                out.append(self._buf)
                self._buf = ""
                break
            out.append(self._buf[:i])
            rest = self._buf[i:]
            m = _MARKER.match(rest)
            if m:
                if 1 <= int(m.group(1)) <= self.passages:
                    out.append(m.group(0))
                self._buf = rest[m.end() :]
            elif _PARTIAL_MARKER.fullmatch(rest):
                self._buf = rest  # "[1" may become "[12]": wait for the next piece
                break
            else:
                out.append("[")
                self._buf = rest[1:]
        return "".join(out)

    def flush(self) -> str:
        rest, self._buf = self._buf, ""
        return rest


# --- the shared backend ---------------------------------------------------------------------------


def clean_condensed(text: str, question: str, history: Sequence[dict[str, str]]) -> str:
    """The model's standalone question, or ValueError if it does not look like one."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:rewritten question|standalone question|question)\s*[:：]\s*", "", line, flags=re.I)
    line = line.strip().strip("\"'“”«»").strip()
    if not line or len(line) > max(300, 3 * len(question)):
        raise ValueError(f"unusable standalone question: {text[:80]!r}")
    known = set(lexical_tokens(question)) | {t for m in history for t in lexical_tokens(m["content"])}
    if known and not set(lexical_tokens(line)) & known:
        raise ValueError(f"standalone question shares no word with the conversation: {line[:80]!r}")
    return line


class LLMBackend:
    """What the openai and local backends share: prompt, stream, verify, account.

    Subclasses provide ``model(max_tokens)`` (a LangChain chat model), ``count`` (tokens as the
    model counts them, for packing), ``model_name``, ``priced`` and ``map_error``.
    """

    name = "llm"
    model_name = ""
    priced = False

    def __init__(self, settings: Settings, services: Any = None) -> None:
        self.settings = settings
        self.services = services
        self._judge: Judge | None = None
        self._condensed = threading.local()
        self._lock = threading.Lock()
        self._reasons = False  # set once the model was seen reasoning (<think> or </think> in its text)

    # --- to override ---
    def model(self, max_tokens: int) -> BaseChatModel:
        raise NotImplementedError

    def count(self, text: str) -> int:
        return accounting.counter_for(self.model_name)(text)

    def map_error(self, exc: Exception) -> BackendError | None:
        """A clear BackendError for a failure we recognise, else None."""
        return None

    # --- shared ---
    @property
    def window(self) -> int:
        return accounting.context_window(self.model_name, self.settings.context_tokens)

    @property
    def reserve(self) -> int:
        return accounting.completion_budget(self.window, self.settings.max_tokens)

    def judge(self) -> Judge:
        with self._lock:
            if self._judge is None:
                self._judge = get_judge(self._embed())
            return self._judge

    def _embed(self) -> Callable[[Sequence[str]], Any] | None:
        # The agent's sentence cache: passage sentences were embedded for retrieval already.
        cache = getattr(self.services, "sentences", None)
        return cache.embed if cache is not None else None

    def condense(self, question: str, history: list[dict[str, str]]) -> str:
        """The follow-up rewritten by the model into a standalone question (ValueError if unusable)."""
        text = condense_prompt(question, history, detect_lang(question))
        needed = accounting.count_messages([text], self.count) + CONDENSE_MAX_TOKENS
        if needed > self.window:
            # Never a request over the window: the heuristic condenses this one instead.
            raise ValueError(f"the condensing prompt needs {needed} tokens; the window is {self.window}")
        try:
            raw = condense_chain(self.model(CONDENSE_MAX_TOKENS)).invoke(text)
        except Exception as exc:
            raise (self.map_error(exc) or exc) from exc
        standalone = clean_condensed(strip_reasoning(raw), question, history)
        # Remember the call's tokens for the Usage of the answer that follows on this thread.
        self._condensed.record = (
            question,
            standalone,
            self._usage(accounting.count_messages([text]), self._tokens(raw)),
        )
        return standalone

    def _tokens(self, text: str) -> int:
        return count_tokens(text)

    def _usage(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        return accounting.usage(self.model_name, prompt_tokens, completion_tokens, priced=self.priced)

    def with_temperature(self, model: Any, temperature: float) -> Any:
        """``model`` sampling at ``temperature`` for one request (a backend may refuse to change it)."""
        return model.bind(temperature=temperature)

    def stream(self, request: AnswerRequest) -> Iterator[str | Answer]:
        started = time.perf_counter()
        options = request.context.get("options") or {}
        reserve = self.reserve
        if options.get("max_tokens"):
            reserve = accounting.completion_budget(self.window, int(options["max_tokens"]))
        prompt = build_prompt(request, self.window, reserve, self.count)
        lang = request.lang if request.lang in _messages()["language"] else "en"
        finish: list[str] = []
        model = self.model(reserve)
        if options.get("temperature") is not None:
            model = self.with_temperature(model, float(options["temperature"]))
        chain = answer_chain(model, finish.append)
        guard = MarkerFilter(len(prompt.passages))
        echo = EchoGuard(prompt.system, [c.text for c in prompt.passages])
        # Reasoning never reaches the answer: held back for models that reason, cut as it streams.
        thoughts = ReasoningFilter(hold=self._reasons or reasoning_model(self.model_name))
        raw: list[str] = []  # everything the model generated, reasoning included (it is billed)
        incomplete = echoed = False
        pieces = chain.stream(prompt)
        try:
            for piece in pieces:
                if not piece:
                    continue
                raw.append(piece)
                visible = thoughts.feed(piece)
                if echo.hit(thoughts.kept):
                    echoed = True  # stop at once: the rest would leak more of the prompt
                    break
                shown = guard.feed(visible) if visible else ""
                if shown:
                    yield shown
        except Exception as exc:
            mapped = self.map_error(exc)
            if not thoughts.kept.strip():
                # Nothing was said yet: a clear failure beats an empty answer.
                if mapped is not None:
                    raise mapped from exc
                raise BackendError(f"the {self.name} backend failed before answering: {exc}") from exc
            log.warning("%s backend stopped mid-answer (%s): keeping the complete sentences", self.name, exc)
            incomplete = True
        finally:
            # Also when the reader stops early: the HTTP stream (or llama.cpp's lock) is released now.
            pieces.close()  # type: ignore[attr-defined]
        if thoughts.saw_reasoning:
            self._reasons = True  # this model reasons: hold its text back from now on
        if not incomplete and not echoed and finish[-1:] != ["stop"]:
            # No finish_reason: the stream was cut; "length": max_tokens ran out mid-sentence.
            log.info("%s answer ended without finishing (finish_reason=%s)", self.name, finish[-1:] or None)
            incomplete = True
        held = thoughts.flush(complete=not incomplete)
        shown = guard.feed(held) if held and not echoed else ""
        if shown and not incomplete:
            yield shown
        tail = guard.flush()
        if tail and not incomplete and not echoed:
            yield tail
        text = thoughts.kept
        result = verify(
            text,
            prompt.passages,
            self.judge(),
            strict=self.settings.strict,
            complete=not incomplete,
            protected=prompt.system if not echoed else "",
            refusal=message("refusal", lang),
            quotes=QuoteFinder(self._embed()),
            names=self_names(request.persona.name),
        )
        final_text, abstained = result.text, False
        if echoed or result.echo:
            final_text, abstained = message("refusal", lang), True
            result = Verified(text=final_text, citations=[], support=[], unsupported=[], echo=True)
        elif not final_text and incomplete and result.dropped_fragment:
            # Cut off before one sentence was complete: show what came, unverified and uncited.
            final_text = strip_markers(result.dropped_fragment) + " …"
            fragment = SentenceSupport(sentence=result.dropped_fragment, citations=(), score=0.0, supported=False)
            result = Verified(text=final_text, citations=[], support=[fragment], unsupported=[result.dropped_fragment])
        elif not final_text:
            final_text, abstained = message("not_covered", lang), True
        usage = self._usage(prompt.prompt_tokens, self._tokens("".join(raw)))
        record = getattr(self._condensed, "record", None)
        if record and record[0] == request.question and record[1] == request.standalone:
            usage = accounting.add(record[2], usage)
        self._condensed.record = None
        log.info(
            "%s answered in %.2fs: %d prompt + %d completion tokens, %d citation(s), %d unsupported",
            self.name,
            time.perf_counter() - started,
            usage.prompt_tokens,
            usage.completion_tokens,
            len(result.citations),
            len(result.unsupported),
        )
        yield Answer(
            text=final_text,
            citations=result.citations,
            abstained=abstained,
            persona=request.persona.id,
            backend=self.name,
            question=request.question,
            unsupported=result.unsupported,
            support=result.support,
            usage=usage,
            incomplete=incomplete,
            model=self.model_name,
        )
