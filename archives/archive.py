"""The MAP-Elites archive: pyribs with text solutions and per-elite extra fields."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from ribs.archives import CVTArchive, GridArchive

from archives.measures import Measures


class Archive:
    """Keeps the best candidate per cell. Solutions are the candidates' JSON payloads;
    ``candidate_id`` links every elite back to its row in the campaign store."""

    def __init__(self, measures: Measures, dims: list[int] | None = None, seed: int = 0) -> None:
        self.measures = measures
        common = dict(solution_dim=(), solution_dtype=object,
                      extra_fields={"candidate_id": ((), np.int64)}, seed=seed)
        if measures.kind == "pca":
            self.ribs = GridArchive(dims=dims, ranges=measures.ranges, **common)
        else:
            self.ribs = CVTArchive(centroids=measures.centroids, ranges=measures.ranges, **common)

    def add(self, payloads: list[str], fitness: list[float], measures: np.ndarray,
            candidate_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Inserts a batch; returns (status per item: 0 no / 1 improved / 2 new, cell index)."""
        if not payloads:
            return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
        sol = np.empty(len(payloads), dtype=object)
        sol[:] = payloads
        m = np.asarray(measures, dtype=np.float64)
        result = self.ribs.add(sol, np.asarray(fitness, dtype=np.float64), m,
                               candidate_id=np.asarray(candidate_ids, dtype=np.int64))
        return np.asarray(result["status"]), np.asarray(self.ribs.index_of(m))

    def occupants(self, measures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row of ``measures``: its cell index and the fitness of the elite there (-inf
        where the cell is empty), without adding anything."""
        m = np.asarray(measures, dtype=np.float64).reshape(-1, self.measures.dim)
        if not len(m):
            return np.zeros(0, dtype=int), np.zeros(0)
        occupied, data = self.ribs.retrieve(m)
        return np.asarray(self.ribs.index_of(m)), np.where(occupied, data["objective"], -np.inf)

    def __len__(self) -> int:
        return len(self.ribs)

    def sample(self, n: int, rng: np.random.Generator) -> list[tuple[int, dict[str, Any]]]:
        """``n`` elites drawn uniformly with ``rng``, as (candidate id, item)."""
        if len(self.ribs) == 0:
            return []
        data = self.ribs.data(["solution", "candidate_id"])
        return _parents(data, rng.integers(0, len(data["candidate_id"]), size=n))

    def sample_sparse(self, n: int, rng: np.random.Generator, k: int = 3) -> list[tuple[int, dict[str, Any]]]:
        """``n`` elites drawn with probability proportional to their mean measure-space distance
        to their ``k`` nearest fellow elites. An LLM operator's children land near their
        parents and drift toward the generator's typical output, so uniform parents keep
        refilling the crowded middle; parents on the frontier step into empty cells."""
        if len(self.ribs) == 0:
            return []
        data = self.ribs.data(["solution", "candidate_id", "measures"])
        m = np.asarray(data["measures"], dtype=np.float64)
        if len(m) == 1:
            w = np.ones(1)
        else:
            # scale each axis by its range so that no measure dominates the distance
            span = self.measures.ranges[:, 1] - self.measures.ranges[:, 0]
            z = m / np.where(span > 0, span, 1.0)
            sq = (z * z).sum(1)
            d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0))
            np.fill_diagonal(d, np.inf)
            kk = min(k, len(m) - 1)
            w = np.sort(d, axis=1)[:, :kk].mean(axis=1) + 1e-9
        return _parents(data, rng.choice(len(m), size=n, p=w / w.sum()))

    def elites(self) -> list[dict[str, Any]]:
        data = self.ribs.data()
        return [{"candidate_id": int(c), "fitness": float(o), "cell": int(i), "measures": m.tolist()}
                for c, o, i, m in zip(data["candidate_id"], data["objective"], data["index"],
                                      data["measures"])]

    def stats(self) -> dict[str, float]:
        s = self.ribs.stats
        empty = s.num_elites == 0
        return {
            "num_elites": int(s.num_elites),
            "coverage": float(s.coverage),
            "qd_score": float(s.qd_score),
            "norm_qd_score": float(s.norm_qd_score),
            "obj_max": 0.0 if empty else float(s.obj_max),
            "obj_mean": 0.0 if empty else float(s.obj_mean),
        }


def _parents(data: dict[str, np.ndarray], picks: np.ndarray) -> list[tuple[int, dict[str, Any]]]:
    """The picked elites as (candidate id, item)."""
    return [(int(data["candidate_id"][i]), json.loads(data["solution"][i])) for i in picks]
