"""Personas: the bundled cards in prompts/personas and the user's own under PERSONA_HOME."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from knowledge.config import BUNDLED_SOURCES, Settings
from knowledge.errors import ConfigError, UnknownPersonaError

DEFAULT_PERSONA = "raj"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class PersonaCard:
    id: str
    name: str
    bio: str
    sources: tuple[str, ...]  # file names (or relative paths) under sources_dir
    sources_dir: Path
    voice: str = ""
    stance: str = ""
    language: str = "en"
    examples_en: tuple[str, ...] = ()
    examples_ko: tuple[str, ...] = ()
    bundled: bool = True
    extra: dict[str, str] = field(default_factory=dict)
    # What `persona ingest PATH` was given: the notes folder, or one note (then ``sources_dir`` is
    # its folder, and a re-ingest reads that note alone, not every note beside it). None: the
    # folder ``sources_dir``.
    origin: Path | None = None

    def source_paths(self) -> list[Path]:
        return [self.sources_dir / s for s in self.sources]


def validate_persona_id(name: str) -> str:
    if not _ID.match(name):
        raise ConfigError(
            f"persona name {name!r} is not valid: use 1-40 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def _card_from_toml(data: dict[str, object], *, bundled: bool, default_dir: Path) -> PersonaCard:
    def text(key: str, default: str = "") -> str:
        value = data.get(key, default)
        return str(value).strip()

    def strs(key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    sources_dir = Path(str(data["sources_dir"])) if data.get("sources_dir") else default_dir
    return PersonaCard(
        id=validate_persona_id(text("id")),
        name=text("name") or text("id"),
        bio=text("bio"),
        sources=strs("sources"),
        sources_dir=sources_dir,
        voice=text("voice"),
        stance=text("stance"),
        language=text("language", "en"),
        examples_en=strs("examples_en"),
        examples_ko=strs("examples_ko"),
        bundled=bundled,
        origin=Path(str(data["origin"])) if data.get("origin") else None,
    )


def bundled_personas() -> dict[str, PersonaCard]:
    cards: dict[str, PersonaCard] = {}
    for item in sorted(resources.files("prompts").joinpath("personas").iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            card = _card_from_toml(tomllib.loads(item.read_text("utf-8")), bundled=True, default_dir=BUNDLED_SOURCES)
            cards[card.id] = card
    return cards


def user_personas(settings: Settings) -> dict[str, PersonaCard]:
    cards: dict[str, PersonaCard] = {}
    folder = settings.personas_dir
    if not folder.is_dir():
        return cards
    for path in sorted(folder.glob("*.toml")):
        try:
            card = _card_from_toml(tomllib.loads(path.read_text("utf-8")), bundled=False, default_dir=folder)
        except (tomllib.TOMLDecodeError, KeyError, ConfigError) as exc:
            raise ConfigError(f"persona card {path} is broken ({exc}): fix or delete it") from None
        cards[card.id] = card
    return cards


def list_personas(settings: Settings | None = None) -> list[PersonaCard]:
    """Every persona: the bundled four first (raj first), then the user's own."""
    settings = settings or Settings.from_env()
    cards = bundled_personas()
    for pid, card in user_personas(settings).items():
        cards.setdefault(pid, card)
    ordered = sorted(cards.values(), key=lambda c: (c.id != DEFAULT_PERSONA, not c.bundled, c.id))
    return ordered


def get_persona(persona: str, settings: Settings | None = None) -> PersonaCard:
    cards = {c.id: c for c in list_personas(settings)}
    card = cards.get(persona)
    if card is None:
        raise UnknownPersonaError(
            f"unknown persona {persona!r}: choose one of {', '.join(cards)} "
            "(or add your own with `persona ingest PATH --persona NAME`)"
        )
    return card


def save_user_persona(
    settings: Settings,
    persona: str,
    folder: Path,
    sources: list[str],
    name: str | None = None,
    origin: Path | None = None,
) -> PersonaCard:
    """Write (or refresh) a user persona's card: its folder and the files found in it; ``origin``:
    the one note the persona was made from, when it was not a whole folder (PersonaCard.origin).
    Raises ConfigError for a bundled persona's id, and what validate_persona_id raises."""
    validate_persona_id(persona)
    if persona in bundled_personas():
        raise ConfigError(f"{persona!r} is a bundled persona: pick another name for your own writings")
    settings.personas_dir.mkdir(parents=True, exist_ok=True)
    display = name or persona.replace("-", " ").replace("_", " ").title()
    lines = [
        f"id = {_toml_str(persona)}",
        f"name = {_toml_str(display)}",
        f"bio = {_toml_str(f'Writings from {origin or folder}')}",
        f"sources_dir = {_toml_str(str(folder))}",
        "sources = [" + ", ".join(_toml_str(s) for s in sources) + "]",
    ]
    if origin is not None:
        lines.append(f"origin = {_toml_str(str(origin))}")
    path = settings.personas_dir / f"{persona}.toml"
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return get_persona(persona, settings)


def _toml_str(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
