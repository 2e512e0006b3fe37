"""CI gate: the extractive backend on the full gold set must stay within the margins of evals/baseline.json.

The run goes through `persona eval` (its main(), in-process) against the shared test index, without
the checker's dev figures and the LLM judge, and without the attack probes: tests/test_security.py
runs those, and `persona eval --baseline` gates their count too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from evals import run
from ui.cli import main as cli_main

ARGS = ["eval", "--backend", "extractive", "--no-attacks", "--no-dev", "--quiet"]


@pytest.fixture(scope="module")
def full_run(indexed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    out = tmp_path_factory.mktemp("gate")
    kept: dict[str, Any] = {}
    real = run.run_eval

    def keep(*args: Any, **kwargs: Any) -> dict[str, Any]:
        kept["results"] = real(*args, **kwargs)
        return kept["results"]  # type: ignore[no-any-return]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "run_eval", keep)
        code = cli_main([*ARGS, "--out", str(out), "--baseline", str(run.BASELINE)])
    return code, kept["results"]


def test_gate_passes_against_the_committed_baseline(full_run: tuple[int, dict[str, Any]]) -> None:
    code, results = full_run
    gate = results["gate"]
    assert gate["passed"], gate["regressions"]
    assert code == 0
    # 187 gold questions and the stance inventory's 68 (34 views in English and Korean).
    assert results["meta"]["n_questions"] == 255 and results["by_backend"]["extractive"]["errors"] == 0
    checked = {c["metric"] for c in gate["checks"]}
    assert {"hit@5", "key_fact_recall", "faithfulness", "abstention_recall", "false_premise_correction"} <= checked
    assert {"stance_agreement", "third_person_refs", "markers_in_speech", "median_markers"} <= checked


def test_gate_fails_when_the_baseline_is_better_than_achieved(
    full_run: tuple[int, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, results = full_run
    better = json.loads(run.BASELINE.read_text("utf-8"))
    # A baseline better than achieved by more than the margin: 0.992 + 0.05 + 0.01 -> 1.052 (not a
    # possible share: the gate does not care, it only compares).
    achieved = results["by_backend"]["extractive"]["hit@5"]
    claimed = round(achieved + run.MARGINS["hit@5"] + 0.01, 6)
    better["backends"]["extractive"]["metrics"]["hit@5"] = claimed
    verdict = run.gate(results, better)
    assert not verdict.passed
    assert [(r["metric"], r["baseline"], r["current"]) for r in verdict.regressions] == [("hit@5", claimed, achieved)]
    # Within the margin it still passes: 0.04 better than achieved is noise, not a regression.
    better["backends"]["extractive"]["metrics"]["hit@5"] = achieved + 0.04
    assert run.gate(results, better).passed
    better["backends"]["extractive"]["metrics"]["hit@5"] = claimed
    # The command exits 1 on it (the run above is reused, not repeated).
    path = tmp_path / "better.json"
    path.write_text(json.dumps(better), encoding="utf-8")
    rerun = {k: v for k, v in copy.deepcopy(results).items() if k != "gate"}
    monkeypatch.setattr(run, "run_eval", lambda *a, **k: rerun)
    assert cli_main([*ARGS, "--out", str(tmp_path / "out"), "--baseline", str(path)]) == 1
    assert json.loads((tmp_path / "out" / "results.json").read_text("utf-8"))["gate"]["passed"] is False


# --- the gate's rules, on hand-made figures --------------------------------------------------------


def _results(**figures: Any) -> dict[str, Any]:
    attacks = figures.pop("attacks", None)
    metrics = {k: 0.8 for k in run.MARGINS} | figures
    return {
        "meta": {"n_questions": 10},
        "by_backend": {"extractive": metrics},
        "attacks": {"extractive": {"tried": 5, "succeeded": attacks} if attacks is not None else {"skipped": "off"}},
    }


def test_gate_margins() -> None:
    base = run.compact(_results(attacks=0))
    assert run.gate(_results(attacks=0), base).passed
    # Within the margin passes, beyond it fails; the margin is absolute.
    assert run.gate(_results(**{"hit@5": 0.76}), base).passed
    assert not run.gate(_results(**{"hit@5": 0.74}), base).passed
    assert run.gate(_results(abstention_recall=0.71), base).passed
    assert not run.gate(_results(abstention_recall=0.69), base).passed
    # Better is always fine.
    assert run.gate(_results(faithfulness=1.0, attacks=0), base).passed


def test_gate_fails_when_a_lower_is_better_count_rises() -> None:
    base = run.compact(_results(attacks=0, third_person_refs=0, markers_in_speech=0))
    assert run.gate(_results(attacks=0, third_person_refs=0, markers_in_speech=0), base).passed
    failed = run.gate(_results(attacks=0, third_person_refs=2, markers_in_speech=0), base)
    assert [r["metric"] for r in failed.regressions] == ["third_person_refs"]


def test_gate_counts_any_new_attack_success() -> None:
    base = run.compact(_results(attacks=0))
    failed = run.gate(_results(attacks=1), base)
    assert [r["metric"] for r in failed.regressions] == ["attacks_succeeded"]


def test_gate_notes_what_it_could_not_compare() -> None:
    base = run.compact(_results(attacks=0))
    base["n_questions"] = 141
    current = _results(key_fact_recall=None)  # nothing measured, and no attack run
    verdict = run.gate(current, base)
    assert verdict.passed
    assert any("141 questions" in n for n in verdict.notes)
    assert any("key_fact_recall" in n for n in verdict.notes)
    assert any("attacks_succeeded" in n for n in verdict.notes)
    other = copy.deepcopy(base)
    other["backends"]["openai"] = other["backends"]["extractive"]
    assert any("openai" in n for n in run.gate(current, other).notes)


def test_a_full_results_json_works_as_a_baseline(tmp_path: Path) -> None:
    results = _results(attacks=0)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    assert run.gate(_results(attacks=0), run.read_baseline(path)).passed
    junk = tmp_path / "junk.json"
    junk.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError):
        run.read_baseline(junk)


def test_committed_baseline_is_the_full_extractive_run() -> None:
    base = json.loads(run.BASELINE.read_text("utf-8"))
    assert base["n_questions"] == 255 and base["limit"] is None and base["persona"] is None
    figures = base["backends"]["extractive"]["metrics"]
    assert set(figures) == set(run.MARGINS) | set(run.CEILINGS)
    assert base["backends"]["extractive"]["attacks_succeeded"] == 0
