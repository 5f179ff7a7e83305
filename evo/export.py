"""Export a campaign as a fine-tuning dataset (JSONL, Parquet or a ``datasets.DatasetDict``).

Pipeline: select (archive elites, or every valid candidate with ``include_history``)
-> filter (seeds, ``min_fitness``) -> exact dedup (the domain's normalised ``key``)
-> near dedup (embedding cosine similarity above ``dedup``) -> up to ``per_cell`` per
cell -> optional re-verification in the sandbox -> a train/test split that keeps
near-duplicates on the same side -> write to a temp folder, renamed into place at the end.
Candidates are ranked best first (fitness, then age), so dedup and the per-cell cap keep
the best of each group.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from archives import Archive, CampaignStore, Candidate, Measures, rebuild_archive
from evo.domain import Domain, get_domain
from evo.errors import EvoError

FORMATS = ("jsonl", "parquet", "hf")
SPLIT_THRESHOLD = 0.95  # cosine similarity that makes two items "near-duplicates" for the split
Progress = Callable[[str, int, int], None]  # (phase, done, total)


def export_campaign(directory: str | Path, out: str | Path, *, format: str = "jsonl",
                    min_fitness: float | None = None, per_cell: int | None = None,
                    include_history: bool = False, split: float | None = None,
                    dedup: float | None = None, seed: int = 0, reverify: bool = False,
                    include_seeds: bool = True, force: bool = False,
                    split_threshold: float | None = None,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Writes the dataset to ``out`` (a folder) and returns the stats of every step."""
    from evo.export_card import write_dataset

    directory, out = Path(directory), Path(out)
    _check_args(directory, out, format, split, dedup, per_cell, split_threshold, force)
    progress = progress or (lambda *_: None)
    store = CampaignStore.open(directory)
    try:
        cfg = store.get_meta("config") or {}
        meta = {"campaign_id": store.get_meta("campaign_id"), "config": cfg}
        pool = _select(store, directory, cfg, include_history)
    finally:
        store.close()
    domain = get_domain(cfg.get("domain", "p3"), **cfg.get("domain_options", {}))
    stats: dict[str, Any] = {"source": "history" if include_history else "elites", "pool": len(pool)}

    cands = sorted(pool, key=lambda c: (-c.fitness, c.id))
    kept = [c for c in cands if include_seeds or not c.is_seed]
    stats["dropped_seeds"], cands = len(cands) - len(kept), kept
    kept = [c for c in cands if min_fitness is None or c.fitness >= min_fitness]
    stats["dropped_min_fitness"], cands = len(cands) - len(kept), kept
    cands, stats["removed_exact"] = exact_dedup(cands, domain.key)

    emb = None
    if dedup is not None or (split is not None and split < 1):
        emb = _embed(cfg, [domain.text(c.item) for c in cands], progress)
    stats["removed_near"] = 0
    if dedup is not None:
        keep = near_dedup(emb, dedup)
        stats["removed_near"] = len(cands) - len(keep)
        cands, emb = [cands[i] for i in keep], emb[keep]
    keep = _per_cell(cands, per_cell)
    stats["dropped_per_cell"] = len(cands) - len(keep)
    cands, emb = [cands[i] for i in keep], (None if emb is None else emb[keep])
    stats["removed_reverify"] = 0
    if reverify:
        ok = _reverify(domain, cfg, cands, progress)
        stats["removed_reverify"] = len(cands) - len(ok)
        cands, emb = [cands[i] for i in ok], (None if emb is None else emb[ok])
    if not cands:
        raise EvoError(f"nothing to export from {directory}: every one of the {len(pool)} "
                       "candidates was filtered out")

    names = np.zeros(len(cands), dtype=int)  # 0 train, 1 test
    if split is not None and split < 1:
        threshold = split_threshold or dedup or SPLIT_THRESHOLD
        groups = near_groups(emb, threshold)
        names = assign_split(groups, split, np.random.default_rng(seed)).astype(int)
        stats["split_groups"] = int(groups.max()) + 1
        stats["split_threshold"] = threshold
    split_names = ["train", "test"] if split is not None and split < 1 else ["train"]
    records = [to_record(domain, c) for c in cands]
    stats["exported"] = len(records)
    stats["splits"] = {n: int((names == i).sum()) for i, n in enumerate(split_names)}
    stats["cells"] = len({c.cell for c in cands})
    stats["seeds"] = sum(c.is_seed for c in cands)
    stats["format"], stats["out"] = format, str(out)
    command = export_command(directory, out, format=format, min_fitness=min_fitness,
                             per_cell=per_cell, include_history=include_history, split=split,
                             dedup=dedup, seed=seed, reverify=reverify, include_seeds=include_seeds,
                             split_threshold=split_threshold)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        progress("writing", 0, 1)
        write_dataset(tmp, format, records, {n: np.flatnonzero(names == i).tolist()
                                             for i, n in enumerate(split_names)},
                      directory, stats, meta, command)
        _move_into_place(tmp, out)
        progress("writing", 1, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return stats


def _check_args(directory: Path, out: Path, format: str, split: float | None,
                dedup: float | None, per_cell: int | None, split_threshold: float | None,
                force: bool) -> None:
    if not directory.is_dir():
        raise EvoError(f"no such campaign directory: {directory}")
    if format not in FORMATS:
        raise EvoError(f"unknown format '{format}' (choose from {', '.join(FORMATS)})")
    if split is not None and not 0 < split <= 1:
        raise EvoError(f"--split must be in (0, 1], got {split}")
    for name, value in (("--dedup", dedup), ("--split-threshold", split_threshold)):
        if value is not None and not 0 < value <= 1:
            raise EvoError(f"{name} is a cosine similarity in (0, 1], got {value}")
    if per_cell is not None and per_cell < 1:
        raise EvoError(f"--per-cell must be at least 1, got {per_cell}")
    if out.exists() and not force and (out.is_file() or any(out.iterdir())):
        raise EvoError(f"{out} exists and is not empty (use --force to replace it)")
    if out.resolve() == directory.resolve():
        raise EvoError("--out must not be the campaign directory itself")


def _select(store: CampaignStore, directory: Path, cfg: dict, history: bool) -> list[Candidate]:
    """The archive's elites (replayed from the store), or every valid candidate."""
    valid = "verdict = 'valid' AND measures IS NOT NULL AND fitness IS NOT NULL"
    if history:
        return list(store.candidates(valid))
    from evo.campaign import MEASURES_FILE

    if not (directory / MEASURES_FILE).exists():
        raise EvoError(f"{directory} has no {MEASURES_FILE}; the campaign never finished its set-up")
    archive = Archive(Measures.load(directory / MEASURES_FILE),
                      cfg.get("archive", {}).get("dims"), cfg.get("seed", 0))
    elites = rebuild_archive(store, archive).elites()
    found = store.get([e["candidate_id"] for e in elites])
    return [found[e["candidate_id"]] for e in elites]


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


def _per_cell(cands: list[Candidate], n: int | None) -> list[int]:
    counts: dict[int | None, int] = {}
    keep = []
    for i, c in enumerate(cands):
        if n is None or counts.get(c.cell, 0) < n:
            counts[c.cell] = counts.get(c.cell, 0) + 1
            keep.append(i)
    return keep


@functools.lru_cache(maxsize=2)
def _embedder(name: str):
    from evo.descriptor import Embedder

    return Embedder(name)


def _embed(cfg: dict, texts: list[str], progress: Progress, batch: int = 256) -> np.ndarray:
    model = _embedder(cfg.get("descriptor", {}).get("embedder", "all-MiniLM-L6-v2"))
    parts = [np.zeros((0, model.dim), dtype=np.float32)]
    progress("embedding", 0, len(texts))
    for start in range(0, len(texts), batch):
        parts.append(model.embed(texts[start:start + batch]))
        progress("embedding", min(start + batch, len(texts)), len(texts))
    return np.concatenate(parts)


def _reverify(domain: Domain, cfg: dict, cands: list[Candidate], progress: Progress,
              batch: int = 64) -> list[int]:
    """Indices of the candidates that the domain's verifier still accepts in the sandbox."""
    from evo.sandbox import Sandbox, SandboxLimits

    ok: list[int] = []
    progress("re-verifying", 0, len(cands))
    with Sandbox(SandboxLimits.model_validate(cfg.get("sandbox", {}))) as sandbox:
        for start in range(0, len(cands), batch):
            chunk = cands[start:start + batch]
            for i, v in enumerate(domain.verify([c.item for c in chunk], sandbox), start):
                if v.valid:
                    ok.append(i)
            progress("re-verifying", start + len(chunk), len(cands))
    return ok


META_COLUMNS = ("id", "messages", "fitness", "fitness_parts", "measures", "cell", "is_seed",
                "iteration", "operator", "parents", "generator_version", "item")


def to_record(domain: Domain, c: Candidate) -> dict[str, Any]:
    """One dataset row: the domain's columns, chat ``messages``, score, place and lineage."""
    fields = {(f"item_{k}" if k in META_COLUMNS else k): v for k, v in domain.fields(c.item).items()}
    return {"id": c.id, **fields, "messages": domain.to_messages(c.item),
            "fitness": float(c.fitness), "fitness_parts": json.dumps(c.fitness_parts),
            "measures": [float(m) for m in c.measures], "cell": c.cell, "is_seed": c.is_seed,
            "iteration": c.iteration, "operator": c.operator, "parents": list(c.parents),
            "generator_version": c.generator_version, "item": json.dumps(c.item)}


def export_command(directory: Path, out: Path, **o: Any) -> str:
    """The ``evo export`` command line that reproduces an export with these options."""
    import shlex

    args = ["evo", "export", str(directory), "--out", str(out), "--format", o["format"],
            "--seed", str(o["seed"])]
    for flag, key in (("--min-fitness", "min_fitness"), ("--per-cell", "per_cell"),
                      ("--split", "split"), ("--dedup", "dedup"),
                      ("--split-threshold", "split_threshold")):
        if o[key] is not None:
            args += [flag, str(o[key])]
    args += [flag for flag, on in (("--include-history", o["include_history"]),
                                   ("--reverify", o["reverify"]),
                                   ("--no-seeds", not o["include_seeds"])) if on]
    return shlex.join(args)


def _move_into_place(tmp: Path, out: Path) -> None:
    """Renames the finished temp folder to ``out``, replacing what was there (already
    checked: empty, or ``force``)."""
    old = None
    if out.exists() or out.is_symlink():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
