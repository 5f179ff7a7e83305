"""Moved to :mod:`evo.visualize.report` (issue 34); this path works for one more release."""

from evo._moved import moved

moved(__name__, "evo.visualize.report")
