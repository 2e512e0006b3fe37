"""A real `persona serve` for the API tests and benchmarks: a subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent.backends.model_server import free_port, stop_process

BIN = Path(sys.executable).parent
READY_TIMEOUT = 120.0


@dataclass
class Served:
    url: str  # http://127.0.0.1:N
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


@contextmanager
def persona_serve(home: Path, log_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`persona serve --host 127.0.0.1 --port N ARGS` over the index in ``home``; stopped on exit."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    environ = {**os.environ, "PERSONA_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    cmd = [str(BIN / "persona"), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=environ)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {environ['PERSONA_API_KEY']}"} if environ.get("PERSONA_API_KEY") else {}
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"persona serve exited with {proc.returncode}: {log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(urllib.request.Request(url + "/v1/models", headers=headers), timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"persona serve not ready: {log.read_text(errors='replace')}") from None
                time.sleep(0.2)
        yield Served(url, proc, log)
    finally:
        stop_process(proc, grace=15)
