"""The campaign store: every candidate, valid or not, in SQLite (WAL) in the campaign dir.

One transaction per batch: a crash loses at most the batch in flight. The archive is
a function of the store (:func:`rebuild_archive`), so nothing else needs saving.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archives.archive import Archive
from evo.errors import EvoError

STORE_FILE = "campaign.sqlite"
# The store's layout version, kept in SQLite's header (PRAGMA user_version). Version 1 is
# the first release's layout, which recorded no version (user_version 0). Version 2 adds
# the foreign key rescores.candidate_id -> candidates.id. Version 3 adds the search columns
# (strategy, depth, parent_id, beam_rank, search_value; NULL in older rows). See archives/migrations.py.
SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    iteration INTEGER NOT NULL,
    operator TEXT NOT NULL,
    parents TEXT NOT NULL,
    is_seed INTEGER NOT NULL,
    prompt TEXT,
    completion TEXT,
    item TEXT,
    verdict TEXT NOT NULL,
    reason TEXT,
    fitness REAL,
    fitness_parts TEXT,
    measures TEXT,
    cell INTEGER,
    on_border INTEGER,
    add_status INTEGER,
    generator_version INTEGER NOT NULL,
    num_tokens INTEGER NOT NULL DEFAULT 0,
    timings TEXT,
    created REAL NOT NULL,
    strategy TEXT,
    depth INTEGER,
    parent_id INTEGER,
    beam_rank INTEGER,
    search_value REAL
);
CREATE INDEX IF NOT EXISTS candidates_valid ON candidates (verdict, id);
CREATE TABLE IF NOT EXISTS iterations (
    iteration INTEGER PRIMARY KEY,
    stats TEXT NOT NULL,
    created REAL NOT NULL
);
-- Fitness of an elite re-scored by a later generator (difficulty is relative to the
-- generator); the original score stays in candidates. last_candidate_id: the store's
-- newest candidate when the re-score happened (where a rebuild resumes replaying).
CREATE TABLE IF NOT EXISTS rescores (
    candidate_id INTEGER NOT NULL,
    generator_version INTEGER NOT NULL,
    fitness REAL NOT NULL,
    fitness_parts TEXT,
    last_candidate_id INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (candidate_id, generator_version),
    FOREIGN KEY (candidate_id) REFERENCES candidates (id)
);
"""


# Written into a candidate's reason when its own solution failed and a fresh solve attempt
# became its solution (Campaign's resolve step); what follows it is why its own failed.
RESOLVED_MARK = "(own version:"


@dataclass
class Candidate:
    """One row of the store: what was asked, what came back, and what it was worth."""

    id: int
    iteration: int
    operator: str
    parents: list[int]
    verdict: str  # valid / invalid / trivial / parse_error / duplicate
    is_seed: bool = False
    prompt: str | None = None
    completion: str | None = None
    item: dict[str, Any] | None = None
    reason: str | None = None
    fitness: float | None = None
    fitness_parts: dict[str, Any] = field(default_factory=dict)
    measures: list[float] | None = None
    cell: int | None = None
    on_border: bool | None = None
    add_status: int | None = None
    generator_version: int = 0
    num_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    # Which strategy produced the child (None: a seed, or a row from before schema version 3)
    # and, for a search strategy (evo.search), where in the search it sits: the depth (a
    # root is 0), the node it expands, its rank among its round's valid children by the
    # search's score (0 = best) and that score.
    strategy: str | None = None
    depth: int | None = None
    parent_id: int | None = None
    beam_rank: int | None = None
    search_value: float | None = None

    _JSON = ("parents", "item", "fitness_parts", "measures", "timings")

    @property
    def resolved(self) -> bool:
        """Its solution is a fresh solve attempt's, not its author's (see RESOLVED_MARK)."""
        return RESOLVED_MARK in (self.reason or "")

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        for k in self._JSON:
            row[k] = None if row[k] is None else json.dumps(row[k])
        return row

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Candidate:
        d = dict(row)
        d.pop("created", None)
        for k in cls._JSON:
            d[k] = None if d[k] is None else json.loads(d[k])
        d["is_seed"] = bool(d["is_seed"])
        d["on_border"] = None if d["on_border"] is None else bool(d["on_border"])
        return cls(**d)


