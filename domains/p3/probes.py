"""Answers a reader of ``f`` sees at once: its literals, constant expressions, simple images.

Why: the enumerative search measures how far it must look for an answer, so an answer
that is spelled out in ``f`` (``n == 3**40``, ``s == 'ab' * 9``, ``x == 'olleh'[::-1]``,
``x[::-1] == 'hello'``) must be among the first candidates it tries, or a large literal
would buy search hardness 1.0 that any reader sees through. The expressions are evaluated
here, in the verifier, by a small evaluator over the AST (no ``eval``): numbers, strings,
lists and tuples of them, arithmetic, slicing and a few pure builtins and ``str`` methods,
each result size-capped so that ``10**10**10`` is skipped rather than computed.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any

MAX_PROBES = 64
MAX_LEN = 4096  # characters or elements of one value
MAX_INT_BITS = 4096  # about 1233 decimal digits

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.BitXor: operator.xor, ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.Div: operator.truediv}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
_FUNCS = {"len": len, "sum": sum, "sorted": sorted, "abs": abs, "min": min, "max": max,
          "str": str, "int": int, "float": float, "list": list, "chr": chr, "ord": ord,
          "reversed": lambda x: list(reversed(x)), "range": lambda *a: list(range(*a))}
_STR_METHODS = {"upper", "lower", "swapcase", "title", "capitalize", "strip", "join", "replace",
                "split", "count", "index", "find", "zfill", "center", "ljust", "rjust"}


class _NotConstant(Exception):
    pass


def _small(v: Any) -> Any:
    """``v`` if it is answer-sized data, else :class:`_NotConstant`."""
    if type(v) is bool or v is None:
        return v
    if type(v) is int:
        if v.bit_length() > MAX_INT_BITS:
            raise _NotConstant
        return v
    if type(v) is float:
        if not math.isfinite(v):
            raise _NotConstant
        return v
    if type(v) in (str, list, tuple):
        if len(v) > MAX_LEN:
            raise _NotConstant
        if type(v) is not str:
            for e in v:
                _small(e)
        return v
    raise _NotConstant


def _guard_binop(op: ast.operator, a: Any, b: Any) -> None:
    """Refuse what would be too large before computing it."""
    if isinstance(op, ast.Pow):
        if type(a) not in (int, float) or type(b) not in (int, float) or abs(b) > 4096:
            raise _NotConstant
        if type(a) is int and type(b) is int and b > 0 and a.bit_length() * b > MAX_INT_BITS:
            raise _NotConstant
    if isinstance(op, ast.LShift) and (type(b) is not int or b > MAX_INT_BITS):
        raise _NotConstant
    if isinstance(op, ast.Mult):
        seq, n = (a, b) if type(b) is int else (b, a)
        if type(seq) in (str, list, tuple) and type(n) is int and len(seq) * max(n, 0) > MAX_LEN:
            raise _NotConstant


def _const(node: ast.AST) -> Any:
    """The value of a constant expression, or :class:`_NotConstant`."""
    if isinstance(node, ast.Constant):
        return _small(node.value)
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_const(e) for e in node.elts]
        return _small(values if isinstance(node, ast.List) else tuple(values))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _small(_UNARY[type(node.op)](_const(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _const(node.left), _const(node.right)
        _guard_binop(node.op, a, b)
        return _small(_BINOPS[type(node.op)](a, b))
    if isinstance(node, ast.Subscript):
        value = _const(node.value)
        s = node.slice
        if isinstance(s, ast.Slice):
            parts = [None if p is None else _const(p) for p in (s.lower, s.upper, s.step)]
            return _small(value[slice(*parts)])
        return _small(value[_const(s)])
    if isinstance(node, ast.Call) and not node.keywords:
        args = [_const(a) for a in node.args]
        if isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
            if node.func.id == "range" and len(range(*args)) > MAX_LEN:
                raise _NotConstant
            return _small(_FUNCS[node.func.id](*args))
        if isinstance(node.func, ast.Attribute) and node.func.attr in _STR_METHODS:
            obj = _const(node.func.value)
            if type(obj) is not str or any(type(a) is int and a > MAX_LEN for a in args):
                raise _NotConstant
            return _small(getattr(obj, node.func.attr)(*args))
    raise _NotConstant


def _images(v: Any) -> list[Any]:
    """A value and what a reader gets from it in one step: reversed, sorted, negated."""
    out = [v]
    if type(v) is str:
        out += [v[::-1], "".join(sorted(v)), v.upper(), v.lower()]
    elif type(v) is list:
        out.append(v[::-1])
        try:
            out.append(sorted(v))
        except TypeError:
            pass
    elif type(v) is tuple:
        out.append(list(v))
    elif type(v) in (int, float):
        out.append(-v)
    return out


def literal_probes(f_src: str) -> list[Any]:
    """Constants and constant expressions of ``f`` and their simple images, in source order
    (outer expressions first: ``3**40`` before ``3`` and ``40``), at most MAX_PROBES."""
    try:
        tree = ast.parse(f_src)
    except SyntaxError:
        return []
    out: list[Any] = []
    seen: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr):
            continue
        try:
            value = _const(node)
        except (_NotConstant, ArithmeticError, ValueError, TypeError, IndexError, KeyError, RecursionError):
            continue
        for v in _images(value):
            key = f"{type(v).__name__}:{v!r}"
            if key not in seen:
                seen.add(key)
                out.append(v)
        if len(out) >= MAX_PROBES:
            return out[:MAX_PROBES]
    return out
