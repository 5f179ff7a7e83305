"""Running an item's tests against a solution, with the results crossing a boundary.

Two sandboxed evaluations per solution:

1. *record*: the solution's code is loaded and the tests run once, with every function
   the solution defines wrapped: each call's arguments, result (or the exception's name)
   and arguments afterwards (in-place changes) are recorded as plain data
   (:mod:`evo.plaindata`). A result that is not plain data fails that call.
2. *judge*: a fresh evaluation that never ran the solution's code runs the tests again,
   each on its own with a time limit, against stand-ins that replay the recorded results.
   Only the reference solution's imports and the tests run there.

The verifier decodes the recording in between (``json.loads`` and exact type tests). So
whatever the solution does to builtins, ``AssertionError``, ``sys.exit``/``os._exit``,
the tests' globals, frames or the harness, it does in the recording process; what
reaches the tests is a table of plain values, and an object whose ``__eq__`` always
says True never gets there.

Not guaranteed: the tests are written with the solution and run in the judging process,
so they can do anything there; but they only see plain data, so whatever they do is a
function of the solution's recorded inputs and outputs. Not supported: tests that pass
callables or other non-plain values to the solution, or that check a result's identity
(``is``) beyond ``None``/``True``/``False``, or an exception's type.
"""

from __future__ import annotations

import ast
import builtins
from typing import TYPE_CHECKING, Any

from evo.plaindata import NotPlainData, decode, encode, sandbox_prelude

if TYPE_CHECKING:
    from evo.sandbox import Sandbox, Verdict

MAX_CALLS = 5000  # recorded calls per solution
_PRELUDE = sandbox_prelude()

# Step 1, after the solution: run the tests once with recording wrappers.
_RECORD = '''
def _evo_record(_evo_tests, _evo_names, _evo_per_test_s, _evo_max_calls):
    import signal
    calls = []
    def wrap(name, fn):
        def call(*args, **kwargs):
            if len(calls) >= _evo_max_calls:
                raise RuntimeError("too many calls to record")
            key = _evo_plain.encode([name, list(args), kwargs])
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                calls.append([key, None, _evo_plain.encode([list(args), kwargs]), type(exc).__name__])
                raise
            try:
                out = _evo_plain.encode(result)
            except _evo_plain.NotPlainData as exc:
                calls.append([key, None, _evo_plain.encode([list(args), kwargs]), "NotPlainData"])
                raise TypeError("the result is not plain data: %s" % (exc,)) from None
            calls.append([key, out, _evo_plain.encode([list(args), kwargs]), None])
            return result
        return call
    def alarm(*_):
        raise TimeoutError("test took too long")
    signal.signal(signal.SIGALRM, alarm)
    base = dict(globals())
    import builtins
    for name in dir(builtins):  # a helper named like a builtin does not replace it in the tests
        if name != _evo_names[0] and not name.startswith("__"):
            base.pop(name, None)
    for name in _evo_names:
        if callable(base.get(name)):
            base[name] = wrap(name, base[name])
    for test in _evo_tests:
        signal.setitimer(signal.ITIMER_REAL, _evo_per_test_s)
        try:
            exec(test, dict(base))
        except BaseException:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return calls
'''

# Step 2, after the reference's imports only: the tests against replaying stand-ins.
_JUDGE = '''
def _evo_judge(_evo_table, _evo_names, _evo_tests, _evo_per_test_s):
    import signal
    table = {}
    for key, out, after, raised in _evo_plain.decode(_evo_table):
        table.setdefault(key, []).append((out, after, raised))
    def stand_in(name):
        def call(*args, **kwargs):
            seen = table.get(_evo_plain.encode([name, list(args), kwargs]))
            if not seen:
                raise LookupError("the solution was not recorded on this call")
            out, after, raised = seen.pop(0) if len(seen) > 1 else seen[0]
            new_args = _evo_plain.decode(after)[0]
            for old, new in zip(args, new_args):
                if type(old) is list and type(new) is list:
                    old[:] = new
                elif type(old) in (dict, set) and type(new) is type(old):
                    old.clear()
                    old.update(new)
            if raised is not None:
                raise RuntimeError("the solution raised " + raised)
            return _evo_plain.decode(out)
        call.__name__ = call.__qualname__ = name
        return call
    def alarm(*_):
        raise TimeoutError("test took too long")
    signal.signal(signal.SIGALRM, alarm)
    base = dict(globals())
    base.update({name: stand_in(name) for name in _evo_names})
    passed = []
    for test in _evo_tests:
        signal.setitimer(signal.ITIMER_REAL, _evo_per_test_s)
        try:
            exec(test, dict(base))
            passed.append(True)
        except BaseException:
            passed.append(False)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return passed
'''


