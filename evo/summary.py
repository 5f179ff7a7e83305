"""The numbers of a campaign after (or during) a run: `evo status`, the report and the loop's
last line all show these. Apart from the loop so that readers need not import it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archives import Archive, CampaignStore

__all__ = ["summarize", "summary_rows"]


def summarize(store: CampaignStore, archive: Archive, directory: Path, wall_s: float | None = None) -> dict[str, Any]:
    """The numbers a user wants after a run (also what ``evo status`` prints)."""
    counts = store.counts()
    total = sum(counts.values())
    elites = archive.elites()
    seed_ids = {c.id for c in store.candidates("is_seed = 1")}
    iters = store.iterations()
    return {
        **archive.stats(),
        "evolved_elites": sum(e["candidate_id"] not in seed_ids for e in elites),
        "iterations": iters[-1]["iteration"] if iters else 0,
        "candidates": total,
        "valid": counts.get("valid", 0),
        "valid_rate": counts.get("valid", 0) / total if total else 0.0,
        "verdicts": counts,
        "border": sum(i["border"] for i in iters),
        "wall_s": wall_s if wall_s is not None else sum(i["wall_s"] for i in iters),
        "directory": str(directory),
        "sandbox": store.get_meta("sandbox"),
    }


def summary_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary's numbers as (label, text) rows: the CLI table and the HTML report
    both show these."""
    return [
        ("elites", f"{s['num_elites']} ({s['evolved_elites']} evolved, the rest seeds)"),
        ("coverage", f"{s['coverage']:.1%}"),
        ("QD-score", f"{s['qd_score']:.2f}"),
        ("max fitness", f"{s['obj_max']:.3f}"),
        ("mean elite fitness", f"{s['obj_mean']:.3f}"),
        ("valid rate", f"{s['valid_rate']:.1%} ({s['valid']}/{s['candidates']} generated)"),
        ("verdicts", ", ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items())) or "-"),
        ("on border", str(s["border"])),
        ("wall time", f"{s['wall_s']:.1f} s"),
        *([("sandbox", s["sandbox"])] if s.get("sandbox") else []),
    ]
