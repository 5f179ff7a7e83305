"""Running code-with-tests items in the sandbox.

An item is valid when its reference solution and tests pass the audit
(:mod:`domains.code_tests.audit`: no introspection, tests that need only the entry
point), the reference passes all its tests and the statement's own examples, a stub
solution (``return None``) fails at least one test, and the tests kill at least one
mutant of the solution (an AST edit: a flipped comparison, an off-by-one constant,
``+`` <-> ``-``, ``and`` <-> ``or``, or a body that returns its first argument).

Mutant kills come from the tests. A mutant is killed when a test fails while the mutant
answered every call of that test normally with plain data: a mutant that raises, crashes,
hangs or fails to load has failed on its own, which says nothing about the tests, so it
counts as surviving (and stays in the share's denominator, so making mutants crash does
not pay either). The mutants are made from the solution with its own ``assert``
statements removed: a self-check would otherwise catch a mutant by itself. Test strength
is the share of mutants killed. Every run crosses a boundary
(:mod:`domains.code_tests.run`).
"""

from __future__ import annotations

import ast
import copy
import random
from typing import TYPE_CHECKING, Any

from domains.code_tests.audit import audit_code, free_names
from domains.code_tests.run import TestRun, examples_of, run_jobs, run_tests, tests_of
from evo.domain import Verification

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

__all__ = ["audit_item", "mutants", "run_tests", "stub", "tests_of", "verify_items"]

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


class _DropAsserts(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        return ast.Pass()


def _without_asserts(tree: ast.Module) -> ast.Module:
    """The solution without its own ``assert`` statements (a ``pass`` keeps blocks valid)."""
    return ast.fix_missing_locations(_DropAsserts().visit(tree))


def mutants(solution: str, entry_point: str, limit: int = 8, seed: int = 0) -> list[str]:
    """Up to ``limit`` distinct single-edit mutants of ``solution`` (sources)."""
    tree = _without_asserts(ast.parse(solution))
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


def audit_item(item: dict[str, Any]) -> str | None:
    """Why the item is invalid before anything runs (:mod:`domains.code_tests.audit`), or None."""
    reason = audit_code(item["solution"], "the solution") or audit_code(item["tests"], "the tests")
    if reason:
        return reason
    for test in tests_of(item):
        free = free_names(test, item["entry_point"], item["solution"])
        if free:
            return (f"a test calls {', '.join(free)}, which the statement does not define (tests see "
                    f"only {item['entry_point']}, builtins and the reference's imports)")
    return None


def _verdict(item: dict[str, Any], ref: TestRun, stub_run: TestRun, killed: int, n_mutants: int) -> Verification:
    n = len(tests_of(item))
    if not all(ref.passed[:n]):
        fails = f"the solution fails {ref.passed[:n].count(False)} of {n} tests"
        return Verification("invalid", f"{fails}: {ref.why}" if ref.why else fails)
    if not all(ref.passed[n:]):
        example = examples_of(item)[ref.passed[n:].index(False)]
        return Verification("invalid", f"the solution fails the statement's own example `{example[7:]}`")
    if all(stub_run.passed[:n]):
        return Verification("trivial", "the tests pass on a stub that returns None")
    if killed == 0:
        return Verification("trivial", f"the tests kill none of {n_mutants} mutants")
    return Verification("valid")


def verify_items(items: list[dict[str, Any]], sandbox: Sandbox, max_mutants: int = 8,
                 per_test_s: float = 0.5, audit: bool = True) -> tuple[list[Verification], list[dict[str, Any]]]:
    """Verdicts, and per item the mutation-testing numbers (``killed``, ``mutants``,
    ``crashed``: mutants that failed a test only on their own). ``audit=False`` skips the
    static audit (the corpus tests check that the harness holds without it)."""
    jobs, spans = [], []
    audits = [audit_item(it) if audit else None for it in items]
    for it, reason in zip(items, audits):
        muts = [] if reason else mutants(it["solution"], it["entry_point"], max_mutants)
        start = len(jobs)
        jobs += [] if reason else [(s, it) for s in [it["solution"], stub(it), *muts]]
        spans.append((start, len(jobs)))
    runs = run_jobs(jobs, sandbox, per_test_s)
    out, stats = [], []
    for it, reason, (a, b) in zip(items, audits, spans):
        n = len(tests_of(it))
        if reason:
            out.append(Verification("invalid", reason))
            stats.append({"killed": 0, "mutants": 0, "crashed": 0, "tests": n})
            continue
        ref, stub_run, *muts = runs[a:b]
        killed = sum(m.killed(n) for m in muts)
        crashed = sum(not all(m.passed[:n]) and not m.killed(n) for m in muts)
        stats.append({"killed": killed, "mutants": len(muts), "crashed": crashed, "tests": n})
        out.append(_verdict(it, ref, stub_run, killed, len(muts)))
    return out, stats
