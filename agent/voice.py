"""Voice: the writer's third-person self-references turned into first person, outside quoted speech.

The diaries' narrator sometimes names the writer ("That day, Raj learned: ...", "Raj는 깨달았다").
An answer in the writer's own voice says "I" there, while its citation still quotes the source
verbatim. Quoted speech is left alone: "So you've seen it too, Raj." is what someone else said.
"""

from __future__ import annotations

import re

# Straight and curly double quotes; single quotes are apostrophes too often to count as speech.
QUOTE_CHARS = '"“”'

# English verbs whose third-person form changes with "I" (the diaries are mostly past tense).
_EN_AGREE = {
    "is": "am",
    "was": "was",
    "has": "have",
    "does": "do",
    "doesn't": "don't",
    "isn't": "am not",
    "hasn't": "haven't",
    "says": "say",
    "thinks": "think",
    "believes": "believe",
    "knows": "know",
    "writes": "write",
    "feels": "feel",
    "wants": "want",
    "sees": "see",
}
# A word right before the name that makes it an object ("told Raj" -> "told me").
_EN_OBJECT_BEFORE = re.compile(
    r"(?:\b(?:to|for|with|at|about|of|from|by|asked|told|gave|showed|helped|called|made|let|thanked)\s+)$", re.I
)
_KO_PARTICLES = (
    ("는", "나는"),
    ("은", "나는"),
    ("가", "내가"),
    ("이", "내가"),
    ("의", "나의"),
    ("를", "나를"),
    ("을", "나를"),
    ("도", "나도"),
    ("에게", "나에게"),
    ("한테", "나한테"),
    ("와", "나와"),
    ("과", "나와"),
    ("만", "나만"),
)


def self_names(name: str) -> tuple[str, ...]:
    """How the writings may name the writer: the card's name when it is a person's ("Raj"), not a
    role ("The Diarist")."""
    first = name.split()[0] if name.split() else ""
    if not first or first.lower() in {"the", "a", "an"}:
        return ()
    return (first,)


def _speech_mask(text: str) -> list[bool]:
    """True at each character inside double-quoted speech (quote marks included)."""
    mask = [False] * len(text)
    inside = False
    for i, ch in enumerate(text):
        if ch in QUOTE_CHARS:
            if ch == "“":
                inside = True
            elif ch == "”":
                mask[i] = True
                inside = False
                continue
            else:
                inside = not inside
                if not inside:
                    mask[i] = True
                    continue
        mask[i] = inside
    return mask


def in_speech(text: str, pos: int) -> bool:
    """True when offset ``pos`` of ``text`` lies inside double-quoted speech."""
    if pos <= 0:
        return False
    return _speech_mask(text[:pos] + " ")[pos]


def self_references(text: str, names: tuple[str, ...]) -> list[tuple[int, int]]:
    """Spans of ``names`` used outside quoted speech (each a whole word, possessive included)."""
    if not names:
        return []
    mask = _speech_mask(text)
    pattern = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(n) for n in names) + r")(?:'s|’s)?(?![A-Za-z])")
    return [(m.start(), m.end()) for m in pattern.finditer(text) if not mask[m.start()]]


def to_first_person(text: str, names: tuple[str, ...]) -> str:
    """``text`` with the writer's ``names`` (outside quoted speech) in the first person.

    English: "Raj" -> "I" (or "me" after a verb or preposition), "Raj's" -> "my"; "his"/"himself"
    in the same sentence -> "my"/"myself"; a present-tense verb right after agrees ("Raj is" ->
    "I am"). Korean: "Raj는/가/의/를 ..." -> "나는/내가/나의/나를 ...".
    """
    spans = self_references(text, names)
    if not spans:
        return text
    out: list[str] = []
    last = 0
    rewritten_sentences: list[tuple[int, int]] = []
    for a, b in spans:
        out.append(text[last:a])
        word = text[a:b]
        before = text[:a]
        after = text[b:]
        sentence_start = not before.strip() or before.rstrip()[-1] in ".!?:;\n"
        if after[:1] and "\uac00" <= after[:1] <= "\ud7a3":
            # Korean: the particle decides the pronoun's form.
            for particle, pronoun in _KO_PARTICLES:
                if after.startswith(particle):
                    out.append(pronoun)
                    b += len(particle)
                    break
            else:
                out.append("나")
        elif word.endswith(("'s", "’s")):
            out.append("My" if sentence_start else "my")
        elif _EN_OBJECT_BEFORE.search(before) and not sentence_start:
            out.append("me")
        else:
            out.append("I")
            m = re.match(r"(\s+)([A-Za-z']+)", text[b:])
            if m and m.group(2).lower() in _EN_AGREE:
                out.append(m.group(1) + _EN_AGREE[m.group(2).lower()])
                b += m.end()
        rewritten_sentences.append((a, b))
        last = b
    out.append(text[last:])
    result = "".join(out)
    if any(_is_latin(text[a:b]) for a, b in spans):
        result = _possessives(result)
    return result


def _is_latin(s: str) -> bool:
    return any("a" <= ch.lower() <= "z" for ch in s)


def _possessives(text: str) -> str:
    """ "his"/"himself" outside speech in a sentence that now has "I"/"my" -> "my"/"myself"."""
    mask = _speech_mask(text)
    out = []
    last = 0
    for m in re.finditer(r"\b(his|himself|He|he)\b", text):
        if mask[m.start()]:
            continue
        sent_start = max(text.rfind(p, 0, m.start()) for p in (". ", "! ", "? ", "\n"))
        sentence = text[sent_start + 1 : m.start()]
        if not re.search(r"\b(?:I|my|My|me)\b", sentence):
            continue
        word = m.group(1)
        repl = {"his": "my", "himself": "myself", "He": "I", "he": "I"}[word]
        out.append(text[last : m.start()] + repl)
        last = m.end()
    out.append(text[last:])
    return "".join(out)
