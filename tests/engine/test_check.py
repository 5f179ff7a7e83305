"""`evo check`: clean on a real (scripted) campaign, and each kind of damage it claims to
detect, built directly with sqlite3 on a copy of that campaign."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from evo.check import check_campaign
from evo.errors import EvoError

ROOT = Path(__file__).resolve().parents[2]


def evo(*args):
    return subprocess.run([sys.executable, "-m", "evo.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.fixture
def run(small_campaign, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(small_campaign, out)
    return out


def sql(directory, *statements):
    db = sqlite3.connect(directory / "campaign.sqlite", isolation_level=None)
    for s in statements:
        db.execute(s)
    db.close()


def test_clean_campaign_passes(run):
    result = check_campaign(run)
    assert result.ok, result.problems
    assert "schema version 3" in result.notes
    assert any("archive rebuild matches the stats of 4 iteration(s)" in n for n in result.notes)
    r = evo("check", run)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no problems found" in r.stdout


def _valid_child(directory):
    db = sqlite3.connect(directory / "campaign.sqlite")
    row = db.execute("SELECT id, iteration FROM candidates WHERE is_seed = 0 AND add_status > 0 "
                     "ORDER BY id LIMIT 1").fetchone()
    db.close()
    assert row, "the fixture campaign has no evolved elite"
    return row


def _unreferenced_failure(directory):
    db = sqlite3.connect(directory / "campaign.sqlite")
    parents = {p for (ps,) in db.execute("SELECT parents FROM candidates") for p in json.loads(ps)}
    ids = [i for (i,) in db.execute("SELECT id FROM candidates WHERE verdict != 'valid' ORDER BY id")]
    db.close()
    return next(i for i in ids[1:-1] if i not in parents)


def damage_index(d):  # the index's b-tree no longer matches its declared columns
    sql(d, "PRAGMA writable_schema = ON",
        "UPDATE sqlite_master SET sql = 'CREATE INDEX candidates_valid ON candidates (reason, id)' "
        "WHERE name = 'candidates_valid'")


def damage_foreign_key(d):  # plain sqlite3 does not enforce foreign keys unless asked
    sql(d, "INSERT INTO rescores VALUES (99999, 1, 0.5, '{}', 1, 0)")


def damage_parent(d):
    sql(d, "UPDATE candidates SET parents = '[88888]' WHERE id = (SELECT MAX(id) FROM candidates)")


def damage_id_gap(d):
    sql(d, f"DELETE FROM candidates WHERE id = {_unreferenced_failure(d)}")


def damage_missing_stats(d):
    sql(d, "DELETE FROM iterations WHERE iteration = 2")


def damage_stats(d):
    sql(d, "UPDATE iterations SET stats = json_set(stats, '$.qd_score', 999.0) WHERE iteration = 3")


def damage_cell(d):
    cid, _ = _valid_child(d)
    sql(d, f"UPDATE candidates SET cell = cell + 1 WHERE id = {cid}")


def damage_measures(d):  # a child moved in measure space: the rebuild no longer matches
    cid, _ = _valid_child(d)
    sql(d, f"UPDATE candidates SET measures = '[0.0, 0.0, 0.0]' WHERE id = {cid}")


def damage_measures_file(d):
    (d / "measures.npz").unlink()


def damage_config(d):
    sql(d, "DELETE FROM meta WHERE key = 'config'")


def damage_generator_version(d):
    sql(d, "UPDATE candidates SET generator_version = 1 WHERE iteration = 3")


def damage_adapter(d):
    damage_generator_version(d)
    folder = d / "adapters" / "round-1"
    folder.mkdir(parents=True)
    (folder / "round.json").write_text(json.dumps({"round": 1, "version": 1}))
    (folder / "adapter_config.json").write_text("{}")  # but no adapter_model.safetensors


@pytest.mark.parametrize("damage, message", [
    (damage_index, "SQLite integrity check: "),
    (damage_foreign_key, "table rescores, row "),
    (damage_parent, "(parent 88888)"),
    (damage_id_gap, "candidate ids are not contiguous: 1 missing ("),
    (damage_missing_stats, "iterations are not contiguous: no stats for iteration(s) 2"),
    (damage_missing_stats, "candidates of iteration(s) 2 have no stats row"),
    (damage_stats, "differs from the recorded iteration stats: iteration 3: rebuilt "),
    (damage_cell, "stored cells disagree with the saved measures: "),
    (damage_measures, "measures do not have 2 dimensions"),
    (damage_measures_file, "measures.npz is missing: the archive cannot be rebuilt"),
    (damage_config, "the store holds no campaign config"),
    (damage_generator_version, "generator version 1 is recorded in the store, but its fine-tune round is missing"),
    (damage_adapter, "generator version 1: the adapter in "),
])
def test_each_damage_is_reported(run, damage, message):
    damage(run)
    problems = check_campaign(run).problems
    assert any(message in p for p in problems), problems


def test_a_moved_child_breaks_the_rebuild(run):
    cid, it = _valid_child(run)
    db = sqlite3.connect(run / "campaign.sqlite")
    m = json.loads(db.execute(f"SELECT measures FROM candidates WHERE id = {cid}").fetchone()[0])
    db.close()
    sql(run, f"UPDATE candidates SET measures = '{json.dumps([-x for x in m])}' WHERE id = {cid}")
    problems = check_campaign(run).problems
    assert any(f"stored cells disagree with the saved measures: {cid} (stored" in p for p in problems), problems


def test_a_complete_round_is_clean(run):
    damage_adapter(run)
    (run / "adapters" / "round-1" / "adapter_model.safetensors").write_bytes(b"weights")
    assert check_campaign(run).ok


def test_damage_exits_1_and_lists_the_problem(run):
    damage_stats(run)
    r = evo("check", run)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "problem: the archive rebuilt from the store differs" in r.stdout
    assert "1 problem(s) found" in r.stdout


def _file(tmp):
    (tmp / "file").write_text("x")
    return tmp / "file"


def _garbage(tmp):
    (tmp / "campaign.sqlite").write_bytes(b"\xff" * 4096)
    return tmp


def _newer(tmp):
    db = sqlite3.connect(tmp / "campaign.sqlite")
    db.execute("CREATE TABLE candidates (id INTEGER PRIMARY KEY)")
    db.execute("PRAGMA user_version = 99")
    db.close()
    return tmp


@pytest.mark.parametrize("make, message", [
    (_file, "is not a directory"),
    (lambda tmp: tmp, "is not a campaign directory (no campaign.sqlite)"),
    (_garbage, "is unreadable or corrupt"),
    (_newer, "has schema version 99, newer than this evo understands (up to 3)"),
])
def test_unreadable_input_is_one_line_exit_2(tmp_path, make, message):
    with pytest.raises(EvoError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_campaign(make(tmp_path))
    if make is _newer:  # and once through the real command line
        r = evo("check", tmp_path)
        assert r.returncode == 2
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and message in lines[0], r.stderr
