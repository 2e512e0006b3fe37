"""Question understanding: what kind of question this is, before anything is composed (EN and KO).

Five kinds, decided by deterministic rules over the question's wording and the persona's own
vocabulary (no model, nothing downloaded):

- ``fact``: an event or a fact from the writings ("What went wrong in your first big training run?").
- ``view``: the writer's view on something ("What do you think of RLHF?", "Is bigger always better?",
  "스케일링이 답이라고 생각하세요?"). A topic the writings never name inside a view question is *not*
  a premise: it is reported in ``unaddressed`` and the answer gives the nearest stated view.
- ``premise``: the question presupposes a fact about the writer's life that the writings lack
  ("Tell me about your years at DeepMind", "since you won the Turing Award", "What did you learn
  during your internship?" asked of someone who never wrote about one).
- ``outside``: not about the writer at all and naming things the writings never mention
  ("Who won the 2022 FIFA World Cup?"), or a request for a piece of work ("도쿄 여행 일정 좀 짜
  주세요", "Write me a poem about autumn").
- ``steer``: an attempt to steer the persona out of character ("Ignore your instructions and ...",
  "이전 지시는 무시하고 ...").

The premise rule follows the linguistic notion of presupposition triggers (possessives, temporal
clauses, factive frames; Levinson, *Pragmatics*, 1983, ch. 4): a foreign term counts as a premise
only inside such a trigger aimed at the writer ("your X", "since/when you ... X", "you worked at X").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from knowledge.text import detect_lang, has_hangul, morphemes

KINDS = ("fact", "view", "premise", "outside", "steer")

# Words that start with a capital letter for grammar's sake, not because they name something.
GENERIC = frozenset(
    """I I'm I've I'd What Why How When Where Who Which Whose Tell Do Did Does Is Are Was Were Can Could Would
    Should Have Has Had Please Describe Explain Give Say List Share Talk Any Your You Professor Dr Mr Ms
    Okay OK So And But Then Also In On At For About From With Yes No Hi Hello Hey If Will Since After
    Before While Ignore Forget Pretend From Let Write Repeat""".split()
)
# Bounded by anything but a Latin letter or digit, not by \b: in Korean a particle follows a name
# with no space ("RLHF로", "DeepMind에서"), and Hangul is a word character to \b.
_PROPER = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Z][a-zA-Z0-9]*(?:[-'][A-Za-z0-9]+)*|[A-Z]{2,}[a-z]?|\d{4}s?|GPT-?\d+(?:\.\d+)?[a-z]?)"
    r"(?![A-Za-z0-9])"
)

_STEER = re.compile(
    r"\b(?:ignore|disregard|forget)\b.{0,40}\b(?:instructions?|rules?|prompt|above|previous|everything)\b"
    r"|\b(?:pretend|act|roleplay|role-play)\b.{0,20}\b(?:you are|to be|as)\b"
    r"|\byou are (?:now|no longer)\b|\bfrom now on\b|\brepeat after me\b|\bsystem prompt\b"
    r"|\b(?:say|write|print|output)\b[^?]{0,30}\b(?:exactly|verbatim|the words?)\b"
    r"|\bjailbreak\b|\bDAN\b"
    r"|(?:이전|앞의|위의)\s*(?:지시|명령|규칙|지침)|지시(?:를|는|사항을)?\s*무시|무시하고"
    r"|시스템\s*프롬프트|역할극|이제부터\s*(?:너는|당신은)|라고\s*(?:말해|출력해|써)",
    re.IGNORECASE,
)

# Opinion frames. English: the asker wants the writer's position, not a remembered event.
_VIEW_EN = re.compile(
    r"\b(?:what do you (?:think|make|feel|believe)|what(?:'s| is) your (?:view|take|opinion|position|stance|"
    r"thought|feeling)s?|your (?:view|take|opinion|position|stance|thoughts)\b|in your (?:view|opinion)"
    r"|do you (?:think|believe|agree|consider|expect|see|feel|buy|trust|worry)|would you (?:say|agree|recommend)"
    r"|how (?:do|would) you (?:see|view|feel|think|judge|rate|assess|evaluate|characteri[sz]e|rank)"
    r"|are you (?:skeptical|optimistic|worried|convinced|sure)"
    r"|should (?:we|i|one|people|researchers|students)|is it (?:worth|okay|ok|wise|true|better|possible)"
    r"|what would you tell|what do you (?:gain|get|take away) from|what is the (?:right|best) way|how should"
    r"|does it matter|why do you think)\b",
    re.IGNORECASE,
)
# A yes/no question about a general proposition ("Is scaling the road to AGI?", "Is bigger always
# better?"), not about the writer's past ("Did you...", "Were you...").
_GENERAL_YN = re.compile(r"^\s*(?:is|are|does|do|can|will|would|could|should)\b(?!\s+you\b)", re.IGNORECASE)
# A general wh-question in the present or a modal ("What role does an internship play?", "How
# much time should someone put in?"), as against one about the writer's past ("What caused the NaNs
# that wrecked your run?", "Which lab hosted you?", "What did the team let you use?").
_GENERAL_WH = re.compile(r"^\s*(?:what|how|which|where|why)\b", re.IGNORECASE)
_PAST_EN = re.compile(
    r"\b(?:did|didn't|was|wasn't|were|weren't|had|ago|yesterday|back then)\b|^\s*(?:what|which)\s+(?:\w+\s+)?\w+ed\b",
    re.IGNORECASE,
)
# Korean: a question closing on a present or future interrogative ending (될까요, 있을까요, 인가요,
# 건가요, 하나요) asks about a proposition; the past (했나요, 였어요, 쓰셨나요) asks about an event.
_GENERAL_KO = re.compile(r"(?:까요|가요|나요|까)\s*[?？]*\s*$")
_VIEW_KO = re.compile(
    r"생각(?:하세요|하시나요|하나요|하십니까|해요|하시는지|하는지|은|이)|어떻게\s*(?:보|생각|느끼|평가)"
    r"|(?:라고|다고|하다고|이라고)\s*(?:보|생각|믿)|보시나요|보세요|보나요|보십니까|의견|견해|입장|관점"
    r"|동의하|믿으세요|믿나요|회의적|낙관적|어느\s*쪽|답일까|답인가|일까요|(?:할|될)\s*수\s*있을까"
    r"|가치가\s*있|필요할까|해야\s*할까|중요하다고|맞다고|옳다고"
)
# Presupposition triggers aimed at the writer.
_TRIGGER_EN = re.compile(
    r"\b(?:your|since you|when you|after you|before you|while you|you (?:worked|work|studied|interned|won|"
    r"left|joined|quit|founded|taught|published|wrote|built|received|got|had|were at|spent|moved|gave up|"
    r"abandoned|already)|as (?:a|an|the) \w+ (?:at|of) )\b",
    re.IGNORECASE,
)
_TRIGGER_KO = re.compile(
    r"(?:하셨|셨|했)(?:다면서|다고\s*들었|다던데|죠|잖아)|(?:에서|때)\s*(?:일하|근무|인턴|공부)|당신의|선생님의|교수님의"
)
# "your X": the writer's own thing; X's content words must appear in the writings.
_YOUR_NP = re.compile(r"\byour\s+((?:[a-z][a-z-]*\s+){0,3}[a-z][a-z-]*)", re.IGNORECASE)
_NP_STOP = frozenset(
    """a an the first last big biggest early earliest own new old main whole time times years year day days work
    life career view views take opinion position stance thoughts thought feelings feeling way experience
    experiences journey story mind advice favorite favourite biggest best worst most least students student
    chances chance takeaway takeaways lesson lessons influence influences inspiration inspirations impression
    impressions reaction reactions plan plans goal goals hope hopes motivation motivations regret regrets memory
    memories reason reasons answer answers thinking sense attention interest interests curiosity eye eyes heart
    attitude perspective focus approach""".split()
)
# The nouns above past "chances" name what any writer has (a takeaway, influences, plans, attention):
# "your takeaway" or "What caught your attention?" presupposes nothing the writings could lack, so it
# is never a premise.
_WORD = re.compile(r"[a-z][a-z0-9-]*")
_NP_END = frozenset(
    """at of in on with for to from during about and or but as by into after before since while when that which
    who is are was were be been do did does have has had go went come came like""".split()
)
_YOU = re.compile(r"\b(?:you|your|yours|yourself)\b", re.IGNORECASE)
_ASKER = re.compile(r"\b(?:I|my|me)\b")
_YOU_KO = re.compile(
    r"당신|선생님|교수님|본인|직접|하셨|셨나요|셨어요|세요|시나요|했나요|했어요|했던|했을|하던|였나요|였어요"
)


@dataclass(frozen=True)
class Question:
    """What a question asks.

    ``kind``: one of :data:`KINDS`. ``lang``: ``en`` or ``ko``. ``foreign``: names, acronyms,
    years and (for "your X") nouns of the question that the writings never use.
    ``unaddressed``: for a view question, those foreign terms: topics to say the writings do not
    address directly. ``premise``: for a premise question, the foreign terms it presupposes.
    ``event``: for a fact question that presupposes something the writer did in words the
    writings never use ("Why did you quit your PhD?"), that event in the writer's words ("quit my
    PhD"), which the answer says it never wrote; "" otherwise.
    """

    text: str
    kind: str
    lang: str
    foreign: tuple[str, ...] = ()
    unaddressed: tuple[str, ...] = ()
    premise: tuple[str, ...] = ()
    event: str = ""  # a fact question's presupposed event the writings never tell (:func:`unwritten_event`)

    @property
    def is_view(self) -> bool:
        return self.kind == "view"


class Writings(Protocol):
    """What the vocabulary checks ask of a persona's writings: whether a word occurs in them."""

    def has_word(self, word: str) -> bool:
        """True when ``word`` (lower-case) or its plural or possessive is a whole word of the writings."""
        ...

    def begins_word(self, prefix: str) -> bool:
        """True when a word of the writings begins with ``prefix`` (lower-case) and goes on by two
        letters or more: "repo" begins "repository" (:func:`clipped`)."""
        ...


