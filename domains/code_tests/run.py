"""Running an item's tests against a solution: one sandboxed evaluation per solution.

The evaluation runs :mod:`domains.code_tests.harness`: the solution in one process, each
test in a process of its own forked from a fresh interpreter
(:mod:`domains.code_tests.tester`), and every call between them relayed as plain data
(:mod:`evo.sandbox.plaindata`) by a process that runs no author code and alone holds the
sandbox's result channel. So:

- a test sees the entry point only (a stand-in that asks the solution), builtins and the
  reference's imports; not the reference's helpers or globals;
- a test decides its own verdict, by its process's exit status, and nothing else: not
  another test's, not the evaluation's result (printing, ``SystemExit(0)``, ``os._exit``,
  patching ``AssertionError`` or ``exec``, rewriting the harness through frames or
  ``gc`` reach only its own process);
- the solution cannot reach the tests at all, and what it returns is plain data
  (an object whose ``__eq__`` always says True never gets there);
- per test, the harness knows whether the solution failed on its own (raised, crashed,
  ran past the time limit, returned something that is not plain data), so a mutant that
  crashes is not counted as killed by the tests;
- no test or solution can tell which job it is in: every job of an item sends the same
  tests, and the jobs of a batch run in a random order.

The verifier reads the evaluation's reply strictly (exact types and lengths); anything
else fails every test. Not supported: tests that pass callables or other non-plain values
to the solution, or that check a result's identity (``is``) beyond ``None``/``True``/
``False``, or an exception's type.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domains.code_tests.audit import statement_examples
from evo.sandbox import plaindata
from evo.sandbox.plaindata import sandbox_prelude

if TYPE_CHECKING:
    from evo.sandbox import Sandbox, Verdict

JUDGE_SHARE = 0.7  # of the sandbox's timeout: the harness stops in time to answer
_HERE = Path(__file__).parent
_SOURCE = (sandbox_prelude()
           + f"_EVO_CT_TESTER = {(_HERE / 'tester.py').read_text(encoding='utf-8')!r}\n"
           + f"_EVO_CT_PLAIN = {Path(plaindata.__file__).read_text(encoding='utf-8')!r}\n"
           + (_HERE / "harness.py").read_text(encoding="utf-8"))


@dataclass
class TestRun:
    """One solution against an item's checks (its tests, then the statement's examples)."""

    passed: list[bool]
    own: list[bool]  # per check: the solution failed on its own there (raised, crashed, hung...)
    why: str | None = None  # why the first failing check failed
    failed: list[bool] | None = None  # per check: the test raised (not: it ran out of time)

    def killed(self, n_tests: int) -> bool:
        """A test (not an example) raised, an assertion most often, while the solution
        answered every call normally. A test that ran out of time is no kill: on a loaded
        machine that is the clock's doing, not the test's."""
        failed = self.failed if self.failed is not None else [not p for p in self.passed]
        return any(f and not o for f, o in zip(failed[:n_tests], self.own[:n_tests]))


def tests_of(item: dict[str, Any]) -> list[str]:
    return [t for t in item["tests"].splitlines() if t.strip()]


def examples_of(item: dict[str, Any]) -> list[str]:
    return statement_examples(item["problem"], item["entry_point"])


def checks_of(item: dict[str, Any]) -> list[str]:
    """What every job of the item runs, in one shape: the tests, then the examples."""
    return tests_of(item) + examples_of(item)


def imports_of(solution: str) -> str:
    try:
        tree = ast.parse(solution)
    except SyntaxError:
        return ""
    return "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def job(solution: str, item: dict[str, Any], per_test_s: float, timeout_s: float) -> tuple[str, str]:
    """The sandbox job for ``solution`` against ``item``'s checks; the tests get the
    reference's imports, whichever solution runs."""
    args = (solution, item["entry_point"], checks_of(item), imports_of(item["solution"]),
            per_test_s, JUDGE_SHARE * timeout_s)
    return _SOURCE, f"_evo_ct_run{args!r}"


def reading(verdict: Verdict, n: int) -> TestRun:
    """The evaluation's reply -> per check pass flags; anything malformed fails them all."""
    fail = TestRun([False] * n, [False] * n)
    v = verdict.value
    if not verdict.ok or type(v) is not dict:
        fail.why = f"{verdict.status}: {verdict.error}" if not verdict.ok else "the harness's reply is malformed"
        return fail
    status, why, own, own_why = (v.get(k) for k in ("status", "why", "own", "own_why"))
    if not all(type(x) is list and len(x) == n for x in (status, why, own, own_why)) \
            or any(type(s) is not str for s in status + why + own_why) or any(type(o) is not bool for o in own):
        fail.why = "the harness's reply is malformed"
        return fail
    passed = [s == "pass" for s in status]
    first = next((i for i, p in enumerate(passed) if not p), None)
    out = TestRun(passed, list(own), failed=[s == "fail" for s in status])
    if v.get("error") is not None:  # a harness that stopped is never a kill by the tests
        out.own = [o or not p for o, p in zip(out.own, passed)]
        out.why = f"the harness stopped: {str(v['error'])[:120]}"
    elif first is not None:
        out.why = own_why[first] or why[first] or status[first]
    return out


def run_jobs(jobs: list[tuple[str, dict[str, Any]]], sandbox: Sandbox, per_test_s: float) -> list[TestRun]:
    """``(solution, item)`` pairs -> their runs. The batch runs in a random order, so
    neither a worker's process ids nor timing tell a mutant from the reference."""
    order = list(range(len(jobs)))
    random.SystemRandom().shuffle(order)
    timeout = sandbox.limits.timeout_s
    verdicts = sandbox.run_many([job(*jobs[i], per_test_s, timeout) for i in order])
    out: list[TestRun | None] = [None] * len(jobs)
    for i, verdict in zip(order, verdicts):
        out[i] = reading(verdict, len(checks_of(jobs[i][1])))
    return out  # type: ignore[return-value]


def run_tests(jobs: list[tuple[str, dict[str, Any]]], sandbox: Sandbox,
              per_test_s: float) -> tuple[list[list[bool]], list[str | None]]:
    """Per pair, the item's tests' pass flags (not the examples) and why the first failed."""
    runs = run_jobs(jobs, sandbox, per_test_s)
    return ([r.passed[: len(tests_of(it))] for r, (_, it) in zip(runs, jobs)], [r.why for r in runs])
