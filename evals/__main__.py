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
# PERSONA_DEV_DATA points elsewhere (e.g. from a git worktree, whose parent has no shared/).
DEV_PATH = Path(os.environ.get("PERSONA_DEV_DATA") or REPO_ROOT.parent / "shared" / "evaldata" / "dev.jsonl")
KOREAN_PATH = Path(__file__).with_name("datasets") / "checker_ko.jsonl"
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
    from agent.checker import get_checker

    llm = None
    if args.judge:
        from evals.judges import LLMJudge

        llm = LLMJudge.from_env()
        if llm is None:
            raise InputFileError(
                "--judge needs an OpenAI-compatible model: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL "
                "(a compatible server), and PERSONA_JUDGE_MODEL or PERSONA_CHAT_MODEL for the model"
            )
    rows = read_jsonl(Path(args.input))  # validate everything before any model work
    checker = get_checker()
    if llm is not None:
        from evals.judges import compare_judges, format_comparison, judge_both

        records = judge_both(rows, checker, llm)
        out = [
            json.dumps(
                {
                    "id": r["id"],
                    "score": r["checker_score"],
                    "label": r["checker_label"],
                    "llm": {k[4:]: r[k] for k in ("llm_status", "llm_faithfulness", "llm_label", "llm_error")},
                },
                ensure_ascii=False,
            )
            + "\n"
            for r in records
        ]
        write_atomic(Path(args.output), out)
        print(format_comparison(compare_judges(records)))
    else:
        out = []
        for row in rows:
            verdict = checker.check(str(row["answer"]), passages_of(row), str(row.get("question") or ""))
            out.append(json.dumps({"id": row["id"], "score": round(verdict.score, 6), "label": verdict.label}) + "\n")
        write_atomic(Path(args.output), out)
    print(f"wrote {len(out)} verdicts to {args.output}", file=sys.stderr)
    return 0


def _checker_for_data() -> Any:
    from agent.checker import E5Embedder, FaithfulnessChecker, default_cache_path

    # Persistent vector cache (outside the repo) so a second run does not re-embed dev.
    embedder = E5Embedder(cache_path=default_cache_path(), max_items=200_000)
    return FaithfulnessChecker(embedder=embedder)


def _split_examples(data: Path, checker: Any, parts: tuple[str, ...]) -> dict[str, list[Any]]:
    """Featurised examples of the requested parts ("tuning", "locked") of the labelled set;
    rows of other parts are never read past their id and context."""
    from evals.selection import featurize
    from evals.split import split_rows

    rows = _labelled_rows(data)
    side = split_rows(rows)
    out: dict[str, list[Any]] = {}
    for part in parts:
        chosen = [r for r in rows if side[str(r["id"])] == part]
        print(
            f"featurising the {part} part: {len(chosen)} examples (the first run embeds every window)...",
            file=sys.stderr,
        )
        out[part] = featurize(chosen, checker)
    checker.embedder.save()
    return out


def cmd_calibrate(args: argparse.Namespace) -> int:
    from agent.checker import CALIBRATION_PATH, measure_xling_offset
    from evals.selection import fit_calibration, nested_cv, repeated_cv, select
    from evals.split import LOCKED_SHARE, SEED

    checker = _checker_for_data()
    tuning = _split_examples(Path(args.data), checker, ("tuning",))["tuning"]
    print(f"choosing among candidates by repeated grouped CV on {len(tuning)} tuning examples...", file=sys.stderr)
    config, table = select(tuning)
    cv = repeated_cv(tuning, config)
    nested = nested_cv(tuning) if args.nested else None
    cal = fit_calibration(tuning, config, checker, xling_offset=measure_xling_offset(checker.embedder))
    cal["selection"] = {
        "split": {"seed": SEED, "locked_share": LOCKED_SHARE, "tuning_examples": len(tuning)},
        "chosen": {"spec": config.spec_name, "C": config.c, "contradiction_floor": config.contradiction_floor},
        "candidates": [
            {
                "spec": row["config"].spec_name,
                "C": row["config"].c,
                "contradiction_floor": row["config"].contradiction_floor,
                "macro_auroc": round(row["auroc"], 4),
                "macro_balanced_accuracy": round(row["bacc"], 4),
            }
            for row in table
        ],
        "tuning_cv": _round(cv),
        "tuning_nested_cv": _round(nested) if nested else None,
    }
    out = Path(args.output) if args.output else CALIBRATION_PATH
    write_atomic(out, [json.dumps(cal, indent=2) + "\n"])
    checker.embedder.save()
    print(
        f"wrote {out}: {config.spec_name}, C={config.c}, contradiction floor {config.contradiction_floor}, "
        f"threshold {cal['threshold']:.3f}"
    )
    print(_format_cv("tuning part, repeated grouped 5-fold CV of the chosen candidate", cv))
    if nested:
        print(_format_cv("tuning part, nested CV (the selection itself cross-validated)", nested))
    return 0


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