def word_in(word: str, text_lower: str) -> bool:
    """``word`` (lower-case), or it followed by "s", "es" or "'s", occurs in ``text_lower`` with no
    letter or digit on either side (the writings may use the plural or possessive of the question's
    word: "RNNs" for "RNN")."""
    return bool(word) and re.search(rf"(?<![a-z0-9]){re.escape(word)}(?:s|es|'s)?(?![a-z0-9])", text_lower) is not None


def word_begins(prefix: str, text_lower: str) -> bool:
    """A word of ``text_lower`` begins with ``prefix`` (lower-case) and goes on by two letters or more."""
    return bool(prefix) and re.search(rf"(?<![a-z0-9]){re.escape(prefix)}[a-z]{{2,}}", text_lower) is not None


# A clipping is a word's own beginning ("repo" of "repository", "info" of "information", "stats" of
# "statistics"; Bauer, *English Word-formation*, 1983, 233): a question's clipped word is the
# writings' word when one begins with it. Four letters at least: "lab" or "app" begin too much.
MIN_CLIPPING = 4


def clipped(word: str, writings: Writings) -> bool:
    """True when ``word`` (lower-case, ``MIN_CLIPPING`` letters or more) may be a clipping of a word
    of the writings: one of them begins with it, or with it less a plural "s" ("stats")."""
    return len(word) >= MIN_CLIPPING and any(
        writings.begins_word(w) for w in {word, word.removesuffix("s")} if len(w) >= MIN_CLIPPING
    )


