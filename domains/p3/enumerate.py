"""A second P3 solver that is not the generator: deterministic enumeration of small answers.

Why: difficulty measured only by the generator's own solve attempts saturates for a weak
generator (the 135M model fails nearly every puzzle, so every puzzle scores 1.0 and no elite
can replace another). Enumeration gives every puzzle a graded, reproducible hardness:
how many candidate answers, tried in a fixed order, come before the first one ``f`` accepts.

The order, per answer type: the probes of ``f`` (:mod:`domains.p3.probes`: its literals,
constant expressions such as ``3**40`` and their reversed/sorted images; ints next to
integer ones), then small values: ints 0, 1, -1, 2, -2, ...; floats likewise with
halves; strings over an alphabet taken from ``f``'s string literals (or ``"ab01"``) in
length order; lists by growing length and element rank (all lists over the first ``s``
elements of the element type before any that needs element ``s + 1``).

Types it cannot enumerate (dicts, a bare ``list``) get only the probes: not finding an
answer there is no evidence of hardness and earns none.

The search calls ``f`` many times in one process (a fork without the result channel, see
:mod:`domains.p3.calls`), so ``f`` can tell it from a check and its report is a hint only:
a claimed step is rebuilt here by the same enumerator, without ``f``, and its candidate
re-checked by the judge; and :mod:`domains.p3.fitness` credits "nothing found" only
where no known answer (``g``'s, the solve attempts', probes the judge accepted) lies
within the budget and some honest solver succeeded.

Hostile puzzles (scored under selection pressure):
- a slow ``f`` that runs the search out of time earns credit only for the candidates it
  let the search try (so slowness is never rewarded); the search checks its clock every
  few calls;
- a stateful ``f`` (counting its calls) could "accept" late in the search: a found answer
  is re-checked by the judge, and one that does not hold there earns no credit;
- anything else that stops the search (exit, a crash, an output flood) earns no credit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import islice
from math import log1p
from typing import TYPE_CHECKING, Any

from domains.p3.answer_types import type_ok
from domains.p3.probes import literal_probes
from domains.p3.verify import CALLS_PRELUDE, JUDGE_SHARE, judge_job, judge_timeout, judgement
from evo.domain import Verification
from evo.sandbox import plaindata

if TYPE_CHECKING:
    from evo.sandbox import Sandbox, Verdict

DEFAULT_BUDGET = 10000  # ~30 ms a puzzle; see experiments/p3_fitness_spread.py
TIME_CAP_S = 1.0  # inside the sandbox's own timeout (2 s by default)

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

def _evo_enumerable(t):
    return t in ("int", "float", "str", "bool") or (t.startswith("List[") and _evo_enumerable(t[5:-1]))

def _evo_values(t, lits, alphabet):
    if not _evo_enumerable(t):  # (dicts, bare list): only the probes of f's literals
        for v in lits:
            yield _evo_copy.deepcopy(v)
        return
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

def _evo_search(f, t, lits, alphabet, budget, cap):
    start = _evo_time.perf_counter()
    lits = _evo_plain.decode(lits)
    for step, x in enumerate(_evo_values(t, lits, alphabet), 1):
        if step > budget:
            return {"steps": None, "stop": "budget"}
        if step % 16 == 0 and _evo_time.perf_counter() - start > cap:
            return {"steps": None, "stop": "time", "tried": step - 1}
        try:
            ok = f(x) is True
        except Exception:
            ok = False
        if ok:  # the step only: the verifier rebuilds the candidate itself and re-checks it
            return {"steps": step}
    return {"steps": None, "stop": "budget" if _evo_enumerable(t) else "unenumerable"}
'''


@dataclass
class SearchResult:
    """``steps``: candidates tried up to and including the first accepted one (None if
    none); ``stop``: why the search ended without credit-worthy success, if it did;
    ``answer``: the accepted candidate, encoded as plain data (rebuilt by the verifier)."""

    steps: int | None
    stop: str | None = None
    answer: str | None = None
    tried: int = 0


def enumerable(t: str) -> bool:
    """Answer types the search enumerates beyond the probes of ``f``'s literals."""
    return t in ("int", "float", "str", "bool") or (t.startswith("List[") and enumerable(t[5:-1]))


def literals(f_src: str) -> list[Any]:
    """The probes of ``f`` (:func:`~domains.p3.probes.literal_probes`) the search can use."""
    return [v for v in literal_probes(f_src) if type(v) is not tuple]


def typed_literals(item: dict[str, Any]) -> list[Any]:
    """What the search tries first: every probe for the types it enumerates (whose values
    also seed element pools and int neighbours), else only the probes of the answer type."""
    lits, t = literals(item["f"]), item["ans_type"]
    return lits if enumerable(t) else [v for v in lits if type_ok(v, t)]