def cmd_report(args: argparse.Namespace) -> int:
    from evals.selection import checker_report

    checker = _checker_for_data()
    if checker.model is None:
        raise InputFileError(f"{checker.calibration_path}: no calibration; run `python -m evals calibrate` first")
    parts = _split_examples(Path(args.data), checker, ("tuning", "locked"))
    korean = featurize_korean(checker) if KOREAN_PATH.is_file() else []
    report = checker_report(parts["tuning"], parts["locked"], korean, checker)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def featurize_korean(checker: Any) -> list[Any]:
    from evals.selection import featurize

    return featurize(read_jsonl(KOREAN_PATH, need_label=True), checker)


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def _format_cv(title: str, figures: dict[str, Any]) -> str:
    lines = [title, f"  {'slice':22s} {'AUROC':>6s} {'BalAcc':>7s}"]
    for name, m in figures["slices"].items():
        lines.append(f"  {name:22s} {m['auroc']:6.3f} {m['balanced_accuracy']:7.3f}")
    lines.append(f"  {'macro':22s} {figures['macro']['auroc']:6.3f} {figures['macro']['balanced_accuracy']:7.3f}")
    return "\n".join(lines)


def _table(title: str, part: dict[str, Any]) -> list[str]:
    checker, floor = part["checker"], part["floor"]
    lines = [
        title,
        f"  {'slice':22s} {'n':>4s} | {'AUROC':>7s} {'floor':>6s} | {'BalAcc':>7s} {'floor':>6s} | {'F1':>6s}",
    ]
    for name, m in checker["slices"].items():
        f = floor["slices"][name]
        lines.append(
            f"  {name:22s} {int(m['n']):4d} | {m['auroc']:7.3f} {f['auroc']:6.3f} | "
            f"{m['balanced_accuracy']:7.3f} {f['balanced_accuracy']:6.3f} | {m['f1']:6.3f}"
        )
    for key, label in (("macro", f"macro (mean of {len(checker['slices'])})"), ("pooled", "pooled")):
        m, f = checker[key], floor[key]
        lines.append(
            f"  {label:22s} {'':4s} | {m['auroc']:7.3f} {f['auroc']:6.3f} | "
            f"{m['balanced_accuracy']:7.3f} {f['balanced_accuracy']:6.3f} | {m['f1']:6.3f}"
        )
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The report as text: one table per part, the checker next to the word-overlap floor."""
    c = report["chosen"]
    lines = [
        f"checker: {c['spec']}, C={c['C']}, contradiction floor {c['contradiction_floor']}, "
        f"threshold {report['threshold']:.3f} (hallucinated if score >= threshold); "
        f"floor = share of answer words absent from the context, threshold {report['floor_threshold']:.3f}",
        "",
    ]
    lines += _table("TUNING part (chosen on it): repeated grouped 5-fold CV; floor in-sample", report["tuning"])
    nested = report.get("tuning_nested_cv")
    if nested:
        lines.append(
            f"  nested CV of the whole selection on the tuning part: macro AUROC {nested['macro']['auroc']:.3f}, "
            f"BalAcc {nested['macro']['balanced_accuracy']:.3f}"
        )
    if "locked" in report:
        lines += ["", *_table("LOCKED part (never used to choose or fit): installed calibration", report["locked"])]
    if "korean" in report:
        lines += ["", *_table("KOREAN set (evals/datasets/checker_ko.jsonl, never fitted on)", report["korean"])]
    lines.append("")
    lines.append("BalAcc/F1 at one global threshold chosen on the tuning part; F1 is for the hallucinated class.")
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
    p.add_argument(
        "--judge",
        action="store_true",
        help="also ask the LLM judge (OPENAI_API_KEY / OPENAI_BASE_URL, PERSONA_JUDGE_MODEL): each line gains "
        "an 'llm' verdict, and agreement plus each judge against the labels (when the input has them) is printed",
    )


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(DEV_PATH), help=f"labelled JSONL (default: {DEV_PATH})")


def _calibrate_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument(
        "--nested",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also cross-validate the whole selection (nested CV) on the tuning part (default on)",
    )
    p.add_argument("--output", default=None, help="where to write the calibration (default: agent/calibration.json)")


def _report_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


# Other steps add their subcommands here: name -> Command(help, configure, run).
COMMANDS: dict[str, Command] = {
    "detect": Command("score answers in a JSONL file against their contexts", _detect_args, cmd_detect),
    "calibrate": Command(
        "choose and fit the checker on the tuning part of dev, write agent/calibration.json",
        _calibrate_args,
        cmd_calibrate,
    ),
    "report": Command(
        "the checker on the tuning (CV) and locked parts of dev and the Korean set, next to the floor",
        _report_args,
        cmd_report,
    ),
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
