"""Reasoning removal: a reasoning model's ``<think>…</think>`` never reaches an answer, its citations or the history.

Pure text handling, no imports beyond the standard library: used by the LLM backends while they
stream, and by the pipeline on the history it is given.
"""

from __future__ import annotations

import re

_OPEN, _CLOSE = "<think>", "</think>"
# Model families that open their reasoning without a <think> tag in the output (the chat template
# puts it in the prompt): DeepSeek-R1 and its distills, Qwen3, QwQ, Magistral, EXAONE Deep, gpt-oss.
_REASONING_MODEL = re.compile(r"(^|[^a-z0-9])(r1|qwen3|qwq|magistral|exaone-deep|gpt-oss|deepseek-reasoner)"
                              r"|think|reason", re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """``text`` without reasoning: every ``<think>…</think>`` block, and everything before a lone ``</think>``.

    An unclosed ``<think>`` hides the rest: that was reasoning cut off before the answer began.
    """
    f = ReasoningFilter(hold=False)
    f.feed(text)
    f.flush()
    return f.kept


class ReasoningFilter:
    """Removes a reasoning model's ``<think>…</think>`` from streamed text, as it streams.

    Reasoning models served by Ollama, vLLM or llama.cpp (DeepSeek-R1, Qwen3) stream their
    reasoning in ``content`` between ``<think>`` and ``</think>``; with many chat templates the
    opening tag is part of the prompt, so only ``</think>`` arrives. ``hold=True`` (a model known
    to reason, or one seen to) holds text back until ``</think>`` shows or the stream ends without
    one (then it was all answer). ``kept`` is the answer without reasoning, for the checker and the
    history; ``feed`` returns only text that is safe to show now.
    """

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.kept = ""
        self.saw_reasoning = False
        self._buf = ""
        self._state = "start"  # start | think | held | answer

    def feed(self, piece: str) -> str:
        self._buf += piece
        out: list[str] = []
        while self._buf:
            if self._state == "start":
                head = self._buf.lstrip()
                if head.startswith(_OPEN):
                    self._state, self._buf, self.saw_reasoning = "think", head[len(_OPEN) :], True
                elif not head or _OPEN.startswith(head):
                    break  # "<thi": wait for the rest of the tag
                else:
                    self._state = "held" if self.hold else "answer"
            elif self._state == "think":
                i = self._buf.find(_CLOSE)
                if i < 0:
                    self._buf = self._buf[-(len(_CLOSE) - 1) :]  # the reasoning itself is never kept
                    break
                self._state, self._buf = "answer", self._buf[i + len(_CLOSE) :].lstrip()
            elif self._state == "held":
                i = self._buf.find(_CLOSE)
                if i < 0:
                    break
                self._state, self._buf, self.saw_reasoning = "answer", self._buf[i + len(_CLOSE) :].lstrip(), True
            else:  # answer
                i, j = self._buf.find(_OPEN), self._buf.find(_CLOSE)
                if j >= 0 and (i < 0 or j < i):
                    # A lone </think> after text already shown: that text was reasoning after all.
                    self.kept, self._buf, self.saw_reasoning = "", self._buf[j + len(_CLOSE) :].lstrip(), True
                    out.clear()
                    continue
                if i >= 0:
                    shown = self._buf[:i]
                    self.kept += shown
                    out.append(shown)
                    self._state, self._buf, self.saw_reasoning = "think", self._buf[i + len(_OPEN) :], True
                    continue
                keep = _partial_tag(self._buf)
                shown, self._buf = self._buf[: len(self._buf) - keep], self._buf[len(self._buf) - keep :]
                self.kept += shown
                out.append(shown)
                break
        return "".join(out)

    def flush(self, complete: bool = True) -> str:
        """What is left at the end of the stream: held text with no ``</think>`` was the answer.

        ``complete=False`` (the stream was cut): held text may be unfinished reasoning and is dropped.
        """
        rest, self._buf = self._buf, ""
        if self._state == "think" or (self._state == "held" and not complete):
            return ""  # cut off while reasoning: nothing of it is shown
        if self._state == "start":
            rest = rest.lstrip()
        self.kept += rest
        return rest


def _partial_tag(text: str) -> int:
    """Length of a suffix of ``text`` that may be the start of ``<think>`` or ``</think>``."""
    for n in range(min(len(text), len(_CLOSE) - 1), 0, -1):
        tail = text[-n:]
        if _OPEN.startswith(tail) or _CLOSE.startswith(tail):
            return n
    return 0


def reasoning_model(name: str) -> bool:
    """Whether ``name`` looks like a model that reasons before it answers (its text is held back)."""
    return bool(_REASONING_MODEL.search(name))


__all__ = ["ReasoningFilter", "reasoning_model", "strip_reasoning"]
