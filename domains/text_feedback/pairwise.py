"""Pairwise judging with position swap: is text X better than text Y, by a judge LLM?

Each pair is judged twice, X as A then X as B, and the judge's ``P(A) / (P(A) + P(B))`` at the
next token after the question is read (as :func:`~domains.text_feedback.judge.yes_probability`
reads Yes/No; both texts pass :func:`~domains.text_feedback.judge.fence_text`). Per pair:

- ``pref``: the mean of P(X) over the two orders, in [0, 1] (0.5: no preference); a judge that
  always says "A" gives exactly 0.5, so a pure order bias cancels;
- ``outcome``: 1 when both orders prefer X, 0 when both prefer Y, 0.5 when they disagree (the
  order decided, not the texts): the win rate counts ties as half, as arena leaderboards do.

:func:`win_rate` summarises outcomes with bootstrap intervals over pairs, and reports how often
the judge picked position A (its order bias) and how often the two orders agreed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from domains.text_feedback.judge import fence_text, next_token_odds, special_tokens
from evo.heldout import bootstrap_ci

PAIR_PROMPT = {
    "story": ("Two very short stories.\n\nStory A: \"{a}\"\n\nStory B: \"{b}\"\n\nQuestion: Which story is "
              "better written: clearer, more coherent and more interesting? Answer A or B.\nAnswer:"),
    "instruction": ("Two instructions.\n\nInstruction A: \"{a}\"\n\nInstruction B: \"{b}\"\n\nQuestion: Which "
                    "instruction is clearer and more useful? Answer A or B.\nAnswer:"),
}
A_TOKENS, B_TOKENS = ("A", " A"), ("B", " B")

Judge = Callable[[list[str]], list[float]]  # judge prompts -> P(A) per prompt


def choice_probability(llm: Any, prompts: list[str], *, chat: bool = True) -> list[float]:
    """P(A) / (P(A) + P(B)) for the next token after each prompt (each prompt alone, unpadded:
    a judgment never depends on its batch-mates)."""
    return next_token_odds(llm, prompts, A_TOKENS, B_TOKENS, chat=chat,
                           missing="the pairwise judge needs log-probabilities (a transformers-backend model)")


def llm_judge(llm: Any, kind: str = "story", *, chat: bool = True) -> tuple[Judge, Callable[[str, str], str]]:
    """(judge, prompt builder) for a judge LLM: ``build(a, b)`` fences both texts."""
    template, drop = PAIR_PROMPT[kind], special_tokens(llm)

    def build(a: str, b: str) -> str:
        return template.replace("{a}", fence_text(a, drop)).replace("{b}", fence_text(b, drop))

    return (lambda prompts: choice_probability(llm, prompts, chat=chat)), build


def judge_pairs(judge: Judge, build: Callable[[str, str], str], xs: Sequence[str],
                ys: Sequence[str]) -> list[dict[str, float]]:
    """Per pair (x, y): P(x) with x as A, P(x) with x as B, their mean and the outcome."""
    if len(xs) != len(ys):
        raise ValueError("one y per x")
    prompts = [build(x, y) for x, y in zip(xs, ys)] + [build(y, x) for x, y in zip(xs, ys)]
    p_a = judge(prompts)
    n = len(xs)
    out = []
    for i in range(n):
        x_first, x_second = p_a[i], 1.0 - p_a[n + i]  # second order: x is B
        wins = (x_first > 0.5) + (x_second > 0.5)
        out.append({"x_as_a": x_first, "x_as_b": x_second, "pref": (x_first + x_second) / 2,
                    "outcome": wins / 2, "picked_a": ((p_a[i] > 0.5) + (p_a[n + i] > 0.5)) / 2})
    return out


def win_rate(pairs: list[dict[str, float]], seed: int = 0) -> dict[str, Any]:
    """Win rate (ties half) and mean preference of x over y, with 95% bootstrap intervals."""
    if not pairs:
        raise ValueError("no pairs judged")
    outcome, pref = [p["outcome"] for p in pairs], [p["pref"] for p in pairs]
    return {"n": len(pairs), "win_rate": float(np.mean(outcome)), "win_rate_ci": list(bootstrap_ci(outcome, seed=seed)),
            "pref": float(np.mean(pref)), "pref_ci": list(bootstrap_ci(pref, seed=seed)),
            "wins": sum(o == 1 for o in outcome), "ties": sum(o == 0.5 for o in outcome),
            "losses": sum(o == 0 for o in outcome),
            "position_a_rate": float(np.mean([p["picked_a"] for p in pairs])),
            "orders_agree": float(np.mean([p["outcome"] != 0.5 for p in pairs]))}
