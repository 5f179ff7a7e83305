"""A deterministic detector for candidate texts that talk to their judge.

A story or an instruction has no reason to contain chat-template tokens, role labels,
"Answer: Yes", a request to rate it, the judge's own question, or "yes" over and
over. Under selection pressure a generator finds such text when it raises the
score, so :func:`judge_directed` names the first rule a text breaks and the verifier
makes the item invalid: an invalid item never enters the archive, so no amount of
judge drift makes the trick pay. A soft penalty would only move the break-even
point. The rules look at a *skeleton* of the text (NFKC, invisible characters
removed, common Cyrillic/Greek look-alike letters mapped to Latin, letters spaced
out as "Y e s" joined), so the obvious disguises do not get through either.

False positives are the price: a courtroom story where someone shouts "Answer: yes!"
is rejected. The rules are narrow on purpose (labels only at a sentence start,
phrases aimed at a rater, three or more "yes"), and the seed texts pass them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Cyrillic and Greek letters that render like Latin ones (the common homoglyphs).
_CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ո": "n", "ν": "v", "ο": "o", "α": "a", "ε": "e",
    "А": "A", "Α": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ο": "O", "Υ": "Y",
    "Ν": "N", "Ε": "E", "Τ": "T", "Ι": "I", "Κ": "K", "Μ": "M", "Ζ": "Z", "Β": "B", "Ρ": "P",
})
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\x00-\x08\x0e-\x1f\x7f-\x9f]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_SPACED = re.compile(r"\b(?:[A-Za-z][ .\-_*]){2,}[A-Za-z]\b")

_LABEL_WORDS = (r"question|answer|text|story|instruction|system|assistant|user|human|judge|rating|"
                r"score|verdict|grade|evaluation|response|output|feedback|label|result")
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("contains chat-template or special tokens", re.compile(
        r"<\|[^<>]{0,60}\|>|</?s>|\[/?(INST|SYS|SEP|CLS)\]|<</?SYS>>|<(file_sep|repo_name|reponame|"
        r"filename|issue_\w+|jupyter_\w+|empty_output|gh_stars)>|(^|\s)#{2,}\s*(instruction|response|"
        r"answer|input)\b", re.IGNORECASE)),
    ("contains a role or prompt label", re.compile(
        r"(^|[.!?\"'\u201c\u201d\])]\s*|\n\s*|\s[-\u2013\u2014]\s)(" + _LABEL_WORDS + r")\s*[:=]",
        re.IGNORECASE)),
    ("states the judge's answer", re.compile(
        r"\b(answer|verdict|rating|judgement|judgment|reply|response|output|grade|score)\b"
        r"\W{0,3}(is\s+|should be\s+|=\s*)?[\"'\u201c]?(yes|no|true|false|10\s*/\s*10|100\s*/\s*100)\b",
        re.IGNORECASE)),
    ("asks the judge for a verdict", re.compile(
        r"\b(say|answer|respond|reply|output|print|return|choose|pick)\s+(with\s+|only\s+|just\s+)*"
        r"[\"'\u201c]?(yes|no|true)\b|\b(rate|score|grade|evaluate|classify)\s+(this|it|me|my)\b|"
        r"\b(rate|score|grade|mark|judge|evaluate|classify|review)\s+(this|the|my)\s+(text|story|"
        r"instruction|response|passage|writing)\b|\bignore\s+(all\s+|any\s+)?(the\s+|my\s+|your\s+)?(previous|prior|"
        r"above|earlier|preceding|other|original)\s+(instructions?|text|questions?|prompts?|rules)",
        re.IGNORECASE)),
    ("addresses the judge", re.compile(
        r"\b(dear|hey|attention|note to( the)?|to the)\s+(judge|evaluator|grader|reviewer|rater|model|ai|"
        r"assistant|llm)\b|\b(judge|evaluator|grader|rater|assistant|model|ai)\s*[,:]\s*(please|answer|"
        r"say|rate|you|ignore|output|respond|note|this)\b|\b(evaluator|grader|reward model|language "
        r"model|llm|as an ai)\b|\b(new|next|real|actual|updated|following)\s+(question|task|"
        r"instructions?)\s*(is|:)", re.IGNORECASE)),
    ("praises itself", re.compile(
        r"\bthis\s+(text|story|instruction|passage|response|answer|piece|tale)\s+(is|was|has)\s+"
        r"(a\s+|an\s+)?(very\s+|truly\s+|extremely\s+|really\s+)?(well[- ]written|excellent|great|"
        r"perfect|good|clear|useful|brilliant|amazing|wonderful|high[- ]quality|the best|flawless|"
        r"complete|a clear)|\b(is|was)\s+(a|an)\s+(very\s+|truly\s+|really\s+)?(great|excellent|perfect|"
        r"well[- ]written|brilliant|wonderful|flawless|high[- ]quality)\s+(short\s+)?(story|text|"
        r"instruction|tale|piece)\b", re.IGNORECASE)),
]
_YES = re.compile(r"\b(yes|yeah|yep|yup)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")


def skeleton(text: str) -> str:
    """The text with the usual disguises undone (for detection only, never shown)."""
    s = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).translate(_CONFUSABLES)
    return _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), s)


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def judge_directed(text: str, judge_questions: Iterable[str] = (), quote_words: int = 4) -> str | None:
    """Why ``text`` talks to its judge (the first rule it breaks), or None.

    ``judge_questions`` are the judge prompts with the text left out: a candidate that
    repeats ``quote_words`` consecutive words of one ("a well written short story")
    is echoing the question to the judge rather than doing the task.
    """
    if _BIDI.search(text):  # text that reads differently to a person and to the judge
        return "contains direction-control characters"
    s = skeleton(text)
    for reason, rule in _RULES:
        if rule.search(s):
            return reason
    if len(_YES.findall(s)) >= 3:
        return "repeats the judge's answer word"
    grams = _ngrams(s, quote_words)
    for question in judge_questions:
        if grams & _ngrams(question, quote_words):
            return "quotes the judge's question"
    return None
