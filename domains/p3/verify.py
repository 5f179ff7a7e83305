"""Running P3 puzzles in the sandbox, with the answer crossing a boundary.

A puzzle is checked in two sandboxed evaluations:

1. *answer*: ``g()`` runs and its answer is encoded as plain data
   (:mod:`evo.sandbox.plaindata`: exact ``int``/``float``/``str``/``bool``, lists and dicts);
2. *judge*: a fresh evaluation that never ran ``g``'s code calls ``f`` on each input,
   every call in its own fork with no handle on the result channel
   (:mod:`domains.p3.calls`): the answer and the trivial answers alike, in a random
   order, and a second time in another interpreter (hash seed, argv) for determinism.

Between the two, the verifier itself decodes the answer (``json.loads`` and exact type
tests, nothing of ``g``'s runs here) and checks it against ``f``'s annotation
(:func:`~domains.p3.answer_types.type_ok`). So ``g`` can only choose an answer, and ``f``
can only choose, per call, whether it accepts that call's input: it cannot tell the
check of ``g``'s answer from a trivial answer, keep state from one call to the next, or
write the verdict. The judge's reply is assembled by trusted code and read strictly here.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domains.p3.answer_types import trivial_answers, type_ok
from evo.domain import Verification
from evo.sandbox import plaindata
from evo.sandbox.plaindata import NotPlainData, decode, encode, sandbox_prelude

if TYPE_CHECKING:
    from evo.sandbox import Sandbox, Verdict

_TYPING = "from typing import Dict, List\n\n"
_PRELUDE = sandbox_prelude()
_PLAIN_SRC = Path(plaindata.__file__).read_text(encoding="utf-8")  # for the twin interpreter
CALLS_PRELUDE = (_PRELUDE + f"_EVO_PLAIN_SRC = {_PLAIN_SRC!r}\n"
                 + Path(__file__).with_name("calls.py").read_text(encoding="utf-8") + "\n")
JUDGE_SHARE = 0.8  # of the judge job's timeout: it stops its calls in time to answer


def judge_timeout(timeout_s: float) -> float:
    """A judge job runs ``f`` on every input, each in a fork, and again in a second
    interpreter: twice the work one evaluation of ``f`` had, plus the forks' cost."""
    return 2.0 * timeout_s + 1.0

# Step 1, after f and g: g's answer as plain-data text (or the reason it is not).
_ANSWER = '''
def _evo_answer():
    try:
        return {"answer": _evo_plain.encode(g())}
    except _evo_plain.NotPlainData as exc:
        return {"error": "g() did not return plain data: %s" % (exc,)}
'''


def _failure(verdict: Verdict) -> Verification:
    detail = verdict.error or verdict.status
    return Verification("invalid", detail if verdict.status == "failed" else f"{verdict.status}: {detail}")


def answer_job(item: dict[str, Any]) -> tuple[str, str]:
    """Step 1's sandbox job: run ``g``, encode its answer (``f`` is defined: g may call it)."""
    return _TYPING + item["f"] + "\n\n" + item["g"] + "\n" + _PRELUDE + _ANSWER, "_evo_answer()"


def judge_job(f_src: str, inputs: list[str], twin: bool, timeout_s: float) -> tuple[str, str]:
    """Step 2's sandbox job: ``f`` judges each encoded input in a fresh fork (``twin``: and
    again in another interpreter). Every caller of ``f`` builds its job here: one shape."""
    budget = JUDGE_SHARE * judge_timeout(timeout_s)
    return CALLS_PRELUDE, f"_evo_judge({f_src!r}, {inputs!r}, {twin!r}, {budget!r})"


def judgement(verdict: Verdict, n: int) -> tuple[list[bool], list[str], str | None] | Verification:
    """Step 2's verdict -> (accepted, why) per input and the judge's error (state left
    behind, a second judging that differs), or why the puzzle is invalid. Only a dict of
    the exact shape the judge builds counts; anything else is invalid."""
    if not verdict.ok:
        return _failure(verdict)
    value = verdict.value
    if type(value) is not dict:
        return Verification("invalid", "the judge's reply is not a dict")
    accepted, why, error = value.get("accepted"), value.get("why"), value.get("error")
    if (type(accepted) is not list or type(why) is not list or len(accepted) != n or len(why) != n
            or any(type(a) is not bool for a in accepted) or any(type(w) is not str for w in why)
            or not (error is None or type(error) is str)):
        return Verification("invalid", "the judge's reply is malformed")
    return accepted, why, error


def answer_verdict(accepted: bool, why: str) -> Verification | None:
    """The check of ``g``'s answer: None when ``f`` accepted it."""
    if accepted:
        return None
    if why == "timeout":
        return Verification("invalid", "timeout: f(g()) ran past the time limit")
    return Verification("invalid", f"f(g()) {why[:200]}, not True")


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


def shuffled(inputs: list[str]) -> list[str]:
    """``inputs`` in an order drawn from the OS's randomness (f cannot predict or replay it)."""
    random.SystemRandom().shuffle(inputs)
    return inputs


def check_puzzles(items: list[dict[str, Any]], sandbox: Sandbox, trivial: bool = True) -> list[Verification]:
    """Verdicts for puzzles with a solution ``g`` (two sandbox batches: answers, then judges);
    ``trivial=False`` skips the trivial-answer check and the second judging (a solve
    attempt, whose puzzle was verified already)."""
    out: list[Verification | None] = [None] * len(items)
    answers: dict[int, str] = {}
    for i, (item, verdict) in enumerate(zip(items, sandbox.run_many([answer_job(it) for it in items]))):
        answers[i], out[i] = checked_answer(verdict, item["ans_type"])
    todo = [i for i in answers if out[i] is None]
    trivials = {i: [encode(t) for t in trivial_answers(items[i]["ans_type"])] if trivial else [] for i in todo}
    # Shuffled here, in the trusted parent: the judge's frames (which f can read from its
    # fork) then hold the inputs in an order that says nothing of which one is g's answer.
    inputs = {i: shuffled(list(dict.fromkeys([answers[i]] + trivials[i]))) for i in todo}
    timeout = sandbox.limits.timeout_s
    verdicts = sandbox.run_many([judge_job(items[i]["f"], inputs[i], trivial, timeout) for i in todo],
                                timeout_s=judge_timeout(timeout))
    for i, verdict in zip(todo, verdicts):
        j = judgement(verdict, len(inputs[i]))
        if isinstance(j, Verification):
            out[i] = j
            continue
        accepted, why, error = j
        g_at = inputs[i].index(answers[i])
        # the answer's own timeout first (the judge's errors then follow from it), else the error
        out[i] = (Verification("invalid", error[:300]) if error is not None and why[g_at] != "timeout"
                  else answer_verdict(accepted[g_at], why[g_at]))
        if out[i] is None:
            ok = dict(zip(inputs[i], accepted))
            hits = [text for text in trivials[i] if ok.get(text)]  # the trivial answers' own order
            out[i] = (Verification("trivial", f"satisfied by the trivial answer {decode(hits[0])!r:.100}")
                      if hits else Verification("valid"))
    return out  # type: ignore[return-value]


def verify_puzzles(items: list[dict[str, Any]], sandbox: Sandbox) -> list[Verification]:
    """Puzzles without a usable ``g`` are invalid without running."""
    runnable = [it for it in items if it.get("g")]
    verdicts = iter(check_puzzles(runnable, sandbox))
    return [next(verdicts) if it.get("g")
            else Verification("invalid", f"no usable solution: {it.get('g_error', 'no function g')}")
            for it in items]