def tests_of(item: dict[str, Any]) -> list[str]:
    return [t for t in item["tests"].splitlines() if t.strip()]


def _functions(source: str, entry_point: str) -> list[str]:
    """The functions the tests may call: the entry point first, then the solution's other
    functions, except those named like a builtin or a dunder (a helper ``abs`` that always
    returns 0 would otherwise decide the tests' ``abs(f(x) - y) < 1e-9``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [entry_point]
    helpers = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name != entry_point
               and not hasattr(builtins, n.name) and not n.name.startswith("__")]
    return [entry_point, *dict.fromkeys(helpers)]


def _imports(source: str) -> str:
    tree = ast.parse(source)
    return "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def record_job(solution: str, item: dict[str, Any], per_test_s: float) -> tuple[str, str]:
    names = _functions(solution, item["entry_point"])
    return (solution + "\n" + _PRELUDE + _RECORD,
            f"_evo_record({tests_of(item)!r}, {names!r}, {per_test_s!r}, {MAX_CALLS})")


def recorded_table(verdict: Verdict) -> str | None:
    """Step 1's verdict (hostile: the solution's process made it) -> the call table,
    validated and re-encoded; None when the recording failed or is malformed."""
    calls = verdict.value
    if not verdict.ok or type(calls) is not list or len(calls) > MAX_CALLS:
        return None
    table = []
    try:
        for call in calls:
            if type(call) is not list or len(call) != 4:
                return None
            key, out, after, raised = call
            decoded_key, decoded_after = decode(key), decode(after)
            if (type(decoded_key) is not list or len(decoded_key) != 3 or type(decoded_after) is not list
                    or len(decoded_after) != 2 or type(decoded_after[0]) is not list):
                return None
            if (out is None) == (raised is None) or (raised is not None and type(raised) is not str):
                return None
            table.append([encode(decoded_key), None if out is None else encode(decode(out)),
                          encode(decoded_after), None if raised is None else raised[:80]])
        return encode(table)
    except NotPlainData:
        return None


def judge_job(table: str, solution: str, item: dict[str, Any], per_test_s: float) -> tuple[str, str]:
    names = _functions(solution, item["entry_point"])
    return (_imports(item["solution"]) + "\n" + _PRELUDE + _JUDGE,
            f"_evo_judge({table!r}, {names!r}, {tests_of(item)!r}, {per_test_s!r})")


def passed(verdict: Verdict, n_tests: int) -> list[bool]:
    """Per-test pass flags from step 2; a crashed or timed-out run fails every test."""
    v = verdict.value
    if verdict.ok and isinstance(v, list) and len(v) == n_tests and all(type(x) is bool for x in v):
        return v
    return [False] * n_tests


def run_tests(jobs: list[tuple[str, dict[str, Any]]], sandbox: Sandbox,
              per_test_s: float) -> tuple[list[list[bool]], list[str | None]]:
    """``(solution, item)`` pairs -> per pair, the item's tests' pass flags and, when the
    recording failed, why (e.g. the solution crashed or timed out: every test fails)."""
    recorded = sandbox.run_many([record_job(s, it, per_test_s) for s, it in jobs])
    tables = [recorded_table(v) for v in recorded]
    todo = [i for i, t in enumerate(tables) if t is not None]
    judged = sandbox.run_many([judge_job(tables[i], *jobs[i], per_test_s) for i in todo])
    out = [[False] * len(tests_of(it)) for _, it in jobs]
    why: list[str | None] = [None] * len(jobs)
    for i, v in enumerate(recorded):
        if tables[i] is None:
            why[i] = ((v.error or v.status) if v.status == "failed" else f"{v.status}: {v.error}") \
                if not v.ok else "the recording of the solution's calls is malformed"
    for i, v in zip(todo, judged):
        out[i] = passed(v, len(out[i]))
        if not v.ok:
            why[i] = f"the tests crashed: {v.error or v.status}"
        elif '"NotPlainData"' in tables[i]:  # only for the reason: a false match costs nothing
            why[i] = "a result is not plain data (an object, a subclass, a generator, or too large)"
    return out, why
