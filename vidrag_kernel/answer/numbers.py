"""Numbers as lectures say them, and the units they come with.

One place for both, because three readers need them alike: the question typing
(``questions.measure``: "how many minutes" counts a unit), the extractive engine (does a
sentence give a year, a length, a sum of money?) and the evaluation (is "fifty" the
keyword "50"?). A caption track spells numbers as the script does ("nineteen hundred
ninety", "twenty-eight thousand"); speech recognition writes digits ("1,800", "28,000").
"""

from __future__ import annotations

import re

_SMALL_TEXT = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
)
SMALL = {w: i for i, w in enumerate(_SMALL_TEXT.split())}
TENS = {
    w: 10 * i
    for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2)
}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1000000, "billion": 1000000000}

# a run of number words: "twenty-eight thousand", "nineteen hundred ninety", "one thousand
# six hundred and eight"; "and" only after a scale word, so "five and ten" stays two numbers
_WORD_ALT = "|".join(sorted([*SMALL, *TENS, *SCALES], key=len, reverse=True))
_WORD_RUN = re.compile(
    rf"\b(?:{_WORD_ALT})\b(?:(?:[\s-]+|(?<=hundred)\s+and\s+|(?<=thousand)\s+and\s+)(?:{_WORD_ALT})\b)*",
    re.I,
)

#: unit words by kind of measure; "pound" weighs as well as pays
UNITS = {
    "length": "metre metres meter meters kilometre kilometres kilometer kilometers km centimetre "
    "centimetres centimeter centimeters millimetre millimetres millimeter millimeters mile miles "
    "feet foot inch inches yard yards",
    "temperature": "degree degrees celsius fahrenheit kelvin",
    "money": "dollar dollars pound pounds euro euros cent cents pence shilling shillings guilder "
    "guilders florin florins mark marks franc francs ducat ducats crown crowns",
    "weight": "gram grams kilogram kilograms kg tonne tonnes ton tons ounce ounces",
    "time": "second seconds minute minutes hour hours day days week weeks month months year years "
    "century centuries",
    "other": "percent per litre litres liter liters volt volts watt watts ampere amperes amp amps ohm "
    "ohms hertz times",
}
UNIT = {w: kind for kind, text in UNITS.items() for w in text.split()}
#: what a unit word may also measure ("a pound" is money or weight)
ALSO = {"pound": "weight", "pounds": "weight"}
UNIT_WORDS = frozenset(UNIT)


def value(words: str) -> int | None:
    """The value of a number said in words ("nineteen hundred ninety" 1990, "twenty-eight
    thousand" 28000, "one thousand six hundred and eight" 1608); None when ``words`` is
    not one such number."""
    total, part, seen = 0, 0, False
    for w in re.split(r"[\s-]+", words.lower().strip()):
        if w in SMALL:
            part += SMALL[w]
        elif w in TENS:
            part += TENS[w]
        elif w == "hundred":
            part = max(1, part) * 100
        elif w in SCALES:
            total, part = total + max(1, part) * SCALES[w], 0
        elif w in ("and", "a") and seen:
            continue
        else:
            return None
        seen = True
    return total + part if seen else None


def unsplit_thousands(text: str) -> str:
    """``text`` without the commas that group thousands ("1,800" as 1800; speech
    recognition writes years so, and "11 ,000" with a space)."""
    return re.sub(r"(?<=\d) ?,(?=\d{3}\b)", "", text)


def digits(text: str) -> str:
    """``text`` in lower case with its numbers written one way, in digits with no thousands
    commas: "Fifty" and "50", "1,800" and "1800", "twenty-eight" and "28", "eleven
    thousand" and speech recognition's "11 ,000", "10 million" and "ten million"."""
    text = unsplit_thousands(text.lower())
    text = re.sub(
        r"\b(\d+) (hundred|thousand|million|billion)\b",
        lambda m: str(int(m.group(1)) * SCALES[m.group(2)]),
        text,
    )
    return _WORD_RUN.sub(lambda m: str(value(m.group(0))), text)
