"""The local model's process: llama.cpp's OpenAI-compatible server, started, health-checked, restarted, stopped.

The ``local`` backend never runs native model code in the caller's process. A crash of llama.cpp
(a segfault on a CPU it was not built for, an out-of-memory kill) then costs the answer being
generated, not the chat page: the next question finds the process dead and starts a fresh one.

The child is ``python -m agent.backends.model_child``: ``python -m llama_cpp.server`` plus a watchdog
that ends the child when this process goes away, so a killed page leaves no model process behind.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from pathlib import Path

from knowledge.errors import BackendError, ConfigError

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0  # seconds; ~2-5 s on an idle 2-core machine, far more on a loaded CI box
ALIAS = "local"
_COUNT_CACHE = 4096
# The server tokenizes under the same lock as generation: a count waits for a running answer.
COUNT_TIMEOUT = 300.0


def describe_exit(returncode: int) -> str:
    """``-11`` -> "was killed by SIGSEGV"; ``1`` -> "exited with status 1"."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it is still running after ``grace`` seconds.

    Does nothing if it has already exited. Used for the model process and by the tests' servers.
    """
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class ModelServer:
    """One llama.cpp server process for one GGUF file and context window, on a free 127.0.0.1 port.

    ``ensure()`` returns the OpenAI base URL (``http://127.0.0.1:PORT/v1``), starting the process
    first if it is not running (the first call, or after it died). Thread-safe. Counters:
    ``starts`` (processes started), ``crashes`` (processes found dead), ``last_exit`` (how the last
    one ended), ``last_start_s`` (seconds from spawn to a healthy ``GET /v1/models``).

    Raises ConfigError when the file cannot be loaded (the process exits before it is ready),
    BackendError when the process does not become ready within ``ready_timeout`` seconds.
    """

    def __init__(self, model: Path, *, n_ctx: int, threads: int, ready_timeout: float = READY_TIMEOUT) -> None:
        self.model = Path(model)
        self.n_ctx = n_ctx
        self.threads = threads
        self.ready_timeout = ready_timeout
        self.starts = 0
        self.crashes = 0
        self.last_exit: str | None = None
        self.last_start_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._lock = threading.RLock()
        self._log_dir = Path(tempfile.mkdtemp(prefix="persona-local-model-"))
        self._counts: OrderedDict[str, int] = OrderedDict()

    # --- state ---
    @property
    def pid(self) -> int | None:
        """The running process's id, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def died(self, wait: float = 0.0) -> str | None:
        """How the current process ended ("was killed by SIGKILL"), or None while it runs.

        ``wait``: seconds to wait for a process whose connection just dropped to be reaped.
        """
        proc = self._proc
        if proc is None:
            return None
        if wait:
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                return None
        code = proc.poll()
        return None if code is None else describe_exit(code)

    # --- life cycle ---
    def ensure(self) -> str:
        """The base URL of a running, healthy server; starts (or restarts) it first if needed."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self.base_url
            if self._proc is not None:
                self.crashes += 1
                self.last_exit = describe_exit(self._proc.returncode)
                log.warning("local model process %d %s: starting a fresh one", self._proc.pid, self.last_exit)
            self._start()
            return self.base_url

    def _start(self) -> None:
        self._port = free_port()
        logfile = self._log_dir / f"llama-{self._port}.log"
        cmd = [
            sys.executable, "-m", "agent.backends.model_child", str(os.getpid()), "--",
            "--model", str(self.model), "--host", "127.0.0.1", "--port", str(self._port),
            "--model_alias", ALIAS, "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
            # One answer at a time, each to its end: a second user's request waits instead of
            # cutting the first one off (llama-cpp-python's default interrupts it).
            "--interrupt_requests", "False",
        ]
        started = time.monotonic()
        with logfile.open("wb") as out:
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.starts += 1
        self._wait_ready(logfile)
        self.last_start_s = time.monotonic() - started
        log.info("local model process %d ready in %.1f s (%s)", self._proc.pid, self.last_start_s, self.model.name)

    def _wait_ready(self, logfile: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        url = f"{self.base_url}/models"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                tail = _tail(logfile)
                raise ConfigError(
                    f"llama.cpp could not load the model file {self.model} (its process {describe_exit(code)}"
                    f"{': ' + tail if tail else ''}): reinstall the bundled model with `make local`, "
                    "or set PERSONA_LOCAL_MODEL to a GGUF chat model"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        raise BackendError(
            f"the local model process did not become ready within {self.ready_timeout:.0f} s "
            f"(model {self.model}; log {logfile}): the machine may be overloaded — ask again"
        )

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 10 s). Safe to call twice."""
        with self._lock:
            if self._proc is not None:
                stop_process(self._proc)

    # --- tokens ---
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer (llama-cpp-python's ``/extras/tokenize/count``).

        Cached per text (the persona prompt and passages repeat); raises BackendError if the
        process cannot answer.
        """
        with self._lock:
            if text in self._counts:
                self._counts.move_to_end(text)
                return self._counts[text]
        base = self.ensure().removesuffix("/v1")
        body = json.dumps({"input": text, "model": ALIAS}).encode("utf-8")
        request = urllib.request.Request(
            f"{base}/extras/tokenize/count", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=COUNT_TIMEOUT) as r:
                n = int(json.loads(r.read())["count"])
        except (OSError, ValueError, KeyError) as exc:
            died = self.died(wait=1.0)
            what = f"the local model process {died}" if died else f"the local model process failed ({exc})"
            raise BackendError(f"{what} while counting tokens: ask again (a fresh process starts)") from exc
        with self._lock:
            self._counts[text] = n
            if len(self._counts) > _COUNT_CACHE:
                self._counts.popitem(last=False)
        return n


def _tail(logfile: Path, lines: int = 3) -> str:
    try:
        text = logfile.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    noise = ("llama_model_loader: - ", "INFO")
    kept = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(noise)]
    return " | ".join(kept[-lines:])[-400:]


_servers: dict[tuple[str, int], ModelServer] = {}
_servers_lock = threading.Lock()


def server_for(model: Path, n_ctx: int, threads: int) -> ModelServer:
    """The process-wide server for (file, window), created on first use (not started until ``ensure``)."""
    key = (str(Path(model).resolve()), n_ctx)
    with _servers_lock:
        if key not in _servers:
            _servers[key] = ModelServer(Path(model), n_ctx=n_ctx, threads=threads)
        return _servers[key]


@atexit.register
def stop_all() -> None:
    """Stop every model process this process started."""
    with _servers_lock:
        servers = list(_servers.values())
    for server in servers:
        server.stop()
