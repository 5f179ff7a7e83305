"""Questions that give away their own answer.

Self-consistency labels reward questions the solver agrees on, and the author writes
the question: one that carries its answer ("What is 2+2? (The answer is 4.)", "Hint:
12", "... Answer: 7", ``\\boxed{5}``, "#### 12", "just say 9", or the total stated as a
fact) makes every sample agree without solving anything, so the verifier rejects it.
The rules read the question as the solver does (:func:`~domains.math_sc.parse.plain`
and :func:`~domains.math_sc.steps.symbolic`): every Unicode digit, fullwidth and
variant punctuation, invisible characters dropped, number words as digits:

- a word that mixes scripts (``аnswer`` with a Cyrillic ``а``): look-alike letters hide
  a cue from every rule below, and no honest question needs them;
- any answer statement (English cues and a few other languages', words between allowed:
  "the answer you want, of course, is 12", "the correct result: 12");
- a GSM8K-style ``#### N`` marker; text that dictates the reply ("reply 7", "just say");
- the author's answer after ``=`` (or "equals", "makes" after a number), after any
  question mark, after a label ("Hint: 12", "Note - 12", "Antwort: 12") or a hint word,
  in brackets ("(12)"), or in a sentence that states a result ("... 12 in total");
- the author's answer anywhere in the question, unless it is a whole number from 0 to
  10 (small numbers recur honestly: "four friends ... answer 4") or the worked solution
  computes with it (the question's input, not its result). "Tom, who owns 15 stamps,
  has 3 books of 5" with ``3 * 5 = 15`` is rejected; "50 shirts, 25 sold" with
  ``50 - 25 = 25`` is too (25 is only ever a result there), a price in honesty the solver
  would have paid anyway: it can copy the number.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

from domains.math_sc.numerals import fold
from domains.math_sc.parse import normalise_number, plain
from domains.math_sc.steps import inputs, symbolic

_CUES = (r"answer|ans|solution|soln|result|output|reply|response|antwort|l[oö]sung|ergebnis|respuesta|"
         r"soluci[oó]n|r[eé]ponse|r[eé]sultat|risposta|resposta|risultato|resultado|ответ|решение|答案|答え|"
         r"解答|정답|jawaban|cevap")
_CONNECT = (r"is|are|was|will\s+be|should\s+be|would\s+be|must\s+be|might\s+be|could\s+be|shall\s+be|"
            r"equals?|comes\s+to|works\s+out\s+(?:to|as)|becomes|being|reads|gives|ist|es|est|è|é|=|:|-")
_FILLER = (r"the|a|number|value|exactly|just|simply|clearly|obviously|actually|probably|surely|certainly|"
           r"definitely|then|here|correct|right|true|real|final|always|about|roughly|really|still|indeed")
# a cue, up to three words (not '=' or ':'), a connector, fillers, then a number
_STATEMENT = re.compile(rf"(?:\b|(?<=[^\x00-\x7f]))(?:{_CUES})s?(?:\b|(?=[^\x00-\x7f]))"
                        rf"(?:\s*[=:\-]|(?:[\s,]+[\w']+){{0,5}}?[\s,]+(?:{_CONNECT}))"
                        rf"(?:[\s,(\[\"'*_]+(?:{_FILLER})\b)*[\s,(\[\"'*_~]*-?\$?\s?\d", re.IGNORECASE)
_UNCUED = re.compile(rf"(?<![\w])(?:{_CUES})(?:是|为|は|:)\s*-?\d", re.IGNORECASE)
_MARKER = re.compile(r"#{2,}\s*-?\$?\d")
_DICTATE = re.compile(r"\b(answer|reply|respond)\s+(with\s+)?(only\s+|just\s+)?"
                      r"(the\s+number\s+)?-?\$?\d|"
                      r"\b(just|simply|only)\s+(say|write|output|put|answer|reply|print|type)\b", re.IGNORECASE)
# "say 5 people share ..." is honest: these verbs dictate only with the author's answer
_DICTATE_ANSWER = re.compile(r"\b(say|said|output|print|type|enter|write|put|give|return|respond)\s+"
                             r"(?:with\s+|only\s+|just\s+|exactly\s+|the\s+number\s+|back\s+)*", re.IGNORECASE)
_LABEL = re.compile(r"(?:[^\W\d_]+\.?|\bp\.s\.)\s*(?::|-\s|—|=>)\s*(?:[\"'(\[*_]\s*)?")
_HINT = re.compile(r"\b(hints?|clues?|tips?|spoilers?|psst|ps|note|key|expected|fyi|cheat|solved|"
                   r"shortcut|reminder)\b", re.IGNORECASE)
_RESULT = re.compile(r"\b(total|totals|in\s+all|altogether|all\s+together|overall|in\s+the\s+end|"
                     r"result|results|ends?\s+up|ended\s+up|left\s+over|therefore|thus|hence)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n")
_LOOSE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?(?:\s?%|\s?[kK]\b)?")


def values(text: str) -> list[tuple[set[str], int]]:
    """Every number of (already read) ``text`` with the values it may stand for, and its
    end: ``-5`` is -5 and 5, ``25%`` is 25 and 0.25, ``5k`` is 5 and 5000. More readings
    than the vote takes: a leak in any reading is a leak."""
    out = []
    for m in _LOOSE.finditer(text):
        raw = m.group(0)
        core = re.sub(r"\s?(%|[kK])$", "", raw)
        vals = {normalise_number(core), normalise_number(core.lstrip("-"))}
        if raw.endswith("%"):
            vals.add(normalise_number(str(float(core.replace(",", "")) / 100)) if "/" not in core else None)
        if raw[-1:] in "kK":
            vals.add(normalise_number(str(float(core.replace(",", "")) * 1000)) if "/" not in core else None)
        vals.discard(None)
        out.append((vals, m.end()))  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def _first_is(text: str, answer: str, words: int = 4) -> bool:
    """Whether the first number in the next few words of ``text`` reads as ``answer``."""
    head = " ".join(text.split()[:words])
    found = values(head)
    return bool(found) and answer in found[0][0]


def _mixed_script(text: str) -> str | None:
    for word in re.findall(r"[^\W\d_]{2,}", unicodedata.normalize("NFKC", text)):
        scripts = {unicodedata.name(c, "?").split()[0] for c in word}
        scripts = {"CJK" if s in ("HIRAGANA", "KATAKANA", "CJK") else s for s in scripts}
        if len(scripts) > 1:
            return word
    return None


def _small(answer: str) -> bool:
    return re.fullmatch(r"-?\d+", answer) is not None and abs(int(answer)) <= 10


def leaks_answer(question: str, answer: str, solution: str = "") -> str | None:
    """Why ``question`` gives away an answer (``answer`` is the author's, canonical), or None.
    With the worked ``solution``, an answer that the solution computes with (Wendi's flock
    of 20 chickens, answer 20: ``20 * 3 = 60``) is an input to the question, not a fact it
    states; only the rules that do not need a cue look at that."""
    if word := _mixed_script(fold(question)):
        return f"a word mixes scripts (look-alike letters): {word!r}"
    q = plain(question)
    if _STATEMENT.search(q) or _UNCUED.search(q):
        return "the question states an answer"
    if _MARKER.search(q):
        return "the question carries an answer marker (####)"
    if _DICTATE.search(q):
        return "the question dictates the reply"
    if any(_first_is(q[m.end():], answer, words=1) for m in _DICTATE_ANSWER.finditer(q)):
        return "the question dictates the reply"
    sym = symbolic(question)
    for m in re.finditer(r"[=≐≈]", sym):
        if _first_is(sym[m.end():], answer, words=2):
            return "the question shows the answer after '='"
    tail = q.rsplit("?", 1)[1] if "?" in q else ""
    if any(answer in vals for vals, _ in values(tail)):
        return "the question gives the answer after its question mark"
    for m in re.finditer(r"\?", q):
        if _first_is(q[m.end():], answer, words=5):
            return "the question gives the answer after an earlier question mark"
    for m in _LABEL.finditer(q):
        if _first_is(q[m.end():], answer, words=3):
            return "the question gives the answer after a label"
    if re.search(rf"[(\[{{<]\s*(?:-?\$?\s?){re.escape(answer)}\s*%?\s*[)\]}}>]", q):
        return "the question gives the answer in brackets"
    used = Fraction(answer) in inputs(solution) if solution else False
    for sentence in _SENTENCE.split(q):
        if any(answer in vals for vals, _ in values(sentence)):
            if _HINT.search(sentence):
                return "the question gives the answer in a hint"
            if used:
                continue
            if _RESULT.search(sentence):
                return "the question states its result as a fact"
            if not _small(answer):
                return "the question contains its own answer"
    return None
