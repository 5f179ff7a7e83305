"""Parsing P3 completions into ``f`` (the puzzle) and ``g`` (its solution)."""

from __future__ import annotations

import ast
import re

from domains.p3.answer_types import normalise_type
from evo.domain import ParseError

__all__ = ["normalise_type", "normalised_puzzle", "parse_puzzle"]


def _chunks(code: str) -> list[str]:
    """Splits code into top-level blocks: a block starts at an unindented line."""
    blocks: list[list[str]] = []
    for line in code.splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", ")", "]", "}")):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return ["\n".join(b).rstrip() for b in blocks]


def _parse_def(block: str) -> ast.FunctionDef | None:
    """Parses a ``def`` block; a block cut short by the token limit is trimmed back."""
    lines = block.splitlines()
    for end in range(len(lines), 1, -1):
        try:
            tree = ast.parse("\n".join(lines[:end]))
        except SyntaxError:
            continue
        if len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef):
            return tree.body[0]
        return None
    return None


def _defaults(f: ast.FunctionDef) -> dict[str, ast.expr]:
    args = f.args.args
    return dict(zip([a.arg for a in args[len(args) - len(f.args.defaults):]], f.args.defaults))


def _fill_g_defaults(f: ast.FunctionDef, g: ast.FunctionDef) -> None:
    """P3 convention: g takes f's parameters with f's defaults. Small models often write
    ``def g(a):`` for ``def f(x: int, a=3)``; give such parameters f's default."""
    f_defaults = _defaults(f)
    missing = g.args.args[: len(g.args.args) - len(g.args.defaults)]
    if missing and all(a.arg in f_defaults for a in missing):
        g.args.defaults = [f_defaults[a.arg] for a in missing] + g.args.defaults
        for a in missing:
            a.annotation = None


def _defs(text: str) -> tuple[list[str], dict[str, ast.FunctionDef | str]]:
    """The imports before the functions, and the first ``def f`` and ``def g`` in ``text``
    (a completion, possibly inside a code fence); a block that does not parse gives
    ``"f_error"``/``"g_error"`` instead."""
    code = text.lstrip()
    if code.startswith("```"):  # an opening fence (```python) is not code
        code = code.split("\n", 1)[1] if "\n" in code else ""
    code = code.split("```")[0]
    imports: list[str] = []
    found: dict[str, ast.FunctionDef | str] = {}
    for block in _chunks(code):
        if block.startswith(("import ", "from ")) and not found:
            try:
                ast.parse(block)
                imports.append(block)
            except SyntaxError:
                pass
            continue
        name = re.match(r"def\s+(\w+)\s*\(", block)
        fn = name.group(1) if name else None
        if fn in ("f", "g") and fn not in found and f"{fn}_error" not in found:
            node = _parse_def(block)
            if node is None:
                found[f"{fn}_error"] = f"syntax error in {fn}"
            else:
                found[fn] = node
    return imports, found


def _answer_type(f: ast.FunctionDef) -> str:
    """Checks ``f``'s signature (a typed answer first, defaults for the rest); returns the
    answer type."""
    if not f.args.args:
        raise ParseError("f takes no answer argument")
    answer, *rest = f.args.args
    if answer.annotation is None:
        raise ParseError("f's answer argument has no type annotation")
    ans_type = normalise_type(ast.unparse(answer.annotation))
    if ans_type is None:
        raise ParseError(f"unsupported answer type {ast.unparse(answer.annotation)}")
    if len(f.args.defaults) < len(rest) or f.args.kwonlyargs and None in f.args.kw_defaults:
        raise ParseError("f's parameters after the answer need default values")
    return ans_type


def _add_f_parameters(f: ast.FunctionDef, g: ast.FunctionDef) -> None:
    """Also P3's convention: g may use f's parameters. Small models write ``return 'a' * n``
    in a ``def g():`` beside ``def f(s: str, n=5)``; give g the parameter with f's default."""
    f_defaults = _defaults(f)
    bound = {a.arg for a in g.args.args + g.args.kwonlyargs}
    for node in ast.walk(g):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)) and node is not g:
            bound.update(a.arg for a in node.args.args)
    free = [n.id for n in ast.walk(g) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    for name in dict.fromkeys(free):
        if name in f_defaults and name not in bound:
            g.args.args.append(ast.arg(arg=name))
            g.args.defaults.append(f_defaults[name])
            bound.add(name)


def parse_puzzle(text: str, solution_required: bool = True) -> dict[str, str | None]:
    """Finds the first ``def f`` and ``def g`` in ``text`` and checks their signatures.

    Returns ``{"f", "g", "ans_type"}``; raises :class:`ParseError` with the reason. With
    ``solution_required=False`` a well-formed ``f`` whose ``g`` is missing or unusable
    still parses, with ``g`` None and the reason in ``"g_error"`` (a solve attempt may
    supply the solution later).
    """
    imports, found = _defs(text)
    if "f" not in found:
        raise ParseError(found.get("f_error", "no function f"))
    f = found["f"]
    ans_type = _answer_type(f)
    f_src = "\n".join(imports + [ast.unparse(f)])
    try:
        if "g" not in found:
            raise ParseError(found.get("g_error", "no function g"))
        g = found["g"]
        _fill_g_defaults(f, g)
        _add_f_parameters(f, g)
        if len(g.args.defaults) < len(g.args.args) or g.args.kwonlyargs and None in g.args.kw_defaults:
            raise ParseError("g must be callable with no arguments")
    except ParseError as exc:
        if solution_required:
            raise
        return {"f": f_src, "g": None, "ans_type": ans_type, "g_error": str(exc)}
    return {"f": f_src, "g": ast.unparse(g), "ans_type": ans_type}


def normalised_puzzle(f_src: str) -> str:
    """``f`` without formatting, comments or return annotation (for duplicate checks)."""
    try:
        tree = ast.parse(f_src)
    except SyntaxError:
        return " ".join(f_src.split())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            node.returns = None
    return ast.unparse(tree)
