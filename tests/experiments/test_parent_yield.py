"""experiments/parent_yield.py: children's fates split by operator and by seed or evolved parents."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(runs: Path, results: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "experiments" / "parent_yield.py"), "--runs", str(runs),
                           "--results", str(results)], capture_output=True, text=True, timeout=300)


def rows_of(report: str) -> dict[tuple[str, str, str], list[str]]:
    return {tuple(c.strip() for c in line.strip("|").split("|")[:3]): [c.strip() for c in line.strip("|").split("|")]
            for line in report.splitlines() if line.startswith("| ") and not line.startswith("| arm")}


def test_children_of_an_evolved_parent_are_counted_apart_from_children_of_seeds(tmp_path, small_campaign):
    runs = tmp_path / "runs" / "v"
    shutil.copytree(small_campaign, runs / "map_elites-0")
    db = sqlite3.connect(runs / "map_elites-0" / "campaign.sqlite")
    seeds = {i for (i,) in db.execute("SELECT id FROM candidates WHERE is_seed = 1")}
    children = db.execute("SELECT id, operator FROM candidates WHERE is_seed = 0 ORDER BY id").fetchall()
    parent, (child, op) = children[0][0], children[-1]
    # the last child descends from the first child: an evolved parent, whatever it was before
    db.execute("UPDATE candidates SET parents = ?, verdict = 'duplicate' WHERE id = ?", (f"[{parent}]", child))
    db.execute("UPDATE candidates SET parents = ? WHERE is_seed = 0 AND id != ?", (f"[{min(seeds)}]", child))
    db.commit()
    db.close()
    res = run(runs, tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = rows_of((tmp_path / "parent_yield_v.md").read_text())
    evolved = [k for k in rows if k[2] == "evolved"]
    assert evolved == [("map_elites", op, "evolved")]
    assert rows[evolved[0]][3:5] == ["1", "0.0%"] and rows[evolved[0]][5] == "100.0%"  # one child, a copy
    assert sum(int(r[3]) for r in rows.values()) == len(children)  # every child counted once


def test_a_folder_without_campaigns_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run(tmp_path / "empty", tmp_path)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "no campaign under" in res.stderr
    assert not list(tmp_path.glob("parent_yield_*.md"))
