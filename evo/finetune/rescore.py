"""Re-scoring after a generator swap: difficulty is relative to the generator, so the elites'
fitness is recomputed with the new one, stored beside the original (table ``rescores``),
and the archive is rebuilt from the store (:func:`archives.rebuild_archive`)."""

from __future__ import annotations

import time
from typing import Any

from archives import Archive, CampaignStore, rebuild_archive
from evo.domain import Domain, EvalContext
from evo.llm import LLM


def rescore_elites(store: CampaignStore, archive: Archive, domain: Domain, generator: LLM,
                   sandbox: Any, seed: int = 0) -> dict[str, Any]:
    """Scores every elite with ``generator``, records the scores under its version and
    rebuilds ``archive`` in place; returns before/after numbers."""
    t = time.time()
    elites = sorted(archive.elites(), key=lambda e: e["candidate_id"])
    ids = [e["candidate_id"] for e in elites]
    cands = store.get(ids)
    scores = domain.score([cands[i].item for i in ids], EvalContext(generator, sandbox, seed=seed))
    store.record_rescores(generator.version, {i: (float(s.fitness), s.parts) for i, s in zip(ids, scores)})
    before = archive.stats()
    rebuild_archive(store, archive)
    after = archive.stats()
    old = [e["fitness"] for e in elites]
    new = [float(s.fitness) for s in scores]
    return {
        "generator_version": generator.version, "elites": len(ids),
        "mean_fitness_before": sum(old) / len(old) if old else 0.0,
        "mean_fitness_after": sum(new) / len(new) if new else 0.0,
        "qd_score_before": before["qd_score"], "qd_score_after": after["qd_score"],
        "num_elites_after": after["num_elites"], "wall_s": time.time() - t,
    }
