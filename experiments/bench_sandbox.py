"""Throughput of the sandbox on trivial programs, next to the naive baseline.

Isolated: `Sandbox.run_many` over warm workers (bwrap namespaces + rlimits + private uid,
one forked child per evaluation, full cleanup after each). Baseline: one fresh `python`
subprocess per program, the same number of programs in flight as there are workers.

    .venv/bin/python experiments/bench_sandbox.py [--n 1000] [--baseline-n 60] [--rounds 3]

Prints a markdown table and writes it to experiments/results/bench_sandbox.md.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import platform
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import cpu_model, load_average, nproc  # noqa: E402

from evo.sandbox import Sandbox, SandboxLimits  # noqa: E402

SOURCE = "def f(n):\n    return n * (n + 1) // 2\n"
EXPR = "f(100)"
RESULTS = Path(__file__).resolve().parent / "results" / "bench_sandbox.md"


def time_sandbox(sandbox: Sandbox, n: int) -> float:
    start = time.perf_counter()
    verdicts = sandbox.run_many([(SOURCE, EXPR)] * n)
    elapsed = time.perf_counter() - start
    assert all(v.ok and v.value == 5050 for v in verdicts), verdicts[0]
    return elapsed


def time_baseline(executor: ThreadPoolExecutor, n: int) -> float:
    program = SOURCE + f"print({EXPR})\n"

    def one(_: int) -> None:
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=30)
        assert done.returncode == 0 and done.stdout.strip() == b"5050"

    start = time.perf_counter()
    list(executor.map(one, range(n)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="sandboxed evaluations per round")
    parser.add_argument("--baseline-n", type=int, default=60, help="subprocesses per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    limits = SandboxLimits(workers=args.workers)
    load_before = load_average()
    logging.getLogger("evo.sandbox").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallback announces itself; expected here
        isolated_sb = Sandbox(limits)
        fallback_sb = Sandbox(limits, isolation="rlimits")
    spent = {"isolated": 0.0, "fallback": 0.0, "baseline": 0.0}
    with isolated_sb, fallback_sb, ThreadPoolExecutor(args.workers) as executor:
        time_sandbox(isolated_sb, 20 * args.workers)  # warm: workers started
        time_sandbox(fallback_sb, 20 * args.workers)
        time_baseline(executor, 2 * args.workers)
        for _ in range(args.rounds):  # interleaved, so that background load hits all three
            spent["isolated"] += time_sandbox(isolated_sb, args.n)
            spent["fallback"] += time_sandbox(fallback_sb, args.n)
            spent["baseline"] += time_baseline(executor, args.baseline_n)
        mode = isolated_sb.isolation
    isolated = args.rounds * args.n / spent["isolated"]
    fallback = args.rounds * args.n / spent["fallback"]
    baseline = args.rounds * args.baseline_n / spent["baseline"]
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    n_iso = args.rounds * args.n
    rows = [
        ("machine", f"`nproc` = {nproc()}, {cpu_model()}, Python {platform.python_version()}"),
        ("date", now),
        ("load average before / after (1, 5, 15 min)", f"{load_before}; {load_average()}"),
        (
            "workload",
            f"`def f(n): return n * (n + 1) // 2`, expr `{EXPR}`; "
            f"{args.workers} workers (baseline: {args.workers} threads)",
        ),
        (
            f"isolated evals/s ({mode}: namespaces + rlimits + private uid, n={n_iso})",
            f"{isolated:.0f}",
        ),
        (f"rlimits-only fallback evals/s (n={n_iso})", f"{fallback:.0f}"),
        (
            f"baseline evals/s (fresh `python -c` per program, n={args.rounds * args.baseline_n})",
            f"{baseline:.1f}",
        ),
        ("speedup isolated / baseline", f"{isolated / baseline:.1f}x"),
    ]
    table = "| metric | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    text = "# Sandbox throughput (experiments/bench_sandbox.py)\n\n" + table
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
