"""experiments/stats.py on inputs with known answers."""


import numpy as np
import pytest
from stats import bootstrap_ci, mean_pairwise_distance, paired_test, vendi_score  # noqa: E402


def test_vendi_counts_effective_distinct_items():
    eye = np.eye(5)
    assert vendi_score(eye) == pytest.approx(5.0)
    assert vendi_score(np.tile([[1.0, 2.0, 0.0]], (7, 1))) == pytest.approx(1.0)
    two_groups = np.array([[1, 0]] * 4 + [[0, 1]] * 4, dtype=float)
    assert vendi_score(two_groups) == pytest.approx(2.0)
    assert vendi_score(np.zeros((0, 3))) == 0.0


def test_mean_pairwise_distance():
    assert mean_pairwise_distance(np.eye(3)) == pytest.approx(1.0)
    assert mean_pairwise_distance(np.ones((4, 2))) == pytest.approx(0.0)
    assert mean_pairwise_distance(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0)
    assert mean_pairwise_distance(np.ones((1, 2))) == 0.0


def test_paired_permutation_test_exact_values():
    r = paired_test([2, 3, 4], [1, 1, 1])  # all three seeds better: the best 3 pairs can do
    assert r["p_perm"] == pytest.approx(0.25) and r["mean_diff"] == pytest.approx(2.0)
    assert r["wins"] == 3 and r["p_wilcoxon"] is None  # too few pairs for Wilcoxon
    five = paired_test([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    assert five["p_perm"] == pytest.approx(2 / 32) and five["p_wilcoxon"] == pytest.approx(0.0625)
    tie = paired_test([1, 1, 1], [1, 1, 1])
    assert tie["p_perm"] == 1.0 and tie["mean_diff"] == 0.0


def test_paired_test_rejects_bad_input():
    with pytest.raises(ValueError):
        paired_test([1, 2], [1])
    with pytest.raises(ValueError):
        paired_test([], [])


def test_bootstrap_is_seeded_and_brackets_the_mean():
    x = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    lo, hi = bootstrap_ci(x)
    assert 0.0 <= lo < np.mean(x) < hi <= 1.0


def test_rebinned_qd_keeps_the_best_per_cell_and_clips_outliers_into_edge_cells():
    from rebin_qd import qd_at

    ranges = np.array([[0.0, 1.0], [0.0, 1.0]])
    m = np.array([[0.1, 0.1], [0.12, 0.12], [0.9, 0.9], [5.0, 5.0]])  # the last lies outside the bounds
    f = np.array([0.5, 0.7, 0.6, 0.2])
    assert qd_at(m, f, ranges, 2) == (pytest.approx(0.7 + 0.6), 2)  # [0.9] and the clipped point share a cell
    assert qd_at(m, f, ranges, 10) == (pytest.approx(0.7 + 0.6), 2)  # still: 0.1 and 0.12 share a cell
    # finer cells separate the first two points; each keeps its own fitness
    assert qd_at(m, f, ranges, 100) == (pytest.approx(0.5 + 0.7 + 0.6 + 0.2), 4)
