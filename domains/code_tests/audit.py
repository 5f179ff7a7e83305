"""What an item's author may write, checked before anything runs, and the statement's
own examples.

The reference solution and the tests are written by the generator, which is paid by the
fitness they earn, so both are read as hostile:

- **No introspection** (:func:`audit_code`). A solution that can read its own code
  (``f.__code__.co_consts``, frames, ``inspect``, a ``str.format`` field that walks
  attributes) can tell a mutant from itself and misbehave when mutated, which buys
  mutant kills without a test asserting anything; tests that can walk frames or the heap
  can find out which solution they judge. So neither may touch an attribute that starts
  with ``_`` or a frame or code attribute, name a dunder, call ``eval``/``exec``/
  ``getattr``/``globals``/``open``/``__import__`` and kin, or import anything but a
  short list of pure computing modules. The process structure
  (:mod:`domains.code_tests.harness`) does not rely on this; it is the first layer.
- **Tests see only the entry point** (:func:`free_names`): a test that needs a helper
  only the reference defines (``count_vowels(s) == brute_vowels(s)``) cannot be passed by
  any solution written from the statement, so it is invalid.
- **Statement examples** (:func:`statement_examples`): ``f(2) == 4``, ``f(2) -> 4``,
  ``f(2) returns 4``, ``fibonacci(0) is 0`` or a doctest ``>>> f(2) 4`` in the problem
  statement become checks the reference must pass too.
"""

from __future__ import annotations

import ast
import builtins
import re

# Pure computing modules a coding problem may need; nothing that reaches files, processes,
# the interpreter's internals (sys, gc, inspect, types, ctypes) or randomness.
ALLOWED_MODULES = frozenset({
    "math", "cmath", "itertools", "functools", "collections", "heapq", "bisect", "re", "string",
    "typing", "fractions", "decimal", "statistics", "operator", "datetime", "calendar", "copy",
    "unicodedata", "textwrap", "array", "numbers",
})
BANNED_NAMES = frozenset({
    "eval", "exec", "compile", "globals", "locals", "vars", "dir", "getattr", "setattr", "delattr",
    "__import__", "open", "breakpoint", "input", "help", "exit", "quit", "memoryview", "copyright",
    "credits", "license",
})
# Attributes that reach code, frames, tracebacks or walk attributes by a computed name.
BANNED_ATTRS = frozenset({
    "f_back", "f_code", "f_locals", "f_globals", "f_builtins", "f_lineno", "gi_frame", "gi_code",
    "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next", "co_code", "co_consts",
    "co_names", "format_map", "vformat", "get_field", "attrgetter", "methodcaller", "Formatter",
    "get_type_hints", "ForwardRef", "with_traceback",
})
_FIELD_WALK = re.compile(r"\{[^{}:!]*[.\[]")  # '{0.attr}' or '{0[key]}' before any ':' or '!'


def _banned_import(names: list[str]) -> str | None:
    for name in names:
        if name.split(".")[0] not in ALLOWED_MODULES:
            return name
    return None


def audit_code(source: str, what: str) -> str | None:
    """Why ``source`` (``what``: "the solution" or "the tests") may not run, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return f"{what}: syntax error: {exc.msg}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad = _banned_import([a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom):
            bad = (_banned_import([node.module or "."]) if node.level == 0 else "a relative import")
            bad = bad or next((a.name for a in node.names if a.name in BANNED_ATTRS or a.name.startswith("_")), None)
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if attr.startswith("_") or attr in BANNED_ATTRS:
                return f"{what}: the attribute {attr} reaches code, frames or the harness"
            if attr == "format" and not (isinstance(node.value, ast.Constant) and type(node.value.value) is str
                                         and not _FIELD_WALK.search(node.value.value)):
                return f"{what}: format on a string that may walk attributes"
            continue
        elif isinstance(node, ast.Name):
            if node.id in BANNED_NAMES or node.id.startswith("__"):
                return f"{what}: {node.id} reaches code, frames or the harness"
            continue
        else:
            continue
        if bad:
            return f"{what}: import of {bad}, not a pure computing module"
    return None


def _bound(tree: ast.AST) -> set[str]:
    """Names a test binds itself (comprehension targets, lambda and walrus names)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
    return out


def imported_names(solution: str) -> set[str]:
    """The names the reference's top-level imports bind (the tests see them too)."""
    out: set[str] = set()
    for node in ast.parse(solution).body:
        if isinstance(node, ast.Import):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out |= {a.asname or a.name for a in node.names}
    return out


def free_names(test: str, entry_point: str, solution: str) -> list[str]:
    """Names a test reads that nothing gives it: not the entry point, a builtin, the
    reference's imports or a name the test binds (a helper only the reference defines)."""
    tree = ast.parse(test)
    known = _bound(tree) | imported_names(solution) | {entry_point} | set(dir(builtins))
    seen = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    return [n for n in dict.fromkeys(seen) if n not in known]


_SEPARATOR = re.compile(r"\s*(==|=>|->|\u2192|=|\bshould return\b|\breturns\b|\bgives\b|\bbecomes\b"
                        r"|\bequals\b|\bis\b|)\s*")


def _call_end(text: str, start: int) -> int | None:
    """Index just past the parenthesis that closes the one at ``start``."""
    depth, quote = 0, None
    for j in range(start, len(text)):
        c = text[j]
        if quote:
            if c == quote and text[j - 1] != "\\":
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _literal_prefix(text: str) -> str | None:
    """The longest prefix of ``text`` that is a Python literal (a sentence's final
    period or comma is not part of it)."""
    best = None
    for end in range(1, min(len(text), 400) + 1):
        piece = text[:end].strip()
        if not piece or piece[-1] in ",.;:" and end < len(text):
            continue
        try:
            ast.literal_eval(piece)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        best = piece
    if best and best.endswith(".") and _literal_prefix(best[:-1]) == best[:-1]:
        best = best[:-1]  # "f(2) == 5." ends a sentence; 5 is the example
    return best


def statement_examples(problem: str, entry_point: str, limit: int = 8) -> list[str]:
    """``assert`` lines for the examples the statement gives: a call of the entry point on
    literal arguments, then ``==``, ``->``, ``returns``, ``is``... or (doctest) nothing,
    then a literal. Calls on anything but literals are prose, not examples."""
    out: list[str] = []
    for m in re.finditer(rf"(?<![\w.]){re.escape(entry_point)}\s*\(", problem):
        end = _call_end(problem, m.end() - 1)
        if end is None:
            continue
        call = problem[m.start():end]
        try:
            node = ast.parse(call, mode="eval").body
            assert isinstance(node, ast.Call)
            for a in [*node.args, *(k.value for k in node.keywords)]:
                ast.literal_eval(a)
            if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
                continue
        except (ValueError, SyntaxError, TypeError, AssertionError, MemoryError, RecursionError):
            continue
        sep = _SEPARATOR.match(problem, end)
        if sep is None or (not sep.group(1) and ">>>" not in problem[max(0, m.start() - 5):m.start()]):
            continue  # a bare call is an example only after a doctest prompt
        value = _literal_prefix(problem[sep.end():])
        if value is None:
            continue
        line = f"assert {ast.unparse(node)} == {value}"
        if line not in out:
            out.append(line)
        if len(out) >= limit:
            break
    return out