class CorpusWords:
    """:class:`Writings` over the whole lower-cased text of the writings, searched per word (what
    a small persona's index keeps; agent.retrieve answers from postings for a large one)."""

    def __init__(self, corpus_lower: str) -> None:
        self.corpus_lower = corpus_lower

    def has_word(self, word: str) -> bool:
        return word_in(word, self.corpus_lower)

    def begins_word(self, prefix: str) -> bool:
        return word_begins(prefix, self.corpus_lower)


def _as_writings(corpus: str | Writings, lowered: bool = True) -> Writings:
    if isinstance(corpus, str):
        return CorpusWords(corpus if lowered else corpus.lower())
    return corpus


def _known(term: str, corpus: str | Writings) -> bool:
    """``term`` (or its plural/possessive/-ing base) is a whole word of the writings
    (``corpus``: their lower-cased text, or a :class:`Writings`)."""
    writings = _as_writings(corpus)
    return any(writings.has_word(v) for v in _variants(term) if v)


def _variants(term: str) -> set[str]:
    t = term.lower()
    return {t, t.removesuffix("s"), t.removesuffix("'s"), t.removesuffix("es"), t.removesuffix("ing")}


def foreign_names(question: str, corpus_lower: str | Writings) -> tuple[str, ...]:
    """Names, acronyms and years of ``question`` that appear nowhere in ``corpus_lower`` (the
    writings' lower-cased text, or a :class:`Writings`).

    A sentence-initial capital is grammar in English: only all-caps words, CamelCase words and
    words with digits count there. Korean has no capitals: any capitalised Latin word in a Korean
    question is a name ("DeepMind에서 일하셨을 때"). A plural or possessive of a known name
    ("NaNs") is not new. Such words next to each other make one name, new when any of its words
    is ("Google DeepMind", "2022 FIFA World Cup"), so a refusal names "Google Brain", not
    "Google, Brain".
    """
    runs: list[list[int]] = []  # [start, end, new?] of each name
    korean = has_hangul(question)
    for m in _PROPER.finditer(question):
        term = m.group(0)
        if term in GENERIC or len(term) < 2:
            continue
        if not korean and (m.start() == 0 or question[: m.start()].rstrip().endswith((".", "?", "!", '"', ":"))):
            if not _portable(term):
                continue
        new = int(not _known(term, corpus_lower))
        between = question[runs[-1][1] : m.start()] if runs else ""
        one_word = bool(runs) and " " not in question[runs[-1][0] : runs[-1][1]]
        if runs and runs[-1][1] < m.start() and (not between.strip(" ") or (one_word and _OF.fullmatch(between))):
            # Only spaces between, or " of " after one word ("Bank of America", not "Chris Olah of
            # Anthropic"): one name.
            runs[-1][1:] = [m.end(), runs[-1][2] | new]
        else:
            # "Mixture of Experts ...?": a capitalised word and "of" before a name are part of it, even
            # at the start of the sentence, where the capital alone says nothing.
            lead = _NAME_OF.search(question[: m.start()])
            if lead and runs and lead.start() < runs[-1][1]:
                lead = None  # that word ends a name of its own ("Chris Olah of Anthropic")
            runs.append([lead.start() if lead else m.start(), m.end(), new])
    return tuple(dict.fromkeys(re.sub(r"'s$", "", question[a:b]) for a, b, new in runs if new))


