"""Moved to :mod:`evo.export.pairs` (issue 34); this path works for one more release."""

from evo._moved import moved

moved(__name__, "evo.export.pairs")
