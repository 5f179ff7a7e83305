"""Running P3 puzzles in the sandbox, with the answer crossing a boundary.

A puzzle is checked in two sandboxed evaluations:

1. *answer*: ``g()`` runs and its answer is encoded as plain data
   (:mod:`evo.plaindata`: exact ``int``/``float``/``str``/``bool``, lists and dicts);
2. *judge*: a fresh evaluation that never ran ``g``'s code decodes the answer, calls
   ``f`` on it (the result must be exactly True) and tries the trivial answers.

Between the two, the verifier itself decodes the answer (``json.loads`` and exact type
tests, nothing of ``g``'s runs here) and checks it against ``f``'s annotation
(:func:`~domains.p3.answer_types.type_ok`). So ``g`` can only choose an answer: it cannot
rebind ``f``, patch ``f.__code__``, builtins or ``sys.modules`` for the judge, or return
an object with its own ``__eq__`` or an ``int`` subclass.

Not guaranteed: ``f`` is the puzzle and runs in the judging process, so an ``f`` written
against this harness (e.g. reading the sandbox's result token from its frames) can
report any verdict for itself; and the trivial-answer check calls the same ``f`` in one
process, so a stateful ``f`` can tell the calls apart. Neither helps ``g``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domains.p3.answer_types import trivial_answers, type_ok
from evo.domain import Verification
from evo.plaindata import NotPlainData, decode, encode, sandbox_prelude

if TYPE_CHECKING:
    from evo.sandbox import Sandbox, Verdict

_TYPING = "from typing import Dict, List\n\n"
_PRELUDE = sandbox_prelude()

# Step 1, after f and g: g's answer as plain-data text (or the reason it is not).
_ANSWER = '''
def _evo_answer():
    try:
        return {"answer": _evo_plain.encode(g())}
    except _evo_plain.NotPlainData as exc:
        return {"error": "g() did not return plain data: %s" % (exc,)}
'''

# Step 2, after f only: the decoded answer must make f exactly True; no trivial one may.
_JUDGE = '''
def _evo_judge(answer, trivial):
    r = f(_evo_plain.decode(answer))
    if r is not True:
        return {"error": "f(g()) returned %.60r, not True" % (r,)}
    for v in _evo_plain.decode(trivial):
        try:
            if f(v) is True:
                return {"trivial": repr(v)}
        except Exception:
            pass
    return {}
'''


def _failure(verdict: Verdict) -> Verification:
    detail = verdict.error or verdict.status
    return Verification("invalid", detail if verdict.status == "failed" else f"{verdict.status}: {detail}")


def answer_job(item: dict[str, Any]) -> tuple[str, str]:
    """Step 1's sandbox job: run ``g``, encode its answer (``f`` is defined: g may call it)."""
    return _TYPING + item["f"] + "\n\n" + item["g"] + "\n" + _PRELUDE + _ANSWER, "_evo_answer()"


def judge_job(item: dict[str, Any], answer: str, trivial: bool = True) -> tuple[str, str]:
    """Step 2's sandbox job: ``f`` alone judges the encoded ``answer`` (and trivial answers)."""
    trivials = encode(trivial_answers(item["ans_type"]) if trivial else [])
    return (_TYPING + item["f"] + "\n" + _PRELUDE + _JUDGE,
            f"_evo_judge({answer!r}, {trivials!r})")


def _preview(answer: Any) -> str:
    """The start of an answer for a message. str() of an int past 4300 digits raises, and a
    generated answer may hold one anywhere: say its size instead."""
    try:
        return str(answer)[:40]
    except ValueError:
        return f"<{type(answer).__name__} too large to print>"


def checked_answer(verdict: Verdict, ans_type: str) -> tuple[str | None, Verification | None]:
    """Step 1's verdict -> (the re-encoded answer, None), or (None, why it is invalid).
    Everything in ``verdict`` came from g's process and is treated as hostile."""
    if not verdict.ok:
        return None, _failure(verdict)
    value = verdict.value
    if type(value) is dict and type(value.get("error")) is str:
        return None, Verification("invalid", value["error"][:300])
    try:
        answer = decode(value.get("answer") if type(value) is dict else None)
    except NotPlainData as exc:
        return None, Verification("invalid", f"g()'s answer did not come back as plain data: {exc}")
    if not type_ok(answer, ans_type):
        return None, Verification("invalid", f"wrong type: g() returned {type(answer).__name__} "
                                             f"{_preview(answer)}, f expects {ans_type}")
    return encode(answer), None


def judged(verdict: Verdict) -> Verification:
    """Step 2's verdict -> valid / invalid / trivial."""
    if not verdict.ok:
        return _failure(verdict)
    result = verdict.value if isinstance(verdict.value, dict) else {}
    if "error" in result:
        return Verification("invalid", str(result["error"])[:300])
    if "trivial" in result:
        return Verification("trivial", f"satisfied by the trivial answer {str(result['trivial'])[:100]}")
    return Verification("valid")


def check_puzzles(items: list[dict[str, Any]], sandbox: Sandbox, trivial: bool = True) -> list[Verification]:
    """Verdicts for puzzles with a solution ``g`` (two sandbox batches: answers, then judges);
    ``trivial=False`` skips the trivial-answer check (a solve attempt)."""
    out: list[Verification | None] = [None] * len(items)
    answers: dict[int, str] = {}
    for i, (item, verdict) in enumerate(zip(items, sandbox.run_many([answer_job(it) for it in items]))):
        answers[i], out[i] = checked_answer(verdict, item["ans_type"])
    todo = [i for i in answers if out[i] is None]
    verdicts = sandbox.run_many([judge_job(items[i], answers[i], trivial) for i in todo])
    for i, verdict in zip(todo, verdicts):
        out[i] = judged(verdict)
    return out  # type: ignore[return-value]


def verify_puzzles(items: list[dict[str, Any]], sandbox: Sandbox) -> list[Verification]:
    """Puzzles without a usable ``g`` are invalid without running."""
    runnable = [it for it in items if it.get("g")]
    verdicts = iter(check_puzzles(runnable, sandbox))
    return [next(verdicts) if it.get("g")
            else Verification("invalid", f"no usable solution: {it.get('g_error', 'no function g')}")
            for it in items]