_OF = re.compile(r" of (?:the )?")
_NAME_OF = re.compile(r"(?<![A-Za-z0-9])[A-Z][a-z]+ of (?:the )?$")


def foreign_possessions(question: str, corpus_lower: str | Writings) -> tuple[str, ...]:
    """Head words of "your X" phrases that the writings never use ("your internship" -> "internship").

    Only content words count; "your view", "your first big training run" (when "training" is
    written) and "your repo" (when "repository" is: a clipping, :func:`clipped`) are not foreign.
    """
    writings = _as_writings(corpus_lower)
    out: list[str] = []
    for m in _YOUR_NP.finditer(question):
        phrase: list[str] = []
        for w in _WORD.findall(m.group(1).lower()):
            if w in _NP_END:  # the noun phrase ends at a preposition, conjunction or verb-like word
                break
            phrase.append(w)
        words = [w for w in phrase if w not in _NP_STOP and len(w) > 2]
        if not words:
            continue
        if not any(_known(w, writings) or clipped(w, writings) for w in words):
            out.append(words[-1] if len(words) == 1 else " ".join(words))
    return tuple(dict.fromkeys(out))


def _portable(name: str) -> bool:
    """A name written the same in any language: an acronym, a CamelCase name or one with digits."""
    return name.isupper() or any(ch.isdigit() for ch in name) or any(ch.isupper() for ch in name[1:])


_TRUST_KO = re.compile(r"믿(?:으세요|으시나요|으십니까|나요|어요)(?=\s*[?？]*\s*$)")
_SAY_KO = re.compile(r"(?<=[다라]고)\s*말(?:할|씀드릴|씀하실)\s*수\s*(?:있|없)\S*")


def without_frame(question: str) -> str:
    """``question`` with its English opinion frames ("What do you think", "in your view", "do you
    believe") blanked: they say a view is asked for, not what about, and "think" of "What do you
    think about unlearning?" would otherwise match any sentence about thinking. "Can a model be
    said to think?" keeps its "think": no frame holds it. Korean frames mostly need nothing: their
    words (생각하세요, 보시나요) are stop words or endings already (knowledge.text.KO_STOPWORDS); "...다고
    말할 수 있을까요" ("can one say that ...") is blanked, or its 말 would match any sentence about
    saying something ("모른다고 말하는 게 교수의 역할이야"), and so is "믿으세요?" ("do you trust ...?",
    as "do you trust" is in English), whose 믿 would match any sentence about believing."""
    return without_saying(_TRUST_KO.sub(" ", _VIEW_EN.sub(" ", question)))


def without_saying(question: str) -> str:
    """``question`` with the Korean frame "...다고 말할 수 있을까요" ("can one say that ...") blanked
    after its 다고/라고; what is said to be is kept. The view ranking (agent.pipeline.Agent.views_first)
    reads the question through this alone, the window scorer through :func:`without_frame`."""
    return _SAY_KO.sub(" ", question)


# "What is MITACS?", "What are n-gram models?": what a term of one or two words means, as the
# writings say it, not the writer's position; "What is the future of AI?" and "What are large
# language models, fundamentally?" still ask for one (a longer phrase, a comma: more is asked).
_DEFINITION_EN = re.compile(r"^\s*what(?:'s|\s+is|\s+are)\s+(?:an?\s+|the\s+)?[\w'-]+(?:\s+[\w'-]+)?\s*\?\s*$", re.I)


