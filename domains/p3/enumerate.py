"""A second P3 solver that is not the generator: deterministic enumeration of small answers.

Why: difficulty measured only by the generator's own solve attempts saturates for a weak
generator (the 135M model fails nearly every puzzle, so every puzzle scores 1.0 and no elite
can replace another). Enumeration gives every puzzle a graded, reproducible hardness:
how many candidate answers, tried in a fixed order, come before the first one ``f`` accepts.

The order, per answer type: the literals of ``f`` that have the type (and ints next to
integer literals), then small values: ints 0, 1, -1, 2, -2, ...; floats likewise with
halves; strings over an alphabet taken from ``f``'s string literals (or ``"ab01"``) in
length order; lists by growing length and element rank (all lists over the first ``s``
elements of the element type before any that needs element ``s + 1``).

Hostile puzzles (scored under selection pressure):
- a slow ``f`` that runs the search out of time earns credit only for the candidates it
  let the search try (so slowness is never rewarded); the search checks its clock every
  few calls;
- a stateful ``f`` (counting its calls) could "accept" late in the search: a found answer
  is re-checked in a fresh process, and one that does not hold there earns no credit;
- anything else that stops the search (exit, a crash, an output flood) earns no credit.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from math import log1p
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

DEFAULT_BUDGET = 10000  # ~30 ms a puzzle; see experiments/p3_fitness_spread.py
TIME_CAP_S = 1.0  # inside the sandbox's own timeout (2 s by default)
MAX_LITERALS = 24

# Shipped into the sandboxed program after the puzzle. Candidates are built fresh per try,
# so an f that mutates its argument cannot corrupt the ones that follow.
_HARNESS = r'''
import itertools as _evo_it, time as _evo_time, copy as _evo_copy

def _evo_enum_type_ok(x, t):
    if t.startswith("List["):
        return type(x) is list and all(_evo_enum_type_ok(e, t[5:-1]) for e in x)
    return type(x) is {"int": int, "float": float, "str": str, "bool": bool}.get(t)

def _evo_scalars(t, lits, alphabet):
    seen = set()
    def once(v):
        k = (type(v), v)
        if k in seen:
            return False
        seen.add(k)
        return True
    if t == "bool":
        for v in (False, True):
            yield v
        return
    if t == "int":
        for v in lits:
            if type(v) is int:
                for w in (v, v - 1, v + 1):
                    if once(w):
                        yield w
        for n in _evo_it.count():
            for w in ((0,) if n == 0 else (n, -n)):
                if once(w):
                    yield w
    if t == "float":
        for v in lits:
            if type(v) in (int, float) and type(v) is not bool and once(float(v)):
                yield float(v)
        for n in _evo_it.count():
            for w in (float(n), float(-n), n + 0.5, -(n + 0.5)):
                if once(w):
                    yield w
    if t == "str":
        for v in lits:
            if type(v) is str and once(v):
                yield v
        for n in _evo_it.count():
            for tup in _evo_it.product(alphabet, repeat=n):
                w = "".join(tup)
                if once(w):
                    yield w

def _evo_values(t, lits, alphabet):
    if not t.startswith("List["):
        yield from _evo_scalars(t, lits, alphabet)
        return
    pool, src, seen = [], _evo_values(t[5:-1], lits, alphabet), set()
    for v in lits:
        if type(v) is list and _evo_enum_type_ok(v, t) and repr(v) not in seen:
            seen.add(repr(v))
            yield _evo_copy.deepcopy(v)
    if "[]" not in seen:
        yield []
    for s in _evo_it.count(1):
        if len(pool) < s:
            pool.extend(_evo_it.islice(src, 1))  # a finite type (bool) runs out
        m = len(pool)
        for length in range(1, s + 1):
            for idx in _evo_it.product(range(m), repeat=length):
                if length == s or (m == s and (s - 1) in idx):
                    v = [_evo_copy.deepcopy(pool[i]) for i in idx]
                    if not seen or repr(v) not in seen:
                        yield v

def _evo_search(t, lits, alphabet, budget, cap):
    start = _evo_time.perf_counter()
    for step, x in enumerate(_evo_values(t, lits, alphabet), 1):
        if step > budget:
            return {"steps": None, "stop": "budget"}
        if step % 16 == 0 and _evo_time.perf_counter() - start > cap:
            return {"steps": None, "stop": "time", "tried": step - 1}
        shown = repr(x)  # before f sees it: f may mutate its argument
        try:
            ok = f(x) is True
        except Exception:
            ok = False
        if ok:
            return {"steps": step, "answer": shown}
    return {"steps": None, "stop": "budget"}
'''


@dataclass
class SearchResult:
    """``steps``: candidates tried up to and including the first accepted one (None if
    none); ``stop``: why the search ended without credit-worthy success, if it did."""

    steps: int | None
    stop: str | None = None
    answer: str | None = None
    tried: int = 0


def literals(f_src: str) -> list[Any]:
    """Constants of ``f``'s source (numbers, strings, lists of them), in source order."""
    try:
        tree = ast.parse(f_src)
    except SyntaxError:
        return []
    out: list[Any] = []
    for node in ast.walk(tree):
        value: Any = None
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
            value = node.value
            if isinstance(value, str) and len(value) > 40:
                continue
            if isinstance(value, int) and abs(value) > 10**12:
                continue
        elif isinstance(node, ast.List) and len(node.elts) <= 12:
            try:
                value = ast.literal_eval(node)
            except (ValueError, SyntaxError, TypeError):
                continue
        elif (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
              and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)):
            value = -node.operand.value
        else:
            continue
        if value not in out:
            out.append(value)
        if len(out) >= MAX_LITERALS:
            break
    return out


