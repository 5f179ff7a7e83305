"""Two measure spaces for text_feedback other than the seeds' PCA grid, checked post hoc.

Usage:
    python experiments/measure_alternatives.py [--runs runs/compare/text_feedback_continuation]
        [--calibration runs/compare/text_feedback/best_of_n-0]

1. *Bounds fitted to the generator's outputs*: PCA and grid bounds fitted on the seeds plus
   the first iterations (``--calibration-iterations``) of another run's valid items, instead
   of the seeds alone. Every finished run's offered items are re-embedded and re-binned into
   that space. Post hoc: the runs searched with their own archive.
2. *AI-feedback measures, as in QDAIF*: the generator's P(Yes) to attribute questions (happy,
   sad, funny...), over the seeds and a sample of one run's children. A measure is only
   worth a grid axis if it spreads items apart.

Writes experiments/results/measure_alternatives_<runs folder name>.md.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
from machine import cpu_flags, cpu_model
from rebin_qd import qd_at

from archives import Measures
from domains.text_feedback import TextFeedbackDomain, yes_probability
from domains.text_feedback.judge import fence_text
from evo.descriptor import Embedder
from evo.llm import load_generator

ROOT = Path(__file__).resolve().parents[1]
ATTRIBUTES = {name: f'Text: "{{text}}"\nQuestion: {q} Answer Yes or No.\nAnswer:' for name, q in {
    "happy ending": "Does this story have a happy ending?", "sad": "Is this story sad?",
    "horror": "Is this a horror story?", "romance": "Is this a romance story?",
    "funny": "Is this story funny?", "about animals": "Is this story about animals?"}.items()}


def valid_items(run: Path, where: str = "1") -> list[tuple]:
    """(is_seed, text, fitness, offered to the archive) of the run's valid items, in id order."""
    db = sqlite3.connect(f"file:{run / 'campaign.sqlite'}?mode=ro", uri=True)
    rows = db.execute("SELECT is_seed, item, fitness, COALESCE(add_status, 0) >= 0 FROM candidates "
                      f"WHERE verdict = 'valid' AND {where} ORDER BY id").fetchall()
    db.close()
    return [(bool(s), json.loads(item)["text"], f, bool(o)) for s, item, f, o in rows]


def refit_rows(runs: list[Path], calibration: Path, iterations: int, embedder: Embedder) -> list[str]:
    cal = valid_items(calibration, f"iteration BETWEEN 0 AND {iterations}")
    space = Measures.fit_pca(embedder.embed([t for _, t, _, _ in cal]), 2, 0.1)
    lines = [f"## 1. Bounds fitted to the generator's outputs ({len(cal)} items: the seeds and iterations "
             f"1-{iterations} of {calibration.name})", "",
             "| run | QD gained, 10x10 | cells | QD gained, 20x20 | cells |", "|---|---|---|---|---|"]
    for run in runs:
        items = valid_items(run)
        m = space.transform(embedder.embed([t for _, t, _, _ in items]))
        seed = np.array([i[0] for i in items])
        offered = np.array([i[3] for i in items])
        fit = np.array([i[2] for i in items])
        cols = []
        for d in (10, 20):
            q, cells = qd_at(m[offered], fit[offered], space.ranges, d)
            q0, _ = qd_at(m[offered & seed], fit[offered & seed], space.ranges, d)
            cols.append(f"{q - q0:.2f} | {cells}")
        lines.append(f"| {run.name} | {' | '.join(cols)} |")
    return lines


def attribute_rows(children_of: Path, n: int) -> list[str]:
    judge = load_generator("transformers", "smollm2-135m", batch_size=16, device="cpu", dtype="auto")
    seeds = [s["text"] for s in TextFeedbackDomain().seeds()]
    kids = [t for s, t, _, _ in valid_items(children_of) if not s]
    kids = kids[:: max(1, len(kids) // n)][:n]
    lines = [f"## 2. AI-feedback measures: the generator's P(Yes), {len(seeds)} seeds and {len(kids)} "
             f"children of {children_of.name}", "",
             "| question | seeds: mean, std, range | children: mean, std, range |", "|---|---|---|"]
    for name, template in ATTRIBUTES.items():
        cols = []
        for texts in (seeds, kids):
            p = np.array(yes_probability(judge, [template.replace("{text}", fence_text(t)) for t in texts]))
            cols.append(f"{p.mean():.3f}, {p.std():.3f}, [{p.min():.2f}, {p.max():.2f}]")
        lines.append(f"| {name} | {' | '.join(cols)} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "runs" / "compare" / "text_feedback_continuation"))
    ap.add_argument("--calibration", default=str(ROOT / "runs" / "compare" / "text_feedback" / "best_of_n-0"))
    ap.add_argument("--calibration-iterations", type=int, default=4)
    ap.add_argument("--children", type=int, default=40, help="children whose attributes are judged")
    args = ap.parse_args()
    import torch

    # one thread: beside a running campaign, two torch threads on two cores stalled for minutes
    torch.set_num_threads(1)
    runs = sorted(p for p in Path(args.runs).iterdir() if (p / "campaign.sqlite").is_file())
    if not runs:
        raise SystemExit(f"no runs under {args.runs}")
    lines = [f"# Other measure spaces, post hoc: {Path(args.runs).name}", "",
             f"Machine: {cpu_model()}, flags: {cpu_flags()}. Date: {date.today().isoformat()}.", "",
             f"Command: `python experiments/measure_alternatives.py --runs {args.runs} --calibration "
             f"{args.calibration}`", ""]
    lines += refit_rows(runs, Path(args.calibration), args.calibration_iterations, Embedder()) + [""]
    lines += attribute_rows(runs[0], args.children)
    out = ROOT / "experiments" / "results" / f"measure_alternatives_{Path(args.runs).name}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
