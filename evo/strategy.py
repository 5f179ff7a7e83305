"""Search strategies: MAP-Elites and the baselines it must beat, on the same budget.

A strategy decides two things: where parents come from, and which valid candidates
are offered to the archive. Every strategy fills the same kind of archive, so
QD-score and coverage compare fairly.

- ``map_elites``: parents are elites (``selection``: uniform; curiosity-weighted: prefer
  parents whose children got into the archive; or sparse: prefer elites far from their
  nearest fellow elites in measure space); every valid child is offered.
- ``plain``: parents are always seeds (no archive feedback); every valid child is offered.
- ``best_of_n``: parents are seeds; of the samples of one prompt only the fittest is kept.
- ``novelty``: Self-Instruct-style pool: parents come from the pool, and a child is kept
  only if its cosine similarity to everything kept is below ``novelty_threshold``.
- ``beam`` / ``best_first``: search within the iteration from seed roots, round by round,
  every valid child offered (:mod:`evo.search`; the campaign hands them the iteration).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from archives import Archive, CampaignStore, Candidate
from evo.config import StrategyConfig

Parent = tuple[int, dict[str, Any]]
NOT_OFFERED = -1  # add_status of a valid candidate the strategy kept out of the archive


class Strategy:
    def __init__(self, cfg: StrategyConfig, archive: Archive) -> None:
        self.cfg = cfg
        self.archive = archive
        self.curiosity: dict[int, float] = defaultdict(float)
        self.pool: list[Parent] = []  # novelty: kept items
        self.pool_emb = np.zeros((0, 0))

    def restore(self, store: CampaignStore, embed_items: Callable[[list[dict]], np.ndarray]) -> None:
        """Rebuilds the strategy's state from the store (on resume)."""
        if self.cfg.kind == "map_elites" and self.cfg.selection == "curiosity":
            for c in store.candidates("is_seed = 0 AND verdict = 'valid'"):
                self._credit(c)
        if self.cfg.kind == "novelty":
            kept = list(store.candidates("verdict = 'valid' AND COALESCE(add_status, 0) >= 0"))
            self.pool = [(c.id, c.item) for c in kept]
            self.pool_emb = embed_items([c.item for c in kept]) if kept else np.zeros((0, 0))

    def sample_parents(self, n: int, rng: np.random.Generator) -> list[Parent]:
        """``n`` parents, or [] to make the operators draw from the seeds."""
        kind = self.cfg.kind
        if kind in ("plain", "best_of_n", "beam", "best_first"):
            return []
        if kind == "novelty":
            return [self.pool[i] for i in rng.integers(0, len(self.pool), n)] if self.pool else []
        if self.cfg.selection == "uniform":
            return self.archive.sample(n, rng)
        if self.cfg.selection == "sparse":
            return self.archive.sample_sparse(n, rng)
        elites = self.archive.sample(4 * n, rng)  # candidates, then weight by curiosity
        if not elites:
            return []
        w = np.array([max(self.curiosity[i], 0.0) + 1.0 for i, _ in elites])
        picks = rng.choice(len(elites), size=n, p=w / w.sum())
        return [elites[i] for i in picks]

    def offer(self, valid: list[Candidate], embeddings: np.ndarray, groups: list[int]) -> np.ndarray:
        """Mask of the valid candidates offered to the archive."""
        keep = np.ones(len(valid), dtype=bool)
        if self.cfg.kind == "best_of_n":
            best: dict[int, int] = {}
            for i, (c, g) in enumerate(zip(valid, groups)):
                if g not in best or c.fitness > valid[best[g]].fitness:
                    best[g] = i
            keep[:] = False
            keep[list(best.values())] = True
        elif self.cfg.kind == "novelty":
            for i, e in enumerate(embeddings):
                # seeds always enter: every strategy starts from the same seed archive
                if (not valid[i].is_seed and self.pool_emb.size
                        and float((self.pool_emb @ e).max()) >= self.cfg.novelty_threshold):
                    keep[i] = False
                    continue
                self.pool.append((valid[i].id, valid[i].item))
                self.pool_emb = e[None] if not self.pool_emb.size else np.vstack([self.pool_emb, e])
        return keep

    def observe(self, children: list[Candidate]) -> None:
        """Curiosity: +1 for a parent whose child entered the archive, -0.5 otherwise."""
        if self.cfg.kind == "map_elites" and self.cfg.selection == "curiosity":
            for c in children:
                if not c.is_seed and c.verdict == "valid":
                    self._credit(c)

    def _credit(self, c: Candidate) -> None:
        for p in c.parents:
            self.curiosity[p] += 1.0 if (c.add_status or 0) > 0 else -0.5
