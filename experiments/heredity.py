"""Heredity per operator: how much a child's place in measure space follows its parents'.

Usage:
    python experiments/heredity.py [--runs runs/compare/text_feedback] [--out NAME]

MAP-Elites can only push into empty cells if children land near their parents: selection picks
a parent on the frontier, and the child must inherit some of that position. For every valid
non-seed child in every run under ``--runs``, this regresses the child's measures on its
parents' (the mean of its parents' for ``lmx``/``scratch``, the one parent for ``mutation``),
per axis, pooled over runs, and reports the slope (1: the child sits where its parent is; 0: it
lands wherever the model's typical output is), the spread of the children's measures against
the seeds', the share of children that opened a new cell, and the share that landed beyond
the seeds (outside their bounding box on some axis: the grid's bounds are the seeds' range
plus a margin, so a lineage must get there to reach cells no seed's children reach). Mutation rows are also split by
the instruction in their prompt. Writes experiments/results/heredity_<NAME>.md (NAME: the runs
folder's name unless ``--out``).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
from machine import cpu_flags, cpu_model
from ribs.archives import AddStatus  # the add_status the campaign stores is pyribs' own

from archives import CampaignStore

ROOT = Path(__file__).resolve().parents[1]


def pairs_of(run: Path) -> tuple[dict[str, list], np.ndarray]:
    """(group -> [(parent position, child position, opened a cell, beyond the seeds)], the seeds'
    positions)."""
    store = CampaignStore.open(run)
    try:
        valid = [c for c in store.candidates("verdict = 'valid' AND measures IS NOT NULL")]
    finally:
        store.close()
    where = {c.id: np.asarray(c.measures, dtype=float) for c in valid}
    seeds = np.array([where[c.id] for c in valid if c.is_seed])
    groups: dict[str, list] = defaultdict(list)
    lo, hi = seeds.min(axis=0), seeds.max(axis=0)
    for c in valid:
        parents = [where[p] for p in c.parents if p in where]
        if c.is_seed or not parents:
            continue
        # mutation and continuation children descend from their first parent; lmx mixes all
        at = parents[0] if c.operator in ("mutation", "continuation") else np.mean(parents, axis=0)
        row = (at, where[c.id], c.add_status == AddStatus.NEW, bool(((where[c.id] < lo) | (where[c.id] > hi)).any()))
        groups[c.operator].append(row)
        if c.operator == "mutation":
            instruction = (c.prompt or "").rsplit("# Below: ", 1)[-1].split(".\n", 1)[0]
            groups[f"mutation: {instruction}"].append(row)
    return groups, seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="runs/compare/text_feedback")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    runs = sorted(p for p in Path(args.runs).iterdir() if (p / "campaign.sqlite").exists())
    pooled: dict[str, list] = defaultdict(list)
    seed_spread = []
    for run in runs:
        groups, seeds = pairs_of(run)
        seed_spread.append(seeds.std(axis=0).mean())
        for k, rows in groups.items():
            pooled[k] += rows
    name = args.out or Path(args.runs).name
    lines = [f"# Heredity per operator: {name}", "",
             f"Runs: {', '.join(r.name for r in runs)}. Machine: {cpu_model()}, flags: {cpu_flags()}. "
             f"Date: {date.today().isoformat()}.", "",
             f"Command: `python experiments/heredity.py --runs {args.runs}`", "",
             f"Seeds' spread (std of measures, mean over axes): {np.mean(seed_spread):.3f}.", "",
             "| operator | children | slope per axis (child on parent) | children's spread | opened a cell "
             "| beyond the seeds |",
             "|---|---|---|---|---|---|"]
    for k in sorted(pooled):
        at, child, new, beyond = (np.array(x) for x in zip(*pooled[k]))
        slopes = [np.polyfit(at[:, d], child[:, d], 1)[0] if at[:, d].std() > 0 else float("nan")
                  for d in range(at.shape[1])]
        lines.append(f"| {k} | {len(new)} | {', '.join(f'{s:.2f}' for s in slopes)} "
                     f"| {child.std(axis=0).mean():.3f} | {new.mean():.1%} | {beyond.mean():.1%} |")
    out = ROOT / "experiments" / "results" / f"heredity_{name}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
