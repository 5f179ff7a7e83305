"""P3's answer types: the vocabulary, the exact deep type check, the trivial answers.

An answer is plain data (see :mod:`evo.sandbox.plaindata`): ``int``, ``float``, ``str``, ``bool``,
and lists and dicts of those. Types are written ``int``, ``float``, ``str``, ``bool``,
``List[T]``, ``Dict[K, V]`` (``K`` a scalar type), or bare ``list``/``dict``, which say
only "a list (dict) of plain answer data". The check is exact: ``type(x) is int``, so
neither ``bool`` nor an ``int`` subclass is an ``int``.
"""

from __future__ import annotations

import re

_SCALAR = {"int": int, "float": float, "str": str, "bool": bool}
_TRIVIAL: dict[str, list] = {
    "int": list(range(-10, 11)) + [100, 1000],
    "float": [0.0, 1.0, -1.0, 0.5, 2.0],
    "str": ["", "a", "0", "1", " ", "ab"],
    "bool": [True, False],
}


def _split_args(inner: str) -> list[str]:
    """``"int,List[str]"`` -> ``["int", "List[str]"]`` (commas at bracket depth 0)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        depth += (c == "[") - (c == "]")
        if depth < 0:
            return []
        if c == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    return parts + [inner[start:]] if depth == 0 else []


def _norm(t: str) -> str | None:
    if t in _SCALAR:
        return t
    if t in ("list", "List"):
        return "list"
    if t in ("dict", "Dict"):
        return "dict"
    m = re.fullmatch(r"(List|list|Dict|dict)\[(.+)\]", t)
    if not m:
        return None
    args = [_norm(a) for a in _split_args(m.group(2))]
    if m.group(1).lower() == "list":
        return f"List[{args[0]}]" if len(args) == 1 and args[0] else None
    if len(args) == 2 and args[0] in _SCALAR and args[1]:
        return f"Dict[{args[0]},{args[1]}]"
    return None


def normalise_type(annotation: str) -> str | None:
    """``list[int]`` -> ``List[int]``, ``List`` -> ``list``; None outside P3's vocabulary."""
    return _norm(annotation.replace(" ", "").replace("typing.", ""))


def _plain(x: object) -> bool:
    """Plain answer data of any shape (what a bare ``list``/``dict`` holds)."""
    t = type(x)
    if t in _SCALAR.values():
        return True
    if t is list:
        return all(_plain(e) for e in x)
    return t is dict and all(type(k) in _SCALAR.values() and _plain(v) for k, v in x.items())


def type_ok(x: object, t: str) -> bool:
    """Exact, deep: does ``x`` (decoded plain data) have the normalised type ``t``?"""
    if t in _SCALAR:
        return type(x) is _SCALAR[t]
    if t == "list":
        return type(x) is list and _plain(x)
    if t == "dict":
        return type(x) is dict and _plain(x)
    if t.startswith("List["):
        return type(x) is list and all(type_ok(e, t[5:-1]) for e in x)
    key, value = _split_args(t[5:-1])
    return type(x) is dict and all(type_ok(k, key) and type_ok(v, value) for k, v in x.items())


def trivial_answers(t: str) -> list:
    """Small answers that a non-trivial puzzle must reject."""
    if t in _SCALAR:
        return list(_TRIVIAL[t])
    if t == "list":
        return [[], [0], [1], [""]]
    if t == "dict":
        return [{}]
    if t.startswith("List["):
        return [[]] + [[v] for v in trivial_answers(t[5:-1])[:3]]
    key, value = _split_args(t[5:-1])
    return [{}] + [{k: v} for k in _TRIVIAL[key][:2] for v in trivial_answers(value)[:1]]