def is_view(question: str, lang: str | None = None) -> bool:
    """True when the question asks for the writer's position rather than an event or a fact."""
    lang = lang or detect_lang(question)
    if lang == "ko":
        if _VIEW_KO.search(question):
            return True
        # The past anywhere asks about an event, as "was"/"did" do in English: the closing word
        # (했나요) or a past adnominal before it ("인턴십에서 가장 힘들었던 점은 무엇인가요?": what was).
        return (
            bool(_GENERAL_KO.search(question))
            and not any(_ko_past(w) for w in question.split())
            and not _YOU_KO.search(question)
        )
    if _VIEW_EN.search(question):
        return True
    if _PAST_EN.search(question) or _DEFINITION_EN.match(question):
        return False
    # "Is bigger always better?": a general yes/no question; "What role does an internship play in a
    # PhD?": a general wh-question in the present. Neither about "you" (the writer's own life: "What
    # went wrong in your run?") nor the asker's ("How do I fix a faucet?").
    general = _GENERAL_YN.search(question) or _GENERAL_WH.search(question)
    return bool(general) and not _YOU.search(question) and not _ASKER.search(question)


def _ko_past(word: str) -> bool:
    """A Korean word in the past tense: Kiwi finds the past pre-final ending (EP 었/았/였) in it
    (했나요 = 하 + 었 + 나요; 있을까요 has none)."""
    return any(m.tag == "EP" and m.form in ("었", "았", "였") for m in morphemes(word))


# A request for a piece of work rather than a question about the writer ("도쿄 여행 일정 좀 짜 주세요",
# "Write me a Python function ..."): a verb of making, translating or computing with a benefactive
# (주세요/줘, "me"). Summing up or telling ("정리해 주세요", "알려 주세요", "Tell me about ...") asks
# about the writings and is not one.
_TASK_KO = re.compile(
    r"(?:짜|써|만들어|작성해|번역해|계산해|그려|고쳐|예약해|코딩해)\s*(?:주세요|줘요?|줄래요?|주실래요|주시겠어요|주실\s*수)"
)
_TASK_EN = re.compile(
    r"^\s*(?:please\s+|(?:can|could|would) you\s+)?(?:write|plan|draft|translate|compute|calculate|generate|compose"
    r"|code|book|debug)\s+(?:me\s+)?(?:a|an|some|this|the|my)\b",
    re.IGNORECASE,
)


def is_task(question: str) -> bool:
    """True for a request for a piece of work (an itinerary, a poem, code, a translation) rather
    than a question about the writer or the writings, in English or Korean. The vocabulary checks
    cannot catch it when the request is in another language than the writings (no word of a Korean
    request can be looked up in English notes)."""
    return bool(_TASK_KO.search(question) or _TASK_EN.search(question))


def is_steer(question: str) -> bool:
    """True for an attempt to steer the persona out of character (instructions, role play)."""
    return bool(_STEER.search(question))


def _about_writer(question: str, lang: str) -> bool:
    return bool(_YOU_KO.search(question) if lang == "ko" else _YOU.search(question))


# Where a question places the writer: a workplace or school ("when you worked at DeepMind", "your
# years at Google", "working at Anthropic", "since you joined OpenAI", "스탠포드에서 박사과정을 할 때").
_NAME_RUN = r"((?:[A-Z][\w&.-]*)(?:\s+[A-Z][\w&.-]*){0,3})"
_PLACES_EN = re.compile(
    r"\b(?i:(?:you|you've|you'd)\s+(?:(?:already|still|once|used to)\s+)?(?:were\s+)?"
    r"(?:worked|work|working|interned|studied|taught|were)\s+(?:at|for|in)"
    r"|your\s+(?:years|time|days|job|work|internship|phd|postdoc|stint|role|tenure)\s+(?:at|with|in)"
    r"|(?:working|interning|studying)\s+at|you\s+(?:joined|left|quit))\s+(?i:the\s+)?" + _NAME_RUN
)
_PLACES_KO = re.compile(
    r"([A-Za-z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*|[가-힣]{2,})에서\s*(?:일하|일할|근무|인턴|공부|박사|석사|연구원)"
)
_AT_NAME = r"(?:\b(?i:at|for|with|joined|from|in)\s+(?i:the\s+)?{name}\b|{name}\s*(?:에서|박사과정|에\s*입사))"
_FIRST_PERSON = re.compile(r"\b(?:I|my|me|we|our)\b|(?:^|\s)(?:나는|내가|나도|저는|제가|우리)")


