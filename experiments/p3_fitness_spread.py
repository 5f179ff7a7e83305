"""How much does P3's fitness discriminate? Old (generator-only) vs blended fitness, measured
on one puzzle per P3 *train* family (never the test families).

Usage:
    python experiments/p3_fitness_spread.py [--attempts 3] [--limit N] [--no-generator]

Old fitness: the share of ``--attempts`` fresh solve attempts by the embedded generator that
fail (what the demo config uses). New: ``(1 - w) * old + w * search hardness`` of the
enumerative solver (domains/p3/enumerate.py) for several budgets and weights. Per scoring:
standard deviation, distinct values, share of puzzles at the top score, and the share of
puzzle pairs the score orders (not tied): a MAP-Elites cell can only change hands between
puzzles the fitness tells apart. Writes experiments/results/p3_fitness_spread.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from datetime import date
from pathlib import Path

import numpy as np
from machine import cpu_flags, cpu_model, load_average, nproc

from domains.p3 import P3Domain
from domains.p3.enumerate import enumerate_solve, hardness
from domains.p3.heldout import load_puzzles
from evo.domain import EvalContext
from evo.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = (500, 2000, 10000)
WEIGHTS = (0.25, 0.5, 0.75)


def spread(scores: list[float]) -> dict:
    a = np.round(np.asarray(scores, dtype=float), 6)
    pairs = list(itertools.combinations(range(len(a)), 2))
    ordered = sum(a[i] != a[j] for i, j in pairs) / len(pairs) if pairs else 0.0
    return {"n": len(a), "mean": float(a.mean()), "sd": float(a.std()), "distinct": int(len(set(a))),
            "top_share": float((a == a.max()).mean()), "ordered_pairs": float(ordered)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=3)
    ap.add_argument("--solve-tokens", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None, help="first N train families (seeded order)")
    ap.add_argument("--no-generator", action="store_true",
                    help="skip the model: take the old fitness as 1.0 everywhere (what the 135M model scores)")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results"))
    args = ap.parse_args()
    t0 = time.time()
    puzzles = load_puzzles(split="train", limit=args.limit)
    domain = P3Domain(solve_attempts=args.attempts, solve_max_tokens=args.solve_tokens, search_weight=0.0)
    with Sandbox() as sandbox:
        if args.no_generator:
            old = [1.0] * len(puzzles)
        else:
            from evo.llm import load_generator

            llm = load_generator("transformers", "smollm2-135m", batch_size=32)
            old = [s.fitness for s in domain.score(puzzles, EvalContext(llm, sandbox, seed=0))]
        t_gen = time.time() - t0
        search, t_search = {}, {}
        for b in BUDGETS:
            t = time.time()
            search[b] = enumerate_solve(puzzles, sandbox, b)
            t_search[b] = time.time() - t
    rows = {"old (generator only)": spread(old)}
    for b in BUDGETS:
        h = [hardness(r, b) for r in search[b]]
        rows[f"search only, budget {b}"] = spread(h)
        for w in WEIGHTS:
            rows[f"w={w}, budget {b}"] = spread([(1 - w) * o + w * x for o, x in zip(old, h)])
    per_puzzle = [{"name": p["name"], "ans_type": p["ans_type"], "old": o,
                   **{f"steps@{b}": search[b][i].steps for b in BUDGETS},
                   **{f"stop@{b}": search[b][i].stop for b in BUDGETS}}
                  for i, (p, o) in enumerate(zip(puzzles, old))]
    machine = f"{nproc()} cores, {cpu_model()}, flags: {cpu_flags()}; load average {load_average()}"
    res = {"date": date.today().isoformat(), "machine": machine, "args": vars(args),
           "generator_s": t_gen, "search_s": t_search, "spread": rows, "puzzles": per_puzzle}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "p3_fitness_spread.json").write_text(json.dumps(res, indent=1))
    cmd = "python experiments/p3_fitness_spread.py" + (f" --attempts {args.attempts}" if not args.no_generator
                                                       else " --no-generator")
    lines = ["# P3 fitness: how much it tells puzzles apart", "",
             f"Machine: {machine}. Date: {res['date']}. Command: `{cmd}`"
             + (f" --limit {args.limit}" if args.limit else "") + ".", "",
             f"{len(puzzles)} puzzles, one per P3 train family. Old fitness: share of {args.attempts} solve "
             "attempts by smollm2-135m that fail" + (" (not run: taken as 1.0)" if args.no_generator else "")
             + f" ({t_gen:.0f} s). Search: enumerative solver, steps to the first answer "
             f"({', '.join(f'budget {b}: {t_search[b]:.1f} s' for b in BUDGETS)}).", "",
             "| fitness | mean | sd | distinct values | share at the top | ordered pairs |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {r['mean']:.3f} | {r['sd']:.3f} | {r['distinct']} | {r['top_share']:.0%} "
              f"| {r['ordered_pairs']:.0%} |" for k, r in rows.items()]
    (out / "p3_fitness_spread.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
