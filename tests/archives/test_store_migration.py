"""Schema versions: a store written by the first release (tests/fixtures/store_v1.sqlite,
made by tests/fixtures/make_store_v1.py) migrates to the current version after a backup,
refuses with the reason when its data cannot be carried over, and a newer store is refused."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from archives import SCHEMA_VERSION, CampaignStore
from evo.errors import EvoError

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store_v1.sqlite"
TABLES = ("meta", "candidates", "iterations", "rescores")


@pytest.fixture
def v1(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "campaign.sqlite")
    return tmp_path


def rows(path):
    db = sqlite3.connect(path)
    out = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    out["user_version"] = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    return out


def test_the_fixture_is_a_first_release_store():
    data = rows(FIXTURE)
    assert data["user_version"] == 0 and len(data["candidates"]) == 6 and len(data["rescores"]) == 4


def test_readers_read_an_older_store_without_migrating(v1):
    store = CampaignStore.open(v1)
    try:
        assert store.schema_version == 1 and store.migrated_from is None
        assert store.get_meta("config")["name"] == "fixture" and len(store.rescores(1)) == 4
    finally:
        store.close()
    assert rows(v1 / "campaign.sqlite")["user_version"] == 0
    assert not list(v1.glob("*.bak"))


def test_a_writer_migrates_v1_to_the_current_version_after_a_backup(v1):
    before = rows(v1 / "campaign.sqlite")
    store = CampaignStore.open(v1, migrate=True)
    try:
        assert (store.schema_version, store.migrated_from) == (SCHEMA_VERSION, 1) == (3, 1)
        assert store.backup == v1 / "campaign.sqlite.v1.bak"
        assert [c.id for c in store.candidates()] == [1, 2, 3, 4, 5, 6]
        # Version 2 enforces what version 1 only promised: re-scores name real candidates.
        fks = store.db.execute("PRAGMA foreign_key_list(rescores)").fetchall()
        assert [(f["table"], f["from"], f["to"]) for f in fks] == [("candidates", "candidate_id", "id")]
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            store.record_rescores(2, {999: (0.1, {})})
    finally:
        store.close()
    after = rows(v1 / "campaign.sqlite")
    assert after.pop("user_version") == 3
    # every row carried over; version 3's search columns are NULL in rows written before
    width = len(before["candidates"][0])
    assert all(set(r[width:]) == {None} for r in after["candidates"])
    after["candidates"] = [r[:width] for r in after["candidates"]]
    assert after == {k: v for k, v in before.items() if k != "user_version"}
    assert rows(v1 / "campaign.sqlite.v1.bak") == before  # the backup is the untouched v1 store
    again = CampaignStore.open(v1, migrate=True)  # migrating is done once
    assert again.migrated_from is None and again.schema_version == 3
    again.close()


def test_a_migration_that_cannot_carry_the_data_says_why_and_changes_nothing(v1):
    db = sqlite3.connect(v1 / "campaign.sqlite")
    db.execute("INSERT INTO rescores VALUES (999, 1, 0.5, '{}', 6, 0)")  # v1 could not refuse this
    db.commit()
    db.close()
    before = rows(v1 / "campaign.sqlite")
    with pytest.raises(EvoError, match=r"cannot migrate .* from schema version 1 to 3: 1 re-scored candidate\(s\) "
                                       r"are not in the store \(ids 999\); the store is unchanged \(backup: "):
        CampaignStore.open(v1, migrate=True)
    assert rows(v1 / "campaign.sqlite") == before


def test_a_newer_store_is_refused_with_the_reason(v1):
    db = sqlite3.connect(v1 / "campaign.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    for migrate in (False, True):
        with pytest.raises(EvoError, match=f"has schema version {SCHEMA_VERSION + 1}, newer than this evo "
                                           f"understands \\(up to {SCHEMA_VERSION}\\); upgrade evo"):
            CampaignStore.open(v1, migrate=migrate)


def test_a_new_store_records_the_current_version(tmp_path):
    store = CampaignStore(tmp_path / "campaign.sqlite")
    store.close()
    assert rows(tmp_path / "campaign.sqlite")["user_version"] == SCHEMA_VERSION


def test_a_version_2_store_gains_the_search_columns_and_old_rows_read_as_before(v1):
    """A store of the version before the search columns (v1 migrated to 2 by the code of
    that version) migrates to 3; readers of a v2 store see the new fields as None."""
    from archives.migrations import MIGRATIONS

    db = sqlite3.connect(v1 / "campaign.sqlite")
    MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    reader = CampaignStore.open(v1)
    assert reader.schema_version == 2
    old = list(reader.candidates())
    assert len(old) == 6 and all(c.strategy is None and c.depth is None for c in old)
    reader.close()
    store = CampaignStore.open(v1, migrate=True)
    try:
        assert (store.schema_version, store.migrated_from) == (3, 2)
        assert store.backup == v1 / "campaign.sqlite.v2.bak"
        assert [c.item for c in store.candidates()] == [c.item for c in old]
        cols = [r["name"] for r in store.db.execute("PRAGMA table_info(candidates)")]
        assert cols[-5:] == ["strategy", "depth", "parent_id", "beam_rank", "search_value"]
    finally:
        store.close()
