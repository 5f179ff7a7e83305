"""The self-improvement report: one row per finished generator with its intervals, paired
comparisons computed from per-puzzle correct counts, unfinished steps simply absent."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from self_improve_report import per_puzzle, write_report  # noqa: E402


def heldout(correct, n=10):
    return {"n": n, "correct": correct, "pass@1": sum(correct) / (n * len(correct)), "pass@1_ci": [0.0, 0.5],
            "pass@10": sum(c > 0 for c in correct) / len(correct), "pass@10_ci": [0.0, 1.0]}


def phase():
    return {"valid_rate": 0.25, "valid": 2, "samples": 8, "qd_per_1000": 12.5}


def test_report(tmp_path):
    plan = {"size": "cpu", "ks": [1, 10], "eval_limit": 6, "n": 10, "prompt_style": "completion",
            "phase_iters": 2, "prompts": 8, "samples": 2, "train_examples": 48, "rounds": 2}
    train = {"n_examples": 48, "mix": {"sources": {"archive": 10, "seed": 38}},
             "metrics": {"first_loss": 1.5, "last_loss": 0.9}}
    res = {"plan": plan, "machine": "m", "date": "2026-11-24", "steps": {
        "campaign:base": {"samples": 64, "valid": 3, "valid_rate": 3 / 64, "num_elites": 19, "evolved_elites": 3,
                          "qd_score": 17.0},
        "arm:base": {"round": 0, "heldout": heldout([0, 0, 1, 0, 0, 0]), "phase": phase()},
        "arm:elites": {"round": 1, "train": train, "heldout": heldout([2, 1, 3, 0, 1, 0]), "phase": phase()},
        "round:off:2": {"round": 2, "skipped": "no elites beyond the seeds yet", "anchors": "off"}}}
    out = tmp_path / "r.md"
    write_report(res, out)
    md = out.read_text()
    assert "| 3. seeds + evolved elites | 48 (10 archive, 38 seed); loss 1.50 -> 0.90 |" in md
    assert "| 3. elites, round 2, anchors off | no elites beyond the seeds yet | - | - | - | - |" in md
    assert "best_of_n" not in md.split("Paired")[0].split("| generator")[1]  # not run: no row
    assert "| elites vs base | pass@10 | +0.500 " in md  # 4 of 6 puzzles solved vs 1 of 6
    assert "4/0" in md
    assert per_puzzle({"n": 10, "correct": [0, 10]}, 1) == [0.0, 1.0]


def test_report_added_arms_and_rounds_against_round_one(tmp_path):
    """Arms 5 and 6 (generated data added to every seed example) get rows and their three
    comparisons; a later round is compared with round 1, where a collapse would show."""
    plan = {"size": "cpu-1.5b", "ks": [1, 10], "eval_limit": None, "n": 10, "prompt_style": "completion",
            "phase_iters": 2, "prompts": 16, "samples": 4, "train_examples": 96, "rounds": 3}
    train = {"n_examples": 150, "mix": {"sources": {"archive": 54, "seed": 96}}, "metrics": {}}
    steps = {key: {"round": 1, "train": train, "heldout": heldout(c)} for key, c in (
        ("arm:seeds", [1, 0, 0, 2]), ("arm:elites", [3, 0, 0, 0]), ("round:on:2", [0, 0, 0, 0]),
        ("arm:seeds+elites_own", [4, 1, 0, 0]), ("arm:seeds+best_of_n", [1, 0, 0, 0]))}
    out = tmp_path / "r.md"
    write_report({"plan": plan, "steps": steps}, out)
    md = out.read_text()
    assert "| 5. every seed example of 2 + 3b's elites, added | 150 (54 archive, 96 seed) |" in md
    assert "| 6. every seed example of 2 + as many best-of-N samples, added |" in md
    assert "| seeds+elites_own vs seeds+best_of_n | pass@10 | +0.250 " in md  # 2 of 4 solved vs 1 of 4
    assert "| seeds+best_of_n vs seeds | pass@10 | -0.250 " in md
    assert "| on:2 vs elites | pass@10 | -0.250 " in md  # the collapse, seen against round 1
    assert "off:2 vs" not in md  # not run: no comparison
