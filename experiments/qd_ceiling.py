"""The most QD any arm could have gained in a measure space: the union of every run's archive.

Usage:
    python experiments/qd_ceiling.py --runs runs/compare/text_feedback runs/compare/text_feedback_mutation ...

Every finished compare run under ``--runs`` (listed in its ``compare_<name>.json``) must share
one measure space (the same seeds give the same PCA; checked). The union archive holds every
cell any run's strategy offered an item to, each with the fittest item any run found there.
Its QD gained over the seeds is an empirical ceiling: a strategy that found everything all the
runs together found, thousands of samples, would gain that much at this resolution. When the
best baseline already gains most of it, no search can beat that baseline by much in this
space, and a goal such as "1.5x the best baseline" is out of reach by construction.

Writes experiments/results/qd_ceiling_<name>.md (name: ``--out``, default the first folder's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
from machine import cpu_flags, cpu_model

from evo.campaign import MEASURES_FILE

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("plain", "best_of_n", "novelty")


def best_per_cell(run: Path, seeds_only: bool = False) -> dict[int, float]:
    """Cell -> the fittest item the run's strategy offered to its archive there."""
    db = sqlite3.connect(f"file:{run / 'campaign.sqlite'}?mode=ro", uri=True)
    rows = db.execute("SELECT cell, fitness FROM candidates WHERE verdict = 'valid' AND cell IS NOT NULL "
                      "AND COALESCE(add_status, 0) >= 0" + (" AND is_seed = 1" if seeds_only else "")).fetchall()
    db.close()
    best: dict[int, float] = {}
    for cell, fitness in rows:
        best[cell] = max(best.get(cell, float("-inf")), fitness)
    return best


def finished_runs(folder: Path, results: Path) -> list[Path]:
    listed = results / f"compare_{folder.name}.json"
    if not listed.is_file():
        raise SystemExit(f"no compare results file {listed}")
    done = {f"{r['arm']}-{r['seed']}" for r in json.loads(listed.read_text())}
    return sorted(p for p in folder.iterdir() if p.name in done and (p / "campaign.sqlite").is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True, help="compare run folders (runs/compare/<name>)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results"),
                    help="where compare.py's results files are, and where this writes")
    args = ap.parse_args()
    results = Path(args.results)
    runs = [r for folder in map(Path, args.runs) for r in finished_runs(folder, results)]
    if not runs:
        raise SystemExit("no finished compare runs")
    spaces = {hashlib.sha256((r / MEASURES_FILE).read_bytes()).hexdigest() for r in runs}
    if len(spaces) > 1:
        raise SystemExit(f"the runs use {len(spaces)} different measure spaces; a union needs one")
    union: dict[int, float] = {}
    gains: dict[str, list[float]] = defaultdict(list)
    seed_qd = sum(best_per_cell(runs[0], seeds_only=True).values())  # every arm starts from these
    for run in runs:
        cells = best_per_cell(run)
        for c, f in cells.items():
            union[c] = max(union.get(c, float("-inf")), f)
        gains[f"{run.parent.name}: {run.name.rpartition('-')[0]}"].append(sum(cells.values()) - seed_qd)
    ceiling = sum(union.values()) - seed_qd
    best_name, best_gain = max(((k, np.mean(v)) for k, v in gains.items() if k.rpartition(": ")[2] in BASELINES),
                               key=lambda kv: kv[1], default=("none", float("nan")))
    name = args.out or Path(args.runs[0]).name
    lines = [f"# The QD ceiling of one measure space: {name}", "",
             f"Machine: {cpu_model()}, flags: {cpu_flags()}. Date: {date.today().isoformat()}.", "",
             f"Command: `python experiments/qd_ceiling.py --runs {' '.join(args.runs)}`", "",
             f"{len(runs)} finished runs, one measure space. The union archive (every cell any run reached, "
             f"with the fittest item any run found there) holds {len(union)} cells and gains "
             f"**{ceiling:.2f}** QD over the seeds (QD {seed_qd:.2f}). The best baseline, {best_name}, "
             f"gains {best_gain:.2f} on average: the ceiling is **{ceiling / best_gain:.2f}x** it.", "",
             "| variant: arm | runs | mean QD gained | share of the ceiling |", "|---|---|---|---|"]
    for k in sorted(gains):
        lines.append(f"| {k} | {len(gains[k])} | {np.mean(gains[k]):.2f} | {np.mean(gains[k]) / ceiling:.0%} |")
    out = results / f"qd_ceiling_{name}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
