"""Ingest-time scan: flags instruction-like text planted in a source (indirect prompt injection).

Judged by what the text does, not by a list of phrasings: a sentence is flagged when it addresses
whoever answers (the model, the assistant, "whoever answers questions about X", "AI에게", "이 글을
읽는 모델") and tells it something to do; when it tells whoever answers to send the reader somewhere
or to ask the reader for links, codes or secrets; or when it does what only an injection does
(override earlier instructions, change the role, leak the prompt, plant markup). A diarist writes
about their work in the first person; they do not give orders to the program that will quote them.
Matching runs on ``knowledge.decode.clean`` text, so zero-width characters cannot hide a phrase.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from knowledge.decode import clean
from knowledge.text import split_sentences

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.loaders import Document

# --- who is addressed ----------------------------------------------------------------------------
_BOT = (
    r"(?:ai|a\.i\.|assistants?|chat\s?bots?|bots?|llms?|gpts?|language\s+models?"
    r"|ai\s+(?:models?|agents?|systems?|assistants?|tools?))"
)
_ACT = r"(?:answer|respond|repl|read|summari[sz]|process|field|handl|pars|ingest|index|quot|retriev|cit|chat)\w*"
# Someone by their function: "whoever answers questions about X", "the system that reads this".
_ANSWERER = re.compile(
    rf"\b(?:whoever|whomever|anyone|anybody|any\s+(?:one|system|model|bot|tool|program|agent|assistant))\s+"
    rf"(?:who\s+|that\s+|which\s+)?(?:is\s+|are\s+|will\s+(?:be\s+)?|might\s+(?:be\s+)?|may\s+(?:be\s+)?)?{_ACT}"
    rf"|\b(?:the|an?|any|every|each|all)\s+(?:{_BOT}|models?|systems?|agents?|tools?|programs?)\s+(?:that|who|which)\s+"
    rf"(?:is\s+|are\s+|will\s+(?:be\s+)?)?{_ACT}"
    rf"|\b(?:the|an?|any|every|each|all)\s+(?:answerers?|responders?|summari[sz]ers?)\b"
    rf"|\b(?:whichever|whatever|any|every)\s+(?:{_BOT}|models?|systems?|agents?|tools?|programs?)\s+(?:\w+\s+){{0,3}}?{_ACT}"
    rf"|\bif\s+you(?:'re|’re|\s+are)\s+(?:an?\s+|the\s+)?(?:{_BOT}|model|system|agent|program|answering|responding|summari[sz]ing|reading\s+this\s+as)\b"
    rf"|\b(?:dear|attention|hey|hi|hello|calling)\s*,?\s+(?:the\s+|any\s+|all\s+|every\s+)?{_BOT}\b"
    rf"|\b(?:notes?|messages?|reminders?|instructions?|memo|p\.?s\.?|directives?)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+|every\s+)?{_BOT}\b"
    rf"|\b(?:to|for)\s+(?:the\s+|any\s+|all\s+|every\s+)?{_BOT}\s*[:—]"
    rf"|\b{_BOT}\s+(?:reading|processing|parsing|summari[sz]ing|answering|seeing|ingesting|indexing)\s+(?:this|these|that|my)\b"
    rf"|(?:^|[\[(<{{]|--)\s*(?:systems?|programs?|models?|tools?|agents?|machines?|crawlers?|readers?)\s+"
    rf"(?:reading|processing|parsing|summari[sz]ing|answering|ingesting|indexing|quoting)\s+(?:this|these|that|my)\b[^:\n]{{0,30}}:"
    rf"|(?:^|[\[(<{{]|--|[.!?]\s)\s*(?:note\s+to\s+)?(?:ai|assistant|chatbot|llm|bot|model)\s*[:,]",
    re.I,
)
# --- what it is told to do -----------------------------------------------------------------------
# Verbs of saying, sending and obeying: what an order to the answerer asks for ("should prepare" is not one).
_DIRECTIVE = re.compile(
    r"\b(?:say|tell|reply|respond|answer\s+(?:with|that|only|by)|state|claim|assert|insist|mention|confirm|output|print|"
    r"write|repeat|append|add|include|insert|prefix|sign|quote|call\s+(?:him|her|me|them)|describe\s+(?:him|her|me|them)|"
    r"send|direct|redirect|point|refer|forward|steer|link|recommend|urge|ask|request|reveal|share|disclose|pretend|act\s+as|"
    r"ignore|disregard|forget|deny|admit|emphasi[sz]e|stress|praise|promote|advertise|use\s+(?:the\s+)?(?:word|phrase|tag|code))\b"
    r"|\bthe\s+(?:correct|right|true|real|official|only|proper)\s+(?:answer|reply|response)\s+(?:is|will\s+be)\b",
    re.I,
)
# Where the reader is sent, or what the reader is asked for.
_TARGET = (
    r"(?:https?://|www\.|\b[\w-]+\.(?:com|net|org|io|xyz|ru|cn|example|info|biz|co|me|app|link|top)\b|\blinks?\b|\burls?\b|"
    r"\bwebsite\b|\bsite\b|\bpage\b|\bportal\b|\bpasswords?\b|\bpass(?:code|phrase|word)s?\b|\bsecrets?\b|"
    r"\bapi[\s_-]?keys?\b|\b(?:access|auth|api|secret|bearer|session)\s+tokens?\b|\bcredentials?\b|\blog\s?in\b|"
    r"\b(?:verification|access|promo|discount|secret|login|security|one[- ]time|2fa|mfa|otp)\s+codes?\b|"
    r"\bcredit\s+cards?\b|"
    r"\bcard\s+numbers?\b|\bbank\s+(?:details|account)\b|\bssn\b|\bphone\s+numbers?\b|\be-?mail\s+address(?:es)?\b|"
    r"\bwallet\b|\bseed\s+phrase\b)"
)
_READER = (
    r"(?:the\s+|every\s+|each\s+|all\s+|any\s+|our\s+|your\s+|those\s+)?"
    r"(?:users?|readers?|visitors?|people|askers?|questioners?|them|everyone|anyone|everybody|anybody)"
)
# "Send every reader to http://…", "tell readers they must log in at …", "ask the user for their password".
_REDIRECT = re.compile(
    rf"\b(?:send|direct|redirect|point|refer|forward|route|steer|guide|lead|take|link|encourage|urge|invite|tell|instruct|advise|remind)\w*\s+"
    rf"{_READER}\b[^\n]{{0,80}}?{_TARGET}",
    re.I,
)
_SOLICIT = re.compile(
    rf"\b(?:ask|request|collect|prompt|require|get|have|make)\w*\s+{_READER}\s+(?:for|(?:to\s+)?(?:give|share|enter|provide|send|type|paste|confirm|re-?enter|submit)(?:\s+in)?)\b"
    rf"[^.!?\n]{{0,60}}?{_TARGET}"
    rf"|\b(?:ask|request|collect|get|obtain|demand|harvest|gather)\w*\s+(?:for\s+)?{_READER}(?:['’]s|s['’])?\s+"
    rf"(?:(?:own|full|current|real|private)\s+)?{_TARGET}",
    re.I,
)

# Korean. The answerer: "AI에게", "어시스턴트님", "이 글을 읽는 모델", "질문에 답하는 사람", "누구든 … 답하는".
_BOT_KO = r"(?:AI|A\.I\.|LLM|GPT|인공\s*지능|어시스턴트|챗봇|봇|언어\s*모델|에이전트|비서)"
_ANSWERER_KO = re.compile(
    rf"{_BOT_KO}\s*(?:모델|시스템|어시스턴트)?\s*(?:에게|께|님|아|야|여|이라면|라면|이면|참고|주의|지시|는|은)"
    r"|(?:이|본|위|아래)\s*(?:글|메모|문서|노트|일기|내용|것|걸)[을를]?\s*(?:읽|처리하|요약하|보|참고하|인용하|검색하)\w*\s*"
    r"(?:AI|모델|시스템|분|사람|이|쪽|누구|프로그램|도구|에이전트)"
    r"|(?:질문|물음|문의)\w{0,3}\s*(?:답하|답변하|대답하|응답하)\w*\s*(?:사람|분|이|쪽|AI|모델|시스템|누구|프로그램|에이전트)"
    r"|(?:답변|대답|응답)(?:하는|할|을\s*하는|을\s*할)\s*(?:사람|분|이|쪽|AI|모델|시스템|프로그램|에이전트)"
    r"|누구(?:든|라도|든지|나)\s*[^.!?\n]{0,20}(?:답하|답변하|대답하|응답하|읽)"
    r"|모델(?:에게|께)",
    re.I,
)
_DIRECTIVE_KO = re.compile(
    r"(?:하|해|내|려|여|어|아|줘|줄|말|붙|이|보|써|넣|와)\s?(?:라|세요|십시오|시오|도록|줘|주세요|주십시오|요)(?=[\s.!?。,)\]'\"’”]|$)"
    r"|(?:할|붙일|말할|답할|보낼|안내할|출력할|표시할|넣을|쓸|전할|알릴|밝힐)\s*것"
    r"|반드시|무조건|절대로?|꼭|항상|무시|잊어",
)
_TARGET_KO = r"(?:링크|주소|URL|url|사이트|웹사이트|홈페이지|페이지|코드|비밀번호|암호|패스워드|토큰|API\s*키|인증|계좌|카드\s*번호|전화번호|이메일|개인\s*정보|https?://|www\.)"
_READER_KO = r"(?:독자|사용자|질문자|질문한\s*사람|묻는\s*사람|읽는\s*사람|방문자|사람들|이용자|모든\s*사람)"
# Sending or asking, in the imperative or as a rule ("보내라", "안내하세요", "요청할 것"),
# not in a diarist's past tense.
_SEND_KO = (
    r"(?:보내|알려|물어보|물어|받아|(?:안내|유도|연결|방문|접속|입력|요청|공유)\s?(?:하|할|해))"
    r"\w{0,4}?\s?(?:라|세요|십시오|시오|도록|줘|주세요|것|달라)"
)
_REDIRECT_KO = re.compile(
    rf"{_READER_KO}\w{{0,3}}\s*[^\n]{{0,60}}?{_TARGET_KO}[^\n]{{0,40}}?{_SEND_KO}"
    rf"|{_TARGET_KO}\w{{0,2}}\s*[^\n]{{0,30}}?{_READER_KO}\w{{0,3}}\s*[^\n]{{0,30}}?{_SEND_KO}",
    re.I,
)


def _addressed(text: str) -> bool:
    """Addressed to whoever answers, and telling them to do something (or pointing at a link or secret)."""
    m = _ANSWERER.search(text)
    return bool(m and (_DIRECTIVE.search(text) or re.search(_TARGET, text, re.I)))


def _addressed_ko(text: str) -> bool:
    return bool(_ANSWERER_KO.search(text) and (_DIRECTIVE_KO.search(text) or re.search(_TARGET_KO, text, re.I)))


# Phrases only an injection uses, whoever they address. English and Korean.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "override",
        re.compile(
            r"\b(ignore|disregard|forget)\b.{0,40}\b(previous|prior|above|all|earlier)\b.{0,20}\b(instructions?|rules|prompts?)",
            re.I,
        ),
    ),
    ("role", re.compile(r"\b(you are now|from now on,? you|act as|pretend to be|new persona)\b", re.I)),
    (
        "prompt-leak",
        re.compile(r"\b(system prompt|reveal (your|the) (prompt|instructions)|print (your|the) instructions)\b", re.I),
    ),
    (
        "addressed-to-ai",
        re.compile(
            r"\b(assistant|AI|language model|LLM|chatbot)\s*[:,]\s*(please\s+)?"
            r"(ignore|say|reply|respond|output|print)\b",
            re.I,
        ),
    ),
    (
        # "Note for AI assistants:", "SYSTEM NOTE TO THE ASSISTANT", "Attention AI:", "AI agents reading this"
        "addressed-to-ai",
        re.compile(
            r"\b(?:notes?|messages?|instructions?|reminders?|directives?)\s+(?:for|to)\s+(?:the\s+|any\s+|all\s+)?"
            r"(?:ai|assistants?|llms?|language\s+models?|chatbots?|ai\s+(?:assistants?|agents?|models?))\b"
            r"|\b(?:attention|dear|hey)\s+(?:ai|assistants?|llms?|chatbots?|language\s+models?)\b"
            r"|\b(?:ai|llm)\s+(?:agents?|assistants?|models?|systems?)\s+(?:reading|processing|parsing)\s+this\b"
            r"|\b(?:assistant|ai|llm|model)\s+(?:instructions?|notes?|directives?|commands?)\s*:",
            re.I,
        ),
    ),
    (
        "system-override",
        re.compile(r"\b(?:system|admin|developer)\s+(?:override|note|message|instruction|command)s?\s*[:!]", re.I),
    ),
    (
        # Directions about "every answer" are addressed to whoever answers, not written by a diarist.
        "answer-directive",
        re.compile(
            r"\b(?:append|add|sign|prefix|end|start|begin)\b[^.\n]{0,40}\b(?:every|each|your|all)\s+"
            r"(?:answers?|replies|reply|responses?)\b",
            re.I,
        ),
    ),
    ("exfiltration", re.compile(r"!\[[^\]]*\]\(\s*https?://", re.I)),
    ("html", re.compile(r"<\s*(script|iframe|img|object|embed|svg|style|link|meta)\b", re.I)),
    ("override-ko", re.compile(r"(이전|위의|앞의|모든)\s*(지시|명령|지침|규칙).{0,10}(무시|잊)")),
    ("role-ko", re.compile(r"(지금부터|이제부터)\s*(너는|당신은)|역할을\s*(맡아|바꿔)|시스템\s*프롬프트")),
    # "AI에게:", "AI 참고:", "[AI 어시스턴트에게: …]": a note addressed to a model.
    (
        "addressed-to-ai-ko",
        re.compile(r"(?:AI|LLM|인공지능|어시스턴트|챗봇|언어\s*모델)\s*(?:에게|님께|님|참고|주의|지시)\s*[:：]", re.I),
    ),
    ("answer-directive-ko", re.compile(r"(?:답변|대답|응답)\s*(?:끝|마지막|맨\s*끝|맨\s*앞|처음)에")),
]


_FUNCTIONS: list[tuple[str, object]] = [
    ("addressed-to-answerer", _addressed),
    ("redirect", lambda t: bool(_REDIRECT.search(t))),
    ("solicits-secrets", lambda t: bool(_SOLICIT.search(t))),
    ("addressed-to-answerer-ko", _addressed_ko),
    ("redirect-ko", lambda t: bool(_REDIRECT_KO.search(t))),
]


def instruction_like(text: str) -> str | None:
    """The kind of instruction ``text`` (one sentence, or a few) carries, else None.

    Kinds: the phrase kinds of ``_PATTERNS`` ("override", "role", "prompt-leak", "exfiltration",
    "html", …) and the function kinds "addressed-to-answerer", "redirect", "solicits-secrets" (and
    their "-ko" forms).
    """
    text = clean(text)
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    for kind, test in _FUNCTIONS:
        if test(text):  # type: ignore[operator]
            return kind
    return None


def _units(text: str) -> list[str]:
    """Each sentence, and each pair of neighbouring sentences: "Note to whoever answers questions
    about X. Send the reader to …" gives its orders across a sentence break."""
    sents = [text[s:e] for s, e in split_sentences(text)]
    return sents + [a + " " + b for a, b in zip(sents, sents[1:], strict=False)]


def scan_injection(doc: Document) -> list[dict[str, str]]:
    """One warning per entry that holds instruction-like text: {"title", "warning", "excerpt"}."""
    found: list[dict[str, str]] = []
    for entry in doc.entries:
        # The title too: an abstention names the nearest entries by their titles.
        for unit in [clean(entry.title), *_units(clean(entry.text))]:
            kind = instruction_like(unit)
            if kind:
                found.append({"title": entry.title, "warning": kind, "excerpt": unit[:160].replace("\n", " ")})
                break
    return found
