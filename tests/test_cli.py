"""The `persona` command, run as a user runs it: a subprocess with its own environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def persona(*args: str, home: Path, check: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PERSONA_HOME": str(home), **env}
    return subprocess.run(
        [sys.executable, "-m", "ui", *args], capture_output=True, text=True, env=environ, check=check, timeout=300
    )


def test_ask_json_has_a_valid_citation(indexed_home: Path) -> None:
    out = persona("ask", "What went wrong in your first big training run?", "--json", home=indexed_home, check=True)
    answer = json.loads(out.stdout)
    assert answer["backend"] == "extractive" and not answer["abstained"]
    text = (Path("knowledge/sources") / answer["citations"][0]["source"]).read_text("utf-8")
    for c in answer["citations"]:
        assert text[c["start"] : c["end"]] == c["quote"]


def test_personas_lists_the_four(indexed_home: Path) -> None:
    out = persona("personas", "--json", home=indexed_home, check=True)
    assert [p["id"] for p in json.loads(out.stdout)][:4] == ["raj", "diarist", "intern", "newcomer"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ask", "hi", "--persona", "nobody"), "unknown persona 'nobody'"),
        (("ask", "   "), "the question is empty"),
        (("ask", "hi", "--backend", "magic"), "unknown backend 'magic'"),
        (("ingest", "/no/such/folder", "--persona", "me"), "does not exist"),
        (("ingest", "."), "give --persona NAME"),
    ],
)
def test_errors_are_one_line_and_nonzero(indexed_home: Path, args: tuple[str, ...], message: str) -> None:
    out = persona(*args, home=indexed_home)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_missing_index_tells_how_to_build_it(tmp_path: Path) -> None:
    out = persona("ask", "What went wrong?", home=tmp_path)
    assert out.returncode == 2 and "run `persona ingest`" in out.stderr


def test_ingest_own_folder_then_ask_then_reingest_embeds_nothing(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lab.md").write_text(
        "# The cluster outage\nOn Tuesday the cluster went down for nine hours and we lost a checkpoint.\n"
        "# Reading group\nWe read a paper about sparse autoencoders and argued about features.\n",
        encoding="utf-8",
    )
    (notes / "broken.txt").write_bytes(b"\xff\xfe\x00\x00garbage")
    home = tmp_path / "home"
    first = persona("ingest", str(notes), "--persona", "me", "--json", home=home, check=True)
    report = json.loads(first.stdout)
    assert report["added"] == report["embedded"] == 2
    assert report["personas"][0]["skipped"][0]["file"] == "broken.txt"
    second = json.loads(persona("ingest", "--persona", "me", "--json", home=home, check=True).stdout)
    assert second["embedded"] == 0 and second["added"] == 0 and second["unchanged"] == 2
    listed = persona("personas", "--json", home=home, check=True)
    assert "me" in [p["id"] for p in json.loads(listed.stdout)]
    answer = json.loads(persona("ask", "How long was the cluster down?", "--persona", "me", "--json", home=home).stdout)
    assert not answer["abstained"]
    assert any("nine hours" in c["quote"] for c in answer["citations"])


def test_help_mentions_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "ui", "--help"], capture_output=True, text=True, check=True)
    for word in ("ingest", "ask", "personas", "serve", "PERSONA_HOME", "OPENAI_API_KEY"):
        assert word in out.stdout


def test_second_full_ingest_embeds_nothing(tmp_path: Path) -> None:
    first = json.loads(persona("ingest", "--json", home=tmp_path, check=True).stdout)
    assert first["embedded"] == first["chunks"] > 0
    second = json.loads(persona("ingest", "--json", home=tmp_path, check=True).stdout)
    assert second["embedded"] == 0 and second["unchanged"] == first["chunks"]


def test_a_user_personas_missing_folder_keeps_its_index_and_the_others_are_ingested(tmp_path: Path) -> None:
    """A notes folder moved or unmounted: `persona ingest` (all personas) skips it with a warning
    and keeps its index (ingesting "no files" would delete every chunk); asked for by name, it is
    a one-line error."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lab.md").write_text("# The cluster outage\nThe cluster went down for nine hours.\n", encoding="utf-8")
    home = tmp_path / "home"
    persona("ingest", str(notes), "--persona", "me", "--json", home=home, check=True)
    notes.rename(tmp_path / "moved")
    everyone = persona("ingest", "--json", home=home)
    assert everyone.returncode == 0, everyone.stderr
    assert "me's folder" in everyone.stderr and "is missing" in everyone.stderr
    assert "me" not in [p["persona"] for p in json.loads(everyone.stdout)["personas"]]
    by_name = persona("ingest", "--persona", "me", home=home)
    assert by_name.returncode == 2 and "is missing" in by_name.stderr and "Traceback" not in by_name.stderr
    answer = json.loads(persona("ask", "How long was the cluster down?", "--persona", "me", "--json", home=home).stdout)
    assert not answer["abstained"] and any("nine hours" in c["quote"] for c in answer["citations"])


