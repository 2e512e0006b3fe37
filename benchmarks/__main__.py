"""Benchmark step, the command: `python -m benchmarks [--quick] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.run import SIZES, flat, log, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time our pipeline against a naive LangChain RAG; the full run writes BENCHMARKS.md, "
        "benchmarks/results.json and benchmarks/results.png.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="ours and naive, one repeat, and a scale probe at 1k and 10k chunks; writes no files",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="scale sizes in chunks (default %(default)s)"
    )
    parser.add_argument(
        "--render", action="store_true", help="rewrite BENCHMARKS.md and the plot from benchmarks/results.json"
    )
    args = parser.parse_args(argv)
    if args.render:
        from benchmarks.report import JSON_PATH, write_all
        from benchmarks.run import ratios, targets

        saved = json.loads(JSON_PATH.read_text("utf-8"))
        saved["ratios"] = ratios(saved)
        saved["targets"] = targets(saved)
        write_all(saved)
        return 0
    sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    results = run(quick=args.quick, sizes=sizes)
    if not args.quick:
        from benchmarks.report import JSON_PATH, MARKDOWN, PLOT, write_all

        write_all(results)
        log(f"wrote {MARKDOWN.name}, {JSON_PATH.relative_to(MARKDOWN.parent)}, {PLOT.relative_to(MARKDOWN.parent)}")
    if args.json:
        print(json.dumps(flat(results), ensure_ascii=False))
    else:
        for t in results["targets"]:
            print(f"{'met    ' if t['met'] else 'NOT MET'}  {t['target']}: {t['value']} (goal {t['goal']})")
        summary = {k: v for k, v in flat(results).items() if k != "details"}
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
