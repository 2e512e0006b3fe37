"""Benchmark step, lexical tokens: Kiwi's load time and memory, and lexical_tokens' speed per language.

``python -m benchmarks.text_tokens [--baseline PATH] [--json]`` times ``knowledge.text.lexical_tokens``
over the bundled writings (knowledge/sources), split by language (knowledge.text.detect_lang per
paragraph), in milliseconds per 1,000 input tokens (cl100k_base, knowledge.text.count_tokens, so the
unit does not depend on the tokenizer being timed). ``--baseline`` names another knowledge/text.py
(e.g. the file of an older commit) timed the same way in the same process. Kiwi's first load
(``knowledge.text.kiwi``) is timed separately, with the resident-memory growth it causes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPEATS = 3  # the best of REPEATS passes is reported (the machine is shared)


def _rss_mb() -> float:
    """Current resident memory from /proc (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def paragraphs() -> dict[str, list[str]]:
    """The bundled writings' non-empty paragraphs, by language."""
    from knowledge.config import REPO_ROOT
    from knowledge.text import detect_lang

    out: dict[str, list[str]] = {"en": [], "ko": []}
    for path in sorted((REPO_ROOT / "knowledge" / "sources").glob("*.txt")):
        for para in path.read_text("utf-8").split("\n\n"):
            if para.strip():
                out[detect_lang(para)].append(para)
    return out


def time_per_1k(
    fn: Callable[[str], list[str]], texts: list[str], n_tokens: int, reset: Callable[[], None] = lambda: None
) -> float:
    """Best-of-REPEATS wall time of ``fn`` over ``texts``, in ms per 1,000 input tokens; ``reset``
    runs before each pass (it empties knowledge.text's morpheme cache, so every pass analyses anew)."""
    best = float("inf")
    for _ in range(REPEATS):
        reset()
        t0 = time.perf_counter()
        for t in texts:
            fn(t)
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000 / n_tokens * 1000, 3)


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("baseline_text", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(baseline: Path | None) -> dict[str, Any]:
    import knowledge.text as text

    paras = paragraphs()
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    text.kiwi()
    load_s = time.perf_counter() - t0
    out: dict[str, Any] = {"kiwi_load_s": round(load_s, 2), "kiwi_rss_mb": round(_rss_mb() - rss0, 1)}
    for lang, texts in paras.items():
        n = sum(text.count_tokens(t) for t in texts)
        row = {
            "input_tokens": n,
            "current_ms_per_1k": time_per_1k(text.lexical_tokens, texts, n, text.morphemes.cache_clear),
        }
        if baseline is not None:
            row["baseline_ms_per_1k"] = time_per_1k(_load(baseline).lexical_tokens, texts, n)
        out[lang] = row
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.text_tokens", description=__doc__)
    parser.add_argument("--baseline", default=None, help="another knowledge/text.py to time beside this one")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    out = run(Path(args.baseline) if args.baseline else None)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
