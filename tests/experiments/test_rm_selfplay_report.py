"""experiments/rm_selfplay_report.py's length check (no model is loaded here): a judge that
only rewards length gives every arm the same win rate at equal length, whatever its raw win
rate, and a real quality gain survives the adjustment."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

from rm_selfplay_report import length_adjusted, length_section  # noqa: E402


def test_a_length_only_judge_is_adjusted_to_a_coin_flip():
    rng = np.random.default_rng(1)
    longer_by = rng.integers(0, 20, size=200).astype(float)  # an arm that mostly writes longer
    outcome = np.clip(0.5 + 0.02 * longer_by, 0, 1)
    r = length_adjusted(outcome, longer_by)
    assert outcome.mean() > 0.6  # the raw win rate would credit the arm
    assert r["adjusted"] == pytest.approx(0.5, abs=1e-9) and r["per_word"] == pytest.approx(0.02)
    assert r["adjusted_ci"][0] <= 0.5 <= r["adjusted_ci"][1]


def test_a_quality_gain_at_equal_length_survives():
    longer_by = np.tile([-5.0, 0.0, 5.0], 40)
    r = length_adjusted(0.7 + 0.01 * longer_by, longer_by)
    assert r["adjusted"] == pytest.approx(0.7) and r["adjusted_ci"][0] > 0.6
    flat = length_adjusted(np.array([1.0, 0.0, 0.5]), np.zeros(3))  # no spread: the plain mean
    assert flat["adjusted"] == pytest.approx(0.5) and flat["per_word"] == 0.0 and flat["n_longer"] == 0
    with pytest.raises(ValueError):
        length_adjusted(np.array([1.0]), np.array([1.0, 2.0]))


def test_the_section_reads_finished_steps_only():
    base = ["one two three"] * 4
    steps = {"generate:base": {"stories": base},
             "generate:kl": {"stories": ["one two three four five"] * 4},
             "judge:kl": {"pairs": [{"outcome": o} for o in (1.0, 1.0, 0.5, 1.0)]},
             "generate:nokl": {"stories": base}}  # generated, not judged yet: no row
    lines = length_section(steps)
    assert any(line.startswith("| tuned, KL anchor | 4 of 4 |") for line in lines)
    assert not any("kl_coef 0" in line for line in lines)
    assert length_section({}) == []
