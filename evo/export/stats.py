"""What the dataset card reports per split: counts, fitness distribution and diversity."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from evo.export.dedup import near_dedup

DISTINCT_THRESHOLD = 0.95  # cosine similarity above which two items count as one for "distinct"


def split_stats(records: list[dict[str, Any]], rows: list[int], items: list[Any],
                item_idx: list[int], emb: np.ndarray, domain: Any,
                total_cells: int | None) -> dict[str, Any]:
    """Counts of ``rows`` by domain, task, operator and generator version; the fitness
    distribution; and the diversity of the split's distinct items (``item_idx``):
    archive coverage, mean pairwise embedding distance (1 - cosine), distinct items after
    exact and near (cosine > 0.95) dedup."""
    part = [records[i] for i in rows]
    count = {col: dict(sorted(Counter(str(r[col]) for r in part if col in r).items()))
             for col in ("task", "operator", "generator_version", "label", "rejected_verdict")}
    count = {k: v for k, v in count.items() if v}
    fitness = [r.get("fitness", r.get("chosen_fitness")) for r in part]
    fitness = np.array([f for f in fitness if f is not None], dtype=float)
    out: dict[str, Any] = {"rows": len(part), "by_domain": {domain.name: len(part)}, **{
        f"by_{k}": v for k, v in count.items()}}
    if len(fitness):
        q = np.quantile(fitness, [0, 0.25, 0.5, 0.75, 1])
        hist, edges = np.histogram(fitness, bins=5, range=(min(0.0, q[0]), max(1.0, q[-1])))
        out["fitness"] = {"mean": float(fitness.mean()), "quantiles": [float(x) for x in q],
                          "histogram": {f"{a:.2f}-{b:.2f}": int(n)
                                        for a, b, n in zip(edges[:-1], edges[1:], hist)}}
    its = [items[i] for i in item_idx]
    e = emb[item_idx] if len(item_idx) else emb[:0]
    cells = {c.cell for c in its if getattr(c, "cell", None) is not None}
    div: dict[str, Any] = {"items": len(its), "cells": len(cells)}
    if total_cells:
        div["coverage"] = len(cells) / total_cells
    if len(e) > 1:
        n, total = len(e), e.sum(axis=0)  # unit rows: the pairwise cosines sum to |sum|^2 - n
        div["mean_pairwise_distance"] = float(1 - (total @ total - n) / (n * (n - 1)))
    keys = {domain.key(c.item) for c in its if getattr(c, "item", None)}
    div["distinct_exact"] = len(keys)
    div["distinct_near"] = len(near_dedup(e, DISTINCT_THRESHOLD)) if len(e) else 0
    out["diversity"] = div
    return out
