"""Statistics for the experiment scripts: intervals, paired tests, diversity of a dataset.

- :func:`bootstrap_ci`: percentile bootstrap interval of a mean (from ``evo.heldout``);
- :func:`paired_test`: an arm against a baseline, seed by seed (same seeds, same budget):
  the exact paired permutation (sign-flip) test on the per-seed differences, and
  Wilcoxon's signed-rank test from scipy where there are enough seeds for it to mean
  anything. With 3 seeds the smallest two-sided sign-flip p is 0.25: say so, don't hide it;
- :func:`paired_bootstrap`: two arms on the same problems (held-out puzzles), problem by problem;
- :func:`vendi_score` (Friedman & Dieng, 2023) and :func:`mean_pairwise_distance` over
  unit-norm embeddings. The Vendi score is a few lines of numpy over the eigenvalues of the
  cosine kernel; the ``vendi-score`` package would bring torch/scipy pins for no gain here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from evo.heldout import bootstrap_ci

__all__ = ["bootstrap_ci", "mean_pairwise_distance", "paired_bootstrap", "paired_test", "vendi_score"]


def paired_test(arm: Sequence[float], baseline: Sequence[float]) -> dict[str, float | int | None]:
    """``arm[i]`` and ``baseline[i]`` come from the same seed. Mean difference, the exact
    two-sided sign-flip p-value, and Wilcoxon's p (None below 5 pairs or with no differences)."""
    d = np.asarray(arm, dtype=float) - np.asarray(baseline, dtype=float)
    if d.ndim != 1 or len(d) == 0 or len(arm) != len(baseline):
        raise ValueError("paired_test needs two equally long, non-empty sequences")
    if len(d) > 20:
        raise ValueError("the exact sign-flip test enumerates 2^n flips: at most 20 pairs")
    observed = abs(d.mean())
    flips = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    p_perm = float((np.abs((flips * d).mean(axis=1)) >= observed - 1e-12).mean())
    p_wilcoxon = None
    if len(d) >= 5 and np.any(d != 0):
        from scipy.stats import wilcoxon

        p_wilcoxon = float(wilcoxon(d).pvalue)
    return {"n": len(d), "mean_diff": float(d.mean()), "p_perm": p_perm, "p_wilcoxon": p_wilcoxon,
            "wins": int((d > 0).sum()), "losses": int((d < 0).sum())}


def paired_bootstrap(arm: Sequence[float], baseline: Sequence[float], *, n_boot: int = 10000,
                     seed: int = 0) -> dict[str, float | int | list[float] | None]:
    """Two arms measured on the same problems (``arm[i]``, ``baseline[i]``: problem i): the mean
    difference with a 95% paired bootstrap interval (problems resampled, pairs kept), a
    two-sided bootstrap p (twice the share of resampled means on the far side of 0), and
    Wilcoxon's signed-rank p from scipy (None with fewer than 5 non-zero differences)."""
    d = np.asarray(arm, dtype=float) - np.asarray(baseline, dtype=float)
    if d.ndim != 1 or len(d) == 0 or len(arm) != len(baseline):
        raise ValueError("paired_bootstrap needs two equally long, non-empty sequences")
    means = d[np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    p_boot = 1.0 if not d.any() else float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))
    p_wilcoxon = None
    if int((d != 0).sum()) >= 5:
        from scipy.stats import wilcoxon

        p_wilcoxon = float(wilcoxon(d).pvalue)
    return {"n": len(d), "mean_diff": float(d.mean()), "ci": [float(lo), float(hi)], "p_boot": p_boot,
            "p_wilcoxon": p_wilcoxon, "wins": int((d > 0).sum()), "losses": int((d < 0).sum())}


def _unit(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=float)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norms == 0, 1.0, norms)


def vendi_score(emb: np.ndarray) -> float:
    """exp(entropy of the eigenvalues of K/n), K the cosine-similarity kernel: the effective
    number of distinct items (1 for n copies of one item, n for n orthogonal items)."""
    x = _unit(emb)
    n = len(x)
    if n == 0:
        return 0.0
    lam = np.linalg.eigvalsh(x @ x.T / n)
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def mean_pairwise_distance(emb: np.ndarray) -> float:
    """Mean cosine distance (1 - cosine similarity) over all pairs; 0.0 below two items."""
    x = _unit(emb)
    n = len(x)
    if n < 2:
        return 0.0
    sim = x @ x.T
    return float((1.0 - sim[np.triu_indices(n, 1)]).mean())
