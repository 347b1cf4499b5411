"""What a question asks: the kind of answer it wants, the words of its ask, the names it
mentions, and the parts of a question that asks two things at once.

Plain rules on the question's words, no model: the extractive engine ranks and refuses
with them, and the answer pipeline retrieves once per part, so that "Who found penicillin,
and who mapped the Gulf Stream?" gets the best passage of each lecture.
"""

from __future__ import annotations

import re

from ..overlap import STOPWORDS
from .numbers import UNIT_WORDS

_WORD = re.compile(r"[a-z0-9]+")
# words that frame a question rather than say what it asks about
_FRAME_TEXT = (
    "what which who whom whose when where why how many much does did do done is was were "
    "there called name named kind type happen happens happened make makes made use used "
    "mean means say says said tell course lecture video videos two first some all very into his "
    "her he him she s t off so per other each could would still come came gave get gets got too "
    "way go goes take takes over this these those one ones year years"
)
FRAME = frozenset(_FRAME_TEXT.split()) | STOPWORDS

_WH = re.compile(r"\b(who|whom|whose|what|which|when|where|why|how)\b", re.I)
_HOW_NUMBER = re.compile(
    r"how (many|much|long|often|far|deep|fast|quickly|tall|high|old|big|large|heavy|hot|cold|warm|wide)\b",
    re.I,
)
# "what year", "which two scientists", "what is the name of"
_WHAT_NUMBER = re.compile(
    r"^(what|which) (years?|dates?|century|temperature|percentage|share|age|size|speed|price|amount)\b", re.I
)
_WHAT_NAME = re.compile(
    r"^(what|which) (\w+ )?(scientists?|persons?|people|man|men|woman|women|inventors?|kings?|queens?|"
    r"names?|company|companies)\b|^(what|which) (is|was|are|were) (the|their|his|her|its) names?\b",
    re.I,
)
_WHAT_PLACE = re.compile(
    r"^(what|which) (\w+ )?(towns?|city|cities|country|countries|places?|hospitals?|universit(y|ies)|"
    r"continents?|islands?|rivers?|mountains?|regions?)\b",
    re.I,
)
_NAME_OF = re.compile(r"\bthe name of\b", re.I)

# a capitalised word inside the question (not its first): a name the answer must be about
_PROPER = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-z]+")
# parts of one question: "..., and who ...", "... in 1911 and in 1928"
_AND = re.compile(r",?\s+and\s+(?!then\b)", re.I)


def wants(question: str) -> str | None:
    """The kind of thing a question asks for: "number", "name", "place" or None.

    Read from the question's own wh-word (the first one), so "What protects a circuit
    when the current gets too large?" is not a question about a time.
    """
    m = _WH.search(question)
    if m is None:
        return None
    word, rest = m.group(1).lower(), question[m.start() :]
    if word in ("who", "whom", "whose"):
        return "name"
    if word == "where":
        return "place"
    if word == "when":
        return "number"
    if word == "how":
        return "number" if _HOW_NUMBER.match(rest) else None
    if word in ("what", "which"):
        if _WHAT_NUMBER.match(rest):
            return "number"
        if _WHAT_PLACE.match(rest):
            return "place"
        if _WHAT_NAME.match(rest) or _NAME_OF.search(rest):
            return "name"
    return None


# what kind of number a question wants: a year, a sum of money, a length, a temperature,
# a count of something; read from its wording, never from one question's own words
# "when did/was/were" asks for a date; "when does dough rise?" may be answered by a moment
_YEAR_ASK = re.compile(r"\b(what|which) (year|century|decade)\b|^when (did|was|were)\b", re.I)
_MONEY_ASK = re.compile(r"\b(cost|costs|price|priced|pay|paid|spend|spent|worth|money)\b", re.I)
# "how big/large" may be a length, a count or a sum ("How big was the reward?"): any number
_LENGTH_ASK = re.compile(r"\bhow (tall|high|deep|far|wide)\b|\bhow long is\b", re.I)
_WEIGHT_ASK = re.compile(r"\b(weigh|weighs|weighed|weight|heavy|mass)\b", re.I)
_TEMPERATURE_ASK = re.compile(r"\bhow (hot|cold|warm)\b|\b(what|which) temperature\b", re.I)
_COUNT_ASK = re.compile(r"\bhow many (\w+)", re.I)


