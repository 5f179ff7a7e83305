"""The math domain's held-out benchmark (``evo eval --domain math``) and its exact-answer checker.

A completion is read strictly, because a lenient reader is what a weak or gaming model
exploits (a model that lists every number of the question would "contain" the answer):

- it must state its answer ("The answer is N", "Answer: N", ``\\boxed{N}``): no statement,
  no answer (no fallback to the last number: that is the vote's lenient reading, not ours);
- every statement must give exactly one readable number (``"42 or 43"``, ``"4 2"``, ``"1e5"``,
  ``"5k"``, a number of 10^12 or more: no answer), and all statements must agree
  (``"The answer is 42. The answer is 41."``: no answer);
- a number after the last statement that differs from it is a retraction or a continuation
  that cannot be read (``"The answer is 42... actually 41"``): no answer; a restatement
  (``"... because 36 - 7 = 29"`` after 29) is fine;
- the value is compared exactly, in fractions: ``42.0`` and ``$42`` and ``42 apples`` are 42,
  ``41.9999999`` is not (the vote's normaliser rounds to 6 decimals; this does not).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from domains.math_sc.parse import (  # the vote's own tokenisation: one grammar of "a number"
    _ANY,
    _CUE,
    _NUMBER,
    _SENTENCE_END,
    answer_statements,
    plain,
)
from domains.math_sc.wordgen import normalise, problems
from evo.domain import Benchmark, BenchmarkItem
from evo.errors import EvoError

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

PROMPT_STYLES = ("completion", "chat")
CHAT_ASK = ("Solve this math word problem step by step. End your reply with 'The answer is N.' "
            "where N is a number.\n\n{question}")
MAX_NEW_TOKENS = 160


def exact_value(text: str) -> Fraction | None:
    """The one answer a completion states, exactly, or None (see the module docstring)."""
    statements = answer_statements(text)
    if not statements or any(v is None for v in statements) or len(set(statements)) > 1:
        return None
    s = plain(text)
    last = list(_CUE.finditer(s))[-1]
    rest = s[last.end():]
    sentence = _SENTENCE_END.split(rest, 1)[0]
    raw = _NUMBER.search(sentence)
    if raw is None:
        return None
    try:
        value = Fraction(raw.group(0).replace("$", "").replace(",", "").replace(" ", "").rstrip("%"))
    except (ValueError, ZeroDivisionError):
        return None
    after = rest[len(sentence):]
    trailing = list(_ANY.finditer(after))
    if trailing:
        try:
            if Fraction(trailing[-1].group(0).replace(",", "")) != value:
                return None
        except (ValueError, ZeroDivisionError):
            return None
    return value


def answer_key(text: str) -> str | None:
    """:func:`exact_value` as a vote: ``"42"``, ``"3/4"``, or None."""
    v = exact_value(text)
    return None if v is None else str(v)


def is_correct(text: str, gold: str | int) -> bool:
    v = exact_value(text)
    return v is not None and v == Fraction(str(gold))


def solve_prompt(question: str, style: str, shots: list[dict[str, Any]]) -> str | list[dict[str, str]]:
    """The few-shot completion prompt the math domain's scorer uses, or a chat turn."""
    from domains.math_sc.parse import PREAMBLE, render_problem

    if style == "completion":
        return f"{PREAMBLE}{''.join(render_problem(e) for e in shots)}Question: {question}\nAnswer:"
    if style == "chat":
        return [{"role": "user", "content": CHAT_ASK.format(question=question)}]
    raise EvoError(f"unknown prompt style '{style}' (choose {', '.join(PROMPT_STYLES)})")


def math_benchmark(shots: list[dict[str, Any]], split: str = "test", limit: int | None = None, seed: int = 0,
                   prompt_style: str = "completion", stop: list[str] | None = None) -> Benchmark:
    """``limit`` templated word problems of ``split`` with their exact answers."""
    if prompt_style not in PROMPT_STYLES:
        raise EvoError(f"unknown prompt style '{prompt_style}' (choose {', '.join(PROMPT_STYLES)})")
    try:
        items = problems(split, limit, seed)
    except KeyError:
        raise EvoError(f"unknown split '{split}' (choose train or test)") from None
    gold = [it["answer"] for it in items]

    def check(completions: list[list[str]], sandbox: Sandbox | None = None) -> list[list[bool]]:
        return [[is_correct(c, g) for c in row] for row, g in zip(completions, gold)]

    return Benchmark(
        name=f"math-wordgen-{split}", split=split, ids=[it["id"] for it in items],
        prompts=[solve_prompt(it["question"], prompt_style, shots) for it in items], check=check,
        stop=(stop or []) if prompt_style == "completion" else [], max_new_tokens=MAX_NEW_TOKENS,
        meta={"prompt_style": prompt_style, "problems": len(items), "answers": gold})


def heldout_items(split: str = "test") -> list[BenchmarkItem]:
    """Every problem of ``split`` for the contamination check (``evo export`` drops overlaps):
    the key is :meth:`MathDomain.key`'s normalised question."""
    return [BenchmarkItem(id=it["id"], text=f"{it['question']} {it['solution']}", embed=it["question"],
                          key=normalise(it["question"]), domain="math") for it in problems(split)]

