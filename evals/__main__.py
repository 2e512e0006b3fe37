"""Evaluation step: command line (`python -m evals <command>`); one entry in COMMANDS per command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import abstain, attacks, run

REPO_ROOT = Path(__file__).resolve().parents[1]
# Licensed evaluation data lives next to the repository, never inside it.
DEV_PATH = REPO_ROOT.parent / "shared" / "evaldata" / "dev.jsonl"
REQUIRED_FIELDS = ("id", "context", "answer")
EXIT_BAD_INPUT = 2


class InputFileError(Exception):
    """Input JSONL that cannot be used; the message names the file and line."""


# ---------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------


def read_jsonl(path: Path, need_label: bool = False) -> list[dict[str, Any]]:
    """Rows of a JSONL file, validated; raises InputFileError naming the first bad line."""
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFileError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputFileError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            fields = REQUIRED_FIELDS + (("label",) if need_label else ())
            missing = [f for f in fields if f not in row or row[f] is None]
            if missing:
                raise InputFileError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
            context = row["context"]
            if not (
                isinstance(context, str) or (isinstance(context, list) and all(isinstance(p, str) for p in context))
            ):
                raise InputFileError(f"{path}:{lineno}: 'context' must be a string or a list of strings")
            for f in ("answer", "question"):
                if f in row and row[f] is not None and not isinstance(row[f], str):
                    raise InputFileError(f"{path}:{lineno}: '{f}' must be a string")
            if need_label and row["label"] not in ("supported", "hallucinated"):
                raise InputFileError(f"{path}:{lineno}: 'label' must be 'supported' or 'hallucinated'")
            rows.append(row)
    return rows


def passages_of(row: dict[str, Any]) -> list[str]:
    context = row["context"]
    return [context] if isinstance(context, str) else list(context)


def write_atomic(path: Path, lines: list[str]) -> None:
    """Write via a temp file in the same directory and rename: no partial output survives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _labelled_rows(data: Path) -> list[dict[str, Any]]:
    if not data.is_file():
        raise InputFileError(
            f"{data}: labelled data not found. The dev set is read in place from ../shared/evaldata/dev.jsonl "
            "(relative to the repository root) and is never copied into the repository; pass --data PATH."
        )
    return read_jsonl(data, need_label=True)


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------


def cmd_detect(args: argparse.Namespace) -> int:
    from evals.checker import get_checker

    rows = read_jsonl(Path(args.input))  # validate everything before any model work
    checker = get_checker()
    out = []
    for row in rows:
        verdict = checker.check(str(row["answer"]), passages_of(row), str(row.get("question") or ""))
        out.append(json.dumps({"id": row["id"], "score": round(verdict.score, 6), "label": verdict.label}) + "\n")
    write_atomic(Path(args.output), out)
    print(f"wrote {len(out)} verdicts to {args.output}", file=sys.stderr)
    return 0


def _dev_examples(data: Path) -> tuple[Any, list[Any]]:
    from evals.checker import E5Embedder, FaithfulnessChecker, default_cache_path, featurize

    rows = _labelled_rows(data)
    # Persistent vector cache (outside the repo) so a second run does not re-embed dev.
    embedder = E5Embedder(cache_path=default_cache_path(), max_items=200_000)
    checker = FaithfulnessChecker(embedder=embedder)
    print(f"featurising {len(rows)} examples (first run embeds every window: a few minutes)...", file=sys.stderr)
    examples = featurize(rows, checker)
    embedder.save()
    return checker, examples


def cmd_calibrate(args: argparse.Namespace) -> int:
    from evals.checker import CALIBRATION_PATH, evaluate_examples, fit_calibration, measure_xling_offset

    checker, examples = _dev_examples(Path(args.data))
    offset = measure_xling_offset(checker.embedder)
    cal = fit_calibration(examples, checker, xling_offset=offset)
    cal["fitted_on"] = {"examples": len(examples), "slices": sorted({e.slice for e in examples})}
    out = Path(args.output) if args.output else CALIBRATION_PATH
    write_atomic(out, [json.dumps(cal, indent=2) + "\n"])
    checker.embedder.save()
    print(f"wrote {out}")
    print(format_report(evaluate_examples(examples, checker, cv_repeats=args.cv_repeats), checker.threshold))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from evals.checker import evaluate_examples

    checker, examples = _dev_examples(Path(args.data))
    if checker.model is None:
        raise InputFileError(f"{checker.calibration_path}: no calibration; run `python -m evals calibrate` first")
    report = evaluate_examples(examples, checker, cv_repeats=args.cv_repeats)
    report["threshold"] = checker.threshold
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report, checker.threshold))
    return 0


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------

_COLUMNS = (
    ("checker_cv", "checker, 5-fold CV"),
    ("checker_in_sample", "checker, in-sample"),
    ("floor", "floor (absent words)"),
)


def format_report(report: dict[str, Any], threshold: float) -> str:
    cols = [(key, title) for key, title in _COLUMNS if key in report]
    width = 24
    lines = [
        f"{'':22s}{'':>5s}" + "".join(f" | {title[:width]:<{width}s}" for _, title in cols),
        f"{'slice':22s}{'n':>5s}" + "".join(f" | {'AUROC':>6s} {'BalAcc':>7s} {'F1':>6s}   " for _ in cols),
    ]

    def row(name: str, n: str, getter: Any) -> str:
        cells = []
        for key, _ in cols:
            m = getter(report[key])
            cells.append(f" | {m['auroc']:6.3f} {m['balanced_accuracy']:7.3f} {m['f1']:6.3f}   ")
        return f"{name:22s}{n:>5s}" + "".join(cells)

    first = report[cols[0][0]]["slices"]
    for s in first:
        lines.append(row(s, str(int(first[s]["n"])), lambda r, s=s: r["slices"][s]))
    lines.append(row(f"macro (mean of {len(first)})", "", lambda r: r["macro"]))
    n_total = sum(int(v["n"]) for v in first.values())
    lines.append(row("pooled", str(n_total), lambda r: r["pooled"]))
    lines.append(
        f"threshold {threshold:.3f} (hallucinated if score >= threshold); "
        "BalAcc/F1 use one global threshold, F1 is for the hallucinated class; "
        "CV refits weights and threshold on each training fold."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _detect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="JSONL with id, context, question, answer (label optional)")
    p.add_argument("--output", required=True, help="JSONL to write: one {id, score, label} per line")


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(DEV_PATH), help=f"labelled JSONL (default: {DEV_PATH})")
    p.add_argument("--cv-repeats", type=int, default=3, help="shuffles of the 5-fold CV to average (0: skip CV)")


def _calibrate_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--output", default=None, help="where to write the calibration (default: evals/calibration.json)")


def _report_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


# Other steps add their subcommands here: name -> Command(help, configure, run).
COMMANDS: dict[str, Command] = {
    "detect": Command("score answers in a JSONL file against their contexts", _detect_args, cmd_detect),
    "calibrate": Command(
        "fit the checker on labelled data, write evals/calibration.json", _calibrate_args, cmd_calibrate
    ),
    "report": Command("AUROC / balanced accuracy / F1 per slice, next to the floor", _report_args, cmd_report),
    "attacks": Command("run the attack probes against a backend, count the wins", attacks.configure, attacks.main),
    "run": Command("answer the gold questions, score them; write results.json, report.html", run.configure, run.main),
    "calibrate-abstain": Command(
        "fit the abstention rule on labelled questions, write agent/abstain.json", abstain.configure, abstain.main
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.configure(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except InputFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
