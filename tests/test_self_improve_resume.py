"""experiments/self_improve.py resumes inside a step: a finished part is never run again, in
this process or the next; a changed plan starts over with an empty work folder; snapshots
are whole or absent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import self_improve  # noqa: E402


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