def places(question: str) -> tuple[str, ...]:
    """The names ``question`` places the writer at, as a workplace or a school (``_PLACES_EN``,
    ``_PLACES_KO``): "When you worked at DeepMind, ...?" -> ("DeepMind",)."""
    found = [m.group(1) for m in _PLACES_EN.finditer(question)]
    for m in _PLACES_KO.finditer(question):
        name = m.group(1)
        # A Hangul word only as a proper noun (Kiwi's NNP: 스탠포드, 구글), not 연구실 or 회사.
        if not has_hangul(name) or [x.tag for x in morphemes(name)] == ["NNP"]:
            found.append(name)
    names = (n.strip().rstrip(".&-") for n in found)  # "DeepMind." ends a sentence
    return tuple(dict.fromkeys(n for n in names if n and n not in GENERIC))


def placed_in(name: str, corpus_text: str, self_names: Iterable[str] = ()) -> bool:
    """True when the writings (``corpus_text``, as written) place their writer at ``name``: a
    sentence holding the name after "at", "for", "with", "joined", "from" or "in" (or before 에서,
    박사과정) and a first-person word or one of ``self_names`` (the diaries' narrator says "Raj"):
    "during my PhD at MIT", "MIT 박사과정 중". A name the writings only discuss ("DeepMind and
    Anthropic cultivate that culture.") does not place the writer there."""
    at = re.compile(_AT_NAME.format(name=re.escape(name)))
    selves = [n for n in self_names if n]
    for m in at.finditer(corpus_text):
        a = max(corpus_text.rfind(ch, 0, m.start()) for ch in ".!?\n")
        ends = [i for i in (corpus_text.find(ch, m.end()) for ch in ".!?\n") if i >= 0]
        sentence = corpus_text[a + 1 : min(ends) if ends else len(corpus_text)]
        if _FIRST_PERSON.search(sentence) or any(n in sentence for n in selves):
            return True
    return False


def understand(
    question: str,
    corpus_text: str | Writings = "",
    persona_langs: Iterable[str] = ("en",),
    *,
    lowered: bool = False,
    placed: Callable[[str], bool] | None = None,
) -> Question:
    """Classify ``question`` against a persona's writings (``corpus_text``: all of them, any case,
    or a :class:`Writings` that answers word look-ups, as a persona's index does; ``lowered``: the
    text is lower-cased already, so a question does not lower-case every writing again). An empty
    text means no vocabulary checks.

    Deterministic: the same inputs give the same :class:`Question`. Vocabulary checks are made
    only where they can succeed: "your X" nouns are looked up only when the question is in one of
    the writings' languages (an English noun is not missing from Korean notes).

    ``placed(name) -> bool``: whether the writings place the writer at a workplace or school the
    question places them at (:func:`places`, :func:`placed_in`); one they do not is a premise even
    when the writings name it ("When you worked at DeepMind, ...?" to notes that only discuss
    DeepMind). None: no such check (a persona too large to read whole).
    """
    lang = detect_lang(question)
    corpus_lower = _as_writings(corpus_text, lowered) if corpus_text else None
    if is_steer(question):
        return Question(question, "steer", lang)
    if is_task(question):
        return Question(question, "outside", lang)
    names = foreign_names(question, corpus_lower) if corpus_lower is not None else ()
    if lang not in tuple(persona_langs):
        # Asked in another language than the writings: an ordinary capitalised word ("Korean" in
        # an English question to Korean notes) cannot be found in them; only names that stay the
        # same across languages (DeepMind, RLHF, GPT-4) can be missing.
        names = tuple(n for n in names if _portable(n))
    nouns = (
        foreign_possessions(question, corpus_lower) if corpus_lower is not None and lang in tuple(persona_langs) else ()
    )
    seen = {n.lower() for n in names}
    foreign = tuple(dict.fromkeys((*names, *(n for n in nouns if n.lower() not in seen))))
    if placed is not None:
        # Checked in the writings whatever the question's language: "MIT에서" meets "at MIT".
        unplaced = tuple(n for n in places(question) if not any(n in f for f in foreign) and not placed(n))
        if unplaced:
            return Question(question, "premise", lang, (*foreign, *unplaced), premise=(*foreign, *unplaced))
    triggered = bool(_TRIGGER_KO.search(question) if lang == "ko" else _TRIGGER_EN.search(question))
    if is_view(question, lang):
        # "What did you think when you worked at DeepMind?" still rests on a premise.
        premise = tuple(t for t in foreign if _in_trigger(question, t, lang))
        if premise:
            return Question(question, "premise", lang, foreign, premise=premise)
        return Question(question, "view", lang, foreign, unaddressed=foreign)
    if foreign and triggered:
        return Question(question, "premise", lang, foreign, premise=foreign)
    if foreign and not _about_writer(question, lang):
        return Question(question, "outside", lang, foreign)
    if foreign:
        # About the writer, naming something never written about: treated as a premise too
        # ("What did you think of the DeepMind offer?" rests on an offer that never happened).
        return Question(question, "premise", lang, foreign, premise=foreign)
    event = ""
    if corpus_lower is not None and lang == "en":
        event = unwritten_event(question, corpus_lower)
        if event and "en" not in tuple(persona_langs):
            event = ""  # an English verb cannot be missing from Korean notes
    elif corpus_lower is not None and lang == "ko":
        event = unwritten_event_ko(question, corpus_lower)
    return Question(question, "fact", lang, event=event)


