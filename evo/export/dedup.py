"""Duplicate removal and a leak-free split for exported datasets.

Exact duplicates share the domain's normalised key; near-duplicates have embeddings
(unit-norm rows) with cosine similarity above a threshold. The split assigns whole
near-duplicate groups to one side, so a test item never has a twin in train.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from archives import Candidate


def exact_dedup(cands: list[Candidate], key: Callable[[dict], str]) -> tuple[list[Candidate], int]:
    """Keeps the first candidate of each normalised key; returns (kept, removed count)."""
    seen: set[str] = set()
    kept = []
    for c in cands:
        k = key(c.item)
        if k not in seen:
            seen.add(k)
            kept.append(c)
    return kept, len(cands) - len(kept)


def near_dedup(emb: np.ndarray, threshold: float) -> list[int]:
    """Greedy, in order: keeps an item unless its cosine similarity to an item already
    kept exceeds ``threshold``. ``emb`` rows are unit-norm. Returns the kept indices."""
    kept: list[int] = []
    mat = np.empty_like(emb)
    for i, e in enumerate(emb):
        if kept and float((mat[:len(kept)] @ e).max()) > threshold:
            continue
        mat[len(kept)] = e
        kept.append(i)
    return kept


def near_groups(emb: np.ndarray, threshold: float, block: int = 1024) -> np.ndarray:
    """Connected components of the graph "cosine similarity > threshold": a label per item."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, rows, cols = len(emb), [], []
    for start in range(0, n, block):
        r, c = np.nonzero(emb[start:start + block] @ emb.T > threshold)
        rows.append(r + start)
        cols.append(c)
    r, c = np.concatenate(rows or [[]]).astype(int), np.concatenate(cols or [[]]).astype(int)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def assign_split(groups: np.ndarray, train_share: float, rng: np.random.Generator) -> np.ndarray:
    """True for test items: whole groups, in a seeded random order, go to test while they
    fit its target size (the rest of the items go to train)."""
    labels, sizes = np.unique(groups, return_counts=True)
    target = round(len(groups) * (1 - train_share))
    test, room = set(), target
    for i in rng.permutation(len(labels)):
        if sizes[i] <= room:
            test.add(labels[i])
            room -= sizes[i]
    return np.isin(groups, list(test))


def per_cell_cap(cands: list[Candidate], n: int | None) -> list[int]:
    """Indices of the first ``n`` candidates of each archive cell (all when n is None)."""
    counts: dict[int | None, int] = {}
    keep = []
    for i, c in enumerate(cands):
        if n is None or counts.get(c.cell, 0) < n:
            counts[c.cell] = counts.get(c.cell, 0) + 1
            keep.append(i)
    return keep
