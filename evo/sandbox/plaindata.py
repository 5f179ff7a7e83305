"""Plain data across the sandbox boundary: a strict JSON codec for untrusted results.

A verifier that runs untrusted code (a P3 solution, a code solution) must not judge that
code's result in the process that produced it: the code may have rebound the checker,
patched builtins, or returned an object whose ``__eq__`` always says True. Instead the
producing process :func:`encode`\\ s its result into text, the caller :func:`decode`\\ s
it (nothing but ``json.loads`` and exact-type checks run on it) and a *fresh* evaluation
that never ran the producing code judges the decoded value.

Plain data is, by exact type (no subclasses): ``None``, ``bool``, ``int``, ``float``,
``str``, and ``list``, ``tuple``, ``dict``, ``set``, ``frozenset`` of plain data. The
encoding is JSON; ``None``/``bool``/``str``/``float``/small ``int`` and lists map to JSON
as usual, everything else is a one-key object: ``{"h": hex}`` (a large int),
``{"u": hex}`` (a string with surrogates, as UTF-8 with ``surrogatepass``),
``{"t": [...]}`` (tuple), ``{"d": [[k, v], ...]}`` (dict), ``{"s": [...]}``/``{"fs": [...]}``
(set/frozenset, sorted). Size, depth and node count are capped, so a huge or deep answer
is a clear error instead of an exhausted verifier.

This file is stdlib-only and self-contained: :func:`sandbox_prelude` ships its source
into sandboxed programs, so both sides of the boundary use the same codec.
"""

import json

MAX_CHARS = 6_000_000  # encoded text (the sandbox carries at most 8 MB of result)
MAX_DEPTH = 48  # nesting of containers
MAX_NODES = 2_000_000  # values in one result (a Hanoi answer of 2**17 moves is 400k)
_SMALL_INT = 1 << 53  # larger ints travel as hex (no decimal digit limit)
_SCALARS = (bool, int, float, str)


class NotPlainData(ValueError):
    """A value (or an encoded text) that is not plain data; the message says why."""


def encode(value: object) -> str:
    """``value`` as plain-data JSON text; raises :class:`NotPlainData`."""
    budget = [MAX_NODES]

    def enc(x: object, depth: int) -> object:
        budget[0] -= 1
        if budget[0] < 0:
            raise NotPlainData(f"more than {MAX_NODES} values")
        t = type(x)
        if x is None or t is bool or t is float:
            return x
        if t is str:
            try:
                x.encode("utf-8")
                return x
            except UnicodeEncodeError:  # surrogates: JSON would join a pair into one character
                return {"u": x.encode("utf-8", "surrogatepass").hex()}
        if t is int:
            return x if -_SMALL_INT < x < _SMALL_INT else {"h": hex(x)}
        if depth >= MAX_DEPTH:
            raise NotPlainData(f"nested deeper than {MAX_DEPTH} levels")
        if t is list:
            return [enc(e, depth + 1) for e in x]
        if t is tuple:
            return {"t": [enc(e, depth + 1) for e in x]}
        if t is dict:
            return {"d": [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in x.items()]}
        if t is set or t is frozenset:
            items = sorted((enc(e, depth + 1) for e in x), key=_canonical)
            return {"s" if t is set else "fs": items}
        raise NotPlainData(f"{t.__name__} is not plain data")

    text = _canonical(enc(value, 0))
    if len(text) > MAX_CHARS:
        raise NotPlainData(f"larger than {MAX_CHARS} characters encoded")
    return text


def decode(text: object) -> object:
    """The plain value of an encoded ``text`` (untrusted); raises :class:`NotPlainData`."""
    if type(text) is not str:
        raise NotPlainData("the encoded value is not a string")
    if len(text) > MAX_CHARS:
        raise NotPlainData(f"larger than {MAX_CHARS} characters encoded")
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise NotPlainData(f"malformed plain data: {type(exc).__name__}") from None
    budget = [MAX_NODES]

    def dec(x: object, depth: int) -> object:
        budget[0] -= 1
        if budget[0] < 0:
            raise NotPlainData(f"more than {MAX_NODES} values")
        t = type(x)
        if x is None or t in _SCALARS:
            return x
        if depth >= MAX_DEPTH:
            raise NotPlainData(f"nested deeper than {MAX_DEPTH} levels")
        if t is list:
            return [dec(e, depth + 1) for e in x]
        if t is dict and len(x) == 1:
            ((tag, body),) = x.items()
            if tag == "h" and type(body) is str and body.lstrip("-")[:2] == "0x":
                try:
                    return int(body, 16)
                except ValueError:
                    pass
            elif tag == "u" and type(body) is str:
                try:
                    return bytes.fromhex(body).decode("utf-8", "surrogatepass")
                except ValueError:
                    pass
            elif type(body) is list and tag in ("t", "s", "fs", "d"):
                try:
                    if tag == "d":
                        if not all(type(p) is list and len(p) == 2 for p in body):
                            raise NotPlainData("malformed plain data")
                        return {dec(k, depth + 1): dec(v, depth + 1) for k, v in body}
                    items = [dec(e, depth + 1) for e in body]
                    return {"t": tuple, "s": set, "fs": frozenset}[tag](items)
                except TypeError as exc:  # an unhashable key or member
                    raise NotPlainData(f"malformed plain data: {exc}") from None
        raise NotPlainData("malformed plain data")

    return dec(raw, 0)


def _canonical(x: object) -> str:
    return json.dumps(x, separators=(",", ":"), allow_nan=True)


def sandbox_prelude(name: str = "_evo_plain") -> str:
    """Source that defines module ``name`` (this codec) inside a sandboxed program."""
    with open(__file__, encoding="utf-8") as fh:
        source = fh.read()
    return (f"import types as _evo_types\n{name} = _evo_types.ModuleType({name!r})\n"
            f"exec({source!r}, {name}.__dict__)\ndel _evo_types\n")
