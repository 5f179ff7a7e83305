"""experiments/resumable.py: finished steps are skipped on a rerun, a changed plan starts over,
and chunked sampling resumes from the chunks already written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

from resumable import Steps, sample_chunked  # noqa: E402

from evo.llm import SamplingParams, ScriptedStandInLLM  # noqa: E402


def make(tmp_path: Path, plan: dict, **kw) -> Steps:
    return Steps(tmp_path / "r.json", tmp_path / "r.md", plan, tmp_path / "work",
                 report=lambda res, p: p.write_text(",".join(res["steps"])), **kw)


def test_rerun_skips_finished_steps_and_changed_plan_restarts(tmp_path):
    calls: list[str] = []

    def step(name):
        return lambda: calls.append(name) or {"v": name}

    plan = [("a", step("a"), 1), ("b", step("b"), 1)]
    s = make(tmp_path, {"size": "x"})
    (s.work / "progress.jsonl").write_text("old")
    assert s.run(plan) and calls == ["a", "b"]
    assert (tmp_path / "r.md").read_text() == "a,b"
    assert make(tmp_path, {"size": "x"}).run(plan) and calls == ["a", "b"]  # nothing redone
    assert (tmp_path / "work" / "progress.jsonl").exists()
    s = make(tmp_path, {"size": "y"})  # another plan: the old steps and work files are gone
    assert not (tmp_path / "work" / "progress.jsonl").exists() and s.done == {}
    s.run(plan)
    assert calls == ["a", "b", "a", "b"]
    make(tmp_path, {"size": "y"}, fresh=True).run(plan)
    assert calls[-2:] == ["a", "b"] and len(calls) == 6


def test_a_failing_step_keeps_the_finished_ones(tmp_path):
    def boom():
        raise RuntimeError("interrupted")

    s = make(tmp_path, {"p": 1})
    with pytest.raises(RuntimeError):
        s.run([("a", lambda: {"ok": 1}, 1), ("b", boom, 1)])
    saved = json.loads((tmp_path / "r.json").read_text())
    assert list(saved["steps"]) == ["a"] and saved["plan"] == {"p": 1}
    ran = []
    make(tmp_path, {"p": 1}).run([("a", lambda: ran.append("a") or {}, 1), ("b", lambda: ran.append("b") or {}, 1)])
    assert ran == ["b"]


def test_deadline_pauses_before_a_step(tmp_path):
    s = make(tmp_path, {"p": 1})
    assert not s.run([("a", lambda: {}, 1)], deadline=0.0)
    assert s.done == {}


def test_sample_chunked_resumes(tmp_path):
    llm = ScriptedStandInLLM(lambda prompt, j: f"{prompt}-{j}")
    params = SamplingParams(n=2, max_new_tokens=8, seed=5)
    prompts, ids = [f"p{i}" for i in range(5)], [f"id{i}" for i in range(5)]
    path = tmp_path / "s.jsonl"
    first = sample_chunked(llm, prompts, ids, params, path, chunk=2)
    assert first == [[f"p{i}-0", f"p{i}-1"] for i in range(5)] and llm.calls == 3
    assert sample_chunked(llm, prompts, ids, params, path, chunk=2) == first and llm.calls == 3
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])  # the last chunk cut short by a crash
    assert sample_chunked(llm, prompts, ids, params, path, chunk=2) == first and llm.calls == 4
    other = SamplingParams(n=2, max_new_tokens=8, seed=6)  # other settings: nothing reused
    sample_chunked(llm, prompts, ids, other, path, chunk=2)
    assert llm.calls == 7