def test_ingest_embeds_the_sentences_only_up_to_the_size_where_it_takes_minutes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Above ``WARM_SENTENCES_CHUNKS`` chunks `persona ingest` says it leaves the sentences to the
    answers and embeds none; at or below it, it embeds them (here: limits 1 and 10, two chunks)."""
    import ui.cli as cli

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Outage\nThe cluster went down for nine hours.\n", encoding="utf-8")
    (notes / "b.md").write_text("# Reading\nWe read about sparse autoencoders.\n", encoding="utf-8")
    monkeypatch.setenv("PERSONA_HOME", str(tmp_path / "home"))
    warmed: list[str] = []
    monkeypatch.setattr(cli, "warm_sentences", lambda agent, persona, batch=512: warmed.append(persona) or 0)
    monkeypatch.setattr(cli, "WARM_SENTENCES_CHUNKS", 1)
    assert cli.main(["ingest", str(notes), "--persona", "me"]) == 0
    assert warmed == [] and "over 1: their sentences are not embedded now" in capsys.readouterr().err
    (notes / "c.md").write_text("# Later\nA third note.\n", encoding="utf-8")
    monkeypatch.setattr(cli, "WARM_SENTENCES_CHUNKS", 10)
    assert cli.main(["ingest", "--persona", "me"]) == 0
    assert warmed == ["me"] and "not embedded now" not in capsys.readouterr().err


def test_a_persona_made_from_one_note_reingests_that_note_alone(tmp_path: Path) -> None:
    """`persona ingest FILE --persona one` reads one note; a later re-ingest used to read every note
    in its folder (the card kept only the folder), so ~/Downloads/notes.txt swept in all of
    ~/Downloads. The card keeps the note (PersonaCard.origin) and says where the writings are."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lab.md").write_text("# The cluster outage\nThe cluster went down for nine hours.\n", encoding="utf-8")
    (notes / "diet.md").write_text("# Lunch\nI ate a sandwich on the bench outside.\n", encoding="utf-8")
    home = tmp_path / "home"
    first = json.loads(persona("ingest", str(notes / "lab.md"), "--persona", "one", "--json", home=home).stdout)
    assert first["added"] == 1
    again = json.loads(persona("ingest", "--persona", "one", "--json", home=home, check=True).stdout)
    assert again["added"] == 0 and again["unchanged"] == 1
    listed = json.loads(persona("personas", "--json", home=home, check=True).stdout)
    (card,) = [p for p in listed if p["id"] == "one"]
    assert str(notes / "lab.md") in json.dumps(card)
    (notes / "lab.md").rename(tmp_path / "lab.md")
    by_name = persona("ingest", "--persona", "one", home=home)
    assert by_name.returncode == 2 and "one's note" in by_name.stderr and "is missing" in by_name.stderr


def test_help_lists_every_variable_the_readme_configuration_table_does() -> None:
    """The README says `persona --help` lists the environment variables of its Configuration table."""
    import re
    from pathlib import Path

    from ui.cli import EPILOG

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Configuration", 1)[1].split("\n### ", 1)[0]
    names = set(re.findall(r"`((?:PERSONA|OPENAI)_[A-Z_]+)`", table))
    assert "PERSONA_STRICT" in names and len(names) >= 10
    assert sorted(n for n in names if n not in EPILOG) == []
