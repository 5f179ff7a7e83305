"""What a parent yields: the fate of children by operator and by whether their parents were seeds.

Usage:
    python experiments/parent_yield.py [--runs runs/compare/p3_2048] [--out NAME]

Plain sampling always shows the model seeds; MAP-Elites shows it elites, which after a while
are mostly evolved items. Where MAP-Elites loses on QD-score at equal samples, this says
whether it is because evolved parents make worse prompts: for every non-seed child in every
run under ``--runs`` (folders ``ARM-SEED``, as ``compare.py`` writes them), pooled per arm,
operator and parent kind (*seeds*: every parent a seed; *evolved*: at least one evolved
parent), the share of children that were valid, that were rejected as copies of a parent, a
seed or a sibling, and that opened an archive cell. Writes
experiments/results/parent_yield_<NAME>.md (NAME: the runs folder's name unless ``--out``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

from machine import cpu_flags, cpu_model
from ribs.archives import AddStatus  # the add_status the campaign stores is pyribs' own

from archives import CampaignStore

ROOT = Path(__file__).resolve().parents[1]


def fates(run: Path) -> dict[tuple[str, str], list[tuple[bool, bool, bool]]]:
    """(operator, parent kind) -> [(valid, duplicate, opened a cell)] for one run's children."""
    store = CampaignStore.open(run)
    try:
        cands = list(store.candidates())
    finally:
        store.close()
    seeds = {c.id for c in cands if c.is_seed}
    out: dict[tuple[str, str], list] = defaultdict(list)
    for c in cands:
        if c.is_seed:
            continue
        kind = "seeds" if all(p in seeds for p in c.parents) else "evolved"
        out[c.operator, kind].append((c.verdict == "valid", c.verdict == "duplicate", c.add_status == AddStatus.NEW))
    return out


def report(runs_dir: Path, name: str) -> str:
    runs = sorted(p for p in runs_dir.iterdir() if (p / "campaign.sqlite").exists())
    if not runs:
        print(f"parent_yield: no campaign under {runs_dir}", file=sys.stderr)
        raise SystemExit(2)
    pooled: dict[tuple[str, str, str], list] = defaultdict(list)
    for run in runs:
        arm = run.name.rsplit("-", 1)[0]
        for (op, kind), rows in fates(run).items():
            pooled[arm, op, kind] += rows
    lines = [f"# What a parent yields: {name}", "",
             f"Runs: {', '.join(r.name for r in runs)}. Machine: {cpu_model()}, flags: {cpu_flags()}. "
             f"Date: {date.today().isoformat()}.", "",
             f"Command: `python experiments/parent_yield.py --runs {runs_dir}`", "",
             "Children pooled over seeds. *Parents*: seeds (every parent a seed) or evolved (at least "
             "one evolved parent). Valid, copy (rejected as a copy of a parent, a seed or a sibling) "
             "and opened a cell are shares of all children in the row.", "",
             "| arm | operator | parents | children | valid | copy | opened a cell |",
             "|---|---|---|---|---|---|---|"]
    for (arm, op, kind), rows in sorted(pooled.items()):
        valid, dup, new = (sum(x) / len(rows) for x in zip(*rows))
        lines.append(f"| {arm} | {op} | {kind} | {len(rows)} | {valid:.1%} | {dup:.1%} | {new:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="runs/compare/p3_2048")
    ap.add_argument("--out", default=None)
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results"))
    args = ap.parse_args()
    name = args.out or Path(args.runs).name
    text = report(Path(args.runs), name)
    (Path(args.results) / f"parent_yield_{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
