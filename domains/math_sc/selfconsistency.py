"""Self-consistency labels for unlabelled questions, as LMSI uses them (Huang et al., 2022).

Per question, ``k`` sampled chains of thought each state an answer (read strictly by
:func:`~domains.math_sc.exact.answer_key`; an unreadable chain votes for nothing). The
majority answer is the label and its share of all ``k`` chains (unreadable ones included:
they are chains that did not agree) the confidence. A tie for the top has no label.

Kept for training: the chains that state the label, on questions whose share reaches the
threshold, and (``check_steps``) whose own reasoning arrives at that answer: a chain with a
wrong arithmetic step, or whose last worked result is not its final answer, is not a
rationale for the label even when its final line agrees (Huang et al. keep every agreeing
path; this is stricter, and says so in the results).

The threshold is chosen on *train* questions against their true labels
(:func:`choose_threshold`): the share that maximises ``correct labels kept - wrong labels
kept`` (a wrong label costs as much as a right one gains; at equal net the higher threshold,
the cleaner set). "Kept count x precision" would be maximised by keeping everything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from domains.math_sc.exact import answer_key
from domains.math_sc.steps import last_result, wrong_step

NONE_KEPT = 1.01  # a threshold no share reaches
RULE = "max over thresholds of (correct labels kept - wrong labels kept) on train questions; ties: the higher"


@dataclass
class Vote:
    label: str | None  # the majority answer; None: no readable answer, or a tie for the top
    votes: int
    share: float  # votes / all chains
    answers: list[str | None]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def vote(chains: list[str]) -> Vote:
    answers = [answer_key(c) for c in chains]
    counts = Counter(a for a in answers if a is not None)
    if not counts or not chains:
        return Vote(None, 0, 0.0, answers)
    top = counts.most_common()
    if len(top) > 1 and top[0][1] == top[1][1]:
        return Vote(None, top[0][1], top[0][1] / len(chains), answers)
    return Vote(top[0][0], top[0][1], top[0][1] / len(chains), answers)


def consistent(chain: str, answer: str) -> bool:
    """The chain's own arithmetic is right and its last worked result is its final answer."""
    if wrong_step(chain) is not None:
        return False
    result = last_result(chain)
    return result is None or result == Fraction(answer)


def keep_chains(chains: list[str], v: Vote, threshold: float, *, check_steps: bool = True,
                max_per_question: int | None = None) -> list[str]:
    """The chains to train on for one question (distinct texts, in sampling order)."""
    if v.label is None or v.share < threshold:
        return []
    out, seen = [], set()
    for chain, answer in zip(chains, v.answers):
        text = chain.strip()
        norm = " ".join(text.split())
        if answer != v.label or norm in seen or (check_steps and not consistent(text, v.label)):
            continue
        seen.add(norm)
        out.append(text)
        if max_per_question is not None and len(out) >= max_per_question:
            break
    return out


def threshold_table(votes: list[Vote], gold: list[str]) -> list[dict[str, Any]]:
    """Per candidate threshold (every share seen, and 0): labels kept, correct ones, precision, net."""
    if len(votes) != len(gold):
        raise ValueError("one gold answer per vote")
    rows = []
    # exact shares: a rounded 2/3 (0.666667) is above 2/3 and would keep nothing
    for t in sorted({0.0} | {v.share for v in votes if v.label is not None}):
        kept = [(v, g) for v, g in zip(votes, gold) if v.label is not None and v.share >= t]
        correct = sum(v.label == str(Fraction(g)) for v, g in kept)
        rows.append({"threshold": t, "kept": len(kept), "correct": correct, "wrong": len(kept) - correct,
                     "precision": correct / len(kept) if kept else None, "net": 2 * correct - len(kept)})
    # above every share: nothing kept, net 0; chosen when every real threshold keeps more wrong
    # labels than right ones
    rows.append({"threshold": NONE_KEPT, "kept": 0, "correct": 0, "wrong": 0, "precision": None, "net": 0})
    return rows


def choose_threshold(votes: list[Vote], gold: list[str]) -> dict[str, Any]:
    """The threshold by :data:`RULE`, with the table it was read from."""
    table = threshold_table(votes, gold)
    best = max(table, key=lambda r: (r["net"], r["threshold"]))
    return {"threshold": best["threshold"], "rule": RULE, "table": table, "chosen": best}
