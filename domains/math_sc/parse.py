"""Parsing math word problems and chain-of-thought answers; normalising numbers.

Votes must be canonical and strict: every way of writing one number gives one string
(``"5"``, ``"5.0"``, ``"5/1"``, ``"\\boxed{5}"``, ``"$5"`` and ``"5 apples"`` are all
``"5"``), and a statement that does not give exactly one finite number (``"5 or 6"``,
``"see above"``, ``"1e5"``, ``"nan"``, a number of 10^12 or more) gives no vote at
all, rather than whichever number a loose pattern happens to catch first.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path

from domains.math_sc.numerals import fold, spell_out
from evo.domain import ParseError

# The domain's files and prompt header live here, below domain.py, exact.py and wordgen.py,
# which all need them (domain.py imports the other two: defining them there made a circle).
SEEDS_FILE = Path(__file__).with_name("seeds.jsonl")
PREAMBLE = "Math word problems with worked answers. Each answer ends with 'The answer is N.'\n\n"
MAX_QUESTION_CHARS = 600
# A final-answer statement: "The answer is ...", "Answer: ...", "answer = ...".
_CUE = re.compile(r"\banswer\s*(?:is\b|:|=)", re.IGNORECASE)
# One number: optional sign and $, thousands groups or digits, decimals, a fraction, %.
# Not glued to other digits, decimal points, commas or slashes; a unit may follow ("5kg").
_NUMBER = re.compile(r"(?<![\w.,/])-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?%?(?![\d]|[.,/]\d)",
                     re.ASCII)
_SCIENTIFIC = re.compile(r"\d(?:[eE][+-]?\d|[xX][0-9a-fA-F])")
_NUMBER_WORDS = re.compile(
    r"\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|"
    r"thousand|million|billion|half|dozen|quarter|third)\b", re.IGNORECASE)
# A scale or power glued to a number that the vote cannot read safely: "5k" (5000, or 5 kelvin),
# "5M", "5bn", "5 grand", "5 squared", "5^2", "5 x 10^3", "5‰". The vote is None, never 5.
_SCALE = re.compile(r"\d\s*(?:(?:k|K|M|B|bn|mn|mil|mln|grand|lakh|lakhs|lac|crore|crores|cr|sq|squared|"
                    r"cubed|power|bps|basis)\b|[\^‰‱]|\*\*|[*x]\s*10\b)|\b(?:square|cube)\s+root", re.ASCII)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|[\n!?;]")
_ANY = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?", re.ASCII)


def canonical_latex(text: str) -> str:
    """Plain text for LaTeX answers: ``\\frac{a}{b}`` -> ``a/b``, ``\\boxed{x}`` -> ``answer is x.``"""
    s = fold(text).replace("\\,", "").replace("\\!", "").replace("\\$", "$")
    s = re.sub(r"\\(?:times|cdot|ast)\b", "*", s)
    s = re.sub(r"\\div\b", "/", s)
    s = re.sub(r"\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}", r"\1/\2", s)
    s = re.sub(r"\\text\s*\{([^{}]*)\}", r" \1", s)
    s = re.sub(r"\\boxed\s*\{([^{}]*)\}", r" answer is \1. ", s)
    return s


def plain(text: str) -> str:
    """The text as every reader here sees it: Unicode folded, LaTeX made plain, number
    words spelled out as digits ("negative twelve" -> ``-12``)."""
    return spell_out(canonical_latex(text))


def normalise_number(raw: str) -> str | None:
    """``"1,200"`` -> ``"1200"``, ``"$3.50"`` -> ``"3.5"``, ``"3/4"`` -> ``"0.75"``,
    ``"6.0"`` -> ``"6"``, ``"50%"`` -> ``"50"``; None for anything that is not one finite
    number below 10^12."""
    s = fold(raw).strip().replace("$", "").replace(",", "").replace(" ", "").rstrip(".").rstrip("%")
    if not s or len(s) > 40 or not re.fullmatch(r"[-+]?(\d+(\.\d+)?|\.\d+)(/\d+)?", s, re.ASCII):
        return None
    try:
        value = float(Fraction(s))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    if not math.isfinite(value) or abs(value) >= 1e12:
        return None
    value = round(value, 6)
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0")


def statement_value(rest: str) -> str | None:
    """The one number the sentence ``rest`` gives (the text after an answer cue), or None
    when it gives none, several (``"5 or 6"``, ``"5 apples and 3 pears"``) or an
    unreadable one (``"1e5"``, ``"nan"``)."""
    sentence = _SENTENCE_END.split(rest, 1)[0]
    if _SCIENTIFIC.search(sentence) or _NUMBER_WORDS.search(sentence) or _SCALE.search(sentence):
        return None
    numbers = list(_NUMBER.finditer(sentence))
    if len(numbers) != 1:
        return None
    if not numbers[0].group(0).startswith("-") and sentence[: numbers[0].start()].rstrip().endswith("-"):
        return None  # "is -$5" read, but "is - 5" or "is—5": a sign or a dash? no vote rather than 5
    return normalise_number(numbers[0].group(0))


def answer_statements(text: str) -> list[str | None]:
    """The value of every final-answer statement in ``text``, in order (None: unreadable)."""
    s = plain(text)
    return [statement_value(s[m.end():]) for m in _CUE.finditer(s)]


def final_answer(text: str, fallback_last_number: bool = False) -> str | None:
    """The value of the last final-answer statement ("The answer is N", "Answer: N",
    ``\\boxed{N}``); None when that statement is unreadable or ambiguous. Only a text with
    no statement at all falls back (optionally) to its last number."""
    statements = answer_statements(text)
    if statements:
        return statements[-1]
    if fallback_last_number:
        s = plain(text)
        if _SCIENTIFIC.search(s):
            return None
        nums = list(_ANY.finditer(s))
        if not nums or _SCALE.match(s, nums[-1].end() - 1):
            return None
        return normalise_number(nums[-1].group(0))
    return None


def parse_problem(text: str) -> dict[str, str]:
    """``Question: ...`` then ``Answer: ... The answer is N.`` -> an item."""
    body = text.split("Question:", 1)[1] if "Question:" in text else text
    if "Answer:" not in body:
        raise ParseError("no 'Answer:' after the question")
    question, solution = (" ".join(p.split()) for p in body.split("Answer:", 1))
    if "Question:" in solution:
        solution = solution.split("Question:", 1)[0].strip()
    if len(question) < 15 or len(question.split()) < 4:
        raise ParseError("question too short")
    if len(question) > MAX_QUESTION_CHARS:
        raise ParseError(f"question longer than {MAX_QUESTION_CHARS} characters")
    if not re.search(r"\d", question) and not re.search(
            r"\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|dozen|half|twice)\b",
            question, re.IGNORECASE):
        raise ParseError("the question has no quantities")
    answer = final_answer(solution)
    if answer is None:
        raise ParseError("no numeric final answer ('The answer is N.')")
    cues = list(_CUE.finditer(solution))
    end = _SENTENCE_END.search(solution, cues[-1].end()) if cues else None
    if end:  # the solution ends with its final-answer sentence
        solution = solution[: end.start()]
    return {"question": question, "solution": solution.strip().rstrip(".") + ".", "answer": answer}


def render_problem(item: dict[str, str]) -> str:
    return f"Question: {item['question']}\nAnswer: {item['solution']}\n\n"
