"""Parsing code-with-tests completions: a problem statement, a reference solution and
unit tests (``assert`` statements), in one python block."""

from __future__ import annotations

import ast

from evo.domain import ParseError

MAX_TESTS = 20
MAX_CHARS = 6000


def _strip_fence(text: str) -> str:
    code = text.lstrip()
    if code.startswith("```"):  # an opening fence (```python) is not code
        code = code.split("\n", 1)[1] if "\n" in code else ""
    return code.split("```")[0]


def _longest_parsable(lines: list[str]) -> ast.Module | None:
    """Parses the longest prefix of ``lines`` (a block cut by the token limit is trimmed)."""
    for end in range(len(lines), 0, -1):
        try:
            return ast.parse("\n".join(lines[:end]))
        except SyntaxError:
            continue
    return None


def parse_item(text: str) -> dict[str, str]:
    """``# Problem: ...`` comment lines, then the solution code, then ``# Tests`` and
    ``assert`` lines. Returns ``{"problem", "solution", "tests", "entry_point"}``."""
    code = _strip_fence(text)
    if len(code) > MAX_CHARS:
        raise ParseError(f"item longer than {MAX_CHARS} characters")
    lines = code.splitlines()
    problem: list[str] = []
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        line = lines.pop(0)
        if line.lower().startswith("# tests"):
            break
        if line.strip():
            problem.append(line.lstrip("#").strip())
    statement = " ".join(problem)
    if statement.lower().startswith("problem:"):
        statement = statement[len("problem:"):].strip()
    if len(statement.split()) < 3:
        raise ParseError("no problem statement (a '# Problem:' comment of at least three words)")
    # The solution runs up to '# Tests' or the first top-level assert.
    split = next((i for i, ln in enumerate(lines)
                  if ln.lower().startswith("# tests") or ln.startswith("assert")), None)
    if split is None:
        raise ParseError("no tests (top-level assert statements)")
    try:
        sol_tree = ast.parse("\n".join(lines[:split]))
    except SyntaxError as exc:
        raise ParseError(f"syntax error in the solution: {exc.msg}") from None
    defs = [n for n in sol_tree.body if isinstance(n, ast.FunctionDef)]
    if not defs:
        raise ParseError("the solution defines no function")
    for node in sol_tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom)):
            raise ParseError("the solution may hold only imports and function definitions")
    entry = defs[-1]
    if not entry.args.args:
        raise ParseError(f"{entry.name} takes no arguments")
    test_lines = [ln for ln in lines[split:] if not ln.lower().startswith("# tests")]
    tree = _longest_parsable(test_lines)
    asserts = [n for n in (tree.body if tree else []) if isinstance(n, ast.Assert)]
    if tree is None or not asserts:
        raise ParseError("no parsable assert statements in the tests")
    asserts = asserts[:MAX_TESTS]
    calls = [a for a in asserts
             if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == entry.name
                    for n in ast.walk(a))]
    if not calls:
        raise ParseError(f"no test calls {entry.name}")
    return {"problem": statement, "solution": ast.unparse(sol_tree),
            "tests": "\n".join(ast.unparse(a) for a in calls), "entry_point": entry.name}


def render_item(item: dict[str, str]) -> str:
    return (f"```python\n# Problem: {item['problem']}\n{item['solution']}\n\n"
            f"# Tests\n{item['tests']}\n```\n\n")
