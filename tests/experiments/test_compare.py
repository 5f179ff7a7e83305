"""experiments/compare.py end to end on a scripted stand-in generator (plumbing only; the
real comparison runs the embedded model): every arm and seed runs, the table and the plot
are written, and the arms really differ in what they keep."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compare_runs_every_arm_and_seed_and_writes_table_and_plot(tmp_path):
    cfg = {"name": "cmp", "domain": "p3", "domain_options": {"solve_attempts": 1}, "max_seeds": 6,
           "iterations": 2, "prompts_per_iteration": 6, "samples_per_prompt": 2,
           "archive": {"dims": [10, 10]},
           "generator": {"backend": "scripted-stand-in", "model": "tests.conftest:scripted_p3"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, str(ROOT / "experiments" / "compare.py"), "--config", str(tmp_path / "c.yaml"),
           "--seeds", "0", "1", "--samples", "24", "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "res")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the stand-in lives in tests/
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    table = (tmp_path / "res" / "compare_p3.md").read_text()
    arms = ("map_elites", "map_elites_curiosity", "map_elites_sparse", "plain", "best_of_n", "novelty")
    for arm in arms:
        assert f"| {arm} |" in table and "strategy.kind=" in table
    assert "--set iterations=2" in table  # 24 samples at 12 a batch
    assert (tmp_path / "res" / "compare_p3.png").stat().st_size > 1000
    results = json.loads((tmp_path / "res" / "compare_p3.json").read_text())
    assert len(results) == 2 * len(arms) and {r["seed"] for r in results} == {0, 1}
    by = {(r["arm"], r["seed"]): r for r in results}
    # same budget everywhere: the curves end at the same number of samples
    assert {r["samples"] for r in results} == {24}
    # best-of-N keeps one child per prompt, so it holds at most as many items as plain sampling
    assert by["best_of_n", 0]["distinct"] <= by["plain", 0]["distinct"]
    assert by["map_elites", 0]["evolved_elites"] > 0
    assert all(r["distinct"] <= r["distinct_exact"] <= r["kept"] for r in results)
    assert all(0.0 <= r["mean_distance"] <= 2.0 and r["vendi"] <= max(r["distinct_exact"], 1) for r in results)
    # resumable: a second invocation finds every run done and only rewrites the table
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0 and "0 runs in" in again.stdout and f"{2 * len(arms)} were already done" in again.stdout


def test_set_applies_to_every_arm_and_tag_names_the_results(tmp_path):
    cfg = {"name": "cmp", "domain": "p3", "domain_options": {"solve_attempts": 1}, "max_seeds": 6,
           "iterations": 1, "prompts_per_iteration": 4, "samples_per_prompt": 2,
           "generator": {"backend": "scripted-stand-in", "model": "tests.conftest:scripted_p3"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, str(ROOT / "experiments" / "compare.py"), "--config", str(tmp_path / "c.yaml"),
           "--seeds", "0", "--samples", "16", "--arms", "plain", "map_elites",
           "--set", "operators.weights={lmx: 0, mutation: 1, scratch: 0}", "--tag", "mut",
           "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "res")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    table = (tmp_path / "res" / "compare_p3_mut.md").read_text()
    assert "--tag mut" in table and "--set 'operators.weights={lmx: 0, mutation: 1, scratch: 0}'" in table
    assert not (tmp_path / "res" / "compare_p3.json").exists()  # the untagged results are untouched
    for arm in ("plain", "map_elites"):
        db = sqlite3.connect(tmp_path / "runs" / "p3_mut" / f"{arm}-0" / "campaign.sqlite")
        ops = {op for (op,) in db.execute("SELECT DISTINCT operator FROM candidates WHERE is_seed = 0")}
        assert ops == {"mutation"}  # the override reached every arm's campaign


def table_of(gains: dict[str, list[float]], seeds: tuple[int, ...], domain: str, tmp_path: Path) -> dict:
    """compare.py's table for made-up per-seed gains (an arm with fewer gains ran the first seeds
    only), as {arm cell: the row's cells}."""
    import argparse

    from compare import write_results

    results = [{"arm": arm, "seed": s, "gain": g, "iterations": 4, "samples": 64, "coverage": 0.3,
                "valid_rate": 0.9, "obj_max": 0.6, "kept": 50, "distinct_exact": 40, "distinct": 30,
                "mean_distance": 0.8, "vendi": 20.0, "wall_s": 1.0, "curve": [[0, 0.0], [64, g]],
                "shown_elites": [], "shown_kept": []}
               for arm, gs in gains.items() for s, g in zip(seeds, gs)]
    args = argparse.Namespace(config=str(ROOT / "experiments" / "configs" / f"{domain}_cpu.yaml"), set=[], tag="")
    write_results(results, domain, args, tmp_path)
    return {line.split(" | ")[0].strip("| "): line.split(" | ")
            for line in (tmp_path / f"compare_{domain}.md").read_text().splitlines() if line.startswith("| ")}


def test_the_table_tests_every_arm_against_the_best_baseline_as_well_as_best_of_n(tmp_path):
    """Where plain beats best-of-N, beating best-of-N proves little: the table pairs every arm
    with the strongest baseline too, seed by seed."""
    gains = {"map_elites_sparse": [20.0, 21.0, 19.0], "plain": [15.0, 16.0, 17.0], "best_of_n": [10.0, 9.0, 11.0]}
    rows = table_of(gains, (3, 4, 5), "text_feedback", tmp_path)
    assert "here: plain" in (tmp_path / "compare_text_feedback.md").read_text()
    sparse, plain = rows["map_elites_sparse"], rows["plain"]
    assert sparse[2] == "1.25"  # 20 / 16: against plain, the best baseline, not best-of-N
    assert sparse[3].startswith("+10.00 (3/0") and sparse[4].startswith("+4.00 (3/0")
    assert plain[3].startswith("+6.00 (3/0") and plain[4] == "-"  # no test of an arm against itself
    samples = (tmp_path / "compare_text_feedback_samples.md").read_text()
    assert "map_elites_sparse archive elite" in samples


def test_an_arm_that_ran_fewer_seeds_names_them_and_is_paired_only_on_those(tmp_path):
    """A fix arm run on two of three seeds must not pass for a three-seed result."""
    gains = {"map_elites_curiosity": [20.0, 21.0], "plain": [15.0, 16.0, 30.0], "best_of_n": [40.0]}
    rows = table_of(gains, (0, 1, 2), "p3", tmp_path)
    assert "map_elites_curiosity (seeds 0, 1)" in rows and "plain" in rows
    assert rows["map_elites_curiosity (seeds 0, 1)"][4].startswith("+5.00 (2/0")  # seed 2 left out of the pair
    assert "best_of_n (seeds 0)" in rows
    assert "here: plain" in (tmp_path / "compare_p3.md").read_text()  # not best-of-N's one lucky seed
