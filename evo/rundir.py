"""A campaign directory: the names of the files in it and the one reader of a finished run.

The loop (:mod:`evo.campaign`) writes these files; everything that reads a campaign
directory afterwards (status, plot, report, export, check, finetune) names them from
here rather than importing the loop for a constant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archives import Archive, CampaignStore, Candidate, Measures, rebuild_archive
from archives.store import STORE_FILE
from evo.config import CampaignConfig, validate_config
from evo.errors import EvoError

__all__ = ["HELDOUT_FILE", "LOCK_FILE", "MEASURES_FILE", "PLOTS_DIR", "REPORT_FILE", "STORE_FILE",
           "Run", "open_run"]

MEASURES_FILE = "measures.npz"  # the descriptor's fitted PCA/centroids (archives.Measures)
REPORT_FILE = "report.html"  # evo report
PLOTS_DIR = "plots"  # evo plot
HELDOUT_FILE = "heldout.jsonl"  # held-out pass@k by round (evo eval-solve, finetune rounds)
LOCK_FILE = "writer.lock"  # the one writer's lock (evo.lock)


class Run:
    """A campaign directory opened for reading (or, with ``migrate``, by its writer).

    ``config`` is the stored config validated into a :class:`~evo.config.CampaignConfig`
    (every default applied once, by the model, not retyped by each reader); ``measures`` and
    ``archive`` are loaded on first use, since replaying the archive reads every candidate.
    Close it (or use it as a context manager) to close the store.
    """

    def __init__(self, directory: Path, store: CampaignStore) -> None:
        self.directory, self.store = directory, store
        self._config: CampaignConfig | None = None
        self._measures: Measures | None = None
        self._archive: Archive | None = None

    @property
    def raw_config(self) -> dict[str, Any] | None:
        """The config as stored (None before the campaign finished its set-up)."""
        return self.store.get_meta("config")

    @property
    def config(self) -> CampaignConfig:
        if self._config is None:
            saved = self.raw_config
            if saved is None:
                raise EvoError(f"{self.directory} holds no campaign config (it never finished its set-up)")
            self._config = validate_config(saved)
        return self._config

    @property
    def measures_path(self) -> Path:
        return self.directory / MEASURES_FILE

    def require_measures(self) -> None:
        """Raises the readers' shared EvoError when the descriptor was never fitted."""
        if not self.measures_path.exists():
            raise EvoError(f"{self.directory} has no {MEASURES_FILE}; the campaign never finished its set-up")

    @property
    def measures(self) -> Measures:
        if self._measures is None:
            self.require_measures()
            self._measures = Measures.load(self.measures_path)
        return self._measures

    @property
    def archive(self) -> Archive:
        """The archive replayed from the store, exactly as the campaign built it."""
        if self._archive is None:
            config = self.config
            self._archive = rebuild_archive(self.store, Archive(self.measures, config.archive.dims, config.seed))
        return self._archive

    def elite_candidates(self) -> list[Candidate]:
        """The archive's elites as store rows, in the archive's order."""
        elites = self.archive.elites()
        found = self.store.get([e["candidate_id"] for e in elites])
        return [found[e["candidate_id"]] for e in elites]

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def open_run(directory: str | Path, *, migrate: bool = False) -> Run:
    """Opens the campaign in ``directory``: its store checked (``CampaignStore.open``: an
    EvoError when there is none or it is corrupt); the config, measures and archive on use.
    ``migrate``: a writer's open (hold the campaign's writer lock)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EvoError(f"{directory} is not a campaign directory (no such directory)")
    return Run(directory, CampaignStore.open(directory, migrate=migrate))
