"""experiments/qd_ceiling.py: the union of several runs' archives bounds what any arm could gain."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def ceiling(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "experiments" / "qd_ceiling.py"), "--runs",
                           str(tmp_path / "runs" / "v"), "--results", str(tmp_path), *extra],
                          capture_output=True, text=True, timeout=300)


def setup_runs(tmp_path: Path, campaign: Path) -> None:
    """Copies of one finished campaign as arms; the best-of-N copy kept out a cell only one child reached
    (one with fitness above 0: under issue 30's fitness many children score 0, and losing such a cell
    would not lower the QD-score)."""
    for arm in ("plain-0", "best_of_n-0", "map_elites-0"):  # map_elites-0 is not finished: left out
        shutil.copytree(campaign, tmp_path / "runs" / "v" / arm)
    db = sqlite3.connect(tmp_path / "runs" / "v" / "best_of_n-0" / "campaign.sqlite")
    lone = db.execute("SELECT cell FROM candidates WHERE verdict = 'valid' AND cell IS NOT NULL GROUP BY cell "
                      "HAVING COUNT(*) = 1 AND MAX(is_seed) = 0 AND MAX(fitness) > 0 LIMIT 1").fetchone()
    assert lone, "the fixture campaign has no cell that only one child reached"
    db.execute("UPDATE candidates SET add_status = -1 WHERE cell = ?", lone)
    db.commit()
    db.close()
    (tmp_path / "compare_v.json").write_text(json.dumps([{"arm": "plain", "seed": 0}, {"arm": "best_of_n", "seed": 0}]))


def test_the_union_of_the_runs_is_the_ceiling(tmp_path, small_campaign):
    setup_runs(tmp_path, small_campaign)
    res = ceiling(tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    report = (tmp_path / "qd_ceiling_v.md").read_text()
    assert "2 finished runs" in report
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in report.splitlines() if line.startswith("| v: ")}
    assert set(rows) == {"v: plain", "v: best_of_n"}
    assert rows["v: plain"][3].strip(" |") == "100%"  # plain found everything either run found
    plain, best_of_n = float(rows["v: plain"][2]), float(rows["v: best_of_n"][2])
    assert best_of_n < plain and "the ceiling is **1.00x** it" in report


def test_runs_in_different_measure_spaces_cannot_be_pooled(tmp_path, small_campaign):
    setup_runs(tmp_path, small_campaign)
    path = tmp_path / "runs" / "v" / "plain-0" / "measures.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["ranges"] = arrays["ranges"] * 2
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    res = ceiling(tmp_path)
    assert res.returncode != 0 and "2 different measure spaces" in res.stderr
    assert not (tmp_path / "qd_ceiling_v.md").exists()