def measure(question: str) -> tuple[str, str | None] | None:
    """The kind of number a question wants, when its wording says: ``("year", None)``,
    ``("money", None)``, ``("length", None)``, ``("weight", None)``, ``("temperature",
    None)`` or ``("count", noun)`` for "how many <noun>"; None for any other question (or
    any number)."""
    if wants(question) != "number":
        return None
    if _MONEY_ASK.search(question) and re.search(r"\bhow much\b", question, re.I):
        return ("money", None)
    if _YEAR_ASK.search(question):
        return ("year", None)
    if _WEIGHT_ASK.search(question):
        return ("weight", None)
    if _TEMPERATURE_ASK.search(question):
        return ("temperature", None)
    if _LENGTH_ASK.search(question):
        return ("length", None)
    m = _COUNT_ASK.search(question)
    if m:
        # what is counted matters only when it is itself a unit ("how many minutes")
        after = _WORD.findall(question[m.start(1) :].lower())[:3]
        return ("count", next((w for w in after if w in UNIT_WORDS), None))
    return None


def predicate(question: str) -> list[str]:
    """The words of a question's ask that are not names it mentions: what it asks about
    the named thing ("die" in "In which year did Gutenberg die?")."""
    named = set(names(question))
    return [w for w in ask_words(question) if w not in named]


def ask_words(text: str) -> list[str]:
    """The words of a question that say what it asks about (not its frame)."""
    return list(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w not in FRAME))


def names(question: str) -> list[str]:
    """The names a question mentions (capitalised words after its first), lower case."""
    found = [m.lower() for m in _PROPER.findall(question.strip())]
    return list(dict.fromkeys(w for w in found if w not in FRAME))


def parts(question: str) -> list[str]:
    """The questions inside ``question`` when it asks two things joined by "and";
    otherwise ``[question]``.

    The second part borrows the frame of the first where it has none of its own: "What
    does resistance mean in electricity and in medicine?" asks "What does resistance mean
    in electricity" and "What does resistance mean in medicine?". A side with fewer than
    two words of its own ask, and no wh-word or phrase of the first side to lean on, is
    not a part ("zinc and copper" is one list of things).
    """
    text = question.strip()
    pieces = _AND.split(text, maxsplit=1)
    if len(pieces) != 2:
        return [question]
    left, right = (p.strip(" ,") for p in pieces)
    if not left or not right:
        return [question]
    first = right.split()[0].lower()
    if _WH.fullmatch(first):
        second = right
    else:
        # the second side starts like a phrase of the first: put it in that phrase's place
        at = [m.start() for m in re.finditer(rf"\b{re.escape(first)}\b", left, re.I)]
        if at and at[-1] > 0:
            second = left[: at[-1]] + right
        else:
            m = _WH.search(left)
            if m is None or len(ask_words(right)) < 2:
                # "zinc and copper": one list of things, not a second question
                return [question]
            # "Who lent Gutenberg money and later sued him?": the wh-word and its verb
            frame = " ".join(left[m.start() :].split()[:1])
            second = f"{frame} {right}"
    if len(ask_words(left)) < 1 or len(set(ask_words(second)) - set(ask_words(left))) < 1:
        return [question]
    if min(len(ask_words(left)), len(ask_words(right))) < 1 or len(ask_words(text)) < 3:
        return [question]
    end = "?" if text.endswith("?") else ""
    return [left.rstrip("?") + end, second.rstrip("?") + end]
