"""Running code-with-tests items in the sandbox.

An item is valid when its reference solution passes all its tests, a stub solution
(``return None``) fails at least one, and at least one mutant of the solution (an AST
edit: a flipped comparison, an off-by-one constant, ``+`` <-> ``-``, ``and`` <-> ``or``,
or a body that returns its first argument) fails at least one. Test strength is the
share of mutants killed. Every run crosses a boundary (:mod:`domains.code_tests.run`): the
tests judge plain-data results in a process the solution never ran in.
"""

from __future__ import annotations

import ast
import copy
import random
from typing import TYPE_CHECKING, Any

from domains.code_tests.run import passed, run_tests, tests_of
from evo.domain import Verification

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

__all__ = ["mutants", "passed", "run_tests", "stub", "tests_of", "verify_items"]

_CMP_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
             ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
             ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BIN_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult,
             ast.Div: ast.Mult, ast.Mod: ast.FloorDiv}

def _sites(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """Every place a single mutation can be applied, in a stable order."""
    sites: list[tuple[str, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sites += [("cmp", node)] if all(type(o) in _CMP_FLIP for o in node.ops) else []
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN_SWAP:
            sites.append(("bin", node))
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BIN_SWAP:
            sites.append(("bin", node))
        elif isinstance(node, ast.BoolOp):
            sites.append(("bool", node))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            sites.append(("const", node))
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            sites.append(("not", node))
    return sites


def _apply(kind: str, node: Any) -> None:
    if kind == "cmp":
        node.ops = [_CMP_FLIP[type(o)]() for o in node.ops]
    elif kind == "bin":
        node.op = _BIN_SWAP[type(node.op)]()
    elif kind == "bool":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "const":
        node.value += 1
    elif kind == "not":
        node.value = not node.value


def mutants(solution: str, entry_point: str, limit: int = 8, seed: int = 0) -> list[str]:
    """Up to ``limit`` distinct single-edit mutants of ``solution`` (sources)."""
    tree = ast.parse(solution)
    original = ast.unparse(tree)
    out: list[str] = []
    n_sites = len(_sites(tree))
    order = list(range(n_sites))
    random.Random(seed).shuffle(order)
    for i in order:
        mutant = copy.deepcopy(tree)
        kind, node = _sites(mutant)[i]
        _apply(kind, node)
        src = ast.unparse(mutant)
        if src != original and src not in out:
            out.append(src)
        if len(out) >= limit - 1:
            break
    # The identity mutant: the entry point returns its first argument unchanged.
    ident = copy.deepcopy(tree)
    for node in ident.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            node.body = [ast.Return(ast.Name(node.args.args[0].arg, ast.Load()))]
    src = ast.unparse(ast.fix_missing_locations(ident))
    if src != original and src not in out:
        out.append(src)
    return out


def stub(item: dict[str, Any]) -> str:
    return f"def {item['entry_point']}(*args, **kwargs):\n    return None\n"


def verify_items(items: list[dict[str, Any]], sandbox: Sandbox, max_mutants: int = 8,
                 per_test_s: float = 0.5) -> tuple[list[Verification], list[dict[str, Any]]]:
    """Verdicts, and per item the mutation-testing numbers (``killed``, ``mutants``)."""
    jobs, spans = [], []
    for it in items:
        muts = mutants(it["solution"], it["entry_point"], max_mutants)
        start = len(jobs)
        jobs += [(s, it) for s in [it["solution"], stub(it), *muts]]
        spans.append((start, len(jobs)))
    results, why = run_tests(jobs, sandbox, per_test_s)
    out, stats = [], []
    for it, (a, b) in zip(items, spans):
        n = len(tests_of(it))
        ref_pass, stub_pass, *muts = results[a:b]
        killed = sum(not all(m) for m in muts)
        stats.append({"killed": killed, "mutants": len(muts), "tests": n})
        if not all(ref_pass):
            fails = f"the solution fails {ref_pass.count(False)} of {n} tests"
            out.append(Verification("invalid", f"{fails}: {why[a]}" if why[a] else fails))
        elif all(stub_pass):
            out.append(Verification("trivial", "the tests pass on a stub that returns None"))
        elif killed == 0:
            out.append(Verification("trivial", f"the tests kill none of {len(muts)} mutants"))
        else:
            out.append(Verification("valid"))
    return out, stats