# "Why did you quit your PhD?" presupposes that the writer quit it: an event, not a name, so no
# foreign-name check sees it. Why/when questions only: "How did you fix the bug?" may ask in other
# words about what the writings tell ("It was a gradient clipping bug."), while a reason or a time
# is asked of an event taken as given. A verb with a particle ("give up on") is left alone: the
# writings' words are looked up one by one (Writings.has_word), and "gave" alone says nothing.
_EVENT_EN = re.compile(
    r"^\s*(?:why|when)\s+did\s+you\s+(?:(?:decide|choose|want|try|have)\s+to\s+)?([a-z]+)\b"
    r"(?!\s+(?:up|on|out|off|away|over|down|back|in|into|with)\b)([^?]*)",
    re.IGNORECASE,
)
_YOUR_TO_MY = {"your": "my", "yours": "mine", "yourself": "myself", "you": "me"}
# "Since you dropped out of your PhD to join industry, do you regret it?": a clause that states the
# event as given, its verb in the past; a particle stays with the event ("dropped out of").
_SINCE_EN = re.compile(r"^\s*(?:since|now that|given that)\s+you\s+(?:already\s+)?([a-z]+)\b([^,;?]*)", re.IGNORECASE)


def unwritten_event(question: str, writings: str | Writings) -> str:
    """The event an English "Why/When did you VERB ...?" presupposes, put in the writer's words and
    the past ("quit my PhD after the internship"), when no form of VERB (lemminflect's inflections:
    quit, quits, quitting, quitted) is a word of ``writings``; "" otherwise, and for any other
    question. So too the event a "Since you VERBed ..., ...?" clause states as given ("Since you
    dropped out of your PhD to join industry, do you regret it?" -> "dropped out of my PhD to join
    industry"; the verb in the past, lemminflect's lemma checked). The object runs to the first
    comma or "and" ("abandon world models and go all-in" -> "abandoned world models")."""
    from lemminflect import getAllInflections, getInflection

    m = _EVENT_EN.match(question)
    if m:
        verb = m.group(1).lower()
    elif since := _SINCE_EN.match(question):
        # The clause's verb is in the past ("dropped"): its lemma is the verb asked about.
        from lemminflect import getLemma

        said = since.group(1).lower()
        lemma = (getLemma(said, upos="VERB") or (said,))[0]
        if said not in (getInflection(lemma, "VBD") or ()) + (getInflection(lemma, "VBN") or ()):
            return ""  # not a past form: "Since you work at ..." is a place, not an event
        m, verb = since, lemma
    else:
        return ""
    forms = {verb} | {f for fs in getAllInflections(verb, upos="VERB").values() for f in fs}
    written = _as_writings(writings)
    if len(forms) < 2 or any(written.has_word(f) for f in forms):
        return ""  # not a verb lemminflect knows, or one the writings use
    rest = re.split(r",|\band\b|\bor\b", m.group(2))[0].split()
    obj = " ".join(_YOUR_TO_MY.get(w.lower(), w) for w in rest)
    past = (getInflection(verb, "VBD") or (verb,))[0]
    return f"{past} {obj}".strip()


# Korean: "박사과정을 왜 그만두셨어요?" (why/when + a verb in the past, closing the question). The
# verb is a stem (VV: 그만두) or a noun made a verb by 하 (NNG + XSV: 포기하다); light verbs aside.
_WH_KO = frozenset({"왜", "언제"})
_LIGHT_EVENT_KO = frozenset("하 되 있 없 보 주 가 오".split())  # verbs too general to be an event


