"""experiments/judge_length_bias.py without a model: the slope fit recovers a known length
bias, its interval covers it, and the fit's filler is disjoint from the padding that checks
the fit (judge_injection's ``padded`` attack), so the slope is not tuned on its own test."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

from judge_injection import PADDING  # noqa: E402
from judge_length_bias import FILLER, bootstrap_slope, padded, slope_through_origin  # noqa: E402


def test_the_fit_recovers_a_known_gain_per_token():
    rng = np.random.default_rng(0)
    groups = []
    for _ in range(12):
        x = np.array([8.0, 20.0, 33.0, 48.0]) + rng.integers(-2, 3, 4)
        groups.append((x, 0.0007 * x + rng.normal(0, 0.002, 4)))
    x, y = np.concatenate([g[0] for g in groups]), np.concatenate([g[1] for g in groups])
    assert slope_through_origin(x, y) == pytest.approx(0.0007, rel=0.15)
    lo, hi = bootstrap_slope(groups, boots=500)
    assert lo < 0.0007 < hi and hi - lo < 0.0004


def test_a_judge_blind_to_length_fits_no_slope():
    groups = [(np.array([8.0, 20.0, 33.0, 48.0]), np.zeros(4)) for _ in range(6)]
    assert slope_through_origin(*groups[0]) == 0.0
    assert bootstrap_slope(groups, boots=200) == [0.0, 0.0]


def test_fit_filler_is_not_the_padding_that_checks_it():
    for kind in FILLER:
        variants = padded("A seed text.", kind)
        assert [len(v.split()) for v in variants] == sorted(len(v.split()) for v in variants)
        assert len(set(variants)) == len(FILLER[kind])
        pad_sentences = {s.strip() for s in PADDING[kind].replace("!", ".").split(".") if s.strip()}
        fit_sentences = {s.strip() for f in FILLER[kind] for s in f.split(".") if s.strip()}
        assert not pad_sentences & fit_sentences
