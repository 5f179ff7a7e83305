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

from archives import Candidate
from evo.config import CampaignConfig
from evo.domain import Domain, get_domain
from evo.errors import EvoError
from evo.export.dedup import assign_split, exact_dedup, near_dedup, near_groups, per_cell_cap
from evo.export.options import (
    DECONTAMINATE,
    FILE_FORMATS,
    FORMATS,
    TASKS,
    ExportConfig,
    export_command,
)
from evo.rundir import Run, open_run

__all__ = ["ExportConfig", "assign_split", "exact_dedup", "export_campaign", "export_command", "near_dedup",
           "near_groups", "to_record"]

SPLIT_THRESHOLD = 0.95  # cosine similarity that makes two items "near-duplicates" for the split
Progress = Callable[[str, int, int], None]  # (phase, done, total)


def export_campaign(directory: str | Path, out: str | Path, options: ExportConfig | None = None, *,
                    progress: Progress | None = None, **fields: Any) -> dict[str, Any]:
    """Writes the dataset to ``out`` (a folder) and returns the stats of every step.

    ``options`` (or its fields as keywords, laid over it): see :class:`ExportConfig`.
    ``format``: ``sft`` rows (``messages``; ``task`` picks the generate or solve framing,
    or both), ``dpo`` pairs or ``kto`` rows; for compatibility a file format given as
    ``format`` means ``sft`` rows in that file format. ``decontaminate``: drop (default)
    or flag items that overlap a held-out benchmark (``against``: names or files;
    default every benchmark the installed domains bring)."""
    from evo.export.card import write_dataset

    o = ExportConfig.of(**{**(options.model_dump() if options else {}), **fields})
    directory, out = Path(directory), Path(out)
    _check_args(directory, out, o)
    progress = progress or (lambda *_: None)
    with open_run(directory) as run:
        cfg = run.config
        meta = {"campaign_id": run.store.get_meta("campaign_id"), "config": run.raw_config}
        domain = get_domain(cfg.domain, **cfg.domain_options)
        if o.task != "generate" and domain.to_solve_messages(domain.seeds()[0]) is None:
            raise EvoError(f"domain '{domain.name}' has no solve framing (--task generate only)")
        if o.format == "sft":
            pool: list[Any] = _select(run, o.include_history)
        else:
            from evo.export.pairs import preference_pairs

            pool = preference_pairs(run.store, domain, o.min_fitness)
    stats: dict[str, Any] = {"source": "history" if o.include_history or o.format != "sft" else "elites",
                             "pool": len(pool), "format": o.format, "files": o.files, "task": o.task}
    if o.format == "sft":
        items, records, emb, groups = _sft_rows(domain, cfg, pool, stats, o, progress)
    else:
        items, records, emb, groups = _pair_rows(domain, cfg, pool, stats, o, progress)
    names = np.zeros(len(items), dtype=int)  # per item: 0 train, 1 test
    split = o.split
    if split is not None and split < 1:
        if groups is None:
            threshold = o.split_threshold or o.dedup or SPLIT_THRESHOLD
            groups = near_groups(emb, threshold)
            stats["split_threshold"] = threshold
        names = assign_split(groups, split, np.random.default_rng(o.seed)).astype(int)
        stats["split_groups"] = int(len(np.unique(groups)))
    split_names = ["train", "test"] if split is not None and split < 1 else ["train"]
    row_side = np.array([names[r.pop("_item")] for r in records], dtype=int)
    stats["exported"] = len(records)
    stats["splits"] = {n: int((row_side == i).sum()) for i, n in enumerate(split_names)}
    stats["out"] = str(out)
    command = export_command(directory, out, o)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        progress("writing", 0, 1)
        write_dataset(tmp, records, {n: np.flatnonzero(row_side == i).tolist()
                                     for i, n in enumerate(split_names)},
                      directory, stats, meta, command,
                      {"domain": domain, "items": items, "emb": emb, "item_side": names,
                       "split_names": split_names})
        _move_into_place(tmp, out)
        progress("writing", 1, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return stats


def _sft_rows(domain: Domain, cfg: CampaignConfig, pool: list[Candidate], stats: dict[str, Any],
              o: ExportConfig, progress: Progress):
    """Select, dedup, re-verify and decontaminate candidates; one row per item and task.
    Returns (candidates, rows, embeddings, split groups or None)."""
    task, min_fitness, per_cell, include_seeds = o.task, o.min_fitness, o.per_cell, o.include_seeds
    dedup, reverify, decontaminate, against = o.dedup, o.reverify, o.decontaminate, o.against
    cands = sorted(pool, key=lambda c: (-c.fitness, c.id))
    kept = [c for c in cands if include_seeds or not c.is_seed]
    stats["dropped_seeds"], cands = len(cands) - len(kept), kept
    kept = [c for c in cands if min_fitness is None or c.fitness >= min_fitness]
    stats["dropped_min_fitness"], cands = len(cands) - len(kept), kept
    cands, stats["removed_exact"] = exact_dedup(cands, domain.key)
    emb = _embed(cfg, [domain.text(c.item) for c in cands], progress)
    stats["removed_near"] = 0
    if dedup is not None:
        keep = near_dedup(emb, dedup)
        stats["removed_near"] = len(cands) - len(keep)
        cands, emb = [cands[i] for i in keep], emb[keep]
    keep = per_cell_cap(cands, per_cell)
    stats["dropped_per_cell"] = len(cands) - len(keep)
    cands, emb = [cands[i] for i in keep], emb[keep]
    stats["removed_reverify"] = 0
    if reverify:
        ok = _reverify(domain, cfg, cands, progress)
        stats["removed_reverify"] = len(cands) - len(ok)
        cands, emb = [cands[i] for i in ok], emb[ok]
    flags: list[list[str]] = [[] for _ in cands]
    if decontaminate != "off":
        report = _contamination(domain, cfg, [c.item for c in cands], emb, against, progress)
        stats["decontamination"] = {**report.summary(), "mode": decontaminate,
                                    "removed": _hit_list(report, [c.id for c in cands])
                                    if decontaminate == "drop" else []}
        flags = [[f"{h.source}:{h.item_id} ({h.method})" for h in hs] for hs in report.hits]
        if decontaminate == "drop":
            ok = [i for i, hs in enumerate(report.hits) if not hs]
            cands, emb, flags = [cands[i] for i in ok], emb[ok], [flags[i] for i in ok]
        stats["removed_contaminated"] = len(report.hits) - len(cands)
    if not cands:
        raise EvoError(f"nothing to export: every one of the {stats['pool']} candidates was "
                       "filtered out")
    tasks = ["generate", "solve"] if task == "both" else [task]
    records = []
    for i, c in enumerate(cands):
        for t in tasks:
            r = to_record(domain, c, t)
            if decontaminate == "flag":
                r["contaminated_by"] = flags[i]
            records.append({**r, "_item": i})
    stats["cells"] = len({c.cell for c in cands})
    stats["seeds"] = sum(c.is_seed for c in cands)
    return cands, records, emb, None


def _pair_rows(domain: Domain, cfg: CampaignConfig, pairs: list, stats: dict[str, Any], o: ExportConfig,
               progress: Progress):
    """Decontaminated preference pairs as DPO or KTO rows; a pair's chosen child is its
    split unit (rows of one chosen child stay on one side)."""
    format, decontaminate, against = o.format, o.decontaminate, o.against
    from evo.export.pairs import dpo_record, kto_records

    if decontaminate != "off" and pairs:
        both = [x for p in pairs for x in (p.chosen, p.rejected)]
        items = [c.item or {} for c in both]
        parsed = [i for i, c in enumerate(both) if c.item]
        report = _contamination(domain, cfg, [items[i] for i in parsed], None, against, progress)
        bad = {both[parsed[j]].id for j, hs in enumerate(report.hits) if hs}
        raw = [i for i, c in enumerate(both) if not c.item]  # unparsed text: n-gram checks only
        if raw:
            from evo.export.decontam import find_contamination, load_benchmarks

            benches, _ = load_benchmarks(against, domain)
            rep2 = find_contamination([both[i].completion or "" for i in raw], benches)
            bad |= {both[raw[j]].id for j, hs in enumerate(rep2.hits) if hs}
        stats["decontamination"] = {**report.summary(), "mode": decontaminate,
                                    "removed": _hit_list(report, [both[i].id for i in parsed])}
        if decontaminate == "drop":
            kept = [p for p in pairs if p.chosen.id not in bad and p.rejected.id not in bad]
            stats["removed_contaminated"], pairs = len(pairs) - len(kept), kept
    if not pairs:
        raise EvoError(f"nothing to export: the campaign has no prompt with a verified child and "
                       f"a sibling that lost to it ({stats['pool']} pairs before filtering)")
    chosen = sorted({p.chosen.id: p.chosen for p in pairs}.values(), key=lambda c: c.id)
    index = {c.id: i for i, c in enumerate(chosen)}
    if format == "dpo":
        records = [{**dpo_record(domain, p), "_item": index[p.chosen.id]} for p in pairs]
    else:
        records = kto_records(domain, pairs)
        owner = {c.id: index[p.chosen.id] for p in pairs for c in (p.chosen, p.rejected)}
        records = [{**r, "_item": owner[r["id"]]} for r in records]
    stats["pairs"] = len(pairs)
    stats["cells"] = len({c.cell for c in chosen})
    emb = _embed(cfg, [domain.text(c.item) for c in chosen], progress)
    return chosen, records, emb, np.arange(len(chosen))


def _contamination(domain: Domain, cfg: CampaignConfig, items: list[dict], emb: np.ndarray | None,
                   against: list[str] | None, progress: Progress):
    from evo.export.decontam import embed_cached, find_contamination, load_benchmarks
    from evo.llm.embedded import cache_dir

    progress("decontaminating", 0, 1)
    benches, skipped = load_benchmarks(against, domain)
    model = _embedder(cfg.descriptor.embedder)
    report = find_contamination([domain.render(it) for it in items], benches,
                                keys=[domain.key(it) for it in items], domain=domain.name,
                                embed_texts=[domain.text(it) for it in items],
                                embed=embed_cached(model, cache_dir() / "contamination"),
                                embeddings=emb)
    report.skipped.update(skipped)
    progress("decontaminating", 1, 1)
    return report


def _hit_list(report, ids: list[int]) -> list[dict[str, Any]]:
    return [{"id": ids[i], "matches": [f"{h.source}:{h.item_id} ({h.method}, {h.score:.2f})"
                                       for h in report.hits[i]]} for i in report.contaminated]


def _check_args(directory: Path, out: Path, o: ExportConfig) -> None:
    format, files, task, decontaminate = o.format, o.files, o.task, o.decontaminate
    split, dedup, per_cell, split_threshold, force = o.split, o.dedup, o.per_cell, o.split_threshold, o.force
    if not directory.is_dir():
        raise EvoError(f"no such campaign directory: {directory}")
    if format not in FORMATS:
        raise EvoError(f"unknown format '{format}' (choose from {', '.join(FORMATS + FILE_FORMATS)})")
    for name, value, known in (("--files", files, FILE_FORMATS), ("--task", task, TASKS),
                               ("--decontaminate", decontaminate, DECONTAMINATE)):
        if value not in known:
            raise EvoError(f"unknown {name} '{value}' (choose from {', '.join(known)})")
    if task != "generate" and format != "sft":
        raise EvoError(f"--task {task} is for sft rows; {format} rows are generation prompts")
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


def _select(run: Run, history: bool) -> list[Candidate]:
    """The archive's elites (replayed from the store), or every valid candidate."""
    valid = "verdict = 'valid' AND measures IS NOT NULL AND fitness IS NOT NULL"
    if history:
        return list(run.store.candidates(valid))
    return run.elite_candidates()


@functools.lru_cache(maxsize=2)
def _embedder(name: str):
    from evo.descriptor import Embedder

    return Embedder(name)


def _embed(cfg: CampaignConfig, texts: list[str], progress: Progress, batch: int = 256) -> np.ndarray:
    model = _embedder(cfg.descriptor.embedder)
    parts = [np.zeros((0, model.dim), dtype=np.float32)]
    progress("embedding", 0, len(texts))
    for start in range(0, len(texts), batch):
        parts.append(model.embed(texts[start:start + batch]))
        progress("embedding", min(start + batch, len(texts)), len(texts))
    return np.concatenate(parts)


def _reverify(domain: Domain, cfg: CampaignConfig, cands: list[Candidate], progress: Progress,
              batch: int = 64) -> list[int]:
    """Indices of the candidates that the domain's verifier still accepts in the sandbox."""
    from evo.sandbox import Sandbox

    ok: list[int] = []
    progress("re-verifying", 0, len(cands))
    with Sandbox(cfg.sandbox) as sandbox:
        for start in range(0, len(cands), batch):
            chunk = cands[start:start + batch]
            for i, v in enumerate(domain.verify([c.item for c in chunk], sandbox), start):
                if v.valid:
                    ok.append(i)
            progress("re-verifying", start + len(chunk), len(cands))
    return ok


META_COLUMNS = ("id", "task", "messages", "fitness", "fitness_parts", "measures", "cell", "is_seed",
                "iteration", "operator", "parents", "generator_version", "item")


def to_record(domain: Domain, c: Candidate, task: str = "generate") -> dict[str, Any]:
    """One dataset row: the domain's columns, chat ``messages`` (the ``task`` framing:
    generate a new item, or solve this one), score, place and lineage."""
    fields = {(f"item_{k}" if k in META_COLUMNS else k): v for k, v in domain.fields(c.item).items()}
    messages = domain.to_solve_messages(c.item) if task == "solve" else domain.to_messages(c.item)
    return {"id": c.id, **fields, "task": task, "messages": messages,
            "fitness": float(c.fitness), "fitness_parts": json.dumps(c.fitness_parts),
            "measures": [float(m) for m in c.measures], "cell": c.cell, "is_seed": c.is_seed,
            "iteration": c.iteration, "operator": c.operator, "parents": list(c.parents),
            "generator_version": c.generator_version, "item": json.dumps(c.item)}


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