class CampaignStore:
    """SQLite store of one campaign directory."""

    def __init__(self, path: Path, migrate: bool = True) -> None:
        """Opens (or creates) the store at ``path``. A store of an older schema version is
        migrated (after a backup) when ``migrate``; writers migrate, readers need not: every
        older version so far reads the same."""
        from archives.migrations import prepare

        self.path = path
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise EvoError(f"campaign store {path} cannot be opened: {exc}") from None
        try:
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.schema_version, self.migrated_from, self.backup = prepare(
                self.db, path, SCHEMA, SCHEMA_VERSION, migrate)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise EvoError(f"campaign store {path} is unreadable or corrupt: {exc}") from None
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def open(cls, directory: str | Path, migrate: bool = False) -> CampaignStore:
        """The existing store of a campaign directory, checked (``quick_check``); for
        reading unless ``migrate`` (writers: hold the campaign's writer lock)."""
        path = Path(directory) / STORE_FILE
        if not path.is_file():
            raise EvoError(f"{directory} is not a campaign directory (no {STORE_FILE})")
        store = cls(path, migrate=migrate)
        try:
            ok = store.db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            ok = False
        if not ok:
            store.close()
            raise EvoError(f"campaign store {path} is corrupt (sqlite quick_check failed)")
        return store

    @classmethod
    def read_meta(cls, directory: str | Path, key: str, default: Any = None) -> Any:
        """One meta value of the campaign in ``directory`` (opened, checked and closed)."""
        store = cls.open(directory)
        try:
            return store.get_meta(key, default)
        finally:
            store.close()

    def close(self) -> None:
        self.db.close()

    # -- meta ---------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def set_meta(self, **values: Any) -> None:
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in values.items()])

    # -- writes -------------------------------------------------------------
    def next_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM candidates").fetchone()[0])

    def record(self, candidates: list[Candidate], iteration: int | None = None,
               stats: dict[str, Any] | None = None,
               before_commit: Callable[[], None] | None = None) -> None:
        """Writes a batch and (optionally) its iteration stats in one transaction."""
        now = time.time()
        rows = [{**c.to_row(), "created": now} for c in candidates]
        with self._tx():
            if rows:
                cols = ", ".join(rows[0])
                marks = ", ".join(f":{k}" for k in rows[0])
                self.db.executemany(f"INSERT INTO candidates ({cols}) VALUES ({marks})", rows)
            if stats is not None:
                self.db.execute("INSERT OR REPLACE INTO iterations VALUES (?, ?, ?)",
                                (iteration, json.dumps(stats), now))
            if before_commit is not None:
                before_commit()

    def _tx(self):
        return _Transaction(self.db)

    # -- reads --------------------------------------------------------------
    def candidates(self, where: str = "1", params: tuple = ()) -> Iterator[Candidate]:
        for row in self.db.execute(f"SELECT * FROM candidates WHERE {where} ORDER BY id", params):
            yield Candidate.from_row(row)

    def get(self, ids: list[int]) -> dict[int, Candidate]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {c.id: c for c in self.candidates(f"id IN ({marks})", tuple(ids))}

    def iterations(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT iteration, stats FROM iterations ORDER BY iteration")
        return [{"iteration": r["iteration"], **json.loads(r["stats"])} for r in rows]

    def last_iteration(self) -> int | None:
        return self.db.execute("SELECT MAX(iteration) FROM iterations").fetchone()[0]

    def record_rescores(self, generator_version: int, scores: dict[int, tuple[float, dict[str, Any]]]) -> None:
        """Stores re-scores {candidate id: (fitness, parts)} by ``generator_version``, in one
        transaction; the original fitness in ``candidates`` is kept."""
        now = time.time()
        last = self.next_id() - 1
        with self._tx():  # a repeated re-score of a version replaces it whole
            self.db.execute("DELETE FROM rescores WHERE generator_version = ?", (generator_version,))
            self.db.executemany(
                "INSERT INTO rescores VALUES (?, ?, ?, ?, ?, ?)",
                [(cid, generator_version, float(f), json.dumps(parts), last, now)
                 for cid, (f, parts) in sorted(scores.items())])

    def rescores(self, generator_version: int | None = None) -> list[dict[str, Any]]:
        """Re-score rows (all, or one generator version's), oldest first."""
        where, params = ("generator_version = ?", (generator_version,)) if generator_version is not None \
            else ("1", ())
        rows = self.db.execute(f"SELECT * FROM rescores WHERE {where} "
                               "ORDER BY generator_version, candidate_id", params)
        return [{**dict(r), "fitness_parts": json.loads(r["fitness_parts"] or "{}")} for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT verdict, COUNT(*) AS n FROM candidates WHERE is_seed = 0 GROUP BY verdict")
        return {r["verdict"]: r["n"] for r in rows}


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def rebuild_archive(store: CampaignStore, archive: Archive) -> Archive:
    """Replays every valid candidate into an empty ``archive``, one add per iteration,
    exactly as the campaign inserted them (pyribs batch adds resolve ties per batch).

    After a generator swap the elites were re-scored (table ``rescores``): the archive
    then restarts from those elites with their latest re-score, and replays only the
    candidates recorded after that re-score, as the live campaign did."""
    archive.ribs.clear()
    # add_status -1: valid, but a baseline strategy did not offer it to the archive
    where, after = "verdict = 'valid' AND measures IS NOT NULL AND COALESCE(add_status, 0) >= 0", 0
    latest = store.db.execute("SELECT MAX(generator_version) FROM rescores").fetchone()[0]
    if latest is not None:
        rows = store.rescores(latest)
        after = rows[0]["last_candidate_id"]
        elites = store.get([r["candidate_id"] for r in rows])
        for r in rows:
            elites[r["candidate_id"]].fitness = r["fitness"]
        _replay(archive, [elites[r["candidate_id"]] for r in rows if r["candidate_id"] in elites])
        where += " AND id > ?"
    batch: list[Candidate] = []
    for c in store.candidates(where, (after,) if latest is not None else ()):
        if batch and c.iteration != batch[-1].iteration:
            _replay(archive, batch)
            batch = []
        batch.append(c)
    _replay(archive, batch)
    return archive


def _replay(archive: Archive, batch: list[Candidate]) -> None:
    if not batch:
        return
    archive.add([json.dumps(c.item) for c in batch], [c.fitness for c in batch],
                np.array([c.measures for c in batch]), [c.id for c in batch])
