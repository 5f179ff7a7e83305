"""`make demo` on a fresh clone, install included: what a newcomer waits for.

Usage: python experiments/bench_fresh_demo.py [--kind avx2|native] [--no-pip-cache] [--fresh-model-cache]
                                              [--results experiments/results/bench_fresh_demo.md]

Clones this repository's HEAD into a temporary folder (with ``../shared`` linked beside it,
as CI has it), runs ``make demo`` there and times it: the install (``make install``) and the
campaign separately. ``--kind avx2`` caps the ISA as experiments/bench_generation.py does
(an AVX2 machine without bf16, emulated); ``--no-pip-cache`` sets ``PIP_NO_CACHE_DIR=1`` so
every wheel is downloaded again, as on a fresh machine; ``--fresh-model-cache`` points
``EVO_CACHE_DIR`` at an empty folder, so the demo assembles, checks and de-quantises its model
as a first run does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from bench_generation import FLAGS, KINDS  # noqa: E402


def _timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("a") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=sorted(KINDS), default="avx2")
    ap.add_argument("--no-pip-cache", action="store_true")
    ap.add_argument("--fresh-model-cache", action="store_true")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "bench_fresh_demo.md"))
    args = ap.parse_args()

    from machine import cpu_flag_line, cpu_model, load_average

    env = {**os.environ, **KINDS[args.kind]}
    if args.no_pip_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="evo-fresh-") as tmp:
        work = Path(tmp)
        repo = work / "main"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
        shared = ROOT.parent / "shared"
        if shared.exists():
            (work / "shared").symlink_to(shared)
        log = work / "demo.log"
        if args.fresh_model_cache:
            env["EVO_CACHE_DIR"] = str(work / "model-cache")
        before = load_average()
        install_s = _timed(["make", "install"], repo, env, log)
        demo_s = _timed(["make", "demo"], repo, env, log)  # the venv is there: the campaign alone
        summary = [line for line in log.read_text().splitlines() if any(k in line for k in ("elites", "valid rate", "QD-score", "wall time"))]
        after = load_average()
    flag_line = cpu_flag_line(FLAGS)
    text = "\n".join([
        "# `make demo` on a fresh clone, install included\n",
        f"`python experiments/bench_fresh_demo.py --kind {args.kind}"
        f"{' --no-pip-cache' if args.no_pip_cache else ''}{' --fresh-model-cache' if args.fresh_model_cache else ''}`\n",
        "| measure | value |", "|---|---|",
        f"| date | {date.today().isoformat()} |",
        f"| commit | {head} |",
        f"| machine | {len(os.sched_getaffinity(0))} cores, {cpu_model()}; {flag_line} |",
        f"| kind | {args.kind} ({', '.join(f'{k}={v}' for k, v in KINDS[args.kind].items()) or 'every ISA'}) |",
        f"| pip cache | {'off (every wheel downloaded)' if args.no_pip_cache else 'as this machine has it'} |",
        f"| model cache | {'empty (the model is assembled, checked and de-quantised)' if args.fresh_model_cache else 'as this machine has it'} |",
        f"| load average before / after | {before}; {after} |",
        f"| install (`make install`) | {install_s:.0f} s |",
        f"| campaign (`make demo` with the venv in place) | {demo_s:.0f} s |",
        f"| **total** | **{(install_s + demo_s) / 60:.1f} min** |",
        "", "Campaign summary lines:", "",
        *[f"    {line.strip()}" for line in summary],
    ]) + "\n"
    Path(args.results).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
