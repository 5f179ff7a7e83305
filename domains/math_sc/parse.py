"""Parsing math word problems and chain-of-thought answers; normalising numbers."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from evo.domain import ParseError

MAX_QUESTION_CHARS = 600
_NUM = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:\s?/\s?\d+)?"
_FINAL = re.compile(r"answer is[:\s]*(" + _NUM + r")(?!\w)", re.IGNORECASE)
_ANY = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def normalise_number(raw: str) -> str | None:
    """``"1,200"`` -> ``"1200"``, ``"$3.50"`` -> ``"3.5"``, ``"3/4"`` -> ``"0.75"``,
    ``"6.0"`` -> ``"6"``; None for anything that is not a finite number."""
    s = raw.replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    if not s or len(s) > 40:
        return None
    try:
        value = float(Fraction(s)) if "/" in s else float(s)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    if not math.isfinite(value) or abs(value) >= 1e12:
        return None
    value = round(value, 6)
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0")


def final_answer(text: str, fallback_last_number: bool = False) -> str | None:
    """The number after the last "The answer is"; optionally the last number in the text."""
    found = [m.group(1) for m in _FINAL.finditer(text) if m.group(1).strip("-$ ")]
    if found:
        return normalise_number(found[-1])
    if fallback_last_number:
        nums = _ANY.findall(text)
        return normalise_number(nums[-1]) if nums else None
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
    m = list(_FINAL.finditer(solution))[-1]
    return {"question": question, "solution": solution[: m.end()].strip().rstrip(".") + ".",
            "answer": answer}


def render_problem(item: dict[str, str]) -> str:
    return f"Question: {item['question']}\nAnswer: {item['solution']}\n\n"
