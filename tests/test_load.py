"""Load: 20 concurrent chat sessions against the real page and agent; every answer arrives, no history crosses.

Correctness only: the timings are the benchmark's (benchmarks/load.py), not a test's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.load import conversations, run_sessions, summarise
from tests.ui_server import serve

pytestmark = [
    pytest.mark.slow,
    # Gradio's queue calls pandas APIs that pandas 3 deprecates: noise from a dependency, not ours.
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

SESSIONS = 20


def test_twenty_concurrent_sessions_each_keep_their_own_conversation(agent_factory: Callable[..., Any]) -> None:
    from ui.app import build_app

    agent = agent_factory()
    convs = conversations(SESSIONS, agent.settings)
    assert len({c.questions[0] for c in convs}) == SESSIONS, "distinct conversations"
    assert len({c.persona for c in convs}) == 4, "every persona is talked to at once"
    with serve(build_app(agent.ask_stream)) as url:
        sessions = run_sessions(url, convs)
    summary = summarise(sessions, 1.0, "extractive")
    assert summary["errors"] == []
    assert summary["answers"] == 2 * SESSIONS, "every turn of every session was answered"
    for s in sessions:
        # The chat a session gets back holds its own two questions and nobody else's.
        assert s.asked == list(s.conversation.questions), (s.conversation, s.asked)
        assert s.answered == 2 and len(s.latencies) == 2
    assert summary["cross_session_leaks"] == 0 and summary["sessions_ok"] == SESSIONS
