"""`evo export`: round trips through `datasets`, dedup of planted duplicates, stratified
selection, a split that keeps near-duplicates together, re-verification, bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archives import CampaignStore
from domains.p3 import P3Domain
from evo.errors import EvoError
from evo.export import assign_split, export_campaign, near_dedup, near_groups

COLUMNS = {"id", "task", "puzzle", "solution", "ans_type", "messages", "fitness", "fitness_parts",
           "measures", "cell", "is_seed", "iteration", "operator", "parents",
           "generator_version", "item"}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _distinct_valid_cells(directory: Path) -> int:
    with sqlite3.connect(directory / "campaign.sqlite") as db:
        return db.execute("SELECT COUNT(DISTINCT cell) FROM candidates "
                          "WHERE verdict = 'valid'").fetchone()[0]


@pytest.fixture()
def planted(small_campaign, tmp_path):
    """A copy of the campaign with planted rows: 3 exact duplicates (whitespace changes
    only), 3 near-duplicates (a dead statement added to f), 2 low-fitness copies and
    1 broken puzzle still marked valid. Returns (dir, {kind: [ids]}, {near id: original})."""
    d = tmp_path / "camp"
    shutil.copytree(small_campaign, d)
    base = export_campaign(d, tmp_path / "base", include_history=True, dedup=0.97)
    kept = [r for r in _jsonl(tmp_path / "base" / "train.jsonl") if not r["is_seed"]]
    assert base["exported"] == len(kept) + base["seeds"] and len(kept) >= 3
    store = CampaignStore.open(d)
    try:
        originals = store.get([r["id"] for r in kept[:3]])
        nid, rows, ids, pairs = store.next_id(), [], {}, {}

        def plant(kind, orig, item, **changes):
            nonlocal nid
            rows.append(dataclasses.replace(orig, id=nid, item=item, **changes))
            ids.setdefault(kind, []).append(nid)
            nid += 1

        for o in originals.values():
            f, g = o.item["f"], o.item["g"]
            plant("exact", o, {**o.item, "f": f.replace("\n", "\n\n") + "  ", "g": "  " + g})
            pairs[nid] = o.id
            # same puzzle text but for a dead statement: another AST, a near-identical embedding
            plant("near", o, {**o.item, "f": f + "\n    pass"})
        for o in list(originals.values())[:2]:
            # below anything the scorer gives (AZR-style P3 fitness is often 0 for the
            # scripted generator, so a fixed 0.25 was no longer "low")
            plant("low", o, {**o.item, "f": o.item["f"] + "\n    _low = 0"}, fitness=-1.0)
        o = next(iter(originals.values()))
        plant("broken", o, {**o.item, "f": "def f(x):\n    return x is None and False",
                            "g": "def g():\n    return None"})
        store.record(rows)
    finally:
        store.close()
    return d, ids, pairs, base


def test_jsonl_default_is_the_archive_elites(small_campaign, tmp_path):
    out = tmp_path / "ds"
    stats = export_campaign(small_campaign, out)
    from datasets import load_dataset

    ds = load_dataset("json", data_files={"train": str(out / "train.jsonl")})["train"]
    # elites, less those that overlap a held-out benchmark (decontamination is on by default)
    assert len(ds) == stats["exported"] == _distinct_valid_cells(small_campaign) - stats["removed_contaminated"]
    assert COLUMNS <= set(ds.column_names)
    assert len(set(ds["cell"])) == len(ds)  # one elite per cell
    assert any(ds["is_seed"]) and not all(ds["is_seed"])
    for row in ds:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"]
        assert row["puzzle"] in row["messages"][1]["content"]
        assert row["solution"] in row["messages"][1]["content"]
        assert json.loads(row["item"])["f"] == row["puzzle"]
    card = (out / "README.md").read_text()
    assert f"evo export {small_campaign} --out {out}" in card
    assert "## Pipeline" in card and ("heatmap.png" in card or "No heatmap" in card)


def test_messages_are_what_trl_sft_takes(small_campaign, tmp_path):
    from trl.data_utils import is_conversational

    export_campaign(small_campaign, tmp_path / "ds")
    rows = _jsonl(tmp_path / "ds" / "train.jsonl")
    assert all(is_conversational({"messages": r["messages"]}) for r in rows)


def test_hf_round_trip_with_split(small_campaign, tmp_path):
    from datasets import DatasetDict, load_from_disk

    out = tmp_path / "hf"
    stats = export_campaign(small_campaign, out, format="hf", include_history=True, split=0.7, seed=3)
    dd = load_from_disk(str(out))
    assert isinstance(dd, DatasetDict) and set(dd) == {"train", "test"}
    train, test = set(dd["train"]["id"]), set(dd["test"]["id"])
    assert not train & test
    assert len(train) == stats["splits"]["train"] and len(test) == stats["splits"]["test"] > 0
    assert len(train) + len(test) == stats["exported"] == \
        stats["pool"] - stats["removed_exact"] - stats["removed_contaminated"]
    assert COLUMNS <= set(dd["train"].column_names)
    assert (out / "README.md").is_file()
    again = export_campaign(small_campaign, tmp_path / "hf2", format="hf", include_history=True,
                            split=0.7, seed=3)
    assert set(load_from_disk(str(tmp_path / "hf2"))["test"]["id"]) == test  # seeded
    assert again["splits"] == stats["splits"]


def test_parquet_no_seeds(small_campaign, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "pq"
    stats = export_campaign(small_campaign, out, format="parquet", include_history=True,
                            include_seeds=False)
    ds = load_dataset("parquet", data_files={"train": str(out / "train.parquet")})["train"]
    assert len(ds) == stats["exported"] > 0 and stats["dropped_seeds"] > 0
    assert not any(ds["is_seed"])


def test_dedup_removes_planted_duplicates(planted, tmp_path):
    d, ids, _, base = planted
    stats = export_campaign(d, tmp_path / "out", include_history=True, dedup=0.97)
    rows = _jsonl(tmp_path / "out" / "train.jsonl")
    out_ids = {r["id"] for r in rows}
    assert stats["removed_exact"] == base["removed_exact"] + 3
    assert not out_ids & set(ids["exact"] + ids["near"])
    assert stats["removed_near"] >= base["removed_near"] + 3
    keys = [P3Domain().key(json.loads(r["item"])) for r in rows]
    assert len(keys) == len(set(keys))
    no_dedup = export_campaign(d, tmp_path / "plain", include_history=True)
    assert set(ids["near"]) <= {r["id"] for r in _jsonl(tmp_path / "plain" / "train.jsonl")}
    assert no_dedup["removed_near"] == 0


def test_min_fitness_and_per_cell(planted, tmp_path):
    d, ids, _, _ = planted
    stats = export_campaign(d, tmp_path / "a", include_history=True, min_fitness=-0.5)
    assert stats["dropped_min_fitness"] == len(ids["low"])
    assert not {r["id"] for r in _jsonl(tmp_path / "a" / "train.jsonl")} & set(ids["low"])
    stats = export_campaign(d, tmp_path / "b", include_history=True, per_cell=1)
    rows = _jsonl(tmp_path / "b" / "train.jsonl")
    assert len({r["cell"] for r in rows}) == len(rows) == stats["cells"]
    stats2 = export_campaign(d, tmp_path / "c", include_history=True, per_cell=2)
    counts = np.unique([r["cell"] for r in _jsonl(tmp_path / "c" / "train.jsonl")],
                       return_counts=True)[1]
    assert counts.max() <= 2 and stats2["exported"] > stats["exported"]


def test_split_keeps_near_duplicates_together(planted, tmp_path):
    from datasets import load_from_disk

    d, _, pairs, _ = planted
    for seed in range(3):
        out = tmp_path / f"s{seed}"
        export_campaign(d, out, format="hf", include_history=True, split=0.5, seed=seed,
                        split_threshold=0.97)
        dd = load_from_disk(str(out))
        side = {i: name for name in dd for i in dd[name]["id"]}
        assert len(side) == sum(len(dd[n]) for n in dd)
        for copy, orig in pairs.items():
            assert side[copy] == side[orig]


def test_reverify_drops_broken_items(planted, tmp_path):
    d, ids, _, _ = planted
    stats = export_campaign(d, tmp_path / "rv", include_history=True, reverify=True)
    assert stats["removed_reverify"] == 1
    assert ids["broken"][0] not in {r["id"] for r in _jsonl(tmp_path / "rv" / "train.jsonl")}


def test_near_dedup_and_groups_on_planted_vectors():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 16))
    emb = np.concatenate([centers, centers[:4] + 0.01 * rng.normal(size=(4, 16))])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert near_dedup(emb, 0.99) == list(range(10))
    groups = near_groups(emb, 0.99)
    assert len(set(groups)) == 10 and all(groups[10 + i] == groups[i] for i in range(4))
    for seed in range(5):
        test = assign_split(groups, 0.7, np.random.default_rng(seed))
        assert all(test[10 + i] == test[i] for i in range(4))
        assert 0 < test.sum() <= round(len(emb) * 0.3)


def test_out_exists_needs_force_and_nothing_is_left_behind(small_campaign, tmp_path):
    out = tmp_path / "ds"
    export_campaign(small_campaign, out)
    with pytest.raises(EvoError, match="not empty"):
        export_campaign(small_campaign, out, format="parquet")
    export_campaign(small_campaign, out, format="parquet", force=True)
    assert (out / "train.parquet").is_file() and not (out / "train.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp folders left


@pytest.mark.parametrize("args, message", [
    (["{missing}", "--out", "{out}"], "no such campaign directory"),
    (["{notcamp}", "--out", "{out}"], "is not a campaign directory"),
    (["{camp}", "--out", "{out}", "--format", "csv"], "unknown format 'csv'"),
    (["{camp}", "--out", "{out}", "--task", "riddle"], "unknown --task 'riddle'"),
    (["{camp}", "--out", "{out}", "--format", "dpo", "--task", "solve"], "--task solve is for sft"),
    (["{camp}", "--out", "{out}", "--against", "no-such-bench"], "unknown benchmark 'no-such-bench'"),
    (["{camp}", "--out", "{out}", "--split", "0"], "--split must be in (0, 1]"),
    (["{camp}", "--out", "{out}", "--split", "1.5"], "--split must be in (0, 1]"),
    (["{camp}", "--out", "{full}"], "exists and is not empty"),
])
def test_bad_input_is_one_line_and_exit_2(small_campaign, tmp_path, monkeypatch, capsys,
                                          args, message):
    from evo.cli import main

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "notcamp").mkdir()
    paths = {"missing": tmp_path / "missing", "notcamp": tmp_path / "notcamp",
             "camp": small_campaign, "out": tmp_path / "out", "full": tmp_path / "full"}
    monkeypatch.setattr(sys, "argv", ["evo", "export", *[a.format(**paths) for a in args]])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_input_through_the_installed_command(tmp_path):
    evo = Path(sys.executable).with_name("evo")
    if not evo.exists():
        pytest.skip("the evo console script is not installed")
    res = subprocess.run([str(evo), "export", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: no such campaign directory: {tmp_path / 'nope'}"]
