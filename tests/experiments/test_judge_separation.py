"""experiments/judge_separation.py's texts and metric (no model is loaded here): every bad
variant differs from its seed in the way its name says, and the separation counts ties half."""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

from judge_separation import bad_variants, separation, texts  # noqa: E402

SEED = "The lighthouse keeper counted the ships every night for forty years. On his last night, he wept."


def test_the_bad_variants_are_made_of_the_seeds_own_words():
    shuffled, cut, repeated = bad_variants(SEED, random.Random(0))
    assert shuffled != SEED and sorted(shuffled.split()) == sorted(SEED.split())
    assert SEED.startswith(cut) and len(cut.split()) < len(SEED.split()) and not cut.endswith(".")
    assert repeated.split() == SEED.split()[:6] * 4


def test_every_seed_of_both_kinds_gets_three_variants():
    rows = texts(per_kind=2)
    assert [r["kind"] for r in rows] == ["story", "story", "instruction", "instruction"]
    assert all(len(r["bad"]) == 3 and r["good"] not in r["bad"] for r in rows)
    assert rows == texts(per_kind=2)  # deterministic: a rerun resumes on the same texts


def test_separation_is_the_share_of_variants_below_the_seed_with_ties_half():
    assert separation([0.9, 0.5, 0.1], [[0.1, 0.2, 0.3], [0.5, 0.4, 0.6], [0.2, 0.3, 0.4]]) == [1.0, 0.5, 0.0]
