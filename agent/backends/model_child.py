"""Entry point of the local model's child process: ``python -m agent.backends.model_child PARENT_PID -- ARGS``.

Runs ``python -m llama_cpp.server ARGS`` after starting a watchdog thread that ends this process
as soon as PARENT_PID is gone (its parent id changes), so a page killed with SIGKILL leaves no
orphaned model server holding memory and a core. Started only by agent/backends/model_server.py.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

POLL_S = 1.0


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(POLL_S)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] != "--":
        raise SystemExit("usage: python -m agent.backends.model_child PARENT_PID -- LLAMA_CPP_SERVER_ARGS...")
    parent = int(argv[0])
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watchdog").start()
    sys.argv = ["llama_cpp.server", *argv[2:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
