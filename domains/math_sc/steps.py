"""Checking the arithmetic of a worked solution, in whatever words it is written.

A step is ``L = R`` where ``=`` is the sign or its words ("equals", "is equal to"; "is",
"makes", "gives" after a number) and ``L`` is arithmetic: ``+ - * / ^``, the words
"times", "x", "multiplied by", "divided by", "over", "plus", "minus", "25% of", "1/3 of",
and every Unicode form of them (``×`` ``·`` ``÷`` ``−`` ``＝``, fullwidth digits). Chains
(``2 * (9 + 4) = 2 * 13 = 26``) are checked link by link, exactly in fractions, with
the slack of the digits the author wrote (``10 / 3 = 3.3`` is right, ``7 / 2 = 3`` is
not; after "about" or ``≈`` the claim is rounded to the digits shown).

Not checked (left to the vote, said in the README): steps with a variable (``x + 3 =
10``), a function (``sqrt``, ``5!``), a number on the left only (``36 = 3 * 12``, since
"3 boxes of 12 = 3 * 12" reads that way too) or a power beyond ``^12``.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

from domains.math_sc.numerals import spell_out
from domains.math_sc.parse import canonical_latex

_APPROX_CHARS = dict.fromkeys(map(ord, "≈≃≅≒≊∼~"), " approximately ")  # before fold() makes them '='
_NUM = r"\d+(?:\.\d+)?%?"
_REWRITES = [  # (pattern, replacement), in order, on folded text with digits for words
    (r"(?<=\d),(?=\d{3}(?!\d))", ""),
    (r"\$", ""),
    (r"\b(?:is\s+)?(?:approximately|roughly|about|around|nearly|almost)\s+(?:equal\s+to\s+)?", " ≈ "),
    (r"≈\s*=|=\s*≈", "≈"),
    (r"\b(?:is\s+equal\s+to|equals?|equal\s+to)\b", " = "),
    (r"==+", "="),
    (r"(?<=[\d)%])\s*(?:multiplied\s+by|times|[xX])\s*(?=[-\d(.])", " * "),
    (r"(?<=[\d)%])\s*divided\s+by\s*(?=[-\d(.])", " / "),
    (r"(?<=[\d)%])\s+over\s+(?=[-\d(.])", " / "),
    (r"(?<=[\d)%])\s+plus\s+(?=[-\d(.])", " + "),
    (r"(?<=[\d)%])\s+(?:minus|less)\s+(?=[-\d(.])", " - "),
    (r"(?<=[\d)])\s*%\s+of\s+(?=[-\d(.])", "% * "),
    (r"(?<=\d/\d)\s+of\s+(?=[-\d(.])", " * "),
    (r"(?<=\d/\d\d)\s+of\s+(?=[-\d(.])", " * "),
    (rf"({_NUM})\s+[A-Za-z]+\s*(?=[-+*/^]\s*[\d(])", r"\1 "),  # a unit inside a step: 7 rows * 14
    (rf"([-+*/^]\s*\(?\s*{_NUM}\s*\)?)\s+[A-Za-z]+\s*(?=[=≈]|(?:is|are|makes|gives)\b)", r"\1 "),
    (r"(?<=[\d)%])\s+(?:is|are|was|were|makes|make|gives|give|leaves|totals?|yields|comes\s+to)\b",
     " ≐ "),  # a weak '=': checked only when its left side is arithmetic
]
_CLAUSE = re.compile(r"\.(?=\s|$)|[;!?\n]|,(?=\s)|:(?=\s)")
_CONNECTOR = re.compile(r"(=|≐|≈)")
_RUN_CHARS = r"[\d\s.%()+\-*/^]"
_TRAILING = re.compile(rf"{_RUN_CHARS}*$")
_LEADING = re.compile(rf"^{_RUN_CHARS}*")
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b}


def symbolic(text: str) -> str:
    """The text with every way of writing ``= + - * /`` as that symbol (``≐``: "is" after a
    number, ``≈``: "about"), numbers as ASCII digits."""
    s = spell_out(canonical_latex(text.translate(_APPROX_CHARS)), dozen_after_digits=False)
    for pattern, repl in _REWRITES:
        s = re.sub(pattern, repl, s, flags=re.IGNORECASE)
    return s


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and \
            not isinstance(node.value, bool):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_value(node.left), _value(node.right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exp = _value(node.left), _value(node.right)
        if exp.denominator != 1 or abs(exp) > 12 or abs(base) > 10**6:
            raise ValueError("power out of range")  # 9 ** 9 ** 9 is not evaluated
        return base ** int(exp)
    raise ValueError("not arithmetic")


def evaluate(expr: str) -> Fraction | None:
    """``+ - * / ^`` and ``%`` arithmetic on numbers, exactly; None for anything else."""
    s = expr.strip()
    while s.startswith("(") and s.count("(") > s.count(")"):
        s = s[1:].strip()  # a bracket opened before the step: "(3 + 4 = 7)"
    while s.endswith(")") and s.count(")") > s.count("("):
        s = s[:-1].strip()
    if not s or len(s) > 80 or not re.fullmatch(r"[\d\s.%()+\-*/^]+", s):
        return None
    s = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", s).replace("^", "**")
    s = re.sub(r"(?<=[\d)])\s*\(", "*(", s)  # 2(9 + 4)
    try:
        value = _value(ast.parse(s, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    return value if abs(value) < 10**15 else None


def _has_op(run: str) -> bool:
    return bool(re.search(r"(?<=[\d)%\s])[-+*/^]", run.strip()))


def _close(value: Fraction, claimed_text: str, approx: bool) -> bool:
    claimed = evaluate(claimed_text)
    if claimed is None:
        return True  # not a number: nothing to check
    decimals = len(m.group(1)) if (m := re.search(r"\.(\d+)\s*%?\s*$", claimed_text.strip())) else 0
    slack = Fraction(1, 2 * 10**decimals) if (decimals or approx) else Fraction(1, 100)
    return abs(value - claimed) <= slack + abs(value) / 10**6


def steps(solution: str) -> list[tuple[str, str, Fraction, str, bool]]:
    """Every checkable step: (its text, its left side and that side's value, its right
    side, whether it is right)."""
    out = []
    for clause in _CLAUSE.split(symbolic(solution)):
        parts = _CONNECTOR.split(clause)
        for i in range(1, len(parts) - 1, 2):
            left, conn, right = parts[i - 1], parts[i], parts[i + 1]
            lrun = _TRAILING.search(left).group(0)  # type: ignore[union-attr]
            rrun = _LEADING.search(right).group(0)  # type: ignore[union-attr]
            before, after = left[: len(left) - len(lrun)], right[len(rrun):]
            if lrun.strip()[:1] in "+*/^-" and before.rstrip()[-1:].isalpha():
                continue  # "x + 3 = 10": a variable on the left
            if rrun.strip()[-1:] in "+-*/^" or (_has_op(rrun) and after.lstrip()[:1].isalpha()):
                continue  # "= 10 - x": a variable on the right
            whole_left = not before.strip() and i > 1
            if not (_has_op(lrun) or (conn == "=" and whole_left and _has_op(rrun))):
                continue  # "3 boxes of 12 is 36", "12 pencils = 3 * 12": no arithmetic to check
            value, claimed = evaluate(lrun), evaluate(rrun)
            if value is None or claimed is None:
                continue
            ok = _close(value, rrun, conn == "≈") if not _has_op(rrun) else abs(value - claimed) <= \
                Fraction(1, 100)
            text = f"{lrun.strip()} {conn.replace('≐', '=')} {rrun.strip()}"
            out.append((text, lrun.strip(), value, rrun.strip(), ok))
    return out


def wrong_step(solution: str) -> str | None:
    """The first step of the worked answer whose arithmetic is wrong, or None."""
    return next((text for text, _, _, _, ok in steps(solution) if not ok), None)


def last_result(solution: str) -> Fraction | None:
    """The value the worked answer's last checkable step arrives at (its right side)."""
    found = [evaluate(right) for _, _, _, right, _ in steps(solution) if not _has_op(right)]
    return next((v for v in reversed(found) if v is not None), None)


def inputs(solution: str) -> set[Fraction]:
    """The numbers the worked answer starts from: operands of a step that arrives at
    another number, before any step arrives at them (in ``20 * 3 = 60``, 20 and 3; in
    ``15 * 1 = 15``, nothing; in ``3 * 5 = 15. 15 * 2 = 30``, 3 and 5: 15 is a result)."""
    out: set[Fraction] = set()
    produced: set[Fraction] = set()
    for _, left, value, _, _ in steps(solution):
        for num in re.findall(r"\d+(?:\.\d+)?%?", left):
            operand = evaluate(num)
            if operand is not None and operand != value and operand not in produced:
                out.add(operand)
        produced.add(value)
    return out
