"""Questions that give away their own answer.

Self-consistency labels reward questions the solver agrees on. A question that
carries its answer ("What is 2+2? (The answer is 4.)", "... Answer: 7", ``\\boxed{5}``,
"#### 12", "just say 9") makes every sample agree without solving anything, so the
verifier rejects it. Rules, checked on the question with LaTeX made plain:

- any answer statement (the same cues the votes are read from, and "the solution /
  result is N");
- a GSM8K-style ``#### N`` marker;
- text that dictates the reply ("answer with 7", "reply 7", "just say ...");
- the author's answer after an equals sign or after the last question mark.
"""

from __future__ import annotations

import re

from domains.math_sc.parse import _NUMBER, canonical_latex, normalise_number

_STATEMENT = re.compile(r"\b(answer|solution|result)s?\s*(is|:|=|equals|should be|will be|would be|must be)"
                        r"\s*(?:\(|\[|\s)*-?\$?\s?\d", re.IGNORECASE)
_MARKER = re.compile(r"#{2,}\s*-?\$?\d")
_DICTATE = re.compile(r"\b(answer|reply|respond)\s+(with\s+)?(only\s+|just\s+)?(the\s+number\s+)?-?\$?\d|"
                      r"\b(just|simply|only)\s+(say|write|output|put|answer|reply)\b", re.IGNORECASE)


def leaks_answer(question: str, answer: str) -> str | None:
    """Why ``question`` gives away an answer (``answer`` is the author's, canonical), or None."""
    q = canonical_latex(question)
    if _STATEMENT.search(q):
        return "the question states an answer"
    if _MARKER.search(q):
        return "the question carries an answer marker (####)"
    if _DICTATE.search(q):
        return "the question dictates the reply"
    for m in re.finditer(r"=\s*", q):
        num = _NUMBER.match(q, m.end())
        if num and normalise_number(num.group(0)) == answer:
            return "the question shows the answer after '='"
    tail = q.rsplit("?", 1)[1] if "?" in q else ""
    if any(normalise_number(n) == answer for n in _NUMBER.findall(tail)):
        return "the question gives the answer after its question mark"
    return None
