"""Archive inserts, the SQLite store, and rebuilding the archive from the store."""

import json
import sqlite3

import numpy as np
import pytest

from archives import Archive, CampaignStore, Candidate, Measures, rebuild_archive
from evo.campaign import MEASURES_FILE
from evo.errors import EvoError


def grid_measures():
    return Measures("pca", np.array([[-1.0, 1.0], [-1.0, 1.0]]), np.zeros(4), np.eye(2, 4))


def test_insert_statuses_and_stats():
    a = Archive(grid_measures(), [10, 10])
    status, cells = a.add(["a", "b", "c"], [0.5, 0.7, 0.2], np.array([[0.0, 0.0], [0.01, 0.01], [0.9, 0.9]]), [1, 2, 3])
    # a and b share a cell: the batch keeps the better one; c opens a new cell
    assert len(a) == 2
    assert cells[0] == cells[1] != cells[2]
    assert sorted(e["candidate_id"] for e in a.elites()) == [2, 3]
    s = a.stats()
    assert s["num_elites"] == 2 and s["obj_max"] == pytest.approx(0.7)
    assert s["qd_score"] == pytest.approx(0.9)
    # a worse candidate in an occupied cell is not added; a better one improves it
    status, _ = a.add(["d", "e"], [0.1, 0.9], np.array([[0.0, 0.0], [0.9, 0.9]]), [4, 5])
    assert list(status) == [0, 1]


def test_sparse_sampling_prefers_the_frontier():
    a = Archive(grid_measures(), [20, 20])
    # five elites crowded in one corner, one alone on the far side
    crowd = [[-0.9 + 0.1 * i, -0.9] for i in range(5)]
    a.add([json.dumps({"i": i}) for i in range(6)], [0.5] * 6, np.array(crowd + [[0.9, 0.9]]), list(range(1, 7)))
    picks = [cid for cid, _ in a.sample_sparse(3000, np.random.default_rng(0))]
    lone = picks.count(6) / len(picks)
    assert lone > 0.5  # uniform would give 1/6
    assert {cid for cid in picks} == set(range(1, 7))  # every elite can still be a parent
    assert a.sample_sparse(3, np.random.default_rng(0))[0][1] in [{"i": i} for i in range(6)]
    assert Archive(grid_measures(), [4, 4]).sample_sparse(2, np.random.default_rng(0)) == []


def test_measures_outside_bounds_are_flagged_and_clipped():
    m = grid_measures()
    pts = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, -3.0]])
    assert list(m.on_border(pts)) == [False, True, True]
    a = Archive(m, [4, 4])
    a.add(["x"], [1.0], pts[1:2], [1])
    assert len(a) == 1  # clipped into an edge cell, not dropped


def test_measures_save_load_roundtrip(tmp_path):
    m = Measures.fit_pca(np.random.default_rng(0).normal(size=(30, 8)), 2, 0.1)
    m.save(tmp_path / MEASURES_FILE)
    m2 = Measures.load(tmp_path / MEASURES_FILE)
    x = np.random.default_rng(1).normal(size=(5, 8))
    assert np.allclose(m.transform(x), m2.transform(x)) and np.allclose(m.ranges, m2.ranges)


def test_cvt_measures():
    emb = np.random.default_rng(0).normal(size=(40, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    a = Archive(Measures.fit_cvt(emb, 8), None)
    a.add(["p"] * 40, list(np.linspace(0, 1, 40)), emb, list(range(40)))
    assert 1 <= len(a) <= 8


def test_store_records_every_candidate_and_rebuilds_archive(tmp_path):
    store = CampaignStore(tmp_path / "campaign.sqlite")
    rng = np.random.default_rng(0)
    live = Archive(grid_measures(), [5, 5])
    next_id = store.next_id()
    for it in range(4):
        cands = []
        for j in range(6):
            cid = next_id
            next_id += 1
            valid = j % 3 != 0
            c = Candidate(id=cid, iteration=it, operator="lmx", parents=[1], verdict="valid" if valid else "invalid",
                          item={"f": f"def f(x: int): return x == {cid}"}, reason=None if valid else "boom")
            if valid:
                c.fitness, c.measures = float(rng.random()), rng.uniform(-1, 1, 2).tolist()
            cands.append(c)
        valid = [c for c in cands if c.verdict == "valid"]
        live.add([json.dumps(c.item) for c in valid], [c.fitness for c in valid],
                 np.array([c.measures for c in valid]), [c.id for c in valid])
        store.record(cands, it, live.stats())
    assert store.counts() == {"valid": 16, "invalid": 8}
    rebuilt = rebuild_archive(CampaignStore.open(tmp_path), Archive(grid_measures(), [5, 5]))
    assert sorted((e["cell"], e["candidate_id"], e["fitness"]) for e in rebuilt.elites()) == \
        sorted((e["cell"], e["candidate_id"], e["fitness"]) for e in live.elites())
    assert [i["iteration"] for i in store.iterations()] == [0, 1, 2, 3]
    got = store.get([2])[2]
    assert got.verdict == "valid" and got.item["f"].endswith("== 2") and got.parents == [1]


def test_open_rejects_non_campaign_and_corrupt_store(tmp_path):
    with pytest.raises(EvoError, match="not a campaign directory"):
        CampaignStore.open(tmp_path)
    (tmp_path / "campaign.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EvoError, match="corrupt"):
        CampaignStore.open(tmp_path)


def test_store_is_wal(tmp_path):
    CampaignStore(tmp_path / "campaign.sqlite").close()
    mode = sqlite3.connect(tmp_path / "campaign.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