def alphabet(lits: list[Any]) -> str:
    chars = sorted({c for v in lits if isinstance(v, str) for c in v if c.isprintable()})
    return "".join(chars[:6]) or "ab01"


@cache
def _enumerator() -> Any:
    scope: dict[str, Any] = {"_evo_plain": plaindata}
    exec(_HARNESS, scope)  # the harness alone, in the verifier: no puzzle code involved
    return scope["_evo_values"]


def candidates(item: dict[str, Any], limit: int) -> Iterator[Any]:
    """The search's candidates in its order, rebuilt here (trusted) without running ``f``."""
    lits = typed_literals(item)
    return islice(_enumerator()(item["ans_type"], lits, alphabet(lits)), limit)


def search_program(item: dict[str, Any]) -> str:
    """The judge's harness and the search; ``f`` is defined only inside the call process."""
    return CALLS_PRELUDE + _HARNESS


def search_expr(item: dict[str, Any], budget: int, timeout_s: float, cap: float = TIME_CAP_S) -> str:
    lits = typed_literals(item)
    args = (item["ans_type"], plaindata.encode(lits), alphabet(lits), budget, cap)
    return f"_evo_relay({item['f']!r}, {args!r}, {JUDGE_SHARE * timeout_s!r})"


def read_report(verdict: Verdict, budget: int) -> SearchResult:
    """The search's report, untrusted (``f`` ran in its process): a claimed step is kept only
    as a hint the verifier checks; anything malformed is a search that broke down."""
    if not verdict.ok or type(verdict.value) is not dict or type(verdict.value.get("report")) is not str:
        return SearchResult(None, stop=verdict.status if not verdict.ok else "no result")
    try:
        value = json.loads(verdict.value["report"])
    except ValueError:
        return SearchResult(None, stop="no result")
    if type(value) is not dict:
        return SearchResult(None, stop="no result")
    steps, stop, tried = value.get("steps"), value.get("stop"), value.get("tried", 0)
    if type(steps) is int and 1 <= steps <= budget:
        return SearchResult(steps)
    if stop in ("budget", "unenumerable", "time") and steps is None:
        return SearchResult(None, stop=stop, tried=tried if type(tried) is int and 0 <= tried <= budget else 0)
    return SearchResult(None, stop="no result")


def search(items: list[dict[str, Any]], sandbox: Sandbox, budget: int = DEFAULT_BUDGET) -> list[SearchResult]:
    """One search per puzzle; a found step comes back with its candidate, rebuilt here and
    encoded (still to be re-checked by the judge: :func:`enumerate_solve` does)."""
    timeout = sandbox.limits.timeout_s
    verdicts = sandbox.run_many([(search_program(it), search_expr(it, budget, timeout)) for it in items])
    results = [read_report(v, budget) for v in verdicts]
    for i, (item, r) in enumerate(zip(items, results)):
        if r.steps is not None:
            found = list(candidates(item, r.steps))
            if len(found) < r.steps:
                results[i] = SearchResult(None, stop="no result")
            else:
                r.answer = plaindata.encode(found[-1])
    return results


def enumerate_solve(items: list[dict[str, Any]], sandbox: Sandbox,
                    budget: int = DEFAULT_BUDGET) -> list[SearchResult]:
    """Searches every puzzle, then re-checks found answers through the judge (a fresh fork
    per call, as every check of ``f``); one that does not hold there has ``stop`` set."""
    if not items:
        return []
    results = search(items, sandbox, budget)
    found = [i for i, r in enumerate(results) if r.answer is not None]
    timeout = sandbox.limits.timeout_s
    checks = sandbox.run_many([judge_job(items[i]["f"], [results[i].answer], False, timeout) for i in found],
                              timeout_s=judge_timeout(timeout))
    for i, v in zip(found, checks):
        j = judgement(v, 1)
        if isinstance(j, Verification) or not j[0][0] or j[2] is not None:
            results[i] = SearchResult(None, stop="answer does not re-check")
    return results


def hardness(result: SearchResult, budget: int = DEFAULT_BUDGET) -> float:
    """0..1: log-scaled count of candidates that fail before the first answer; 1.0 when the
    whole budget finds none; out of time, the count it did try; 0.0 when the search broke
    down (a crash, an exit, an answer that does not re-check) or cannot enumerate the type
    (no evidence of hardness is not hardness). :mod:`domains.p3.fitness` decides when
    this raw measure is credited."""
    if result.steps is not None:
        return min(1.0, log1p(result.steps - 1) / log1p(budget))
    if result.stop == "budget":
        return 1.0
    if result.stop == "time":
        return min(1.0, log1p(max(0, min(result.tried, budget))) / log1p(budget))
    return 0.0
