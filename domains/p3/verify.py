"""Running P3 puzzles in the sandbox: ``f(g())`` must be exactly True, the answer must
have the declared type (P3's type check), and no trivial answer may satisfy ``f``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evo.domain import Verification

if TYPE_CHECKING:
    from evo.sandbox import Sandbox, Verdict

# Shipped into every sandboxed program: P3's exact type check and the trivial answers.
_HARNESS = '''
def _evo_type_ok(x, t):
    if t.startswith("List["):
        return type(x) is list and all(_evo_type_ok(e, t[5:-1]) for e in x)
    return type(x) is {"int": int, "float": float, "str": str, "bool": bool}[t]

_EVO_TRIVIAL = {
    "int": list(range(-10, 11)) + [100, 1000],
    "float": [0.0, 1.0, -1.0, 0.5, 2.0],
    "str": ["", "a", "0", "1", " ", "ab"],
    "bool": [True, False],
}

def _evo_trivial(t):
    if t.startswith("List["):
        inner = _evo_trivial(t[5:-1])
        return [[]] + [[v] for v in inner[:3]]
    return _EVO_TRIVIAL[t]

def _evo_check(t, check_trivial):
    ans = g()
    if not _evo_type_ok(ans, t):
        return {"error": "wrong type: g() returned %s, f expects %s" % (type(ans).__name__, t)}
    r = f(ans)
    if r is not True:
        return {"error": "f(g()) returned %.60r, not True" % (r,)}
    if check_trivial:
        for v in _evo_trivial(t):
            try:
                if f(v) is True:
                    return {"trivial": repr(v)}
            except Exception:
                pass
    return {}
'''


def puzzle_program(item: dict[str, Any]) -> str:
    """The source the sandbox runs: typing imports, the puzzle, its solution, the harness."""
    return "from typing import List\n\n" + item["f"] + "\n\n" + item["g"] + "\n" + _HARNESS


def check_expr(item: dict[str, Any], trivial: bool = True) -> str:
    return f"_evo_check({item['ans_type']!r}, {trivial!r})"


def to_verification(verdict: Verdict) -> Verification:
    """Turns a sandbox verdict on :func:`puzzle_program` into valid / invalid / trivial."""
    if not verdict.ok:
        detail = verdict.error or verdict.status
        return Verification("invalid", detail if verdict.status == "failed" else f"{verdict.status}: {detail}")
    result = verdict.value if isinstance(verdict.value, dict) else {}
    if "error" in result:
        return Verification("invalid", str(result["error"]))
    if "trivial" in result:
        return Verification("trivial", f"satisfied by the trivial answer {result['trivial']}")
    return Verification("valid")


def verify_puzzles(items: list[dict[str, Any]], sandbox: Sandbox) -> list[Verification]:
    """Puzzles without a usable ``g`` are invalid without running."""
    runnable = [it for it in items if it.get("g")]
    verdicts = iter(sandbox.run_many([(puzzle_program(it), check_expr(it)) for it in runnable]))
    return [to_verification(next(verdicts)) if it.get("g")
            else Verification("invalid", f"no usable solution: {it.get('g_error', 'no function g')}")
            for it in items]