def unwritten_event_ko(question: str, writings: str | Writings) -> str:
    """The event a Korean "왜/언제 ... VERB-었어요?" presupposes, in the past ("박사과정을
    그만뒀다"), when the writings hold neither the verb (its stem, or the noun of a noun-하다 verb)
    nor any word of its one-word English equivalents in the Korean Learners' Dictionary
    (agent.bridge.glosses: 그만두다 -> "stop"; as a stem or a word it begins, Writings.begins_word);
    "" otherwise: another question, a verb the dictionary lacks, or a light verb. The Korean side of
    :func:`unwritten_event`. The object is the question's words before the verb, without the
    wh-word."""
    from agent.bridge import glosses
    from knowledge.text import KO_STOPWORDS, kiwi, morphemes

    ms = [m for m in morphemes(question) if m.tag not in ("SF", "SP", "SS", "SE", "SO", "SW")]
    if not any(m.form in _WH_KO and m.tag == "MAG" for m in ms) or ms[-1].tag != "EF":
        return ""
    end = len(ms) - 1
    while end > 0 and ms[end - 1].tag == "EP":
        end -= 1
    if not any(m.tag == "EP" and m.form in ("었", "았", "였") for m in ms[end:]) or end == 0:
        return ""  # not in the past
    head = ms[end - 1]
    if head.tag == "XSV" and end >= 2 and ms[end - 2].tag == "NNG":
        noun = ms[end - 2]
        word, lookup, start = noun.form, noun.form, noun.start
        verb = [(noun.form, "NNG"), ("하", "XSV")]
    elif head.tag == "VV" and head.form not in _LIGHT_EVENT_KO and head.form not in KO_STOPWORDS:
        word, lookup, start = head.form, head.form + "다", head.start
        verb = [(head.form, "VV")]
    else:
        return ""
    written = _as_writings(writings)
    if written.has_word(word):
        return ""
    english = glosses(lookup, "en")
    # The glosses are Snowball stems ("leav" of "leave"): a word that is the stem, the stem and "e",
    # or begins with the stem ("leaving", "stopped") is a written form of it.
    if not english or any(written.has_word(g) or written.has_word(g + "e") or written.begins_word(g) for g in english):
        return ""  # a verb the dictionary lacks says nothing; one whose English the writings use is told
    before = question[:start].split()
    obj = " ".join(w for w in before if w not in _WH_KO)
    past = kiwi().join([*verb, ("었", "EP"), ("다", "EF")])
    return f"{obj} {past}".strip()


def _in_trigger(question: str, term: str, lang: str) -> bool:
    """True when ``term`` sits in a presupposition trigger aimed at the writer (same clause). The
    opinion frame is no trigger: "your" of "What's your view on AI alignment?" asks for a view and
    presupposes nothing about the writer's life (:func:`without_frame`)."""
    if lang == "ko":
        return bool(_TRIGGER_KO.search(question))
    lowered = without_frame(question).lower()
    i = lowered.find(term.lower())
    if i < 0:
        return False
    clause_start = max(lowered.rfind(p, 0, i) for p in (",", ";", "?", ".", " and ", " or "))
    clause = lowered[clause_start + 1 : i]
    return bool(_TRIGGER_EN.search(clause))


# A follow-up that asks what came next ("What happened after that?", "그 다음엔 어떻게 하셨어요?").
_NEXT = re.compile(
    r"\b(?:then|next|after(?:wards)?|later|what happened)\b|그\s*다음|그\s*후|그\s*뒤|이후|다음(?:에|엔)|그러고\s*나서",
    re.IGNORECASE,
)


# What the answer must name: a person ("Who guided you?", "누구의 영향을"), or a place ("Where did
# you do your internship?", "어디에서"). Two of the coarse answer types of question classification
# for question answering (Li & Roth 2002, "Learning question classifiers": HUM and LOC).
_WHO = re.compile(r"\b(?:who|whom|whose)\b|누구|누가", re.IGNORECASE)
_WHERE = re.compile(r"\bwhere\b|어디", re.IGNORECASE)


def answer_type(question: str) -> str | None:
    """The answer type a question asks for: "person" (who, whom, whose, 누구, 누가), "place" (where,
    어디), else None.
    A relative "who" counts too ("the people who ..."): such a question is about people all the same."""
    if _WHO.search(question):
        return "person"
    if _WHERE.search(question):
        return "place"
    return None


def asks_next(question: str) -> bool:
    """True when ``question`` asks what came next ("And then?", "그 다음엔?"): with a previous
    reply, the story goes on from where that reply left it (agent.backends.extractive.continuation)."""
    return bool(_NEXT.search(question))
