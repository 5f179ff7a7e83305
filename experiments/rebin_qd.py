"""How the comparison depends on archive resolution: each finished compare run's offered items
re-binned into finer grids over the same PCA measure space, post hoc.

Usage:
    python experiments/rebin_qd.py [--runs runs/compare/text_feedback] [--dims 10 20 40]

A grid archive keeps the fittest offered item per cell, so the archive at another resolution is
a function of the items a run offered (order does not matter). What this does *not* replay is
the run itself: MAP-Elites chose its parents from the 10x10 archive it had. So a row here says
how much of an arm's data a finer archive would hold, not how the arm would have searched with
one. The run's own resolution is the primary measure; this is the sensitivity check.

Writes experiments/results/rebin_<domain>.{json,md} (domain: the runs folder's name).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_flags, cpu_model
from stats import paired_test

from archives import Archive, Measures
from evo.heldout import bootstrap_ci

ROOT = Path(__file__).resolve().parents[1]


def qd_at(measures: np.ndarray, fitness: np.ndarray, ranges: np.ndarray, dims: int) -> tuple[float, int]:
    """QD-score and filled cells of a ``dims`` x ``dims`` archive over ``ranges`` holding these
    items: the project's own grid archive, so binning and edge clipping are pyribs'."""
    archive = Archive(Measures("pca", ranges), [dims] * len(ranges))
    archive.add(["{}"] * len(fitness), list(fitness), measures, list(range(len(fitness))))
    stats = archive.stats()
    return stats["qd_score"], stats["num_elites"]


def run_rows(run: Path, dims: list[int]) -> dict[int | str, dict[str, Any]]:
    """QD gained and cells per resolution (keys: the dims), and where children landed ("spread")."""
    ranges = Measures.load(run / "measures.npz")
    if ranges.kind != "pca":
        raise SystemExit(f"{run}: only grid (pca) archives can be re-binned")
    db = sqlite3.connect(f"file:{run / 'campaign.sqlite'}?mode=ro", uri=True)
    valid = db.execute("SELECT id, is_seed, parents, measures, cell, fitness, COALESCE(add_status, 0) >= 0 "
                       "FROM candidates WHERE verdict = 'valid' AND measures IS NOT NULL").fetchall()
    db.close()
    seed = np.array([r[1] for r in valid], dtype=bool)
    offered = np.array([r[6] for r in valid], dtype=bool)  # what the strategy let into its archive
    m = np.array([json.loads(r[3]) for r in valid], dtype=np.float64).reshape(-1, ranges.dim)
    f = np.array([r[5] for r in valid], dtype=np.float64)
    seed_ids = {r[0] for r in valid if r[1]}
    parents = [p for r in valid if not r[1] for p in json.loads(r[2])]
    out: dict[int | str, dict[str, Any]] = {"spread": {
        "child_std": m[~seed].std(axis=0).round(3).tolist() if (~seed).any() else [],
        "seed_std": m[seed].std(axis=0).round(3).tolist() if seed.any() else [],
        "parent_seed_share": float(np.mean([p in seed_ids for p in parents])) if parents else 0.0,
        "child_cells": len({r[4] for r in valid if not r[1]})}}
    for d in dims:
        q_all, c_all = qd_at(m[offered], f[offered], ranges.ranges, d)
        q_seed, _ = qd_at(m[offered & seed], f[offered & seed], ranges.ranges, d)
        out[d] = {"gain": q_all - q_seed, "cells": c_all}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "compare" / "text_feedback"))
    ap.add_argument("--dims", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--baseline", default="best_of_n")
    ap.add_argument("--compare", help="compare.py's results file: only the runs it lists as finished "
                                      "(default: experiments/results/compare_<runs folder name>.json)")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results"))
    args = ap.parse_args()
    runs = Path(args.runs)
    listed = Path(args.compare or ROOT / "experiments" / "results" / f"compare_{runs.name}.json")
    if not listed.is_file():
        raise SystemExit(f"no compare results file {listed}")
    finished = {f"{r['arm']}-{r['seed']}" for r in json.loads(listed.read_text())}  # a live run is not in it
    found = sorted(p for p in runs.iterdir() if p.name in finished and (p / "campaign.sqlite").is_file())
    if not found:
        raise SystemExit(f"no finished compare runs under {runs}")
    by: dict[str, dict[int, dict[int, dict[str, float]]]] = defaultdict(dict)  # arm -> seed -> dims -> row
    for p in found:
        arm, _, seed = p.name.rpartition("-")
        by[arm][int(seed)] = run_rows(p, args.dims)
    res = {"date": date.today().isoformat(), "machine": f"{cpu_model()}, flags: {cpu_flags()}",
           "runs": str(runs), "dims": args.dims, "arms": {a: {str(s): v for s, v in d.items()} for a, d in by.items()}}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    name = runs.name
    (out / f"rebin_{name}.json").write_text(json.dumps(res, indent=1))
    base = by.get(args.baseline, {})
    lines = [f"# Archive resolution, post hoc: {name}", "",
             f"Date: {res['date']}. Command: `python experiments/rebin_qd.py --runs {args.runs} --dims "
             f"{' '.join(map(str, args.dims))}`.", "",
             "Every finished run's offered items re-binned into a d x d grid over the run's own PCA bounds; "
             "QD gained over the seeds at that resolution. The runs searched with their own 10x10 archive; "
             "this does not replay them. Mean [95% bootstrap interval over seeds]; x: mean gain over the "
             f"{args.baseline} mean; paired sign-flip p over shared seeds.", "",
             "| arm | seeds | " + " | ".join(f"{d}x{d} gain | x | cells | p" for d in args.dims) + " |",
             "|---|---|" + "---|---|---|---|" * len(args.dims)]
    for arm in sorted(by):
        seeds = sorted(by[arm])
        cols = []
        for d in args.dims:
            g = [by[arm][s][d]["gain"] for s in seeds]
            lo, hi = bootstrap_ci(g)
            bmean = np.mean([v[d]["gain"] for v in base.values()]) if base else float("nan")
            shared = [s for s in seeds if s in base]
            p = paired_test([by[arm][s][d]["gain"] for s in shared], [base[s][d]["gain"] for s in shared]) \
                if shared and arm != args.baseline else None
            cols.append(f"{np.mean(g):.2f} [{lo:.2f}, {hi:.2f}] | {np.mean(g) / bmean:.2f} | "
                        f"{np.mean([by[arm][s][d]['cells'] for s in seeds]):.0f} | "
                        f"{'-' if not p else format(p['p_perm'], '.2f')}")
        lines.append(f"| {arm} | {len(seeds)} | " + " | ".join(cols) + " |")
    lines += ["", "Where the children landed (valid non-seed items, the run's own 10x10 archive): standard "
              "deviation of their measures per PCA axis beside the seeds', the share of parents that "
              "were seeds, and the cells the children fell in.", "",
              "| run | child std | seed std | parents that were seeds | child cells |", "|---|---|---|---|---|"]
    for arm in sorted(by):
        for sd in sorted(by[arm]):
            sp = by[arm][sd]["spread"]
            lines.append(f"| {arm}-{sd} | {sp['child_std']} | {sp['seed_std']} | "
                         f"{sp['parent_seed_share']:.0%} | {sp['child_cells']} |")
    (out / f"rebin_{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
