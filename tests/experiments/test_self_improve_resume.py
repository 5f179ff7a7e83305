"""experiments/self_improve.py resumes inside a step: a finished part is never run again, in
this process or the next; a changed plan starts over with an empty work folder; snapshots
are whole or absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

import self_improve  # noqa: E402

BASE = {"samples": 4, "valid": 1, "valid_rate": 0.25, "num_elites": 3, "evolved_elites": 1, "qd_score": 1.0}


def make(tmp_path: Path, **overrides) -> self_improve.Experiment:
    return self_improve.Experiment("tiny", tmp_path / "work", tmp_path / "results", overrides=overrides or None)


def test_a_finished_part_is_kept_across_processes(tmp_path):
    exp = make(tmp_path)
    calls = []
    assert exp.part("arm:x", "train", lambda: calls.append(1) or {"loss": 1.5})["loss"] == 1.5
    assert exp.part("arm:x", "train", lambda: calls.append(2) or {"loss": 9.0})["loss"] == 1.5
    saved = json.loads(exp.json_path.read_text())
    assert saved["partial"]["arm:x"]["train"]["loss"] == 1.5 and calls == [1]

    again = make(tmp_path)  # a rerun after an interruption
    assert again.part("arm:x", "train", lambda: pytest.fail("ran a finished part again"))["loss"] == 1.5
    with pytest.raises(RuntimeError):  # a part that dies records nothing
        again.part("arm:x", "heldout", lambda: (_ for _ in ()).throw(RuntimeError("killed")))
    assert "heldout" not in json.loads(again.json_path.read_text())["partial"]["arm:x"]

    again.save("arm:x", {"round": 1})  # the whole step: its parts are dropped
    saved = json.loads(again.json_path.read_text())
    assert saved["steps"]["arm:x"] == {"round": 1} and "arm:x" not in saved["partial"]


def test_a_changed_plan_starts_over(tmp_path):
    exp = make(tmp_path)
    exp.part("arm:x", "train", lambda: {"loss": 1.5})
    (exp.work / "arm-x").mkdir()
    other = make(tmp_path, n=3)
    assert other.res["partial"] == {} and other.res["steps"] == {}
    assert not (other.work / "arm-x").exists() and other.work.is_dir()


def test_a_snapshot_is_whole_or_absent(tmp_path, monkeypatch):
    exp = make(tmp_path)
    src = exp.work / "arm-x"
    src.mkdir()
    (src / "store.sqlite").write_text("v1")
    exp.snapshot("arm-x", "s0")
    (src / "store.sqlite").write_text("v2")

    def die(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(self_improve.shutil, "copytree", die)
    with pytest.raises(OSError):
        exp.snapshot("arm-x", "s0")
    assert (exp.work / "snap" / "s0" / "store.sqlite").read_text() == "v1"  # the old one, untouched
    monkeypatch.undo()
    exp.snapshot("arm-x", "s0")
    assert (exp.work / "snap" / "s0" / "store.sqlite").read_text() == "v2"
    assert sorted(p.name for p in (exp.work / "snap").iterdir()) == ["s0"]


def test_a_new_machine_resumes_from_the_tracked_mirror(tmp_path):
    """The work tree is laid anew and the cache may be gone: the mirrored base snapshot and the
    held-out chunks bring the run back; a snapshot too big to mirror (one with an adapter)
    makes its step run again, never a silent measurement of the base."""
    exp = make(tmp_path)
    for name, size in (("s0", 10), ("arm_elites@trained", self_improve.MIRROR_MAX_BYTES + 1)):
        (exp.work / name).mkdir(parents=True)
        (exp.work / name / "store.sqlite").write_bytes(b"x" * size)
        exp.snapshot(name, name)
    exp.res["steps"]["campaign:base"] = BASE
    exp.part("arm:elites", "train", lambda: {"round": 1})
    exp.progress_file("arm:base").parent.mkdir(parents=True, exist_ok=True)
    exp.progress_file("arm:base").write_text('{"chunk": 0}\n')
    exp.write()
    assert sorted(p.name for p in (exp.state / "snap").iterdir()) == ["s0"]

    import shutil
    shutil.rmtree(exp.work)  # the new machine
    again = make(tmp_path)
    assert (again.work / "snap" / "s0" / "store.sqlite").read_bytes() == b"x" * 10
    assert again.res["steps"] == {"campaign:base": BASE}
    assert "arm:elites" not in again.res["partial"]  # its adapter is gone: trained again
    assert again.progress_file("arm:base").read_text() == '{"chunk": 0}\n'


def test_a_lost_round_source_redoes_the_step_that_made_it(tmp_path):
    import shutil
    exp = make(tmp_path)
    for name, size in (("s0", 10), ("elites@1", self_improve.MIRROR_MAX_BYTES + 1)):
        (exp.work / name).mkdir(parents=True)
        (exp.work / name / "adapter.safetensors").write_bytes(b"x" * size)
        exp.snapshot(name, name)
    exp.res["steps"] |= {"campaign:base": BASE, "arm:elites": {"round": 1}, "arm:seeds": {"round": 1}}
    exp.write()
    shutil.rmtree(exp.work)
    again = make(tmp_path)  # elites@1 (with its adapter) did not survive; round 2 starts from it
    assert "arm:elites" not in again.res["steps"] and "arm:seeds" in again.res["steps"]
    assert again.res["redone"] == ["arm:elites"]


def test_without_the_base_snapshot_everything_starts_over(tmp_path):
    exp = make(tmp_path)
    exp.res["steps"]["campaign:base"] = BASE
    exp.write()
    import shutil
    shutil.rmtree(exp.work)
    shutil.rmtree(exp.state, ignore_errors=True)
    assert make(tmp_path).res["steps"] == {}


def test_an_unfinished_base_campaign_is_mirrored_and_restored(tmp_path):
    """The base campaign takes hours: each finished iteration is mirrored (the store by SQLite's
    backup, whole), and a new machine continues it from there instead of from nothing."""
    import shutil
    import sqlite3

    exp = make(tmp_path)
    base = exp.work / "base"
    base.mkdir()
    with sqlite3.connect(base / "campaign.sqlite") as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (7)")
        db.commit()
        (base / "writer.lock").write_text("pid")
        (base / "measures.npz").write_bytes(b"m")
        exp.mirror_campaign("base")  # the writer still holds it open
    assert sorted(p.name for p in (exp.state / "base").iterdir()) == ["campaign.sqlite", "measures.npz"]
    exp.write()

    shutil.rmtree(exp.work)  # the new machine
    again = make(tmp_path)
    with sqlite3.connect(again.work / "base" / "campaign.sqlite") as db:
        assert db.execute("SELECT x FROM t").fetchall() == [(7,)]
    assert (again.work / "base" / "measures.npz").read_bytes() == b"m"


def test_an_arms_training_data_is_kept_beside_the_results(tmp_path):
    """Arm 6 adds arm 4's exact best-of-N examples to the seeds: they are read from arm 4's
    snapshot once and kept in the tracked state, so a new machine (no snapshot) still has them;
    with neither, the step says which data is gone instead of training on something else."""
    from evo.finetune.data import Example, write_examples

    exp = make(tmp_path)
    with pytest.raises(FileNotFoundError, match="arm:best_of_n: its training data went with its snapshot"):
        exp.arm_data("arm:best_of_n")
    rows = [Example("p", "c1", "generate", "best_of_n", "k1"), Example("p", "c2", "solve", "seed", "k2")]
    src = exp.work / "snap" / "arm_best_of_n@trained" / "adapters" / "round-1"
    src.mkdir(parents=True)
    write_examples(src / "train.jsonl", rows)
    assert exp.arm_data("arm:best_of_n") == rows
    import shutil
    shutil.rmtree(exp.work / "snap")
    assert make(tmp_path).arm_data("arm:best_of_n") == rows  # from the state, not the snapshot


def test_by_item_keeps_an_items_examples_together():
    from evo.finetune.data import Example

    ex = [Example("p", f"{k}{kind}", kind, "best_of_n", k) for k in "abcde" for kind in ("generate", "solve")]
    two = self_improve.by_item(ex, 2, [0, 5, 6])
    assert len(two) == 4 and len({e.key for e in two}) == 2
    assert all(sum(e.key == k for e in two) == 2 for k in {e.key for e in two})
    assert two == [e for e in ex if e in two]  # input order
    assert self_improve.by_item(ex, 2, [0, 5, 6]) == two  # seeded
    assert self_improve.by_item(ex, 9, 0) == ex and self_improve.by_item([], 3, 0) == []


def lost_snapshots(tmp_path: Path, **overrides) -> self_improve.Experiment:
    """A run whose rounds' snapshots (adapters, too big to mirror) went with an old machine:
    only s0 is back; arm 3 and round on:2 are finished."""
    import shutil
    exp = make(tmp_path, **overrides)
    (exp.work / "s0").mkdir(parents=True)
    (exp.work / "s0" / "store.sqlite").write_bytes(b"x")
    exp.snapshot("s0", "s0")
    exp.res["steps"] |= {"campaign:base": BASE, "arm:elites": {"round": 1}, "round:on:2": {"round": 2}}
    exp.write()
    shutil.rmtree(exp.work)
    return exp


def test_named_steps_redo_only_the_lost_snapshots_they_need(tmp_path):
    """--steps arm:seeds+elites_own starts from s0 alone: arm 3 and round on:2 stay finished
    although their snapshots are lost (2.5 hours not redone); naming round on:3 redoes both
    makers of the chain it starts from (on@2 from round on:2, elites@1 from arm 3), first."""
    lost_snapshots(tmp_path, rounds=3)
    arm5 = self_improve.Experiment("tiny", tmp_path / "work", tmp_path / "results", overrides={"rounds": 3},
                                   steps=["arm:seeds+elites_own"])
    assert {"arm:elites", "round:on:2"} <= set(arm5.res["steps"]) and "redone" not in arm5.res
    assert arm5.wanted == {"arm:seeds+elites_own"}

    round3 = self_improve.Experiment("tiny", tmp_path / "work", tmp_path / "results", overrides={"rounds": 3},
                                     steps=["round:on:3"])
    assert "arm:elites" not in round3.res["steps"] and "round:on:2" not in round3.res["steps"]
    assert round3.wanted == {"round:on:3", "round:on:2", "arm:elites"}
    assert sorted(round3.res["redone"]) == ["arm:elites", "round:on:2"]


def test_a_lost_source_is_found_on_the_same_machine_too(tmp_path):
    """The check runs on every start, not only when s0 had to be restored: a run on a machine
    that already restored s0 (an earlier run with --steps) must not start round 2 from nothing."""
    lost_snapshots(tmp_path)
    make(tmp_path)  # restores s0 and drops arm 3 (elites@1 lost)
    again = make(tmp_path)
    assert (again.work / "snap" / "s0").is_dir() and "arm:elites" not in again.res["steps"]


def test_run_does_only_the_named_steps_in_plan_order(tmp_path, monkeypatch):
    exp = self_improve.Experiment("tiny", tmp_path / "work", tmp_path / "results",
                                  steps=["arm:seeds", "arm:base"])
    done = []
    monkeypatch.setattr(exp, "steps", lambda: [(n, lambda n=n: done.append(n) or {"n": n})
                                               for n in self_improve.step_names(exp.p)])
    assert exp.run() is True
    assert done == ["arm:base", "arm:seeds"] and set(exp.res["steps"]) == {"arm:base", "arm:seeds"}


def test_an_unknown_step_is_one_error_and_deletes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "self_improve_tiny.json").write_text("{}")
    rc = self_improve.main(["--size", "tiny", "--work", str(tmp_path / "work"), "--results", str(results),
                            "--fresh", "--steps", "arm:base,arm:nope"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "unknown step arm:nope" in err[0]
    assert (results / "self_improve_tiny.json").read_text() == "{}" and not (tmp_path / "work").exists()
