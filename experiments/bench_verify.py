"""Verifier throughput with the plain-data boundary: P3 puzzles and code_tests items per
second through the domains' own ``verify`` (two sandbox evaluations per solution).

    .venv/bin/python experiments/bench_verify.py [--p3 200] [--rounds 3]

P3: the first ``--p3`` real puzzles of the P3 release (its first solution, parsed as a
candidate); code_tests: the shipped seeds (each: reference, stub and up to 8 mutants).
Prints a markdown table and writes it to experiments/results/bench_verify.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from machine import cpu_flags, cpu_model, load_average, nproc  # noqa: E402

from domains.code_tests import CodeTestsDomain  # noqa: E402
from domains.p3 import P3Domain, parse_puzzle  # noqa: E402
from evo.sandbox import Sandbox  # noqa: E402

P3_DATA = ROOT.parent / "shared" / "data" / "p3" / "puzzles.json"


def p3_items(n: int) -> list[dict]:
    items = []
    for p in json.loads(P3_DATA.read_text()):
        if not p["sol_bodies"]:
            continue
        f = p["sat"].replace("def sat(", "def f(", 1)
        g = p["sol_header"].replace("def sol(", "def g(", 1) + "\n" + p["sol_bodies"][0]
        try:
            items.append(parse_puzzle(f + "\n\n" + g))
        except ValueError:
            continue
        if len(items) == n:
            break
    return items


def timed(fn, rounds: int) -> tuple[float, list]:
    times, out = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--p3", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    p3, ct = P3Domain(), CodeTestsDomain(solve_attempts=0)
    puzzles, seeds = p3_items(args.p3), ct.seeds()
    with Sandbox() as sandbox:
        p3_s, p3_v = timed(lambda: p3.verify(puzzles, sandbox), args.rounds)
        ct_s, ct_v = timed(lambda: ct.verify(seeds, sandbox), args.rounds)
        isolation, workers = sandbox.isolation, sandbox.limits.workers
    rows = [("p3 (real puzzles)", len(puzzles), sum(v.valid for v in p3_v), p3_s),
            ("code_tests (seeds)", len(seeds), sum(v.valid for v in ct_v), ct_s)]
    lines = [f"# Verifier throughput ({datetime.date.today()})", "",
             f"machine: {cpu_model()}, {nproc()} cores, flags {cpu_flags()}, load {load_average()}; "
             f"sandbox {isolation}, {workers} workers; median of {args.rounds} rounds", "",
             "| domain | items | valid | seconds | items/s |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {n} | {valid} | {s:.2f} | {n / s:.1f} |" for name, n, valid, s in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "experiments" / "results" / "bench_verify.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
