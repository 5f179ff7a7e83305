"""P3 fitness that a puzzle's author cannot buy (pure functions; see experiments/p3_fitness_rule.py).

Learnt from Absolute Zero Reasoner, whose proposer earns ``1 - solve_rate`` over 8 solver
samples and nothing when the solver never succeeds: a puzzle that no honest solver ever
solves has shown no difficulty; it may be wrong, hidden-requirement or unsatisfiable in
spirit (an ``f`` that reads differently from how it judges). Here:

- generator difficulty ``D``: 0 when none or all of the ``k`` solve attempts succeed, else
  ``1 - (s + 1) / (k + 2)``, the posterior mean of the failure rate under a uniform prior.
  The shrinkage counters the winner's curse of keeping each cell's maximum: at ``k = 3`` a
  puzzle solved once by luck would otherwise read as 0.67;
- search hardness ``H``: from the first position, in the search's own order, of any answer
  the judge accepted (``g``'s, a solve attempt's, the search's find, a probe), computed by
  the verifier, never taken from ``f``'s process. Where none lies within the budget the
  search's "nothing found" earns 1.0 only if some solve attempt succeeded (an honest
  solver shows the puzzle is solvable by reading it); a broken-down search, a type it
  cannot enumerate, and an unproven "nothing found" earn 0.

The trade-off taken: an honest puzzle that is truly beyond the current generator and the
search scores 0 (as in AZR) rather than letting unsolvable-in-spirit puzzles score 1.0;
the search still grades what the generator fails (``H`` from a found answer needs no
generator success), so a weak generator keeps a gradient.
"""

from __future__ import annotations

from math import log1p


def generator_difficulty(solved: int, attempts: int) -> float:
    """``1 - (s + 1) / (k + 2)`` for ``0 < s < k``, else 0 (nothing for what no solver solves)."""
    if attempts < 1 or solved <= 0 or solved >= attempts:
        return 0.0
    return 1.0 - (solved + 1) / (attempts + 2)


def search_hardness(first_answer: int | None, stop: str | None, tried: int, budget: int,
                    solved: int) -> float:
    """``first_answer``: the first search position (1-based) of a judge-accepted answer,
    None if none within the budget; ``stop``: how the search ended without one
    ("budget", "time", or a breakdown); ``tried``: candidates tried before time ran out."""
    if first_answer is not None:
        return min(1.0, log1p(max(first_answer, 1) - 1) / log1p(budget))
    if solved <= 0:
        return 0.0  # "nothing found" and no solver succeeded: nothing shows it is solvable
    if stop == "budget":
        return 1.0
    if stop == "time":  # slowness is never rewarded: credit for what the search did try
        return min(1.0, log1p(max(0, min(tried, budget))) / log1p(budget))
    return 0.0


def blend(difficulty: float, hardness: float | None, search_weight: float) -> float:
    """``(1 - w) * D + w * H``; without a search (``w = 0``) the generator's part alone."""
    if hardness is None:
        return difficulty
    return (1.0 - search_weight) * difficulty + search_weight * hardness
