"""Cross-lingual term bridge: the words of the writings a question's foreign words translate to.

A Korean question to writings in English (or an English one to Korean notes, or a Korean question
about a story Raj told only in his English diary) shares no term with the passages that answer it,
so the composer's term overlap (agent.compose) is blind and the small embedder's cosine decides
alone. The bridge gives the overlap back: each content word of the question that the writings never
use (Korean nouns, or English words of three letters or more that are not stop words) is embedded
and compared with the writings' own words in the other language (English words of the writings, or
the Korean nouns of their vocabulary), grouped by their lexical token; the nearest word is taken as
its translation when its cosine leads the next-nearest token's by at least ``MARGIN``. "인턴십" ->
"internship", "하이퍼파라미터" -> "hyperparameter", "benchmark" -> "벤치마크".

This is word translation by nearest neighbours in a shared multilingual embedding space (Mikolov,
Le & Sutskever 2013, "Exploiting similarities among languages for machine translation"), ranked
by cross-domain similarity local scaling (CSLS, Conneau et al. 2018, "Word translation without
parallel data"): a target word close to every word of the source language (a hub: "blue1brown"
came nearest to 성능, 초보자 and 역공학 for the newcomer) is discounted by its mean cosine to its
``HUB_K`` nearest words of a reference sample of that language (:func:`reference_words`), with a
margin criterion in the spirit of margin-based bitext mining (Artetxe & Schwenk 2019).
``MARGIN`` was chosen on half of the gold set (split by a hash of the question id) among 0.01 and
0.02, and reported on the other half (on raw cosines, before CSLS; the score stays in cosine units).

A bilingual dictionary goes first: when the question word (two syllables or more, for Korean) has
glosses in the Korean Learners' Dictionary of the National Institute of Korean Language (krdict,
한국어기초사전, as shipped in the ``namehint`` package: 45,886 headwords with their English
equivalents) and one of them is a word of the writings, the nearest such word by the score above
is its translation, with no margin: the dictionary, not the small embedder, says it translates
("압도" -> "overwhelming", "산업체" -> "industry", "이론" -> "theory", all of which the embedder
alone missed); a word the dictionary knows whose equivalents the writings never use is not
translated at all. A single-syllable noun (일, 때, 점) has too many senses for that and goes by the
embedder alone. A word without a dictionary entry may be a loanword or a name spelled in Hangul
(인턴십, 그로킹, 카파시): the writings' English words it may spell (:func:`transliterated`) are its
only candidates when there are any, as a dictionary's would be; else the embedder decides alone.
A word so spelled is the writer's own word in the other script (:func:`spelled`), and the abstention
rule does not count it among the words the writings lack (agent.coverage): "그로킹에 대해 어떻게
생각하세요?" is answered from Raj's English grokking entry.
Measured on the whole gold set (no parameter tuned on it): stance agreement 0.809 -> 0.824, gold
passage cited 0.837 -> 0.842 ("언러닝을 거친 모델은 ...?" now quotes Raj's unlearning entry).

Two Korean nouns side by side are also translated as one compound (:func:`compounds`), written
without the space: a compound noun is often two words whose translations alone miss it (해석 ->
"explanations", 가능성 -> "possibilities"; 해석가능성 -> "interpretability"). When the compound
translates, its translation stands for both nouns and theirs are dropped, unless it is only one of
theirs (환각 문제 -> "problems", as 문제 alone: 환각 keeps "hallucinations"). Measured on the whole
gold set (not tuned: there is no parameter): key facts 0.795 -> 0.801, gold passage cited 0.823 ->
0.828.

Only personas up to ``agent.retrieve.SCAN_CHUNKS`` chunks are bridged: the target words come from
the whole lower-cased text, which a larger persona never loads (agent.retrieve.has_word).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from knowledge.config import BUNDLED_SOURCES
from knowledge.text import STOPWORDS, detect_lang, has_hangul, korean_morphemes, lexical_tokens, morphemes

MARGIN = 0.01  # cosine lead of the nearest target token over the next one (see the module docstring)
DEPTH = 20  # nearest target words looked at per question word
HUB_K = 10  # reference words a target word's hubness is averaged over (Conneau et al. 2018 use 10)
REFERENCE = 400  # most frequent content words of the bundled writings in one language, at most
_EN_WORD = re.compile(r"[a-z][a-z0-9-]{2,}")
_HANGUL = re.compile(r"[가-힣]")
_HANGUL_WORD = re.compile(r"[가-힣]+")


def _english_words(lowered: str) -> list[str]:
    """The English content words of lower-cased text, in order: three letters or more, not stop words."""
    return [w for w in _EN_WORD.findall(lowered) if w not in STOPWORDS]


def source_words(question: str) -> tuple[str, list[str]]:
    """``(target language, words)``: the question's content words to translate (Korean nouns, tags
    NNG/NNP, for a Korean question, into "en"; English words of three letters or more that are not
    stop words, into "ko"), in order, without repeats."""
    if detect_lang(question) == "ko":
        return "en", list(dict.fromkeys(f for f, tag in korean_morphemes(question) if tag in ("NNG", "NNP")))
    words = _english_words(question.lower())
    return "ko", list(dict.fromkeys(words))


def compounds(question: str) -> list[tuple[str, str, str]]:
    """``(compound, first, second)`` for each two nouns next to each other in a Korean ``question``
    (a noun: a morpheme tagged NNG or NNP, with a noun-forming suffix, XSN, that follows it: 가능 +
    성), written without the space between them: "해석 가능성 연구" gives ("해석가능성", "해석",
    "가능성") and ("가능성연구", "가능성", "연구"). A Korean compound noun is often written as two
    words whose translations alone miss it: 해석 -> "explanations" and 가능성 -> "possibilities",
    where 해석가능성 is "interpretability". Only the first noun of a unit is among
    :func:`source_words`' words (they keep NNG/NNP alone: 가능, not 가능성); ``first``/``second`` are
    the units as written here. [] for a question without Hangul."""
    if not _HANGUL.search(question):
        return []
    units: list[tuple[str, int, int]] = []  # (noun with its suffix, start, end)
    for m in morphemes(question):
        if m.tag in ("NNG", "NNP"):
            units.append((m.form, m.start, m.end))
        elif m.tag == "XSN" and units and units[-1][2] == m.start:
            form, start, _ = units[-1]
            units[-1] = (form + m.form, start, m.end)
        else:
            units.append(("", m.start, m.end))  # anything else ends a run of nouns
    out = []
    for (a, _, a_end), (b, b_start, _) in zip(units, units[1:], strict=False):
        # Adjacent or one space apart, nothing else between them.
        if a and b and question[a_end:b_start].strip() == "" and b_start - a_end <= 1:
            out.append((a + b, a, b))
    return list(dict.fromkeys(out))


# Back-transliteration of Korean loanwords and names (그로킹 -> "grokking", 카파시 -> "Karpathy"):
# both the Hangul word and the writings' English word are reduced to a key of consonant classes,
# vowels dropped (Korean spells English vowels every which way), runs of one class merged, and the
# two keys compared. In the spirit of phonetic back-transliteration (Knight & Graehl 1998, "Machine
# transliteration"; for Korean, Kang & Choi 2000), with hand-written classes instead of learned
# ones: Korean loanword spelling follows the 1986 rules (외래어 표기법), which map English
# consonants to a few Hangul ones (f, p -> ㅍ; th, s, sh, ch -> ㅅ/ㅊ; r, l -> ㄹ; an r after a
# vowel is dropped: "karpathy" -> 카파시). A key of fewer than MIN_KEY classes says too little.
MIN_KEY = 3
MAX_SPELLINGS = 4  # English words one key may stand for, at most (more: the key says too little)
# Consonant class of each Hangul initial (19, in Unicode order) and final (28; the first is none).
_INITIAL_KEY = ("K", "K", "N", "T", "T", "L", "M", "P", "P", "S", "S", "", "S", "S", "S", "K", "T", "P", "")
_FINAL_KEY = (
    "", "K", "K", "KS", "N", "NS", "N", "T", "L", "LK", "LM", "LP", "LS", "LT", "LP", "L", "M", "P", "PS",
    "S", "S", "NG", "S", "S", "K", "T", "P", "",
)  # fmt: skip
_KEY_UNIT = re.compile(r"NG|[A-Z]")
_VOWELS = "aeiouy"
_VOWEL_SET = frozenset(_VOWELS)  # a one-letter slice past the end ("") is no vowel, as `in _VOWELS` would say


def _merged(key: str) -> tuple[str, ...]:
    out: list[str] = []
    for unit in _KEY_UNIT.findall(key):
        if not out or out[-1] != unit:
            out.append(unit)
    return tuple(out)


def hangul_key(word: str) -> tuple[str, ...]:
    """The consonant-class key of a Hangul word (see ``MIN_KEY``): 그로킹 -> ("K", "L", "K", "NG");
    characters other than Hangul syllables are skipped."""
    key = []
    for ch in word:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            key.append(_INITIAL_KEY[code // 588] + _FINAL_KEY[code % 28])
    return _merged("".join(key))


# English letters (and digraphs) by the Hangul consonant class Korean spelling gives them.
_LATIN_KEY = {"g": "K", "k": "K", "q": "K", "d": "T", "t": "T", "b": "P", "p": "P", "f": "P", "v": "P", "s": "S"}
_LATIN_KEY |= {"j": "S", "z": "S", "x": "KS", "l": "L", "n": "N", "m": "M"}
_DIGRAPHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ch", ("S", "K")),
    ("sh", ("S",)),
    ("th", ("S",)),
    ("ph", ("P",)),
    ("ng", ("NG",)),
    ("ck", ("K",)),
    ("gh", ("",)),
)


@lru_cache(maxsize=65536)
def latin_keys(word: str) -> frozenset[tuple[str, ...]]:
    """The consonant-class keys an English word may have in Korean spelling (several where the
    spelling is ambiguous: "ch" of "chris" is ㅋ, of "chain" ㅊ): "karpathy" -> {("K", "P", "S")}."""
    w = word.lower()
    keys = [""]
    i = 0
    while i < len(w):
        ch, nxt = w[i], w[i + 1 : i + 2]
        options = next((opts for digraph, opts in _DIGRAPHS if w.startswith(digraph, i)), None)
        step = 2 if options is not None else 1
        if options is None:
            if w.startswith("ti", i) and w[i + 2 : i + 3] in _VOWEL_SET:
                options = ("S", "T")  # "attention" -> 어텐션
            elif ch == "c":
                options = ("S",) if nxt and nxt in "eiy" else ("K",)
            elif ch == "r":
                options = ("L",) if nxt and nxt in _VOWELS else ("",)  # "internship" -> 인턴십
            else:
                options = (_LATIN_KEY.get(ch, ""),)
        keys = [k + o for k in keys for o in options]
        i += step
    return frozenset(_merged(k) for k in keys)


def transliterated(word: str, words: Sequence[str], tokens: Sequence[str]) -> frozenset[str] | None:
    """The lexical tokens of the English words of the writings (``words``, with their ``tokens``)
    that the Hangul ``word`` may spell, by consonant-class keys (:func:`hangul_key`,
    :func:`latin_keys`; a plural's "s" aside: Korean spells "hallucinations" as 할루시네이션): at
    most ``MAX_SPELLINGS`` of them, of which the bridge takes the one the embedder ranks first
    (카파시 -> "copies", "gaps", "gpus", "karpathy"). None when the key is shorter than ``MIN_KEY``,
    or nothing or too much matches."""
    key = hangul_key(word)
    if len(key) < MIN_KEY:
        return None
    hits = {t for w, t in zip(words, tokens, strict=True) if _keyed(key, w)}
    return frozenset(hits) if 0 < len(hits) <= MAX_SPELLINGS else None


def spells(word: str, english: str) -> bool:
    """True when the Hangul ``word`` may spell the English word ``english`` (:func:`hangul_key` in
    :func:`latin_keys`; a plural's "s" aside) and its key has two classes or more: 닐 -> "neel",
    난다 -> "nanda". Too short a key to search the writings by (``MIN_KEY``), but enough to confirm
    a word the embedder chose by itself: the two agree on a name."""
    key = hangul_key(word)
    return len(key) >= 2 and _keyed(key, english)


def _keyed(key: tuple[str, ...], english: str) -> bool:
    """Whether ``english`` (or, for a plural, the word without its "s") may have ``key``."""
    plural = len(english) > 3 and english.endswith("s")
    return key in latin_keys(english) or (plural and key in latin_keys(english[:-1]))


def target_words(lang: str, corpus_lower: str, vocabulary: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(words, tokens)`` a question word may translate to: for "en" the writings' English words
    (three letters or more, not stop words), for "ko" the Korean terms of their vocabulary (two
    syllables or more), each with its one lexical token (knowledge.text.lexical_tokens; words
    without exactly one are left out). Sorted, so the same writings give the same list."""
    if lang == "en":
        candidates = sorted(set(_english_words(corpus_lower)))
    else:
        candidates = sorted({t for t in vocabulary if len(t) >= 2 and _HANGUL.search(t)})
    words, tokens = [], []
    for w in candidates:
        toks = lexical_tokens(w)
        if len(toks) == 1:
            words.append(w)
            tokens.append(toks[0])
    return words, tokens


@lru_cache(maxsize=2)
def reference_words(lang: str) -> tuple[str, ...]:
    """A sample of ``lang``'s words for measuring hubness: the ``REFERENCE`` most frequent content
    words (Korean nouns, NNG of two syllables or more; English words as :func:`source_words` takes
    them) of the bundled writings in that language (knowledge/sources), ties in sorted order. Empty
    when none is found."""
    counts: Counter[str] = Counter()
    for path in sorted(BUNDLED_SOURCES.glob("*.txt")):
        text = path.read_text("utf-8")
        if detect_lang(text) != lang:
            continue
        if lang == "ko":
            counts.update(f for f, tag in korean_morphemes(text) if tag == "NNG" and len(f) >= 2)
        else:
            counts.update(_english_words(text.lower()))
    return tuple(w for w, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:REFERENCE])


@lru_cache(maxsize=1)
def dictionary() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """``(ko_en, en_ko)`` from the Korean Learners' Dictionary's English equivalents (krdict, shipped
    as ``namehint/dictionary.json``: ``{jamo key: {"word": headword, "meaning": "sense; sense"}}``).
    ``ko_en``: a Korean headword of two syllables or more -> the lexical tokens
    (knowledge.text.lexical_tokens) of its one-word English equivalents ("이론" -> {"theori"}; empty
    for a headword whose equivalents all have several words);
    ``en_ko``: an English lexical token -> the headwords it is a one-word equivalent of. Senses of
    several words ("optical illusion") are left out: their words alone are not the translation.
    Both empty, with a warning, when the package is missing or its file cannot be read."""
    import importlib.resources
    import json
    import warnings

    try:
        raw = json.loads(importlib.resources.files("namehint").joinpath("dictionary.json").read_text("utf-8"))
    except (ImportError, OSError, ValueError) as exc:
        note = f"no Korean-English dictionary (namehint: {exc}); the bridge uses the embedder alone"
        warnings.warn(note, stacklevel=2)
        return {}, {}
    ko_en: dict[str, set[str]] = {}
    en_ko: dict[str, set[str]] = {}
    for entry in raw.values():
        word, meaning = str(entry.get("word", "")), str(entry.get("meaning", ""))
        if len(word) < 2 or not _HANGUL_WORD.fullmatch(word):
            continue
        heads = ko_en.setdefault(word, set())
        for sense in (x.strip() for x in meaning.split(";")):
            toks = lexical_tokens(sense) if sense.isascii() else []
            if len(toks) == 1:
                heads.add(toks[0])
                en_ko.setdefault(toks[0], set()).add(word)
    return ({k: frozenset(v) for k, v in ko_en.items()}, {k: frozenset(v) for k, v in en_ko.items()})


@lru_cache(maxsize=4096)
def glosses(word: str, lang: str) -> frozenset[str] | None:
    """The lexical tokens ``word`` (a question word) may translate to in ``lang`` by the dictionary
    (:func:`dictionary`): for "en", the English equivalents of a Korean word; for "ko", the Korean
    headwords (their own lexical tokens) an English word is an equivalent of. None when the
    dictionary has no entry for it (an empty set: an entry without a one-word equivalent). Cached:
    the Korean headwords of an English word are tokenised by Kiwi once, not for every question."""
    ko_en, en_ko = dictionary()
    if lang == "en":
        return ko_en.get(word)
    toks = [t for t in lexical_tokens(word) if t in en_ko]
    if not toks:
        return None
    return frozenset(h for t in toks for head in en_ko[t] for h in lexical_tokens(head))


def known_across(question: str, vocabulary: frozenset[str] | set[str]) -> frozenset[str]:
    """The lexical tokens of an English ``question`` that ``vocabulary`` (the writings' lexical
    tokens) lacks but whose Korean equivalent it holds: a Korean Learners' Dictionary headword
    (:func:`dictionary`) that has the token among its one-word English equivalents and is itself
    one of the writings' tokens ("problem" -> 문제, "debate" -> 논쟁 in Raj's Korean diary). The
    headword must be a token whole: verbs and adjectives are headwords in their -다 form, which
    Kiwi splits, so only uninflected words (nouns) count; common verbs map to noise ("run" ->
    달려가다). For the unknown-word share of the abstention rule (agent.coverage.features): a
    question that names, in English, what the writer wrote about only in Korean is not asking
    about words the writings never use. Empty for a Korean question."""
    return frozenset(across(question, vocabulary))


def across(question: str, vocabulary: frozenset[str] | set[str]) -> dict[str, tuple[str, ...]]:
    """:func:`known_across`'s words, each with the Korean headwords (tokens of ``vocabulary``, sorted)
    it is an equivalent of: {"debat": ("논쟁",), "problem": ("문제",)}. The headwords are the terms
    an English question shares with the Korean writings (agent.pipeline passes them as the
    question's own terms to the views' and windows' term overlap). Empty for a Korean question."""
    if has_hangul(question):
        return {}
    en_ko = dictionary()[1]
    out: dict[str, tuple[str, ...]] = {}
    for t in lexical_tokens(question):
        if t not in vocabulary and t not in out:
            heads = tuple(sorted(h for h in en_ko.get(t, ()) if h in vocabulary))
            if heads:
                out[t] = heads
    return out


def same_word(token: str, gloss: str) -> bool:
    """True when a writings' lexical ``token`` is the dictionary's ``gloss`` token, or goes on from a
    gloss of five letters or more: Snowball stems derived forms apart ("verification" -> "verif",
    "verify" -> "verifi"). Not the other way: "relat" (related) does not begin to mean
    "relationship"."""
    return token == gloss or (len(gloss) >= 5 and token.startswith(gloss))


def hubness(targets: np.ndarray, reference: np.ndarray, k: int = HUB_K) -> np.ndarray:
    """r_S(y) of CSLS (Conneau et al. 2018): for each row of ``targets`` ((m, d) unit vectors), the
    mean cosine to its ``k`` nearest rows of ``reference`` ((r, d) unit vectors of words in the
    source language). Shape (m,); zeros when ``reference`` is empty."""
    if not len(reference) or not len(targets):
        return np.zeros(len(targets), dtype=np.float32)
    k = min(k, len(reference))
    return np.sort(targets @ reference.T, axis=1)[:, -k:].mean(axis=1)


def translate_rows(
    source: np.ndarray,
    targets: np.ndarray,
    words: Sequence[str],
    tokens: Sequence[str],
    margin: float = MARGIN,
    hub: np.ndarray | None = None,
    allowed: Sequence[frozenset[str] | None] = (),
) -> list[str | None]:
    """For each row of ``source`` ((n, d) unit vectors of question words), the target word (rows of
    ``targets``, (m, d) unit vectors, with their ``words`` and lexical ``tokens``) whose score leads
    the best word of any other token by at least ``margin``; none for a row without such a lead.
    ``allowed``: per row, the tokens a dictionary gives as its translations (:func:`glosses`), or
    None for a word the dictionary lacks: for a row with an entry, the best-scoring target word
    whose token is one of them (:func:`same_word`) is its translation, margin or not, and no other
    word is (a word the dictionary knows and the writings never use is not there to be found:
    the embedder's nearest word would be a neighbour, "성공" (success) -> "lucky").
    The score is the cosine, less half the target's ``hub`` ((m,), :func:`hubness`) when given:
    CSLS(x, y) / 2 = cos(x, y) - r_T(x) / 2 - r_S(y) / 2, whose r_T(x) is the same for every
    target of a row and leaves its ranking alone, so the score stays in cosine units.
    Returns each row's chosen word, or None for a row without one."""
    out: list[str | None] = []
    if not len(words) or not len(source):
        return [None] * len(source)
    sims = source @ targets.T
    if hub is not None:
        sims = sims - hub[None, :] / 2
    for r, row in enumerate(sims):
        ok = allowed[r] if r < len(allowed) else None
        if ok is not None:
            hits = [i for i, t in enumerate(tokens) if any(same_word(t, g) for g in ok)]
            out.append(words[max(hits, key=lambda j: (float(row[j]), -j))] if hits else None)
            continue
        best: dict[str, tuple[float, str]] = {}
        for i in np.argsort(-row, kind="stable")[:DEPTH]:
            best.setdefault(tokens[i], (float(row[i]), words[i]))
        ranked = sorted(best.values(), key=lambda x: -x[0])
        out.append(ranked[0][1] if len(ranked) >= 2 and ranked[0][0] - ranked[1][0] >= margin else None)
    return out


def target_langs(langs: Sequence[str]) -> list[str]:
    """The languages a question may be bridged into, for writings in ``langs``: English when they
    hold English; Korean only when they hold no English (an English question already meets the
    English writings' words, and Korean words would have the composer load Kiwi for it)."""
    return [lang for lang in ("en", "ko") if lang in langs and not (lang == "ko" and "en" in langs)]


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9)


