"""Which generator-difficulty rule keeps honest hard P3 puzzles above easy and unsolvable ones?

    .venv/bin/python experiments/p3_fitness_rule.py [--trials 20000]

Exact binomial sums plus a Monte Carlo of the archive's winner's curse (a cell keeps the
highest-scoring of N puzzles, each scored once from k solve attempts). Puzzles, by their
true solve rate p for the generator: an *honest hard* one (p = 0.15), an *easy* one that
a lucky draw makes look hard (p = 0.67, issue 30's `ys == [1, 2, 3, 4, 5]` was solved in
1 to 3 of 3), and an *unsolvable in spirit* one (p = 0: wrong, hidden requirement, or an
f that reads differently from how it judges). Rules:

- raw: ``1 - s/k`` (main before issue 30);
- azr: ``1 - s/k`` if ``0 < s < k`` else 0 (Absolute Zero Reasoner's proposer reward);
- azr+shrink: ``1 - (s+1)/(k+2)`` if ``0 < s < k`` else 0 (:mod:`domains.p3.fitness`).

Prints a markdown table and writes it to experiments/results/p3_fitness_rule.md.
"""

from __future__ import annotations

import argparse
import random
import sys
from math import comb
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from domains.p3.fitness import generator_difficulty  # noqa: E402

RULES = {
    "raw": lambda s, k: 1.0 - s / k,
    "azr": lambda s, k: 1.0 - s / k if 0 < s < k else 0.0,
    "azr+shrink": generator_difficulty,
}
HARD, EASY, NEVER = 0.15, 0.67, 0.0


def pmf(s: int, k: int, p: float) -> float:
    return comb(k, s) * p**s * (1 - p) ** (k - s)


def expected(rule, k: int, p: float) -> float:
    return sum(pmf(s, k, p) * rule(s, k) for s in range(k + 1))


def p_outranks(rule, k: int, p_low: float, p_high: float) -> float:
    """P(a puzzle of solve rate p_high scores strictly above one of p_low), one draw each."""
    return sum(pmf(a, k, p_high) * pmf(b, k, p_low)
               for a in range(k + 1) for b in range(k + 1) if rule(a, k) > rule(b, k))


def kept_is_hard(rule, k: int, n: int, trials: int, rng: random.Random) -> float:
    """A cell of n puzzles, a fifth of them honest hard and the rest easy: how often the
    cell's kept maximum (ties broken at random) is an honest hard one."""
    hits = 0
    for _ in range(trials):
        best, best_key = None, (-1.0, 0.0)
        for j in range(n):
            p = HARD if j < max(1, n // 5) else EASY
            s = sum(rng.random() < p for _ in range(k))
            key = (rule(s, k), rng.random())
            if key > best_key:
                best, best_key = p, key
        hits += best == HARD
    return hits / trials


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20000)
    args = ap.parse_args()
    rng = random.Random(0)
    lines = ["# P3 generator-difficulty rules (experiments/p3_fitness_rule.py)", "",
             f"true solve rates: honest hard {HARD}, easy {EASY}, unsolvable {NEVER}; "
             f"cell of 10 (2 hard, 8 easy), {args.trials} trials", "",
             "| k | rule | E[D] hard | E[D] easy | E[D] unsolvable | P(easy > hard) | P(unsolvable > hard) | kept max is hard |",
             "|---|---|---|---|---|---|---|---|"]
    for k in (3, 4, 8):
        for name, rule in RULES.items():
            lines.append(
                f"| {k} | {name} | {expected(rule, k, HARD):.2f} | {expected(rule, k, EASY):.2f} | "
                f"{expected(rule, k, NEVER):.2f} | {p_outranks(rule, k, HARD, EASY):.2f} | "
                f"{p_outranks(rule, k, HARD, NEVER):.2f} | {kept_is_hard(rule, k, 10, args.trials, rng):.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "experiments" / "results" / "p3_fitness_rule.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
