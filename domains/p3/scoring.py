"""Scoring verified P3 puzzles: every answer judged together, every claim checked.

One judge job per puzzle (:func:`domains.p3.verify.judge_job`, a fresh fork per call, in
a random order) judges ``g``'s answer, every solve attempt's answer, the search's find and
spot checks of candidates the search says it rejected. So a solve attempt's check is the
same call as the check of ``g``'s answer, and ``f`` cannot fail the attempts while passing
``g``. The search's report is a hint (``f`` ran in its process): its step is rebuilt here,
and positions of accepted answers in its order are computed here, without ``f``. The
rule that turns the counts into fitness is :mod:`domains.p3.fitness`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from domains.p3.enumerate import SearchResult, candidates, search
from domains.p3.fitness import blend, generator_difficulty, search_hardness
from domains.p3.verify import (
    answer_job,
    checked_answer,
    judge_job,
    judge_timeout,
    judgement,
    shuffled,
)
from evo.domain import Score, Verification
from evo.sandbox.plaindata import decode, encode

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

SPOT_HEAD = 16  # the search's first candidates (the probes of f's literals) re-judged
SPOT_RANDOM = 8  # and this many at random positions the search says it rejected


def _key(value: Any) -> str | None:
    try:
        return repr(value)  # exact types only (plain data): 1, 1.0 and True differ
    except ValueError:  # an int past 4300 digits: never among the search's candidates
        return None


def _scan(item: dict[str, Any], limit: int, known: list[str]) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Search positions (1-based, up to ``limit``) of the ``known`` encoded answers, and
    the spot checks: (position, encoded candidate)."""
    wanted: dict[str, str] = {}
    for text in known:
        k = _key(decode(text))
        if k is not None:
            wanted[k] = text
    rng = random.SystemRandom()
    later = set(rng.sample(range(SPOT_HEAD + 1, limit), min(SPOT_RANDOM, max(0, limit - SPOT_HEAD - 1))))
    positions: dict[str, int] = {}
    spots: list[tuple[int, str]] = []
    for step, value in enumerate(candidates(item, limit), 1):
        k = _key(value)
        if k in wanted and wanted[k] not in positions:
            positions[wanted[k]] = step
        if step <= SPOT_HEAD or step in later:
            spots.append((step, encode(value)))
    return positions, spots


def score_puzzles(items: list[dict[str, Any]], solutions: list[list[str]], sandbox: Sandbox,
                  search_weight: float, budget: int, attempts: int) -> list[Score]:
    """``solutions[i]``: the parsed solve attempts for ``items[i]`` (unparsable ones are
    failed attempts and absent)."""
    jobs = [(i, g) for i, it in enumerate(items) for g in [it["g"], *solutions[i]]]
    answers: dict[int, list[str | None]] = {i: [] for i in range(len(items))}
    for (i, _), verdict in zip(jobs, sandbox.run_many([answer_job({**items[i], "g": g}) for i, g in jobs])):
        answers[i].append(checked_answer(verdict, items[i]["ans_type"])[0])
    found: list[SearchResult | None] = (search(items, sandbox, budget) if search_weight > 0
                                        else [None] * len(items))
    inputs, positions = [], []
    for i, item in enumerate(items):
        known = [a for a in answers[i] if a is not None]
        pos, spots = {}, []
        r = found[i]
        if r is not None:
            pos, spots = _scan(item, r.steps or budget, known)
            if r.answer is not None:
                pos.setdefault(r.answer, r.steps)  # type: ignore[arg-type]
                spots.append((r.steps, r.answer))  # type: ignore[arg-type]
            pos.update({text: step for step, text in spots if text not in pos})
        inputs.append(shuffled(list(dict.fromkeys(known + [text for _, text in spots]))))
        positions.append(pos)
    timeout = sandbox.limits.timeout_s
    todo = [i for i in range(len(items)) if answers[i][0] is not None]
    jobs_ = [judge_job(items[i]["f"], inputs[i], False, timeout) for i in todo]
    verdicts = dict(zip(todo, sandbox.run_many(jobs_, timeout_s=judge_timeout(timeout))))
    return [_score(answers[i], inputs[i], positions[i], found[i], verdicts.get(i), search_weight, budget, attempts)
            for i in range(len(items))]


def _score(answers: list[str | None], inputs: list[str], positions: dict[str, int], r: SearchResult | None,
           verdict: Any, w: float, budget: int, k: int) -> Score:
    j = judgement(verdict, len(inputs)) if verdict is not None else Verification("invalid", "g() gave no answer")
    if isinstance(j, Verification) or j[2] is not None or not j[0][inputs.index(answers[0])]:  # type: ignore[arg-type]
        why = j.reason if isinstance(j, Verification) else j[2] or "f rejected g's answer this time"
        return Score(fitness=0.0, parts={"difficulty": 0.0, "solved": 0, "attempts": k, "inconsistent": why})
    ok = dict(zip(inputs, j[0]))
    solved = sum(1 for a in answers[1:] if a is not None and ok.get(a, False))
    parts: dict[str, Any] = {"difficulty": generator_difficulty(solved, k), "solved": solved, "attempts": k}
    hardness = None
    if r is not None:
        accepted = [p for text, p in positions.items() if ok.get(text, False)]
        first = min(accepted) if accepted else None
        stop = r.stop
        if r.answer is not None and not ok.get(r.answer, False):
            first, stop = None, "answer does not re-check"  # f said yes to the search, no to the judge
        hardness = search_hardness(first, stop, r.tried, budget, solved)
        parts.update(search_hardness=hardness, search_steps=first, search_stop=stop if first is None else None)
    return Score(fitness=blend(parts["difficulty"], hardness, w), parts=parts)