def alphabet(lits: list[Any]) -> str:
    chars = sorted({c for v in lits if isinstance(v, str) for c in v if c.isprintable()})
    return "".join(chars[:6]) or "ab01"


def search_program(item: dict[str, Any]) -> str:
    """The puzzle and the search; ``g`` is not part of it (the search never sees a solution)."""
    return "from typing import List\n\n" + item["f"] + "\n" + _HARNESS


def search_expr(item: dict[str, Any], budget: int, cap: float = TIME_CAP_S) -> str:
    lits = literals(item["f"])
    return f"_evo_search({item['ans_type']!r}, {lits!r}, {alphabet(lits)!r}, {budget}, {cap})"


def enumerate_solve(items: list[dict[str, Any]], sandbox: Sandbox,
                    budget: int = DEFAULT_BUDGET) -> list[SearchResult]:
    """Searches every puzzle (one sandbox job each), then re-checks found answers in fresh
    processes; a search that fails or whose answer does not re-check has ``stop`` set."""
    if not items:
        return []
    verdicts = sandbox.run_many([(search_program(it), search_expr(it, budget)) for it in items])
    results: list[SearchResult] = []
    for v in verdicts:
        value = v.value if v.ok and isinstance(v.value, dict) else None
        if value is None:
            results.append(SearchResult(None, stop=v.status if not v.ok else "no result"))
        elif isinstance(value.get("steps"), int) and isinstance(value.get("answer"), str):
            results.append(SearchResult(value["steps"], answer=value["answer"]))
        else:
            tried = value.get("tried")
            results.append(SearchResult(None, stop=str(value.get("stop", "budget")),
                                        tried=tried if isinstance(tried, int) and tried >= 0 else 0))
    found = [i for i, r in enumerate(results) if r.steps is not None]
    checks = sandbox.run_many([(search_program(items[i]), f"f({results[i].answer}) is True") for i in found])
    for i, v in zip(found, checks):
        if not (v.ok and v.value is True):
            results[i] = SearchResult(None, stop="answer does not re-check")
    return results


def hardness(result: SearchResult, budget: int = DEFAULT_BUDGET) -> float:
    """0..1: log-scaled count of candidates that fail before the first answer; 1.0 when the
    whole budget finds none; out of time, the count it did try; 0.0 when the search broke
    down (a crash, an exit, an answer that does not re-check: a stateful ``f``)."""
    if result.steps is not None:
        return min(1.0, log1p(result.steps - 1) / log1p(budget))
    if result.stop == "budget":
        return 1.0
    if result.stop == "time":
        return min(1.0, log1p(max(0, min(result.tried, budget))) / log1p(budget))
    return 0.0
