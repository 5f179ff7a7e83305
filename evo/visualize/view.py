"""A read-only view of a campaign directory, shared by ``evo plot`` and ``evo report``.

Loads the store, the frozen measures and the config, rebuilds the archive exactly as
the campaign did, and joins every elite with its row in the store (item, operator,
parents). Works on a campaign that is still running (the store is SQLite in WAL mode).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archives import Archive, Candidate, Measures
from evo.config import CampaignConfig
from evo.errors import EvoError


@dataclass
class CampaignView:
    directory: Path
    config: CampaignConfig  # validated (evo.rundir)
    measures: Measures
    archive: Archive
    iterations: list[dict[str, Any]]
    elites: list[dict[str, Any]]  # archive.elites() rows, each with "candidate": Candidate
    seeds: list[Candidate]
    generated: list[Candidate]  # every non-seed candidate, valid or not
    summary: dict[str, Any] = field(default_factory=dict)
    _domain: Any = None

    @property
    def name(self) -> str:
        return str(self.config.name or self.directory.name)

    @property
    def label(self) -> str:
        """A short name for legends: the config name plus the directory name."""
        return f"{self.name} ({self.directory.name})" if self.name != self.directory.name else self.name

    @property
    def kind(self) -> str:
        return self.measures.kind

    @property
    def dims(self) -> list[int]:
        return list(self.archive.ribs.dims) if self.kind == "pca" else [len(self.measures.centroids)]

    @property
    def num_cells(self) -> int:
        return int(self.archive.ribs.cells)

    def domain(self) -> Any:
        """The campaign's domain, or None if it cannot be loaded here (texts fall back to JSON)."""
        if self._domain is None:
            from evo.domain import get_domain

            try:
                self._domain = get_domain(self.config.domain, **self.config.domain_options)
            except EvoError:
                self._domain = False
        return self._domain or None

    def texts(self, item: dict[str, Any] | None) -> dict[str, str]:
        """What a person reads for an item: the puzzle (the embedded text) and its solution."""
        if not item:
            return {"puzzle": "", "solution": ""}
        dom = self.domain()
        if dom is None:
            return {"puzzle": json.dumps(item, indent=1), "solution": ""}
        try:
            puzzle = dom.text(item)
            solution = item["g"] if isinstance(item.get("g"), str) else dom.render(item)
        except Exception:  # noqa: BLE001 - a malformed item must not break a report
            return {"puzzle": json.dumps(item, indent=1), "solution": ""}
        return {"puzzle": puzzle, "solution": solution}

    def short_name(self, c: Candidate) -> str:
        """One line naming a candidate: a seed's own name, else the first line of its text."""
        item = c.item or {}
        if item.get("name"):
            return str(item["name"])
        first = self.texts(item)["puzzle"].strip().splitlines()
        line = first[0] if first else f"#{c.id}"
        return line if len(line) <= 40 else line[:39] + "…"


def load_campaign(directory: str | Path) -> CampaignView:
    """Opens a campaign directory read-only; raises EvoError when it is not one or is empty."""
    from evo.rundir import open_run
    from evo.summary import summarize

    directory = Path(directory)
    with open_run(directory) as run:
        run.require_measures()
        store = run.store
        iterations = store.iterations()
        if not iterations:
            raise EvoError(f"{directory} has no recorded iterations yet; nothing to plot")
        config, measures, archive = run.config, run.measures, run.archive
        elites = archive.elites()
        rows = store.get([e["candidate_id"] for e in elites])
        for e in elites:
            e["candidate"] = rows[e["candidate_id"]]
        seeds = list(store.candidates("is_seed = 1"))
        generated = list(store.candidates("is_seed = 0"))
        summary = summarize(store, archive, directory)
    return CampaignView(directory, config, measures, archive, iterations, elites, seeds, generated,
                        summary)


def valid_rates(cands: list[Candidate], key: str) -> list[tuple[str, int, int]]:
    """(group, valid, total) per value of ``key`` (e.g. "operator", "generator_version")."""
    valid: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for c in cands:
        k = str(getattr(c, key))
        total[k] += 1
        valid[k] += c.verdict == "valid"
    order = sorted(total, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    return [(k, valid[k], total[k]) for k in order]


def axis_ends(view: CampaignView) -> list[tuple[str, str]]:
    """For each PCA axis, the seeds at its low and high end (the names that label the axis)."""
    seeds = [s for s in view.seeds if s.measures is not None]
    if view.kind != "pca" or not seeds:
        return [("", "")] * view.measures.dim
    m = np.array([s.measures for s in seeds])
    return [(view.short_name(seeds[int(np.argmin(m[:, d]))]), view.short_name(seeds[int(np.argmax(m[:, d]))]))
            for d in range(m.shape[1])]


def project_2d(view: CampaignView, points: np.ndarray) -> np.ndarray:
    """2-D coordinates for measures of any dimension: grid measures use their first two
    PCA axes; CVT measures are projected on the two main axes of the centroids."""
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if view.kind == "pca":
        return points[:, :2] if points.shape[1] >= 2 else np.c_[points[:, 0], np.zeros(len(points))]
    c = view.measures.centroids
    mean = c.mean(axis=0)
    _, _, vt = np.linalg.svd(c - mean, full_matrices=False)
    return (points - mean) @ vt[:2].T
