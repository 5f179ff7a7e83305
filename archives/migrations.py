"""Schema versions of the campaign store and the migrations between them.

The version lives in SQLite's header (``PRAGMA user_version``). The first release wrote
no version: a store with tables and user_version 0 is version 1. Opening an older store
for writing backs it up (``campaign.sqlite.vN.bak``, through SQLite's online backup, so
a reader in another process is no obstacle) and then migrates it in one transaction:
either every step applies and the new version is recorded, or nothing changes. A store
newer than this code knows is refused with the reason, never guessed at.

A migration is a function of the connection, frozen at the layout it produces: when a
later version changes a table again, it gets a new step, and old steps stay as written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from evo.errors import EvoError


def _v1_to_v2(db: sqlite3.Connection) -> None:
    """rescores.candidate_id becomes a foreign key of candidates.id (SQLite adds
    constraints only by rebuilding the table)."""
    db.execute("""CREATE TABLE rescores_v2 (
    candidate_id INTEGER NOT NULL,
    generator_version INTEGER NOT NULL,
    fitness REAL NOT NULL,
    fitness_parts TEXT,
    last_candidate_id INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (candidate_id, generator_version),
    FOREIGN KEY (candidate_id) REFERENCES candidates (id)
)""")
    db.execute("INSERT INTO rescores_v2 SELECT candidate_id, generator_version, fitness, fitness_parts, "
               "last_candidate_id, created FROM rescores")
    db.execute("DROP TABLE rescores")
    db.execute("ALTER TABLE rescores_v2 RENAME TO rescores")
    bad = db.execute("SELECT DISTINCT candidate_id FROM rescores WHERE candidate_id NOT IN "
                     "(SELECT id FROM candidates) ORDER BY candidate_id").fetchall()
    if bad:
        ids = ", ".join(str(r[0]) for r in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise _Refused(f"{len(bad)} re-scored candidate(s) are not in the store (ids {ids})")


def _v2_to_v3(db: sqlite3.Connection) -> None:
    """The search columns of every candidate (evo.search): which strategy produced it, its
    depth, the node it expands, its rank in its round and the search's score; NULL in the
    rows written before (their strategy is the campaign config's)."""
    for col, kind in (("strategy", "TEXT"), ("depth", "INTEGER"), ("parent_id", "INTEGER"),
                      ("beam_rank", "INTEGER"), ("search_value", "REAL")):
        db.execute(f"ALTER TABLE candidates ADD COLUMN {col} {kind}")


# from version N to N + 1
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


class _Refused(Exception):
    """A migration step found data it cannot carry over (the reason is the message)."""


def stored_version(db: sqlite3.Connection) -> int:
    """The store's schema version; 0 for a new, empty file."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version:
        return int(version)
    tables = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'candidates'").fetchone()
    return 1 if tables else 0


def prepare(db: sqlite3.Connection, path: Path, schema: str, current: int,
            migrate: bool) -> tuple[int, int | None, Path | None]:
    """Creates a new store, or checks and (when ``migrate``) migrates an existing one.
    Returns (schema version now, the version it was migrated from or None, backup path)."""
    version = stored_version(db)
    if version > current:
        raise EvoError(f"campaign store {path} has schema version {version}, newer than this evo "
                       f"understands (up to {current}); upgrade evo to use it")
    if version == 0:
        _script(db, f"BEGIN IMMEDIATE;\n{schema}\nPRAGMA user_version = {current};\nCOMMIT;")
        return current, None, None
    if version == current or not migrate:
        return version, None, None
    backup = path.with_name(f"{path.name}.v{version}.bak")
    try:
        with sqlite3.connect(backup) as dst:
            db.backup(dst)
        dst.close()
    except (sqlite3.Error, OSError) as exc:
        raise EvoError(f"cannot migrate {path} from schema version {version} to {current}: "
                       f"the backup to {backup} failed ({exc}); the store is unchanged") from None
    db.execute("PRAGMA foreign_keys = OFF")  # a table rebuild must not cascade; checked by hand
    db.execute("BEGIN IMMEDIATE")
    try:
        version = stored_version(db)  # another writer may have migrated it meanwhile
        for v in range(version, current):
            MIGRATIONS[v](db)
        db.execute(f"PRAGMA user_version = {current}")
        db.execute("COMMIT")
    except _Refused as exc:
        db.execute("ROLLBACK")
        raise EvoError(f"cannot migrate {path} from schema version {version} to {current}: {exc}; "
                       f"the store is unchanged (backup: {backup}); run `evo check` on it") from None
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.execute("PRAGMA foreign_keys = ON")
    return current, version, backup


def _script(db: sqlite3.Connection, script: str) -> None:
    try:
        db.executescript(script)
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