def spelled(pairs: Sequence[tuple[str, str, bool]]) -> frozenset[str]:
    """The lexical tokens of the question words of :func:`translations`' ``pairs`` that spell a
    word of the writings in the other script (그로킹 -> "grokking"): the writer used that very word,
    so it is no word the writings lack (agent.coverage's unknown-word share). A translation by
    meaning is not (세계 -> "world": the writer may never have written about world models)."""
    return frozenset(t for source, _, by_spelling in pairs if by_spelling for t in lexical_tokens(source))


def translations(
    question: str,
    langs: Sequence[str],
    known: Callable[[str], bool],
    targets: Callable[[str], tuple[list[str], list[str], np.ndarray, np.ndarray | None]],
    embed: Callable[[list[str]], np.ndarray],
    margin: float = MARGIN,
) -> list[tuple[str, str, bool]]:
    """The writings' words that ``question``'s unknown content words translate to (see the module
    docstring), as ``(question word, writings' word, by spelling)`` triples: by spelling when the
    question word is a Hangul spelling of the writings' word (:func:`transliterated`), not a
    dictionary or embedder translation. [] when the writings hold no text in the other language,
    and for an English question to writings that hold English (it meets their words already).
    Words the writings use, and stop words of the question's language, are not translated.
    ``langs``: the writings' languages; ``known(token) -> bool``: whether the writings use a
    lexical token; ``targets(lang)``: ``(words, tokens, unit vectors, hubness)`` of
    :func:`target_words` and :func:`hubness` (cached by the caller; hubness may be None);
    ``embed(texts) -> (n, d)`` vectors."""
    lang, words = source_words(question)
    if lang not in target_langs(langs):
        return []
    # A word the writings use needs no translation; a stop word of its own language ("생각" of
    # "생각하세요") names no topic, as the lexical side already holds.
    words = [w for w in words if (toks := lexical_tokens(w)) and not any(known(t) for t in toks)]
    # Two nouns side by side are translated as one word too (:func:`compounds`) when either is
    # unknown; when the compound translates, it stands for both: 해석가능성 -> "interpretability",
    # not 해석 -> "explanations" and 가능 -> "possibilities".
    pairs = [
        (c, set(lexical_tokens(a)) | set(lexical_tokens(b)))
        for c, a, b in compounds(question)
        if any(not known(t) for t in lexical_tokens(a + " " + b))
    ]
    if not words and not pairs:
        return []
    t_words, t_tokens, t_vecs, t_hub = targets(lang)
    if not t_words:
        return []
    rows = words + [c for c, _ in pairs]
    # The dictionary first; a word it lacks may be a loanword or a name spelled in Hangul, whose
    # English the writings may use (:func:`transliterated`); else the embedder decides.
    gloss = [glosses(w, lang) for w in rows]
    allowed = [
        g if g is not None or lang != "en" else transliterated(w, t_words, t_tokens)
        for w, g in zip(rows, gloss, strict=True)
    ]
    by_spelling = [lang == "en" and g is None and a is not None for g, a in zip(gloss, allowed, strict=True)]
    chosen = translate_rows(
        unit(np.asarray(embed(rows), dtype=np.float32)), t_vecs, t_words, t_tokens, margin, t_hub, allowed
    )
    # A word the dictionary lacks whose translation by the embedder it may also spell is a name or
    # loanword too short to be searched by its key (닐 난다 -> "neel", "nanda").
    by_spelling = [
        spelling or (lang == "en" and g is None and c is not None and spells(w, c))
        for w, g, c, spelling in zip(rows, gloss, chosen, by_spelling, strict=True)
    ]
    covered: set[str] = set()
    own = dict(zip(words, chosen[: len(words)], strict=True))
    for (_, parts), word in zip(pairs, chosen[len(words) :], strict=True):
        # A compound whose translation is one of its own nouns' (환각 문제 -> "problems", as 문제 alone)
        # names no compound sense: its nouns keep their translations (환각 -> "hallucinations").
        theirs = {t for w in words if set(lexical_tokens(w)) <= parts for t in lexical_tokens(own[w] or "")}
        if word is not None and not set(lexical_tokens(word)) <= theirs:
            covered |= parts
    out: list[tuple[str, str, bool]] = []
    for w, word, spelling in zip(rows, chosen, by_spelling, strict=True):
        if word is None or any(word == o for _, o, _ in out) or (w in words and set(lexical_tokens(w)) <= covered):
            continue
        out.append((w, word, spelling))
    return out
