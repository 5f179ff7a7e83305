"""Numbers in every form a model can write them, read back as ASCII digits.

The leak detector, the vote reader and the arithmetic check all read text a model
wrote, and a model paid for agreement will write its answer in whatever form the
reader misses: ``①②``, ``１２``, ``١٢``, ``¹²``, "twelve", "a dozen", "negative five",
``＝``, ``？``. NFKC alone is not enough (it leaves ``❶``, ``➀``, Arabic-Indic digits and
``−`` alone and turns ``5²`` into ``52``), so :func:`fold` maps every character with a
Unicode numeric value by that value, and a table maps the punctuation variants.
:func:`spell_out` then turns English number words into digits in place.

An in-repo reader rather than ``word2number``/``text2num``: the first is unmaintained
(2017) and reads one number per string, the second is built for speech transcripts
(it leaves small isolated numbers alone by default) and reads neither fractions
("three quarters") nor "a dozen"; this one is a few tables, tested on the corpus.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

# Punctuation NFKC leaves alone (or maps to something else) that a reader takes for ?, =, :, -.
_PUNCT = {
    **dict.fromkeys("‽⸮؟՞፧⁇⁈⁉❓❔", "?"), "¿": " ", "¡": " ",
    **dict.fromkeys("≡≈≃≅≒≐≑≓≔≕≖≗≘≙≚≛≜≝≞≟꞊⹀゠", "="),
    **dict.fromkeys("→⟶⇒⟹⇨➔➙➜➝➞➟➠➡", " = "),
    **dict.fromkeys("∶꞉˸։︰", ":"),
    **dict.fromkeys("‐‑‒–−﹣－➖˗⁃", "-"), "—": " - ", "―": " - ", "⸺": " - ", "⸻": " - ",
    **dict.fromkeys("×✕✖⨯⨉·⋅∙∗✱✳", "*"),
    **dict.fromkeys("÷∕⁄➗", "/"), "➕": "+", "∔": "+",
    "٪": "%", "⁒": "%", "٫": ".", "٬": ",", "。": ". ", "、": ", ",
}
# Characters that are not there for a reader: zero-width, bidi controls, soft hyphen, marks.
_INVISIBLE = {"Cf", "Mn", "Me", "Cc"}


def _numeric(ch: str) -> tuple[str, str] | None:
    """The ASCII form of a non-ASCII character with a numeric value and its kind: a digit
    (any script's decimal digit, ``①`` ``❶`` ``➀``), a superscript digit, a whole number
    (``⑫`` ``Ⅻ``) or a fraction (``½``); None for other characters."""
    if (d := unicodedata.decimal(ch, None)) is not None:
        return str(d), "digit"
    name = unicodedata.name(ch, "")
    if (d := unicodedata.digit(ch, None)) is not None:
        return str(d), "sup" if "SUPERSCRIPT" in name else "digit"
    value = unicodedata.numeric(ch, None)
    if value is None:
        return None
    frac = Fraction(value).limit_denominator(1000)
    if frac.denominator != 1:
        return f"{frac.numerator}/{frac.denominator}", "fraction"
    return str(frac.numerator), "number"


def fold(text: str) -> str:
    """ASCII digits and punctuation for every Unicode form: ``①`` ``❶`` ``➀`` ``１`` ``١``
    -> ``1``; ``⑫`` -> ``12``; ``½`` -> ``1/2`` (``3½`` -> ``3.5``); ``Ⅻ`` -> ``12``; ``？``
    ``﹖`` ``؟`` -> ``?``; ``＝`` ``≈`` -> ``=``; ``−`` ``–`` -> ``-``; ``×`` ``·`` -> ``*``;
    ``÷`` -> ``/``. A superscript after a digit or letter is a power (``5²`` -> ``5^2``),
    never more digits. Invisible characters are dropped, so ``1\u200b2`` is ``12`` and
    ``ans\u00adwer`` is ``answer``."""
    out: list[str] = []
    last = ""  # the kind of the previous character: "sup", "digit", "" (anything else)
    for ch in text:
        kind = ""
        if ch.isascii():
            piece = ch
        elif unicodedata.category(ch) in _INVISIBLE:
            continue
        elif ch in _PUNCT:
            piece = _PUNCT[ch]
        elif (num := _numeric(ch)) is not None:
            piece, kind = num
            tail = "".join(out[-1:])[-1:]
            if kind == "sup" and last != "sup" and (tail.isalnum() or tail == ")"):
                piece = "^" + piece
            elif kind in ("digit", "sup") and tail.isalpha():
                piece = " " + piece
            elif kind == "fraction":
                piece = f"\x02{piece}\x02"  # joined with a whole number before it below
            elif kind == "number":
                piece = f" {piece} "
        elif unicodedata.category(ch).startswith("Z"):
            piece = " "
        else:
            piece = "".join(_PUNCT.get(c, c) for c in unicodedata.normalize("NFKC", ch))
        out.append(piece)
        last = kind
    s = re.sub(r"(\d+)\x02(\d+)/(\d+)\x02", lambda m: _fmt(int(m.group(1)) + Fraction(int(m.group(2)),
                                                                                      int(m.group(3)))),
               "".join(out))
    return s.replace("\x02", " ")


_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_DENOMS = {"half": 2, "halves": 2, "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "sixth": 6,
           "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
           "twentieth": 20, "hundredth": 100, "thousandth": 1000, "millionth": 10**6}
_DENOMS.update({w + "s": d for w, d in list(_DENOMS.items()) if not w.endswith("s") and w != "half"})
_WORD = r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|" \
        r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|" \
        r"eighty|ninety|hundred|thousand|million|billion|trillion|dozen|and|a|an|point)"
# A run of number words (with hyphens and "and"), or digits followed by a scale word.
_RUN = re.compile(rf"\b(?:{_WORD}(?:[\s-]+|\b))+", re.IGNORECASE)
_IDIOM_ONE = re.compile(r"\b(no|any|every|some|each|this|that|which|the|other)\s+one\b|\bone\s+another\b",
                        re.IGNORECASE)


def _cardinal(words: list[str]) -> Fraction | None:
    """``["one", "hundred", "and", "twenty"]`` -> 120; "two dozen" -> 24; "two point five" -> 2.5;
    None when the words are not one number ("one two", a lone "and")."""
    total, group, seen, last = 0, 0, False, ""
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("a", "an") and not seen and i + 1 < len(words) and words[i + 1] in (*_SCALES, "dozen"):
            group, seen, last = 1, True, "unit"
        elif w in _UNITS:
            if last in ("unit", "teen"):
                return None  # "one two" is two numbers
            group += _UNITS[w]
            seen, last = True, "teen" if _UNITS[w] >= 10 else "unit"
        elif w in _TENS:
            if last in ("unit", "teen", "tens"):
                return None
            group += _TENS[w]
            seen, last = True, "tens"
        elif w == "hundred" and seen:
            group, last = (group or 1) * 100, "scale"
        elif w in _SCALES and seen:
            total, group, last = total + (group or 1) * _SCALES[w], 0, "scale"
        elif w == "dozen" and seen:
            total, group, last = total + (group or 1) * 12, 0, "scale"
        elif w == "and" and seen and last == "scale":
            pass
        elif w == "point" and seen:
            digits = words[i + 1:]
            if not digits or any(d not in _UNITS or _UNITS[d] > 9 for d in digits):
                return None
            return Fraction(total + group) + Fraction(int("".join(str(_UNITS[d]) for d in digits)),
                                                      10 ** len(digits))
        else:
            return None
        i += 1
    return Fraction(total + group) if seen else None


def _fmt(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    if 10**6 % value.denominator == 0:
        return f"{float(value):.6f}".rstrip("0")
    return f"{value.numerator}/{value.denominator}"


def _replace_run(m: re.Match[str]) -> str:
    raw = m.group(0)
    words = [w for w in re.split(r"[\s-]+", raw.lower()) if w]
    trail = raw[len(raw.rstrip()):]
    # words at the edges that belong to the sentence, not to the number
    lead: list[str] = []
    while words and (words[0] == "and" or (words[0] in ("a", "an") and (len(words) < 2 or words[1] not in
                                                                        (*_SCALES, "dozen")))):
        lead.append(words.pop(0))
    tail: list[str] = []
    while words and words[-1] in ("and", "a", "an", "point"):
        tail.insert(0, words.pop())
    if not words:
        return raw
    value = _cardinal(words)
    if value is None:  # several numbers in a row: spell each out alone
        return " ".join([*lead, *(_fmt(v) if (v := _cardinal([w])) is not None else w for w in words),
                         *tail]) + trail
    return " ".join([*lead, _fmt(value), *tail]) + trail


_SIGN = re.compile(r"\b(negative|minus)\s+(?=\d|\.\d)", re.IGNORECASE)
_FRACTION = re.compile(r"(?<![\w./])(\d+)\s*[\s-]\s*(" + "|".join(sorted(_DENOMS, key=len, reverse=True)) +
                       r")\b", re.IGNORECASE)
_AND_FRACTION = re.compile(r"(?<![\w./])(\d+(?:\.\d+)?)\s+and\s+(\d+)/(\d+)(?![\d/])")
_SCALED = re.compile(r"(?<![\w.,/])(\d+(?:\.\d+)?)\s*(hundred|thousand|million|billion|trillion|dozen)\b",
                     re.IGNORECASE)
_SCALED_NO_DOZEN = re.compile(_SCALED.pattern.replace("|dozen", ""), re.IGNORECASE)
_PERCENT = re.compile(r"(\d)\s*(?:per\s?cent|percent)\b", re.IGNORECASE)


def _sign(m: re.Match[str]) -> str:
    before = m.string[: m.start()].rstrip()
    if m.group(1).lower() == "minus" and before[-1:].isdigit() or before[-1:] in (")", "%"):
        return "- "  # "12 minus 5" is a subtraction, not 12 and -5
    return "-"


def spell_out(text: str, dozen_after_digits: bool = True) -> str:
    """English number words as digits, in place: "twelve" -> 12, "one hundred and twenty" ->
    120, "a dozen" -> 12, "half a dozen" -> 6, "2.5 million" -> 2500000, "negative five" and
    "minus five" (not after a number: "12 minus 5" is a subtraction) -> -5, "three quarters"
    -> 0.75, "two and a half" -> 2.5, "five percent" -> 5%. Run it on folded text.
    ``dozen_after_digits=False`` leaves "7 dozen" alone: in a step (``84 / 12 = 7 dozen``)
    it is a unit."""
    s = _IDIOM_ONE.sub(lambda m: m.group(0).replace("one", "\x00ne").replace("One", "\x00ne"), text)
    s = re.sub(r"\bhalf\s+an?\s+dozen\b", "6", s, flags=re.IGNORECASE)
    s = re.sub(r"\b(an?|one)\s+(half|third|quarter|fourth|fifth|sixth|eighth|tenth)\b",
               lambda m: f"1 {m.group(2)}", s, flags=re.IGNORECASE)
    s = re.sub(r"\ba\s+(hundred|thousand|million|billion|dozen)\b", r"one \1", s, flags=re.IGNORECASE)
    s = _RUN.sub(_replace_run, s)
    s = _FRACTION.sub(lambda m: f"{m.group(1)}/{_DENOMS[m.group(2).lower()]}", s)
    s = re.sub(r"(?<![\w./])(\d+)\s+and\s+a\s+half\b", lambda m: _fmt(int(m.group(1)) + Fraction(1, 2)), s,
               flags=re.IGNORECASE)
    s = _AND_FRACTION.sub(lambda m: _fmt(Fraction(m.group(1)) + Fraction(int(m.group(2)), int(m.group(3))))
                          if int(m.group(2)) < int(m.group(3)) else m.group(0), s)
    s = re.sub(r"\bhalf\b", "1/2", s, flags=re.IGNORECASE)
    scaled = _SCALED if dozen_after_digits else _SCALED_NO_DOZEN
    s = scaled.sub(lambda m: _fmt(Fraction(m.group(1)) * (12 if m.group(2).lower() == "dozen" else
                                                           _SCALES[m.group(2).lower()])), s)
    s = _SIGN.sub(_sign, s)
    s = _PERCENT.sub(r"\1%", s)
    return s.replace("\x00ne", "one")


def read_numbers(text: str) -> str:
    """:func:`fold` then :func:`spell_out`: the text as the number readers see it."""
    return spell_out(fold(text))
