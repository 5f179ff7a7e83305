"""A campaign directory: the names of the files in it and the one reader of a finished run.

The loop (:mod:`evo.campaign`) writes these files; everything that reads a campaign
directory afterwards (status, plot, report, export, check, finetune) names them from
here rather than importing the loop for a constant.
"""

from __future__ import annotations

from archives.store import STORE_FILE

__all__ = ["HELDOUT_FILE", "LOCK_FILE", "MEASURES_FILE", "PLOTS_DIR", "REPORT_FILE", "STORE_FILE"]

MEASURES_FILE = "measures.npz"  # the descriptor's fitted PCA/centroids (archives.Measures)
REPORT_FILE = "report.html"  # evo report
PLOTS_DIR = "plots"  # evo plot
HELDOUT_FILE = "heldout.jsonl"  # held-out pass@k by round (evo eval-solve, finetune rounds)
LOCK_FILE = "writer.lock"  # the one writer's lock (evo.lock)
